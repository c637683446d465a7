"""The refunds API (functions/refunds), driven with API Gateway events (moto in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions import registry
from payments.psp.simulator import SimulatedPsp
from payments_dev.local.lambdas import LambdaContext
from tests.unit.conftest import Repos
from tests.unit.refunds.test_refunds import paid


def event(method: str, path: str, body: Any = None, key: str | None = "k-1") -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": method, "path": path},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


@pytest.fixture()
def api(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> Any:
    from functions.refunds import handler
    from payments.refunds import logic

    started: list[str] = []
    monkeypatch.setattr(logic, "start_workflow", started.append)
    handler.started = started  # type: ignore[attr-defined]
    paid(repos, SimulatedPsp(), "po_1", 7000)
    return handler


def call(api: Any, evt: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = api.handler(evt, LambdaContext(registry.REFUNDS.local_name))
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()} or response.get("headers", {})
    return response["statusCode"], json.loads(response["body"]), headers


BODY = {
    "refund_id": "rf_1",
    "payment_order_id": "po_1",
    "amount": "60.00",
    "currency": "USD",
    "reason": "requested_by_customer",
}


def test_accept_replay_and_get(api: Any) -> None:
    # When a refund is posted, then posted again with the same key and body
    status, body, headers = call(api, event("POST", "/v1/refunds", BODY))
    again = call(api, event("POST", "/v1/refunds", BODY))
    # Then both answer 202 with the same PENDING refund, and one workflow was started
    assert status == 202 and headers["Location"] == "/v1/refunds/rf_1"
    assert body == {
        "refund_id": "rf_1",
        "payment_order_id": "po_1",
        "amount": "60.00",
        "currency": "USD",
        "status": "PENDING",
        "psp_reference": None,
        "failure_reason": None,
        "reason": "requested_by_customer",
        "needs_attention": False,
        "attention": None,
        "returned_at": None,
    }
    assert again[:2] == (202, body)
    assert api.started == ["rf_1"]
    assert call(api, event("GET", "/v1/refunds/rf_1"))[:2] == (200, body)


def test_same_key_other_body_is_a_reuse_problem(api: Any) -> None:
    call(api, event("POST", "/v1/refunds", BODY))
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, "amount": "1.00"}))
    assert status == 422 and body["type"] == "urn:payments:problem:idempotency-key-reused"


def test_exceeding_the_remaining_amount_is_422_and_stores_nothing(api: Any) -> None:
    call(api, event("POST", "/v1/refunds", BODY))
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, "refund_id": "rf_2"}, key="k-2"))
    assert status == 422 and body["type"] == "urn:payments:problem:refund-exceeds-remaining"
    assert "at most 10.00 USD remains refundable on po_1" in body["detail"]
    assert call(api, event("GET", "/v1/refunds/rf_2"))[0] == 404


def test_an_order_that_did_not_succeed_is_not_refundable(api: Any, repos: Repos) -> None:
    from tests.unit.conftest import store_checkout

    store_checkout(repos.payments, "chk_2", [("po_2", "seller_books", 500, "USD")])
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, "payment_order_id": "po_2", "amount": "1.00"}))
    assert status == 409 and body["type"] == "urn:payments:problem:order-not-refundable"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 60}, "amount"),
        ({"amount": "60.001"}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"refund_id": "a b"}, "refund_id"),
    ],
)
def test_bad_input_names_the_field(api: Any, change: dict[str, Any], field: str) -> None:
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, **change}))
    assert status == 422 and body["type"] == "urn:payments:problem:validation-error"
    assert [e["field"] for e in body["errors"]] == [field]
    assert call(api, event("GET", "/v1/refunds/rf_1"))[0] == 404


@pytest.mark.parametrize(
    "reason", ["4111 1111 1111 1111", "4111    1111    1111    1111", "card 4111\u00a0\u00a01111 - 1111 - 1111"]
)
def test_a_card_number_is_rejected_before_anything(api: Any, reason: str) -> None:
    # Given a refund whose reason holds a card number, its groups one or several separators apart
    # When it is posted / Then it is refused naming the field, and no refund is stored or started
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, "reason": reason}))
    assert status == 422 and body["type"] == "urn:payments:problem:card-number-rejected"
    assert [e["field"] for e in body["errors"]] == ["reason"] and "4111" not in json.dumps(body)
    assert call(api, event("GET", "/v1/refunds/rf_1"))[0] == 404 and api.started == []


def test_the_checkout_request_guard_answers_before_the_refunds_api(api: Any) -> None:
    # Given requests the checkout API's guard refuses: a method the path does not answer, another media type,
    # a body nested deeper than allowed, a repeated key, and a card number in the Idempotency-Key and the path
    text = event("POST", "/v1/refunds", BODY)
    text["headers"]["Content-Type"] = "text/plain"
    deep = event("POST", "/v1/refunds")
    deep["body"] = "[" * 50_000
    repeated = event("POST", "/v1/refunds")
    repeated["body"] = '{"refund_id": "rf_1", "refund_id": "rf_2", "payment_order_id": "po_1", "currency": "USD"}'
    # When each is sent to the refunds function
    # Then each is the guard's problem, and nothing was stored or started
    status, body, headers = call(api, event("DELETE", "/v1/refunds/rf_1"))
    assert (status, body["type"], headers["Allow"]) == (405, "urn:payments:problem:method-not-allowed", "GET")
    assert call(api, event("GET", "/v1/refunds"))[2]["Allow"] == "POST"
    assert call(api, text)[:2][0] == 415
    status, body, _ = call(api, deep)
    assert status == 400 and body["type"] == "urn:payments:problem:malformed-request"
    status, body, _ = call(api, repeated)
    assert status == 422 and [e["field"] for e in body["errors"]] == ["refund_id"]
    status, body, _ = call(api, event("POST", "/v1/refunds", BODY, key="4111-1111-1111-1111"))
    assert status == 422 and [e["field"] for e in body["errors"]] == ["header Idempotency-Key"]
    status, body, _ = call(api, event("GET", "/v1/refunds/4111111111111111"))
    assert (
        status == 422 and body["type"] == "urn:payments:problem:card-number-rejected" and "4111" not in json.dumps(body)
    )
    assert api.started == []
    assert call(api, event("GET", "/v1/refunds/rf_1"))[0] == 404


def test_no_problem_quotes_what_the_client_sent(api: Any) -> None:
    # Given requests naming things that do not exist or are not valid, with recognisable values
    sent = [
        event("POST", "/v1/refunds", {**BODY, "payment_order_id": "po_Unknown_Marker"}),
        event("POST", "/v1/refunds", {**BODY, "currency": "QQX"}),
        event("GET", "/v1/refunds/rf_Unknown_Marker"),
        event("GET", "/v1/refunds/rf_Unknown_Marker/extra_Marker"),
    ]
    for evt in sent:
        # When each is sent
        status, body, _ = call(api, evt)
        # Then the answer is a problem naming the field, never the value
        assert status in (404, 422), status
        assert "Marker" not in json.dumps(body) and "QQX" not in json.dumps(body), body
    status, body, _ = call(api, sent[0])
    assert status == 404 and body["errors"] == [
        {"field": "payment_order_id", "message": "payment_order_id names no payment order"}
    ]
