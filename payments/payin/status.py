"""Forward-only status machines (invariant 5).

``NOT_STARTED -> EXECUTING -> SUCCESS | FAILED`` for payment orders and
``PENDING -> PROCESSING -> SUCCEEDED | PARTIALLY_FAILED | FAILED`` for payments.
A terminal status never changes. The repositories turn these tables into
DynamoDB condition expressions, so the rule holds under concurrency too.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    EXECUTING = "EXECUTING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.SUCCESS, OrderStatus.FAILED)


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    PARTIALLY_FAILED = "PARTIALLY_FAILED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_FAILED, PaymentStatus.FAILED)


class AttentionKind(StrEnum):
    """Why an order or a refund is parked ``NEEDS_ATTENTION``, which says who may close the flag.

    * ``REDRIVE``: a step ran out of retries (the store, the PSP unreachable, the workflow
      unfinished after the recovery's re-drives). Re-running the idempotent workflow settles it;
      the workflow (``FinalizePayment``) and ``payments resume`` clear the flag once the order is
      settled.
    * ``PERSON``: a decision only a person can take (money to claim back after a chargeback on a
      refunded order, a refund the scheme sent back, a request the PSP or our own checks refused).
      Nothing clears it by itself; ``payments attention resolve ID --note TEXT`` closes it, recording
      who, when and why. A flag stored without a kind counts as ``PERSON``.
    """

    REDRIVE = "REDRIVE"
    PERSON = "PERSON"

    @classmethod
    def of(cls, stored: str | None) -> AttentionKind:
        """The kind of a stored flag (none stored: ``PERSON``, the kind nothing clears by itself)."""
        return cls.REDRIVE if stored == cls.REDRIVE.value else cls.PERSON


#: status -> the statuses it may be entered from
ORDER_TRANSITIONS: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    OrderStatus.NOT_STARTED: (),
    OrderStatus.EXECUTING: (OrderStatus.NOT_STARTED,),
    OrderStatus.SUCCESS: (OrderStatus.NOT_STARTED, OrderStatus.EXECUTING),
    OrderStatus.FAILED: (OrderStatus.NOT_STARTED, OrderStatus.EXECUTING),
}

PAYMENT_TRANSITIONS: dict[PaymentStatus, tuple[PaymentStatus, ...]] = {
    PaymentStatus.PENDING: (),
    PaymentStatus.PROCESSING: (PaymentStatus.PENDING,),
    PaymentStatus.SUCCEEDED: (PaymentStatus.PENDING, PaymentStatus.PROCESSING),
    PaymentStatus.PARTIALLY_FAILED: (PaymentStatus.PENDING, PaymentStatus.PROCESSING),
    PaymentStatus.FAILED: (PaymentStatus.PENDING, PaymentStatus.PROCESSING),
}


def order_may_move(current: OrderStatus, target: OrderStatus) -> bool:
    return current in ORDER_TRANSITIONS[target]


def payment_may_move(current: PaymentStatus, target: PaymentStatus) -> bool:
    return current in PAYMENT_TRANSITIONS[target]


def payment_outcome(order_statuses: list[OrderStatus]) -> PaymentStatus:
    """The payment status implied by its orders' statuses."""
    if not order_statuses:
        raise ValueError("a payment has at least one order")
    if not all(s.is_final for s in order_statuses):
        return PaymentStatus.PROCESSING
    succeeded = sum(1 for s in order_statuses if s is OrderStatus.SUCCESS)
    if succeeded == len(order_statuses):
        return PaymentStatus.SUCCEEDED
    if succeeded == 0:
        return PaymentStatus.FAILED
    return PaymentStatus.PARTIALLY_FAILED
