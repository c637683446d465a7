"""Cost per million checkouts, from counts taken in the local runtime.

    .venv/bin/python -m payments_dev.bench.cost [--checkouts 10]

Runs the local runtime (moto server + the real ASL + the in-process handlers) and sends
checkouts of 3 orders (``tok_visa``: the happy path) one at a time through the HTTP API,
waiting for each workflow to finish. It counts, per checkout:

* Step Functions state transitions: the ``*StateEntered`` events of ``GetExecutionHistory``
  (retries would add more; the happy path has none), and the history's event count (the
  vended-log events of a Standard workflow logging ``ALL``);
* Lambda invocations per function (the API's payment invocation + every Task), with the
  handler's thread CPU (handler + botocore client side; moto's server side runs in other
  threads) and its AWS calls;
* every AWS API call by service and operation (a wrapper on ``BaseClient._make_api_call``,
  i.e. every client in the process, Powertools' idempotency client included), and for
  DynamoDB the request units computed from item sizes read from moto's backend: writes
  ceil(max(size before, size after) / 1 KB), reads ceil(size / 4 KB) (x0.5 if eventually
  consistent, Query per call on the summed size), transactional x2, minimum 1 unit per item.
  (moto does not report ConsumedCapacity for every operation, so it is computed.)

Then it prices them with ``docs/prices-us-east-1.json``: Standard vs Express, arm64 vs x86.
Lambda durations in AWS are *modelled* (see :func:`model_duration_ms`), not measured here.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from functions import registry
from payments_dev.bench.common import ROOT, median

ORDERS = 3
#: assumptions of the duration model (stated in the report)
AWS_CALL_MS = 8.0  # mean in-region round trip of one DynamoDB / Step Functions call from Lambda
FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB, proportionally less below
SFN_TASK_OVERHEAD_MS = 40.0  # Express: per Lambda task scheduling overhead inside the execution
XRAY_SAMPLED = 0.05  # default sampling rule beyond the first request each second

_ignore = threading.local()


def prices() -> dict[str, Any]:
    return json.loads((ROOT / "docs" / "prices-us-east-1.json").read_text())


def memory_sizes() -> dict[str, int]:
    """MemorySize per function from the synthesized dev template, else the registry's."""
    defaults = {fn.name: fn.memory_mb for fn in registry.FUNCTIONS}
    template = ROOT / "cdk.out" / "Payments-dev.template.json"
    if template.exists():
        for resource in json.loads(template.read_text())["Resources"].values():
            props = resource.get("Properties", {})
            name = props.get("FunctionName")
            if (
                resource.get("Type") == "AWS::Lambda::Function"
                and isinstance(name, str)
                and name.startswith("payments-dev-")
            ):
                defaults[name.removeprefix("payments-dev-")] = int(props.get("MemorySize", 128))
    return defaults


class Counters:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.gsi_wru = 0.0  # included in wru
        self.item_bytes: dict[str, list[int]] = defaultdict(list)
        #: "table operation" -> [requests, WRU, RRU]
        self.by_table_op: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        self.invocations: Counter[str] = Counter()
        self.cpu_ms: dict[str, list[float]] = defaultdict(list)
        self.wall_ms: dict[str, list[float]] = defaultdict(list)
        self.aws_calls: dict[str, list[int]] = defaultdict(list)
        self.lock = threading.RLock()
        self.local = threading.local()


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


