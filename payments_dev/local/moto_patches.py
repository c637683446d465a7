"""Two fixes to moto's in-memory DynamoDB so the local runtime behaves like DynamoDB under load.

1. **Linearizable operations.** moto's DynamoDB backend is not thread-safe: a
   scan or a transaction racing a write fails with "dictionary changed size
   during iteration". DynamoDB serializes writes per item; here one re-entrant
   lock serializes every data operation of the backend (the local runtime is
   one process, so this costs little).
2. **Transactions roll back per item.** moto snapshots whole tables with
   ``copy.deepcopy`` before every ``TransactWriteItems`` so that it can roll
   back; that is O(table size) per transaction and made a few hundred checkouts
   take minutes. Under the lock, the same guarantee comes from snapshotting only
   the items the transaction touches and restoring them if it is cancelled.
   moto also streams each item as it writes it, before it knows whether the
   transaction commits; a cancelled transaction's stream records are removed
   with the restore (a reader would hear a change DynamoDB never committed).
   moto numbers a record by its index in the shard, so the records that follow
   take the removed ones' numbers: no reader saw those, as stream reads are
   serialised with the transaction (``payments_dev.local.inprocess``).

3. **Data-plane responses without the generic serializer.** moto walks every
   response through botocore's shape model; for DynamoDB items (maps of maps of
   AttributeValues) that was a third of the runtime's CPU. The results of the
   data operations are already plain wire-format JSON (moto converts its
   DynamoType objects first), so they are written with ``json.dumps``; anything
   that is not plain JSON (binary attributes, errors) takes moto's path.
4. **Queries read one partition, not the table.** moto answers every ``Query``
   by sorting all the items of the table and testing each (``Table.all_items``),
   for table and index queries alike: a settlement day's ``by_charge_day`` query
   cost time proportional to everything ever charged, and a 10,000-checkout chaos
   run slowed down as it went. Here a table query reads only its hash key's
   items, and a global secondary index query reads the items of a hash-key index
   kept per table: built on the first query of the index, then updated after
   every write that can change an item (``Table.put_item``, ``Table.delete_item``,
   ``update_item``, a cancelled transaction's restore) and dropped when the
   table's indexes change. moto's own query then runs over those candidates, so
   key conditions, sorting, filters, limits and pagination are still moto's. An
   index entry that went stale only costs a look-up (moto re-checks the key); an
   entry missing would lose an item, which is why every write path re-indexes
   (the unit tests compare queries with a scan after random writes).

And two to its Step Functions engine:

5. it builds a new boto3 client for every Lambda task it runs (tens of milliseconds
   of CPU each); :func:`install` makes it reuse one client per region, service and
   server port;
6. it parses the state machine's ASL with ANTLR at the start of every execution (a
   seventh of the demo's CPU); the parsed program is cached per definition text.
   Sharing it between executions is safe for the same reason that the iterations of
   one Map already share it: the components keep no evaluation state of their own
   (attempt counters and the like live in each execution's environment, keyed by
   component), and each component's heap key is assigned here once, before sharing.
   Its JSONPath expressions (``InputPath``, ``ResultPath``, ``$.field`` parameters) were
   also parsed again at every evaluation, building a new PLY parser each time (6% of a
   chaos run's CPU); the parsed paths are cached per text. ``find`` and
   ``update_or_create`` read a parsed path and write only the data they are given.
"""

from __future__ import annotations

import calendar
import copy
import datetime
import functools
import json
import os
import threading
from typing import Any

_LOCK = threading.RLock()
_DATA_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "execute_statement",
)


