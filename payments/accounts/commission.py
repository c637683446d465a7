"""The platform's commission on a charge, and the share of it a refund gives back.

The rate is a stage setting in basis points (``payments_commission_bps``, variable ``PAYMENTS_COMMISSION_BPS``,
default 0) with a per-seller override (``payments_commission_overrides``, variable
``PAYMENTS_COMMISSION_OVERRIDES``, JSON ``{"seller_books": 250}``; each 0..10000). It is fixed once per
payment order, when the payment is accepted: the order stores its ``commission_bps`` and
``commission_minor``, and every later step (the wallet credit, the ledger transaction, refunds) reads
them from the order, never from the settings, so steps retried after a setting changed still agree.

Rounding: the commission is ``amount * bps / 10000`` rounded half to even to the currency's minor unit
(integer minor units: 2.5 cents -> 2, 3.5 cents -> 4). A refund gives back commission in proportion,
computed cumulatively: after refunds totalling ``r`` of a charge ``a`` with commission ``c``, the
commission given back is ``round_half_even(c * r / a)``; each refund gives back the difference from
before it. Successive partial refunds of the whole charge therefore give back exactly ``c``, whatever
their sizes: no rounding drift.
"""

from __future__ import annotations

from payments.kernel.config import settings
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money

BPS_DENOMINATOR = 10_000


def divide_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even, in integers (no float, no Decimal context)."""
    if denominator <= 0 or numerator < 0:
        raise InvariantViolation(f"cannot round {numerator}/{denominator}")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def rate_for(seller_account: str) -> int:
    """The commission in basis points for ``seller_account``: its override, else the stage's rate."""
    config = settings()
    return config.payments_commission_overrides.get(seller_account, config.payments_commission_bps)


def commission_of(amount: Money, bps: int) -> Money:
    """The commission of ``bps`` basis points on ``amount``, rounded half to even to the minor unit."""
    if not 0 <= bps <= BPS_DENOMINATOR:
        raise InvariantViolation(f"a commission is 0..10000 basis points, not {bps}")
    if amount.minor < 0:
        raise InvariantViolation(f"commission of a negative amount {amount}")
    return Money(divide_half_even(amount.minor * bps, BPS_DENOMINATOR), amount.currency)


def refund_share(charged: Money, commission: Money, refunded_before: Money, refund: Money) -> Money:
    """The commission a refund of ``refund`` gives back, when ``refunded_before`` was refunded already:
    the cumulative share after it minus the cumulative share before it (see the module doc)."""
    after = refunded_before + refund
    if not (charged.is_positive() and refunded_before.minor >= 0 and refund.is_positive()):
        raise InvariantViolation(f"refund of {refund} after {refunded_before} on a charge of {charged}")
    if commission.minor == 0:
        return Money.zero(charged.currency)

    def cumulative(refunded: Money) -> int:
        # refunds beyond the charge (only ever a claim a person handles) give back no more commission
        return divide_half_even(commission.minor * min(refunded.minor, charged.minor), charged.minor)

    return Money(cumulative(after) - cumulative(refunded_before), charged.currency)
