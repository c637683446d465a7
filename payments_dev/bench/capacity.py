"""Capacity model: sustainable checkouts/s per region from the quotas on the checkout path.

    .venv/bin/python -m payments_dev.bench.capacity            # the tables of docs/capacity.md, printed

Every quota the checkout path consumes is listed in :data:`QUOTAS` with its default value, whether
it can be raised, and its source (an AWS documentation page; "recalled" where the value was not
confirmed against the page when this was written). Each quota has a *use per checkout* as a
function of the number of orders ``n``; the checkouts/s a quota sustains is its value divided by
that use, and the region sustains the smallest of them: the binding quota. For a target rate, the
model lists every quota that must be raised (adjustable ones: a Service Quotas request;
per-partition ones: more shards, a deployment setting).

The use per checkout comes from the cost bench's counts (payments_dev/bench/cost.py, 3-order checkouts on the
happy path, per-table figures of docs/capacity.md) generalised to ``n`` orders; Lambda concurrency
uses the cost bench's modelled billed durations plus an assumed PSP latency. Retries, GET polls
beyond the one assumed, and the nightly reconciliation are not included: keep a margin (the
tables show the ceiling, not a target to run at).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass

#: modelled billed ms per invocation (payments_dev/bench/cost.py, as in docs/benchmarks.md); the PSP's own
#: answer time is added to the executor's (a simulator answers in microseconds, a real PSP does not)
DURATION_MS = {"payment": 90.0, "finalize": 60.0, "executor": 175.0, "wallet": 65.0, "ledger": 70.0}
PSP_LATENCY_MS = 300.0  # assumption: a card authorisation round trip
GET_POLLS = 1  # assumption: the client reads the payment once after the 202

# the deployment settings that shard the hot items (cdk.json, prod)
PROD_WALLET_SHARDS = 16
PROD_LEDGER_TOTAL_SHARDS = 16
RECOVERY_SHARDS = 16  # payments.kernel.config.Settings.recovery_shards
PROD_API_RATE_LIMIT = 500  # cdk.json prod apiRateLimit: the stage's own throttle

PARTITION_WCU = 1000
TRANSACTIONAL = 2  # a transactional write of an item < 1 KB costs 2 WCU


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


def lambda_concurrency_seconds(n: int) -> float:
    """Concurrency-seconds of one checkout: every invocation's duration (s)."""
    d = DURATION_MS
    per_order = d["executor"] + PSP_LATENCY_MS + d["wallet"] + d["ledger"]
    return (d["payment"] * (1 + GET_POLLS) + d["finalize"] + n * per_order) / 1000


def payments_wru(n: int) -> float:
    # create: payment + n orders, transactional (2 each); the start marker 1; per order the executor's
    # EXECUTING and SUCCESS updates (1 each) and the wallet and ledger order flags inside their
    # transactions (2 each); finalize 1; the recovery index: in at create, out when done (2)
    return TRANSACTIONAL * (1 + n) + 1 + n * (2 + 2 * TRANSACTIONAL) + 1 + 2


def ledger_wru(n: int) -> float:
    # per order: the transaction item, the trial-balance totals shard, the seller's account totals
    # shard (transactional, 2 each) and the by_settlement_day index entry (1)
    return n * (3 * TRANSACTIONAL + 1)


def wallets_wru(n: int) -> float:
    return n * 2 * TRANSACTIONAL  # per order: the credit marker and the balance shard


QUOTAS: tuple[Quota, ...] = (
    Quota(
        "API Gateway: throttle per account and region",
        10_000,
        "requests/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
        lambda n: 1 + GET_POLLS,
        "burst bucket 5,000; POST + the assumed GET poll",
    ),
    Quota(
        "API Gateway: the stage's throttle (cdk.json prod apiRateLimit)",
        PROD_API_RATE_LIMIT,
        "requests/s",
        "setting: apiRateLimit",
        "cdk.json (this repository)",
        lambda n: 1 + GET_POLLS,
        "our own guard rail: raise it with the account quota",
        ours=True,
    ),
    Quota(
        "Lambda: concurrent executions per account and region",
        1_000,
        "concurrent executions",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html",
        lambda_concurrency_seconds,
        f"use = invocations x duration (modelled ms + {PSP_LATENCY_MS:.0f} ms PSP latency per charge)",
    ),
    Quota(
        "Step Functions Standard: StartExecution refill (us-east-1)",
        300,
        "starts/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
        lambda n: 1,
        "token bucket 1,300; value recalled, re-check on the page",
    ),
    Quota(
        "Step Functions Standard: state transitions refill (us-east-1)",
        5_000,
        "transitions/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
        lambda n: 2 + 5 * n,
        "2 + 5 per order (17 for 3 orders, counted by the cost bench); bucket 5,000; value recalled",
    ),
    Quota(
        "Step Functions Express: StartExecution refill",
        6_000,
        "starts/s",
        "yes (Service Quotas)",
        "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html",
        lambda n: 1,
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
        lambda n: 2,
        f"each checkout enters and leaves one of {RECOVERY_SHARDS} shards",
    ),
)