class _NoTableCopy:
    """Stands in for the ``copy`` module inside moto's transact_write_items only: a table is not copied, anything
    else is (``update_item`` copies the item before it changes it: the old image of its stream record)."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def install() -> None:
    _install_dynamodb()
    if (
        os.environ.get("PAYMENTS_LOCAL_QUERY_INDEX", "on") != "off"
    ):  # off: the baseline of payments_dev/bench/query_index.py
        _install_query_index()
    _install_fast_dynamodb_responses()
    if (
        os.environ.get("PAYMENTS_LOCAL_FAST_STREAMS", "on") != "off"
    ):  # off: moto's serializer for GetRecords (the baseline when measuring it)
        _install_fast_stream_records()
    _install_client_cache()
    if (
        os.environ.get("PAYMENTS_LOCAL_ASL_CACHE", "on") != "off"
    ):  # off: the baseline of payments_dev/bench/throughput.py
        _install_program_cache()
        _install_json_path_cache()


_FAST_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    }
)


def _install_fast_dynamodb_responses() -> None:
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult, "_payments_fast", False):
        return
    original = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in _FAST_OPERATIONS and isinstance(self.result, dict):
            try:
                body = json.dumps(self.result)
            except TypeError:  # bytes of a binary attribute: let moto encode it
                return original(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return original(self, context)

    DynamoResult.execute_result = execute_result
    DynamoResult._payments_fast = True


def _epoch_seconds(value: Any) -> Any:
    """A stream record's ``ApproximateCreationDateTime`` as moto's serializer writes it (JSON protocols'
    ``unixtimestamp``: seconds, truncated to the millisecond); anything else is not JSON."""
    if isinstance(value, datetime.datetime):
        seconds = calendar.timegm(value.timetuple())
        return seconds + (value.microsecond // 1000) / 1000.0 if value.microsecond else seconds
    raise TypeError(f"{type(value).__name__} is not JSON")


def _install_fast_stream_records() -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    if getattr(DynamoDBStreamsHandler, "_payments_fast", False):
        return
    original = DynamoDBStreamsHandler.get_records

    class _Records(ActionResult):
        def execute_result(self, context: Any) -> Any:
            try:
                body = json.dumps(self.result, default=_epoch_seconds)
            except TypeError:  # bytes of a binary attribute: let moto encode it
                return super().execute_result(context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    def get_records(self: Any) -> Any:
        return _Records(original(self).result)

    DynamoDBStreamsHandler.get_records = get_records
    DynamoDBStreamsHandler._payments_fast = True
    DynamoDBStreamsHandler._payments_moto_get_records = original  # the baseline, for the tests that compare


def _install_client_cache() -> None:
    from moto import settings as moto_settings
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    if getattr(boto_client.boto_client_for, "_payments_cached", False):
        return
    original = boto_client.boto_client_for
    cache: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def cached(region: str, service: str, state_credentials: Any = None) -> Any:
        # keyed by the server's port too: the client points at it, and a later runtime in this
        # process (another test session's) listens on another port
        key = (region, service, moto_settings.moto_server_port())
        with lock:
            if key not in cache:
                cache[key] = original(region=region, service=service, state_credentials=state_credentials)
            return cache[key]

    cached._payments_cached = True  # type: ignore[attr-defined]
    boto_client.boto_client_for = cached
    lambda_eval_utils.boto_client_for = cached


def _install_program_cache() -> None:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    if getattr(ExecutionWorker._get_evaluation_entrypoint, "_payments_cached", False):
        return
    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def assign_heap_keys(component: Any, seen: set[int]) -> None:
        # heap_key is created lazily on first use; created concurrently by two executions it could
        # differ between them and lose a retry counter, so every component gets its key now
        if id(component) in seen:
            return
        seen.add(id(component))
        if isinstance(component, EvalComponent):
            component.heap_key  # noqa: B018 - the property assigns the key
        children = component.__dict__.values() if hasattr(component, "__dict__") else ()
        for child in children:
            for item in (
                child if isinstance(child, (list, tuple)) else (child.values() if isinstance(child, dict) else (child,))
            ):
                if isinstance(item, EvalComponent) or (
                    hasattr(item, "__dict__")
                    and type(item).__module__.startswith("moto.stepfunctions.parser.asl.component")
                ):
                    assign_heap_keys(item, seen)

    def cached_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            program = programs.get(definition)
            if program is None:
                program = AmazonStateLanguageParser.parse(definition)[0]
                assign_heap_keys(program, set())
                programs[definition] = program
            return program

    cached_entrypoint._payments_cached = True  # type: ignore[attr-defined]
    ExecutionWorker._get_evaluation_entrypoint = cached_entrypoint


def _install_json_path_cache() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in (json_path, result_path):  # each imported its own parse (jsonpath_ng.ext, jsonpath_ng)
        if not getattr(module.parse, "_payments_cached", False):
            cached = functools.lru_cache(maxsize=4096)(module.parse)
            cached._payments_cached = True  # type: ignore[attr-defined]
            module.parse = cached


def _install_dynamodb() -> None:
    import moto.dynamodb.models as ddb

    backend = ddb.DynamoDBBackend
    if getattr(backend, "_payments_patched", False):
        return

    for name in _DATA_OPERATIONS:
        original = getattr(backend, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _LOCK:
                return __original(self, *args, **kwargs)

        setattr(backend, name, locked)

    original_transact = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            snapshots = []
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                table = self.get_table(op["TableName"])
                hash_key, range_key = _primary_key(table, op["Item"] if op_type == "Put" else op["Key"])
                snapshots.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            # moto applies the items one by one, each streamed as it is written; a transaction that then fails
            # wrote nothing in DynamoDB, so nothing of it may stay in a stream either (a reader would hear a
            # change that never committed: a refund "succeeded" twice, a ledger row the ledger never held).
            # Stream reads are serialised with this (payments_dev.local.inprocess), so none saw those records.
            streamed = {
                id(table.stream_shard): (table.stream_shard, len(table.stream_shard.items))
                for table, *_ in snapshots
                if table.stream_shard is not None
            }
            real_copy = ddb.copy
            ddb.copy = _NoTableCopy  # type: ignore[assignment]
            try:
                return original_transact(self, transact_items)
            except Exception:
                for table, hash_key, range_key, item in reversed(snapshots):
                    _restore(table, hash_key, range_key, item)
                for shard, length in streamed.values():
                    del shard.items[length:]
                raise
            finally:
                ddb.copy = real_copy

    backend.transact_write_items = transact_write_items
    backend._payments_patched = True


def _primary_key(table: Any, attrs: dict[str, Any]) -> tuple[Any, Any]:
    """(hash key, range key or None) of a table's item or key, in the wire format; KeyError if incomplete."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    range_attr = table.range_key_attr
    return DynamoType(attrs[table.hash_key_attr]), (DynamoType(attrs[range_attr]) if range_attr else None)


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    try:
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
            return
        if item is None:
            table.items.get(hash_key, {}).pop(range_key, None)
        else:
            table.items.setdefault(hash_key, {})[range_key] = item
    finally:
        _reindex(table, hash_key, range_key)


