"""What the bank says about a payout, as the payouts' book must take it: the seam between the bank's
files (read and matched by the bank reconciliation) and the payouts (their statuses and their money).

A payout's status moves forward only: ``PENDING`` -> ``SUBMITTED`` (in a file sent to the bank) ->
``PAID`` (the bank's statement booked it) | ``FAILED`` (the bank rejected it) ; ``PAID`` -> ``RETURNED``
(the seller's bank sent it back). Each outcome is applied by one DynamoDB transaction (the status
change, conditional on the status it leaves, with its ledger transaction and its balance move): told
twice, it is applied once and the second telling answers :attr:`Applied.ALREADY`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from payments.kernel.money import Money


class PayoutStatus(StrEnum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    PAID = "PAID"
    FAILED = "FAILED"
    RETURNED = "RETURNED"


#: where each status may go next (forward only; FAILED and RETURNED are final)
NEXT: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    PayoutStatus.PENDING: frozenset({PayoutStatus.SUBMITTED, PayoutStatus.FAILED}),
    PayoutStatus.SUBMITTED: frozenset({PayoutStatus.PAID, PayoutStatus.FAILED}),
    PayoutStatus.PAID: frozenset({PayoutStatus.RETURNED}),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.RETURNED: frozenset(),
}


class Applied(StrEnum):
    """What telling the book an outcome did."""

    APPLIED = "APPLIED"  # the status moved now, with its money
    ALREADY = "ALREADY"  # the payout had reached this outcome before: nothing changed (a repeated file)
    CONFLICT = "CONFLICT"  # the payout is in a status this outcome cannot follow (e.g. PAID after FAILED)
    UNKNOWN = "UNKNOWN"  # no payout has this id
    AMOUNT_DIFFERS = "AMOUNT_DIFFERS"  # the bank's amount or currency is not the payout's: nothing applied


@dataclass(frozen=True)
class Outcome:
    applied: Applied
    payout_id: str
    status: PayoutStatus | None  # the payout's status after the call (None: unknown payout)
    detail: str = ""


class PayoutOutcomes(Protocol):
    """The payouts' side of the bank reconciliation (implemented by the payouts repository).

    ``source`` names the bank file and its line (``incoming/bank/pain002/<key>#L<line>``): stored on the
    payout with the status it caused, for the operator and the audit."""

    def mark_failed(self, payout_id: str, *, reason: str, source: str) -> Outcome:
        """RJCT in a pain.002: SUBMITTED (or PENDING) -> FAILED, its amount back from in transit to available."""
        ...

    def mark_paid(self, payout_id: str, *, amount: Money, booked_on: str, source: str) -> Outcome:
        """A booked debit with this EndToEndId in a camt.053/054: SUBMITTED -> PAID, in transit -> bank."""
        ...

    def mark_returned(self, payout_id: str, *, amount: Money, reason: str, source: str) -> Outcome:
        """A credit with RtrInf for this EndToEndId: PAID -> RETURNED, bank -> available, the payout account
        marked invalid. A return that arrives before the booking it returns is a CONFLICT (not applied: the
        reconciler reports it, and a later file that books the payout lets the return apply)."""
        ...
