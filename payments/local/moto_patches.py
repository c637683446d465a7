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

3. **Data-plane responses without the generic serializer.** moto walks every
   response through botocore's shape model; for DynamoDB items (maps of maps of
   AttributeValues) that was a third of the runtime's CPU. The results of the
   data operations are already plain wire-format JSON (moto converts its
   DynamoType objects first), so they are written with ``json.dumps``; anything
   that is not plain JSON (binary attributes, errors) takes moto's path.

And two to its Step Functions engine:

4. it builds a new boto3 client for every Lambda task it runs (tens of milliseconds
   of CPU each); :func:`install` makes it reuse one client per region, service and
   server port;
5. it parses the state machine's ASL with ANTLR at the start of every execution (a
   seventh of the demo's CPU); the parsed program is cached per definition text.
   Sharing it between executions is safe for the same reason that the iterations of
   one Map already share it: the components keep no evaluation state of their own
   (attempt counters and the like live in each execution's environment, keyed by
   component), and each component's heap key is assigned here once, before sharing.
"""

from __future__ import annotations

import copy
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
    """Stands in for the ``copy`` module inside moto's transact_write_items only."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value


def install() -> None:
    _install_dynamodb()
    _install_fast_dynamodb_responses()
    _install_client_cache()
    if os.environ.get("PAYMENTS_LOCAL_ASL_CACHE", "on") != "off":  # off: the baseline of bench/throughput.py
        _install_program_cache()


_FAST_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems"}
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


def _install_client_cache() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto import settings as moto_settings
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
            for item in child if isinstance(child, (list, tuple)) else (child.values() if isinstance(child, dict) else (child,)):
                if isinstance(item, EvalComponent) or (hasattr(item, "__dict__") and type(item).__module__.startswith("moto.stepfunctions.parser.asl.component")):
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


def _install_dynamodb() -> None:
    import moto.dynamodb.models as ddb
    from moto.dynamodb.models.dynamo_type import DynamoType

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
                key = op["Item"] if op_type == "Put" else op["Key"]
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                snapshots.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
            real_copy = ddb.copy
            ddb.copy = _NoTableCopy  # type: ignore[assignment]
            try:
                return original_transact(self, transact_items)
            except Exception:
                for table, hash_key, range_key, item in reversed(snapshots):
                    _restore(table, hash_key, range_key, item)
                raise
            finally:
                ddb.copy = real_copy

    backend.transact_write_items = transact_write_items
    backend._payments_patched = True


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
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
