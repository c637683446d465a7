"""The checkout API (API Gateway REST proxy -> Powertools resolver with pydantic validation).

Routes, exactly as ``CONTRACT.md``:

* ``POST /v1/payments``                    accept a checkout (``Idempotency-Key`` required)
* ``GET  /v1/payments/{checkout_id}``      the payment and its orders
* ``GET  /v1/wallets/{seller_account}``    a seller's balances
* ``GET  /v1/ledger/trial-balance``        debits and credits per currency

Every error is an RFC 9457 problem (see ``problems.py``); a rejected request
stores nothing (validation runs before any write, and the idempotency record of a
request that fails is deleted by Powertools).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from functions.api_kit import (
    IdempotencyKey,
    Identifier,
    accepted,
    answer_common_problems,
    build_models,
    idempotency_store,
    json_response,
    new_idempotency_config,
    problem_responses,
)
from functions.merchant_words import sentence
from functions.payment import logic
from functions.payment.problems import problem
from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository
from payments.kernel.config import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_ORDERS_PER_CHECKOUT
from payments.kernel.errors import Conflict, InvalidRequest, NotFound
from payments.payin.models import PaymentOut, PaymentRequest, Problem, TrialBalanceOut, WalletOut
from payments.payin.repository import PaymentsRepository

build_models(PaymentRequest, PaymentOut, WalletOut, TrialBalanceOut, Problem)
app = APIGatewayRestResolver(enable_validation=True)
app.configure_openapi(
    title="Payments API",
    version="1.0.0",
    summary="Pay-in checkout API of the serverless payment system",
    description=(
        f"Amounts are decimal strings in major units. A checkout holds at most {MAX_ORDERS_PER_CHECKOUT} payment "
        f"orders; its body is application/json (charset utf-8, if given; else 415), at most {MAX_BODY_BYTES} bytes "
        f"(else 413), nested at most {MAX_JSON_DEPTH} levels deep, without repeated keys or control characters. "
        "Errors are RFC 9457 problem details (application/problem+json) naming the field and the rule, never the "
        "value sent. A raw card number (13-19 digits in a card scheme's issuer range passing the Luhn check, in any "
        "script's digits, contiguous or in the groupings cards are printed in, 4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4 or "
        "8-8, joined by any run of spaces, dashes, dots, slashes or underscores) anywhere in a request (body keys and "
        "values, path, every value of the query, Idempotency-Key) "
        "is refused with 422 card-number-rejected and never stored or logged. A method a path does not answer gets "
        "405 with an Allow header. Deployed, API Gateway itself may also answer, with problem details too: 403 "
        "(request not signed with SigV4 or not allowed), 429 (throttled), 413 (over its 10 MB), 502/504."
    ),
)


_DESCRIPTIONS = {
    400: "Malformed request: not UTF-8, not JSON, or nested too deep (malformed-request)",
    404: "Unknown resource (not-found)",
    409: "Conflict: the checkout_id or a payment_order_id belongs to another request (resource-conflict), or this "
    "Idempotency-Key is being processed right now (request-in-progress, Retry-After)",
    413: "The body is too large (payload-too-large)",
    415: "The body is not application/json (unsupported-media-type)",
    422: "A field breaks the contract (validation-error), a card number was sent (card-number-rejected), or the "
    "Idempotency-Key was used with another body (idempotency-key-reused)",
    500: "Unexpected error; retry with the same Idempotency-Key (internal-error)",
    503: "The store is throttled; retry with the same Idempotency-Key (service-unavailable, Retry-After)",
}


def _problems(*statuses: int) -> dict[int, OpenAPIResponse]:
    return problem_responses(_DESCRIPTIONS, *statuses)


_ok = json_response


idempotency_config = new_idempotency_config()
_persistence = idempotency_store()


@idempotent_function(data_keyword_argument="command", persistence_store=_persistence, config=idempotency_config)
def _accept_once(command: dict[str, Any]) -> dict[str, Any]:
    request = PaymentRequest.model_validate(command["request"])
    return logic.accept_payment(command["idempotency_key"], request, PaymentsRepository())


@app.post(
    "/v1/payments",
    summary="Accept a checkout (the Buy button)",
    responses={
        **_ok(
            202,
            "Accepted: the payment resource. The same key and body again answer the same.",
            PaymentOut,
            {"Location": {"description": "/v1/payments/{checkout_id}", "schema": {"type": "string"}}},
        ),
        **_problems(400, 409, 413, 415, 422, 500, 503),
    },
)
def create_payment(request: Annotated[PaymentRequest, Body()], idempotency_key: IdempotencyKey) -> Response[PaymentOut]:
    duplicates = request.duplicate_order_fields()
    if duplicates:
        rule = "repeats a payment_order_id of an earlier order of this checkout: each order needs its own"
        raise InvalidRequest([{"field": f, "message": sentence(f, rule)} for f in duplicates])
    resource = _accept_once(command={"idempotency_key": idempotency_key, "request": request.model_dump(mode="json")})
    return accepted(resource, f"/v1/payments/{resource['checkout_id']}")


@app.get(
    "/v1/payments/<checkout_id>",
    summary="A payment and its orders",
    responses={**_ok(200, "The payment and its orders", PaymentOut), **_problems(404, 422, 500, 503)},
)
def get_payment(checkout_id: Identifier) -> PaymentOut:
    return logic.payment_view(checkout_id, PaymentsRepository())


@app.get(
    "/v1/wallets/<seller_account>",
    summary="A seller's balances",
    responses={
        **_ok(200, "The seller's balance in each currency (none yet: an empty list)", WalletOut),
        **_problems(422, 500, 503),
    },
)
def get_wallet(seller_account: Identifier) -> WalletOut:
    return logic.wallet_view(seller_account, WalletRepository())


@app.get(
    "/v1/ledger/trial-balance",
    summary="Debits and credits per currency",
    responses={**_ok(200, "Debits and credits per currency", TrialBalanceOut), **_problems(422, 500, 503)},
)
def get_trial_balance() -> TrialBalanceOut:
    return logic.trial_balance_view(LedgerRepository())


# --- errors -> problems -------------------------------------------------------------
answer_common_problems(app)  # validation, idempotency, a throttled store, no such route, the unexpected


@app.exception_handler(Conflict)
def _conflict(error: Conflict) -> Response[str]:
    errors = [{"field": error.field, "message": str(error)}] if error.field else None
    return problem(409, "resource-conflict", "Conflict with an existing resource", str(error), errors)


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response[str]:
    return problem(404, "not-found", "Not found", str(error))
