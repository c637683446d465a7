"""The pay-in flow end to end on the local runtime: statuses, effects, PSP tokens."""

from __future__ import annotations

from collections import Counter

from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository
from payments.payin.repository import PaymentsRepository
from payments.psp.simulator import SimulatedPsp
from tests.integration.conftest import checkout, wait_done


def charges_for(order_ids: list[str]) -> Counter[str]:
    return Counter(
        c["merchant_reference"] for c in SimulatedPsp().all_charges() if c["merchant_reference"] in order_ids
    )


def psp_calls(order_id: str) -> int:
    item = (
        SimulatedPsp()
        .ddb.get_item(
            TableName=SimulatedPsp().table, Key={"pk": {"S": f"ATTEMPTS#{order_id}"}, "sk": {"S": "ATTEMPTS"}}
        )
        .get("Item")
    )
    return int(item["calls"]["N"]) if item else 0


def test_a_checkout_with_two_sellers_charges_credits_and_books_each_order(api):
    # Given a checkout with two payment orders, one per seller, paid with a good card
    body = checkout(orders=[("seller_flow_a", "19.99", "USD"), ("seller_flow_b", "5.00", "USD")])
    before = api.trial_balance().body

    # When the shopper clicks Buy
    reply = api.pay(body, "key-" + body["checkout_id"])

    # Then it is accepted with the payment resource and its location
    assert reply.status == 202, reply.body
    assert reply.headers["Location"] == f"/v1/payments/{body['checkout_id']}"
    assert reply.body["checkout_id"] == body["checkout_id"]
    assert reply.body["status"] in ("PROCESSING", "SUCCEEDED")
    assert [o["amount"] for o in reply.body["payment_orders"]] == ["19.99", "5.00"]

    # And the workflow charges, credits and books every order
    done = wait_done(api, body["checkout_id"])
    assert done["status"] == "SUCCEEDED" and done["is_payment_done"] is True
    for order in done["payment_orders"]:
        assert order["status"] == "SUCCESS"
        assert order["psp_reference"].startswith("psp_")
        assert order["wallet_updated"] is True and order["ledger_updated"] is True
        assert order["failure_reason"] is None
    assert api.wallet("seller_flow_a").body == {
        "seller_account": "seller_flow_a",
        "balances": [
            {"currency": "USD", "amount": "19.99", "pending": "19.99", "available": "0.00", "in_transit": "0.00"}
        ],
    }
    assert api.wallet("seller_flow_b").body["balances"] == [
        {"currency": "USD", "amount": "5.00", "pending": "5.00", "available": "0.00", "in_transit": "0.00"}
    ]

    # And the trial balance grew by the checkout's total on both sides
    after = {r["currency"]: r for r in api.trial_balance().body["currencies"]}
    usd_before = next((r for r in before["currencies"] if r["currency"] == "USD"), {"debits": "0.00"})
    from decimal import Decimal

    assert Decimal(after["USD"]["debits"]) - Decimal(usd_before["debits"]) == Decimal("24.99")
    assert after["USD"]["debits"] == after["USD"]["credits"]

    # And the PSP holds exactly one charge per order
    ids = [o["payment_order_id"] for o in body["payment_orders"]]
    assert charges_for(ids) == Counter(dict.fromkeys(ids, 1))


def test_amounts_keep_each_currencys_minor_units(api):
    # Given orders in a zero-decimal, a two-decimal and a three-decimal currency
    seller = "seller_ccy"
    for amount, currency in (("1500", "JPY"), ("0.01", "EUR"), ("1.234", "KWD")):
        body = checkout(orders=[(seller, amount, currency)])
        # When each is paid
        assert api.pay(body, "key-" + body["checkout_id"]).status == 202
        done = wait_done(api, body["checkout_id"])
        # Then the stored and returned amount is exactly what was sent
        assert done["payment_orders"][0]["amount"] == amount
    balances = {b["currency"]: b["amount"] for b in api.wallet(seller).body["balances"]}
    assert balances == {"EUR": "0.01", "JPY": "1500", "KWD": "1.234"}
    rows = {r["currency"]: r for r in api.trial_balance().body["currencies"]}
    assert rows["KWD"]["debits"] == rows["KWD"]["credits"] and rows["KWD"]["debits"].count(".") == 1
    assert "." not in rows["JPY"]["debits"]


