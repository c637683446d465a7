"""Small helpers over the low-level DynamoDB client shared by the repositories."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from payments.errors import StoreUnavailable

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

#: DynamoDB error codes that a later attempt may not hit again
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def to_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; ours are all integers (minor units, counters)."""
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError(f"non-integer number {value} in a money table")
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def error_code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def is_condition_failure(err: ClientError) -> bool:
    return error_code(err) == "ConditionalCheckFailedException"


def cancellation_codes(err: ClientError) -> list[str]:
    """Per-item reasons of a cancelled TransactWriteItems ("None" for items that were fine)."""
    reasons = err.response.get("CancellationReasons") or []
    return [r.get("Code", "None") for r in reasons]


def cancelled_by_condition(err: ClientError, index: int) -> bool:
    codes = cancellation_codes(err)
    return error_code(err) == "TransactionCanceledException" and index < len(codes) and codes[index] == "ConditionalCheckFailed"


def is_transient(err: ClientError) -> bool:
    code = error_code(err)
    if code in TRANSIENT_CODES:
        return True
    if code == "TransactionCanceledException":
        return any(c in ("ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded") for c in cancellation_codes(err))
    return False


@contextlib.contextmanager
def transient_as_store_unavailable() -> Iterator[None]:
    """Re-raise throttling and transient DynamoDB errors as StoreUnavailable (retried by the state machine)."""
    try:
        yield
    except ClientError as err:
        if is_transient(err):
            raise StoreUnavailable(f"DynamoDB: {error_code(err)}") from err
        raise


def query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Query or Scan (``kwargs['_op']`` selects which), page by page."""
    op = kwargs.pop("_op", "query")
    paginator = client.get_paginator(op)
    for page in paginator.paginate(**kwargs):
        for item in page.get("Items", []):
            yield from_item(item)  # type: ignore[misc]
