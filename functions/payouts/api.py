"""The payouts API (its own Powertools resolver, in its own Lambda; CONTRACT.md, "Payouts"):

* ``PUT /v1/sellers/{seller_account}/payout-account``  register or replace the seller's payout account
* ``GET /v1/sellers/{seller_account}/payout-account``  the account, its IBAN masked
* ``POST /v1/payouts``  reserve a payout from the seller's available balance (``Idempotency-Key`` required)
* ``GET /v1/payouts/{payout_id}``  the payout resource

A payout's reservation is one conditional transaction (:meth:`payments.payouts.repository.PayoutsRepository.reserve`):
more than is available is a 422 ``payout-exceeds-available`` saying how much is; no payout rail for the
currency or no usable payout account a 409 ``payout-not-possible`` saying which. Nothing is stored for a
refused request (Powertools deletes the idempotency record of a request that raised).

Every request first passes the checkout API's request guard (``functions.payment.guard``, called by
``handler.py``). A PUT needs no ``Idempotency-Key``: it is idempotent by itself (the same account
again writes nothing), and no idempotency record may hold the IBAN. Problems are those of the other
APIs, in the merchant's words (``functions.merchant_words``); a refused request stores nothing. The
IBAN is never answered, logged or quoted in a problem: answers show it masked.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from functions import api_kit
from functions.api_kit import IdempotencyKey, Identifier
from functions.merchant_words import sentence
from functions.payment.problems import problem, validation_problem
from payments.kernel.config import MAX_BODY_BYTES, MAX_JSON_DEPTH
from payments.kernel.errors import Conflict, NotFound
from payments.kernel.ids import MAX_PAYOUT_ID_LENGTH, PAYOUT_ID_PATTERN, PAYOUT_ID_RULE
from payments.payin.models import NO_CARD_NUMBER
from payments.payouts import accounts, logic
from payments.payouts.accounts import PayoutAccountOut, PayoutAccountRequest, PayoutAccountsRepository, SeveralAccounts
from payments.payouts.models import PayoutOut, PayoutRequest
from payments.payouts.repository import PayoutExceedsAvailable, PayoutNotPossible, PayoutsRepository

app = APIGatewayRestResolver(enable_validation=True)

_DESCRIPTIONS = {
    400: "Malformed request: not UTF-8, not JSON, or nested too deep (malformed-request)",
    404: "The seller has no payout account (in this currency) (not-found)",
    409: "The account changed again and again while this request was writing it: retry (resource-conflict)",
    413: "The body is too large (payload-too-large)",
    415: "The body is not application/json (unsupported-media-type)",
    422: "A field breaks the contract: an IBAN that is not valid or whose bank is unknown, a BIC that is not the "
    "IBAN's bank's, ... (validation-error); a GET without currency for a seller with accounts in several currencies "
    "(validation-error naming currency); or a card number was sent (card-number-rejected)",
    500: "Unexpected error; retry (internal-error)",
    503: "The store is throttled; retry (service-unavailable, Retry-After)",
}
_PAYOUT_DESCRIPTIONS = {
    **_DESCRIPTIONS,
    404: "No such payout (not-found)",
    409: "No payout can go out: no payout rail for the currency, or the seller has no usable payout account "
    "(payout-not-possible, saying which); the payout_id belongs to another payout (resource-conflict); or this "
    "Idempotency-Key is being processed right now (request-in-progress, Retry-After)",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes (payload-too-large)",
    422: "A field breaks the contract (validation-error); the amount is more than the seller's available balance, or "
    "nothing is available (payout-exceeds-available, saying how much is available; a negative available blocks every "
    "payout); a card number was sent (card-number-rejected); or the Idempotency-Key was used with another body "
    "(idempotency-key-reused)",
    500: "Unexpected error; retry with the same Idempotency-Key (internal-error)",
    503: "The store is throttled; retry with the same Idempotency-Key (service-unavailable, Retry-After)",
}


def _problems(*statuses: int) -> dict[int, OpenAPIResponse]:
    return api_kit.problem_responses(_DESCRIPTIONS, *statuses)


def _payout_problems(*statuses: int) -> dict[int, OpenAPIResponse]:
    return api_kit.problem_responses(_PAYOUT_DESCRIPTIONS, *statuses)


def _ok(description: str) -> dict[int, OpenAPIResponse]:
    return api_kit.json_response(200, description, PayoutAccountOut)


#: POST /v1/payouts: keyed by the client's Idempotency-Key, validated by its body (as payments and refunds)
idempotency_config = api_kit.new_idempotency_config()
_persistence = api_kit.idempotency_store()

PATH = "/v1/sellers/<seller_account>/payout-account"
CurrencyQuery = Annotated[
    str | None,
    Query(
        min_length=3,
        max_length=3,
        pattern=r"^[A-Z]{3}$",
        description="Which of the seller's accounts (its currency); may be left out when the seller has only one."
        + NO_CARD_NUMBER,
    ),
]


@app.put(
    PATH,
    summary="Register the seller's payout account",
    description=(
        "Registers (or replaces) the bank account the seller is paid to in the body's currency. The same account "
        "again (same IBAN, BIC and holder) changes nothing and answers it as it is; an account marked invalid stays so "
        "until another one is registered. Answers the account with its IBAN masked."
    ),
    responses={**_ok("The payout account, its IBAN masked"), **_problems(400, 409, 413, 415, 422, 500, 503)},
)
def put_payout_account(
    seller_account: Identifier, request: Annotated[PayoutAccountRequest, Body()]
) -> PayoutAccountOut:
    return accounts.register(seller_account, request, PayoutAccountsRepository())


@app.get(
    PATH,
    summary="The seller's payout account",
    responses={**_ok("The payout account, its IBAN masked"), **_problems(404, 422, 500, 503)},
)
def get_payout_account(seller_account: Identifier, currency: CurrencyQuery = None) -> PayoutAccountOut:
    return accounts.view(seller_account, currency, PayoutAccountsRepository())


@idempotent_function(data_keyword_argument="command", persistence_store=_persistence, config=idempotency_config)
def _accept_once(command: dict[str, Any]) -> dict[str, Any]:
    request = PayoutRequest.model_validate(command["request"])
    return logic.accept_payout(command["idempotency_key"], request, PayoutsRepository())


def _payout_ok(
    status: int, description: str, headers: dict[str, OpenAPIResponseHeader] | None = None
) -> dict[int, OpenAPIResponse]:
    return api_kit.json_response(status, description, PayoutOut, headers)


PayoutIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_PAYOUT_ID_LENGTH,
        pattern=PAYOUT_ID_PATTERN,
        description=PAYOUT_ID_RULE[0].upper() + PAYOUT_ID_RULE[1:] + "." + NO_CARD_NUMBER,
    ),
]


@app.post(
    "/v1/payouts",
    summary="Pay a seller out",
    description=(
        "Reserves the amount (all that is available when amount is left out) from the seller's available balance, "
        "in one conditional write: concurrent payouts never exceed what is available, and a negative available "
        "blocks every payout. The payout then goes to the bank in the next nightly run's SEPA credit-transfer file "
        f"(EUR only). The body is application/json, at most {MAX_BODY_BYTES} bytes, nested at most {MAX_JSON_DEPTH} "
        "levels deep."
    ),
    responses={
        **_payout_ok(
            202,
            "Accepted: the payout resource (PENDING until it is in a file sent to the bank). The same key and body "
            "again answer the same, and reserve nothing again.",
            {"Location": {"description": "/v1/payouts/{payout_id}", "schema": {"type": "string"}}},
        ),
        **_payout_problems(400, 409, 413, 415, 422, 500, 503),
    },
)
def create_payout(request: Annotated[PayoutRequest, Body()], idempotency_key: IdempotencyKey) -> Response[PayoutOut]:
    resource = _accept_once(command={"idempotency_key": idempotency_key, "request": request.model_dump(mode="json")})
    return api_kit.accepted(resource, f"/v1/payouts/{resource['payout_id']}")


@app.get(
    "/v1/payouts/<payout_id>",
    summary="A payout",
    responses={**_payout_ok(200, "The payout"), **_payout_problems(404, 422, 500, 503)},
)
def get_payout(payout_id: PayoutIdPath) -> PayoutOut:
    return PayoutsRepository().get(payout_id).to_api()


# --- errors -> problems -------------------------------------------------------------
api_kit.answer_common_problems(app)  # validation, idempotency, a throttled store, no such route, the unexpected


@app.exception_handler(PayoutExceedsAvailable)
def _exceeds(error: PayoutExceedsAvailable) -> Response[str]:
    available = error.available
    if available.minor < 0:
        limit = f"the seller's available balance is negative ({available}): no payout starts until it is covered"
    elif available.minor == 0:
        limit = f"nothing is available ({available})"
    else:
        limit = f"at most {available} is available"
    detail = f"The payout is more than the seller's available balance: {limit}."
    return problem(
        422,
        "payout-exceeds-available",
        "Payout exceeds what is available",
        detail,
        [{"field": "amount", "message": sentence("amount", f"is more than is available: {limit}")}],
    )


@app.exception_handler(PayoutNotPossible)
def _not_possible(error: PayoutNotPossible) -> Response[str]:
    # the reason names a currency that passed its rule, or the account's stored state: never an IBAN
    return problem(
        409,
        "payout-not-possible",
        "Payout not possible",
        error.reason[0].upper() + error.reason[1:] + ".",
        [{"field": error.field, "message": sentence(error.field, error.reason)}],
    )


@app.exception_handler(SeveralAccounts)
def _several(error: SeveralAccounts) -> Response[str]:
    # the currencies are stored values (ISO 4217 codes that passed validation): safe to name
    rule = f"is required: this seller has payout accounts in {', '.join(error.currencies)}"
    message = sentence("currency", rule)
    return validation_problem([{"field": "currency", "message": message}])


@app.exception_handler(Conflict)
def _conflict(error: Conflict) -> Response[str]:
    if error.field:  # a payout_id already used by another payout
        errors = [{"field": error.field, "message": sentence(error.field, "is already used by another payout")}]
        detail = "This identifier is already used by another request."
        return problem(409, "resource-conflict", "Conflict with an existing resource", detail, errors)
    return problem(409, "resource-conflict", "Conflict with an existing resource", str(error).capitalize() + ".")


@app.exception_handler(NotFound)
def _not_found(_: NotFound) -> Response[str]:
    if app.current_event.path.startswith("/v1/payouts"):
        return problem(404, "not-found", "Not found", "No such payout.")
    return problem(404, "not-found", "Not found", "The seller has no payout account (in this currency).")


def openapi_additions(spec: dict[str, Any]) -> dict[str, Any]:
    """Merge this API's paths and schemas into the checkout API's OpenAPI."""
    own = json.loads(app.get_openapi_json_schema())
    spec.setdefault("paths", {}).update(own.get("paths", {}))
    spec.setdefault("components", {}).setdefault("schemas", {}).update(own.get("components", {}).get("schemas", {}))
    return spec
