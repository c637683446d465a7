"""``payments preflight --stage NAME``: can this account and this stage carry the stage's target?

Before a known peak (Cyber Monday) an operator compares, line by line, what the stage's target
checkouts/s needs (``payments.ops.capacity``, the model the stack is sized from) with what the
account and the deployed stage have:

* the account's quotas, read from Service Quotas (applied value, else AWS's default): Lambda
  concurrent executions, API Gateway's throttle rate, Step Functions Express starts, DynamoDB's
  table-level read and write throughput; and API Gateway's account throttle as it applies now
  (``GetAccount``), burst included;
* the stage as deployed: its API throttle (``GetStage``), every checkout table's warm throughput
  (``DescribeTable``), the checkout functions' reserved concurrency (``GetFunctionConcurrency``).

Each line says needed, available and, when short, what to request: the Service Quotas quota code
and the value to ask for, or the stage setting to change. The target is the stack's output
``TargetCheckoutsPerSecond`` (CloudFormation), or ``--target``. Exit 0: every line is met; 1: at least
one is not; 2: something could not be read (one line says which call and why).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payments.ops import capacity, clikit

#: the checkout's functions, by registry name (``payments-<stage>-<name>``)
CHECKOUT_FUNCTIONS = ("payment", "executor", "wallet", "ledger")
#: the checkout's tables, by ``Settings`` field (``payments-<stage>-<short name>``)
CHECKOUT_TABLES = ("payments_table", "ledger_table", "wallets_table", "idempotency_table")


@dataclass(frozen=True)
class ServiceQuota:
    """A quota in Service Quotas: found by its code, else (a code not known here) by words of its name."""

    service: str
    code: str | None
    name_words: tuple[str, ...]
    default: float  # the model's value when Service Quotas lists nothing


LAMBDA_CONCURRENCY = ServiceQuota("lambda", "L-B99A9384", ("concurrent executions",), 1_000)
API_THROTTLE_RATE = ServiceQuota("apigateway", "L-8A5B8E43", ("throttle rate",), 10_000)
EXPRESS_STARTS = ServiceQuota("states", None, ("express", "startexecution", "refill"), 6_000)
TABLE_WRITE = ServiceQuota("dynamodb", "L-AB614373", ("table-level write throughput",), 40_000)
TABLE_READ = ServiceQuota("dynamodb", "L-CF0CBE56", ("table-level read throughput",), 40_000)


@dataclass(frozen=True)
class Line:
    check: str
    needed: int
    available: int | None  # None: not set (no limit of its own)
    unit: str
    request: str  # what to do when short; "" when met

    @property
    def met(self) -> bool:
        return self.available is None or self.available >= self.needed


class Refused(Exception):
    """An AWS call failed: which call, and AWS's error code."""


def _call(client: Any, operation: str, **kwargs: Any) -> Any:
    from botocore.exceptions import ClientError

    try:
        return getattr(client, operation)(**kwargs)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        service = client.meta.service_model.service_name
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
            raise clikit.CliError(
                f"AWS refused {service} {operation} ({code})",
                "the operator's role needs read access to Service Quotas, API Gateway, Lambda, DynamoDB and CloudFormation",
            ) from None
        raise Refused(f"{service} {operation}: {code}") from err


def _not_found(err: Refused) -> bool:
    return any(code in str(err) for code in ("NoSuchResourceException", "ResourceNotFoundException", "NotFound"))


class Account:
    """The AWS calls preflight makes, through one boto3 client per service (stubbed in tests)."""

    def __init__(self, clients: Callable[[str], Any]) -> None:
        self._clients = clients
        self._listed: dict[str, list[dict[str, Any]]] = {}

    def client(self, service: str) -> Any:
        return self._clients(service)

    def quota(self, quota: ServiceQuota) -> tuple[float, str]:
        """(value, quota code): the applied value, else AWS's default, else the model's (code '-')."""
        quotas = self.client("service-quotas")
        if quota.code is not None:
            for operation in ("get_service_quota", "get_aws_default_service_quota"):
                try:
                    found = _call(quotas, operation, ServiceCode=quota.service, QuotaCode=quota.code)
                    return float(found["Quota"]["Value"]), quota.code
                except Refused as err:
                    if not _not_found(err):
                        raise
            return quota.default, quota.code
        if quota.service not in self._listed:
            listed: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                page = _call(
                    quotas, "list_service_quotas", ServiceCode=quota.service, **({"NextToken": token} if token else {})
                )
                listed.extend(page.get("Quotas", []))
                token = page.get("NextToken")
                if not token:
                    break
            self._listed[quota.service] = listed
        for found in self._listed[quota.service]:
            name = str(found.get("QuotaName", "")).lower().replace(" ", "")
            if all(word.replace(" ", "") in name for word in quota.name_words):
                return float(found["Value"]), str(found["QuotaCode"])
        return quota.default, "-"


