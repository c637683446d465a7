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
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from functions.payment import logic
from functions.payment.problems import field_path, problem, validation_problem
from payments import aws
from payments.config import IDEMPOTENCY_TTL_SECONDS, MAX_BODY_BYTES, MAX_ORDERS_PER_CHECKOUT, settings
from payments.errors import Conflict, InvalidRequest, NotFound, StoreUnavailable
from payments.models import PaymentOut, PaymentRequest, TrialBalanceOut, WalletOut
from payments.observability import logger
from payments.repositories.ledger import LedgerRepository
from payments.repositories.payments import PaymentsRepository
from payments.repositories.wallet import WalletRepository

app = APIGatewayRestResolver(enable_validation=True)
app.configure_openapi(
    title="Payments API",
    version="1.0.0",
    summary="Pay-in checkout API of the serverless payment system",
    description=(
        f"Amounts are decimal strings in major units. A checkout holds at most {MAX_ORDERS_PER_CHECKOUT} payment "
        f"orders and its body at most {MAX_BODY_BYTES} bytes. Errors are RFC 9457 problem details."
    ),
)

idempotency_config = IdempotencyConfig(
    event_key_jmespath="idempotency_key",
    payload_validation_jmespath="request",
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
    raise_on_no_idempotency_key=True,
)


class _SharedClientPersistence(DynamoDBPersistenceLayer):
    """The idempotency store on the process's shared DynamoDB client (``payments.aws``).

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


_persistence = _SharedClientPersistence(table_name=settings().idempotency_table, boto3_client=aws.client("dynamodb"))

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7E]([\x20-\x7E]*[\x21-\x7E])?$",
        description="Client-chosen key; a retry with the same key and body returns the first answer.",
    ),
]
Identifier = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@idempotent_function(data_keyword_argument="command", persistence_store=_persistence, config=idempotency_config)
def _accept_once(command: dict[str, Any]) -> dict[str, Any]:
    request = PaymentRequest.model_validate(command["request"])
    return logic.accept_payment(command["idempotency_key"], request, PaymentsRepository())


@app.post("/v1/payments", summary="Accept a checkout (the Buy button)", responses={202: {"description": "Accepted"}})
def create_payment(request: Annotated[PaymentRequest, Body()], idempotency_key: IdempotencyKey) -> Response[PaymentOut]:
    duplicates = request.duplicate_order_fields()
    if duplicates:
        raise InvalidRequest([{"field": f, "message": "payment_order_id is repeated within this checkout"} for f in duplicates])
    resource = _accept_once(command={"idempotency_key": idempotency_key, "request": request.model_dump(mode="json")})
    return Response(
        status_code=202,
        content_type="application/json",
        body=resource,
        headers={"Location": f"/v1/payments/{resource['checkout_id']}"},
    )


@app.get("/v1/payments/<checkout_id>", summary="A payment and its orders")
def get_payment(checkout_id: Identifier) -> PaymentOut:
    return logic.payment_view(checkout_id, PaymentsRepository())


@app.get("/v1/wallets/<seller_account>", summary="A seller's balances")
def get_wallet(seller_account: Identifier) -> WalletOut:
    return logic.wallet_view(seller_account, WalletRepository())


@app.get("/v1/ledger/trial-balance", summary="Debits and credits per currency")
def get_trial_balance() -> TrialBalanceOut:
    return logic.trial_balance_view(LedgerRepository())


# --- errors -> problems -------------------------------------------------------------
@app.exception_handler(RequestValidationError)
def _invalid(error: RequestValidationError) -> Response:
    # never echo the input: it may be the very thing that must not be logged or returned
    errors = [{"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in error.errors()]
    return validation_problem(errors)


@app.exception_handler(InvalidRequest)
def _invalid_across_fields(error: InvalidRequest) -> Response:
    return validation_problem(error.errors)


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
    return problem(
        409,
        "request-in-progress",
        "Request in progress",
        "A request with this Idempotency-Key is being processed; retry shortly to get its result.",
        headers={"Retry-After": "1"},
    )


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
