"""What the refund flow needs from a PSP (the simulator implements it; issue 18).

A refund carries the idempotency key ``refund_id``: the PSP holds at most one refund per key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RefundCall:
    idempotency_key: str  # our refund_id; the PSP's merchant reference of the refund
    payment_order_id: str
    original_psp_reference: str  # the charge's psp_reference
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class RefundAnswer:
    succeeded: bool
    psp_reference: str | None  # the refund's own reference at the PSP
    reason: str | None = None


class RefundingPsp(Protocol):
    def refund(self, call: RefundCall) -> RefundAnswer:
        """Refund (part of) a charge, deduplicated by ``call.idempotency_key``.

        Raises :class:`payments.errors.PspUnavailable` / :class:`payments.errors.PspOutcomeUnknown`
        like a charge: the retry repeats the same key, and the PSP refunds a key once."""
        ...
