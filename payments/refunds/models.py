"""Refund models: the body of ``POST /v1/refunds``, the stored refund, the resource."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from payments.kernel.ids import identifier_field
from payments.kernel.money import Money
from payments.payin.models import (
    NO_CARD_NUMBER,
    AttentionOut,
    Identifier,
    _currency_amount_pairs,
    active_currency,
    amount_field,
    amount_fits_currency,
    currency_field,
)

#: a refund's ``failure_reason`` when the PSP said no, whichever PSP (its own words are in its notification)
REFUND_DECLINED = "refund_declined"


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self is not RefundStatus.PENDING


class RefundRequest(BaseModel):
    """Body of ``POST /v1/refunds``; ``amount`` omitted: everything still refundable."""

    # the currency/amount rule documented as for a payment order: one branch per ISO 4217 exponent
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_currency_amount_pairs)
    refund_id: Annotated[
        str,
        identifier_field(
            "The refund's id, chosen by the client: unique across the system (one already used by another "
            "refund is answered 409 resource-conflict); the PSP's idempotency key of the refund.",
            after=NO_CARD_NUMBER,
        ),
    ]
    payment_order_id: Identifier
    currency: Annotated[
        str,
        currency_field("An active ISO 4217 currency code: the order's currency (else 422)."),
        AfterValidator(active_currency),
    ]
    amount: (
        Annotated[
            str,
            amount_field(
                'Decimal string in major units, e.g. "5.00": greater than zero, at most as many fraction digits as the '
                "currency's ISO 4217 minor units, at most what remains refundable on the order (else 422 "
                "refund-exceeds-remaining). Omitted: everything still refundable. Never a JSON number."
            ),
            AfterValidator(amount_fits_currency),
        ]
        | None
    ) = None
    reason: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_ -]+$")] | None = None


class RefundOut(BaseModel):
    refund_id: str
    payment_order_id: str
    amount: str
    currency: str
    status: RefundStatus
    psp_reference: str | None = None
    failure_reason: str | None = None
    reason: str | None = None
    needs_attention: bool = False
    attention: AttentionOut | None = None
    returned_at: str | None = Field(
        default=None,
        description="When the PSP said the refund came back from the scheme (it did not reach the shopper): "
        "a person decides whether to credit the seller back or refund the shopper again.",
    )


class RefundRecord(BaseModel):
    refund_id: str
    payment_order_id: str
    seller_account: str
    amount_minor: int
    currency: str
    status: RefundStatus = RefundStatus.PENDING
    reason: str | None = None
    psp_reference: str | None = None
    failure_reason: str | None = None
    #: which signal decided it first: "psp" (the PSP's answer) or "notification"
    decided_by: str | None = None
    idempotency_key: str = ""
    request_fingerprint: str = ""
    needs_attention: bool = False
    attention_reason: str | None = None
    attention_flagged_at: str | None = None
    #: who may close the flag, and its last closing (as on an order: ``payments.payin.models.OrderRecord``)
    attention_kind: str | None = None
    attention_resolved_at: str | None = None
    attention_resolved_by: str | None = None
    attention_resolution: str | None = None
    anomalies: list[dict[str, str]] = Field(default_factory=list)
    #: the scheme sent the refund back (``REFUNDED_REVERSED``, ``REFUND_FAILED`` after success): the PSP's
    #: reference of that notification and when it came, set in the write that flags the refund
    returned_reference: str | None = None
    returned_at: str | None = None
    #: re-drives of its workflow by the recovery sweep (:mod:`payments.refunds.recovery`): a conditional counter
    recovery_attempts: int = 0
    created_at: str = ""
    updated_at: str = ""

    @property
    def money(self) -> Money:
        """What the refund gives back (``amount_minor`` in ``currency``)."""
        return Money(self.amount_minor, self.currency)

    def to_api(self) -> RefundOut:
        """The API view: the fields it shares with the record, as stored, and the amount formatted."""
        return RefundOut(
            **self.model_dump(include=RefundOut.model_fields.keys() & RefundRecord.model_fields.keys()),
            amount=self.money.format(),
            attention=AttentionOut.of(self),
        )
