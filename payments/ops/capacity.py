"""Capacity model: what one checkout uses of every quota, and what a target rate needs.

One model for the stack's synthesis (warm throughput, API throttles: ``infra``), the operator's
``payments preflight`` and the benchmark's tables (``python -m payments_dev.bench.capacity``, the
tables of docs/capacity.md). Pure arithmetic: no AWS call, no dev dependency.

Every quota the checkout path consumes is listed in :data:`QUOTAS` with its default value, whether
it can be raised, and its source (an AWS documentation page; "recalled" where the value was not
confirmed against the page when this was written). Each quota has a *use per checkout* as a
function of the number of orders ``n``; the checkouts/s a quota sustains is its value divided by
that use, and the region sustains the smallest of them: the binding quota. For a target rate,
:func:`raises_for` lists every quota that must be raised (adjustable ones: a Service Quotas request;
per-partition ones: more shards, a deployment setting).

The use per checkout is the cost bench's: :mod:`payments.ops.measured` reads the checked-in counts of
1- and 3-order checkouts on the happy path (API requests with the assumed GET poll, Lambda invocations and
their modelled durations with the executor's wait on the PSP, Step Functions starts and transitions, every
table's read and write units) and a figure for ``n`` orders is the line through the two; the cost model
prices the same record (docs/benchmarks.md). Retries, GET polls beyond the assumed ones, and the nightly
reconciliation are not included: keep a margin (:data:`HEADROOM` for what the stack is sized to).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from payments.ops import measured

#: modelled billed ms per invocation of each kind (``payment POST``, ``payment GET``, ``payment finalize``,
#: ``executor``, ``wallet``, ``ledger``): the cost bench's CPU and AWS calls, the executor's with the PSP's answer
#: time (a simulator answers in microseconds, a real PSP does not)
DURATION_MS = {kind: measured.billed_ms(kind) for kind in measured.kinds()}
PSP_LATENCY_MS = measured.assumption("psp_latency_ms")  # assumption: a card authorisation round trip
GET_POLLS = int(measured.assumption("get_polls"))  # assumption: the client reads the payment once after the 202
#: orders per checkout the stage is sized for (the model's reference checkout)
ORDERS_PER_CHECKOUT = 3
#: what the stack is sized to above the target: retries, a second GET poll, an uneven second
HEADROOM = 1.25
#: API Gateway's burst bucket of the stage, in seconds of its rate limit
BURST_SECONDS = 2

# the deployment settings that shard the hot items (cdk.json, prod)
PROD_WALLET_SHARDS = 16
PROD_LEDGER_TOTAL_SHARDS = 16
RECOVERY_SHARDS = 64  # payments.kernel.config.Settings.recovery_shards
#: cdk.json prod ``targetCheckoutsPerSecond``: under what the model sustains at AWS's default quotas, with room for
#: the spread of the measured durations between bench runs (an infrastructure test holds it at most the model's
#: ceiling and within 20 % of it, and equal to cdk.json)
PROD_TARGET_CHECKOUTS_PER_S = 450

PARTITION_WCU = 1000
TRANSACTIONAL = 2  # a transactional write of an item < 1 KB costs 2 WCU

#: what an on-demand table (and each of its indexes) serves from its creation: DynamoDB's default warm
#: throughput (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html)
DEFAULT_WARM_READ = 12_000
DEFAULT_WARM_WRITE = 4_000


@dataclass(frozen=True)
class Quota:
    name: str
    default: float
    unit: str
    adjustable: str  # "yes (Service Quotas)", "no (hard)", "setting: <key>"
    source: str
    use: Callable[[int], float]  # consumption of one checkout of n orders, in `unit`
    note: str = ""
    ours: bool = False  # a setting of this repository, not an AWS quota

    @property
    def sharded(self) -> bool:
        """A per-partition limit, raised by sharding the hot key (a deployment setting), not by AWS."""
        return self.name.startswith("DynamoDB: per partition")

    def checkouts_per_s(self, n: int, value: float | None = None) -> float:
        return (self.default if value is None else value) / self.use(n)


def api_requests(n: int = ORDERS_PER_CHECKOUT) -> float:
    """Requests to the API per checkout: the POST and the assumed GET polls (measured: independent of n)."""
    return measured.at(n, lambda c: sum(c["api_requests"].values()))


def invocations(n: int) -> dict[str, float]:
    """Lambda invocations of one checkout of ``n`` orders, per kind of invocation."""
    return {kind: measured.at(n, _invocations_of(kind)) for kind in DURATION_MS}


def _invocations_of(kind: str) -> Callable[[dict[str, Any]], float]:
    return lambda counts: float(counts["invocations"].get(kind, 0.0))


def lambda_invocations(n: int) -> float:
    return sum(invocations(n).values())


def lambda_concurrency_seconds(n: int) -> float:
    """Concurrency-seconds of one checkout: every invocation's duration (s), the executor's PSP wait included."""
    return sum(count * DURATION_MS[kind] for kind, count in invocations(n).items()) / 1000


def function_concurrency_seconds(n: int) -> dict[str, float]:
    """Concurrency-seconds of one checkout per deployed function (the payment function also finalizes and answers
    the GET polls)."""
    out: dict[str, float] = {}
    for kind, count in invocations(n).items():
        function = measured.kinds()[kind]["function"]
        out[function] = out.get(function, 0.0) + count * DURATION_MS[kind] / 1000
    return out


def stepfunctions(n: int, what: str) -> float:
    """Step Functions ``starts`` or ``transitions`` of one checkout of ``n`` orders."""
    return measured.at(n, lambda c: c["stepfunctions"][what])


def _units(table: str, unit: str) -> Callable[[int], float]:
    def use(n: int) -> float:
        return measured.at(n, lambda c: measured.table_units(c, table, unit))

    return use


#: write and read units of one checkout of ``n`` orders in each table (the bench's counts: transactional items
#: 2 units each, index writes of the deployed indexes included); docs/capacity.md section 5 says what each is for
payments_wru = _units("payments_table", "wru")
payments_rru = _units("payments_table", "rru")
ledger_wru = _units("ledger_table", "wru")
wallets_wru = _units("wallets_table", "wru")
idempotency_wru = _units("idempotency_table", "wru")
psp_wru = _units(measured.PSP_TABLE, "wru")  # the simulated PSP's own record (dev stages only)
psp_rru = _units(measured.PSP_TABLE, "rru")


def index_writes(table: str, index: str) -> Callable[[int], float]:
    """Write units of one checkout of ``n`` orders in one index (0 if no checkout writes it)."""
    name = f"{table} {index}"
    return lambda n: measured.at(n, lambda c: float(c["index_wru"].get(name, {}).get("wru", 0.0)))


@dataclass(frozen=True)
class TableUse:
    """What one checkout of ``n`` orders reads and writes in one table (indexes included in the writes)."""

    read: Callable[[int], float]
    write: Callable[[int], float]


def _nothing(n: int) -> float:
    return 0.0


def _table_use() -> dict[str, TableUse]:
    tables: set[str] = set()
    for n in measured.MEASURED_ORDERS:
        tables |= set(measured.checkout(n)["dynamodb"])
    return {table: TableUse(_units(table, "rru"), _units(table, "wru")) for table in sorted(tables)}


#: per table (its ``Settings`` field): a checkout's read and write units; a table absent here is not
#: on the checkout's path (reconciliation, payout accounts): it keeps DynamoDB's default warm throughput
TABLE_USE: dict[str, TableUse] = _table_use()


@dataclass(frozen=True)
class WarmThroughput:
    read_units_per_second: int
    write_units_per_second: int


def _round_up(value: float, step: int = 100) -> int:
    return int(math.ceil(value / step) * step)


def warm_throughput(setting: str, target: float, n: int = ORDERS_PER_CHECKOUT) -> WarmThroughput:
    """The warm throughput a table needs to serve ``target`` checkouts/s from its first second, with
    :data:`HEADROOM`, rounded up to 100 units and never below DynamoDB's own default (12,000 / 4,000)."""
    use = TABLE_USE.get(setting, TableUse(_nothing, _nothing))
    return WarmThroughput(
        read_units_per_second=max(DEFAULT_WARM_READ, _round_up(target * use.read(n) * HEADROOM)),
        write_units_per_second=max(DEFAULT_WARM_WRITE, _round_up(target * use.write(n) * HEADROOM)),
    )


