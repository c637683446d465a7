"""Statuses only move forward (payments/payin/status.py, invariant 5)."""

from __future__ import annotations

import itertools

import pytest

from payments.payin.status import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    order_may_move,
    payment_may_move,
    payment_outcome,
)

S, F, E, N = OrderStatus.SUCCESS, OrderStatus.FAILED, OrderStatus.EXECUTING, OrderStatus.NOT_STARTED


def test_order_transitions_are_exactly_the_forward_moves() -> None:
    # Given every pair of order statuses
    allowed = {(a, b) for a, b in itertools.product(OrderStatus, OrderStatus) if order_may_move(a, b)}
    # Then the allowed moves are exactly NOT_STARTED -> EXECUTING -> SUCCESS | FAILED (and the shortcut to a final status)
    assert allowed == {(N, E), (N, S), (N, F), (E, S), (E, F)}


@pytest.mark.parametrize("final", [S, F])
def test_no_order_transition_leaves_a_final_status(final: OrderStatus) -> None:
    # Given a final order status / When any move out of it is asked / Then none is allowed
    assert final.is_final
    assert [t for t in OrderStatus if order_may_move(final, t)] == []


def test_no_order_transition_returns_to_not_started() -> None:
    # Given the transition table / Then NOT_STARTED can be entered from nothing
    assert ORDER_TRANSITIONS[N] == ()
    assert not any(order_may_move(s, N) for s in OrderStatus)


def test_no_status_can_be_re_entered_by_the_table_itself() -> None:
    # Given the tables / Then no status lists itself as a source (a repeat is handled as a no-op elsewhere)
    assert all(s not in ORDER_TRANSITIONS[s] for s in OrderStatus)
    assert all(s not in PAYMENT_TRANSITIONS[s] for s in PaymentStatus)


def test_payment_transitions_are_forward_only() -> None:
    # Given every pair of payment statuses
    allowed = {(a, b) for a, b in itertools.product(PaymentStatus, PaymentStatus) if payment_may_move(a, b)}
    # Then only PENDING -> PROCESSING and PENDING|PROCESSING -> a final status are allowed
    P, R = PaymentStatus.PENDING, PaymentStatus.PROCESSING
    finals = [PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_FAILED, PaymentStatus.FAILED]
    assert allowed == {(P, R)} | {(src, f) for src in (P, R) for f in finals}
    assert all(f.is_final for f in finals) and not P.is_final and not R.is_final


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([S], PaymentStatus.SUCCEEDED),
        ([S, S, S], PaymentStatus.SUCCEEDED),
        ([F], PaymentStatus.FAILED),
        ([F, F], PaymentStatus.FAILED),
        ([S, F], PaymentStatus.PARTIALLY_FAILED),
        ([F, S, S], PaymentStatus.PARTIALLY_FAILED),
        ([S, E], PaymentStatus.PROCESSING),
        ([F, N], PaymentStatus.PROCESSING),
        ([N], PaymentStatus.PROCESSING),
        ([E, E], PaymentStatus.PROCESSING),
    ],
)
def test_payment_outcome_follows_its_orders(statuses: list[OrderStatus], expected: PaymentStatus) -> None:
    # Given the statuses of a payment's orders / When the payment outcome is derived / Then it is the expected one
    assert payment_outcome(statuses) is expected


def test_payment_outcome_refuses_a_payment_without_orders() -> None:
    # Given no orders / When the outcome is derived / Then it is an error, not a silent SUCCEEDED
    with pytest.raises(ValueError):
        payment_outcome([])
