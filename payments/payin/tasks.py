"""Messages between the state machine and the task functions (pydantic, parsed by Powertools)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from payments.payin.models import Identifier, PaymentMethod
from payments.payin.status import OrderStatus


class ExecuteOrderTask(BaseModel):
    """Input of functions/executor: one iteration of the Map state."""

    model_config = ConfigDict(extra="ignore")
    checkout_id: Identifier
    payment_order_id: Identifier
    payment_method: PaymentMethod


class ExecutionResult(BaseModel):
    payment_order_id: str
    status: OrderStatus
    psp_reference: str | None = None
    failure_reason: str | None = None


class OrderTask(BaseModel):
    """Input of functions/wallet and functions/ledger."""

    model_config = ConfigDict(extra="ignore")
    payment_order_id: Identifier


class OrderResult(BaseModel):
    """One Map iteration's outcome, as the state machine's Pass states shape it."""

    model_config = ConfigDict(extra="ignore")
    payment_order_id: str
    outcome: Literal["SUCCESS", "FAILED", "NEEDS_ATTENTION"]
    step: str | None = None
    error: dict[str, Any] | None = None


class FinalizePaymentTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["finalize_payment"]
    checkout_id: Identifier
    order_results: list[OrderResult]
