"""Cost per million checkouts, from counts taken in the local runtime.

    .venv/bin/python -m bench.cost [--checkouts 10]

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

from bench.common import ROOT, median

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
    """MemorySize per function from the synthesized dev template, else the infra/ defaults."""
    defaults = {"payment": 512, "executor": 256, "wallet": 256, "ledger": 256, "reconcile": 1024, "psp": 512}
    template = ROOT / "cdk.out" / "Payments-dev.template.json"
    if template.exists():
        for resource in json.loads(template.read_text())["Resources"].values():
            props = resource.get("Properties", {})
            name = props.get("FunctionName")
            if resource.get("Type") == "AWS::Lambda::Function" and isinstance(name, str) and name.startswith("payments-dev-"):
                defaults[name.removeprefix("payments-dev-")] = int(props.get("MemorySize", 128))
    return defaults


class Counters:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.item_bytes: dict[str, list[int]] = defaultdict(list)
        self.invocations: Counter[str] = Counter()
        self.cpu_ms: dict[str, list[float]] = defaultdict(list)
        self.wall_ms: dict[str, list[float]] = defaultdict(list)
        self.aws_calls: dict[str, list[int]] = defaultdict(list)
        self.lock = threading.RLock()
        self.local = threading.local()


def _wire_size(value: Any) -> int:
    """Approximate DynamoDB size of a wire-format attribute value."""
    (kind, v), = value.items()
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


def install_counters(counters: Counters) -> None:
    from botocore.client import BaseClient
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    from payments.local import moto_patches
    from payments.local.runtime import ACCOUNT, REGION

    original = BaseClient._make_api_call

    def stored_size(table_name: str, key_or_item: dict[str, Any]) -> int:
        with moto_patches._LOCK:
            table = dynamodb_backends[ACCOUNT][REGION].get_table(table_name)
            hash_key = DynamoType(key_or_item[table.hash_key_attr])
            range_key = DynamoType(key_or_item[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(hash_key, range_key)
            return item.size() if item is not None else 0

    def write_targets(operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
        """(table, key or item, multiplier) of every item a write touches."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            return [(params["TableName"], params.get("Key") or params["Item"], 1)]
        if operation == "TransactWriteItems":
            out = []
            for entry in params["TransactItems"]:
                (kind, op), = entry.items()
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
        before = [stored_size(t, k) for t, k, _ in targets]
        response = None
        try:
            response = original(client, operation, params)
            return response
        finally:
            wru = 0.0
            for (table, key, multiplier), size_before in zip(targets, before):
                size = max(size_before, stored_size(table, key))
                counters.item_bytes[table].append(size)
                wru += multiplier * max(1, math.ceil(size / 1024))
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
            with counters.lock:
                counters.wru += wru
                counters.rru += rru

    BaseClient._make_api_call = timed


def wrap_handlers(counters: Counters) -> None:
    """Time every handler, on both paths (HTTP front door and Step Functions tasks)."""
    from payments.local.lambdas import DISPATCHER, FUNCTIONS

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

    from bench.warm import checkout_body
    from payments.local.client import ApiClient
    from payments.local.runtime import REGION, LocalRuntime, free_port

    counters = Counters()
    # over the socket: a handler's thread CPU must not include moto's own work serving its calls
    # (the in-process transport would run that on the handler's thread)
    runtime = LocalRuntime(port=free_port(), aws_port=free_port(), quiet=True, in_process=False)
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
            arn = runtime.settings.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{body['checkout_id']}"
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
        return {k: (v if not isinstance(v, dict) else {kk: vv for kk, vv in v.items() if kk not in ("input", "output", "inputDetails", "outputDetails")}) for k, v in e.items()}

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
        "max_item_bytes": {k: max(v) for k, v in counters.item_bytes.items()},
    }


def model_duration_ms(cpu_ms: float, aws_calls: float, memory_mb: int) -> float:
    """Billed ms in AWS: CPU stretched by the memory's vCPU share, plus one round trip per AWS call."""
    return math.ceil(cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb) + aws_calls * AWS_CALL_MS)


def price(counts: dict[str, Any], warm: dict[str, Any] | None = None) -> dict[str, Any]:
    """USD per million checkouts, per design (Standard/Express) x architecture (arm64/x86_64)."""
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
    sfn_log_gb = counts["history_events_per_checkout"] * counts["sfn_log_bytes_per_event"] / 1e9
    calls = counts["api_calls_per_checkout"]
    s3_put = sum(v for k, v in calls.items() if k.startswith("s3:Put"))
    s3_get = sum(v for k, v in calls.items() if k.startswith("s3:Get"))
    common = {
        "dynamodb": counts["wru_per_checkout"] * p["dynamodb"]["on_demand_write_request_units_per_million"] / 1e6
        + counts["rru_per_checkout"] * p["dynamodb"]["on_demand_read_request_units_per_million"] / 1e6,
        "api_gateway_rest": 1 * p["apigateway"]["rest_requests_per_million"] / 1e6,
        "lambda_requests": lambda_requests * p["lambda"]["requests_per_million"] / 1e6,
        "s3": s3_put * p["s3"]["put_per_1000"] / 1e3 + s3_get * p["s3"]["get_per_1000"] / 1e3,
        "logs_lambda": lambda_log_gb * p["cloudwatch_logs"]["ingestion_per_gb"],
        "xray": XRAY_SAMPLED * p["xray"]["traces_recorded_per_million"] / 1e6,
    }
    # Express: one request + duration of the execution (critical path: one order's
    # execute -> wallet -> ledger, the orders run in parallel in the Map, then finalize)
    critical_ms = sum(durations.get(fn, 0) for fn in ("executor", "wallet", "ledger", "payment")) + 4 * SFN_TASK_OVERHEAD_MS
    express_s = math.ceil(critical_ms / 100) / 10
    designs = {
        "standard": {
            "stepfunctions": counts["transitions_per_checkout"] * p["stepfunctions"]["standard_per_1000_transitions"] / 1e3,
            "logs_stepfunctions": sfn_log_gb * p["cloudwatch_logs"]["vended_logs_ingestion_per_gb"],
        },
        "express": {
            "stepfunctions": p["stepfunctions"]["express_requests_per_million"] / 1e6
            + express_s * 0.0625 * p["stepfunctions"]["express_gb_second"],
            "logs_stepfunctions": sfn_log_gb * p["cloudwatch_logs"]["vended_logs_ingestion_per_gb"],
        },
    }
    out: dict[str, Any] = {"modelled_billed_ms": durations, "lambda_gb_s_per_checkout": gb_s, "express_execution_s": express_s}
    for design, parts in designs.items():
        for arch, key in (("arm64", "arm64_gb_second"), ("x86_64", "x86_64_gb_second")):
            items = {**common, **parts, "lambda_duration": gb_s * p["lambda"][key]}
            out[f"{design}/{arch}"] = {"total_per_million": sum(items.values()) * 1e6, "items_per_million": {k: v * 1e6 for k, v in items.items()}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Counts per checkout in the local runtime, priced per million")
    parser.add_argument("--checkouts", type=int, default=10)
    args = parser.parse_args()
    counts = count(args.checkouts)
    print(json.dumps({"counts": counts, "cost": price(counts)}, indent=2, default=str))


if __name__ == "__main__":
    main()
