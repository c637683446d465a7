"""Errors in the merchant's words: a table of bad requests swept through the real handlers of both APIs
(checkout and refunds, moto in-process). Every answer is a 4xx RFC 9457 problem of the contract's
``type``; no problem holds pydantic's wording; every ``errors[].field`` is the merchant's field path and
its message names that field and says what is expected; nothing is stored."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from functions import merchant_words, registry
from payments.kernel.config import settings
from payments.psp.simulator import SimulatedPsp
from payments_dev.local.lambdas import LambdaContext
from tests.unit.conftest import Repos

#: what pydantic, Powertools or a regular expression say, which a merchant must never read
FORBIDDEN = (
    "should",  # String should match pattern, Input should be a valid string, List should have at least...
    "Value error",
    "value_error",
    "Field required",
    "Extra inputs are not permitted",
    "pydantic",
    "errors.pydantic.dev",
    "valid dictionary",
    "instance of",
    "Assertion failed",
    "literal_error",
    "[A-Z]",
    "^",
    "$",
    "{3}",
    "not a valid checkout",
    "Traceback",
)

DELETE = object()
PAN = "4242424242424242"

CHECKOUT: dict[str, Any] = {
    "checkout_id": "chk_words",
    "buyer_info": {"buyer_id": "buyer_1", "email": "a@example.com"},
    "payment_method": {"type": "card", "token": "tok_visa"},
    "payment_orders": [
        {"payment_order_id": "po_w1", "seller_account": "seller_books", "amount": "19.99", "currency": "USD"},
        {"payment_order_id": "po_w2", "seller_account": "seller_toys", "amount": "5.00", "currency": "USD"},
    ],
}
REFUND: dict[str, Any] = {"refund_id": "rf_w", "payment_order_id": "po_1", "amount": "5.00", "currency": "USD"}


def changed(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``body`` with each ``a__0__b=value`` set (or, with DELETE, removed)."""
    body = copy.deepcopy(body)
    for path, value in changes.items():
        target: Any = body
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        key: Any = int(last) if last.isdigit() else last
        if value is DELETE:
            del target[key]
        else:
            target[key] = value
    return body


def order(**fields: Any) -> dict[str, Any]:
    return {**CHECKOUT["payment_orders"][0], **fields}


