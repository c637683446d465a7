"""Automatic recovery (payments/payin/recovery.py): what is unfinished past its deadline is re-driven,
a bounded number of times, through the index (never a Scan), then parked NEEDS_ATTENTION."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from functions.ledger.logic import book_payin
from functions.payment.logic import finalize_payment
from functions.wallet.logic import credit_seller
from payments.kernel import aws, clock
from payments.kernel.config import reset_settings, settings
from payments.payin import recovery
from payments.payin.repository import payment_key
from payments.payin.status import PaymentStatus
from payments.payin.tasks import FinalizePaymentTask, OrderResult
from tests.unit.conftest import Repos, store_checkout, succeed

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
