"""The operator API: the work queues of ``payments attention`` and ``payments mismatches`` over HTTP.

* ``GET  /v1/operator/attention``                      every open flag (orders and refunds), oldest first
* ``GET  /v1/operator/attention/{id}``                 the flags of the order and/or refund ``id``
* ``POST /v1/operator/attention/{id}/resolve``         close an open flag: ``{"note": "...", "item": "order"|"refund"}``
* ``GET  /v1/operator/mismatches?day=D&open=true``     a settlement day's mismatches across files (default: the
  latest days that have any)
* ``GET  /v1/operator/mismatches/{id}``                one mismatch, by its short id
* ``POST /v1/operator/mismatches/{id}/resolve``        resolve it: ``{"note": "..."}``

Every route is IAM-authenticated (SigV4) like the rest of the API, and is granted to operators by the
stack's operator policy, not to merchants. "Who" is the caller's IAM identity as API Gateway
authenticated it (``requestContext.identity.userArn``); the local runtime stands in with the OS user.
A resolution is one conditional write: exactly once; a second one is 409 and the first stands.
Problems are RFC 9457: 404 (no such item), 409 (nothing open to resolve), 422 (a field breaks the rules).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions import api_kit
from functions.payment.problems import problem
from payments.kernel.errors import Conflict, NotFound
from payments.payin import attention
from payments.reconciliation import store

app = APIGatewayRestResolver(enable_validation=True)

_DESCRIPTIONS = {
    400: "Malformed request: not UTF-8, not JSON, or nested too deep (malformed-request)",
    403: "No caller identity in the request (forbidden): the route is reached only through SigV4",
    404: "No such order, refund or mismatch (not-found)",
    409: "Nothing open to resolve: already resolved (the first resolution stands), never flagged, or the id names "
    "both an order and a refund with open flags (say which with item) (resource-conflict)",
    422: "A field breaks the rules: an empty note, a day not written YYYY-MM-DD (validation-error)",
    500: "Unexpected error (internal-error)",
    503: "The store is throttled; retry (service-unavailable, Retry-After)",
}


def _problems(*statuses: int) -> dict[int, OpenAPIResponse]:
    return api_kit.problem_responses(_DESCRIPTIONS, *statuses)


Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Day = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
ShortId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = Field(description="Why: what was done or decided (kept with who and when)")


class ResolveFlagRequest(ResolveRequest):
    item: Literal["order", "refund"] | None = Field(
        default=None, description="When the id names both an order and a refund with open flags"
    )


class FlagOut(BaseModel):
    """An order's or a refund's attention flag, open or last closed."""

    item: Literal["order", "refund"]
    id: str
    status: str
    open: bool
    kind: Literal["PERSON", "REDRIVE"]
    reason: str
    flagged_at: str | None = None
    resolved_at: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class FlagsOut(BaseModel):
    flags: list[FlagOut]


class MismatchOut(BaseModel):
    """A settlement mismatch in the work queue. Amounts are decimal strings in major units of their currency."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(description="The short id an operator types: <YYYYMMDD>-<12 hex digits>")
    day: str = Field(description="The settlement day of its file (YYYY-MM-DD, or undated)")
    source_key: str = Field(description="The settlement file (its key in the settlement bucket)")
    status: Literal["OPEN", "RESOLVED"]
    mismatch_id: str
    kind: str
    classification: str
    rule: str
    psp_reference: str | None = None
    payment_order_id: str | None = None
    ledger_amount: str | None = None
    settlement_amount: str | None = None
    currency: str
    ledger_currency: str | None = None
    line: int | None = None
    record_type: str | None = None
    resolved_by: str | None = Field(default=None, description="Who: an IAM identity, or reconciliation itself")
    resolved_at: str | None = None
    resolution: str | None = None


class MismatchesOut(BaseModel):
    mismatches: list[MismatchOut]


def _ok(description: str, model: type) -> dict[int, OpenAPIResponse]:
    return api_kit.json_response(200, description, model)


class NoCaller(Exception):
    """The request carries no caller identity (deployed, API Gateway's IAM authorisation always sets one)."""


def caller() -> str:
    """The caller's IAM identity, as API Gateway's IAM authorisation put it in the request context."""
    identity = app.current_event.request_context.identity
    who = identity.user_arn or identity.caller
    if not who:
        raise NoCaller
    return who