def _indexes(table_name: str) -> tuple[Any, ...]:
    """The GSIs of a table by its name (payments/kernel/tables.py, named as the settings name them)."""
    from payments.kernel.config import settings
    from payments.kernel.tables import TABLES

    for spec in TABLES:
        if getattr(settings(), spec.setting) == table_name:
            return spec.indexes
    return ()


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

    def index_wru(table_name: str, before: tuple[int, dict[str, Any]], after: tuple[int, dict[str, Any]]) -> float:
        """Write units of the GSIs a base-table write propagates to: an item entering or leaving an
        index is one write, a key change two (delete + put), an update of an item that stays is one
        write for an ALL projection (any attribute is projected) and none for KEYS_ONLY."""
        units = 0.0
        for index in _indexes(table_name):
            was = index.partition_key in before[1] and (not index.sort_key or index.sort_key in before[1])
            now = index.partition_key in after[1] and (not index.sort_key or index.sort_key in after[1])
            projection = getattr(index, "projection", "ALL")  # the Index of older commits has no projection: ALL
            size = max(before[0], after[0]) if projection == "ALL" else 100
            one = max(1, math.ceil(size / 1024))
            keys_changed = any(before[1].get(a) != after[1].get(a) for a in (index.partition_key, index.sort_key) if a)
            if was and now:
                units += 2 * one if keys_changed else (one if projection == "ALL" and before[0] != 0 else 0)
            elif was or now:
                units += one
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

    def timed(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if getattr(_ignore, "on", False):
            return original(client, operation, params)
        service = client.meta.service_model.service_name
        with counters.lock:
            counters.calls[f"{service}:{operation}"] += 1
        depth = getattr(counters.local, "aws_calls", None)
        if depth is not None:
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
            wru = 0.0
            gsi_wru = 0.0
            for (table, key, multiplier), was in zip(targets, before, strict=True):
                now = stored(table, key)
                size = max(was[0], now[0])
                counters.item_bytes[table].append(size)
                wru += multiplier * max(1, math.ceil(size / 1024))
                gsi_wru += index_wru(table, was, now)
            wru += gsi_wru
            rru = 0.0
            eventual = 0.5 if not params.get("ConsistentRead") else 1.0
            if operation == "GetItem":
                size = stored_size(params["TableName"], params["Key"])
                rru += eventual * max(1, math.ceil(size / 4096))
            elif operation in ("Query", "Scan") and response is not None:
                size = sum(_item_size(i) for i in response.get("Items", []))
                rru += eventual * max(1, math.ceil(size / 4096))
            elif operation == "TransactGetItems":
                for entry in params["TransactItems"]:
                    size = stored_size(entry["Get"]["TableName"], entry["Get"]["Key"])
                    rru += 2 * max(1, math.ceil(size / 4096))
            elif operation == "BatchGetItem":
                for table, spec in params["RequestItems"].items():
                    factor = 1.0 if spec.get("ConsistentRead") else 0.5
                    for key in spec["Keys"]:
                        rru += factor * max(1, math.ceil(stored_size(table, key) / 4096))
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

    BaseClient._make_api_call = timed


def wrap_handlers(counters: Counters) -> None:
    """Time every handler, on both paths (HTTP front door and Step Functions tasks)."""
    from payments_dev.local.lambdas import DISPATCHER, FUNCTIONS

    for name in FUNCTIONS:
        real = DISPATCHER.handler_for(name)

        def timed(event: Any, context: Any, __real: Any = real, __name: str = name) -> Any:
            counters.local.aws_calls = 0
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            try:
                return __real(event, context)
            finally:
                short = __name.removeprefix("payments-")
                with counters.lock:
                    counters.invocations[short] += 1
                    counters.cpu_ms[short].append((time.thread_time() - cpu0) * 1000)
                    counters.wall_ms[short].append((time.perf_counter() - wall0) * 1000)
                    counters.aws_calls[short].append(counters.local.aws_calls)
                counters.local.aws_calls = None

        with DISPATCHER._lock:
            DISPATCHER._handlers[name] = timed


def count(checkouts: int = 10) -> dict[str, Any]:
    import boto3

    from payments_dev.bench.warm import checkout_body
    from payments_dev.local.client import ApiClient
    from payments_dev.local.runtime import REGION, LocalRuntime, free_port

    counters = Counters()
    # over the socket: a handler's thread CPU must not include moto's own work serving its calls
    # (the in-process transport would run that on the handler's thread)
    # the recovery schedule is off: its cost is per minute (a Query per shard), not per checkout
    runtime = LocalRuntime(port=free_port(), aws_port=free_port(), quiet=True, in_process=False, recovery_interval=0)
    runtime.start()
    try:
        install_counters(counters)
        wrap_handlers(counters)
        api = ApiClient(runtime.api_url)
        _ignore.on = True
        sfn = boto3.client("stepfunctions", endpoint_url=runtime.aws_url, region_name=REGION)
        _ignore.on = False
        histories = []
        tag = str(int(time.time()))
        for i in range(checkouts):
            body = checkout_body(i, ORDERS)
            body["checkout_id"] = f"cost{tag}_{i}"
            for o in body["payment_orders"]:
                o["payment_order_id"] = f"cost{tag}_{i}_{o['payment_order_id']}"
            reply = api.pay(body, f"idem-{body['checkout_id']}")
            assert reply.status == 202, reply
            arn = (
                runtime.settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{body['checkout_id']}"
            )
            _ignore.on = True
            try:
                deadline = time.monotonic() + 120
                while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
                    time.sleep(0.05)
                status = sfn.describe_execution(executionArn=arn)["status"]
                events = []
                pages = sfn.get_paginator("get_execution_history")
                for page in pages.paginate(executionArn=arn):
                    events += page["events"]
            finally:
                _ignore.on = False
            histories.append({"status": status, "events": events})
        time.sleep(0.5)  # let the last in-flight counters settle
    finally:
        runtime.stop()
    n = checkouts
    types: Counter[str] = Counter(e["type"] for h in histories for e in h["events"])
    transitions = sum(v for k, v in types.items() if k.endswith("StateEntered"))

    def slim(e: dict[str, Any]) -> dict[str, Any]:  # a log record without execution data
        return {
            k: (
                v
                if not isinstance(v, dict)
                else {kk: vv for kk, vv in v.items() if kk not in ("input", "output", "inputDetails", "outputDetails")}
            )
            for k, v in e.items()
        }

    log_bytes = [len(json.dumps(slim(e), default=str)) for h in histories for e in h["events"]]
    return {
        "checkouts": n,
        "orders_per_checkout": ORDERS,
        "statuses": Counter(h["status"] for h in histories),
        "transitions_per_checkout": transitions / n,
        "history_events_per_checkout": sum(types.values()) / n,
        "history_event_types": {k: v / n for k, v in sorted(types.items())},
        "sfn_log_bytes_per_event": median(log_bytes),
        "invocations_per_checkout": {k: v / n for k, v in sorted(counters.invocations.items())},
        "handler_cpu_ms": {k: median(v) for k, v in counters.cpu_ms.items()},
        "handler_wall_ms": {k: median(v) for k, v in counters.wall_ms.items()},
        "handler_aws_calls": {k: median(v) for k, v in counters.aws_calls.items()},
        "api_calls_per_checkout": {k: v / n for k, v in sorted(counters.calls.items())},
        "wru_per_checkout": counters.wru / n,
        "rru_per_checkout": counters.rru / n,
        "gsi_wru_per_checkout": counters.gsi_wru / n,
        "dynamodb_by_table_operation": {
            k: {"requests": v[0] / n, "wru": v[1] / n, "rru": v[2] / n} for k, v in sorted(counters.by_table_op.items())
        },
        "max_item_bytes": {k: max(v) for k, v in counters.item_bytes.items()},
    }


def model_duration_ms(cpu_ms: float, aws_calls: float, memory_mb: int) -> float:
    """Billed ms in AWS: CPU stretched by the memory's vCPU share, plus one round trip per AWS call."""
    return math.ceil(cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb) + aws_calls * AWS_CALL_MS)


