"""The refunds API (functions/refunds), driven with API Gateway events (moto in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments.local.lambdas import LambdaContext
from payments.psp.simulator import SimulatedPsp
from tests.unit.conftest import Repos
from tests.unit.test_refunds import paid


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
    response = api.handler(evt, LambdaContext("payments-refunds"))
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()} or response.get("headers", {})
    return response["statusCode"], json.loads(response["body"]), headers


BODY = {"refund_id": "rf_1", "payment_order_id": "po_1", "amount": "60.00", "currency": "USD", "reason": "requested_by_customer"}


def test_accept_replay_and_get(api: Any) -> None:
    # When a refund is posted, then posted again with the same key and body
    status, body, headers = call(api, event("POST", "/v1/refunds", BODY))
    again = call(api, event("POST", "/v1/refunds", BODY))
    # Then both answer 202 with the same PENDING refund, and one workflow was started
    assert status == 202 and headers["Location"] == "/v1/refunds/rf_1"
    assert body == {"refund_id": "rf_1", "payment_order_id": "po_1", "amount": "60.00", "currency": "USD", "status": "PENDING",
                    "psp_reference": None, "failure_reason": None, "reason": "requested_by_customer", "needs_attention": False}
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
    assert call(api, event("GET", "/v1/refunds/rf_2"))[0] == 404


def test_an_order_that_did_not_succeed_is_not_refundable(api: Any, repos: Repos) -> None:
    from tests.unit.conftest import store_checkout

    store_checkout(repos.payments, "chk_2", [("po_2", "seller_books", 500, "USD")])
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, "payment_order_id": "po_2", "amount": "1.00"}))
    assert status == 409 and body["type"] == "urn:payments:problem:order-not-refundable"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"amount": 60}, "amount"), ({"amount": "60.001"}, "amount"), ({"currency": "EUR"}, "currency"), ({"refund_id": "a b"}, "refund_id")],
)
def test_bad_input_names_the_field(api: Any, change: dict[str, Any], field: str) -> None:
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, **change}))
    assert status == 422 and body["type"] == "urn:payments:problem:validation-error"
    assert [e["field"] for e in body["errors"]] == [field]
    assert call(api, event("GET", "/v1/refunds/rf_1"))[0] == 404


def test_a_card_number_is_rejected_before_anything(api: Any) -> None:
    status, body, _ = call(api, event("POST", "/v1/refunds", {**BODY, "reason": "4111 1111 1111 1111"}))
    assert status == 422 and body["type"] == "urn:payments:problem:card-number-rejected"