# (id, body, the fields named, in order)
PAYMENT_CASES: list[tuple[str, Any, list[str]]] = [
    ("amount-json-number", changed(CHECKOUT, payment_orders__0__amount=19.99), ["payment_orders[0].amount"]),
    ("amount-json-integer", changed(CHECKOUT, payment_orders__1__amount=5), ["payment_orders[1].amount"]),
    ("amount-null", changed(CHECKOUT, payment_orders__0__amount=None), ["payment_orders[0].amount"]),
    ("amount-empty", changed(CHECKOUT, payment_orders__0__amount=""), ["payment_orders[0].amount"]),
    ("amount-3-digits-usd", changed(CHECKOUT, payment_orders__1__amount="5.001"), ["payment_orders[1].amount"]),
    (
        "amount-fraction-jpy",
        changed(CHECKOUT, payment_orders__0__currency="JPY", payment_orders__0__amount="1.5"),
        ["payment_orders[0].amount"],
    ),
    ("amount-zero", changed(CHECKOUT, payment_orders__0__amount="0.00"), ["payment_orders[0].amount"]),
    ("amount-negative", changed(CHECKOUT, payment_orders__0__amount="-1.00"), ["payment_orders[0].amount"]),
    ("amount-exponent", changed(CHECKOUT, payment_orders__0__amount="1e3"), ["payment_orders[0].amount"]),
    ("amount-leading-space", changed(CHECKOUT, payment_orders__0__amount=" 1.00"), ["payment_orders[0].amount"]),
    ("amount-comma", changed(CHECKOUT, payment_orders__0__amount="1,00"), ["payment_orders[0].amount"]),
    ("amount-huge", changed(CHECKOUT, payment_orders__0__amount="1000000000000.00"), ["payment_orders[0].amount"]),
    ("amount-too-long", changed(CHECKOUT, payment_orders__0__amount="1" * 40), ["payment_orders[0].amount"]),
    ("currency-lowercase", changed(CHECKOUT, payment_orders__0__currency="usd"), ["payment_orders[0].currency"]),
    ("currency-two-letters", changed(CHECKOUT, payment_orders__0__currency="US"), ["payment_orders[0].currency"]),
    ("currency-four-letters", changed(CHECKOUT, payment_orders__0__currency="USDD"), ["payment_orders[0].currency"]),
    ("currency-unknown", changed(CHECKOUT, payment_orders__0__currency="ABC"), ["payment_orders[0].currency"]),
    ("currency-withdrawn", changed(CHECKOUT, payment_orders__0__currency="HRK"), ["payment_orders[0].currency"]),
    ("currency-number", changed(CHECKOUT, payment_orders__0__currency=840), ["payment_orders[0].currency"]),
    ("missing-checkout-id", changed(CHECKOUT, checkout_id=DELETE), ["checkout_id"]),
    ("missing-buyer-info", changed(CHECKOUT, buyer_info=DELETE), ["buyer_info"]),
    ("missing-payment-method", changed(CHECKOUT, payment_method=DELETE), ["payment_method"]),
    ("missing-orders", changed(CHECKOUT, payment_orders=DELETE), ["payment_orders"]),
    (
        "missing-payment-order-id",
        changed(CHECKOUT, payment_orders__0__payment_order_id=DELETE),
        ["payment_orders[0].payment_order_id"],
    ),
    (
        "missing-seller",
        changed(CHECKOUT, payment_orders__1__seller_account=DELETE),
        ["payment_orders[1].seller_account"],
    ),
    ("missing-amount", changed(CHECKOUT, payment_orders__0__amount=DELETE), ["payment_orders[0].amount"]),
    ("missing-currency", changed(CHECKOUT, payment_orders__0__currency=DELETE), ["payment_orders[0].currency"]),
    ("missing-buyer-id", changed(CHECKOUT, buyer_info__buyer_id=DELETE), ["buyer_info.buyer_id"]),
    ("missing-token", changed(CHECKOUT, payment_method__token=DELETE), ["payment_method.token"]),
    ("missing-method-type", changed(CHECKOUT, payment_method__type=DELETE), ["payment_method.type"]),
    ("extra-field", changed(CHECKOUT, coupon="SAVE10"), ["coupon"]),
    ("extra-order-field", changed(CHECKOUT, payment_orders__0__discount="1.00"), ["payment_orders[0].discount"]),
    ("id-with-space", changed(CHECKOUT, checkout_id="chk 1/../x"), ["checkout_id"]),
    ("id-empty", changed(CHECKOUT, checkout_id=""), ["checkout_id"]),
    ("id-leading-underscore", changed(CHECKOUT, checkout_id="_chk"), ["checkout_id"]),
    ("id-too-long", changed(CHECKOUT, buyer_info__buyer_id="b" * 65), ["buyer_info.buyer_id"]),
    ("id-number", changed(CHECKOUT, payment_orders__1__payment_order_id=12), ["payment_orders[1].payment_order_id"]),
    ("method-not-card", changed(CHECKOUT, payment_method__type="bank"), ["payment_method.type"]),
    ("token-not-a-token", changed(CHECKOUT, payment_method__token="visa"), ["payment_method.token"]),
    ("token-number", changed(CHECKOUT, payment_method__token=4), ["payment_method.token"]),
    ("no-orders", changed(CHECKOUT, payment_orders=[]), ["payment_orders"]),
    (
        "too-many-orders",
        changed(CHECKOUT, payment_orders=[order(payment_order_id=f"po_{i}") for i in range(51)]),
        ["payment_orders"],
    ),
    ("orders-not-a-list", changed(CHECKOUT, payment_orders="po_1"), ["payment_orders"]),
    ("order-not-an-object", changed(CHECKOUT, payment_orders__1="po_2"), ["payment_orders[1]"]),
    ("buyer-info-not-an-object", changed(CHECKOUT, buyer_info="buyer_1"), ["buyer_info"]),
    ("email-invalid", changed(CHECKOUT, buyer_info__email="not-an-email"), ["buyer_info.email"]),
    ("email-too-long", changed(CHECKOUT, buyer_info__email="a" * 250 + "@example.com"), ["buyer_info.email"]),
    ("email-nul", changed(CHECKOUT, buyer_info__email="a\u0000b@example.com"), ["buyer_info.email"]),
    (
        "order-id-repeated",
        changed(CHECKOUT, payment_orders__1__payment_order_id="po_w1"),
        ["payment_orders[1].payment_order_id"],
    ),
    ("empty-object", {}, ["checkout_id", "buyer_info", "payment_method", "payment_orders"]),
    ("a-list", [], ["(body)"]),
    ("a-string", "checkout", ["(body)"]),
    (
        "two-fields-at-once",
        changed(CHECKOUT, payment_orders__0__amount=19.99, payment_orders__1__currency="usd"),
        ["payment_orders[0].amount", "payment_orders[1].currency"],
    ),
]

