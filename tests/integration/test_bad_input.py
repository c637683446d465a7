"""Every bad-input rule of the contract: a 4xx RFC 9457 problem naming the field, and nothing stored."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from payments.kernel import aws
from payments.kernel.config import settings
from tests.integration.conftest import assert_problem, checkout


def stored_items() -> dict[str, int]:
    """Item counts of the tables a checkout writes to (payments, idempotency, PSP)."""
    ddb = aws.client("dynamodb")
    s = settings()
    return {
        t: ddb.scan(TableName=t, Select="COUNT", ConsistentRead=True)["Count"]
        for t in (s.payments_table, s.idempotency_table, s.psp_table)
    }


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
    (
        "amount-fraction-on-jpy",
        lambda b: mutate("payment_orders[0].currency", "JPY")(mutate("payment_orders[0].amount", "1.5")(b)),
        "payment_orders[0].amount",
    ),
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


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b'"a string"', b""])
def test_a_body_that_is_not_a_json_object_is_rejected(api, raw):
    before = stored_items()
    reply = api.request("POST", "/v1/payments", raw=raw, headers={"Idempotency-Key": "bad-raw"})
    assert 400 <= reply.status < 500 and reply.body["type"].startswith("urn:payments:problem:"), reply.body
    assert stored_items() == before


# --- issue 14: a hostile client against `payments serve` ------------------------------------------
PAN_ = "4242424242424242"


@pytest.mark.parametrize(
    "where",
    ["checkout_id", "buyer_info.buyer_id", "payment_orders[0].payment_order_id", "payment_orders[1].seller_account"],
)
def test_an_identifier_that_is_a_card_number_with_underscores_is_refused_and_nothing_is_stored(api, where):
    # Given a checkout whose identifier is a card number with underscores (the identifier pattern allows '_')
    body = mutate(where, "4242_4242_4242_4242")(checkout())
    before = stored_items()
    # When it is sent
    reply = api.pay(body, f"bad-id-pan-{where}")
    # Then it is a card-number problem naming the field; no Location, no digits in the answer, nothing stored
    assert_problem(reply, 422, ":card-number-rejected", where)
    assert "Location" not in reply.headers and "4242" not in json.dumps(reply.body)
    assert stored_items() == before


def test_a_card_number_in_the_first_of_two_duplicate_keys_is_refused(api):
    # Given a body whose first checkout_id is a card number, the second a valid id
    body = checkout()
    raw = json.dumps(body).replace('"checkout_id": ', f'"checkout_id": "{PAN_}", "checkout_id": ', 1).encode()
    before = stored_items()
    # When it is sent
    reply = api.request("POST", "/v1/payments", raw=raw, headers={"Idempotency-Key": "bad-dup-key-pan"})
    # Then the first value is checked too
    assert_problem(reply, 422, ":card-number-rejected", "checkout_id")
    assert PAN_ not in json.dumps(reply.body)
    assert stored_items() == before


@pytest.mark.parametrize(
    "digits",
    [
        "".join(chr(0xFF10 + int(c)) for c in "5555555555554444"),
        "".join(chr(0x0660 + int(c)) for c in "5555555555554444"),
    ],
    ids=["full-width", "arabic-indic"],
)
def test_a_card_number_in_other_scripts_digits_is_refused(api, digits):
    # Given an e-mail address holding a card number in full-width or Arabic-Indic digits
    body = mutate("buyer_info.email", f"{digits}@example.com")(checkout())
    before = stored_items()
    # When it is sent / Then it is refused like an ASCII card number
    reply = api.pay(body, "bad-unicode-pan")
    assert_problem(reply, 422, ":card-number-rejected", "buyer_info.email")
    assert stored_items() == before


def test_a_card_number_in_the_idempotency_key_is_never_stored(api):
    # Given a valid checkout whose Idempotency-Key is a card number
    before = stored_items()
    # When it is sent
    reply = api.pay(checkout(), "4242 4242 4242 4242")
    # Then it is refused naming the header, before the idempotency layer stores anything
    assert_problem(reply, 422, ":card-number-rejected", "header Idempotency-Key")
    assert stored_items() == before


def test_a_card_number_in_a_get_path_is_not_echoed(api):
    # Given a GET of a payment whose id is a card number / When it is sent
    reply = api.payment(PAN_)
    # Then it is refused naming the parameter, and the digits are not in the answer
    assert_problem(reply, 422, ":card-number-rejected", "checkout_id")
    assert PAN_ not in json.dumps(reply.body)


@pytest.mark.parametrize(
    "amount",
    ["4242.4242.4242.4242", "4242/4242/4242/4242", "4242  4242  4242  4242", "4242\u00a04242\u00a04242\u00a04242"],
)
def test_a_card_number_as_an_amount_is_not_echoed(api, amount):
    # Given an amount that is a card number with dots, slashes, double or no-break spaces
    body = mutate("payment_orders[0].amount", amount)(checkout())
    # When it is sent / Then it is refused naming the field, never quoting it
    reply = api.pay(body, "bad-amount-pan")
    assert_problem(reply, 422, ":card-number-rejected", "payment_orders[0].amount")
    assert "4242" not in json.dumps(reply.body)


@pytest.mark.parametrize(
    "raw", [b"[" * 30_000, b'{"a":' * 2_000 + b"1" + b"}" * 2_000], ids=["30000-brackets", "2000-deep-objects"]
)
def test_a_deeply_nested_body_is_a_400_problem(api, raw):
    before = stored_items()
    reply = api.request("POST", "/v1/payments", raw=raw, headers={"Idempotency-Key": "bad-deep"})
    assert_problem(reply, 400, ":malformed-request", "(body)")
    assert stored_items() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_a_body_that_is_not_json_by_media_type_is_a_415_problem(api, content_type):
    before = stored_items()
    raw = json.dumps(checkout()).encode()
    reply = api.request(
        "POST", "/v1/payments", raw=raw, headers={"Idempotency-Key": "bad-media", "Content-Type": content_type}
    )
    assert_problem(reply, 415, ":unsupported-media-type", "header Content-Type")
    assert stored_items() == before


def test_a_nul_in_the_email_is_refused_naming_it(api):
    before = stored_items()
    reply = api.pay(mutate("buyer_info.email", "a\u0000b@example.com")(checkout()), "bad-nul")
    assert_problem(reply, 422, ":validation-error", "buyer_info.email")
    assert stored_items() == before


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/payments", "POST"),
        ("PUT", "/v1/payments/chk_1", "GET"),
        ("POST", "/v1/ledger/trial-balance", "GET"),
    ],
)
def test_an_unknown_method_is_a_405_problem_with_allow(api, method, path, allow):
    reply = api.request(method, path)
    assert_problem(reply, 405, ":method-not-allowed")
    assert reply.headers["Allow"] == allow
