"""What the model of money found, each as a plain test: the minimal reproducer the state machine
shrank to, written out step by step (each was a defect of this code base, now fixed; the model's
rules expect the fixed behaviour)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from payments.kernel import clock
from payments.payouts.bank.simulated import TEST_IBAN_RETURNED
from payments_dev.local.runtime import wait_until
from tests.model.system import System, fresh_id

WAIT_S = 20.0


@contextmanager
def counted_metrics() -> Iterator[list[str]]:
    """The names of the metrics the notification consumer counts meanwhile (it runs in this process)."""
    from payments.notifications import apply

    seen: list[str] = []
    original = apply.count

    def spy(name: str, value: int = 1) -> None:
        seen.append(name)
        original(name, value)

    apply.count = spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        apply.count = original  # type: ignore[assignment]


def checkout(system: System, currency: str = "USD", amount: str = "10.00", token: str = "tok_visa") -> dict[str, Any]:
    """One order for a fresh seller, answered 202; returns the order as the model knows it."""
    order = {
        "payment_order_id": fresh_id("po"),
        "seller_account": fresh_id("sel"),
        "amount": amount,
        "currency": currency,
    }
    body = {
        "checkout_id": fresh_id("chk"),
        "buyer_info": {"buyer_id": "buyer_model"},
        "payment_method": {"type": "card", "token": token},
        "payment_orders": [order],
    }
    system.psp.drain()  # what the PSP sent about earlier tests' orders is theirs
    reply = system.pay(body, fresh_id("key"))
    assert reply.status == 202, reply.body

    def settled() -> bool:
        seen = _order(system, body["checkout_id"])
        return seen["status"] in ("SUCCESS", "FAILED") or bool(seen["needs_attention"])

    assert wait_until(settled, WAIT_S, interval=0.05), _order(system, body["checkout_id"])
    return {**order, "checkout_id": body["checkout_id"]}


def today() -> str:
    return clock.now().date().isoformat()


def _order(system: System, checkout_id: str) -> dict[str, Any]:
    return dict(system.payment(checkout_id).body["payment_orders"][0])


def wallet(system: System, seller: str, currency: str) -> Decimal:
    balances = system.wallet(seller).body.get("balances", [])
    return sum((Decimal(b["amount"]) for b in balances if b["currency"] == currency), Decimal(0))


def refund(system: System, order: dict[str, Any], amount: str, refund_id: str | None = None) -> tuple[str, Any]:
    refund_id = refund_id or fresh_id("rf")
    body = {
        "refund_id": refund_id,
        "payment_order_id": order["payment_order_id"],
        "amount": amount,
        "currency": order["currency"],
        "reason": "model",
    }
    return refund_id, system.refund(body, fresh_id("key"))


def fake_notifications(system: System) -> list[dict[str, Any]]:
    return [n.body for n in system.psp.drain()]


def refund_status_becomes(system: System, refund_id: str, status: str, deliver: bool = False) -> bool:
    def reached() -> bool:
        if deliver:  # Adyen decides a refund by its REFUND notification: deliver what the fake sent
            for body in fake_notifications(system):
                system.notify(body)
        reply = system.get_refund(refund_id)
        return reply.status == 200 and reply.body["status"] == status

    return wait_until(reached, WAIT_S, interval=0.1)


# --- found on the Adyen fake ---------------------------------------------------------------------
@pytest.mark.parametrize("system", ["adyen-fake"], indirect=True)
def test_a_checkout_in_isk_is_refused_on_an_adyen_stage(system: System) -> None:
    # Given an Adyen stage; When a checkout is in ISK (Adyen's exponent for it is disputed)
    checkout_id, order_id = fresh_id("chk"), fresh_id("po")
    body = {
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "buyer_model"},
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": [
            {"payment_order_id": order_id, "seller_account": fresh_id("sel"), "amount": "100", "currency": "ISK"}
        ],
    }
    reply = system.pay(body, fresh_id("key"))
    # Then 422 naming the currency, and nothing stored
    assert reply.status == 422, reply.body
    assert "payment_orders[0].currency" in [e["field"] for e in reply.body.get("errors", [])]
    assert system.payment(checkout_id).status == 404


@pytest.mark.parametrize("system", ["adyen-fake"], indirect=True)
def test_clp_is_charged_in_adyens_minor_units(system: System) -> None:
    # Given an Adyen stage; When 100 CLP are charged
    order = checkout(system, currency="CLP", amount="100")
    # Then Adyen is asked for 100.00 CLP: value 10000 (Adyen's table: CLP has 2 decimals)
    charges, _ = system.psp.day(today(), {order["payment_order_id"]})
    assert charges == {order["payment_order_id"]: 10000}


@pytest.mark.parametrize("system", ["adyen-fake"], indirect=True)
def test_a_chargeback_before_the_authorisation_takes_the_money_once_the_charge_is_known(system: System) -> None:
    # Given an order whose outcome Adyen has not decided yet (Received)
    order = checkout(system, token="tok_adyenReceived")
    authorisation = fake_notifications(system)
    assert len(authorisation) == 1
    # When its CHARGEBACK arrives before its AUTHORISATION
    chargeback = system.psp.raise_chargeback(order["payment_order_id"], 1000)
    with counted_metrics() as metrics:
        assert system.notify(chargeback.body).status == 200
        # the consumer has met the CHARGEBACK while the order is still undecided (its DisputeBeforeItsCharge
        # metric), so the chargeback is truly early and not merely posted first (the protection-removed test
        # relies on it); the AUTHORISATION follows inside the queue's retry window (~16 s locally)
        assert wait_until(lambda: "DisputeBeforeItsCharge" in metrics, WAIT_S, interval=0.05), metrics
    assert system.notify(authorisation[0]).status == 200

    # Then once the order is SUCCESS the chargeback is booked: the seller keeps nothing
    def booked() -> bool:
        seen = _order(system, order["checkout_id"])
        return seen["status"] == "SUCCESS" and Decimal(seen["chargeback_amount"] or 0) == Decimal("10.00")

    assert wait_until(booked, WAIT_S, interval=0.2), _order(system, order["checkout_id"])
    assert wallet(system, order["seller_account"], "USD") == Decimal(0)


@pytest.mark.parametrize("system", ["adyen-fake"], indirect=True)
def test_a_refund_whose_id_is_its_orders_id_succeeds_on_adyen(system: System) -> None:
    # Given a charged order
    order = checkout(system)
    fake_notifications(system)  # its AUTHORISATION: nothing to learn from it
    # When it is refunded by a refund whose refund_id is the order's payment_order_id
    refund_id, reply = refund(system, order, "4.00", refund_id=order["payment_order_id"])
    assert reply.status == 202, reply.body
    # Then the refund succeeds and the seller gives back 4.00
    assert refund_status_becomes(system, refund_id, "SUCCEEDED", deliver=True), system.get_refund(refund_id).body
    assert wallet(system, order["seller_account"], "USD") == Decimal("6.00")


@pytest.mark.parametrize("system", ["adyen-fake"], indirect=True)
def test_a_signed_refund_replayed_with_a_boolean_success_is_refused(system: System) -> None:
    # Given a refund the PSP paid, its signed REFUND notification captured before it arrives
    order = checkout(system)
    fake_notifications(system)
    refund_id, reply = refund(system, order, "4.00")
    assert reply.status == 202, reply.body
    assert wait_until(lambda: bool(system.psp.fake.notifications), WAIT_S)
    (captured,) = fake_notifications(system)
    # When it is posted with "success": true (a JSON boolean: the signature reads it the same)
    item = dict(captured["notificationItems"][0]["NotificationRequestItem"])
    item["success"] = True
    replayed = system.notify({**captured, "notificationItems": [{"NotificationRequestItem": item}]})
    # Then 400, and the refund is still decided by the genuine notification: SUCCEEDED
    assert replayed.status == 400, replayed.body
    assert system.notify(captured).status == 200
    assert refund_status_becomes(system, refund_id, "SUCCEEDED"), system.get_refund(refund_id).body


@pytest.mark.parametrize("system", ["adyen-fake"], indirect=True)
def test_a_payment_authorised_by_its_notification_is_in_the_fakes_settlement_and_reconciles(system: System) -> None:
    # Given an order Adyen answered Received, then authorised by its AUTHORISATION notification
    order = checkout(system, token="tok_adyenReceived")
    (authorisation,) = fake_notifications(system)
    assert system.notify(authorisation).status == 200
    assert wait_until(lambda: _order(system, order["checkout_id"])["status"] == "SUCCESS", WAIT_S)
    # When the fake settles the day and the file is reconciled
    day = today()
    charges, _ = system.psp.day(day, {order["payment_order_id"]})
    report = system.settle_and_reconcile(day)
    # Then the charge is in it, and nothing about the order is a mismatch
    assert charges == {order["payment_order_id"]: 1000}
    assert [m for m in report["mismatches"] if m.get("payment_order_id") == order["payment_order_id"]] == []


# --- found on the simulator ------------------------------------------------------------------------
@pytest.mark.parametrize("system", ["simulator"], indirect=True)
def test_a_refund_whose_workflow_did_not_start_completes_on_the_clients_retry(system: System) -> None:
    # Given a charged order, and Step Functions failing the refund's StartExecution once
    order = checkout(system)
    refund_id = fresh_id("rf")
    body = {
        "refund_id": refund_id,
        "payment_order_id": order["payment_order_id"],
        "amount": "4.00",
        "currency": "USD",
        "reason": "model",
    }
    key = fresh_id("key")
    with system.start_execution_fails(refund_id) as failed:
        system.refund(body, key)
    assert failed
    # When the client retries (same key, same body)
    again = system.refund(body, key)
    assert again.status == 202, again.body
    # Then the refund completes: SUCCEEDED, the seller gives back 4.00
    assert refund_status_becomes(system, refund_id, "SUCCEEDED"), system.get_refund(refund_id).body
    assert wallet(system, order["seller_account"], "USD") == Decimal("6.00")


@pytest.mark.parametrize("system", ["simulator"], indirect=True)
def test_an_order_is_refundable_again_once_its_chargeback_is_reversed(system: System) -> None:
    # Given a charged order charged back in full, then the chargeback reversed
    order = checkout(system)
    chargeback = system.psp.raise_chargeback(order["payment_order_id"], 1000)
    assert system.notify(chargeback.body).status == 200
    reversal = system.psp.dispute_step(chargeback.ref, "CHARGEBACK_REVERSED")
    assert system.notify(reversal.body).status == 200
    assert wait_until(
        lambda: (
            wallet(system, order["seller_account"], "USD") == Decimal("10.00")
            and Decimal(_order(system, order["checkout_id"])["chargeback_amount"]) == 0
        ),
        WAIT_S,
        interval=0.2,
    )
    # When 1.00 is refunded
    refund_id, reply = refund(system, order, "1.00")
    # Then it is accepted and succeeds
    assert reply.status == 202, reply.body
    assert refund_status_becomes(system, refund_id, "SUCCEEDED")


# --- payouts (either PSP: the bank rail is the same) ------------------------------------------------------
def balance_parts(system: System, seller: str, currency: str = "EUR") -> dict[str, str]:
    balances = system.wallet(seller).body.get("balances", [])
    (found,) = [b for b in balances if b["currency"] == currency]
    return {part: found[part] for part in ("pending", "available", "in_transit")}


@pytest.mark.parametrize("system", ["simulator"], indirect=True)
def test_money_back_during_a_payout_then_its_return_gives_the_payout_back_once(system: System) -> None:
    # Given a seller whose 10.00 EUR charge the day's settlement file made available, paid out in full to
    # the test IBAN whose bank sends the money back the day after it is booked
    order = checkout(system, currency="EUR")
    seller = order["seller_account"]
    assert balance_parts(system, seller) == {"pending": "10.00", "available": "0.00", "in_transit": "0.00"}
    report = system.settle_and_reconcile(today())
    assert [m for m in report["mismatches"] if m.get("payment_order_id") == order["payment_order_id"]] == []
    assert balance_parts(system, seller) == {"pending": "0.00", "available": "10.00", "in_transit": "0.00"}
    assert system.register_payout_account(seller, TEST_IBAN_RETURNED).status == 200
    payout_id = fresh_id("pt")
    body = {"payout_id": payout_id, "seller_account": seller, "currency": "EUR"}
    accepted = system.payout(body, fresh_id("key"))
    assert accepted.status == 202 and accepted.body["amount"] == "10.00", accepted.body
    # When the night's run sends it and the bank books it
    day = system.next_bank_day()
    assert payout_id in system.run_payouts(day)["submitted"]
    assert system.close_bank_day(day)["counts"]["mismatches"] == 0
    assert system.get_payout(payout_id).body["status"] == "PAID"
    # and a refund of 4.00 takes its money from available, below zero: no payout can start
    refund_id, reply = refund(system, order, "4.00")
    assert reply.status == 202, reply.body
    assert refund_status_becomes(system, refund_id, "SUCCEEDED")
    assert balance_parts(system, seller) == {"pending": "0.00", "available": "-4.00", "in_transit": "0.00"}
    blocked = system.payout({**body, "payout_id": fresh_id("pt"), "amount": "0.01"}, fresh_id("key"))
    assert blocked.status == 422 and blocked.body["type"].endswith("payout-exceeds-available"), blocked.body
    # When the bank returns the payout at its next close
    assert system.close_bank_day(system.next_bank_day())["counts"]["mismatches"] == 0
    # Then the payout is RETURNED, its 10.00 back once (6.00 available), the account flagged: no payout now
    assert system.get_payout(payout_id).body["status"] == "RETURNED"
    assert wait_until(
        lambda: balance_parts(system, seller) == {"pending": "0.00", "available": "6.00", "in_transit": "0.00"},
        WAIT_S,
        interval=0.2,
    ), balance_parts(system, seller)
    assert system.payout_account(seller).body["valid"] is False
    refused = system.payout({**body, "payout_id": fresh_id("pt")}, fresh_id("key"))
    assert refused.status == 409 and refused.body["type"].endswith("payout-not-possible"), refused.body
