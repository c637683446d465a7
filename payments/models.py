"""Models: the public API (pydantic, validated at the edge) and the stored records.

Amounts cross the API as decimal strings in major units and are stored as
integer minor units (``amount_minor``); see :mod:`payments.money`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from payments import money
from payments.config import MAX_ORDERS_PER_CHECKOUT
from payments.status import OrderStatus, PaymentStatus

#: Identifiers become DynamoDB keys, Step Functions execution names (<= 80 chars,
#: no spaces or specials) and PSP idempotency keys, so they are kept plain.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True)


class BuyerInfo(BaseModel):
    model_config = _STRICT
    buyer_id: Identifier
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None


class PaymentMethod(BaseModel):
    """Card data is a PSP token only; raw card numbers are rejected before validation."""

    model_config = _STRICT
    type: Literal["card"]
    token: Annotated[str, Field(min_length=5, max_length=128, pattern=r"^tok_[A-Za-z0-9_]+$")]


class PaymentOrderIn(BaseModel):
    model_config = _STRICT
    payment_order_id: Identifier
    seller_account: Identifier
    # currency is declared before amount so that the amount validator can see it
    currency: Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
    amount: Annotated[str, Field(min_length=1, max_length=32, description='Decimal string in major units, e.g. "19.99"')]

    @field_validator("currency")
    @classmethod
    def _active_currency(cls, value: str) -> str:
        if not money.is_currency(value):
            raise ValueError(f"'{value}' is not an active ISO 4217 currency code")
        return value

    @field_validator("amount")
    @classmethod
    def _amount_fits_currency(cls, value: str, info: ValidationInfo) -> str:
        currency = info.data.get("currency")
        # an invalid currency is reported on its own field; check the amount's shape with 2 digits
        money.parse_amount(value, currency if currency else "USD")
        return value

    @property
    def amount_minor(self) -> int:
        return money.parse_amount(self.amount, self.currency)


class PaymentRequest(BaseModel):
    """Body of ``POST /v1/payments``."""

    model_config = _STRICT
    checkout_id: Identifier
    buyer_info: BuyerInfo
    payment_method: PaymentMethod
    payment_orders: Annotated[list[PaymentOrderIn], Field(min_length=1, max_length=MAX_ORDERS_PER_CHECKOUT)]

    def duplicate_order_fields(self) -> list[str]:
        """Field paths of payment_order_ids repeated within this request."""
        seen: set[str] = set()
        duplicates: list[str] = []
        for index, order in enumerate(self.payment_orders):
            if order.payment_order_id in seen:
                duplicates.append(f"payment_orders[{index}].payment_order_id")
            seen.add(order.payment_order_id)
        return duplicates


# --- resources returned by the API --------------------------------------------------
class PaymentOrderOut(BaseModel):
    payment_order_id: str
    seller_account: str
    amount: str
    currency: str
    status: OrderStatus
    psp_reference: str | None = None
    wallet_updated: bool = False
    ledger_updated: bool = False
    failure_reason: str | None = None
    needs_attention: bool = False
    #: succeeded refunds, and chargebacks net of their reversals (decimal strings; issue 18)
    refunded_amount: str | None = None
    chargeback_amount: str | None = None


class PaymentOut(BaseModel):
    checkout_id: str
    status: PaymentStatus
    is_payment_done: bool
    payment_orders: list[PaymentOrderOut]


class Balance(BaseModel):
    currency: str
    amount: str


class WalletOut(BaseModel):
    seller_account: str
    balances: list[Balance]


class CurrencyTotals(BaseModel):
    currency: str
    debits: str
    credits: str


class TrialBalanceOut(BaseModel):
    currencies: list[CurrencyTotals]


# --- stored records ---------------------------------------------------------------
class OrderRecord(BaseModel):
    payment_order_id: str
    checkout_id: str
    seller_account: str
    amount_minor: int
    currency: str
    status: OrderStatus = OrderStatus.NOT_STARTED
    psp_reference: str | None = None
    charged_at: str | None = None
    failure_reason: str | None = None
    wallet_updated: bool = False
    ledger_updated: bool = False
    needs_attention: bool = False
    attention_reason: str | None = None
    #: every status this order has had, in order, with the time (invariant 5 is checked on it)
    status_history: list[dict[str, str]] = Field(default_factory=list)
    #: late or duplicate signals that were recorded but not applied
    anomalies: list[dict[str, str]] = Field(default_factory=list)
    #: money given back (payments.refunds): refunds reserved (pending + succeeded), succeeded,
    #: chargebacks booked and chargebacks reversed, in minor units
    refund_reserved_minor: int = 0
    refunded_minor: int = 0
    chargeback_minor: int = 0
    chargeback_reversed_minor: int = 0
    created_at: str = ""
    updated_at: str = ""

    def to_api(self) -> PaymentOrderOut:
        return PaymentOrderOut(
            payment_order_id=self.payment_order_id,
            seller_account=self.seller_account,
            amount=money.format_minor(self.amount_minor, self.currency),
            currency=self.currency,
            status=self.status,
            psp_reference=self.psp_reference,
            wallet_updated=self.wallet_updated,
            ledger_updated=self.ledger_updated,
            failure_reason=self.failure_reason,
            needs_attention=self.needs_attention,
            refunded_amount=money.format_minor(self.refunded_minor, self.currency),
            chargeback_amount=money.format_minor(self.chargeback_minor - self.chargeback_reversed_minor, self.currency),
        )

    @property
    def is_settled_internally(self) -> bool:
        """Final, and if it succeeded, its wallet and ledger effects are both recorded."""
        if self.status is OrderStatus.SUCCESS:
            return self.wallet_updated and self.ledger_updated
        return self.status is OrderStatus.FAILED


class PaymentRecord(BaseModel):
    checkout_id: str
    status: PaymentStatus = PaymentStatus.PENDING
    is_payment_done: bool = False
    buyer_id: str
    payment_order_ids: list[str]
    payment_method_type: str
    payment_method_token: str
    idempotency_key: str
    request_fingerprint: str
    created_at: str = ""
    updated_at: str = ""
    finalized_at: str | None = None