@dataclass(frozen=True)
class ApiLimits:
    rate: int  # requests/s
    burst: int  # requests


def api_limits(target: float) -> ApiLimits:
    """The API stage's throttle for ``target`` checkouts/s: :func:`api_requests` per checkout (POST and a GET
    poll) x :data:`HEADROOM`, rounded up; the burst bucket holds :data:`BURST_SECONDS` of that rate."""
    rate = math.ceil(target * api_requests() * HEADROOM)
    return ApiLimits(rate=rate, burst=rate * BURST_SECONDS)


#: the prod stage's API throttle as synthesis computes it from its target (cdk.json prod sets no apiRateLimit)
PROD_API_RATE_LIMIT = api_limits(PROD_TARGET_CHECKOUTS_PER_S).rate


def concurrency_needed(target: float, n: int = ORDERS_PER_CHECKOUT) -> int:
    """Lambda concurrent executions the checkout path holds at ``target`` checkouts/s, with headroom."""
    return math.ceil(target * lambda_concurrency_seconds(n) * HEADROOM)


def function_concurrency_needed(target: float, n: int = ORDERS_PER_CHECKOUT) -> dict[str, int]:
    return {name: math.ceil(target * s * HEADROOM) for name, s in function_concurrency_seconds(n).items()}


QUOTAS: tuple[Quota, ...] = (
    Quota(
        "API Gateway: throttle per account and region",
        10_000,
        "requests/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
        api_requests,
        "burst bucket 5,000; POST + the assumed GET poll",
    ),
    Quota(
        "API Gateway: the stage's throttle (cdk.json prod apiRateLimit)",
        PROD_API_RATE_LIMIT,
        "requests/s",
        "setting: apiRateLimit",
        "cdk.json (this repository)",
        api_requests,
        "our own guard rail, computed from targetCheckoutsPerSecond (2 requests x 1.25 headroom): raise the target with the account quota",
        ours=True,
    ),
    Quota(
        "Lambda: concurrent executions per account and region",
        1_000,
        "concurrent executions",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html",
        lambda_concurrency_seconds,
        f"use = invocations x duration (the cost bench's modelled ms + {PSP_LATENCY_MS:.0f} ms PSP latency per PSP call)",
    ),
    Quota(
        "Step Functions Standard: StartExecution refill (us-east-1)",
        300,
        "starts/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
        lambda n: stepfunctions(n, "starts"),
        "token bucket 1,300; value recalled, re-check on the page",
    ),
    Quota(
        "Step Functions Standard: state transitions refill (us-east-1)",
        5_000,
        "transitions/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
        lambda n: stepfunctions(n, "transitions"),
        f"{stepfunctions(0, 'transitions'):g} + {stepfunctions(1, 'transitions') - stepfunctions(0, 'transitions'):g} "
        f"per order ({stepfunctions(3, 'transitions'):g} for 3 orders, counted by the cost bench); bucket 5,000; value recalled",
    ),
    Quota(
        "Step Functions Express: StartExecution refill",
        6_000,
        "starts/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
        lambda n: stepfunctions(n, "starts"),
        "Express has no state-transition quota; value recalled, re-check on the page",
    ),
    Quota(
        "DynamoDB: on-demand write throughput per table (payments)",
        40_000,
        "WRU/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html",
        payments_wru,
        "the busiest table; reads are far below 40,000 RRU/s",
    ),
    Quota(
        "DynamoDB: on-demand write throughput per table (ledger)",
        40_000,
        "WRU/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html",
        ledger_wru,
    ),
    Quota(
        "DynamoDB: on-demand write throughput per table (wallets)",
        40_000,
        "WRU/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html",
        wallets_wru,
    ),
    Quota(
        "DynamoDB: per partition, ledger trial-balance totals of one currency",
        PARTITION_WCU * PROD_LEDGER_TOTAL_SHARDS,
        "WCU/s",
        "setting: ledgerTotalShards (x 1,000 WCU/s)",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html",
        lambda n: n * TRANSACTIONAL,
        f"every order adds to one of {PROD_LEDGER_TOTAL_SHARDS} TOTALS shards of its currency (all orders USD here)",
    ),
    Quota(
        "DynamoDB: per partition, the recovery index (by_recovery_due)",
        PARTITION_WCU * RECOVERY_SHARDS,
        "WCU/s",
        "setting: recovery_shards (x 1,000 WCU/s)",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations",
        index_writes("payments_table", "by_recovery_due"),
        f"each checkout enters and leaves one of {RECOVERY_SHARDS} shards",
    ),
)


