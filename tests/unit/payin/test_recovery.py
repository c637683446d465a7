"""Automatic recovery (payments/payin/recovery.py): what is unfinished past its deadline is re-driven,
a bounded number of times, through the index (never a Scan), then parked NEEDS_ATTENTION."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions.ledger.logic import book_payin
from functions.payment.logic import finalize_payment
from functions.wallet.logic import credit_seller
from payments.kernel import aws, clock
from payments.kernel.config import reset_settings, settings
from payments.payin import recovery
from payments.payin.repository import payment_key
from payments.payin.status import PaymentStatus
from payments.payin.tasks import FinalizePaymentTask, OrderResult
from payments.refunds import logic as refund_logic
from payments.refunds.models import RefundRequest, RefundStatus
from payments.refunds.repository import RefundsRepository, refund_key
from tests.unit.conftest import Repos, store_checkout, succeed
from tests.unit.refunds.test_refund_redrive import (  # noqa: F401 - refund_machine is a fixture
    REFUND_MACHINE,
    fail_start_once,
    refund_executions,
    refund_machine,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:payments-payment"


@pytest.fixture()
def machine(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A state machine in moto (executions are recorded, not run) and its ARN in the settings."""
    monkeypatch.setenv("STATE_MACHINE_ARN", MACHINE)
    monkeypatch.setenv("RECOVERY_MAX_ATTEMPTS", "2")
    reset_settings()
    sfn = aws.client("stepfunctions")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    sfn.create_state_machine(
        name="payments-payment",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/r",
        type="EXPRESS",
    )
    yield sfn
    reset_settings()


@pytest.fixture()
def later(monkeypatch: pytest.MonkeyPatch):
    """Move the clock forward by ``seconds`` (every module reads it through payments.kernel.clock)."""
    real = clock.now

    def advance(seconds: float) -> None:
        shifted = real() + timedelta(seconds=seconds)
        monkeypatch.setattr(clock, "now", lambda: shifted)

    return advance