#: what a target rate cannot get from a quota raise: per-seller hot items (see wallet_shards_for)
PSP_NOTE = (
    "The PSP's rate limit is contractual and not public (the simulated PSP has none): "
    "the tables show the authorisations/s the PSP must accept (n per checkout)."
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
    concurrency = target * n * (DURATION_MS["executor"] + PSP_LATENCY_MS) / 1000
    return concurrency / 1000 * 10


def shards_needed(per_s: float, units_per_write: int = TRANSACTIONAL, imbalance: float = 1.1) -> int:
    """Shards of one hot key (1,000 WCU/s each) for ``per_s`` transactional writes/s, with the hash's imbalance."""
    return math.ceil(per_s * units_per_write * imbalance / PARTITION_WCU)


def wallet_shards_for(credits_per_s: float) -> dict[str, object]:
    """The smallest wallet shard count whose hottest shard stays under one partition's 1,000 WCU/s,
    measured with the real shard_of over 10,000 random order ids (payments_dev/bench/hot_seller.py)."""
    from payments_dev.bench.hot_seller import spread

    for row in spread(10_000, max_shards=64):
        if row["ceiling_credits_per_s"] >= credits_per_s:
            return {
                "shards": row["shards"],
                "ceiling_credits_per_s": row["ceiling_credits_per_s"],
                "max_over_mean": row["max_over_mean"],
            }
    raise ValueError(f"more than 64 shards needed for {credits_per_s} credits/s")


def tables(targets: tuple[float, ...] = (5_000, 20_000), orders: tuple[int, ...] = (1, 3, 10)) -> str:
    lines = ["### AWS default quotas: sustainable checkouts/s per region", ""]
    lines.append(
        "| orders per checkout | Express: checkouts/s | binds first | Standard: checkouts/s | binds first | as cdk.json prod is set (Express) |"
    )
    lines.append("|---|---|---|---|---|---|")
    for n in orders:
        e, eq, _ = sustainable(n, express=True)
        s, sq, _ = sustainable(n, express=False)
        c, cq, _ = sustainable(n, express=True, include_ours=True)
        lines.append(f"| {n} | {e:,.0f} | {eq.name} | {s:,.0f} | {sq.name} | {c:,.0f} ({cq.name}) |")
    lines += ["", "### Every quota's ceiling (Express), checkouts/s", ""]
    lines.append("| quota | default | adjustable | use per checkout (n=1 / 3 / 10) | n=1 | n=3 | n=10 | source |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for quota in QUOTAS:
        uses = " / ".join(f"{quota.use(n):g}" for n in orders)
        ceilings = " | ".join(f"{quota.checkouts_per_s(n):,.0f}" for n in orders)
        lines.append(
            f"| {quota.name} | {quota.default:,.0f} {quota.unit} | {quota.adjustable} | {uses} {quota.unit.split('/')[0]} | {ceilings} | {quota.source}{'; ' + quota.note if quota.note else ''} |"
        )
    for target in targets:
        lines += ["", f"### Raises for {target:,.0f} checkouts/s (Express)", ""]
        lines.append("| orders per checkout | quota or setting | needed | default |")
        lines.append("|---|---|---|---|")
        for n in orders:
            for quota, value in raises_for(target, n):
                lines.append(f"| {n} | {quota.name} | {value} | {quota.default:,.0f} {quota.unit} |")
            lines.append(f"| {n} | PSP authorisations (contract) | {target * n:,.0f}/s | - |")
            lines.append(
                f"| {n} | Lambda scaling rate: 1,000 environments per 10 s per function (not adjustable) | "
                f"{ramp_seconds(target, n):,.0f} s for the executor to scale from zero: ramp the traffic or provision concurrency | - |"
            )
    wallet = wallet_shards_for(10_000)
    lines += [
        "",
        "### One seller at 10,000 credits/s",
        "",
        f"* wallet shards (`walletShards`): **{wallet['shards']}** (hottest shard at {wallet['max_over_mean']:.3f}x the mean, "
        f"ceiling {wallet['ceiling_credits_per_s']:,.0f} credits/s with the real `shard_of`; prod has {PROD_WALLET_SHARDS}: "
        f"{wallet_shards_ceiling(PROD_WALLET_SHARDS):,.0f} credits/s)",
        f"* the seller's ledger account totals share `ledgerTotalShards`: the same count is needed there "
        f"({shards_needed(10_000)} by the formula with a 10% imbalance)",
        "",
        PSP_NOTE,
    ]
    return "\n".join(lines)


def wallet_shards_ceiling(shards: int) -> float:
    from payments_dev.bench.hot_seller import spread

    return float(spread(10_000, max_shards=shards)[shards - 1]["ceiling_credits_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Capacity model: the tables of docs/capacity.md")
    parser.add_argument("--quick", action="store_true", help="the same tables (the model is instant)")
    parser.parse_args(argv)
    print(tables())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