REFUND_CASES: list[tuple[str, Any, list[str]]] = [
    ("amount-json-number", changed(REFUND, amount=5), ["amount"]),
    ("amount-json-float", changed(REFUND, amount=4.99), ["amount"]),
    ("amount-3-digits", changed(REFUND, amount="5.001"), ["amount"]),
    ("amount-zero", changed(REFUND, amount="0"), ["amount"]),
    ("amount-negative", changed(REFUND, amount="-5.00"), ["amount"]),
    ("currency-lowercase", changed(REFUND, currency="usd"), ["currency"]),
    ("currency-unknown", changed(REFUND, currency="XYZ"), ["currency"]),
    ("currency-not-the-orders", changed(REFUND, currency="EUR"), ["currency"]),
    ("missing-refund-id", changed(REFUND, refund_id=DELETE), ["refund_id"]),
    ("missing-payment-order-id", changed(REFUND, payment_order_id=DELETE), ["payment_order_id"]),
    ("missing-currency", changed(REFUND, currency=DELETE), ["currency"]),
    ("refund-id-with-space", changed(REFUND, refund_id="rf 1"), ["refund_id"]),
    ("payment-order-id-too-long", changed(REFUND, payment_order_id="p" * 65), ["payment_order_id"]),
    ("reason-bad-characters", changed(REFUND, reason="because!"), ["reason"]),
    ("reason-too-long", changed(REFUND, reason="r" * 65), ["reason"]),
    ("reason-number", changed(REFUND, reason=1), ["reason"]),
    ("extra-field", changed(REFUND, note="thanks"), ["note"]),
    ("empty-object", {}, ["refund_id", "payment_order_id", "currency"]),
]


def proxy_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k-words", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": method, "path": path},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


