"""The request guard's reproducers against the payment function's handler (API Gateway events, moto in-process).

Each is a request a hostile client sent to `payments serve`: a card number hidden where the old
guard did not look, a body that broke the parser, a media type it did not expect. Every one must
be a 4xx RFC 9457 problem naming the field and the rule, never quoting the value, and nothing stored.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions import registry
from payments.kernel.config import settings
from payments_dev.local.lambdas import LambdaContext

PAN = "4242424242424242"


def proxy_event(
    method: str = "POST",
    path: str = "/v1/payments",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k-guard", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": method, "path": path},
        "body": body,
        "isBase64Encoded": False,
    }


def checkout(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "checkout_id": "chk_guard",
        "buyer_info": {"buyer_id": "buyer_1", "email": "a@example.com"},
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": [
            {"payment_order_id": "po_guard", "seller_account": "s1", "amount": "1.00", "currency": "USD"}
        ],
    }
    for path, value in changes.items():
        target = body
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return body


@pytest.fixture()
def call(ddb: Any):
    from functions.payment import handler

    def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any, str]:
        response = handler.handler(event, LambdaContext(registry.PAYMENT.local_name))
        headers = dict(response.get("headers") or {})
        headers.update({k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()})
        text = response.get("body") or ""
        return response["statusCode"], headers, json.loads(text) if text else None, text

    return invoke


def stored(ddb: Any) -> dict[str, int]:
    s = settings()
    tables = (s.payments_table, s.idempotency_table, s.psp_table, s.wallets_table, s.ledger_table)
    return {t: ddb.scan(TableName=t, Select="COUNT")["Count"] for t in tables}


def assert_problem(status: int, headers: dict[str, str], body: Any, expected_status: int, type_suffix: str) -> None:
    assert status == expected_status, body
    assert headers["Content-Type"] == "application/problem+json"
    assert body["type"] == "urn:payments:problem:" + type_suffix, body
    assert body["status"] == expected_status and body["title"] and body["detail"]


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


# --- card numbers where the old guard did not look ---------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"checkout_id": "4242_4242_4242_4242"}, "checkout_id"),
        ({"buyer_info__buyer_id": "4242_4242_4242_4242"}, "buyer_info.buyer_id"),
        ({"payment_orders__0__payment_order_id": "4242_4242_4242_4242"}, "payment_orders[0].payment_order_id"),
        ({"payment_orders__0__seller_account": "4242.4242.4242.4242"}, "payment_orders[0].seller_account"),
        (
            {"buyer_info__email": "".join(chr(0xFF10 + int(c)) for c in "5555555555554444") + "@example.com"},
            "buyer_info.email",
        ),  # full-width digits
        (
            {"buyer_info__email": "".join(chr(0x0660 + int(c)) for c in "5555555555554444") + "@example.com"},
            "buyer_info.email",
        ),  # Arabic-Indic digits
        ({"payment_orders__0__amount": "4242.4242.4242.4242"}, "payment_orders[0].amount"),
        ({"payment_orders__0__amount": "4242/4242/4242/4242"}, "payment_orders[0].amount"),
        ({"payment_orders__0__amount": "4242  4242  4242  4242"}, "payment_orders[0].amount"),
        ({"payment_orders__0__amount": "4242\u00a04242\u00a04242\u00a04242"}, "payment_orders[0].amount"),
    ],
    ids=[
        "checkout_id-underscores",
        "buyer_id-underscores",
        "payment_order_id-underscores",
        "seller-dots",
        "fullwidth",
        "arabic-indic",
        "amount-dots",
        "amount-slashes",
        "amount-double-spaces",
        "amount-nbsp",
    ],
)
def test_a_card_number_in_any_form_is_refused_naming_the_field_and_nothing_is_stored(call, ddb, change, field):
    # Given a checkout with a card number written with separators or non-ASCII digits in one field
    before = stored(ddb)
    # When it is posted
    status, headers, body, text = call(proxy_event(body=json.dumps(checkout(**change), ensure_ascii=False)))
    # Then it is a card-number problem naming the field, no digit of the card comes back, nothing is stored
    assert_problem(status, headers, body, 422, "card-number-rejected")
    assert fields(body) == [field]
    assert "4242" not in text and "Location" not in headers
    assert stored(ddb) == before


def test_a_card_number_in_the_first_of_two_duplicate_keys_is_found(call, ddb):
    # Given a body whose first "checkout_id" is a card number and whose second is harmless
    text = json.dumps(checkout()).replace(
        '"checkout_id": "chk_guard"', f'"checkout_id": "{PAN}", "checkout_id": "chk_guard"'
    )
    before = stored(ddb)
    # When it is posted
    status, headers, body, answer = call(proxy_event(body=text))
    # Then the card number is found, though a JSON parser keeps only the last value
    assert_problem(status, headers, body, 422, "card-number-rejected")
    assert fields(body) == ["checkout_id"] and PAN not in answer
    assert stored(ddb) == before


def test_a_repeated_key_without_a_card_number_is_refused_naming_it(call, ddb):
    # Given a body that repeats "checkout_id" (which one counts is ambiguous)
    text = json.dumps(checkout()).replace(
        '"checkout_id": "chk_guard"', '"checkout_id": "chk_a", "checkout_id": "chk_guard"'
    )
    # When it is posted / Then it is a validation problem naming the key
    status, headers, body, _ = call(proxy_event(body=text))
    assert_problem(status, headers, body, 422, "validation-error")
    assert fields(body) == ["checkout_id"]


def test_a_card_number_in_the_idempotency_key_is_refused_before_the_idempotency_layer_stores_it(call, ddb):
    # Given a valid checkout whose Idempotency-Key is a card number with dashes
    before = stored(ddb)
    # When it is posted
    status, headers, body, text = call(
        proxy_event(body=json.dumps(checkout()), headers={"Idempotency-Key": "4242-4242-4242-4242"})
    )
    # Then it is refused naming the header, and neither the idempotency table nor any other holds anything
    assert_problem(status, headers, body, 422, "card-number-rejected")
    assert fields(body) == ["header Idempotency-Key"] and "4242" not in text
    assert stored(ddb) == before


@pytest.mark.parametrize(
    "path", [f"/v1/payments/{PAN}", "/v1/payments/4242_4242_4242_4242", "/v1/wallets/4242-4242-4242-4242"]
)
def test_a_card_number_in_a_get_path_is_never_echoed(call, path):
    # Given a GET whose path parameter is a card number
    # When it is sent
    status, headers, body, text = call(proxy_event("GET", path))
    # Then it is a card-number problem naming the parameter, and the digits are not in the answer
    assert_problem(status, headers, body, 422, "card-number-rejected")
    assert len(fields(body)) == 1 and fields(body)[0] in ("checkout_id", "seller_account")
    assert "4242" not in text


def test_an_unknown_route_is_answered_without_quoting_the_path(call):
    # Given a path that is no route
    status, headers, body, text = call(proxy_event("GET", "/v1/nothing-here-abc"))
    # Then it is a 404 problem that does not repeat the path
    assert_problem(status, headers, body, 404, "not-found")
    assert "nothing-here-abc" not in text


# --- bodies that broke the parser ----------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["[" * 30_000, '{"a":' * 2_000 + "1" + "}" * 2_000, '{"checkout_id": ' + "[" * 33 + "]" * 33 + "}"],
    ids=["30000-brackets", "2000-deep-objects", "33-deep"],
)
def test_a_body_nested_too_deep_is_a_400_problem_not_a_recursion_error(call, ddb, text):
    # Given a body nested far deeper than any checkout
    before = stored(ddb)
    # When it is posted
    status, headers, body, _ = call(proxy_event(body=text))
    # Then it is a malformed-request problem, and nothing is stored
    assert_problem(status, headers, body, 400, "malformed-request")
    assert stored(ddb) == before


def test_brackets_inside_strings_do_not_count_towards_the_depth():
    # Given a string full of brackets inside a shallow body / When its depth is scanned / Then it is not deep
    from functions.payment.guard import json_too_deep

    assert json_too_deep(json.dumps({"a": "[" * 100 + '\\"{' * 50})) is False
    assert json_too_deep("[" * 33) is True and json_too_deep("[" * 32 + "]" * 32) is False


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"a": 1', b"\xff\xfe{}", ("1" * 5000).encode()],
    ids=["syntax", "truncated", "not-utf8", "huge-int"],
)
def test_a_body_that_is_not_json_is_a_400_problem(call, raw):
    # Given a body that is not UTF-8 JSON (sent base64-encoded, as API Gateway does with binary bodies)
    import base64

    event = proxy_event(body=base64.b64encode(raw).decode())
    event["isBase64Encoded"] = True
    # When it is posted / Then it is a malformed-request problem
    status, headers, body, _ = call(event)
    assert_problem(status, headers, body, 400, "malformed-request")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_a_body_of_another_media_type_is_a_415_problem(call, ddb, content_type):
    # Given a valid checkout sent under another media type (multipart without a boundary among them)
    before = stored(ddb)
    # When it is posted
    status, headers, body, _ = call(proxy_event(body=json.dumps(checkout()), headers={"Content-Type": content_type}))
    # Then it is an unsupported-media-type problem naming the header, and nothing is stored
    assert_problem(status, headers, body, 415, "unsupported-media-type")
    assert fields(body) == ["header Content-Type"]
    assert stored(ddb) == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"']
)
def test_json_with_or_without_a_utf8_charset_passes_the_media_type_check(content_type):
    from functions.payment.guard import is_json as _is_json

    assert _is_json(content_type) is True


@pytest.mark.parametrize("value", ["a\x00b@example.com", "a@exa\x01mple.com", "a@example.com\n"])
def test_a_control_character_in_the_email_is_refused_naming_the_field(call, ddb, value):
    # Given an e-mail address holding a NUL or another control character
    before = stored(ddb)
    # When it is posted
    status, headers, body, _ = call(proxy_event(body=json.dumps(checkout(buyer_info__email=value))))
    # Then it is a validation problem naming buyer_info.email, and nothing is stored
    assert_problem(status, headers, body, 422, "validation-error")
    assert fields(body) == ["buyer_info.email"]
    assert stored(ddb) == before


def test_a_lone_surrogate_is_refused_naming_the_field(call, ddb):
    # Given a JSON escape that is half a UTF-16 pair (no valid string can be stored from it)
    text = json.dumps(checkout()).replace('"a@example.com"', '"a\\ud800@example.com"')
    # When it is posted / Then it is a validation problem naming the field
    status, headers, body, _ = call(proxy_event(body=text))
    assert_problem(status, headers, body, 422, "validation-error")
    assert fields(body) == ["buyer_info.email"]


# --- methods ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/payments", "POST"),
        ("GET", "/v1/payments", "POST"),
        ("PUT", "/v1/payments/chk_1", "GET"),
        ("POST", "/v1/wallets/s1", "GET"),
        ("PATCH", "/v1/ledger/trial-balance", "GET"),
    ],
)
def test_an_unknown_method_on_a_known_path_is_a_405_with_allow(call, method, path, allow):
    # Given a method the path does not answer (with a body of another media type, even)
    event = proxy_event(method, path, body="x", headers={"Content-Type": "text/plain"})
    # When it is sent / Then it is a 405 problem with the Allow header
    status, headers, body, _ = call(event)
    assert_problem(status, headers, body, 405, "method-not-allowed")
    assert headers["Allow"] == allow


def test_a_get_ignores_a_body_it_does_not_take(call):
    # Given a GET with a body that is not JSON / When it is sent / Then the body is not parsed: 200
    status, _, body, _ = call(
        proxy_event("GET", "/v1/ledger/trial-balance", body="[" * 30_000, headers={"Content-Type": "text/plain"})
    )
    assert status == 200, body


@pytest.mark.parametrize(
    ("path", "field"), [("/v1/wallets/\u00d7\u00f8", "seller_account"), ("/v1/payments/a b", "checkout_id")]
)
def test_a_path_parameter_outside_the_identifier_characters_is_a_422_naming_it(call, path, field):
    # Given a GET whose path parameter holds characters the router does not take (schemathesis found a 404 here)
    status, headers, body, _ = call(proxy_event("GET", path))
    # Then it is a validation problem naming the parameter, as documented, not an undocumented 404
    assert_problem(status, headers, body, 422, "validation-error")
    assert fields(body) == [field]


def test_no_validation_error_quotes_a_value_that_was_sent(call):
    # Given a checkout where every field is wrong and carries a distinctive value
    marker = "Zq9MARK"
    body = {
        "checkout_id": f"{marker} 1",
        "buyer_info": {"buyer_id": f"{marker}/2", "email": f"{marker}3"},
        "payment_method": {"type": f"{marker}4", "token": f"{marker}5"},
        "payment_orders": [
            {
                "payment_order_id": f"{marker}.6",
                "seller_account": f"{marker}?7",
                "amount": f"{marker}8",
                "currency": f"{marker}9",
            }
        ],
    }
    # When it is posted
    status, headers, problem_body, text = call(proxy_event(body=json.dumps(body)))
    # Then every field is named, and none of the values comes back
    assert_problem(status, headers, problem_body, 422, "validation-error")
    assert len(fields(problem_body)) >= 8
    assert marker not in text


@pytest.mark.parametrize(("query", "field"), [({"note": PAN}, "query note"), ({PAN: "1"}, "query (key)")])
def test_a_card_number_in_the_query_string_is_refused_without_repeating_it(call, query, field):
    # Given a GET with a card number as a query value, or as a query name
    event = proxy_event("GET", "/v1/ledger/trial-balance")
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    # When it is sent / Then it is refused naming the place, and the digits are not in the answer
    status, headers, body, text = call(event)
    assert_problem(status, headers, body, 422, "card-number-rejected")
    assert fields(body) == [field] and PAN not in text


def test_field_paths_made_of_short_numeric_keys_never_spell_a_card_number(call):
    # Given nested keys, each too short to be a card number, that joined by dots spell one
    # ("4242.4242.4242.4242": the 4-4-4-4 grouping of a Luhn-valid Visa number), above a value the guard refuses
    from payments.kernel.pan import contains_pan

    assert not contains_pan("4242") and contains_pan("4242.4242.4242.4242")
    body = checkout()
    body["4242"] = {"4242": {"4242": {"4242": "a\u0000"}}}
    # When it is posted
    status, headers, problem_body, text = call(proxy_event(body=json.dumps(body)))
    # Then the field is named with its digits masked, and no field path in the answer spells the card number
    assert_problem(status, headers, problem_body, 422, "validation-error")
    assert fields(problem_body) == ["####.####.####.####"]
    assert "4242.4242" not in text


@pytest.mark.parametrize(
    ("single", "values"),
    [("1", ["1", PAN]), (PAN, [PAN, "1"]), ("1", ["1", "2", "4242    4242    4242    4242"])],
    ids=["last-of-two", "first-of-two", "third-with-four-spaces"],
)
def test_every_value_of_a_repeated_query_parameter_is_checked(call, single, values):
    # Given ?x=1&x=<card number>: API Gateway's single-value map holds one value, the multi-value map all of them
    event = proxy_event("GET", "/v1/ledger/trial-balance")
    event["queryStringParameters"] = {"x": single}
    event["multiValueQueryStringParameters"] = {"x": values}
    # When it is sent / Then it is refused naming the parameter, whichever value holds the card number
    status, headers, body, text = call(event)
    assert_problem(status, headers, body, 422, "card-number-rejected")
    assert fields(body) == ["query x"] and "4242" not in text


@pytest.mark.parametrize(
    "key",
    ["ef72c853-7278-4150-808e-32c1afec042d", "0214c162-3354-7261-9422-279a3cc36304", "ord_20391021380240"],
    ids=["uuid4", "uuid7", "date-stamped"],
)
def test_an_idempotency_key_that_is_no_card_number_is_accepted(call, ddb, key, monkeypatch):
    # Given a checkout whose Idempotency-Key is a UUID (v4, v7) or a dated id that the old policy refused
    from functions.payment import logic

    monkeypatch.setattr(logic, "start_workflow", lambda payment: None)  # no state machine here
    # When it is posted / Then it is accepted
    status, _, body, _ = call(proxy_event(body=json.dumps(checkout()), headers={"Idempotency-Key": key}))
    assert status == 202, body


def test_a_card_number_with_four_spaces_between_its_groups_is_refused(call, ddb):
    # Given a checkout whose e-mail holds a card number whose groups are four spaces apart
    before = stored(ddb)
    body = checkout(buyer_info__email="4242    4242    4242    4242@example.com")
    # When it is posted / Then it is refused naming the field, and nothing is stored
    status, headers, problem_body, text = call(proxy_event(body=json.dumps(body)))
    assert_problem(status, headers, problem_body, 422, "card-number-rejected")
    assert fields(problem_body) == ["buyer_info.email"] and "4242" not in text
    assert stored(ddb) == before


@pytest.mark.parametrize(
    ("change", "headers", "field"),
    [
        ({"checkout_id": f"card{PAN}"}, {}, "checkout_id"),
        ({"payment_orders__0__seller_account": f"visa{PAN}exp1226"}, {}, "payment_orders[0].seller_account"),
        ({"buyer_info__email": f"x{PAN}y@example.com"}, {}, "buyer_info.email"),
        ({}, {"Idempotency-Key": f"card{PAN}"}, "header Idempotency-Key"),
    ],
    ids=["checkout_id", "seller_account", "email", "idempotency-key"],
)
def test_a_card_number_glued_to_a_word_is_refused_naming_the_field(call, ddb, change, headers, field):
    # Given a checkout with a card number typed right after a word, in a field or in the Idempotency-Key
    before = stored(ddb)
    # When it is posted
    status, response_headers, body, text = call(proxy_event(body=json.dumps(checkout(**change)), headers=headers))
    # Then it is refused naming the place, the digits do not come back, and nothing is stored
    assert_problem(status, response_headers, body, 422, "card-number-rejected")
    assert fields(body) == [field] and "4242" not in text
    assert stored(ddb) == before


@pytest.mark.parametrize(
    "key",
    [
        f"c{PAN}" + "abcdef012345678",  # a UUID written without dashes (32 hex) whose digit run is a card number
        f"7Z{PAN}ABCDEFGH",  # a ULID whose digit run is a card number
        f"e{PAN}" + "f" * 23,  # a SHA-1 digest in hex
        f"E{PAN}" + "F" * 47,  # a SHA-256 digest in hex, upper case
    ],
    ids=["uuid-without-dashes", "ulid", "sha1-hex", "sha256-hex"],
)
def test_an_idempotency_key_that_is_a_hex_digest_or_a_ulid_is_accepted(call, ddb, key, monkeypatch):
    # Given a checkout whose Idempotency-Key is machine-made (hex of a digest's length, a ULID) and holds a
    # digit run that passes Luhn and an issuer range
    from functions.payment import logic
    from payments.kernel.pan import luhn_valid

    assert luhn_valid(PAN) and len(key) in (26, 32, 40, 64)
    monkeypatch.setattr(logic, "start_workflow", lambda payment: None)  # no state machine here
    # When it is posted / Then it is accepted
    status, _, body, _ = call(proxy_event(body=json.dumps(checkout()), headers={"Idempotency-Key": key}))
    assert status == 202, body
