"""What the refund flow needs from a PSP (issue 18): the simulator and the Adyen adapter implement it.

A refund carries the idempotency key ``refund_id``: the PSP holds at most one refund per key.
A PSP either decides the refund in its answer (the simulator: ``succeeded`` True or False) or
only receives it (Adyen's ``/payments/{pspReference}/refunds`` answers ``received``): then
``succeeded`` is None, the refund stays PENDING, and the PSP's REFUND notification decides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from payments.kernel.money import Money


@dataclass(frozen=True)
class RefundCall:
    idempotency_key: str  # our refund_id; the PSP's merchant reference of the refund
    payment_order_id: str
    original_psp_reference: str  # the charge's psp_reference
    amount_minor: int
    currency: str
    reason: str | None = None  # the client's reason (Adyen: mapped to merchantRefundReason)

    @property
    def money(self) -> Money:
        """What to refund, as Money."""
        return Money(self.amount_minor, self.currency)


@dataclass(frozen=True)
class RefundAnswer:
    #: True/False: decided by the answer; None: received, the REFUND notification decides
    succeeded: bool | None
    psp_reference: str | None  # the refund's own reference at the PSP
    reason: str | None = None

    @property
    def pending(self) -> bool:
        return self.succeeded is None


@runtime_checkable
class RefundingPsp(Protocol):
    def refund(self, call: RefundCall) -> RefundAnswer:
        """Refund (part of) a charge, deduplicated by ``call.idempotency_key``.

        Raises :class:`payments.kernel.errors.PspUnavailable` / :class:`payments.kernel.errors.PspOutcomeUnknown`
        like a charge: the retry repeats the same key, and the PSP refunds a key once."""
        ...


def refunding(psp: object) -> RefundingPsp:
    """``psp`` (the stage's PSP) as one that refunds; one that does not is a configuration error."""
    if not isinstance(psp, RefundingPsp):
        raise TypeError(f"the stage's PSP ({type(psp).__name__}) does not refund")
    return psp