@pytest.fixture()
def handlers(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The checkout and refunds functions' handlers, over one settled order po_1 (70.00 USD)."""
    from functions.payment import handler as payment
    from functions.refunds import handler as refunds
    from payments.refunds import logic
    from tests.unit.refunds.test_refunds import paid

    monkeypatch.setattr(logic, "start_workflow", lambda *_a, **_k: None)
    paid(repos, SimulatedPsp(), "po_1", 7000)
    return {"payment": payment, "refunds": refunds}


def call(handler: Any, local_name: str, event: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    response = handler.handler(event, LambdaContext(local_name))
    headers = dict(response.get("headers") or {})
    headers.update({k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()})
    return response["statusCode"], headers, json.loads(response["body"])


def pay(handlers: dict[str, Any], body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    status, _, problem = call(
        handlers["payment"], registry.PAYMENT.local_name, proxy_event("POST", "/v1/payments", body, headers)
    )
    return status, problem


def refund(handlers: dict[str, Any], body: Any) -> tuple[int, dict[str, Any]]:
    key = {"Idempotency-Key": f"k-{body.get('refund_id')}"} if isinstance(body, dict) else None
    event = proxy_event("POST", "/v1/refunds", body, key)
    status, _, problem = call(handlers["refunds"], registry.REFUNDS.local_name, event)
    return status, problem


def stored(ddb: Any) -> dict[str, int]:
    s = settings()
    tables = (s.payments_table, s.idempotency_table, s.psp_table, s.wallets_table, s.ledger_table)
    return {t: ddb.scan(TableName=t, Select="COUNT")["Count"] for t in tables}


def assert_in_merchant_words(problem: dict[str, Any], fields: list[str]) -> None:
    """No validator wording anywhere; the fields named, each message naming its field; detail says it."""
    text = json.dumps(problem)
    for phrase in FORBIDDEN:
        for part in (problem["title"], problem["detail"], *(e["message"] for e in problem.get("errors", []))):
            assert phrase not in part, f"{phrase!r} in {part!r}"
    assert merchant_words.UNKNOWN not in text, problem
    assert [e["field"] for e in problem["errors"]] == fields, problem
    for error in problem["errors"]:
        assert error["message"].startswith(merchant_words.subject(error["field"]) + " "), error
        assert (
            error["message"].lower() in problem["detail"].lower()
            or len(problem["errors"]) > merchant_words.DETAIL_LIMIT
        )


@pytest.mark.parametrize(("case", "body", "fields"), PAYMENT_CASES, ids=[c[0] for c in PAYMENT_CASES])
def test_a_bad_checkout_is_answered_in_the_merchants_words(
    handlers: dict[str, Any], ddb: Any, case: str, body: Any, fields: list[str]
) -> None:
    # Given a checkout broken in one way
    before = stored(ddb)
    # When it is posted to the checkout function
    status, problem = pay(handlers, body)
    # Then it is a validation problem in the merchant's words, naming the fields, and nothing is stored
    assert (status, problem["type"]) == (422, "urn:payments:problem:validation-error"), problem
    assert_in_merchant_words(problem, fields)
    assert stored(ddb) == before


@pytest.mark.parametrize(("case", "body", "fields"), REFUND_CASES, ids=[c[0] for c in REFUND_CASES])
def test_a_bad_refund_is_answered_in_the_merchants_words(
    handlers: dict[str, Any], ddb: Any, case: str, body: Any, fields: list[str]
) -> None:
    # Given a refund of po_1 broken in one way
    before = stored(ddb)
    # When it is posted to the refunds function
    status, problem = refund(handlers, body)
    # Then it is a validation problem in the merchant's words, naming the fields, and nothing is stored
    assert (status, problem["type"]) == (422, "urn:payments:problem:validation-error"), problem
    assert_in_merchant_words(problem, fields)
    assert stored(ddb) == before


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        ({"Idempotency-Key": ""}, "must be 1-255 printable ASCII characters"),
        ({"Idempotency-Key": "k" * 256}, "must be 1-255 printable ASCII characters"),
        ({"Idempotency-Key": "cl\u00e9"}, "must be 1-255 printable ASCII characters"),
        ({"Idempotency-Key": " k"}, "must be 1-255 printable ASCII characters"),
    ],
    ids=["empty", "too-long", "not-ascii", "leading-space"],
)
def test_a_bad_idempotency_key_is_named_as_the_header(
    handlers: dict[str, Any], ddb: Any, headers: dict[str, str], rule: str
) -> None:
    before = stored(ddb)
    status, problem = pay(handlers, CHECKOUT, headers)
    assert status == 422, problem
    assert_in_merchant_words(problem, ["header Idempotency-Key"])
    assert problem["errors"][0]["message"] == f"the Idempotency-Key header {rule}, not starting or ending with a space"
    assert stored(ddb) == before


def test_a_missing_idempotency_key_is_required(handlers: dict[str, Any], ddb: Any) -> None:
    event = proxy_event("POST", "/v1/payments", CHECKOUT)
    del event["headers"]["Idempotency-Key"], event["multiValueHeaders"]["Idempotency-Key"]
    status, _, problem = call(handlers["payment"], registry.PAYMENT.local_name, event)
    assert status == 422
    assert_in_merchant_words(problem, ["header Idempotency-Key"])
    assert problem["detail"] == "The Idempotency-Key header is required."


@pytest.mark.parametrize("amount", [12.34, 1234, 4.2e3, 4242424242424])
def test_an_amount_sent_as_a_json_number_is_told_to_be_a_string_and_never_echoed(
    handlers: dict[str, Any], amount: float
) -> None:
    # Given an amount sent as a JSON number (the last has a card number's length, not a card number's checksum)
    status, problem = pay(handlers, changed(CHECKOUT, payment_orders__0__amount=amount))
    # Then the merchant is told to send a string like "19.99", and the number is not quoted back
    assert status == 422
    assert problem["errors"] == [
        {
            "field": "payment_orders[0].amount",
            "message": 'payment_orders[0].amount must be sent as a string such as "19.99", not as a JSON number',
        }
    ]
    assert problem["detail"] == problem["errors"][0]["message"] + "."
    assert not {str(amount), "1234", "4200", "4242"} & set(re.findall(r"[0-9.e]+", json.dumps(problem)))


def test_a_card_number_sent_as_a_json_number_amount_is_refused_as_a_card_number(handlers: dict[str, Any]) -> None:
    status, problem = pay(handlers, changed(CHECKOUT, payment_orders__0__amount=int(PAN)))
    assert (status, problem["type"]) == (422, "urn:payments:problem:card-number-rejected")
    assert "4242" not in json.dumps(problem)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"payment_orders__0__currency": "usd"},
            "payment_orders[0].currency must be a three-letter ISO 4217 code such as USD",
        ),
        (
            {"payment_orders__0__currency": "HRK"},
            "payment_orders[0].currency must be an active ISO 4217 currency code such as USD, EUR or JPY (this one is "
            "withdrawn or unknown)",
        ),
        ({"payment_orders__0__payment_order_id": DELETE}, "payment_orders[0].payment_order_id is required"),
        (
            {"payment_orders__1__amount": "5.001"},
            "payment_orders[1].amount must have at most 2 decimal places: USD has 2 minor units",
        ),
        (
            {"payment_orders__0__currency": "JPY", "payment_orders__0__amount": "1.5"},
            "payment_orders[0].amount must be a whole number: JPY has no minor units",
        ),
        ({"payment_orders__0__amount": "0.00"}, "payment_orders[0].amount must be greater than zero"),
        (
            {"payment_orders__0__amount": "1000000000000.00"},
            "payment_orders[0].amount must be at most 100000000000.00 USD",
        ),
        ({"coupon": "SAVE10"}, "coupon is not a field of this request: remove it"),
        ({"payment_method__type": "bank"}, 'payment_method.type must be "card", the only payment method type'),
        ({"payment_orders": []}, "payment_orders must be a list of 1 to 50 payment orders"),
    ],
)
def test_the_messages_say_what_is_expected(handlers: dict[str, Any], changes: dict[str, Any], message: str) -> None:
    status, problem = pay(handlers, changed(CHECKOUT, **changes))
    assert status == 422
    assert [e["message"] for e in problem["errors"]] == [message]
    assert problem["detail"] == message + "."


