"""Models: the public API (pydantic, validated at the edge) and the stored records.

Amounts cross the API as decimal strings in major units and are stored as
integer minor units (``amount_minor``); see :mod:`payments.kernel.money`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo
from pydantic.config import JsonDict

from payments.kernel.config import MAX_ORDERS_PER_CHECKOUT, settings
from payments.kernel.ids import identifier_field
from payments.kernel.iso4217 import MINOR_UNITS
from payments.kernel.money import MAX_ORDER_MINOR_UNITS, InvalidAmount, Money, is_currency, parse_amount
from payments.payin.status import AttentionKind, OrderStatus, PaymentStatus
from payments.psp.adyen_currencies import UnsupportedAtAdyen, adyen_exponent, to_adyen_minor, wire_exponent

NO_CARD_NUMBER = (
    " Must not hold a card number (13-19 digits in a card scheme's issuer range passing the Luhn check,"
    " contiguous or grouped as cards are printed, the groups joined by '_' or '-' included): 422"
    " card-number-rejected."
)


def _identifier(description: str) -> object:
    """The identifier rule (:mod:`payments.kernel.ids`) with the field's own description."""
    return identifier_field(description, after=NO_CARD_NUMBER)


def currency_field(description: str) -> Any:
    """An ISO 4217 code in a request body: three capitals, listed as an enum in the OpenAPI document."""
    return Field(
        min_length=3,
        max_length=3,
        pattern=r"^[A-Z]{3}$",
        description=description,
        json_schema_extra={"enum": [*ACTIVE_CURRENCIES]},
    )


def amount_field(description: str) -> Any:
    """A decimal amount in major units, as a string (never a JSON number)."""
    return Field(min_length=1, max_length=32, pattern=AMOUNT_PATTERN, description=description)


def active_currency(value: str) -> str:
    """An active ISO 4217 code; on an Adyen stage also one Adyen takes with a definite number of
    decimals (not ISK, whose decimals at Adyen are disputed; not a code Adyen does not list).

    Its ``ValueError`` is a phrase for the merchant (``functions.merchant_words``): what the currency
    must be, never the value sent."""
    if not is_currency(value):
        raise ValueError(
            "must be an active ISO 4217 currency code such as USD, EUR or JPY (this one is withdrawn or unknown)"
        )
    if _adyen_stage():
        try:
            adyen_exponent(value)
        except UnsupportedAtAdyen:
            raise ValueError(
                "must be a currency this stage's PSP, Adyen, takes with a definite number of decimals (this one is not)"
            ) from None
    return value


def amount_fits_currency(value: str | None, info: ValidationInfo) -> str | None:
    """The amount has at most the currency's minor-unit digits and fits the bounds; on an Adyen
    stage Adyen's minor units must carry it exactly (IDR has no decimals at Adyen: 10000.50 IDR is
    refused). An invalid currency is reported on its own field; the amount is then only checked to be
    above zero (its decimals depend on the currency).

    Its ``ValueError`` is a phrase for the merchant (``functions.merchant_words``), never quoting the
    amount (it may be a card number written as one)."""
    if value is None:
        return value
    currency = info.data.get("currency")
    if not currency:
        if Decimal(value) <= 0:  # the field's pattern made it a plain decimal string
            raise ValueError(AMOUNT_NOT_POSITIVE)
        return value
    try:
        minor = parse_amount(value, currency)
    except InvalidAmount:
        raise ValueError(_amount_rule_broken(value, currency)) from None
    adyen = _adyen_stage()
    try:
        # the simulated PSP writes Adyen's formats too (notifications, settlement reports), with Adyen's
        # decimals where Adyen's table is definite: an amount they cannot carry is refused here as well
        to_adyen_minor(Money(minor, currency), strict=adyen)
    except UnsupportedAtAdyen:
        decimals = adyen_exponent(currency) if adyen else wire_exponent(currency)
        psp = "Adyen, this stage's PSP" if adyen else "this stage's PSP, whose files use Adyen's decimals"
        raise ValueError(
            f"must be a whole number of {currency}, which has {decimals} decimals at {psp}"
            if decimals == 0
            else f"must have at most {decimals} decimal places: {currency} has {decimals} at {psp}"
        ) from None
    return value


AMOUNT_NOT_POSITIVE = "must be greater than zero"


