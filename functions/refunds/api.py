"""The refunds API (its own Powertools resolver, in its own Lambda; CONTRACT.md):

* ``POST /v1/refunds``              reserve and start a refund (``Idempotency-Key`` required)
* ``GET  /v1/refunds/{refund_id}``  the refund resource

Every request first passes the checkout API's request guard (``functions.payment.guard``,
called by ``handler.py`` with :func:`routes`). Problems are those of the checkout API
(``functions.payment.problems``), plus ``order-not-refundable`` (409) and
``refund-exceeds-remaining`` (422, saying how much remains refundable on which order), all in the
merchant's words (``functions.merchant_words``). None quotes a value the client sent, but for what has
passed its rule and the card-number guard and names the mismatch: the order's id, and a currency
that is not the order's (``currency EUR differs from the order's currency USD``). A rejected request
stores nothing: the reservation is one conditional transaction, and Powertools deletes the
idempotency record of a request that raised.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.utilities.idempotency import idempotent_function

from functions import api_kit
from functions.api_kit import IdempotencyKey, Identifier
from functions.merchant_words import sentence
from functions.payment.problems import PROBLEM_JSON, problem
from payments.kernel.config import MAX_BODY_BYTES, MAX_JSON_DEPTH
from payments.kernel.errors import Conflict, NotFound
from payments.kernel.money import Money
from payments.refunds import logic
from payments.refunds.models import RefundOut, RefundRequest
from payments.refunds.repository import OrderNotRefundable, RefundExceedsRemaining, RefundsRepository

app = APIGatewayRestResolver(enable_validation=True)

#: what each problem status of this API means (the checkout API's, plus the refund's own)
_DESCRIPTIONS = {
    400: "Malformed request: not UTF-8, not JSON, or nested too deep (malformed-request)",
    404: "No such refund, or no such payment order (not-found)",
    409: "The order cannot be refunded: not SUCCESS, or charged back (order-not-refundable); the refund_id belongs to "
    "another refund (resource-conflict); or this Idempotency-Key is being processed right now (request-in-progress, "
    "Retry-After)",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes (payload-too-large)",
    415: "The body is not application/json (unsupported-media-type)",
    422: "A field breaks the contract, or the currency is not the order's (validation-error), the amount exceeds what "
    "remains refundable (refund-exceeds-remaining), a card number was sent (card-number-rejected), or the "
    "Idempotency-Key was used with another body (idempotency-key-reused)",
    500: "Unexpected error; retry with the same Idempotency-Key (internal-error)",
    503: "The store is throttled; retry with the same Idempotency-Key (service-unavailable, Retry-After)",
}


def _problems(*statuses: int) -> dict[int, OpenAPIResponse]:
    return api_kit.problem_responses(_DESCRIPTIONS, *statuses)


def _ok(
    status: int, description: str, headers: dict[str, OpenAPIResponseHeader] | None = None
) -> dict[int, OpenAPIResponse]:
    return api_kit.json_response(status, description, RefundOut, headers)


idempotency_config = api_kit.new_idempotency_config()
_persistence = api_kit.idempotency_store()


@idempotent_function(data_keyword_argument="command", persistence_store=_persistence, config=idempotency_config)
def _accept_once(command: dict[str, Any]) -> dict[str, Any]:
    return logic.accept_refund(
        command["idempotency_key"], RefundRequest.model_validate(command["request"]), RefundsRepository()
    )


@app.post(
    "/v1/refunds",
    summary="Give money back",
    description=(
        f"Reserves the amount on a SUCCESS payment order and starts the refund at the PSP. The body is application/json "
        f"(charset utf-8, if given), at most {MAX_BODY_BYTES} bytes, nested at most {MAX_JSON_DEPTH} levels deep, without "
        "repeated keys or control characters."
    ),
    responses={
        **_ok(
            202,
            "Accepted: the refund resource (PENDING until the PSP decides). The same key and body again answer the same.",
            {"Location": {"description": "/v1/refunds/{refund_id}", "schema": {"type": "string"}}},
        ),
        **_problems(400, 404, 409, 413, 415, 422, 500, 503),
    },
)
def create_refund(request: Annotated[RefundRequest, Body()], idempotency_key: IdempotencyKey) -> Response[RefundOut]:
    resource = _accept_once(command={"idempotency_key": idempotency_key, "request": request.model_dump(mode="json")})
    return api_kit.accepted(resource, f"/v1/refunds/{resource['refund_id']}")


@app.get(
    "/v1/refunds/<refund_id>", summary="A refund", responses={**_ok(200, "The refund"), **_problems(404, 422, 500, 503)}
)
def get_refund(refund_id: Identifier) -> RefundOut:
    return RefundsRepository().get(refund_id).to_api()


# --- errors -> problems -------------------------------------------------------------
api_kit.answer_common_problems(app)  # validation, idempotency, a throttled store, no such route, the unexpected


@app.exception_handler(OrderNotRefundable)
def _not_refundable(error: OrderNotRefundable) -> Response[str]:
    detail = "Only a SUCCESS payment order can be refunded."
    message = sentence("payment_order_id", "names an order that is not SUCCESS: only a SUCCESS order can be refunded")
    return problem(
        409, "order-not-refundable", "Order not refundable", detail, [{"field": "payment_order_id", "message": message}]
    )


@app.exception_handler(RefundExceedsRemaining)
def _exceeds(error: RefundExceedsRemaining) -> Response[str]:
    # the order's id is safe to quote: it passed the identifier rule and the card-number guard
    on = f" on {error.payment_order_id}" if error.payment_order_id else ""
    if error.currency is None:
        limit = f"less remains refundable{on}"
    elif error.remaining_minor > 0:
        limit = f"at most {Money(error.remaining_minor, error.currency)} remains refundable{on}"
    else:
        limit = f"nothing remains refundable{on} ({Money.zero(error.currency)})"
    detail = (
        f"The refund is more than remains refundable: {limit} (the charge less the refunds already reserved and "
        "the chargebacks still standing)."
    )
    return problem(
        422,
        "refund-exceeds-remaining",
        "Refund exceeds what remains refundable",
        detail,
        [{"field": "amount", "message": sentence("amount", f"is more than remains refundable: {limit}")}],
    )


@app.exception_handler(Conflict)
def _conflict(error: Conflict) -> Response[str]:
    detail = (
        "This identifier is already used by another request." if error.field else "Conflict with an existing resource."
    )
    errors = (
        [{"field": error.field, "message": sentence(error.field, "is already used by another refund")}]
        if error.field
        else None
    )
    return problem(409, "resource-conflict", "Conflict with an existing resource", detail, errors)


@app.exception_handler(NotFound)
def _not_found(_: NotFound) -> Response[str]:
    if app.current_event.http_method == "POST":
        return problem(
            404,
            "not-found",
            "Not found",
            "No such payment order.",
            [{"field": "payment_order_id", "message": sentence("payment_order_id", "names no payment order")}],
        )
    return problem(404, "not-found", "Not found", "No such refund.")


#: POST /v1/psp/notifications is not a resolver route (functions/notifications/handler.py): its OpenAPI entry
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
NOTIFICATIONS_PATH = {
    "post": {
        "summary": "The PSP's notifications (Adyen standard webhooks, HMAC-signed per item)",
        "description": (
            "Body in Adyen's standard notification format, application/json (charset utf-8, if given), at most "
            f"{MAX_BODY_BYTES} bytes, nested at most {MAX_JSON_DEPTH} levels deep. Every item's "
            "additionalData.hmacSignature is verified (the stage's HMAC keys, hex; the previous key too during a "
            "rotation). Any bad or missing signature: 401, nothing stored. Otherwise each item is stored once and "
            "processed asynchronously, and the answer is 200 with the text [accepted]. Not signed with SigV4 (a PSP "
            "cannot): the HMAC is the authentication. A method other than POST: 405 with Allow."
        ),
        "operationId": "psp_notifications_v1_psp_notifications_post",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["notificationItems"],
                        "properties": {
                            "live": {"type": "string", "enum": ["true", "false"]},
                            "notificationItems": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["NotificationRequestItem"],
                                    "properties": {"NotificationRequestItem": {"type": "object"}},
                                },
                            },
                        },
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "Every item stored (or already stored)",
                "content": {"text/plain": {"schema": {"type": "string", "enum": ["[accepted]"]}}},
            },
            "400": {
                "description": (
                    "Not UTF-8, not JSON, nested too deep, not Adyen's format, a signed field not of the JSON type "
                    "Adyen sends, or live not the stage's (malformed-notification, errors naming the fields); "
                    "nothing stored"
                ),
                "content": _PROBLEM_CONTENT,
            },
            "401": {
                "description": "A bad or missing HMAC signature on any item; nothing stored (invalid-signature)",
                "content": _PROBLEM_CONTENT,
            },
            "413": {
                "description": f"The body is larger than {MAX_BODY_BYTES} bytes (payload-too-large)",
                "content": _PROBLEM_CONTENT,
            },
            "415": {
                "description": "The body is not application/json (unsupported-media-type)",
                "content": _PROBLEM_CONTENT,
            },
            "500": {
                "description": "Unexpected error; the PSP delivers again (internal-error)",
                "content": _PROBLEM_CONTENT,
            },
            "503": {
                "description": "Not stored or not enqueued; the PSP delivers again (service-unavailable, Retry-After)",
                "content": _PROBLEM_CONTENT,
            },
        },
    }
}


def openapi_additions(spec: dict[str, Any]) -> dict[str, Any]:
    """Merge this API's paths and schemas, and the webhook's path, into the checkout API's OpenAPI."""
    import json

    own = json.loads(app.get_openapi_json_schema())
    spec.setdefault("paths", {}).update(own.get("paths", {}))
    spec.setdefault("components", {}).setdefault("schemas", {}).update(own.get("components", {}).get("schemas", {}))
    spec["paths"]["/v1/psp/notifications"] = NOTIFICATIONS_PATH
    return spec
