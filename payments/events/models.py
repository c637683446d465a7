"""The ``data`` of each event type: the resource as the API answers it.

Payments, orders, refunds and payouts have an API resource already (their ``*Out`` models); disputes, attention
flags and reconciliation runs are read by operators through the CLI, and their event data are the models below.
:data:`DATA_MODELS` names the model of every type: the catalogue (JSON Schema, AsyncAPI) is generated from it,
and every emitted event's ``data`` validates against it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from payments.events.envelope import EventType
from payments.payin.models import PaymentOrderOut, PaymentOut
from payments.payin.status import AttentionKind
from payments.payouts.models import PayoutOut
from payments.refunds.models import RefundOut


class DisputeOut(BaseModel):
    """A dispute on a charge, as booked: each step's amount once it is booked (decimal strings, major units)."""

    model_config = ConfigDict(extra="forbid")

    dispute_reference: str = Field(description="The PSP's reference of the dispute (the same for all its steps)")
    payment_order_id: str
    currency: str
    step: Literal["chargeback", "reversed", "second_chargeback"] = Field(description="The step this event books")
    chargeback_amount: str = Field(description="Taken off the seller by the chargeback")
    reversed_amount: str | None = Field(default=None, description="Given back by the reversal, once booked")
    second_chargeback_amount: str | None = Field(
        default=None, description="Taken off again by the second chargeback, once booked"
    )
    booked_at: str = Field(description="When the chargeback was booked (ISO 8601, UTC)")


class AttentionEventOut(BaseModel):
    """An attention flag of an order, a refund or a payout: raised (open) or resolved (closed)."""

    model_config = ConfigDict(extra="forbid")

    resource: Literal["payment_order", "refund", "payout"]
    resource_id: str
    open: bool
    kind: AttentionKind
    reason: str
    flagged_at: str | None = None
    resolved_at: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class ReconciliationOut(BaseModel):
    """A reconciled file: its counts, its mismatches and where its report is."""

    model_config = ConfigDict(extra="forbid")

    source_key: str = Field(description="The file's S3 key")
    format: str
    sha256: str
    settlement_day: str | None = Field(default=None, description="The settlement day the file covers")
    rows: int
    matched: int
    mismatches: int
    rejected: int
    clean: bool
    report_key: str
    quarantine_reason: str | None = None


#: the ``data`` model of every type
DATA_MODELS: dict[EventType, type[BaseModel]] = {
    EventType.PAYMENT_SUCCEEDED: PaymentOut,
    EventType.PAYMENT_PARTIALLY_FAILED: PaymentOut,
    EventType.PAYMENT_FAILED: PaymentOut,
    EventType.PAYMENT_ORDER_SUCCEEDED: PaymentOrderOut,
    EventType.PAYMENT_ORDER_FAILED: PaymentOrderOut,
    EventType.ATTENTION_RAISED: AttentionEventOut,
    EventType.ATTENTION_RESOLVED: AttentionEventOut,
    EventType.REFUND_SUCCEEDED: RefundOut,
    EventType.REFUND_FAILED: RefundOut,
    EventType.REFUND_RETURNED: RefundOut,
    EventType.DISPUTE_CHARGEBACK: DisputeOut,
    EventType.DISPUTE_REVERSED: DisputeOut,
    EventType.DISPUTE_SECOND_CHARGEBACK: DisputeOut,
    EventType.PAYOUT_SUBMITTED: PayoutOut,
    EventType.PAYOUT_PAID: PayoutOut,
    EventType.PAYOUT_FAILED: PayoutOut,
    EventType.PAYOUT_RETURNED: PayoutOut,
    EventType.RECONCILIATION_COMPLETED: ReconciliationOut,
}
