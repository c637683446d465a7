"""Small helpers over the low-level DynamoDB client shared by the repositories."""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, overload

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from payments.kernel.errors import StoreUnavailable

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

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


def put_new(table: str, values: dict[str, Any]) -> TransactWriteItemTypeDef:
    """A TransactWriteItems ``Put`` of a new item: its condition (no item with this key yet) cancels
    the whole transaction when the item exists, so a retry of the transaction writes nothing twice."""
    return {"Put": {"TableName": table, "Item": to_item(values), "ConditionExpression": "attribute_not_exists(pk)"}}


def to_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items()}


@overload
def from_item(item: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def from_item(item: Mapping[str, Any] | None) -> dict[str, Any] | None: ...
def from_item(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A DynamoDB item (its attribute values) as plain values; None stays None."""
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
    return (
        error_code(err) == "TransactionCanceledException"
        and index < len(codes)
        and codes[index] == "ConditionalCheckFailed"
    )


def is_transient(err: ClientError) -> bool:
    code = error_code(err)
    if code in TRANSIENT_CODES:
        return True
    if code == "TransactionCanceledException":
        return any(
            c in ("ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded")
            for c in cancellation_codes(err)
        )
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


def get_item(client: Any, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The item under ``key`` (strongly consistent) as plain values, None if there is none;
    throttling raises StoreUnavailable."""
    with transient_as_store_unavailable():
        item: Mapping[str, Any] | None = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return from_item(item)


def conditional_write(write: Callable[..., Any], **request: Any) -> bool:
    """One conditional ``put_item``/``update_item`` (``write(**request)``): True when it was
    applied, False when its condition failed (done before, or not allowed now: the caller's
    condition says which), changing nothing; throttling raises StoreUnavailable, anything
    else raises."""
    try:
        with transient_as_store_unavailable():
            write(**request)
    except ClientError as err:
        if is_condition_failure(err):
            return False
        raise
    return True


def transact_write(client: Any, items: Any) -> ClientError | None:
    """One TransactWriteItems: None when it was applied; the cancellation when a condition
    refused it (nothing written: the caller reads which item with :func:`cancelled_by_condition`);
    throttling raises StoreUnavailable, anything else raises."""
    try:
        with transient_as_store_unavailable():
            client.transact_write_items(TransactItems=items)
    except ClientError as err:
        if error_code(err) == "TransactionCanceledException" and "ConditionalCheckFailed" in cancellation_codes(err):
            return err
        raise
    return None


def scan_sort_key(client: Any, table: str, sk: str) -> list[dict[str, Any]]:
    """Every item of ``table`` whose sort key is ``sk`` (a Scan, strongly consistent)."""
    return list(
        query_all(
            client,
            _op="scan",
            TableName=table,
            ConsistentRead=True,
            FilterExpression="sk = :sk",
            ExpressionAttributeValues=to_values({":sk": sk}),
        )
    )


def query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a Query or Scan (``kwargs['_op']`` selects which), page by page."""
    op = kwargs.pop("_op", "query")
    paginator = client.get_paginator(op)
    for page in paginator.paginate(**kwargs):
        for item in page.get("Items", []):
            yield from_item(item)


def query_index(client: Any, table: str, index: str, attribute: str, value: Any) -> Iterator[dict[str, Any]]:
    """Every item of a secondary index whose partition key ``attribute`` is ``value``, page by page."""
    return query_all(
        client,
        TableName=table,
        IndexName=index,
        KeyConditionExpression=f"{attribute} = :value",
        ExpressionAttributeValues=to_values({":value": value}),
    )


#: BatchGetItem's limit of keys per request
BATCH_GET_KEYS = 100
#: rounds of UnprocessedKeys retried before giving up (DynamoDB returns them under throttling)
BATCH_GET_ROUNDS = 8


def batch_get(client: Any, table: str, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The items found under ``keys`` (plain ``{"pk": ..., "sk": ...}`` strings), strongly
    consistent, 100 keys per request; unprocessed keys are asked again with a backoff, and
    a batch that keeps coming back unprocessed raises StoreUnavailable: all or nothing,
    never a partial answer."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), BATCH_GET_KEYS):
        pending: dict[str, Any] = {
            table: {"Keys": [to_item(k) for k in keys[start : start + BATCH_GET_KEYS]], "ConsistentRead": True}
        }
        for round_ in range(BATCH_GET_ROUNDS):
            if round_:
                time.sleep(min(1.0, 0.05 * 2 ** (round_ - 1)))
            with transient_as_store_unavailable():
                response = client.batch_get_item(RequestItems=pending)
            found.extend(from_item(item) for item in response.get("Responses", {}).get(table, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
        else:
            raise StoreUnavailable(f"DynamoDB: {len(pending[table]['Keys'])} keys of {table} stayed unprocessed")
    return found


def shard_of(key: str, shards: int) -> int:
    """The write shard of a money item keyed by ``key`` (a payment order id): stable across
    processes and releases (crc32, not Python's salted ``hash``), so a retry, the backfill and
    every reader agree on it. Wallet balances, ledger totals and account totals, and the
    recovery index's ``unfinished`` partitions all shard with it: the only shard hash."""
    return zlib.crc32(key.encode()) % shards