# --- 4. queries read one partition -------------------------------------------------------

_QUERY_SCOPE = threading.local()  # (table, candidates) while moto's Table.query runs on this thread
_INDEXES = "_payments_gsi_indexes"  # attribute of a moto Table: {index name: _HashIndex}


class _HashIndex:
    """The primary keys of a table's items by the values of one GSI's hash-key attributes."""

    def __init__(self, hash_attrs: tuple[str, ...]) -> None:
        self.hash_attrs = hash_attrs
        self.buckets: dict[tuple[Any, ...], dict[tuple[Any, Any], None]] = {}
        self.placed: dict[tuple[Any, Any], tuple[Any, ...]] = {}  # primary key -> its bucket

    def place(self, key: tuple[Any, Any], item: Any) -> None:
        old = self.placed.pop(key, None)
        if old is not None:
            bucket = self.buckets.get(old)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self.buckets[old]
        if item is None:
            return
        values = tuple(item.attrs.get(name) for name in self.hash_attrs)
        if any(value is None for value in values):
            return  # DynamoDB leaves an item without the index's key out of the index
        try:
            self.buckets.setdefault(values, {})[key] = None
        except (TypeError, ArithmeticError):  # a set, list, map or malformed number as a key: no query can match it
            return
        self.placed[key] = values


def _stored_item(table: Any, hash_key: Any, range_key: Any) -> Any:
    partition = table.items.get(hash_key)
    if table.range_key_attr is None:
        return partition
    return partition.get(range_key) if partition else None


def _reindex(table: Any, hash_key: Any, range_key: Any) -> None:
    indexes = table.__dict__.get(_INDEXES)
    if not indexes:
        return
    item = _stored_item(table, hash_key, range_key)
    for index in indexes.values():
        index.place((hash_key, range_key), item)


