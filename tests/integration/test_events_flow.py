"""The marketplace hears every state change once, as a client of the local runtime: the events of a checkout of
three orders and of a declined one, of a refund (decided, then returned by the scheme and resolved by a person),
of a chargeback and its reversal, and of a payout paid, read with ``payments events tail``.

Each expected change has exactly one event id (a repeated delivery of an id is allowed, and counted), no
event is there for a change that did not happen, ``sequence`` increases per subject in the order of the
changes, and every event's ``data`` is its type's published model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from payments.events.models import DATA_MODELS
from payments.kernel import clock
from payments.notifications.store import NotificationStore
from payments.ops.cli import main
from payments.payouts.bank.simulated import TEST_IBAN_PAID
from payments.psp.simulator import SimulatedPsp
from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import LocalRuntime, wait_until
from tests.integration.conftest import checkout, unique, wait_done
from tests.integration.test_bank_flow import close, objects
from tests.integration.test_payouts_e2e import fund, payout, register, status
from tests.integration.test_refunds_flow import notify, paid_order, refund, wait_refund


def validate(envelope: dict[str, Any]) -> None:
    """The envelope validates against its published schema (the catalogue, once it is there), else its model."""
    try:
        from payments_dev.events_schemas import validate_event
    except ImportError:
        DATA_MODELS[envelope["type"]].model_validate(envelope["data"])
    else:
        validate_event(envelope)


def tail(runtime: LocalRuntime, capsys: pytest.CaptureFixture[str], *options: str) -> list[dict[str, Any]]:
    """``payments events tail --output json``, after the runtime delivered what is committed."""
    assert runtime.events is not None
    runtime.events.flush()
    capsys.readouterr()
    assert main(["events", "tail", *options, "--endpoint", runtime.aws_url, "--output", "json"]) == 0
    found: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return found


def heard(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str], subjects: set[str]
) -> dict[str, list[tuple[str, str, str]]]:
    """Per subject of ``subjects``: its events ``(type, id, sequence)`` in delivery order, repeats dropped by id;
    every event validated and each id carrying one content whatever its deliveries."""
    by_id: dict[str, dict[str, Any]] = {}
    per_subject: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for envelope in tail(runtime, capsys):
        if envelope["subject"] not in subjects:
            continue
        validate(envelope)
        if envelope["id"] in by_id:  # a repeated delivery: the same change (a checkout's orders read again)
            first = by_id[envelope["id"]]
            assert {k: v for k, v in first.items() if k != "data"} == {k: v for k, v in envelope.items() if k != "data"}
            continue
        by_id[envelope["id"]] = envelope
        per_subject[envelope["subject"]].append((envelope["type"], envelope["id"], envelope["sequence"]))
    for events in per_subject.values():
        sequences = [sequence for _, _, sequence in events]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences), events
    return dict(per_subject)


def types(events: dict[str, list[tuple[str, str, str]]]) -> dict[str, list[str]]:
    return {subject: [t for t, _, _ in found] for subject, found in events.items()}


def test_a_checkout_of_three_orders_and_a_declined_one_are_heard_once_each(
    api: ApiClient, runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a checkout of three orders that succeeds and one whose card is declined
    good = checkout(orders=[("seller_a", "10.00", "USD"), ("seller_b", "20.00", "USD"), ("seller_c", "3.50", "EUR")])
    declined = checkout(token="tok_chargeDeclined", orders=[("seller_a", "7.00", "USD")])
    for body in (good, declined):
        assert api.pay(body, "ev-" + body["checkout_id"]).status == 202
        wait_done(api, body["checkout_id"])
    orders = [o["payment_order_id"] for o in good["payment_orders"]]
    (declined_order,) = [o["payment_order_id"] for o in declined["payment_orders"]]
    subjects = {good["checkout_id"], declined["checkout_id"], *orders, declined_order}

    # Then exactly the contract's events, each once by id
    assert types(heard(runtime, capsys, subjects)) == {
        good["checkout_id"]: ["payments.payment.succeeded"],
        **{po: ["payments.payment_order.succeeded"] for po in orders},
        declined["checkout_id"]: ["payments.payment.failed"],
        declined_order: ["payments.payment_order.failed"],
    }
    # and each carries the resource as the API answers it (the checkout with its orders)
    events = {e["subject"]: e for e in tail(runtime, capsys, "--type", "payment") if e["subject"] in subjects}
    assert events[good["checkout_id"]]["data"] == api.payment(good["checkout_id"]).body
    assert events[good["checkout_id"]]["source"] == "urn:payments:local"
    # and reading again (another delivery round) changes nothing
    assert types(heard(runtime, capsys, subjects)) == types(heard(runtime, capsys, subjects))


def test_a_refund_a_chargeback_and_its_reversal_are_heard_in_order(
    api: ApiClient, runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a paid order of 70.00, a refund of 5.00 that succeeds
    po, seller = paid_order(api)
    rf = unique("rf")
    accepted = refund(api, {"refund_id": rf, "payment_order_id": po, "amount": "5.00", "currency": "USD"}, "k-" + rf)
    assert accepted.status == 202, accepted.body
    assert wait_refund(api, rf)["status"] == "SUCCEEDED"
    # When the scheme sends the refund back, and a person resolves it
    psp = SimulatedPsp()
    refund_reference = api.request("GET", f"/v1/refunds/{rf}").body["psp_reference"]
    charge = _charge_reference(po)
    assert notify(api, psp.notification("REFUNDED_REVERSED", refund_reference, charge, rf, 500, "USD")).status == 200
    assert wait_until(lambda: api.request("GET", f"/v1/refunds/{rf}").body["returned_at"] is not None, 30, 0.2)
    assert main(["attention", "resolve", rf, "--note", "credited the seller back", "--endpoint", runtime.aws_url]) == 0
    # and a chargeback of 20.00 is booked, then reversed
    chargeback = psp.raise_chargeback(po, 2000)
    assert notify(api, chargeback).status == 200
    assert notify(api, psp.reverse_chargeback(chargeback["pspReference"])).status == 200
    dispute = chargeback["pspReference"]
    assert wait_until(lambda: len(heard(runtime, capsys, {dispute}).get(dispute, [])) == 2, 30, 0.2), (
        [(n["event_code"], n.get("outcome")) for n in NotificationStore().scan() if n["psp_reference"] == dispute],
        [(e["type"], e["subject"]) for e in tail(runtime, capsys) if e["type"].startswith("payments.dispute")],
    )

    # Then the refund's changes, its order's and the dispute's steps are heard once each, in order
    assert types(heard(runtime, capsys, {rf, dispute, po})) == {
        po: ["payments.payment_order.succeeded"],
        rf: [
            "payments.refund.succeeded",
            "payments.refund.returned",
            "payments.attention.raised",
            "payments.attention.resolved",
        ],
        dispute: ["payments.dispute.chargeback", "payments.dispute.reversed"],
    }
    # and --type selects one resource's events
    refunds = [e for e in tail(runtime, capsys, "--type", "refund") if e["subject"] == rf]
    assert [e["type"] for e in refunds] == ["payments.refund.succeeded", "payments.refund.returned"]
    # and the money is where the changes say: 70.00 - 5.00 refunded - 20.00 charged back + 20.00 reversed
    assert [b["amount"] for b in api.wallet(seller).body["balances"]] == ["65.00"]


def _charge_reference(payment_order_id: str) -> str:
    from payments.payin.repository import PaymentsRepository

    reference = PaymentsRepository().get_order(payment_order_id).psp_reference
    assert reference
    return reference


def test_a_payout_is_heard_submitted_then_paid_and_the_files_reconciled(
    api: ApiClient, runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a seller with 50.00 EUR available (the day's settlement file reconciled) and a payout of all of it
    seller = unique("seller_ev")
    fund(api, seller, "50.00")
    register(api, seller, TEST_IBAN_PAID)
    assert payout(api, seller).status == 202
    payout_id = f"pt-{seller[-12:]}"
    # When the night's run sends it and the bank books it
    today = clock.now().date()
    answers = len(objects("incoming/bank/pain002/"))
    capsys.readouterr()
    assert main(["payouts", "run", "--date", today.isoformat(), "--endpoint", runtime.aws_url, "--output", "json"]) == 0
    # (the simulated bank answers the file with a pain.002 before its day is closed)
    assert wait_until(lambda: len(objects("incoming/bank/pain002/")) > answers, 60, 0.2)
    day = today
    while f"incoming/bank/camt053/{day.isoformat()}.xml" in objects("incoming/bank/camt053/"):
        day += timedelta(days=1)
    statement = close(runtime, day.isoformat())
    assert wait_until(lambda: status(api, seller) == "PAID", 60, 0.2)
    assert wait_until(lambda: statement in heard(runtime, capsys, {statement}), 60, 0.2)

    # Then the payout's two moves are heard once each, in order, and the statement's reconciliation once
    events = heard(runtime, capsys, {payout_id, statement})
    assert types(events) == {
        payout_id: ["payments.payout.submitted", "payments.payout.paid"],
        statement: ["payments.reconciliation.completed"],
    }
    paid = next(e for e in tail(runtime, capsys, "--type", "payments.payout.paid") if e["subject"] == payout_id)
    assert paid["data"] == api.request("GET", f"/v1/payouts/{payout_id}").body
    assert "iban" not in json.dumps(paid).lower()
