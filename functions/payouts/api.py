"""The payouts API (its own Powertools resolver, in its own Lambda; CONTRACT.md, "Payouts"):

* ``PUT /v1/sellers/{seller_account}/payout-account``  register or replace the seller's payout account
* ``GET /v1/sellers/{seller_account}/payout-account``  the account, its IBAN masked

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
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from functions import api_kit
from functions.api_kit import Identifier
from functions.merchant_words import sentence
from functions.payment.problems import problem, validation_problem
from payments.kernel.errors import Conflict, NotFound
from payments.payin.models import NO_CARD_NUMBER
from payments.payouts import accounts
from payments.payouts.accounts import PayoutAccountOut, PayoutAccountRequest, PayoutAccountsRepository, SeveralAccounts

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


def _problems(*statuses: int) -> dict[int, OpenAPIResponse]:
    return api_kit.problem_responses(_DESCRIPTIONS, *statuses)


def _ok(description: str) -> dict[int, OpenAPIResponse]:
    return api_kit.json_response(200, description, PayoutAccountOut)


#: the payouts API takes no Idempotency-Key yet; the request guard's way in still tells this config the context
idempotency_config = api_kit.new_idempotency_config()

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


# --- errors -> problems -------------------------------------------------------------
api_kit.answer_common_problems(app)  # validation, a throttled store, no such route, the unexpected


@app.exception_handler(SeveralAccounts)
def _several(error: SeveralAccounts) -> Response[str]:
    # the currencies are stored values (ISO 4217 codes that passed validation): safe to name
    rule = f"is required: this seller has payout accounts in {', '.join(error.currencies)}"
    message = sentence("currency", rule)
    return validation_problem([{"field": "currency", "message": message}])


@app.exception_handler(Conflict)
def _conflict(error: Conflict) -> Response[str]:
    return problem(409, "resource-conflict", "Conflict with an existing resource", str(error).capitalize() + ".")


@app.exception_handler(NotFound)
def _not_found(_: NotFound) -> Response[str]:
    return problem(404, "not-found", "Not found", "The seller has no payout account (in this currency).")


def openapi_additions(spec: dict[str, Any]) -> dict[str, Any]:
    """Merge this API's paths and schemas into the checkout API's OpenAPI."""
    own = json.loads(app.get_openapi_json_schema())
    spec.setdefault("paths", {}).update(own.get("paths", {}))
    spec.setdefault("components", {}).setdefault("schemas", {}).update(own.get("components", {}).get("schemas", {}))
    return spec
