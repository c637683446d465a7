"""What one checkout uses, counted in the local runtime, and its cost per million checkouts.

    .venv/bin/python -m payments_dev.bench.cost [--checkouts 10] [--write]

Runs the local runtime (moto server + the real ASL + the in-process handlers) and sends checkouts of 1 and
of 3 orders (``tok_visa``: the happy path) one at a time through the HTTP API, waits for each workflow to
finish, then reads the payment :data:`GET_POLLS` times through the API, as a client polling for the outcome
does. It counts, per checkout and only what the functions themselves do (not the local runtime's stream
pollers or stand-ins):

* API requests by method, and Lambda invocations per *kind* (``payment POST``, ``payment GET``,
  ``payment finalize``, ``executor``, ``wallet``, ``ledger``), with each kind's median handler thread CPU
  (handler + botocore client side; moto's server side runs in other threads), its AWS calls and the PSP
  calls it waits on (the simulated PSP's own table calls are the PSP's, not the function's);
* Step Functions starts and state transitions (the ``*StateEntered`` events of ``GetExecutionHistory``),
  the history's event count and the failure events among them (what a workflow logging ALL / ERROR writes);
* per table (its ``Settings`` field) the DynamoDB requests and the request units, computed from item sizes
  read from moto's backend: writes ceil(max(size before, size after) / 1 KB), reads ceil(size / 4 KB) (x0.5 if
  eventually consistent, Query per call on the summed size), transactional x2, minimum 1 unit per item, and
  every global secondary index write; an index no deployed stage has (``Index.deployed``) is listed apart and
  not counted in its table's units. (moto does not report ConsumedCapacity for every operation.)

``--write`` stores the counts as ``payments/ops/checkout_counts.json`` (:mod:`payments.ops.measured`): the one
record the cost model here and the capacity model (``payments.ops.capacity``: quotas, warm throughput, API
throttles, preflight) both read. :func:`price` prices its 3-order checkout with ``docs/prices-us-east-1.json``:
Standard vs Express, arm64 vs x86. Lambda durations in AWS are *modelled* from the record
(:func:`payments.ops.measured.billed_ms`: CPU x the memory's vCPU share + a round trip per AWS call + the PSP's
answer time per PSP call), not measured here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from functions import registry
from payments.ops import measured
from payments_dev.bench.common import ROOT, median

ORDERS = 3
#: the assumptions of the record (payments.ops.measured), named in docs/capacity.md and docs/benchmarks.md
GET_POLLS = 1  # the client reads the payment once after the 202 (more polls: more API requests and reads)
PSP_LATENCY_MS = 300.0  # a card authorisation's round trip at the PSP (the simulator answers in microseconds)
AWS_CALL_MS = 8.0  # mean in-region round trip of one DynamoDB / Step Functions call from Lambda
FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB, proportionally less below
SFN_TASK_OVERHEAD_MS = 40.0  # Express: per Lambda task scheduling overhead inside the execution
XRAY_SAMPLED = 0.05  # default sampling rule beyond the first request each second
#: what a checkout's record is compared on besides its exact counts: the median log record's size varies by a byte
LOG_BYTES_TOLERANCE = 0.05

_ignore = threading.local()


def prices() -> dict[str, Any]:
    return json.loads((ROOT / "docs" / "prices-us-east-1.json").read_text())


class Counters:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.local = threading.local()
        self.reset()

    def reset(self) -> None:
        """Forget every count (the next size of checkouts starts from zero)."""
        self.calls: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.gsi_wru = 0.0  # included in wru
        self.item_bytes: dict[str, list[int]] = defaultdict(list)
        #: "table operation" -> [requests, WRU, RRU]
        self.by_table_op: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        #: what the functions did (calls inside a handler only): table setting -> [requests, WRU, RRU]
        self.by_table: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        #: "table setting index" -> WRU written to it by the functions
        self.index_wru: dict[str, float] = defaultdict(float)
        self.handler_calls: Counter[str] = Counter()
        #: DynamoDB requests of the functions to our tables (the simulated PSP's own excluded)
        self.ddb_requests = 0
        self.api_requests: Counter[str] = Counter()
        self.invocations: Counter[str] = Counter()
        self.cpu_ms: dict[str, list[float]] = defaultdict(list)
        self.wall_ms: dict[str, list[float]] = defaultdict(list)
        self.aws_calls: dict[str, list[int]] = defaultdict(list)
        self.psp_calls: dict[str, list[int]] = defaultdict(list)


def _wire_size(value: Any) -> int:
    """Approximate DynamoDB size of a wire-format attribute value."""
    ((kind, v),) = value.items()
    if kind in ("S", "N"):
        return len(str(v).encode())
    if kind == "B":
        return len(v) if isinstance(v, bytes) else len(v) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(x).encode()) for x in v)
    if kind == "L":
        return 3 + sum(1 + _wire_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _wire_size(x) for k, x in v.items())
    return 0


def _item_size(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + _wire_size(v) for k, v in (item or {}).items())


def _tables() -> dict[str, Any]:
    """Every table spec (payments/kernel/tables.py) by its name in this runtime's settings."""
    from payments.kernel.config import settings
    from payments.kernel.tables import TABLES

    return {getattr(settings(), spec.setting): spec for spec in TABLES}