def _amount_rule_broken(value: str, currency: str) -> str:
    """Why ``parse_amount`` refused an amount of the field's decimal shape, in the merchant's words."""
    digits = MINOR_UNITS[currency]
    whole, _, fraction = value.partition(".")
    if len(fraction) > digits:
        if digits == 0:
            return f"must be a whole number: {currency} has no minor units"
        return (
            f"must have at most {digits} decimal place{'s' if digits != 1 else ''}: {currency} has {digits} minor units"
        )
    if not any(c in "123456789" for c in whole + fraction):
        return AMOUNT_NOT_POSITIVE
    return f"must be at most {Money(MAX_ORDER_MINOR_UNITS, currency).format()} {currency}"


def _adyen_stage() -> bool:
    """Whether this stage's PSP is Adyen (``PAYMENTS_PSP=adyen``)."""
    return settings().payments_psp == "adyen"


Identifier = Annotated[str, _identifier("Identifier.")]
#: the decimal shape of an amount; the currency's minor units and the bounds are checked beside it
AMOUNT_PATTERN = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
#: printable, no spaces or control characters, one '@' and a dot in the domain
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
ACTIVE_CURRENCIES = sorted(MINOR_UNITS)


def amount_pattern(digits: int) -> str:
    """The decimal strings greater than zero with at most ``digits`` fraction digits (whole part <= 14 - digits digits).

    ``amount_pattern(2)`` accepts ``19.99``, ``5``, ``0.01``, ``0.10``; refuses ``0``, ``0.00``, ``1.999``, ``01``.
    """
    whole = rf"[1-9][0-9]{{0,{13 - digits}}}"
    if digits == 0:
        return rf"^{whole}$"
    # 0.x with at least one non-zero digit among at most `digits`
    below_one = "|".join(
        "0" * zeros + "[1-9]" + (f"[0-9]{{0,{digits - zeros - 1}}}" if digits - zeros > 1 else "")
        for zeros in range(digits)
    )
    return rf"^(?:{whole}(?:\.[0-9]{{1,{digits}}})?|0\.(?:{below_one}))$"


def _currency_amount_pairs(schema: JsonDict) -> None:
    """Document the rule across currency and amount: one branch per ISO 4217 exponent."""
    by_digits: dict[int, list[str]] = {}
    for code, digits in MINOR_UNITS.items():
        by_digits.setdefault(digits, []).append(code)
    schema["oneOf"] = [
        {"properties": {"currency": {"enum": [*sorted(codes)]}, "amount": {"pattern": amount_pattern(digits)}}}
        for digits, codes in sorted(by_digits.items())
    ]


_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True)
#: the API's own models (requests, resources, problems) are built when first used, not at import: the functions
#: behind the state machine import this module for its records and never validate a request or answer one; each
#: API builds its models at its own import (``functions.api_kit.build_models``)
_API = ConfigDict(defer_build=True)
_API_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True, defer_build=True)


class BuyerInfo(BaseModel):
    model_config = _API_STRICT
    buyer_id: Annotated[str, _identifier("The merchant's id of the buyer.")]
    email: (
        Annotated[
            str,
            Field(
                max_length=254,
                pattern=EMAIL_PATTERN,
                description="The buyer's e-mail address; no spaces or control characters.",
            ),
        ]
        | None
    ) = None


class PaymentMethod(BaseModel):
    """Card data is a PSP token only; raw card numbers are rejected before validation."""

    model_config = _STRICT
    type: Literal["card"]
    token: Annotated[str, Field(min_length=5, max_length=128, pattern=r"^tok_[A-Za-z0-9_]+$")]


class PaymentOrderIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=False,
        strict=True,
        defer_build=True,
        json_schema_extra=_currency_amount_pairs,
    )
    payment_order_id: Annotated[
        str,
        _identifier(
            "Unique within the checkout and across the system: a payment_order_id already used by another checkout is "
            "answered 409 resource-conflict."
        ),
    ]
    seller_account: Annotated[str, _identifier("The seller's account.")]
    # currency is declared before amount so that the amount validator can see it
    currency: Annotated[str, currency_field("An active ISO 4217 currency code."), AfterValidator(active_currency)]
    amount: Annotated[
        str,
        amount_field(
            'Decimal string in major units, e.g. "19.99": greater than zero, no sign, exponent or spaces, at most as '
            "many fraction digits as the currency's ISO 4217 minor units (USD 2, JPY 0, KWD 3), at most "
            f"{MAX_ORDER_MINOR_UNITS} minor units. Never a JSON number."
        ),
        AfterValidator(amount_fits_currency),
    ]

    @property
    def amount_minor(self) -> int:
        return self.money.minor

    @property
    def money(self) -> Money:
        """The validated amount as :class:`payments.kernel.money.Money`."""
        return Money.parse(self.amount, self.currency)