def sustainable(
    n: int, values: dict[str, float] | None = None, express: bool = True, include_ours: bool = False
) -> tuple[float, Quota, list[tuple[Quota, float]]]:
    """(checkouts/s, the binding quota, every quota with its ceiling) for n orders per checkout.
    ``include_ours``: also this repository's own settings (the prod stage's API throttle)."""
    rows = []
    for quota in QUOTAS:
        if ("Express" in quota.name and not express) or ("Standard" in quota.name and express):
            continue
        if quota.ours and not include_ours:
            continue
        rows.append((quota, quota.checkouts_per_s(n, (values or {}).get(quota.name))))
    binding = min(rows, key=lambda r: r[1])
    return binding[1], binding[0], rows


def raises_for(target: float, n: int, express: bool = True) -> list[tuple[Quota, str]]:
    """Every quota below ``target`` checkouts/s of n orders, with what it needs: a quota value (rounded
    up), or for a per-partition limit the shard count (10% hash imbalance included)."""
    _, _, rows = sustainable(n, express=express, include_ours=True)
    needed = []
    for quota, ceiling in rows:
        if ceiling < target:
            value = target * quota.use(n)
            if quota.sharded:
                needed.append((quota, f"{math.ceil(value * 1.1 / PARTITION_WCU)} shards ({value:,.0f} WCU/s)"))
                continue
            step = 10 ** max(0, int(math.log10(value)) - 1)
            needed.append((quota, f"{math.ceil(value / step) * step:,.0f} {quota.unit}"))
    return needed


