"""Problem details: validation error locations become contract field paths (functions/payment/problems.py)."""

from __future__ import annotations

import json

import pytest

from functions.payment.problems import PROBLEM_JSON, field_path, problem, validation_problem


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("body", "payment_orders", 2, "amount"), "payment_orders[2].amount"),
        (("body", "request", "payment_orders", 0, "currency"), "payment_orders[0].currency"),
        (("body", "buyer_info", "email"), "buyer_info.email"),
        (("body", "checkout_id"), "checkout_id"),
        (("body", "payment_orders"), "payment_orders"),
        (("body",), "(body)"),
        ((), "(body)"),
        (("path", "checkout_id"), "checkout_id"),
        (("query", "limit"), "limit"),
        (["body", "payment_orders", 10, "payment_order_id"], "payment_orders[10].payment_order_id"),
        (("payment_orders", 1, "seller_account"), "payment_orders[1].seller_account"),
    ],
)
def test_field_path_writes_the_contract_path(loc: tuple[object, ...], path: str) -> None:
    # Given a pydantic/Powertools error location / When converted / Then it is the contract's field path
    assert field_path(loc) == path


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("header", "idempotency-key"), "header Idempotency-Key"),
        (("header", "content-type"), "header Content-Type"),
        (("header",), "header"),
    ],
)
def test_field_path_names_headers_in_their_canonical_case(loc: tuple[object, ...], path: str) -> None:
    assert field_path(loc) == path


def test_problem_is_an_rfc9457_response() -> None:
    # Given a validation problem / When built / Then it is problem+json with type, title, status, detail, errors
    message = 'payment_orders[2].amount must be sent as a string such as "19.99", not as a JSON number'
    response = validation_problem([{"field": "payment_orders[2].amount", "message": message}])
    body = json.loads(response.body)
    assert response.status_code == 422
    assert response.headers["Content-Type"] == PROBLEM_JSON
    assert body == {
        "type": "urn:payments:problem:validation-error",
        "title": "Request validation failed",
        "status": 422,
        "detail": message + ".",
        "errors": [{"field": "payment_orders[2].amount", "message": message}],
    }


def test_problem_without_errors_has_no_errors_member() -> None:
    body = json.loads(problem(404, "not-found", "Not found", "no payment").body)
    assert body == {
        "type": "urn:payments:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": "no payment",
    }
