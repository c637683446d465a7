"""Executor: one PSP charge per payment order, whatever is retried (functions/executor/logic.py)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.executor.logic import execute_order
from payments.kernel.errors import PspOutcomeUnknown, PspUnavailable, StatusConflict
from payments.payin.models import PaymentMethod
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus
from payments.payin.tasks import ExecuteOrderTask, ExecutionResult
from payments.psp import Approved, ChargeOutcome, ChargeRequest, Declined
from payments.psp.simulator import SimulatedPsp
from tests.unit.conftest import Repos, store_checkout


class FakePsp:
    """A PSP that deduplicates on the idempotency key, counts calls, and fails on demand.

    ``behaviour``: "approve", "decline", "unavailable" (nothing charged), "lose_answer"
    (charges, then raises PspOutcomeUnknown as a lost answer would).
    """

    def __init__(self, behaviour: str = "approve"):
        self.behaviour = behaviour
        self.outcomes: dict[str, ChargeOutcome] = {}
        self.charge_calls: list[ChargeRequest] = []
        self.lookup_calls: list[str] = []
        self.captures = 0

    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        self.charge_calls.append(request)
        if request.idempotency_key in self.outcomes:
            return self.outcomes[request.idempotency_key]
        if self.behaviour == "unavailable":
            raise PspUnavailable("503 from the fake PSP")
        if self.behaviour == "decline":
            outcome: ChargeOutcome = Declined(reason="insufficient_funds")
        else:
            self.captures += 1
            outcome = Approved(psp_reference=f"psp_{self.captures}", charged_at="2026-11-30T10:00:00.000Z")
        self.outcomes[request.idempotency_key] = outcome
        if self.behaviour == "lose_answer":
            raise PspOutcomeUnknown("read timeout")
        return outcome

    def lookup(self, idempotency_key: str) -> ChargeOutcome | None:
        self.lookup_calls.append(idempotency_key)
        return self.outcomes.get(idempotency_key)


def task(payment_order_id: str = "po_1", checkout_id: str = "chk_1", token: str = "tok_visa") -> ExecuteOrderTask:
    return ExecuteOrderTask(
        checkout_id=checkout_id,
        payment_order_id=payment_order_id,
        payment_method=PaymentMethod(type="card", token=token),
    )


def _history(repo: PaymentsRepository, po: str = "po_1") -> list[str]:
    return [h["status"] for h in repo.get_order(po).status_history]


@pytest.fixture()
def one_order(repos: Repos) -> PaymentsRepository:
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    return repos.payments


# --- with a fake PSP ------------------------------------------------------------------------------------
def test_an_approved_charge_ends_success_with_the_psp_reference(one_order: PaymentsRepository) -> None:
    # Given a NOT_STARTED order and an approving PSP
    psp = FakePsp()
    # When the order is executed
    result = execute_order(task(), one_order, psp)
    # Then it is SUCCESS with the PSP's reference, charged once with the order id as idempotency key
    assert result == ExecutionResult(payment_order_id="po_1", status=OrderStatus.SUCCESS, psp_reference="psp_1")
    assert psp.charge_calls == [
        ChargeRequest(idempotency_key="po_1", amount_minor=1999, currency="USD", token="tok_visa")
    ]
    order = one_order.get_order("po_1")
    assert (order.status, order.charged_at) == (OrderStatus.SUCCESS, "2026-11-30T10:00:00.000Z")
    assert _history(one_order) == ["NOT_STARTED", "EXECUTING", "SUCCESS"]


def test_running_the_task_twice_charges_once(one_order: PaymentsRepository) -> None:
    # Given an order already executed successfully
    psp = FakePsp()
    first = execute_order(task(), one_order, psp)
    # When the same task is delivered again
    second = execute_order(task(), one_order, psp)
    # Then the second run reports the same result and calls the PSP not at all
    assert second == first
    assert len(psp.charge_calls) == 1 and psp.lookup_calls == [] and psp.captures == 1
    assert _history(one_order) == ["NOT_STARTED", "EXECUTING", "SUCCESS"]


def test_an_order_left_executing_after_a_charge_is_resolved_by_lookup_without_charging_again(
    one_order: PaymentsRepository,
) -> None:
    # Given a crash after the PSP charged: the PSP holds an approval for po_1, the order is still EXECUTING
    psp = FakePsp()
    psp.outcomes["po_1"] = Approved(psp_reference="psp_earlier", charged_at="2026-11-30T09:59:00.000Z")
    one_order.move_order("po_1", OrderStatus.EXECUTING)
    # When the task runs again
    result = execute_order(task(), one_order, psp)
    # Then the PSP is asked, not charged, and the order takes the earlier charge's reference
    assert psp.lookup_calls == ["po_1"]
    assert psp.charge_calls == []
    assert (result.status, result.psp_reference) == (OrderStatus.SUCCESS, "psp_earlier")
    assert one_order.get_order("po_1").charged_at == "2026-11-30T09:59:00.000Z"


def test_an_order_left_executing_that_the_psp_never_saw_is_charged_once(one_order: PaymentsRepository) -> None:
    # Given a crash before the PSP call: the order is EXECUTING, the PSP knows nothing
    psp = FakePsp()
    one_order.move_order("po_1", OrderStatus.EXECUTING)
    # When the task runs again
    result = execute_order(task(), one_order, psp)
    # Then the PSP is asked first, then charged exactly once
    assert psp.lookup_calls == ["po_1"] and len(psp.charge_calls) == 1
    assert result.status is OrderStatus.SUCCESS
    assert _history(one_order) == ["NOT_STARTED", "EXECUTING", "SUCCESS"]


def test_a_lost_answer_is_resolved_on_retry_with_one_capture(one_order: PaymentsRepository) -> None:
    # Given a PSP that charges but loses its answer
    psp = FakePsp("lose_answer")
    # When the task runs: the first attempt raises for the state machine to retry
    with pytest.raises(PspOutcomeUnknown):
        execute_order(task(), one_order, psp)
    assert one_order.get_order("po_1").status is OrderStatus.EXECUTING
    # and the retry runs
    result = execute_order(task(), one_order, psp)
    # Then the order is SUCCESS with the one capture the PSP made
    assert (result.status, result.psp_reference) == (OrderStatus.SUCCESS, "psp_1")
    assert psp.captures == 1 and len(psp.charge_calls) == 1


def test_a_decline_ends_failed_with_the_reason(one_order: PaymentsRepository) -> None:
    # Given a declining PSP
    psp = FakePsp("decline")
    # When executed
    result = execute_order(task(), one_order, psp)
    # Then the order is FAILED with the PSP's reason and no reference
    assert result == ExecutionResult(
        payment_order_id="po_1", status=OrderStatus.FAILED, failure_reason="insufficient_funds"
    )
    order = one_order.get_order("po_1")
    assert (order.status, order.failure_reason, order.psp_reference) == (OrderStatus.FAILED, "insufficient_funds", None)
    # and a repeat does not call the PSP again
    execute_order(task(), one_order, psp)
    assert len(psp.charge_calls) == 1


def test_psp_unavailable_propagates_and_leaves_the_order_executing(one_order: PaymentsRepository) -> None:
    # Given a PSP that is down
    psp = FakePsp("unavailable")
    # When executed / Then the transient error reaches the state machine (which retries it)
    with pytest.raises(PspUnavailable):
        execute_order(task(), one_order, psp)
    # and the order is EXECUTING, nothing captured
    assert one_order.get_order("po_1").status is OrderStatus.EXECUTING
    assert psp.captures == 0
    # When the PSP recovers and the retry runs / Then it succeeds with one capture
    psp.behaviour = "approve"
    assert execute_order(task(), one_order, psp).status is OrderStatus.SUCCESS
    assert psp.captures == 1


def test_a_task_naming_another_checkout_is_refused_without_calling_the_psp(one_order: PaymentsRepository) -> None:
    # Given an order of chk_1 / When a task for chk_other names it
    psp = FakePsp()
    with pytest.raises(StatusConflict):
        execute_order(task(checkout_id="chk_other"), one_order, psp)
    # Then nothing happens
    assert psp.charge_calls == [] and one_order.get_order("po_1").status is OrderStatus.NOT_STARTED


# --- with the simulated PSP ----------------------------------------------------------------------------
def _charges(ddb: Any) -> list[dict[str, Any]]:
    return [i for i in ddb.scan(TableName="psp-simulator")["Items"] if i["sk"]["S"] == "CHARGE"]


def test_simulated_timeout_is_unknown_first_and_success_on_retry_with_exactly_one_charge(
    repos: Repos, ddb: Any
) -> None:
    # Given an order paid with tok_pspTimeout (the first call charges but the answer is lost)
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")], token="tok_pspTimeout")
    psp = SimulatedPsp()
    # When the executor runs: the first attempt cannot know the outcome
    with pytest.raises(PspOutcomeUnknown):
        execute_order(task(token="tok_pspTimeout"), repos.payments, psp)
    assert repos.payments.get_order("po_1").status is OrderStatus.EXECUTING
    # and the state machine retries it
    result = execute_order(task(token="tok_pspTimeout"), repos.payments, psp)
    # Then the order is SUCCESS with the one charge the PSP holds
    charges = _charges(ddb)
    assert len(charges) == 1
    assert result.status is OrderStatus.SUCCESS
    assert result.psp_reference == charges[0]["psp_reference"]["S"]
    assert charges[0]["merchant_reference"]["S"] == "po_1" and charges[0]["amount_minor"]["N"] == "1999"


def test_simulated_unavailable_fails_twice_then_succeeds_with_one_charge(repos: Repos, ddb: Any) -> None:
    # Given an order paid with tok_pspUnavailable
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")], token="tok_pspUnavailable")
    psp = SimulatedPsp()
    # When the executor runs three times (the state machine's retries)
    for _ in range(2):
        with pytest.raises(PspUnavailable):
            execute_order(task(token="tok_pspUnavailable"), repos.payments, psp)
        assert repos.payments.get_order("po_1").status is OrderStatus.EXECUTING
    result = execute_order(task(token="tok_pspUnavailable"), repos.payments, psp)
    # Then the third succeeds, with exactly one charge
    assert result.status is OrderStatus.SUCCESS
    assert len(_charges(ddb)) == 1
    assert [h["status"] for h in repos.payments.get_order("po_1").status_history] == [
        "NOT_STARTED",
        "EXECUTING",
        "SUCCESS",
    ]


@pytest.mark.parametrize(
    ("token", "reason"), [("tok_chargeDeclined", "card_declined"), ("tok_insufficientFunds", "insufficient_funds")]
)
def test_simulated_declines_end_failed_without_a_charge(repos: Repos, ddb: Any, token: str, reason: str) -> None:
    # Given an order paid with a declining test token
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")], token=token)
    # When executed (twice, as a duplicate delivery would)
    result = execute_order(task(token=token), repos.payments, SimulatedPsp())
    again = execute_order(task(token=token), repos.payments, SimulatedPsp())
    # Then the order is FAILED with the token's reason, and the PSP holds no charge
    assert result == again == ExecutionResult(payment_order_id="po_1", status=OrderStatus.FAILED, failure_reason=reason)
    assert _charges(ddb) == []


def test_simulated_approval_charges_once_per_order_even_when_called_twice(repos: Repos, ddb: Any) -> None:
    # Given two orders paid with tok_visa
    store_checkout(repos.payments, "chk_1", [("po_1", "a", 1999, "USD"), ("po_2", "b", 500, "USD")])
    psp = SimulatedPsp()
    # When each is executed twice
    results = [execute_order(task(po), repos.payments, psp) for po in ("po_1", "po_2", "po_1", "po_2")]
    # Then two charges exist, one per order, matching the orders' references
    charges = sorted((c["merchant_reference"]["S"], c["psp_reference"]["S"]) for c in _charges(ddb))
    assert charges == sorted((r.payment_order_id, r.psp_reference) for r in results[:2])
    assert results[2:] == results[:2]
