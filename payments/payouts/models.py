"""Payouts: the body of ``POST /v1/payouts``, the stored payout, the resource ``GET /v1/payouts/{payout_id}``.

A payout's id is the SEPA credit transfer's ``EndToEndId`` (``Max35Text``): the identifier rule, at most
35 characters. Its status moves forward only (:data:`payments.payouts.outcomes.NEXT`); each status it
reaches is kept in its ``history`` with when and what caused it (the API, the run, a bank file's line).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from payments.kernel.ids import MAX_PAYOUT_ID_LENGTH, PAYOUT_ID_PATTERN, PAYOUT_ID_RULE
from payments.kernel.money import Money
from payments.payin.models import (
    NO_CARD_NUMBER,
    Identifier,
    _currency_amount_pairs,
    active_currency,
    amount_field,
    amount_fits_currency,
    currency_field,
)
from payments.payouts.outcomes import PayoutStatus

#: who created a payout: a client (``POST /v1/payouts``) or the nightly run
Origin = Literal["api", "scheduled"]


class PayoutRequest(BaseModel):
    """Body of ``POST /v1/payouts``; ``amount`` omitted: all that is available."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_currency_amount_pairs)
    payout_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_PAYOUT_ID_LENGTH,
            pattern=PAYOUT_ID_PATTERN,
            description=(
                "The payout's id, chosen by the client: unique across the system (one already used by another payout "
                "is answered 409 resource-conflict); the bank transfer's EndToEndId, which the seller's statement "
                f"shows. {PAYOUT_ID_RULE[0].upper() + PAYOUT_ID_RULE[1:]}."
            )
            + NO_CARD_NUMBER,
        ),
    ]
    seller_account: Identifier
    currency: Annotated[
        str,
        currency_field("An active ISO 4217 currency code: the balance paid out (only EUR has a payout rail)."),
        AfterValidator(active_currency),
    ]
    amount: (
        Annotated[
            str,
            amount_field(
                'Decimal string in major units, e.g. "14.99": greater than zero, at most as many fraction digits as the '
                "currency's ISO 4217 minor units, at most what is available (else 422 payout-exceeds-available). "
                "Omitted: all that is available. Never a JSON number."
            ),
            AfterValidator(amount_fits_currency),
        ]
        | None
    ) = None


class HistoryEntry(BaseModel):
    status: PayoutStatus
    at: str
    #: what moved it: ``api``, ``run:<day>``, or the bank file and line (``incoming/bank/...#L12``)
    source: str


class PayoutRecord(BaseModel):
    """The stored payout (item ``PAYOUT#<payout_id>`` / ``PAYOUT`` of the payouts table)."""

    payout_id: str = Field(max_length=MAX_PAYOUT_ID_LENGTH)
    seller_account: str
    currency: str
    amount_minor: int = Field(gt=0)
    status: PayoutStatus = PayoutStatus.PENDING
    origin: Origin = "api"
    #: the run that claimed it for its file (``<day>#<currency>#<n>``; payments.payouts.run)
    run_id: str | None = None
    #: the pain.001 file (its MsgId) that carried the payout to the bank
    msg_id: str | None = None
    failure_reason: str | None = None
    return_reason: str | None = None
    #: the day the bank booked it (camt.053/054), once PAID
    booked_on: str | None = None
    #: the keyed hash of the IBAN it was sent to (the payout account's ``iban_mac``): a return flags that account
    iban_mac: str | None = None
    idempotency_key: str | None = None
    request_fingerprint: str
    created_at: str
    updated_at: str
    history: list[HistoryEntry] = Field(default_factory=list)

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)

    def to_api(self) -> PayoutOut:
        return PayoutOut(
            payout_id=self.payout_id,
            seller_account=self.seller_account,
            amount=self.money.format(),
            currency=self.currency,
            status=self.status,
            failure_reason=self.failure_reason,
            return_reason=self.return_reason,
            created_at=self.created_at,
        )


class PayoutOut(BaseModel):
    """The payout resource."""

    payout_id: str
    seller_account: str
    amount: str = Field(description='The amount paid out, a decimal string in major units ("14.99").')
    currency: str
    status: PayoutStatus = Field(
        description="PENDING (reserved, not yet in a file) -> SUBMITTED (in a file sent to the bank) -> PAID (the bank "
        "booked it) | FAILED (the bank rejected it: its money is back in available) ; PAID -> RETURNED (sent back by "
        "the seller's bank: its money is back in available, the payout account marked invalid). Forward only."
    )
    failure_reason: str | None = Field(default=None, description="Why the bank rejected it (an ISO 20022 reason code).")
    return_reason: str | None = Field(default=None, description="Why the seller's bank sent it back (ISO reason code).")
    created_at: str