def ramp_seconds(target: float, n: int) -> float:
    """Seconds for the busiest function (the executor) to scale from zero to ``target`` checkouts/s
    at Lambda's 1,000 new execution environments per 10 s per function."""
    concurrency = target * invocations(n)["executor"] * DURATION_MS["executor"] / 1000
    return concurrency / 1000 * 10


def shards_needed(per_s: float, units_per_write: int = TRANSACTIONAL, imbalance: float = 1.1) -> int:
    """Shards of one hot key (1,000 WCU/s each) for ``per_s`` transactional writes/s, with the hash's imbalance."""
    return math.ceil(per_s * units_per_write * imbalance / PARTITION_WCU)


# --- index keys ----------------------------------------------------------------------------------
#: the rate every index key is checked at (docs/capacity.md, "Index keys"): a Cyber Monday peak
PEAK_CHECKOUTS_PER_S = 20_000


@dataclass(frozen=True)
class IndexKey:
    """One global secondary index's partition key: how fast its busiest value is written at a checkout rate.

    ``writes(n)``: index writes of one checkout of ``n`` orders (an entry in, an entry out: one write each;
    0 for an index no checkout writes, such as one written by a nightly job); ``values``: the key values those
    writes spread over uniformly (shards; 1 for a key such as a day); ``units``: WCU per index write."""

    table: str  # Settings field
    index: str
    key: str  # the key's form, e.g. ``U#<shard>``
    writes: Callable[[int], float]
    values: int = 1
    units: int = 1
    #: the most checkouts/s a stage that has this index can be sized for (None: any stage)
    deployed_up_to: float | None = None
    #: False: the index exists on the local runtime and in tests only (``payments.kernel.tables.Index.deployed``)
    deployed: bool = True
    note: str = ""

    def peak_wcu_per_key(self, target: float = PEAK_CHECKOUTS_PER_S, n: int = ORDERS_PER_CHECKOUT) -> float:
        """WCU/s of the busiest key value at ``target`` checkouts/s (at most :attr:`deployed_up_to`): uniform
        hashing over ``values`` shards with :data:`SHARD_IMBALANCE`."""
        rate = target if self.deployed_up_to is None else min(target, self.deployed_up_to)
        spread = SHARD_IMBALANCE if self.values > 1 else 1.0
        return rate * self.writes(n) * self.units * spread / self.values