def _gsi_candidates(table: Any, index_name: str, conditions: list[tuple[str, Any]]) -> list[Any] | None:
    gsi = next((i for i in table.global_indexes if i.name == index_name), None)
    if gsi is None:
        return None  # a local index, or none: moto's own path (and its error)
    hash_attrs = tuple(k["AttributeName"] for k in gsi.schema if k["KeyType"] == "HASH")
    wanted = dict(conditions)
    if set(wanted) != set(hash_attrs):
        return None
    indexes = table.__dict__.setdefault(_INDEXES, {})
    index = indexes.get(index_name)
    if index is None or index.hash_attrs != hash_attrs:
        index = indexes[index_name] = _HashIndex(hash_attrs)
        for hash_key, partition in table.items.items():
            if table.range_key_attr is None:
                index.place((hash_key, None), partition)
            else:
                for range_key, item in partition.items():
                    index.place((hash_key, range_key), item)
    try:
        keys = list(index.buckets.get(tuple(wanted[name] for name in hash_attrs), ()))
    except (TypeError, ArithmeticError):
        return None  # moto's own path, and its own answer (or error)
    items = (_stored_item(table, hash_key, range_key) for hash_key, range_key in keys)
    return [item for item in items if item is not None]


def _table_candidates(table: Any, hash_key: Any) -> list[Any] | None:
    if hash_key is None:
        return None
    partition = table.items.get(hash_key)
    if partition is None:
        return []
    return [partition] if table.range_key_attr is None else list(partition.values())


def _install_query_index() -> None:
    import moto.dynamodb.models as ddb
    from moto.dynamodb.models.table import Table

    if getattr(Table, "_payments_query_index", False):
        return
    # needs part 2 (install() applies both): moto's own rollback would swap in a deep copy of the
    # table, with the index as it was before the transaction; part 2's restore goes through _reindex
    original_all_items = Table.all_items
    original_query = Table.query
    original_put = Table.put_item
    original_delete = Table.delete_item
    backend = ddb.DynamoDBBackend
    original_update = backend.update_item
    original_update_indexes = backend.update_table_global_indexes

    def all_items(self: Any) -> Any:
        scope = getattr(_QUERY_SCOPE, "value", None)
        if scope is not None and scope[0] is self:
            return scope[1]
        return original_all_items(self)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        with _LOCK:
            if index_name:
                candidates = _gsi_candidates(self, index_name, kwargs.get("hash_key_conditions") or [])
            else:
                candidates = _table_candidates(self, hash_key)
            if candidates is None:
                return original_query(self, hash_key, *args, **kwargs)
            _QUERY_SCOPE.value = (self, candidates)
            try:
                return original_query(self, hash_key, *args, **kwargs)
            finally:
                _QUERY_SCOPE.value = None

    def put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # in finally: moto may store the item and then fail (a stream's subscriber gone)
        with _LOCK:
            try:
                return original_put(self, item_attrs, *args, **kwargs)
            finally:
                try:
                    key = _primary_key(self, item_attrs)
                except (KeyError, TypeError, ValueError, AttributeError):
                    pass  # refused by moto's validation before anything was stored
                else:
                    _reindex(self, *key)

    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        with _LOCK:
            try:
                return original_delete(self, hash_key, range_key)
            finally:
                _reindex(self, hash_key, range_key)

    def update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # moto updates an existing item in place, where Table.put_item does not see it
        with _LOCK:
            try:
                return original_update(self, table_name, key, *args, **kwargs)
            finally:
                table = self.get_table(table_name)
                try:
                    _reindex(table, *_primary_key(table, key))
                except (KeyError, TypeError, ValueError, AttributeError):
                    table.__dict__.pop(_INDEXES, None)  # a key moto reads another way: rebuild on the next query

    def update_table_global_indexes(self: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            try:
                return original_update_indexes(self, table, *args, **kwargs)
            finally:
                table.__dict__.pop(_INDEXES, None)

    Table.all_items = all_items
    Table.query = query
    Table.put_item = put_item
    Table.delete_item = delete_item
    backend.update_item = functools.wraps(original_update)(update_item)
    backend.update_table_global_indexes = update_table_global_indexes
    Table._payments_query_index = True
