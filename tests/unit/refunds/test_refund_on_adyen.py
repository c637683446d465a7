"""The refund workflow on a stage configured for Adyen (issue 18 x issue 19): the refunds function
asks the configured PSP (``payments.psp.default_psp``), Adyen receives the refund, and the refund
stays PENDING until Adyen's signed REFUND notification decides it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions import registry
from payments.kernel.config import reset_settings
from payments.psp.adyen import AdyenPsp
from payments.refunds import logic
from payments.refunds.models import RefundStatus
from payments.refunds.repository import RefundsRepository
from payments_dev.local.adyen_fake import AdyenFake
from payments_dev.local.lambdas import LambdaContext
from tests.unit.adyen_support import API_KEY, HMAC_KEY, MERCHANT, RETURN_URL, fake, psp  # noqa: F401
from tests.unit.conftest import Repos
from tests.unit.refunds.test_refunds import accept, paid


@pytest.fixture()
def adyen_stage(fake: AdyenFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The settings of a stage on Adyen: the adapter pointed at the fake, the webhook's HMAC key."""
    values = {
        "PAYMENTS_PSP": "adyen",
        "ADYEN_API_KEY": API_KEY,
        "ADYEN_MERCHANT_ACCOUNT": MERCHANT,
        "ADYEN_RETURN_URL": RETURN_URL,
        "ADYEN_BASE_URL": fake.base_url,  # type: ignore[attr-defined]
        "ADYEN_HTTP_TIMEOUT": "2",
        "PAYMENTS_PSP_HMAC_KEY": HMAC_KEY,
        "PAYMENTS_PSP_MERCHANT_ACCOUNT": MERCHANT,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    yield
    for name in values:
        monkeypatch.delenv(name)
    reset_settings()


def task(action: str, **fields: Any) -> dict[str, Any]:
    from functions.refunds.handler import handler

    return handler({"action": action, **fields}, LambdaContext(registry.REFUNDS.local_name))


def deliver(notification: dict[str, Any]) -> dict[str, Any]:
    from functions.notifications.handler import receive

    event = {
        "httpMethod": "POST",
        "path": "/v1/psp/notifications",
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(notification),
    }
    return receive(event)


def test_a_refund_on_adyen_is_received_then_decided_by_its_notification(
    repos: Repos, fake: AdyenFake, psp: AdyenPsp, adyen_stage: None
) -> None:
    # Given an order charged at Adyen and a refund of part of it, reserved
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    paid(repos, psp, "po_1", 7000)  # type: ignore[arg-type]
    charge = repos.payments.get_order("po_1").psp_reference
    accept(refunds, "rf_1", "po_1", "25.00")
    wallet_before = repos.wallets.balances("seller_books")["USD"]
    # When the refund workflow runs its steps in the refunds function (the stage's PSP: Adyen)
    execution = task("execute_refund", refund_id="rf_1")
    outcome = task("apply_refund_outcome", refund_id="rf_1", execution=execution)
    again = task(
        "apply_refund_outcome", refund_id="rf_1", execution=task("execute_refund", refund_id="rf_1")
    )  # a retry
    # Then Adyen received one refund, on the charge, keyed by the refund id in the refund key space
    # (never a charge's key) and referenced by the refund id
    sent = [
        (path, headers.get("idempotency-key"), body)
        for _, path, headers, body in fake.requests
        if path.endswith("/refunds")
    ]
    assert [(p, k) for p, k, _ in sent] == [(f"/v72/payments/{charge}/refunds", "refund:rf_1")] * 2
    assert sent[0][2]["amount"] == {"currency": "USD", "value": 2500} and sent[0][2]["reference"] == "rf_1"
    # and the answer decided nothing: the refund is PENDING, with Adyen's refund reference, money unmoved
    assert execution["succeeded"] is None and execution["psp_reference"]
    assert (
        outcome == again == {"refund_id": "rf_1", "status": "PENDING", "applied": False, "awaiting_notification": True}
    )
    pending = refunds.get("rf_1")
    assert pending.status is RefundStatus.PENDING and pending.psp_reference == execution["psp_reference"]
    assert repos.wallets.balances("seller_books")["USD"] == wallet_before
    # When Adyen's signed REFUND notification arrives at the webhook
    refund_notes = [
        n for n in fake.notifications if n["notificationItems"][0]["NotificationRequestItem"]["eventCode"] == "REFUND"
    ]
    assert len(refund_notes) == 1
    assert deliver(refund_notes[0])["statusCode"] == 200
    # Then it decides the refund: SUCCEEDED once, the seller's wallet debited by the refund
    decided = refunds.get("rf_1")
    assert decided.status is RefundStatus.SUCCEEDED and decided.decided_by == "notification"
    assert repos.wallets.balances("seller_books")["USD"] == wallet_before - 2500
    # and a late retry of the workflow changes nothing
    late = task("execute_refund", refund_id="rf_1")
    assert late == {"refund_id": "rf_1", "decided": True, "status": "SUCCEEDED"}
    assert len([p for _, p, _, _ in fake.requests if p.endswith("/refunds")]) == 2


def test_a_refund_adyen_refuses_is_failed_by_its_notification(
    repos: Repos, fake: AdyenFake, psp: AdyenPsp, adyen_stage: None
) -> None:
    # Given an order paid with a card whose refunds fail at the scheme, and a refund of all of it
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    paid(repos, psp, "po_2", 1999, token="tok_refundFails")  # type: ignore[arg-type]
    accept(refunds, "rf_2", "po_2", None)
    # When the workflow runs and Adyen's REFUND notification (success false) arrives
    execution = task("execute_refund", refund_id="rf_2")
    task("apply_refund_outcome", refund_id="rf_2", execution=execution)
    assert refunds.get("rf_2").status is RefundStatus.PENDING
    note = next(
        n for n in fake.notifications if n["notificationItems"][0]["NotificationRequestItem"]["eventCode"] == "REFUND"
    )
    assert deliver(note)["statusCode"] == 200
    # Then the refund FAILED and its reservation is released: the order can be refunded again
    assert refunds.get("rf_2").status is RefundStatus.FAILED
    assert repos.payments.get_order("po_2").refund_reserved_minor == 0


def test_the_simulator_still_decides_in_its_answer(repos: Repos) -> None:
    # Given the default stage (the simulator) and a refund of a simulator charge
    from payments.psp.simulator import SimulatedPsp

    reset_settings()
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    paid(repos, SimulatedPsp(), "po_3", 7000)
    accept(refunds, "rf_3", "po_3", "10.00")
    # When the workflow's steps run in the refunds function
    execution = task("execute_refund", refund_id="rf_3")
    outcome = task("apply_refund_outcome", refund_id="rf_3", execution=execution)
    # Then the simulator's answer decided it
    assert execution["succeeded"] is True and outcome["status"] == "SUCCEEDED" and outcome["applied"] is True
    assert logic.execute_refund("rf_3", refunds, SimulatedPsp())["decided"] is True
