"""Accepting a payout (``POST /v1/payouts``): can it go out at all, how much, then the reservation.

Runs under Powertools idempotency in the API (the ``Idempotency-Key``); below it the reservation is itself
idempotent (the payout's conditional put, the request's fingerprint compared on a collision), so a retry
after a crash anywhere answers the payout stored the first time, reserved once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from payments.kernel import clock
from payments.kernel.config import settings
from payments.kernel.money import Money
from payments.payouts.accounts import PayoutAccountUnusable
from payments.payouts.bank.pain001 import Debtor, rail_for
from payments.payouts.models import HistoryEntry, Origin, PayoutRecord, PayoutRequest
from payments.payouts.outcomes import PayoutStatus
from payments.payouts.repository import PayoutExceedsAvailable, PayoutNotPossible, PayoutsRepository, Reserved


def fingerprint(idempotency_key: str | None, request: dict[str, Any]) -> str:
    canonical = json.dumps({"key": idempotency_key, "request": request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_possible(seller_account: str, currency: str, payouts: PayoutsRepository) -> None:
    """:class:`PayoutNotPossible` when no payout can go out: no rail for the currency, or no usable payout
    account (none, or marked invalid). The account is checked without decrypting its IBAN."""
    if rail_for(currency, Debtor.from_settings(settings())) is None:
        raise PayoutNotPossible(f"no payout rail for {currency}", "currency")
    try:
        payouts.accounts.usable(seller_account, currency)
    except PayoutAccountUnusable as unusable:
        raise PayoutNotPossible(unusable.reason, "seller_account") from None


def new_payout(
    payout_id: str,
    seller_account: str,
    amount: Money,
    *,
    origin: Origin,
    idempotency_key: str | None,
    request_fingerprint: str,
    source: str,
) -> PayoutRecord:
    now = clock.now_iso()
    return PayoutRecord(
        payout_id=payout_id,
        seller_account=seller_account,
        currency=amount.currency,
        amount_minor=amount.minor,
        status=PayoutStatus.PENDING,
        origin=origin,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        created_at=now,
        updated_at=now,
        history=[HistoryEntry(status=PayoutStatus.PENDING, at=now, source=source)],
    )


def accept_payout(idempotency_key: str, request: PayoutRequest, payouts: PayoutsRepository) -> dict[str, Any]:
    """Reserve the payout; the payout resource (the stored one on a retry)."""
    print_ = fingerprint(idempotency_key, request.model_dump(mode="json"))
    existing = payouts.find(request.payout_id)
    if existing is not None and existing.request_fingerprint == print_:
        return existing.to_api().model_dump(mode="json")
    check_possible(request.seller_account, request.currency, payouts)
    if request.amount is not None:
        amount = Money.parse(request.amount, request.currency)
    else:
        amount = payouts.available(request.seller_account, request.currency)
        if not amount.is_positive():
            raise PayoutExceedsAvailable(request.seller_account, amount)
    record = new_payout(
        request.payout_id,
        request.seller_account,
        amount,
        origin="api",
        idempotency_key=idempotency_key,
        request_fingerprint=print_,
        source="api",
    )
    reserved: Reserved = payouts.reserve(record)
    return reserved.payout.to_api().model_dump(mode="json")
