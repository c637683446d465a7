"""finalize_payment: payment status and is_payment_done from the stored orders (functions/payment/logic.py)."""

from __future__ import annotations

import pytest

from functions.ledger.logic import book_payin
from functions.payment.logic import finalize_payment
from functions.wallet.logic import credit_seller
from payments.ops.invariants import check
from payments.payin.status import OrderStatus, PaymentStatus
from payments.payin.tasks import FinalizePaymentTask, OrderResult
from tests.unit.conftest import Repos, store_checkout, succeed


@pytest.fixture()
def two_orders(repos: Repos) -> Repos:
    store_checkout(
        repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD"), ("po_2", "seller_toys", 500, "USD")]
    )
    repos.payments.move_payment("chk_1", PaymentStatus.PROCESSING)
    return repos


def _settle(repos: Repos, po: str) -> None:
    succeed(repos.payments, po)
    credit_seller(po, repos.payments, repos.wallets)
    book_payin(po, repos.payments, repos.ledger)


def _task(*results: OrderResult) -> FinalizePaymentTask:
    return FinalizePaymentTask(action="finalize_payment", checkout_id="chk_1", order_results=list(results))


def test_all_orders_settled_make_the_payment_succeeded_and_done(two_orders: Repos) -> None:
    # Given two orders charged, credited and booked
    _settle(two_orders, "po_1")
    _settle(two_orders, "po_2")
    # When the payment is finalized
    answer = finalize_payment(
        _task(
            OrderResult(payment_order_id="po_1", outcome="SUCCESS"),
            OrderResult(payment_order_id="po_2", outcome="SUCCESS"),
        ),
        two_orders.payments,
    )
    # Then it is SUCCEEDED and done
    assert answer == {"checkout_id": "chk_1", "status": "SUCCEEDED", "is_payment_done": True}
    payment = two_orders.payments.get("chk_1")
    assert (payment.status, payment.is_payment_done) == (PaymentStatus.SUCCEEDED, True)
    assert payment.finalized_at is not None
    assert check(two_orders.payments, two_orders.wallets, two_orders.ledger, []).violations == []


def test_a_success_and_a_decline_make_the_payment_partially_failed_and_done(two_orders: Repos) -> None:
    # Given one settled order and one declined
    _settle(two_orders, "po_1")
    two_orders.payments.move_order("po_2", OrderStatus.FAILED, failure_reason="card_declined")
    # When finalized (twice: a retried step changes nothing)
    task = _task(
        OrderResult(payment_order_id="po_1", outcome="SUCCESS"), OrderResult(payment_order_id="po_2", outcome="FAILED")
    )
    first = finalize_payment(task, two_orders.payments)
    second = finalize_payment(task, two_orders.payments)
    # Then it is PARTIALLY_FAILED and done
    assert first == second == {"checkout_id": "chk_1", "status": "PARTIALLY_FAILED", "is_payment_done": True}
    assert two_orders.payments.get("chk_1").status is PaymentStatus.PARTIALLY_FAILED


def test_all_declined_make_the_payment_failed_and_done(two_orders: Repos) -> None:
    for po in ("po_1", "po_2"):
        two_orders.payments.move_order(po, OrderStatus.FAILED, failure_reason="card_declined")
    answer = finalize_payment(
        _task(
            OrderResult(payment_order_id="po_1", outcome="FAILED"),
            OrderResult(payment_order_id="po_2", outcome="FAILED"),
        ),
        two_orders.payments,
    )
    assert answer == {"checkout_id": "chk_1", "status": "FAILED", "is_payment_done": True}
    assert two_orders.payments.get("chk_1").status is PaymentStatus.FAILED


def test_an_unresolved_execution_is_flagged_and_the_payment_stays_processing_not_done(two_orders: Repos) -> None:
    # Given po_1 settled and po_2 stuck EXECUTING after every retry of an unknown PSP outcome
    _settle(two_orders, "po_1")
    two_orders.payments.move_order("po_2", OrderStatus.EXECUTING)
    results = (
        OrderResult(payment_order_id="po_1", outcome="SUCCESS"),
        OrderResult(
            payment_order_id="po_2",
            outcome="NEEDS_ATTENTION",
            step="execute",
            error={"Error": "PspOutcomeUnknown", "Cause": "read timeout"},
        ),
    )
    # When the payment is finalized
    answer = finalize_payment(_task(*results), two_orders.payments)
    # Then po_2 is flagged with the step and error, and the payment stays PROCESSING and not done
    assert answer == {"checkout_id": "chk_1", "status": "PROCESSING", "is_payment_done": False}
    flagged = two_orders.payments.get_order("po_2")
    assert (flagged.needs_attention, flagged.attention_reason) == (
        True,
        "execute step: PspOutcomeUnknown: read timeout",
    )
    assert two_orders.payments.get_order("po_1").needs_attention is False
    payment = two_orders.payments.get("chk_1")
    assert (payment.status, payment.is_payment_done, payment.finalized_at) == (PaymentStatus.PROCESSING, False, None)
    # and the checker accepts it as an explicit NEEDS_ATTENTION (invariant 6)
    report = check(two_orders.payments, two_orders.wallets, two_orders.ledger, [])
    assert report.violations == [] and report.needs_attention == ["po_2"]


def test_a_parked_wallet_step_leaves_the_payment_not_done(two_orders: Repos) -> None:
    # Given po_1 settled, po_2 charged (SUCCESS) but its wallet credit kept failing
    _settle(two_orders, "po_1")
    succeed(two_orders.payments, "po_2")
    results = (
        OrderResult(payment_order_id="po_1", outcome="SUCCESS"),
        OrderResult(
            payment_order_id="po_2",
            outcome="NEEDS_ATTENTION",
            step="wallet",
            error={"Error": "StoreUnavailable", "Cause": "x" * 2000},
        ),
    )
    # When finalized
    answer = finalize_payment(_task(*results), two_orders.payments)
    # Then po_2 is flagged (the cause truncated to 500 characters) and the payment is not done
    assert answer["is_payment_done"] is False
    assert two_orders.payments.get("chk_1").is_payment_done is False
    flagged = two_orders.payments.get_order("po_2")
    assert flagged.needs_attention is True
    assert flagged.attention_reason == "wallet step: StoreUnavailable: " + "x" * 500


def test_a_needs_attention_result_without_details_still_flags_the_order(two_orders: Repos) -> None:
    two_orders.payments.move_order("po_1", OrderStatus.EXECUTING)
    two_orders.payments.move_order("po_2", OrderStatus.FAILED, failure_reason="card_declined")
    finalize_payment(_task(OrderResult(payment_order_id="po_1", outcome="NEEDS_ATTENTION")), two_orders.payments)
    assert two_orders.payments.get_order("po_1").attention_reason == "unknown step: error: "
    assert two_orders.payments.get("chk_1").status is PaymentStatus.PROCESSING