def test_a_refund_over_the_limit_says_how_much_remains_refundable_on_the_order(handlers: dict[str, Any]) -> None:
    # Given po_1 (70.00 USD) with 65.01 USD refunded already
    assert refund(handlers, changed(REFUND, refund_id="rf_a", amount="65.01"))[0] == 202
    # When 5.00 USD more is asked
    status, problem = refund(handlers, changed(REFUND, refund_id="rf_b"))
    # Then the answer says how much remains, in the order's currency, and on which order
    assert (status, problem["type"]) == (422, "urn:payments:problem:refund-exceeds-remaining")
    assert "at most 4.99 USD remains refundable on po_1" in problem["detail"]
    assert problem["errors"] == [
        {
            "field": "amount",
            "message": "amount is more than remains refundable: at most 4.99 USD remains refundable on po_1",
        }
    ]
    # and once all is refunded, a refund of "everything left" says nothing remains
    assert refund(handlers, changed(REFUND, refund_id="rf_c", amount="4.99"))[0] == 202
    status, problem = refund(handlers, changed(REFUND, refund_id="rf_d", amount=DELETE))
    assert status == 422 and "nothing remains refundable on po_1 (0.00 USD)" in problem["detail"]
    assert_in_merchant_words(
        {**problem, "detail": problem["detail"] + " " + problem["errors"][0]["message"]}, ["amount"]
    )


def test_a_refund_in_another_currency_says_it_differs_from_the_orders(handlers: dict[str, Any], ddb: Any) -> None:
    before = stored(ddb)
    status, problem = refund(handlers, changed(REFUND, currency="EUR"))
    assert (status, problem["type"]) == (422, "urn:payments:problem:validation-error")
    assert problem["errors"] == [{"field": "currency", "message": "currency EUR differs from the order's currency USD"}]
    assert problem["detail"] == "currency EUR differs from the order's currency USD."
    assert "checkout" not in json.dumps(problem)
    assert stored(ddb) == before


def test_a_path_identifier_breaking_the_rule_is_named(handlers: dict[str, Any]) -> None:
    status, _, problem = call(
        handlers["payment"], registry.PAYMENT.local_name, proxy_event("GET", "/v1/payments/chk%20x%21")
    )
    assert status == 422
    assert_in_merchant_words(problem, ["checkout_id"])
    assert problem["errors"][0]["message"] == "checkout_id " + merchant_words.IDENTIFIER