def test_a_declined_card_fails_every_order_with_no_wallet_or_ledger_effect(api):
    # Given a card the PSP declines
    body = checkout(token="tok_chargeDeclined", orders=[("seller_declined", "10.00", "USD")])
    # When it is paid
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    done = wait_done(api, body["checkout_id"])
    # Then the order and the payment are FAILED, with the reason, and nothing was credited or booked
    order = done["payment_orders"][0]
    assert (done["status"], done["is_payment_done"]) == ("FAILED", True)
    assert (order["status"], order["failure_reason"]) == ("FAILED", "card_declined")
    assert order["wallet_updated"] is False and order["ledger_updated"] is False and order["psp_reference"] is None
    assert api.wallet("seller_declined").body["balances"] == []
    assert LedgerRepository().find_transaction(order["payment_order_id"]) is None
    assert WalletRepository().find_credit(order["payment_order_id"]) is None


def test_insufficient_funds_has_its_own_failure_reason(api):
    body = checkout(token="tok_insufficientFunds", orders=[("seller_nsf", "10.00", "USD")])
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    done = wait_done(api, body["checkout_id"])
    assert done["status"] == "FAILED"
    assert done["payment_orders"][0]["failure_reason"] == "insufficient_funds"


def test_an_unavailable_psp_is_retried_by_the_state_machine_until_it_charges_once(api):
    # Given a token whose first two PSP calls fail transiently
    body = checkout(token="tok_pspUnavailable", orders=[("seller_flaky", "7.50", "USD")])
    order_id = body["payment_orders"][0]["payment_order_id"]
    # When it is paid
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    done = wait_done(api, body["checkout_id"])
    # Then the Retry of ExecutePaymentOrder got it through: SUCCESS after three PSP calls, one charge
    assert done["status"] == "SUCCEEDED" and done["is_payment_done"]
    assert psp_calls(order_id) == 3
    assert charges_for([order_id]) == Counter({order_id: 1})


def test_a_lost_psp_answer_is_resolved_by_asking_the_psp_never_by_charging_again(api):
    # Given a token whose first call charges the card but loses the answer
    body = checkout(
        token="tok_pspTimeout", orders=[("seller_timeout", "12.00", "USD"), ("seller_timeout2", "3.00", "USD")]
    )
    ids = [o["payment_order_id"] for o in body["payment_orders"]]
    # When it is paid
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    done = wait_done(api, body["checkout_id"])
    # Then every order ends SUCCESS with exactly one charge, whose reference the order records
    assert done["status"] == "SUCCEEDED" and done["is_payment_done"]
    assert charges_for(ids) == Counter(dict.fromkeys(ids, 1))
    charges = {
        c["merchant_reference"]: c["psp_reference"]
        for c in SimulatedPsp().all_charges()
        if c["merchant_reference"] in ids
    }
    assert {o["payment_order_id"]: o["psp_reference"] for o in done["payment_orders"]} == charges
    # And the order went NOT_STARTED -> EXECUTING -> SUCCESS, never back
    history = [h["status"] for h in PaymentsRepository().get_order(ids[0]).status_history]
    assert history == ["NOT_STARTED", "EXECUTING", "SUCCESS"]


def test_unknown_payment_is_a_404_problem(api):
    reply = api.payment("chk_does_not_exist")
    assert reply.status == 404
    assert reply.body["type"].endswith(":not-found") and reply.body["status"] == 404


def test_unknown_route_is_a_404_problem(api):
    reply = api.request("GET", "/v1/no_such_route_Marker")
    assert reply.status == 404 and reply.body["type"].endswith(":not-found") and "Marker" not in str(reply.body)
    # while a method a known route does not answer is a 405 naming the one it does (the refunds' too)
    reply = api.request("GET", "/v1/refunds")
    assert (
        reply.status == 405 and reply.headers["Allow"] == "POST" and reply.body["type"].endswith(":method-not-allowed")
    )


def test_a_seller_with_no_sales_has_no_balances(api):
    assert api.wallet("seller_nobody").body == {"seller_account": "seller_nobody", "balances": []}