def _request(code: str, service: str, value: float, unit: str) -> str:
    if code == "-":
        return f"ask AWS Support ({service}) for {value:,.0f} {unit}: not listed in Service Quotas here"
    return f"Service Quotas {service} {code}: request {value:,.0f}"


def _round_request(value: float) -> int:
    """A quota request rounded up to two significant digits (11,000 rather than 10,463)."""
    if value <= 0:
        return 0
    step = 10 ** max(0, int(math.log10(value)) - 1)
    return int(math.ceil(value / step) * step)


def target_of(account: Account, stage: str) -> float:
    """The stack's output ``TargetCheckoutsPerSecond``."""
    try:
        stacks = _call(account.client("cloudformation"), "describe_stacks", StackName=f"Payments-{stage}")["Stacks"]
    except Refused as err:
        raise clikit.CliError(
            f"stage {stage!r} is not deployed here ({err})", "check --stage and --region, or give --target"
        ) from None
    for output in stacks[0].get("Outputs", []) if stacks else []:
        if output.get("OutputKey") == "TargetCheckoutsPerSecond":
            return float(output["OutputValue"])
    raise clikit.CliError(
        f"the stack Payments-{stage} has no output TargetCheckoutsPerSecond",
        "set targetCheckoutsPerSecond for the stage and deploy it, or give --target",
    )


def check(account: Account, stage: str, target: float) -> list[Line]:
    """Every line of the preflight for ``target`` checkouts/s of the stage."""
    lines: list[Line] = []

    def quota_line(label: str, quota: ServiceQuota, needed: float, unit: str) -> None:
        value, code = account.quota(quota)
        need = math.ceil(needed)
        lines.append(
            Line(
                label,
                need,
                int(value),
                unit,
                "" if value >= need else _request(code, quota.service, _round_request(need), unit),
            )
        )

    quota_line(
        "Lambda: concurrent executions (account)",
        LAMBDA_CONCURRENCY,
        capacity.concurrency_needed(target),
        "executions",
    )
    api = capacity.api_limits(target)
    quota_line("API Gateway: throttle rate (account)", API_THROTTLE_RATE, api.rate, "requests/s")
    throttle = _call(account.client("apigateway"), "get_account").get("throttleSettings", {})
    burst = throttle.get("burstLimit")
    lines.append(
        Line(
            "API Gateway: burst (account, as applied)",
            api.burst,
            int(burst) if burst is not None else None,
            "requests",
            ""
            if burst is None or burst >= api.burst
            else f"ask AWS Support (apigateway) for an account burst of {api.burst:,}",
        )
    )
    quota_line(
        "Step Functions: Express StartExecution rate",
        EXPRESS_STARTS,
        target * capacity.HEADROOM,
        "starts/s",
    )
    busiest_write = max(
        target * capacity.TABLE_USE[t].write(capacity.ORDERS_PER_CHECKOUT) * capacity.HEADROOM for t in CHECKOUT_TABLES
    )
    busiest_read = max(
        target * capacity.TABLE_USE[t].read(capacity.ORDERS_PER_CHECKOUT) * capacity.HEADROOM for t in CHECKOUT_TABLES
    )
    quota_line("DynamoDB: table-level write throughput (account)", TABLE_WRITE, busiest_write, "WRU/s")
    quota_line("DynamoDB: table-level read throughput (account)", TABLE_READ, busiest_read, "RRU/s")
    lines.extend(_stage_throttle(account, stage, api))
    lines.extend(_warm_throughput(account, stage, target))
    lines.extend(_reserved_concurrency(account, stage, target))
    return lines


def _stage_throttle(account: Account, stage: str, needed: capacity.ApiLimits) -> list[Line]:
    client = account.client("apigateway")
    name = f"payments-{stage}-checkout-api"
    apis = _call(client, "get_rest_apis", limit=500).get("items", [])
    api_id = next((api["id"] for api in apis if api.get("name") == name), None)
    if api_id is None:
        raise clikit.CliError(f"no REST API {name} here", "check --stage and --region")
    settings = _call(client, "get_stage", restApiId=api_id, stageName=stage).get("methodSettings", {}).get("*/*", {})
    fix = f"redeploy the stage: its throttle comes from targetCheckoutsPerSecond (needs apiRateLimit {needed.rate:,}, apiBurstLimit {needed.burst:,})"
    rate, burst = settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
    return [
        Line(
            f"API stage {stage}: rate limit",
            needed.rate,
            None if rate is None else int(rate),
            "requests/s",
            "" if rate is None or rate >= needed.rate else fix,
        ),
        Line(
            f"API stage {stage}: burst limit",
            needed.burst,
            None if burst is None else int(burst),
            "requests",
            "" if burst is None or burst >= needed.burst else fix,
        ),
    ]