class PaymentRequest(BaseModel):
    """Body of ``POST /v1/payments``."""

    model_config = _API_STRICT
    checkout_id: Annotated[
        str,
        _identifier(
            "The merchant's id of the checkout, unique across the system: the same checkout_id under another "
            "Idempotency-Key or with another body is answered 409 resource-conflict."
        ),
    ]
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
class ProblemFieldError(BaseModel):
    model_config = _API
    field: str = Field(
        description="Path of the offending field (payment_orders[2].amount), or 'header <Name>', or '(body)'."
    )
    message: str = Field(
        description="A sentence naming the field and saying what is expected (payment_orders[2].currency must be a "
        "three-letter ISO 4217 code such as USD); never the value that was sent."
    )


#: problems as the APIs answer them (the OpenAPI document's examples; a test posts each request and
#: compares): a checkout with two bad fields, a refund over what remains, a refund in another currency
PROBLEM_EXAMPLES: list[JsonDict] = [
    {
        "type": "urn:payments:problem:validation-error",
        "title": "Request validation failed",
        "status": 422,
        "detail": '2 fields are not valid: payment_orders[0].amount must be sent as a string such as "19.99", not as '
        "a JSON number; payment_orders[1].currency must be a three-letter ISO 4217 code such as USD.",
        "errors": [
            {
                "field": "payment_orders[0].amount",
                "message": 'payment_orders[0].amount must be sent as a string such as "19.99", not as a JSON number',
            },
            {
                "field": "payment_orders[1].currency",
                "message": "payment_orders[1].currency must be a three-letter ISO 4217 code such as USD",
            },
        ],
    },
    {
        "type": "urn:payments:problem:refund-exceeds-remaining",
        "title": "Refund exceeds what remains refundable",
        "status": 422,
        "detail": "The refund is more than remains refundable: at most 4.99 USD remains refundable on po_1 (the "
        "charge less the refunds already reserved and the chargebacks still standing).",
        "errors": [
            {
                "field": "amount",
                "message": "amount is more than remains refundable: at most 4.99 USD remains refundable on po_1",
            }
        ],
    },
    {
        "type": "urn:payments:problem:validation-error",
        "title": "Request validation failed",
        "status": 422,
        "detail": "currency EUR differs from the order's currency USD.",
        "errors": [{"field": "currency", "message": "currency EUR differs from the order's currency USD"}],
    },
]


class Problem(BaseModel):
    """An RFC 9457 problem detail (``application/problem+json``)."""

    model_config = ConfigDict(defer_build=True, json_schema_extra={"examples": [*PROBLEM_EXAMPLES]})

    type: str = Field(
        pattern=r"^urn:payments:problem:[a-z-]+$", description="URN naming the problem; the README lists them."
    )
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="The offending fields, for validation failures."
    )


class AttentionOut(BaseModel):
    """Why an order or a refund is parked ``NEEDS_ATTENTION`` (null when it is not)."""

    kind: AttentionKind = Field(
        description="PERSON: a decision only a person can take (payments attention resolve closes it); "
        "REDRIVE: a step ran out of retries, re-running the workflow (payments resume) settles it"
    )
    reason: str = Field(description="What happened, in words")
    since: str | None = Field(default=None, description="When it was flagged (ISO 8601, UTC)")

    @classmethod
    def of(cls, record: Any) -> AttentionOut | None:
        """The open flag of an order or refund record, or None."""
        if not record.needs_attention:
            return None
        return cls(
            kind=AttentionKind.of(record.attention_kind),
            reason=record.attention_reason or "",
            since=record.attention_flagged_at,
        )


class PaymentOrderOut(BaseModel):
    model_config = _API
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
    attention: AttentionOut | None = None


class PaymentOut(BaseModel):
    model_config = _API
    checkout_id: str
    status: PaymentStatus
    is_payment_done: bool
    payment_orders: list[PaymentOrderOut]


def payment_out(payment: PaymentRecord, orders: list[OrderRecord]) -> PaymentOut:
    """The checkout as the API answers it: the payment and its orders (read by the caller, in request order)."""
    return PaymentOut(
        checkout_id=payment.checkout_id,
        status=payment.status,
        is_payment_done=payment.is_payment_done,
        payment_orders=[o.to_api() for o in orders],
    )