#: the busiest shard of a hashed key takes this much more than the mean (as :func:`shards_needed`)
SHARD_IMBALANCE = 1.1
#: the simulated PSP (a development stand-in: a production stage refuses it) writes every charge of a day to one
#: key of its ``by_charge_day`` index: synthesis refuses a simulated-PSP stage sized above this (infra/stage.py)
SIMULATOR_MAX_CHECKOUTS_PER_S = math.floor(PARTITION_WCU / (ORDERS_PER_CHECKOUT * HEADROOM))

#: every global secondary index of every table (payments.kernel.tables.TABLES): a unit test holds the two equal
INDEX_KEYS: tuple[IndexKey, ...] = (
    IndexKey(
        "ledger_table",
        "by_settlement_day",
        "settlement_day = <psp>#<day>",
        index_writes("ledger_table", "by_settlement_day"),
        deployed=False,
        note="every charge of a day on one key: not deployed; reconciliation reads the ledger's copy in S3",
    ),
    IndexKey(
        "ledger_table",
        "by_modification_day",
        "modification_settlement_day = <psp>#<day>",
        lambda n: 0.0,
        deployed=False,
        note="a day's refunds and disputes on one key: not deployed, for the same reason",
    ),
    IndexKey(
        "payments_table",
        "by_recovery_due",
        "unfinished = U#<shard>",
        index_writes("payments_table", "by_recovery_due"),
        values=RECOVERY_SHARDS,
        note="each checkout's payment enters one shard when accepted and leaves when finished (keys only)",
    ),
    IndexKey(
        "psp_table",
        "by_charge_day",
        "charge_day = <day>",
        index_writes("psp_table", "by_charge_day"),
        deployed_up_to=SIMULATOR_MAX_CHECKOUTS_PER_S,
        note="the simulated PSP's record of each charge: only on a stage whose PSP is the simulator, which "
        "synthesis refuses to size above the key's limit",
    ),
    IndexKey(
        "psp_table",
        "by_modification_day",
        "modification_day = <day>",
        lambda n: 0.0,
        deployed_up_to=SIMULATOR_MAX_CHECKOUTS_PER_S,
        note="the simulated PSP's refunds and disputes: no checkout writes it",
    ),
    IndexKey(
        "reconciliation_table",
        "by_mismatch_day",
        "mismatch_day = <day>",
        lambda n: 0.0,
        note="no checkout writes it: the reconciliation of a settlement file writes its mismatches (one writer)",
    ),
    IndexKey(
        "wallets_table",
        "by_balance_shard",
        "balance_shard = B#<shard>",
        lambda n: 0.0,
        values=16,
        note="no checkout writes it: a seller's balance item enters it once, when the settlement of its first "
        "charge creates it (keys only, a key that never changes: the balance's later moves write no index entry)",
    ),
    IndexKey(
        "payouts_table",
        "by_pending",
        "pending_currency = <CCY>",
        lambda n: 0.0,
        note="no checkout writes it: the nightly payout run adds and settles its payouts (one writer)",
    ),
)


def index_key_peaks(target: float = PEAK_CHECKOUTS_PER_S, n: int = ORDERS_PER_CHECKOUT) -> list[tuple[IndexKey, float]]:
    """Every index key with its busiest value's WCU/s at ``target`` checkouts/s of ``n`` orders."""
    return [(key, key.peak_wcu_per_key(target, n)) for key in INDEX_KEYS]
