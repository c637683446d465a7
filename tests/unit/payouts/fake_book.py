"""An in-memory payouts' book for the bank reconciliation's tests: the PayoutOutcomes protocol, faithfully.

Each payout has a status, an amount and the sources that moved it; an outcome moves the status only along
``NEXT`` and answers what the protocol says: APPLIED, ALREADY (the payout reached this outcome before),
ALREADY also for an outcome reached before a later one (a booking told again after its return), CONFLICT (the status cannot follow), UNKNOWN, AMOUNT_DIFFERS (amount or currency not the payout's)."""

from __future__ import annotations

from dataclasses import dataclass, field

from payments.kernel.money import Money
from payments.payouts.outcomes import NEXT, Applied, Outcome, PayoutStatus


@dataclass
class FakePayout:
    amount: Money
    status: PayoutStatus = PayoutStatus.SUBMITTED
    moves: list[tuple[PayoutStatus, str]] = field(default_factory=list)
    reason: str = ""


class FakeBook:
    def __init__(self) -> None:
        self.payouts: dict[str, FakePayout] = {}
        self.calls: list[tuple[str, str]] = []

    def add(self, payout_id: str, minor: int, status: PayoutStatus = PayoutStatus.SUBMITTED, ccy: str = "EUR") -> None:
        self.payouts[payout_id] = FakePayout(Money(minor, ccy), status)

    def status(self, payout_id: str) -> PayoutStatus:
        return self.payouts[payout_id].status

    def _move(self, payout_id: str, to: PayoutStatus, source: str, amount: Money | None, reason: str = "") -> Outcome:
        self.calls.append((to.value, payout_id))
        payout = self.payouts.get(payout_id)
        if payout is None:
            return Outcome(Applied.UNKNOWN, payout_id, None)
        if payout.status is to or any(moved is to for moved, _ in payout.moves):
            return Outcome(Applied.ALREADY, payout_id, payout.status)
        if amount is not None and amount != payout.amount:
            return Outcome(Applied.AMOUNT_DIFFERS, payout_id, payout.status, f"the payout is {payout.amount}")
        if to not in NEXT[payout.status]:
            return Outcome(Applied.CONFLICT, payout_id, payout.status)
        payout.status, payout.reason = to, reason
        payout.moves.append((to, source))
        return Outcome(Applied.APPLIED, payout_id, to)

    def mark_failed(self, payout_id: str, *, reason: str, source: str) -> Outcome:
        return self._move(payout_id, PayoutStatus.FAILED, source, None, reason)

    def mark_paid(self, payout_id: str, *, amount: Money, booked_on: str, source: str) -> Outcome:
        return self._move(payout_id, PayoutStatus.PAID, source, amount)

    def mark_returned(self, payout_id: str, *, amount: Money, reason: str, source: str) -> Outcome:
        return self._move(payout_id, PayoutStatus.RETURNED, source, amount, reason)