@pytest.fixture()
def no_scan(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every DynamoDB operation the recovery makes (a Scan fails the test)."""
    seen: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        seen.append(model.name)
        assert model.name != "Scan", "the recovery must find payments through its index, never a Scan"

    repos.payments.ddb.meta.events.register("before-parameter-build.dynamodb", hook, unique_id="recovery-no-scan")
    yield seen
    repos.payments.ddb.meta.events.unregister("before-parameter-build.dynamodb", unique_id="recovery-no-scan")


def executions(sfn: Any) -> list[str]:
    return sorted(e["name"] for e in sfn.list_executions(stateMachineArn=MACHINE)["executions"])


def test_a_payment_never_started_is_re_driven_once_due_and_not_before(
    repos: Repos, machine: Any, later: Any, no_scan: list[str]
) -> None:
    # Given a stored checkout whose workflow never started (the payment function crashed after storing)
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    # When the recovery runs before the deadline
    early = recovery.run(repos.payments)
    # Then nothing is due
    assert early.examined == 0 and executions(machine) == []
    # When it runs after the deadline
    later(settings().recovery_delay_seconds + 1)
    run = recovery.run(repos.payments)
    # Then the checkout is re-driven with the input of a first start, under a re-drive name
    assert run.redriven == ["chk_1"] and executions(machine) == ["chk_1-redrive-1"]
    (listed,) = machine.list_executions(stateMachineArn=MACHINE)["executions"]
    started = json.loads(machine.describe_execution(executionArn=listed["executionArn"])["input"])
    assert started == {
        "checkout_id": "chk_1",
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": [{"payment_order_id": "po_1"}],
    }
    # and the recovery only queried its index (one Query per shard) and claimed with one conditional update
    assert no_scan.count("Query") == 2 * settings().recovery_shards and "UpdateItem" in no_scan
    # and a second run at the same moment finds nothing due (the claim moved the due time)
    assert recovery.run(repos.payments).examined == 0


def test_a_finished_payment_leaves_the_index(repos: Repos, machine: Any, later: Any) -> None:
    # Given a checkout settled and finalized by its workflow
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    succeed(repos.payments, "po_1")
    credit_seller("po_1", repos.payments, repos.wallets)
    book_payin("po_1", repos.payments, repos.ledger)
    finalize_payment(
        FinalizePaymentTask(
            action="finalize_payment",
            checkout_id="chk_1",
            order_results=[OrderResult(payment_order_id="po_1", outcome="SUCCESS")],
        ),
        repos.payments,
    )
    # When the recovery runs long after the deadline
    later(10 * settings().recovery_delay_seconds)
    # Then there is nothing to recover: the payment is no longer in the index
    assert recovery.run(repos.payments).examined == 0
    item = repos.payments.ddb.get_item(TableName=repos.payments.table, Key=payment_key("chk_1"))["Item"]
    assert "unfinished" not in item and "recovery_due" not in item


def test_re_drives_are_bounded_then_the_orders_are_parked(repos: Repos, machine: Any, later: Any) -> None:
    # Given a checkout that no re-drive finishes (RECOVERY_MAX_ATTEMPTS = 2)
    store_checkout(
        repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD"), ("po_2", "seller_toys", 500, "USD")]
    )
    succeed(repos.payments, "po_1")
    credit_seller("po_1", repos.payments, repos.wallets)
    book_payin("po_1", repos.payments, repos.ledger)
    delay = settings().recovery_delay_seconds
    # When the recovery runs once per delay, four times
    runs = []
    for n in range(1, 5):
        later(n * (delay + 1))
        runs.append(recovery.run(repos.payments))
    # Then it re-drove twice, then gave up once, then found nothing
    assert [len(r.redriven) for r in runs] == [1, 1, 0, 0]
    assert [len(r.gave_up) for r in runs] == [0, 0, 1, 0]
    assert executions(machine) == ["chk_1-redrive-1", "chk_1-redrive-2"]
    # and the order not settled is parked NEEDS_ATTENTION with the reason; the settled one is not
    unsettled, settled = repos.payments.get_order("po_2"), repos.payments.get_order("po_1")
    assert unsettled.needs_attention and "recovery" in (unsettled.attention_reason or "")
    assert not settled.needs_attention
    item = repos.payments.ddb.get_item(TableName=repos.payments.table, Key=payment_key("chk_1"))["Item"]
    assert "unfinished" not in item and item["recovery_attempts"] == {"N": "2"}


def test_a_parked_order_is_rescheduled_and_cleared_when_a_re_drive_settles_it(
    repos: Repos, machine: Any, later: Any
) -> None:
    # Given a checkout whose order was parked by its first execution (wallet retries exhausted)
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.claim_start("chk_1")
    succeed(repos.payments, "po_1")
    task = FinalizePaymentTask(
        action="finalize_payment",
        checkout_id="chk_1",
        order_results=[
            OrderResult(
                payment_order_id="po_1", outcome="NEEDS_ATTENTION", step="wallet", error={"Error": "StoreUnavailable"}
            )
        ],
    )
    finalize_payment(task, repos.payments)
    assert repos.payments.get_order("po_1").needs_attention
    # When the recovery runs after the deadline
    later(settings().recovery_delay_seconds + 1)
    assert recovery.run(repos.payments).redriven == ["chk_1"]
    # and the re-driven execution settles the order and finalizes
    credit_seller("po_1", repos.payments, repos.wallets)
    book_payin("po_1", repos.payments, repos.ledger)
    answer = finalize_payment(
        FinalizePaymentTask(
            action="finalize_payment",
            checkout_id="chk_1",
            order_results=[OrderResult(payment_order_id="po_1", outcome="SUCCESS")],
        ),
        repos.payments,
    )
    # Then the payment is done, the flag is cleared with its audit trail, and nothing is left to recover
    assert answer["status"] == PaymentStatus.SUCCEEDED.value and answer["is_payment_done"]
    order = repos.payments.get_order("po_1")
    assert not order.needs_attention
    later(10 * settings().recovery_delay_seconds)
    assert recovery.run(repos.payments).examined == 0


def test_the_start_marker_is_won_once(repos: Repos) -> None:
    # Given a stored checkout
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    # When two requests race for the started marker
    # Then exactly the first wins it (the second must not start another Express execution)
    assert repos.payments.claim_start("chk_1") is True
    assert repos.payments.claim_start("chk_1") is False
    assert repos.payments.get("chk_1").status is PaymentStatus.PROCESSING


def test_an_order_parked_by_a_refusal_is_left_to_an_operator(repos: Repos, machine: Any, later: Any) -> None:
    # Given a checkout whose order was parked because a step refused (not an outage)
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.claim_start("chk_1")
    task = FinalizePaymentTask(
        action="finalize_payment",
        checkout_id="chk_1",
        order_results=[
            OrderResult(
                payment_order_id="po_1",
                outcome="NEEDS_ATTENTION",
                step="execute",
                error={"Error": "PspRequestRejected"},
            )
        ],
    )
    finalize_payment(task, repos.payments)
    # When the recovery runs long after the deadline
    later(10 * settings().recovery_delay_seconds)
    # Then it does not re-drive it: the order stays parked for a human decision (the alarm fired)
    assert recovery.run(repos.payments).examined == 0 and executions(machine) == []
    assert repos.payments.get_order("po_1").needs_attention


# --- refunds: a PENDING refund whose workflow is not running -------------------------------------------
def settled(repos: Repos, po: str = "po_1", amount_minor: int = 7000) -> None:
    """A SUCCESS order, its payment finalized (so the payment is out of the recovery index)."""
    store_checkout(repos.payments, f"chk_{po}", [(po, "seller_books", amount_minor, "USD")])
    succeed(repos.payments, po)
    credit_seller(po, repos.payments, repos.wallets)
    book_payin(po, repos.payments, repos.ledger)
    finalize_payment(
        FinalizePaymentTask(
            action="finalize_payment",
            checkout_id=f"chk_{po}",
            order_results=[OrderResult(payment_order_id=po, outcome="SUCCESS")],
        ),
        repos.payments,
    )


def refunds_of(repos: Repos) -> RefundsRepository:
    return RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)


REFUND = RefundRequest(refund_id="rf_1", payment_order_id="po_1", amount="60.00", currency="USD")


def accepted_without_workflow(repos: Repos, sfn: Any) -> RefundsRepository:
    """A refund reserved whose StartExecution failed (the client got a 500 and never came back)."""
    settled(repos)
    refunds = refunds_of(repos)
    fail_start_once(sfn)
    with pytest.raises(ClientError):
        refund_logic.accept_refund("k-1", REFUND, refunds)
    sfn.meta.events.unregister("before-parameter-build.sfn.StartExecution", unique_id="fail-start-once")
    assert refunds.get("rf_1").status is RefundStatus.PENDING and refund_executions(sfn) == {}
    return refunds


def stop_running(sfn: Any) -> None:
    """Every running refund execution ends without deciding its refund (it died)."""
    for listed in sfn.list_executions(stateMachineArn=REFUND_MACHINE, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=listed["executionArn"])


def test_a_refund_whose_workflow_never_started_is_re_driven_once_due(
    repos: Repos, machine: Any, refund_machine: Any, later: Any, no_scan: list[str]
) -> None:
    # Given a PENDING refund whose workflow never started
    accepted_without_workflow(repos, refund_machine)
    # When the recovery runs before the deadline
    recovery.run(repos.payments)
    # Then nothing is started yet
    assert refund_executions(refund_machine) == {}
    # When it runs after the deadline
    later(settings().recovery_delay_seconds + 1)
    run = recovery.run(repos.payments)
    # Then the refund workflow is started under a re-drive name, with the input of a first start
    assert refund_executions(refund_machine) == {"rf_1-redrive-1": "RUNNING"}
    assert run.refunds.redriven == ["rf_1"] and run.summary()["refunds_redriven"] == 1
    (listed,) = refund_machine.list_executions(stateMachineArn=REFUND_MACHINE)["executions"]
    assert json.loads(refund_machine.describe_execution(executionArn=listed["executionArn"])["input"]) == {
        "refund_id": "rf_1"
    }
    # and the payments were found through the index only, the refund in the same Query per shard
    assert no_scan.count("Query") == 2 * settings().recovery_shards and "Scan" not in no_scan
    # and a second run at the same moment finds nothing due (the claim moved the due time)
    assert recovery.run(repos.payments).examined == 0


def test_a_refund_whose_execution_is_running_is_left_to_it(
    repos: Repos, machine: Any, refund_machine: Any, later: Any
) -> None:
    # Given a refund accepted and started, its execution still running when it is due
    settled(repos)
    refund_logic.accept_refund("k-1", REFUND, refunds_of(repos))
    delay = settings().recovery_delay_seconds
    later(delay + 1)
    # When the recovery runs
    run = recovery.run(repos.payments)
    # Then it starts nothing and counts no attempt
    assert refund_executions(refund_machine) == {"rf_1": "RUNNING"}
    assert run.refunds.redriven == [] and run.refunds.running == 1
    assert refunds_of(repos).get("rf_1").recovery_attempts == 0
    # When that execution dies without deciding the refund, and the recovery looks again
    stop_running(refund_machine)
    later(2 * (delay + 1))
    run = recovery.run(repos.payments)
    # Then the refund is re-driven
    assert refund_executions(refund_machine) == {"rf_1": "ABORTED", "rf_1-redrive-1": "RUNNING"}
    assert run.refunds.redriven == ["rf_1"]


def test_refund_re_drives_are_bounded_then_it_is_parked_with_its_metric(
    repos: Repos, machine: Any, refund_machine: Any, later: Any
) -> None:
    from payments.kernel.observability import LOCAL_COUNTS

    # Given a refund whose workflow never started and whose re-drives all die (RECOVERY_MAX_ATTEMPTS = 2)
    refunds = accepted_without_workflow(repos, refund_machine)
    gave_up_before = LOCAL_COUNTS["RefundRecoveryGaveUp"]
    delay = settings().recovery_delay_seconds
    # When the recovery runs once per delay, four times
    runs = []
    for n in range(1, 5):
        stop_running(refund_machine)
        later(n * (delay + 1))
        runs.append(recovery.run(repos.payments))
    # Then it re-drove twice, then gave up once, then found nothing
    assert set(refund_executions(refund_machine)) == {"rf_1-redrive-1", "rf_1-redrive-2"}
    assert [len(r.refunds.redriven) for r in runs] == [1, 1, 0, 0]
    assert [len(r.refunds.gave_up) for r in runs] == [0, 0, 1, 0]
    # and the refund is parked NEEDS_ATTENTION with the reason and the alarmed metric, once
    refund = refunds.get("rf_1")
    assert refund.status is RefundStatus.PENDING and refund.needs_attention
    assert "recovery" in (refund.attention_reason or "") and refund.recovery_attempts == 2
    assert LOCAL_COUNTS["RefundRecoveryGaveUp"] == gave_up_before + 1
    # its amount still reserved (an operator decides), and it is out of the index
    assert repos.payments.get_order("po_1").refund_reserved_minor == 6000
    item = repos.payments.ddb.get_item(TableName=repos.payments.table, Key=refund_key("rf_1"))["Item"]
    assert "unfinished" not in item and "recovery_due" not in item


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "received"])
def test_a_refund_its_workflow_has_done_with_leaves_the_index(
    repos: Repos, machine: Any, refund_machine: Any, later: Any, outcome: str
) -> None:
    # Given a refund decided by its workflow (or received by the PSP, whose notification decides it)
    settled(repos)
    refunds = refunds_of(repos)
    refund_logic.accept_refund("k-1", REFUND, refunds, start=False)
    if outcome == "received":
        refunds.record_psp_reference("rf_1", "psp_rf_1")
    else:
        refunds.decide("rf_1", outcome == "succeeded", psp_reference="psp_rf_1")
    # Then it is no longer in the recovery index, and the recovery never re-drives it
    item = repos.payments.ddb.get_item(TableName=repos.payments.table, Key=refund_key("rf_1"))["Item"]
    assert "unfinished" not in item and "recovery_due" not in item
    later(10 * settings().recovery_delay_seconds)
    assert recovery.run(repos.payments).examined == 0 and refund_executions(refund_machine) == {}


def test_payments_stuck_lists_a_refund_still_pending_past_the_deadline_and_a_parked_one(
    repos: Repos, machine: Any, refund_machine: Any, later: Any
) -> None:
    from payments.refunds.recovery import stuck

    # Given a refund whose workflow never started, one decided, and one parked NEEDS_ATTENTION
    refunds = accepted_without_workflow(repos, refund_machine)
    settled(repos, "po_2")
    for rf, po in (("rf_2", "po_2"), ("rf_3", "po_2")):
        request = RefundRequest(refund_id=rf, payment_order_id=po, amount="10.00", currency="USD")
        refund_logic.accept_refund(f"k-{rf}", request, refunds, start=False)
    refunds.decide("rf_2", True, psp_reference="psp_rf_2")
    refunds.flag_attention("rf_3", "execute step: PspUnavailable")
    deadline = timedelta(minutes=15)
    # When an operator looks before the deadline, then after it
    early, early_overdue = stuck(deadline, repo=refunds), stuck(deadline, include_parked=False, repo=refunds)
    later(16 * 60)
    late = stuck(deadline, repo=refunds)
    # Then the parked refund is listed at once (unless only overdue ones are asked for), the PENDING one
    # once it is overdue, the decided one never
    assert [r.refund_id for r in early] == ["rf_3"] and early_overdue == []
    assert sorted(r.refund_id for r in late) == ["rf_1", "rf_3"]
    by_id = {r.refund_id: r for r in late}
    assert by_id["rf_1"].reason == "overdue PENDING" and by_id["rf_1"].attention is None
    # And the parked one carries its flag: kind, reason, since
    flag = by_id["rf_3"].attention
    assert by_id["rf_3"].reason == "parked NEEDS_ATTENTION" and flag is not None
    assert flag.reason == "execute step: PspUnavailable" and flag.since
    assert flag.since == refunds.get("rf_3").attention_flagged_at