def _indexes(table_name: str) -> tuple[Any, ...]:
    """The GSIs of a table by its name (payments/kernel/tables.py, named as the settings name them)."""
    spec = _tables().get(table_name)
    return spec.indexes if spec is not None else ()


def _setting(table_name: str) -> str:
    spec = _tables().get(table_name)
    return spec.setting if spec is not None else table_name


def install_counters(counters: Counters) -> None:
    from botocore.client import BaseClient
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    from payments_dev.local import moto_patches
    from payments_dev.local.runtime import ACCOUNT, REGION

    original = BaseClient._make_api_call

    def stored(table_name: str, key_or_item: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(size, the values of the index key attributes) of the stored item (0, {} if none)."""
        with moto_patches._LOCK:
            table = dynamodb_backends[ACCOUNT][REGION].get_table(table_name)
            hash_key = DynamoType(key_or_item[table.hash_key_attr])
            range_key = DynamoType(key_or_item[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(hash_key, range_key)
            if item is None:
                return 0, {}
            keys = {a for index in _indexes(table_name) for a in (index.partition_key, index.sort_key) if a}
            return item.size(), {a: item.attrs[a].value for a in keys if a in item.attrs}

    def stored_size(table_name: str, key_or_item: dict[str, Any]) -> int:
        return stored(table_name, key_or_item)[0]

    def index_wru(
        table_name: str, before: tuple[int, dict[str, Any]], after: tuple[int, dict[str, Any]]
    ) -> dict[Any, float]:
        """Write units of each GSI a base-table write propagates to: an item entering or leaving an
        index is one write, a key change two (delete + put), an update of an item that stays is one
        write for an ALL projection (any attribute is projected) and none for KEYS_ONLY."""
        units: dict[Any, float] = {}
        for index in _indexes(table_name):
            was = index.partition_key in before[1] and (not index.sort_key or index.sort_key in before[1])
            now = index.partition_key in after[1] and (not index.sort_key or index.sort_key in after[1])
            size = max(before[0], after[0]) if index.projection == "ALL" else 100
            one = max(1, math.ceil(size / 1024))
            keys_changed = any(before[1].get(a) != after[1].get(a) for a in (index.partition_key, index.sort_key) if a)
            if was and now:
                units[index] = 2 * one if keys_changed else (one if index.projection == "ALL" and before[0] != 0 else 0)
            elif was or now:
                units[index] = one
        return units

    def write_targets(operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
        """(table, key or item, multiplier) of every item a write touches."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [(params["TableName"], params.get("Key") or params["Item"], 1)]
        if operation == "TransactWriteItems":
            out = []
            for entry in params["TransactItems"]:
                ((_, op),) = entry.items()
                out.append((op["TableName"], op.get("Key") or op["Item"], 2))
            return out
        if operation == "BatchWriteItem":
            return [
                (table, (r.get("PutRequest") or {}).get("Item") or r["DeleteRequest"]["Key"], 1)
                for table, requests in params["RequestItems"].items()
                for r in requests
            ]
        return []

    def read_units(operation: str, params: dict[str, Any], response: Any) -> list[tuple[str, float]]:
        """(table, RRU) of every read."""
        eventual = 0.5 if not params.get("ConsistentRead") else 1.0
        if operation == "GetItem":
            size = stored_size(params["TableName"], params["Key"])
            return [(params["TableName"], eventual * max(1, math.ceil(size / 4096)))]
        if operation in ("Query", "Scan") and response is not None:
            size = sum(_item_size(i) for i in response.get("Items", []))
            return [(params["TableName"], eventual * max(1, math.ceil(size / 4096)))]
        if operation == "TransactGetItems":
            return [
                (
                    e["Get"]["TableName"],
                    2.0 * max(1, math.ceil(stored_size(e["Get"]["TableName"], e["Get"]["Key"]) / 4096)),
                )
                for e in params["TransactItems"]
            ]
        if operation == "BatchGetItem":
            return [
                (
                    table,
                    (1.0 if spec.get("ConsistentRead") else 0.5) * max(1, math.ceil(stored_size(table, key) / 4096)),
                )
                for table, spec in params["RequestItems"].items()
                for key in spec["Keys"]
            ]
        return []

    def timed(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if getattr(_ignore, "on", False):
            return original(client, operation, params)
        service = client.meta.service_model.service_name
        in_handler = getattr(counters.local, "aws_calls", None) is not None
        psp_side = service == "dynamodb" and {_setting(t) for t in _request_tables(operation, params)} == {
            measured.PSP_TABLE
        }
        with counters.lock:
            counters.calls[f"{service}:{operation}"] += 1
            if in_handler:
                counters.handler_calls[f"{service}:{operation}"] += 1
                counters.ddb_requests += service == "dynamodb" and not psp_side
        if in_handler and not psp_side:  # the simulated PSP's table calls are the PSP's round trip, not ours
            counters.local.aws_calls += 1
        if service != "dynamodb":
            return original(client, operation, params)
        targets = write_targets(operation, params)
        before = [stored(t, k) for t, k, _ in targets]
        response = None
        try:
            response = original(client, operation, params)
            return response
        finally:
            per_table: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # setting -> [WRU, RRU]
            per_index: dict[str, float] = defaultdict(float)
            gsi_wru = 0.0
            for (table, key, multiplier), was in zip(targets, before, strict=True):
                now = stored(table, key)
                size = max(was[0], now[0])
                counters.item_bytes[table].append(size)
                setting = _setting(table)
                per_table[setting][0] += multiplier * max(1, math.ceil(size / 1024))
                for index, units in index_wru(table, was, now).items():
                    gsi_wru += units
                    per_index[f"{setting} {index.name}"] += units
                    if index.deployed:  # a local-only index is listed apart, not in its table's units
                        per_table[setting][0] += units
            for table, units in read_units(operation, params, response):
                per_table[_setting(table)][1] += units
            wru = sum(v[0] for v in per_table.values()) + sum(u for k, u in per_index.items() if not _deployed_index(k))
            rru = sum(v[1] for v in per_table.values())
            tables = sorted({t for t, _, _ in targets} or {params.get("TableName", "")})
            if operation == "BatchGetItem":
                tables = sorted(params["RequestItems"])
            label = f"{','.join(tables)} {operation}" + (f" ({params['IndexName']})" if params.get("IndexName") else "")
            with counters.lock:
                counters.wru += wru
                counters.rru += rru
                counters.gsi_wru += gsi_wru
                row = counters.by_table_op[label]
                row[0] += 1
                row[1] += wru
                row[2] += rru
                if in_handler:
                    for table in tables:
                        counters.by_table[_setting(table)][0] += 1
                    for setting, (w, r) in per_table.items():
                        counters.by_table[setting][1] += w
                        counters.by_table[setting][2] += r
                    for name, units in per_index.items():
                        counters.index_wru[name] += units

    BaseClient._make_api_call = timed


def _request_tables(operation: str, params: dict[str, Any]) -> set[str]:
    """The tables (by name) one DynamoDB request touches."""
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return {op["TableName"] for entry in params["TransactItems"] for op in entry.values()}
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return set(params["RequestItems"])
    return {params["TableName"]} if "TableName" in params else set()


def _deployed_index(name: str) -> bool:
    """Whether the index ``"<table setting> <index>"`` exists in a deployed stage."""
    from payments.kernel.tables import TABLES

    setting, index = name.split(" ")
    return next(i.deployed for t in TABLES if t.setting == setting for i in t.indexes if i.name == index)


def kind_of(function: str, event: Any) -> str:
    """The kind of an invocation: the payment function serves its POST, its GET and the FinalizePayment task."""
    if isinstance(event, dict) and "httpMethod" in event:
        return f"{function} {event['httpMethod']}"
    if isinstance(event, dict) and event.get("action") == "finalize_payment":
        return f"{function} finalize"
    return function


def wrap_handlers(counters: Counters) -> None:
    """Time every handler, on both paths (HTTP front door and Step Functions tasks), and count the PSP's calls."""
    from payments.psp.simulator import SimulatedPsp
    from payments_dev.local.lambdas import DISPATCHER, FUNCTIONS

    for method in ("charge", "lookup"):
        real_call = getattr(SimulatedPsp, method)

        def counted(self: Any, *args: Any, __real: Any = real_call, **kwargs: Any) -> Any:
            if getattr(counters.local, "in_psp", False):  # the simulator's charge looks up: one call to the PSP
                return __real(self, *args, **kwargs)
            if getattr(counters.local, "psp_calls", None) is not None:
                counters.local.psp_calls += 1
            counters.local.in_psp = True
            try:
                return __real(self, *args, **kwargs)
            finally:
                counters.local.in_psp = False

        setattr(SimulatedPsp, method, counted)

    for name in FUNCTIONS:
        real = DISPATCHER.handler_for(name)

        def timed(event: Any, context: Any, __real: Any = real, __name: str = name) -> Any:
            counters.local.aws_calls = 0
            counters.local.psp_calls = 0
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            try:
                return __real(event, context)
            finally:
                kind = kind_of(__name.removeprefix("payments-"), event)
                with counters.lock:
                    counters.invocations[kind] += 1
                    if isinstance(event, dict) and "httpMethod" in event:
                        counters.api_requests[event["httpMethod"]] += 1
                    counters.cpu_ms[kind].append((time.thread_time() - cpu0) * 1000)
                    counters.wall_ms[kind].append((time.perf_counter() - wall0) * 1000)
                    counters.aws_calls[kind].append(counters.local.aws_calls)
                    counters.psp_calls[kind].append(counters.local.psp_calls)
                counters.local.aws_calls = None
                counters.local.psp_calls = None

        with DISPATCHER._lock:
            DISPATCHER._handlers[name] = timed


def _checkouts(runtime: Any, counters: Counters, checkouts: int, orders: int) -> dict[str, Any]:
    """Send ``checkouts`` checkouts of ``orders`` orders, each waited for and polled; their counts per checkout."""
    import boto3

    from payments_dev.bench.warm import checkout_body
    from payments_dev.local.client import ApiClient
    from payments_dev.local.runtime import REGION

    api = ApiClient(runtime.api_url)
    _ignore.on = True
    sfn = boto3.client("stepfunctions", endpoint_url=runtime.aws_url, region_name=REGION)
    _ignore.on = False
    histories = []
    tag = str(int(time.time()))
    for i in range(checkouts):
        body = checkout_body(i, orders)
        body["checkout_id"] = f"cost{tag}_{orders}_{i:04d}"
        for o in body["payment_orders"]:
            o["payment_order_id"] = f"{body['checkout_id']}_{o['payment_order_id'][-1]}"
        reply = api.pay(body, f"idem-{body['checkout_id']}")
        assert reply.status == 202, reply
        arn = runtime.settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{body['checkout_id']}"
        _ignore.on = True
        try:
            deadline = time.monotonic() + 120
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.05)
            status = sfn.describe_execution(executionArn=arn)["status"]
            events = []
            for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
                events += page["events"]
        finally:
            _ignore.on = False
        for _ in range(GET_POLLS):
            polled = api.payment(body["checkout_id"])
            assert polled.status == 200, polled
        histories.append({"status": status, "events": events})
    time.sleep(0.5)  # let the last in-flight counters settle
    return {"histories": histories}


def _slim(e: dict[str, Any]) -> dict[str, Any]:  # a log record without execution data
    return {
        k: (
            v
            if not isinstance(v, dict)
            else {kk: vv for kk, vv in v.items() if kk not in ("input", "output", "inputDetails", "outputDetails")}
        )
        for k, v in e.items()
    }


#: history events a state machine logging at ERROR writes (failures only)
ERROR_EVENTS = ("Failed", "TimedOut", "Aborted")


def _summary(counters: Counters, histories: list[dict[str, Any]], orders: int) -> dict[str, Any]:
    """One size's counts per checkout: the record's entry (``checkouts[orders]``) and the raw figures."""
    n = len(histories)
    types: Counter[str] = Counter(e["type"] for h in histories for e in h["events"])
    transitions = sum(v for k, v in types.items() if k.endswith("StateEntered"))
    log_bytes = [len(json.dumps(_slim(e), default=str)) for h in histories for e in h["events"]]
    calls = counters.handler_calls
    entry = {
        "statuses": {k: v / n for k, v in sorted(Counter(h["status"] for h in histories).items())},
        "api_requests": {k: v / n for k, v in sorted(counters.api_requests.items())},
        "invocations": {k: v / n for k, v in sorted(counters.invocations.items())},
        "psp_calls": sum(sum(v) for v in counters.psp_calls.values()) / n,
        "stepfunctions": {
            "starts": calls["stepfunctions:StartExecution"] / n,
            "transitions": transitions / n,
            "history_events": sum(types.values()) / n,
            "error_events": sum(v for k, v in types.items() if k.endswith(ERROR_EVENTS)) / n,
        },
        "dynamodb": {
            k: {"requests": v[0] / n, "wru": v[1] / n, "rru": v[2] / n} for k, v in sorted(counters.by_table.items())
        },
        "dynamodb_requests": counters.ddb_requests / n,
        "index_wru": {k: {"wru": v / n, "deployed": _deployed_index(k)} for k, v in sorted(counters.index_wru.items())},
        "s3": {
            "put": sum(v for k, v in calls.items() if k.startswith("s3:Put")) / n,
            "get": sum(v for k, v in calls.items() if k.startswith("s3:Get")) / n,
        },
    }
    raw = {
        "checkouts": n,
        "orders_per_checkout": orders,
        "history_event_types": {k: v / n for k, v in sorted(types.items())},
        "sfn_log_bytes_per_event": median([float(b) for b in log_bytes]),
        "handler_cpu_ms": {k: median(v) for k, v in counters.cpu_ms.items()},
        "handler_wall_ms": {k: median(v) for k, v in counters.wall_ms.items()},
        "handler_aws_calls": {k: median([float(c) for c in v]) for k, v in counters.aws_calls.items()},
        "handler_psp_calls": {k: median([float(c) for c in v]) for k, v in counters.psp_calls.items()},
        "api_calls_per_checkout": {k: v / n for k, v in sorted(counters.calls.items())},
        "handler_api_calls_per_checkout": {k: v / n for k, v in sorted(calls.items())},
        "dynamodb_by_table_operation": {
            k: {"requests": v[0] / n, "wru": v[1] / n, "rru": v[2] / n} for k, v in sorted(counters.by_table_op.items())
        },
        "max_item_bytes": {k: max(v) for k, v in counters.item_bytes.items()},
    }
    return {"entry": entry, "raw": raw}


def count(checkouts: int = 10, sizes: tuple[int, ...] = measured.MEASURED_ORDERS) -> dict[int, dict[str, Any]]:
    """Per order count of ``sizes``: ``checkouts`` checkouts counted in one local runtime (``entry``: the
    record's counts per checkout; ``raw``: every figure, for the benchmark table)."""
    from payments_dev.local.runtime import LocalRuntime, free_port

    # over the socket: a handler's thread CPU must not include moto's own work serving its calls
    # (the in-process transport would run that on the handler's thread)
    # the recovery schedule is off: its cost is per minute (a Query per shard), not per checkout
    runtime = LocalRuntime(port=free_port(), aws_port=free_port(), quiet=True, in_process=False, recovery_interval=0)
    runtime.start()
    out: dict[int, dict[str, Any]] = {}
    try:
        counters = Counters()
        install_counters(counters)
        wrap_handlers(counters)
        for orders in sizes:
            time.sleep(0.5)  # nothing of the previous size still in flight
            with counters.lock:
                counters.reset()
            sent = _checkouts(runtime, counters, checkouts, orders)
            out[orders] = _summary(counters, sent["histories"], orders)
    finally:
        runtime.stop()
    return out


def record(counted: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The record of ``payments/ops/checkout_counts.json`` from :func:`count`'s result (both sizes)."""
    reference = counted[ORDERS]["raw"]
    memory = {fn.name: fn.memory_mb for fn in registry.FUNCTIONS}
    kinds = {}
    for kind in sorted(reference["handler_cpu_ms"]):
        function = kind.split(" ")[0]
        kinds[kind] = {
            "function": function,
            "memory_mb": memory[function],
            "cpu_ms": round(reference["handler_cpu_ms"][kind], 3),
            "aws_calls": reference["handler_aws_calls"][kind],
            "psp_calls": reference["handler_psp_calls"][kind],
        }
    return {
        "_comment": "What one checkout uses, counted by the cost bench in the local runtime (payments_dev/bench/cost.py). "
        "Do not edit: regenerate with `python -m payments_dev.bench.cost --write` (or make bench). Read by the cost "
        "model and the capacity model (payments/ops/measured.py); cpu_ms is measured (a median), every other figure "
        "is a count a fresh run must repeat (tests/unit/dev/test_checkout_counts.py).",
        "measured": {
            "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "checkouts_per_size": reference["checkouts"],
        },
        "assumptions": {
            "get_polls": GET_POLLS,
            "psp_latency_ms": PSP_LATENCY_MS,
            "aws_call_ms": AWS_CALL_MS,
            "full_vcpu_mb": FULL_VCPU_MB,
        },
        "invocation_kinds": kinds,
        "sfn_log_bytes_per_event": reference["sfn_log_bytes_per_event"],
        "checkouts": {str(orders): counted[orders]["entry"] for orders in sorted(counted)},
    }


def price(rec: dict[str, Any] | None = None, warm: dict[str, Any] | None = None) -> dict[str, Any]:
    """USD per million 3-order checkouts of the record (default: the checked-in one), per design x architecture.

    Designs: ``standard`` (transitions, logging ALL), ``express`` (requests + duration, logging ERROR:
    deployed) and ``express-log-all`` (the same logging every event, for comparison). DynamoDB is priced
    without the simulated PSP's table (a real PSP's own cost, not ours; shown apart as
    ``psp_simulator_dynamodb_per_million``). ``priced``: the counts priced, per checkout (compared with
    the capacity model's by tests/unit/dev/test_one_model.py).
    """
    rec = rec or measured.record()
    c = rec["checkouts"][str(ORDERS)]
    kinds = rec["invocation_kinds"]
    p = prices()
    a = rec["assumptions"]

    def billed_ms(kind: str) -> float:  # the record's own figures (payments.ops.measured.billed_ms's model)
        k = kinds[kind]
        own = math.ceil(k["cpu_ms"] * max(1.0, a["full_vcpu_mb"] / k["memory_mb"]) + k["aws_calls"] * a["aws_call_ms"])
        return float(own + k["psp_calls"] * a["psp_latency_ms"])

    per_kind = c["invocations"]
    lambda_requests = sum(per_kind.values())
    durations = {kind: billed_ms(kind) for kind in per_kind}
    lambda_seconds = sum(per_kind[kind] * durations[kind] / 1000 for kind in per_kind)
    gb_s = sum(per_kind[kind] * durations[kind] / 1000 * kinds[kind]["memory_mb"] / 1024 for kind in per_kind)
    # log bytes per invocation: measured in the warm bench (Powertools JSON logs + EMF), else a guess
    log_per_invocation = 400.0
    if warm:
        logged = [v["handler"]["log_bytes"] for v in warm.values()]
        log_per_invocation = sum(logged) / len(logged)
    lambda_log_gb = lambda_requests * log_per_invocation / 1e9
    sfn = c["stepfunctions"]
    log_bytes = rec["sfn_log_bytes_per_event"]
    api_requests = sum(c["api_requests"].values())
    # requests: each one once (a transaction over two tables is one request, in each table's figures)
    psp_table = c["dynamodb"].get(measured.PSP_TABLE, {"requests": 0.0, "wru": 0.0, "rru": 0.0})
    ours = {
        "requests": c["dynamodb_requests"],
        **{unit: sum(v[unit] for t, v in c["dynamodb"].items() if t != measured.PSP_TABLE) for unit in ("wru", "rru")},
    }
    psp = {unit: ours[unit] + psp_table[unit] for unit in ("requests", "wru", "rru")}
    ddb = p["dynamodb"]

    def dynamodb_usd(units: dict[str, float]) -> float:
        return (
            units["wru"] * ddb["on_demand_write_request_units_per_million"] / 1e6
            + units["rru"] * ddb["on_demand_read_request_units_per_million"] / 1e6
        )

    common = {
        "dynamodb": dynamodb_usd(ours),
        "api_gateway_rest": api_requests * p["apigateway"]["rest_requests_per_million"] / 1e6,
        "lambda_requests": lambda_requests * p["lambda"]["requests_per_million"] / 1e6,
        "s3": c["s3"]["put"] * p["s3"]["put_per_1000"] / 1e3 + c["s3"]["get"] * p["s3"]["get_per_1000"] / 1e3,
        "logs_lambda": lambda_log_gb * p["cloudwatch_logs"]["ingestion_per_gb"],
        "xray": XRAY_SAMPLED * api_requests * p["xray"]["traces_recorded_per_million"] / 1e6,
    }
    # Express: one request + duration of the execution (critical path: one order's execute (with its PSP wait)
    # -> wallet -> ledger, the orders run in parallel in the Map, then finalize)
    critical_ms = (
        sum(durations.get(kind, 0) for kind in ("executor", "wallet", "ledger", "payment finalize"))
        + 4 * SFN_TASK_OVERHEAD_MS
    )
    express_s = math.ceil(critical_ms / 100) / 10
    express = sfn["starts"] * (
        p["stepfunctions"]["express_requests_per_million"] / 1e6
        + express_s * 0.0625 * p["stepfunctions"]["express_gb_second"]
    )
    vended = p["cloudwatch_logs"]["vended_logs_ingestion_per_gb"]
    events = sfn["history_events"]
    designs = {
        "standard": {
            "stepfunctions": sfn["transitions"] * p["stepfunctions"]["standard_per_1000_transitions"] / 1e3,
            "logs_stepfunctions": events * log_bytes / 1e9 * vended,
        },
        "express": {"stepfunctions": express, "logs_stepfunctions": sfn["error_events"] * log_bytes / 1e9 * vended},
        "express-log-all": {"stepfunctions": express, "logs_stepfunctions": events * log_bytes / 1e9 * vended},
    }
    out: dict[str, Any] = {
        "modelled_billed_ms": durations,
        "lambda_gb_s_per_checkout": gb_s,
        "express_execution_s": express_s,
        "dynamodb_ours": ours,
        "dynamodb_with_psp_simulator": psp,
        "psp_simulator_dynamodb_per_million": (dynamodb_usd(psp) - dynamodb_usd(ours)) * 1e6,
        "sfn_log_events": {"ALL": events, "ERROR": sfn["error_events"]},
        "lambda_log_bytes_per_invocation": log_per_invocation,
        "lambda_log_bytes_measured": bool(warm),
        "priced": {
            "api_requests": api_requests,
            "lambda_invocations": lambda_requests,
            "lambda_seconds": lambda_seconds,
            "stepfunctions_starts": sfn["starts"],
            "stepfunctions_transitions": sfn["transitions"],
            "dynamodb_wru": ours["wru"],
            "dynamodb_rru": ours["rru"],
        },
    }
    for design, parts in designs.items():
        for arch, key in (("arm64", "arm64_gb_second"), ("x86_64", "x86_64_gb_second")):
            items = {**common, **parts, "lambda_duration": gb_s * p["lambda"][key]}
            out[f"{design}/{arch}"] = {
                "total_per_million": sum(items.values()) * 1e6,
                "items_per_million": {k: v * 1e6 for k, v in items.items()},
            }
    return out


def agreement(priced: dict[str, Any]) -> dict[str, float]:
    """The counts the cost model priced per 3-order checkout against the capacity model's: the relative
    difference of each (``docs/benchmarks.md``; tests/unit/dev/test_one_model.py holds each within 5 %)."""
    from payments.ops import capacity as model

    n = ORDERS
    theirs = {
        "api_requests": model.api_requests(n),
        "lambda_invocations": model.lambda_invocations(n),
        "lambda_seconds": model.lambda_concurrency_seconds(n),
        "stepfunctions_starts": model.stepfunctions(n, "starts"),
        "stepfunctions_transitions": model.stepfunctions(n, "transitions"),
        "dynamodb_wru": sum(u.write(n) for t, u in model.TABLE_USE.items() if t != measured.PSP_TABLE),
        "dynamodb_rru": sum(u.read(n) for t, u in model.TABLE_USE.items() if t != measured.PSP_TABLE),
    }
    return {k: priced["priced"][k] / v - 1 for k, v in theirs.items()}


def counts_only(rec: dict[str, Any]) -> dict[str, Any]:
    """The record without what a fresh run measures anew (when, CPU, the log record's size): its counts."""
    kept = {k: v for k, v in rec.items() if k not in ("_comment", "measured", "sfn_log_bytes_per_event")}
    kept["invocation_kinds"] = {
        kind: {k: v for k, v in fields.items() if k != "cpu_ms"} for kind, fields in rec["invocation_kinds"].items()
    }
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Counts per checkout in the local runtime, priced per million")
    parser.add_argument("--checkouts", type=int, default=10, help="checkouts of each size (1 and 3 orders)")
    parser.add_argument("--quick", action="store_true", help="a tiny run: one checkout of each size")
    parser.add_argument("--write", action="store_true", help=f"store the counts as {measured.PATH.relative_to(ROOT)}")
    parser.add_argument("--record", help="write the record to this file (and nothing else)")
    args = parser.parse_args(argv)
    counted = count(1 if args.quick else args.checkouts)
    rec = record(counted)
    if args.record:
        with open(args.record, "w") as out:
            json.dump(rec, out, indent=2, sort_keys=True)
        return 0
    if args.write:
        measured.PATH.write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"record": rec, "cost": price(rec)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
