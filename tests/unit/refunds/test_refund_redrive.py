"""A refund whose workflow did not start: the client's replay (same Idempotency-Key, same body) starts it.

The reservation commits, then StartExecution fails: the client gets a 500 and retries. The retry
must start the workflow (the same execution name, so one that ran or runs is not started twice),
not answer the stored PENDING refund and leave it reserved for ever. The recovery sweep's side is
in tests/unit/payin/test_recovery.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from functions import registry
from payments.kernel import aws
from payments.kernel.config import reset_settings
from payments.psp.simulator import SimulatedPsp
from payments.refunds import logic
from payments.refunds.models import RefundRequest, RefundStatus
from payments.refunds.repository import RefundsRepository
from payments_dev.local.lambdas import LambdaContext
from tests.unit.conftest import Repos
from tests.unit.refunds.test_refund_api import BODY, call, event
from tests.unit.refunds.test_refunds import paid

REFUND_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:payments-refund"


@pytest.fixture()
def refund_machine(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The refund state machine in moto, STANDARD as deployed (executions are recorded, not run: they
    stay RUNNING until stopped), and its ARN in the settings."""
    monkeypatch.setenv("REFUND_STATE_MACHINE_ARN", REFUND_MACHINE)
    reset_settings()
    sfn = aws.client("stepfunctions")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    sfn.create_state_machine(
        name="payments-refund",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/r",
        type="STANDARD",
    )
    yield sfn
    reset_settings()


def refund_executions(sfn: Any) -> dict[str, str]:
    """name -> status of every execution of the refund state machine."""
    return {e["name"]: e["status"] for e in sfn.list_executions(stateMachineArn=REFUND_MACHINE)["executions"]}


def fail_start_once(sfn: Any) -> list[str]:
    """The next StartExecution fails (Step Functions unavailable); the ones after it reach moto."""
    failed: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if not failed:
            failed.append(params["name"])
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}, "ResponseMetadata": {}},
                "StartExecution",
            )

    sfn.meta.events.register("before-parameter-build.sfn.StartExecution", hook, unique_id="fail-start-once")
    return failed


@pytest.fixture()
def start_fails_once(refund_machine: Any) -> Iterator[list[str]]:
    failed = fail_start_once(refund_machine)
    yield failed
    refund_machine.meta.events.unregister("before-parameter-build.sfn.StartExecution", unique_id="fail-start-once")


def test_the_replay_of_a_refund_whose_start_failed_starts_its_workflow(
    repos: Repos, refund_machine: Any, start_fails_once: list[str]
) -> None:
    from functions.refunds import handler

    # Given a settled order of 70.00, and Step Functions failing the next StartExecution
    paid(repos, SimulatedPsp(), "po_1", 7000)
    # When a refund is posted: the reservation commits, the start fails
    first = handler.handler(event("POST", "/v1/refunds", BODY), LambdaContext(registry.REFUNDS.local_name))
    # Then the client gets a 500, the refund is stored PENDING and reserved, and no workflow runs
    assert first["statusCode"] == 500 and start_fails_once == ["rf_1"]
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    assert refunds.get("rf_1").status is RefundStatus.PENDING
    assert repos.payments.get_order("po_1").refund_reserved_minor == 6000
    assert refund_executions(refund_machine) == {}
    # When the client retries with the same Idempotency-Key and the same body
    status, body, _ = call(handler, event("POST", "/v1/refunds", BODY))
    # Then it gets the refund, and its workflow runs now, under the refund's own name
    assert (status, body["refund_id"], body["status"]) == (202, "rf_1", "PENDING")
    assert refund_executions(refund_machine) == {"rf_1": "RUNNING"}
    (listed,) = refund_machine.list_executions(stateMachineArn=REFUND_MACHINE)["executions"]
    assert json.loads(refund_machine.describe_execution(executionArn=listed["executionArn"])["input"]) == {
        "refund_id": "rf_1"
    }
    # and the amount is reserved once
    assert repos.payments.get_order("po_1").refund_reserved_minor == 6000


def test_a_replay_never_starts_a_second_workflow_of_the_same_refund(repos: Repos, refund_machine: Any) -> None:
    # Given a refund accepted and started, whose execution then ended (and left it PENDING)
    paid(repos, SimulatedPsp(), "po_1", 7000)
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    request = RefundRequest(refund_id="rf_1", payment_order_id="po_1", amount="60.00", currency="USD")
    logic.accept_refund("k-1", request, refunds)
    (listed,) = refund_machine.list_executions(stateMachineArn=REFUND_MACHINE)["executions"]
    refund_machine.stop_execution(executionArn=listed["executionArn"])
    # When the request is replayed (its idempotency record expired), twice
    for _ in range(2):
        assert logic.accept_refund("k-1", request, refunds)["status"] == "PENDING"
    # Then the name it started under is not started again (a re-drive of it is the recovery's, under its own name)
    assert refund_executions(refund_machine) == {"rf_1": "ABORTED"}


def test_a_replay_of_a_refund_parked_for_a_person_starts_nothing(repos: Repos, refund_machine: Any) -> None:
    # Given a refund whose first start failed, later parked NEEDS_ATTENTION
    paid(repos, SimulatedPsp(), "po_1", 7000)
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    request = RefundRequest(refund_id="rf_1", payment_order_id="po_1", amount="60.00", currency="USD")
    logic.accept_refund("k-1", request, refunds, start=False)
    refunds.flag_attention("rf_1", "an operator is on it")
    # When the request is replayed
    logic.accept_refund("k-1", request, refunds)
    # Then nothing is started behind the operator's back
    assert refund_executions(refund_machine) == {}
