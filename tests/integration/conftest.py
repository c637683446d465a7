"""Integration tests run against the local runtime: the real HTTP API, the real
``stepfunctions/payment.asl.json`` interpreted by moto, the real handlers.

After every test the money invariants are checked over all stored data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from payments.ops.invariants import check_current
from payments_dev.local.client import ApiClient, Reply
from payments_dev.local.runtime import LocalRuntime, free_port, wait_until
from tests.card_numbers import scan_runtime

SETTLE_TIMEOUT_S = 60.0


@pytest.fixture(scope="package")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(port=free_port(), aws_port=free_port()) as rt:  # restores the environment on exit
        yield rt
        # after the whole package: no card number in any table or object, in any form (issue 14)
        assert scan_runtime() == [], "card numbers stored"


@pytest.fixture()
def api(runtime: LocalRuntime) -> ApiClient:
    return ApiClient(runtime.api_url)


@pytest.fixture(autouse=True)
def invariants_hold_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "runtime" not in request.fixturenames:
        return
    report = check_current(expect_settled=True)
    assert report.ok, "money invariants violated:\n" + "\n".join(str(v) for v in report.violations)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def checkout(
    token: str = "tok_visa", orders: list[tuple[str, str, str]] | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid checkout body with fresh ids; orders are (seller, amount, currency)."""
    orders = orders or [("seller_books", "19.99", "USD"), ("seller_toys", "5.00", "USD")]
    body = {
        "checkout_id": unique("chk"),
        "buyer_info": {"buyer_id": "buyer_42", "email": "a@example.com"},
        "payment_method": {"type": "card", "token": token},
        "payment_orders": [
            {"payment_order_id": unique("po"), "seller_account": s, "amount": a, "currency": c} for s, a, c in orders
        ],
    }
    body.update(overrides)
    return body


def wait_done(api: ApiClient, checkout_id: str, timeout: float = SETTLE_TIMEOUT_S) -> dict[str, Any]:
    """Poll GET /v1/payments/{id} until the payment is done, failed, or parked."""
    seen: dict[str, Any] = {}

    def settled() -> bool:
        reply = api.payment(checkout_id)
        assert reply.status == 200, reply.body
        seen["body"] = body = reply.body
        parked = any(o["needs_attention"] for o in body["payment_orders"])
        return bool(body["is_payment_done"] or body["status"] == "FAILED" or parked)

    if not wait_until(settled, timeout, interval=0.2):
        raise AssertionError(f"payment {checkout_id} not settled within {timeout}s: {seen.get('body')}")
    return seen["body"]


def assert_problem(reply: Reply, status: int, type_suffix: str, field: str | None = None) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers.get("Content-Type", "").startswith("application/problem+json"), reply.headers
    body = reply.body
    assert body["type"].endswith(type_suffix), body
    assert body["status"] == status and body["title"] and body["detail"], body
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields, (field, fields)