def test_a_card_number_anywhere_is_told_in_a_sentence_and_never_quoted(handlers: dict[str, Any]) -> None:
    status, problem = pay(handlers, changed(CHECKOUT, buyer_info__buyer_id=PAN))
    assert (status, problem["type"]) == (422, "urn:payments:problem:card-number-rejected")
    assert problem["errors"] == [
        {"field": "buyer_info.buyer_id", "message": "buyer_info.buyer_id " + merchant_words.CARD_NUMBER}
    ]
    assert PAN not in json.dumps(problem)


def test_every_constrained_request_field_has_a_rule_in_words() -> None:
    # Given every field of the request bodies that has a pattern, a length or a fixed value
    from payments.payin.models import PaymentRequest
    from payments.payouts.accounts import PayoutAccountRequest
    from payments.refunds.models import RefundRequest

    def constrained(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
        names: set[str] = set()
        for name, prop in schema.get("properties", {}).items():
            for branch in [prop, *prop.get("anyOf", [])]:
                if "$ref" in branch:
                    names |= constrained(defs[branch["$ref"].rsplit("/", 1)[1]], defs)
                if "items" in branch and "$ref" in branch["items"]:
                    names |= constrained(defs[branch["items"]["$ref"].rsplit("/", 1)[1]], defs)
                if {"pattern", "minLength", "maxLength", "const", "enum", "minItems"} & branch.keys():
                    names.add(name)
        return names

    fields: set[str] = set()
    for model in (PaymentRequest, RefundRequest, PayoutAccountRequest):
        schema = model.model_json_schema()
        fields |= constrained(schema, schema.get("$defs", {}))
    # Then each has its rule in the merchant's words (a new field cannot fall back to a generic sentence)
    assert fields and fields <= set(merchant_words.FIELD_RULES), fields - set(merchant_words.FIELD_RULES)


@pytest.mark.parametrize(
    "rule", [*merchant_words.FIELD_RULES.values(), merchant_words.AMOUNT_AS_NUMBER, merchant_words.CARD_NUMBER]
)
def test_no_rule_reads_like_a_validator(rule: str) -> None:
    assert not [p for p in FORBIDDEN if p in rule] and not re.search(r"\\[dws]|\[\^", rule)


@pytest.mark.parametrize(
    ("currency", "amount", "message"),
    [
        (
            "ISK",
            "1000",
            "payment_orders[0].currency must be a currency this stage's PSP, Adyen, takes with a definite number of "
            "decimals (this one is not)",
        ),
        (
            "BOV",
            "10.00",
            "payment_orders[0].currency must be a currency this stage's PSP, Adyen, takes with a definite number of "
            "decimals (this one is not)",
        ),
        (
            "IDR",
            "10000.50",
            "payment_orders[0].amount must be a whole number of IDR, which has 0 decimals at Adyen, this stage's PSP",
        ),
    ],
)
def test_what_an_adyen_stage_cannot_carry_is_said_in_the_merchants_words(
    handlers: dict[str, Any], ddb: Any, monkeypatch: pytest.MonkeyPatch, currency: str, amount: str, message: str
) -> None:
    from payments.kernel.config import reset_settings

    # Given a stage whose PSP is Adyen
    monkeypatch.setenv("PAYMENTS_PSP", "adyen")
    reset_settings()
    before = stored(ddb)
    # When an order in a currency or with decimals Adyen cannot carry is posted
    status, problem = pay(
        handlers, changed(CHECKOUT, payment_orders__0__currency=currency, payment_orders__0__amount=amount)
    )
    # Then the problem says so in the merchant's words, and nothing is stored
    assert status == 422
    assert_in_merchant_words(problem, [message.split(" ")[0]])
    assert problem["errors"][0]["message"] == message
    assert stored(ddb) == before


def test_the_openapi_examples_are_what_the_apis_answer(handlers: dict[str, Any]) -> None:
    from payments.payin.models import PROBLEM_EXAMPLES

    # Given the requests the OpenAPI document's problem examples stand for
    two_bad_fields = changed(CHECKOUT, payment_orders__0__amount=19.99, payment_orders__1__currency="usd")
    assert refund(handlers, changed(REFUND, refund_id="rf_a", amount="65.01"))[0] == 202
    over_the_limit = changed(REFUND, refund_id="rf_b")
    other_currency = changed(REFUND, refund_id="rf_c", currency="EUR")
    # When each is sent / Then each answer is its example, word for word
    answers = [
        pay(handlers, two_bad_fields)[1],
        refund(handlers, over_the_limit)[1],
        refund(handlers, other_currency)[1],
    ]
    assert answers == PROBLEM_EXAMPLES
