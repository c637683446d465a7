"""The refunds API (its own Powertools resolver, in its own Lambda; CONTRACT.md):

* ``POST /v1/refunds``              reserve and start a refund (``Idempotency-Key`` required)
* ``GET  /v1/refunds/{refund_id}``  the refund resource

Problems are those of the checkout API (``functions.payment.problems``), plus
``order-not-refundable`` (409) and ``refund-exceeds-remaining`` (422). A rejected request
stores nothing: the reservation is one conditional transaction, and Powertools deletes the
idempotency record of a request that raised.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError, IdempotencyValidationError

from functions.payment.problems import field_path, problem, validation_problem
from payments import aws
from payments.config import IDEMPOTENCY_TTL_SECONDS, settings
from payments.errors import Conflict, InvalidRequest, NotFound, StoreUnavailable
from payments.observability import logger
from payments.refunds import logic
from payments.refunds.models import RefundOut, RefundRequest
from payments.refunds.repository import OrderNotRefundable, RefundExceedsRemaining, RefundsRepository

app = APIGatewayRestResolver(enable_validation=True)

idempotency_config = IdempotencyConfig(
    event_key_jmespath="idempotency_key",
    payload_validation_jmespath="request",
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    raise_on_no_idempotency_key=True,
)


class _SharedClientPersistence(DynamoDBPersistenceLayer):
    """The idempotency store on the process's shared DynamoDB client (as in functions.payment.api)."""

    @property
    def client(self) -> Any:
        return aws.client("dynamodb")

    @client.setter
    def client(self, _given: Any) -> None:
        pass


_persistence = _SharedClientPersistence(table_name=settings().idempotency_table, boto3_client=aws.client("dynamodb"))

IdempotencyKey = Annotated[
    str,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7E]([\x20-\x7E]*[\x21-\x7E])?$"),
]
Identifier = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@idempotent_function(data_keyword_argument="command", persistence_store=_persistence, config=idempotency_config)
def _accept_once(command: dict[str, Any]) -> dict[str, Any]:
    return logic.accept_refund(command["idempotency_key"], RefundRequest.model_validate(command["request"]), RefundsRepository())


@app.post("/v1/refunds", summary="Give money back", responses={202: {"description": "Accepted"}})
def create_refund(request: Annotated[RefundRequest, Body()], idempotency_key: IdempotencyKey) -> Response[RefundOut]:
    resource = _accept_once(command={"idempotency_key": idempotency_key, "request": request.model_dump(mode="json")})
    return Response(status_code=202, content_type="application/json", body=resource, headers={"Location": f"/v1/refunds/{resource['refund_id']}"})


@app.get("/v1/refunds/<refund_id>", summary="A refund")
def get_refund(refund_id: Identifier) -> RefundOut:
    return RefundsRepository().get(refund_id).to_api()


# --- errors -> problems -------------------------------------------------------------
@app.exception_handler(RequestValidationError)
def _invalid(error: RequestValidationError) -> Response:
    errors = [{"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in error.errors()]
    return validation_problem(errors, "The request is not a valid refund.")


@app.exception_handler(InvalidRequest)
def _invalid_across_fields(error: InvalidRequest) -> Response:
    return validation_problem(error.errors, "The request is not a valid refund.")


@app.exception_handler(OrderNotRefundable)
def _not_refundable(error: OrderNotRefundable) -> Response:
    return problem(409, "order-not-refundable", "Order not refundable", str(error), [{"field": "payment_order_id", "message": str(error)}])


@app.exception_handler(RefundExceedsRemaining)
def _exceeds(error: RefundExceedsRemaining) -> Response:
    return problem(422, "refund-exceeds-remaining", "Refund exceeds what remains refundable", str(error), [{"field": "amount", "message": str(error)}])


@app.exception_handler(IdempotencyValidationError)
def _key_reused(_: IdempotencyValidationError) -> Response:
    return problem(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "This Idempotency-Key was already used with a different request body; use a new key for a new request.",
        [{"field": "header Idempotency-Key", "message": "reused with a different body"}],
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response:
    return problem(409, "request-in-progress", "Request in progress", "A request with this Idempotency-Key is being processed; retry shortly.", headers={"Retry-After": "1"})


@app.exception_handler(Conflict)
def _conflict(error: Conflict) -> Response:
    errors = [{"field": error.field, "message": str(error)}] if error.field else None
    return problem(409, "resource-conflict", "Conflict with an existing resource", str(error), errors)


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return problem(404, "not-found", "Not found", str(error))


@app.exception_handler(StoreUnavailable)
def _unavailable(error: StoreUnavailable) -> Response:
    logger.warning("store unavailable", extra={"error": str(error)})
    return problem(503, "service-unavailable", "Service unavailable", "Please retry with the same Idempotency-Key.", headers={"Retry-After": "1"})


@app.not_found
def _no_route(_: Exception) -> Response:
    return problem(404, "not-found", "Not found", f"No route {app.current_event.http_method} {app.current_event.path}")


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response:
    logger.exception("unexpected error")
    return problem(500, "internal-error", "Internal error", "Please retry with the same Idempotency-Key.")


#: POST /v1/psp/notifications is not a resolver route (functions/notifications/handler.py): its OpenAPI entry
NOTIFICATIONS_PATH = {
    "post": {
        "summary": "The PSP's notifications (Adyen standard webhooks, HMAC-signed per item)",
        "description": (
            "Body in Adyen's standard notification format; every item's additionalData.hmacSignature is verified "
            "(PAYMENTS_PSP_HMAC_KEY). Any bad or missing signature: 401, nothing stored. Otherwise each item is stored "
            "once and processed asynchronously, and the answer is 200 with the text [accepted]."
        ),
        "operationId": "psp_notifications_v1_psp_notifications_post",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["notificationItems"]}}}},
        "responses": {
            "200": {"description": "Stored", "content": {"text/plain": {"schema": {"type": "string", "enum": ["[accepted]"]}}}},
            "401": {"description": "A bad or missing HMAC signature", "content": {"application/problem+json": {"schema": {"type": "object"}}}},
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
