"""What the two HTTP APIs share: the checkout API (``functions/payment``) and the refunds API
(``functions/refunds``), each its own Powertools resolver in its own Lambda.

* the request's way in: the request guard (``functions/payment/guard.py``: card numbers, method,
  media type, size, depth) before the resolver, and the idempotency layer told the Lambda context;
* the idempotency store on the process's shared DynamoDB client, and its configuration;
* the ``Idempotency-Key`` header and the path identifiers, described once for both OpenAPI documents;
* the OpenAPI responses (a problem per status, a JSON body) and the problems both answer alike
  (validation, idempotency, a throttled store, no such route, an unexpected error).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel

from functions.merchant_words import field_errors, sentence
from functions.payment.guard import guard_request
from functions.payment.problems import PROBLEM_JSON, as_proxy, problem, validation_problem
from payments.kernel import aws
from payments.kernel.config import IDEMPOTENCY_TTL_SECONDS, settings
from payments.kernel.errors import InvalidRequest, StoreUnavailable
from payments.kernel.ids import IDENTIFIER_PATTERN, IDENTIFIER_RULE, MAX_IDENTIFIER_LENGTH
from payments.kernel.observability import logger
from payments.payin.models import NO_CARD_NUMBER, Problem

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7E]([\x20-\x7E]*[\x21-\x7E])?$",
        description="Client-chosen key; a retry with the same key and body returns the first answer." + NO_CARD_NUMBER,
    ),
]
Identifier = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_IDENTIFIER_LENGTH,
        pattern=IDENTIFIER_PATTERN,
        description=IDENTIFIER_RULE[0].upper() + IDENTIFIER_RULE[1:] + "." + NO_CARD_NUMBER,
    ),
]


def build_models(*models: type[BaseModel]) -> None:
    """Build the validators and serialisers of the API's models now, at cold start (where a snapshot keeps
    them), rather than in the first request: ``payments.payin.models`` defers them for the functions that
    never answer a request."""
    for model in models:
        model.model_rebuild()


def routes_of(app: APIGatewayRestResolver) -> list[Any]:
    """The resolver's routes (its own route table, read by the request guard for 405 and path checks)."""
    return app._static_routes + app._dynamic_routes


def new_idempotency_config() -> IdempotencyConfig:
    """The command ``{"idempotency_key": ..., "request": ...}`` is keyed by the client's key and
    validated by its body (the same key with another body is refused); replays for 24 hours."""
    return IdempotencyConfig(
        event_key_jmespath="idempotency_key",
        payload_validation_jmespath="request",
        expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )


class SharedClientPersistence(DynamoDBPersistenceLayer):
    """The idempotency store on the process's shared DynamoDB client (``payments.kernel.aws``).

    Given no client, the layer builds its own session and client at import: a second copy of
    the most expensive part of the cold start. Reading the client at each use (rather than
    keeping the one it was given) also follows ``aws.reset_clients()``, which the local runtime
    calls when it points the process at another endpoint.
    """

    @property
    def client(self) -> Any:
        return aws.client("dynamodb")

    @client.setter
    def client(self, _given: Any) -> None:  # the base class assigns it in __init__
        pass


def idempotency_store() -> SharedClientPersistence:
    return SharedClientPersistence(table_name=settings().idempotency_table, boto3_client=aws.client("dynamodb"))


def resolve_guarded(
    app: APIGatewayRestResolver, config: IdempotencyConfig, event: dict[str, Any], context: Any
) -> dict[str, Any]:
    """An API Gateway event through the request guard, then the resolver. A rejected request is
    answered with its problem; a bug in the guard is ours: a 500 problem, never a Lambda error,
    and the request is not logged."""
    try:
        event, rejected = guard_request(event, routes_of(app))
    except Exception:  # noqa: BLE001 - a bug in the guard is answered with a 500 problem, never a Lambda error
        logger.exception("request guard failed")
        rejected = problem(500, "internal-error", "Internal error", "Please retry with the same Idempotency-Key.")
    if rejected is not None:
        return as_proxy(rejected)
    config.register_lambda_context(context)
    return app.resolve(event, context)


def problem_responses(descriptions: dict[int, str], *statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses: an RFC 9457 problem for each status, described by the API's own words."""
    return {s: {"description": descriptions[s], "content": {PROBLEM_JSON: {"model": Problem}}} for s in statuses}


def json_response(
    status: int, description: str, model: type, headers: dict[str, OpenAPIResponseHeader] | None = None
) -> dict[int, OpenAPIResponse]:
    """An OpenAPI response with a JSON body of ``model`` (and its headers)."""
    response: OpenAPIResponse = {"description": description, "content": {"application/json": {"model": model}}}
    if headers:
        response["headers"] = headers
    return {status: response}


def answer_common_problems(app: APIGatewayRestResolver) -> None:
    """The problems both APIs answer alike. What a client sent is never quoted back: it may be the
    very thing that must not be logged or returned (a card number). Conflicts and unknown resources
    are each API's own (their words name its resources)."""

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response[str]:
        return validation_problem(field_errors(error.errors()))  # in the merchant's words, one mapping

    @app.exception_handler(InvalidRequest)
    def _invalid_across_fields(error: InvalidRequest) -> Response[str]:
        return validation_problem(error.errors)

    @app.exception_handler(IdempotencyValidationError)
    def _key_reused(_: IdempotencyValidationError) -> Response[str]:
        detail = "This Idempotency-Key was already used with a different request body; use a new key for a new request."
        field = "header Idempotency-Key"
        errors = [{"field": field, "message": sentence(field, "was already used with a different body")}]
        return problem(422, "idempotency-key-reused", "Idempotency-Key reused", detail, errors)

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response[str]:
        detail = "A request with this Idempotency-Key is being processed; retry shortly to get its result."
        return problem(409, "request-in-progress", "Request in progress", detail, headers={"Retry-After": "1"})

    @app.exception_handler(StoreUnavailable)
    def _unavailable(error: StoreUnavailable) -> Response[str]:
        logger.warning("store unavailable", extra={"error": str(error)})
        detail = "Please retry with the same Idempotency-Key."
        return problem(503, "service-unavailable", "Service unavailable", detail, headers={"Retry-After": "1"})

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return problem(
            404, "not-found", "Not found", "No such resource."
        )  # the path is the client's: never quoted back

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return problem(500, "internal-error", "Internal error", "Please retry with the same Idempotency-Key.")


def accepted(resource: dict[str, Any], location: str) -> Response[Any]:
    """202 Accepted with the resource (the same answer on every replay of its Idempotency-Key) and its Location."""
    return Response(status_code=202, content_type="application/json", body=resource, headers={"Location": location})