def _warm_throughput(account: Account, stage: str, target: float) -> list[Line]:
    client = account.client("dynamodb")
    lines = []
    for setting in CHECKOUT_TABLES:
        table = f"payments-{stage}-{setting.removesuffix('_table').replace('_', '-')}"
        warm = _call(client, "describe_table", TableName=table)["Table"].get("WarmThroughput", {})
        needed = capacity.warm_throughput(setting, target)
        for kind, need, have in (
            ("write", needed.write_units_per_second, warm.get("WriteUnitsPerSecond")),
            ("read", needed.read_units_per_second, warm.get("ReadUnitsPerSecond")),
        ):
            available = int(have) if have is not None else 0
            lines.append(
                Line(
                    f"DynamoDB {table}: warm {kind} throughput",
                    need,
                    available,
                    "units/s",
                    ""
                    if available >= need
                    else f"redeploy the stage with targetCheckoutsPerSecond {target:,g} (or UpdateTable WarmThroughput "
                    f"{kind.capitalize()}UnitsPerSecond={need:,})",
                )
            )
    return lines


def _reserved_concurrency(account: Account, stage: str, target: float) -> list[Line]:
    client = account.client("lambda")
    needed = capacity.function_concurrency_needed(target)
    lines = []
    for name in CHECKOUT_FUNCTIONS:
        function = f"payments-{stage}-{name}"
        reserved = _call(client, "get_function_concurrency", FunctionName=function).get("ReservedConcurrentExecutions")
        lines.append(
            Line(
                f"Lambda {function}: reserved concurrency",
                needed[name],
                None if reserved is None else int(reserved),
                "executions",
                ""
                if reserved is None or reserved >= needed[name]
                else f"raise the function's reserved concurrency to {needed[name]:,} or remove it",
            )
        )
    return lines


def _boto_clients(region: str | None) -> Callable[[str], Any]:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30)
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]
        return cache[service]

    return client


def _number(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _preflight(args: argparse.Namespace, clients: Callable[[str], Any] | None = None) -> int:
    account = Account(clients or _boto_clients(args.region))
    try:
        target = args.target if args.target is not None else target_of(account, args.stage)
        lines = check(account, args.stage, target)
    except Refused as err:
        raise clikit.CliError(f"AWS answered an error ({err})", "check --stage and --region") from None
    short = [line for line in lines if not line.met]
    verdict = (
        f"stage {args.stage} can carry {target:,g} checkouts/s"
        if not short
        else f"stage {args.stage} cannot carry {target:,g} checkouts/s: {len(short)} line(s) short"
    )
    document = {
        "stage": args.stage,
        "target_checkouts_per_second": target,
        "ok": not short,
        "lines": [
            {
                "check": line.check,
                "needed": line.needed,
                "available": line.available,
                "unit": line.unit,
                "met": line.met,
                "request": line.request or None,
            }
            for line in lines
        ],
        "verdict": verdict,
    }
    table = clikit.Table(
        ("RESULT", "CHECK", "NEEDED", "AVAILABLE", "UNIT", "REQUEST"),
        [
            (
                "OK" if line.met else "SHORT",
                line.check,
                f"{line.needed:,}",
                "no limit" if line.available is None else f"{line.available:,}",
                line.unit,
                line.request,
            )
            for line in lines
        ],
        [verdict],
        right=("NEEDED", "AVAILABLE"),
    )
    clikit.emit(args, document, table)
    return clikit.OK if not short else clikit.FINDINGS


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    preflight = commands.add_parser(
        "preflight",
        help="compare the account's quotas and the stage's settings with what its target checkouts/s needs (exit 1 when short)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    preflight.add_argument("--stage", required=True, help="the stage's name (the stack Payments-<stage>)")
    preflight.add_argument("--region", default=None, help="the AWS region (default: the environment's)")
    preflight.add_argument(
        "--target",
        type=_number,
        default=None,
        metavar="CHECKOUTS_PER_S",
        help="the checkouts/s to check for (default: the stack's output TargetCheckoutsPerSecond)",
    )
    clikit.add_output_option(preflight)
    preflight.set_defaults(func=_preflight)