# --- attention ------------------------------------------------------------------------------------------
@app.get(
    "/v1/operator/attention",
    summary="Every open attention flag (orders and refunds), oldest first",
    responses={**_ok("The open flags", FlagsOut), **_problems(422, 500, 503)},
)
def list_attention() -> FlagsOut:
    return FlagsOut(flags=[FlagOut.model_validate(f.__dict__) for f in attention.list_open()])


@app.get(
    "/v1/operator/attention/<id>",
    summary="The attention flags of an order and/or a refund, open or last closed",
    responses={**_ok("The order's and/or the refund's flag", FlagsOut), **_problems(404, 422, 500, 503)},
)
def show_attention(id: api_kit.Identifier) -> FlagsOut:
    found = attention.find(id)
    if not found:
        raise NotFound("No such order or refund.")
    return FlagsOut(flags=[FlagOut.model_validate(f.__dict__) for f in found])


@app.post(
    "/v1/operator/attention/<id>/resolve",
    summary="Close an open attention flag, recording who (the caller), when and why",
    responses={**_ok("The flag, closed", FlagOut), **_problems(400, 403, 404, 409, 422, 500, 503)},
)
def resolve_attention(id: api_kit.Identifier, request: Annotated[ResolveFlagRequest, Body()]) -> FlagOut:
    who = caller()
    try:
        flag = attention.resolve(id, request.note, who=who, item=request.item)
    except attention.NoSuchItem:
        raise NotFound("No such order or refund.") from None
    except attention.AttentionError as err:
        raise Conflict(str(err)) from None
    return FlagOut.model_validate(flag.__dict__)


# --- mismatches -----------------------------------------------------------------------------------------
@app.get(
    "/v1/operator/mismatches",
    summary="A settlement day's mismatches across files",
    description=f"Without day: the latest {store.RECENT_DAYS} settlement days that have mismatches, newest first.",
    responses={**_ok("The mismatches", MismatchesOut), **_problems(422, 500, 503)},
)
def list_mismatches(
    day: Annotated[Day | None, Query(description="The settlement day, YYYY-MM-DD")] = None,
    open: Annotated[bool, Query(description="Only the mismatches still open")] = False,
) -> MismatchesOut:
    return MismatchesOut(mismatches=[MismatchOut.model_validate(m) for m in store.queue(day, open)])


@app.get(
    "/v1/operator/mismatches/<id>",
    summary="One settlement mismatch, and how it was resolved",
    responses={**_ok("The mismatch", MismatchOut), **_problems(404, 422, 500, 503)},
)
def show_mismatch(id: ShortId) -> MismatchOut:
    found = store.get(id)
    if found is None:
        raise NotFound("No such mismatch.")
    return MismatchOut.model_validate(found)


@app.post(
    "/v1/operator/mismatches/<id>/resolve",
    summary="Resolve a settlement mismatch, recording who (the caller), when and why; once: the first stands",
    description="The file's HTML report is written again with each mismatch's status.",
    responses={**_ok("The mismatch, resolved", MismatchOut), **_problems(400, 403, 404, 409, 422, 500, 503)},
)
def resolve_mismatch(id: ShortId, request: Annotated[ResolveRequest, Body()]) -> MismatchOut:
    who = caller()
    mismatch, done = store.resolve(id, request.note, who)
    if not done:
        raise Conflict(
            f"Already resolved by {mismatch.get('resolved_by')} at {mismatch.get('resolved_at')}: "
            "the first resolution stands."
        )
    from payments.reconciliation.service import refresh_html

    refresh_html(str(mismatch["source_key"]))
    return MismatchOut.model_validate(mismatch)


# --- errors -> problems -------------------------------------------------------------
api_kit.answer_common_problems(app)  # validation, a throttled store, no such route, the unexpected


@app.exception_handler(NoCaller)
def _no_caller(_: NoCaller) -> Response[str]:
    return problem(403, "forbidden", "Forbidden", "The request carries no caller identity: sign it with SigV4.")


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response[str]:
    return problem(404, "not-found", "Not found", str(error))


@app.exception_handler(Conflict)
def _conflict(error: Conflict) -> Response[str]:
    return problem(409, "resource-conflict", "Nothing open to resolve", str(error))


def openapi_additions(spec: dict[str, Any]) -> dict[str, Any]:
    """Merge this API's paths and schemas into the checkout API's OpenAPI."""
    import json

    own = json.loads(app.get_openapi_json_schema())
    spec.setdefault("paths", {}).update(own.get("paths", {}))
    spec.setdefault("components", {}).setdefault("schemas", {}).update(own.get("components", {}).get("schemas", {}))
    return spec