class Balance(BaseModel):
    """A seller's balance in one currency, decimal strings in major units."""

    model_config = _API
    currency: str
    amount: str = Field(description="What the platform owes the seller: pending + available + in_transit.")
    pending: str = Field(
        description="Net credits of charges the PSP has not settled yet (its settlement file not reconciled)."
    )
    available: str = Field(
        description="Settled and not paid out: what a payout may take. Refunds, chargebacks and second chargebacks "
        "are taken from it, so it may be below zero; while it is, no payout starts."
    )
    in_transit: str = Field(description="In payouts the bank has not booked yet.")


class WalletOut(BaseModel):
    model_config = _API
    seller_account: str
    balances: list[Balance]


class CurrencyTotals(BaseModel):
    model_config = _API
    currency: str
    debits: str
    credits: str


class AccountBalance(BaseModel):
    """One of the platform's own ledger accounts, on its normal side (an asset or an expense: debits minus
    credits; a revenue: credits minus debits)."""

    model_config = _API
    account: str = Field(description="The account's name, <kind>:<owner>, e.g. commission_revenue:platform.")
    kind: str = Field(description="psp_receivable, bank, commission_revenue, psp_fees or dispute_losses.")
    currency: str
    balance: str


class TrialBalanceOut(BaseModel):
    model_config = _API
    currencies: list[CurrencyTotals]
    accounts: list[AccountBalance] = Field(
        default_factory=list,
        description="The platform's own accounts per currency: what the PSP holds for it, its commission revenue, "
        "the PSP's fees; its result is commission_revenue minus psp_fees minus dispute_losses.",
    )


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
    #: when it was last parked (an operator's resume tells "parked again" from "parked before it started")
    attention_flagged_at: str | None = None
    #: who may close the flag: ``REDRIVE`` (the workflow or a resume, once settled) or ``PERSON``
    #: (only ``payments attention resolve``); see :class:`payments.payin.status.AttentionKind`
    attention_kind: str | None = None
    #: the last closing of a flag: when, by whom (a person's identity; absent when a re-run settled
    #: it) and why
    attention_resolved_at: str | None = None
    attention_resolved_by: str | None = None
    attention_resolution: str | None = None
    #: money back (refunds reserved + chargebacks standing) when the order was last flagged for giving
    #: back more than was charged: what a person's resolution of that flag covers
    overpaid_flagged_minor: int | None = None
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
    #: the platform's commission, fixed when the payment was accepted (payments.accounts.commission):
    #: its rate and amount in minor units; the seller is credited the rest (:attr:`net`)
    commission_bps: int = 0
    commission_minor: int = 0
    created_at: str = ""
    updated_at: str = ""

    @property
    def money(self) -> Money:
        """What the order charges (``amount_minor`` in ``currency``)."""
        return Money(self.amount_minor, self.currency)

    @property
    def commission(self) -> Money:
        return Money(self.commission_minor, self.currency)

    @property
    def net(self) -> Money:
        """What the seller is credited for the charge: the charge minus the platform's commission."""
        return Money(self.amount_minor - self.commission_minor, self.currency)

    @property
    def refund_reserved(self) -> Money:
        """Refunds reserved on the order: pending and succeeded."""
        return Money(self.refund_reserved_minor, self.currency)

    @property
    def refunded(self) -> Money:
        return Money(self.refunded_minor, self.currency)

    @property
    def chargeback_net(self) -> Money:
        """Chargebacks booked net of their reversals."""
        return Money(self.chargeback_minor - self.chargeback_reversed_minor, self.currency)

    def to_api(self) -> PaymentOrderOut:
        """The API view: the fields it shares with the record, as stored, and the amounts formatted."""
        return PaymentOrderOut(
            **self.model_dump(include=PaymentOrderOut.model_fields.keys() & OrderRecord.model_fields.keys()),
            amount=self.money.format(),
            refunded_amount=self.refunded.format(),
            chargeback_amount=self.chargeback_net.format(),
            attention=AttentionOut.of(self),
        )

    def person_told_of_money_back(self, given_back_minor: int) -> bool:
        """A person knows that this order gave back ``given_back_minor`` (more than was charged): its
        flag that needs a person is open, or a person resolved one raised for at least that much (a
        re-run or a resume never closes such a flag; more money back raises it again)."""
        if AttentionKind.of(self.attention_kind) is not AttentionKind.PERSON:
            return False
        if self.needs_attention:
            return True
        return self.attention_resolved_by is not None and (self.overpaid_flagged_minor or 0) >= given_back_minor

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
