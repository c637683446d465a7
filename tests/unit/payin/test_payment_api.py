"""The payment function's API path, driven with API Gateway events (moto in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from functions import registry
from payments_dev.local.lambdas import LambdaContext


def event(body: Any, key: str | None = "k-1") -> dict[str, Any]:
    return {
        "resource": "/v1/payments",
        "path": "/v1/payments",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": "POST", "path": "/v1/payments"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


BODY = {
    "checkout_id": "chk_unit",
    "buyer_info": {"buyer_id": "buyer_1"},
    "payment_method": {"type": "card", "token": "tok_visa"},
    "payment_orders": [{"payment_order_id": "po_unit", "seller_account": "s1", "amount": "1.00", "currency": "USD"}],
}


@pytest.fixture()
def payment_handler(ddb: Any) -> Any:
    from functions.payment import handler

    return handler


def test_a_duplicate_in_flight_is_answered_409_with_retry_after(payment_handler, monkeypatch):
    # Given another invocation holds the Idempotency-Key right now
    from functions.payment import api

    def in_progress(command: dict[str, Any]) -> dict[str, Any]:
        raise IdempotencyAlreadyInProgressError("Execution already in progress")

    monkeypatch.setattr(api, "_accept_once", in_progress)
    # When the duplicate arrives
    response = payment_handler.handler(event(BODY), LambdaContext(registry.PAYMENT.local_name))
    # Then it is a 409 problem telling the client to retry shortly
    headers = {k: v[0] for k, v in response["multiValueHeaders"].items()}
    assert response["statusCode"] == 409
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "1"
    assert json.loads(response["body"])["type"] == "urn:payments:problem:request-in-progress"


def test_a_base64_encoded_body_is_decoded_before_the_guards_and_validation(payment_handler):
    # Given API Gateway delivered the body base64-encoded, with a card number inside
    import base64

    raw = dict(BODY, buyer_info={"buyer_id": "4111-1111-1111-1111"})
    evt = event(raw)
    evt["body"], evt["isBase64Encoded"] = base64.b64encode(json.dumps(raw).encode()).decode(), True
    # When it is handled
    response = payment_handler.handler(evt, LambdaContext(registry.PAYMENT.local_name))
    # Then the card number is found and rejected, naming the field
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["errors"] == [
        {
            "field": "buyer_info.buyer_id",
            "message": "buyer_info.buyer_id looks like a card number: card data is never accepted, send a PSP token "
            "such as tok_visa",
        }
    ]
