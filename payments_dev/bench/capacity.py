"""Capacity model: sustainable checkouts/s per region from the quotas on the checkout path.

    .venv/bin/python -m payments_dev.bench.capacity            # the tables of docs/capacity.md, printed

The model (quotas, per-checkout use, sustainable rate, raises) is ``payments.ops.capacity``, installed
with the operator's CLI (``payments preflight``) and read by the stack's synthesis (warm throughput, API
throttles); this module prints its tables, and measures wallet shards with the real ``shard_of``.
"""

from __future__ import annotations

import argparse

# the model itself is installed with the operator's CLI (payments preflight) and read by the stack's
# synthesis: this module only prints its tables (and measures the wallet shards with the dev tooling)
from payments.ops.capacity import (
    DURATION_MS,
    GET_POLLS,
    PARTITION_WCU,
    PROD_API_RATE_LIMIT,
    PROD_LEDGER_TOTAL_SHARDS,
    PROD_WALLET_SHARDS,
    PSP_LATENCY_MS,
    QUOTAS,
    RECOVERY_SHARDS,
    TRANSACTIONAL,
    Quota,
    idempotency_wru,
    lambda_concurrency_seconds,
    ledger_wru,
    payments_wru,
    raises_for,
    ramp_seconds,
    shards_needed,
    sustainable,
    wallets_wru,
)

__all__ = [
    "DURATION_MS",
    "GET_POLLS",
    "PARTITION_WCU",
    "PROD_API_RATE_LIMIT",
    "PROD_LEDGER_TOTAL_SHARDS",
    "PROD_WALLET_SHARDS",
    "PSP_LATENCY_MS",
    "QUOTAS",
    "RECOVERY_SHARDS",
    "TRANSACTIONAL",
    "Quota",
    "idempotency_wru",
    "lambda_concurrency_seconds",
    "ledger_wru",
    "main",
    "payments_wru",
    "raises_for",
    "ramp_seconds",
    "shards_needed",
    "sustainable",
    "tables",
    "wallet_shards_for",
    "wallets_wru",
]

#: what a target rate cannot get from a quota raise: per-seller hot items (see wallet_shards_for)
PSP_NOTE = (
    "The PSP's rate limit is contractual and not public (the simulated PSP has none): "
    "the tables show the authorisations/s the PSP must accept (n per checkout)."
)


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