PSP_TABLE = "psp-simulator"  # the simulated PSP's own record: a real PSP's cost, not ours
#: history events a state machine logging at ERROR writes (failures only)
ERROR_EVENTS = ("Failed", "TimedOut", "Aborted")


def dynamodb_units(counts: dict[str, Any], *, with_psp: bool) -> dict[str, float]:
    """Requests, WRU and RRU per checkout, with or without the simulated PSP's table."""
    rows = [
        v for k, v in counts["dynamodb_by_table_operation"].items() if with_psp or not k.startswith(PSP_TABLE + " ")
    ]
    return {key: sum(r[key] for r in rows) for key in ("requests", "wru", "rru")}


def price(counts: dict[str, Any], warm: dict[str, Any] | None = None) -> dict[str, Any]:
    """USD per million checkouts, per design x architecture.

    Designs: ``standard`` (transitions, logging ALL: what was deployed before issue 17),
    ``express`` (requests + duration, logging ERROR: deployed now) and ``express-log-all``
    (the same logging every event, for comparison). DynamoDB is priced without the simulated
    PSP's table (a real PSP's own cost, not ours; shown apart as ``psp_simulator_dynamodb``).
    """
    p = prices()
    memory = memory_sizes()
    per_fn = counts["invocations_per_checkout"]
    lambda_requests = sum(per_fn.values())
    gb_s = 0.0
    durations = {}
    for fn, invocations in per_fn.items():
        ms = model_duration_ms(counts["handler_cpu_ms"][fn], counts["handler_aws_calls"][fn], memory.get(fn, 256))
        durations[fn] = ms
        gb_s += invocations * ms / 1000 * memory.get(fn, 256) / 1024
    # log bytes per invocation: measured in the warm bench (Powertools JSON logs + EMF), else a guess
    log_per_invocation = 400.0
    if warm:
        measured = [v["handler"]["log_bytes"] for v in warm.values()]
        log_per_invocation = sum(measured) / len(measured)
    lambda_log_gb = lambda_requests * log_per_invocation / 1e9
    events = counts["history_events_per_checkout"]
    error_events = sum(v for k, v in counts["history_event_types"].items() if k.endswith(ERROR_EVENTS))
    log_bytes = counts["sfn_log_bytes_per_event"]
    calls = counts["api_calls_per_checkout"]
    s3_put = sum(v for k, v in calls.items() if k.startswith("s3:Put"))
    s3_get = sum(v for k, v in calls.items() if k.startswith("s3:Get"))
    ours, psp = dynamodb_units(counts, with_psp=False), dynamodb_units(counts, with_psp=True)
    ddb = p["dynamodb"]

    def dynamodb_usd(units: dict[str, float]) -> float:
        return (
            units["wru"] * ddb["on_demand_write_request_units_per_million"] / 1e6
            + units["rru"] * ddb["on_demand_read_request_units_per_million"] / 1e6
        )

    common = {
        "dynamodb": dynamodb_usd(ours),
        "api_gateway_rest": 1 * p["apigateway"]["rest_requests_per_million"] / 1e6,
        "lambda_requests": lambda_requests * p["lambda"]["requests_per_million"] / 1e6,
        "s3": s3_put * p["s3"]["put_per_1000"] / 1e3 + s3_get * p["s3"]["get_per_1000"] / 1e3,
        "logs_lambda": lambda_log_gb * p["cloudwatch_logs"]["ingestion_per_gb"],
        "xray": XRAY_SAMPLED * p["xray"]["traces_recorded_per_million"] / 1e6,
    }
    # Express: one request + duration of the execution (critical path: one order's
    # execute -> wallet -> ledger, the orders run in parallel in the Map, then finalize)
    critical_ms = (
        sum(durations.get(fn, 0) for fn in ("executor", "wallet", "ledger", "payment")) + 4 * SFN_TASK_OVERHEAD_MS
    )
    express_s = math.ceil(critical_ms / 100) / 10
    express = (
        p["stepfunctions"]["express_requests_per_million"] / 1e6
        + express_s * 0.0625 * p["stepfunctions"]["express_gb_second"]
    )
    vended = p["cloudwatch_logs"]["vended_logs_ingestion_per_gb"]
    designs = {
        "standard": {
            "stepfunctions": counts["transitions_per_checkout"]
            * p["stepfunctions"]["standard_per_1000_transitions"]
            / 1e3,
            "logs_stepfunctions": events * log_bytes / 1e9 * vended,
        },
        "express": {"stepfunctions": express, "logs_stepfunctions": error_events * log_bytes / 1e9 * vended},
        "express-log-all": {"stepfunctions": express, "logs_stepfunctions": events * log_bytes / 1e9 * vended},
    }
    out: dict[str, Any] = {
        "modelled_billed_ms": durations,
        "lambda_gb_s_per_checkout": gb_s,
        "express_execution_s": express_s,
        "dynamodb_ours": ours,
        "dynamodb_with_psp_simulator": psp,
        "psp_simulator_dynamodb_per_million": (dynamodb_usd(psp) - dynamodb_usd(ours)) * 1e6,
        "sfn_log_events": {"ALL": events, "ERROR": error_events},
    }
    for design, parts in designs.items():
        for arch, key in (("arm64", "arm64_gb_second"), ("x86_64", "x86_64_gb_second")):
            items = {**common, **parts, "lambda_duration": gb_s * p["lambda"][key]}
            out[f"{design}/{arch}"] = {
                "total_per_million": sum(items.values()) * 1e6,
                "items_per_million": {k: v * 1e6 for k, v in items.items()},
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Counts per checkout in the local runtime, priced per million")
    parser.add_argument("--checkouts", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a tiny run: one checkout")
    args = parser.parse_args(argv)
    counts = count(1 if args.quick else args.checkouts)
    print(json.dumps({"counts": counts, "cost": price(counts)}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
