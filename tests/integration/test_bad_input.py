"""Every bad-input rule of the contract: a 4xx RFC 9457 problem naming the field, and nothing stored."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from payments import aws
from payments.config import settings
from tests.integration.conftest import assert_problem, checkout


def stored_items() -> dict[str, int]:
    """Item counts of the tables a checkout writes to (payments, idempotency, PSP)."""
    ddb = aws.client("dynamodb")
    s = settings()
    return {t: ddb.scan(TableName=t, Select="COUNT", ConsistentRead=True)["Count"] for t in (s.payments_table, s.idempotency_table, s.psp_table)}


def mutate(path: str, value: Any) -> Any:
    """A function that sets (or with value=DELETE removes) a dotted/indexed path in a body."""

    def apply(body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        target: Any = body
        parts = path.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        key: Any = int(last) if last.isdigit() else last
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
        return body

    return apply


DELETE = object()

# (id, mutation of a valid body, expected field path)
CASES = [
    ("amount-as-json-number", mutate("payment_orders[0].amount", 19.99), "payment_orders[0].amount"),
    ("amount-too-many-digits-usd", mutate("payment_orders[1].amount", "5.001"), "payment_orders[1].amount"),
    ("amount-fraction-on-jpy", lambda b: mutate("payment_orders[0].currency", "JPY")(mutate("payment_orders[0].amount", "1.5")(b)), "payment_orders[0].amount"),
    ("amount-zero", mutate("payment_orders[0].amount", "0.00"), "payment_orders[0].amount"),
    ("amount-negative", mutate("payment_orders[0].amount", "-1.00"), "payment_orders[0].amount"),
    ("amount-exponent", mutate("payment_orders[0].amount", "1e3"), "payment_orders[0].amount"),
    ("amount-blank", mutate("payment_orders[0].amount", " 1.00"), "payment_orders[0].amount"),
    ("amount-huge", mutate("payment_orders[0].amount", "1000000000000000.00"), "payment_orders[0].amount"),
    ("currency-lowercase", mutate("payment_orders[0].currency", "usd"), "payment_orders[0].currency"),
    ("currency-unknown", mutate("payment_orders[0].currency", "ABC"), "payment_orders[0].currency"),
    ("currency-withdrawn", mutate("payment_orders[0].currency", "HRK"), "payment_orders[0].currency"),
    ("missing-seller", mutate("payment_orders[1].seller_account", DELETE), "payment_orders[1].seller_account"),
    ("missing-checkout-id", mutate("checkout_id", DELETE), "checkout_id"),
    ("bad-checkout-id", mutate("checkout_id", "chk 1/../x"), "checkout_id"),
    ("extra-field", mutate("payment_orders[0].discount", "1.00"), "payment_orders[0].discount"),
    ("method-not-card", mutate("payment_method.type", "bank"), "payment_method.type"),
    ("token-not-a-token", mutate("payment_method.token", "visa"), "payment_method.token"),
    ("no-orders", mutate("payment_orders", []), "payment_orders"),
    ("email-invalid", mutate("buyer_info.email", "not-an-email"), "buyer_info.email"),
]


@pytest.mark.parametrize("case,change,field", CASES, ids=[c[0] for c in CASES])
def test_invalid_field_is_rejected_naming_it_and_nothing_is_stored(api, case, change, field):
    # Given a checkout broken in one field
    body = change(checkout())
    before = stored_items()
    # When it is sent
    reply = api.pay(body, f"bad-{case}")
    # Then it is a 422 validation problem naming the field, and nothing was stored
    assert_problem(reply, 422, ":validation-error", field)
    assert stored_items() == before


def test_too_many_orders_is_rejected_with_the_documented_bound(api):
    body = checkout(orders=[(f"seller_{i}", "1.00", "USD") for i in range(51)])
    before = stored_items()
    reply = api.pay(body, "bad-too-many")
    assert_problem(reply, 422, ":validation-error", "payment_orders")
    assert stored_items() == before


def test_repeated_payment_order_ids_within_a_checkout_are_rejected(api):
    body = checkout()
    body["payment_orders"][1]["payment_order_id"] = body["payment_orders"][0]["payment_order_id"]
    before = stored_items()
    reply = api.pay(body, "bad-dup-orders")
    assert_problem(reply, 422, ":validation-error", "payment_orders[1].payment_order_id")
    assert stored_items() == before


@pytest.mark.parametrize(
    "where",
    ["payment_method.token", "buyer_info.buyer_id", "payment_orders[1].seller_account", "card_number"],
)
def test_a_card_number_anywhere_is_rejected_and_never_echoed(api, where):
    # Given a raw card number (a Luhn-valid test PAN, with spaces) somewhere in the body
    pan = "4111 1111 1111 1111"
    body = mutate(where, pan)(checkout())
    before = stored_items()
    # When it is sent
    reply = api.pay(body, f"bad-pan-{where}")
    # Then it is rejected naming the field, the number is not in the answer, nothing is stored
    assert_problem(reply, 422, ":card-number-rejected", where)
    assert "4111" not in json.dumps(reply.body)
    assert stored_items() == before


def test_a_missing_idempotency_key_is_rejected(api):
    before = stored_items()
    reply = api.pay(checkout(), None)
    assert_problem(reply, 422, ":validation-error", "header Idempotency-Key")
    assert stored_items() == before


@pytest.mark.parametrize("key", ["x" * 256, "bad\u00e9key", ""])
def test_an_idempotency_key_outside_1_to_255_printable_characters_is_rejected(api, key):
    before = stored_items()
    reply = api.request("POST", "/v1/payments", checkout(), {"Idempotency-Key": key})
    assert reply.status == 422, reply.body
    assert stored_items() == before


def test_a_body_over_the_size_bound_is_rejected(api):
    body = checkout()
    body["buyer_info"]["buyer_id"] = "b" * 70_000
    before = stored_items()
    reply = api.pay(body, "bad-huge")
    assert_problem(reply, 413, ":payload-too-large")
    assert stored_items() == before


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"\"a string\"", b""])
def test_a_body_that_is_not_a_json_object_is_rejected(api, raw):
    before = stored_items()
    reply = api.request("POST", "/v1/payments", raw=raw, headers={"Idempotency-Key": "bad-raw"})
    assert 400 <= reply.status < 500 and reply.body["type"].startswith("urn:payments:problem:"), reply.body
    assert stored_items() == before
