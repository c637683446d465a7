"""The benchmark suite: one table, printed and written to docs/benchmarks.md.

    .venv/bin/python -m payments_dev.bench.run            # default run, the 1M- and 10M-charge reconciliation included (about 30 minutes on 2 busy cores)
    .venv/bin/python -m payments_dev.bench.run --small    # a smaller run (about 3-4 minutes)
    .venv/bin/python -m payments_dev.bench.run --quick    # a tiny run of every section, writes no doc (the CI smoke; make bench-quick)
    .venv/bin/python -m payments_dev.bench.run --full     # larger runs of the other sections
    .venv/bin/python -m payments_dev.bench.run --only reconcile --reconcile-sizes 1000000   # one section, one size

Sections (each is also a script of its own in payments_dev/bench/): cold start (payments_dev.bench.cold_start),
warm overhead (payments_dev.bench.warm), counts and cost per million checkouts (payments_dev.bench.cost), hot seller
(payments_dev.bench.hot_seller), local throughput and profile (payments_dev.bench.throughput), the local runtime's
query index over moto's DynamoDB (payments_dev.bench.query_index), reconciliation
(payments_dev.bench.bench_reconcile: ours against pandas, polars and duckdb on identical files). Every figure is a
median of several runs;
every comparison is measured alternately in the same run. The raw figures go to
payments_dev/bench/out/results.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from typing import Any

from payments.ops import measured
from payments_dev.bench import capacity, cold_start, cost, hot_seller, pan_refusals, query_index, throughput, warm
from payments_dev.bench.common import OUT, ROOT, Results, log, machine, median, spread, table

SIZES = {"quick": dict(cold=1, warm=2, cost=1, verify=16, demo=4, demo_runs=1, rec=[(10_000, 1)], qi=[200], qi_runs=1),
         "small": dict(cold=2, warm=10, cost=3, verify=80, demo=40, demo_runs=1, rec=[(100_000, 2)], qi=[2_000], qi_runs=1),
         "default": dict(cold=5, warm=40, cost=10, verify=400, demo=100, demo_runs=2, rec=[(1_000_000, 3), (10_000_000, 1)], qi=[2_000, 10_000], qi_runs=2),
         "full": dict(cold=5, warm=40, cost=10, verify=400, demo=100, demo_runs=2, rec=[(1_000_000, 3), (10_000_000, 1)], qi=[2_000, 10_000], qi_runs=3)}  # fmt: skip


def section_cold(r: Results, repeats: int, quick: bool = False) -> None:
    log("cold start ...")
    data = cold_start.run(repeats, cold_start.FUNCTIONS[:1], lambda_python=False) if quick else cold_start.run(repeats)
    data["asset"] = cold_start.asset_size()
    r.raw["cold_start"] = data
    t = data["targets"]
    floor = t["floor/pyc"]
    layout = data.get("layout")
    where = (
        f"Python 3.13, Lambda layout ({layout['task']})" if layout else "this interpreter, venv (no Python 3.13 here)"
    )
    r.add(
        "cold start",
        f"floor: import boto3 + 1 client (CPU / wall / peak RSS), {where}",
        f"{floor['cpu_ms']:.0f} ms / {floor['wall_ms']:.0f} ms / {floor['maxrss_mib']:.0f} MiB",
        "",
        "1.00",
        f"{repeats} fresh interpreters, alternated with the rows below",
    )
    for libraries, what in (
        ("libraries", "the floor + Powertools Logger, Metrics, Tracer (botocore patched) + a pydantic model validated"),
        ("libraries-api", "libraries + Powertools REST resolver with validation, one route, the idempotency store"),
    ):
        lib = t[f"{libraries}/pyc"]
        r.add(
            "cold start",
            f"{libraries}: {what}, nothing of ours",
            f"{lib['cpu_ms']:.0f} ms / {lib['maxrss_mib']:.0f} MiB",
            f"floor {floor['cpu_ms']:.0f} ms / {floor['maxrss_mib']:.0f} MiB",
            f"{lib['cpu_ms'] / floor['cpu_ms']:.2f}x CPU",
            "the price of the libraries the house rules name, alternated with the floor: no change of ours takes "
            "it off",
        )
    shipped = "as deployed (asset with .pyc)" if layout else "with the venv's .pyc"
    before = "sources only (the asset before bytecode was shipped)" if layout else "as bundled (no .pyc)"
    for name in cold_start.FUNCTIONS[:1] if quick else cold_start.FUNCTIONS:
        pyc, asset, imp = t[f"{name}/pyc"], t[f"{name}/asset"], t[f"{name}/import"]
        top = ", ".join(f"{k} {v:.0f}" for k, v in data["importtime"][name][:3])
        libraries = cold_start.library_floor(name)
        lib = t[f"{libraries}/pyc"]
        r.add(
            "cold start",
            f"{name}: import + first client {shipped}, CPU (import only) / peak RSS",
            f"{pyc['cpu_ms']:.0f} ms ({imp['cpu_ms']:.0f}) / {pyc['maxrss_mib']:.0f} MiB",
            f"floor {floor['cpu_ms']:.0f} ms / {floor['maxrss_mib']:.0f} MiB",
            f"{pyc['cpu_ms'] / floor['cpu_ms']:.2f}x CPU, {pyc['maxrss_mib'] / floor['maxrss_mib']:.2f}x RSS",
            f"ours above {libraries}: {pyc['cpu_ms'] - lib['cpu_ms']:+.0f} ms ({pyc['cpu_ms'] / lib['cpu_ms']:.2f}x); "
            f"{before}: {asset['cpu_ms']:.0f} ms = {asset['cpu_ms'] / floor['cpu_ms']:.2f}x; top self import ms: {top}",
        )
    a = data["asset"]
    if "bytes" in a:
        r.add(
            "cold start",
            "deployed shared asset (unzipped)",
            f"{a['bytes'] / 2**20:.1f} MiB, {a['files']} files",
            "Lambda limit 250 MB",
            f"{a['bytes'] / 250e6:.3f}",
            f"{a['pyc_files']} .pyc; largest: "
            + ", ".join(f"{k} {v} MiB" for k, v in a["largest"][:4])
            + f"; {a['source']}",
        )
    else:
        r.add("cold start", "deployed shared asset", a["source"])


def section_warm(r: Results, n: int) -> dict[str, Any]:
    log("warm overhead ...")
    data = warm.run(n)
    r.raw["warm"] = data
    for label, d in data.items():
        h, b = d["handler"], d["bare"]
        r.add(
            "warm",
            f"{label}: own CPU per invocation (AWS calls excluded)",
            f"{h['own_ms']:.2f} ms",
            f"bare logic call {b['own_ms']:.2f} ms",
            f"{h['own_ms'] / b['own_ms']:.2f}x (+{h['own_ms'] - b['own_ms']:.2f} ms)",
            f"n={h['n']}+{b['n']} alternated; {h['aws_calls']:.0f} AWS calls; {h['log_bytes']:.0f} log bytes",
        )
    return data


BASELINE = ROOT / "payments_dev" / "bench" / "baseline" / "cost-7d0cec3.json"


def section_cost(r: Results, checkouts: int, warm_data: dict[str, Any] | None, write: bool) -> None:
    """Counts per checkout and their price; ``write``: the counts become the checked-in record both the cost and
    the capacity model read (payments/ops/checkout_counts.json)."""
    log("counts and cost ...")
    counted = cost.count(checkouts)
    rec = cost.record(counted)
    if write:
        measured.PATH.write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
        reload_model()
    priced = cost.price(rec, warm_data)
    r.raw["cost"] = {"record": rec, "raw": {n: v["raw"] for n, v in counted.items()}, "priced": priced}
    before = json.loads(BASELINE.read_text()) if BASELINE.exists() else None
    c = rec["checkouts"][str(cost.ORDERS)]
    inv = c["invocations"]
    sfn = c["stepfunctions"]
    r.add(
        "cost inputs",
        "Step Functions state transitions per checkout (3 orders)",
        f"{sfn['transitions']:.0f}",
        f"1 order: {rec['checkouts']['1']['stepfunctions']['transitions']:.0f}",
        "",
        f"{sfn['history_events']:.0f} history events (Standard logs ALL of them; Express logs the {sfn['error_events']:.0f} failure events); {checkouts} checkouts of each size, statuses {c['statuses']}",
    )
    r.add(
        "cost inputs",
        "API requests / Lambda invocations per checkout",
        f"{sum(c['api_requests'].values()):.0f} / {sum(inv.values()):.0f}",
        "",
        "",
        ", ".join(f"{k} {v:.0f}" for k, v in c["api_requests"].items())
        + f" (the GET: {cost.GET_POLLS} poll assumed); "
        + ", ".join(f"{k} {v:.0f}" for k, v in inv.items()),
    )
    ours = priced["dynamodb_ours"]
    was = ""
    if before:
        old = [v for k, v in before["dynamodb_by_table_operation"].items() if not k.startswith("psp-simulator ")]
        was = f"before (7d0cec3, no GET poll) {sum(v['requests'] for v in old):.0f} / {sum(v['wru'] for v in old):.0f} / {sum(v['rru'] for v in old):.0f}"
    r.add(
        "cost inputs",
        "DynamoDB requests / WRU / RRU per checkout (ours, deployed index writes included)",
        f"{ours['requests']:.0f} / {ours['wru']:.0f} / {ours['rru']:.0f}",
        was,
        "",
        "with the GET poll's reads; an index no deployed stage has is not counted; see docs/capacity.md for every read and write",
    )
    psp = priced["dynamodb_with_psp_simulator"]
    r.add(
        "cost inputs",
        "the simulated PSP's own table per checkout (not priced: a real PSP's cost)",
        f"{psp['requests'] - ours['requests']:.0f} / {psp['wru'] - ours['wru']:.0f} / {psp['rru'] - ours['rru']:.0f}",
        "",
        "",
        f"USD {priced['psp_simulator_dynamodb_per_million']:.1f} per million checkouts if it were counted (dev stages deploy it)",
    )
    for setting, v in c["dynamodb"].items():
        r.add(
            "dynamodb per checkout",
            setting,
            f"{v['requests']:.0f} req / {v['wru']:.0f} WRU / {v['rru']:.0f} RRU",
            f"1 order: {rec['checkouts']['1']['dynamodb'].get(setting, {}).get('wru', 0):.0f} WRU",
            "",
            "",
        )
    ms = priced["modelled_billed_ms"]
    a = rec["assumptions"]
    r.add(
        "cost inputs",
        "modelled billed ms per invocation (AWS)",
        ", ".join(f"{k} {v:.0f}" for k, v in ms.items()),
        "",
        "",
        f"local handler CPU x (1769 MB / memory) + {a['aws_call_ms']:.0f} ms per AWS call + {a['psp_latency_ms']:.0f} ms per PSP call (the executor's wait); {priced['lambda_gb_s_per_checkout']:.3f} GB-s per checkout; Express billed {priced['express_execution_s']} s x 64 MB",
    )
    base = priced["standard/arm64"]["total_per_million"]
    logged = f"{priced['lambda_log_bytes_per_invocation']:.0f}" + (
        " (warm section)" if priced["lambda_log_bytes_measured"] else " (assumed: the warm section did not run)"
    )
    for key in ("express/arm64", "standard/arm64", "express-log-all/arm64", "express/x86_64", "standard/x86_64"):
        d = priced[key]
        items = sorted(d["items_per_million"].items(), key=lambda kv: -kv[1])
        r.add(
            "cost",
            f"USD per million 3-order checkouts: {key}"
            + (" (DEPLOYED: workflowType EXPRESS, logs ERROR)" if key == "express/arm64" else ""),
            f"{d['total_per_million']:,.1f}",
            "standard/arm64 (same run)" if key != "standard/arm64" else "",
            f"{d['total_per_million'] / base:.2f}",
            ", ".join(f"{k} {v:,.1f}" for k, v in items[:5])
            + f"; GET poll and PSP wait included; Lambda log bytes per invocation {logged}"
            + "; prices: docs/prices-us-east-1.json (recalled, re-check)",
        )
    agree = cost.agreement(priced)
    r.add(
        "cost",
        "cost model against capacity model: largest difference of the counts per checkout",
        f"{max(abs(d) for d in agree.values()):.1%}",
        "limit 5 %",
        "",
        ", ".join(f"{k} {d:+.1%}" for k, d in agree.items()),
    )


def reload_model() -> None:
    """The capacity model read the record at import: after a new record, read it again (this run's rows and the
    comparison with the cost model are of the record just written)."""
    import importlib

    from payments.ops import capacity as installed

    measured.record.cache_clear()
    importlib.reload(installed)
    importlib.reload(capacity)


def section_capacity(r: Results) -> None:
    """The capacity model (payments_dev/bench/capacity.py; the full tables are docs/capacity.md)."""
    log("capacity model ...")
    raw: dict[str, Any] = {}
    for n in (1, 3, 10):
        express, e_quota, _ = capacity.sustainable(n, express=True)
        standard, s_quota, _ = capacity.sustainable(n, express=False)
        configured, c_quota, _ = capacity.sustainable(n, express=True, include_ours=True)
        raw[n] = {"express": express, "standard": standard, "configured": configured}
        r.add(
            "capacity",
            f"{n} order(s) per checkout: checkouts/s per region at AWS default quotas, Express",
            f"{express:,.0f}",
            f"Standard {standard:,.0f} (binds: {s_quota.name})",
            f"{express / standard:.2f}x",
            f"binds first: {e_quota.name}; as cdk.json prod is set: {configured:,.0f} ({c_quota.name})",
        )
        for target in (5_000, 20_000):
            needed = capacity.raises_for(target, n)
            r.add(
                "capacity",
                f"{n} order(s): raises for {target:,} checkouts/s",
                f"{len(needed)} quotas/settings",
                "",
                "",
                "; ".join(f"{q.name.split(':')[0]} {q.name.split(':', 1)[1].strip()} -> {v}" for q, v in needed),
            )
    shards = capacity.wallet_shards_for(10_000)
    r.add(
        "capacity",
        "wallet shards for one seller at 10,000 credits/s",
        str(shards["shards"]),
        f"prod walletShards {capacity.PROD_WALLET_SHARDS}",
        "",
        f"hottest shard {shards['max_over_mean']:.3f}x the mean, ceiling {shards['ceiling_credits_per_s']:,.0f} credits/s (real shard_of, 10,000 random ids)",
    )
    r.raw["capacity"] = raw


def section_hot(r: Results, verify: int) -> None:
    log("hot seller ...")
    rows = hot_seller.spread(10_000)
    seq = hot_seller.spread(10_000, sequential=True)
    checked = hot_seller.verify(verify, 8) if verify else None
    r.raw["hot_seller"] = {"spread": rows, "spread_sequential_ids": seq, "verify": checked}
    for row in rows:
        if row["shards"] in (1, 2, 4, 8, 12, 16):
            r.add(
                "hot seller",
                f"WALLET_SHARDS={row['shards']}: credits on the hottest shard / ceiling per seller",
                f"{max(row['per_shard'])} of 10,000 / {row['ceiling_credits_per_s']:,.0f} credits/s",
                "even spread",
                f"{row['max_over_mean']:.3f} max/mean",
                "random order ids; 2 WCU per credit on the shard item (transaction, < 1 KB), 1,000 WCU/s per partition",
            )
    if checked:
        r.add(
            "hot seller",
            f"verified on moto: {checked['credits']} credits, 8 shards",
            str(checked["stored_per_shard"]),
            "predicted by shard_of",
            "match" if checked["match"] else "MISMATCH",
            f"balance {checked['balance_minor']} minor units",
        )


def section_throughput(r: Results, checkouts: int, runs: int) -> None:
    log("throughput ...")
    data = throughput.run(checkouts, runs)
    r.raw["throughput"] = data
    base = data["baseline_checkouts_per_s"]
    r.add(
        "local",
        f"payments demo end to end ({checkouts} checkouts, {data['orders']} orders)",
        f"{data['checkouts_per_s']:.1f} checkouts/s",
        f"baseline (AWS calls over HTTP, ASL parsed per execution) {base:.1f} checkouts/s",
        f"{data['checkouts_per_s'] / base:.2f}x",
        f"runs {data['runs']} vs baseline {data['baseline_runs']}, alternated; {data['results'][0]}; includes PSP retry backoff waits of the scenario"
        + (f"; STALLED runs (excluded): {data['stalled_runs']}" if data["stalled_runs"] else ""),
    )
    prof = data.get("profile")
    if prof:
        layers = ", ".join(f"{k} {v:.0%}" for k, v in prof["layers"][:6])
        leaves = ", ".join(f"{k} {v:.0%}" for k, v in prof["leaf"][:4])
        r.add(
            "local",
            "where the CPU goes (py-spy --gil: the thread holding the GIL, share of samples by layer)",
            layers,
            "",
            "",
            f"{prof['samples']} samples, profiled run {data.get('profiled_checkouts_per_s')} checkouts/s; top leaves: {leaves}",
        )
    elif "profile_error" in data:
        r.add("local", "profile", "py-spy failed", "", "", data["profile_error"][-200:])


def section_query_index(r: Results, sizes: list[int], runs: int) -> None:
    log("local query index ...")
    data = query_index.run(sizes, runs, queries=200)
    r.raw["query_index"] = data
    for size, got in data.items():
        for kind, label in query_index.KINDS:
            base, fast = median(got["moto"][kind]), median(got["patched"][kind])
            r.add(
                "local",
                f"moto DynamoDB {label}, table of {size:,} items (payments_dev/local/moto_patches.py part 4)",
                f"{fast:.2f} ms",
                f"moto's own Query (every item sorted and tested) {base:.2f} ms",
                f"{base / fast:.1f}x faster",
                f"median per query of 200, {runs} fresh processes each, alternated; spread {spread(got['patched'][kind])} vs {spread(got['moto'][kind])} ms",
            )


def section_reconcile(r: Results, sizes: list[tuple[int, int]]) -> bool:
    """Ours against pandas, polars and duckdb (payments_dev.bench.bench_reconcile); False when ours is missing or
    the contenders disagree (the rows say which)."""
    log("reconciliation ...")
    from payments_dev.bench import bench_reconcile as br

    results = []
    for charges, repeats in sizes:
        log(f"reconciliation: {charges:,} charges, {repeats} run(s) of each contender ...")
        results.append(br.run_size(charges, repeats, br.DEFAULT_SEED, br.CONTENDERS, br.OUT))
    _, targets, ok = br.report(results)
    for res in results:
        where = f"{res['rows']:,} rows ({res['settled_rows']:,} Settled; file {res['file_mib']:.0f} MiB, ledger Parquet {res['ledger_mib']:.0f} MiB)"
        ours = res["summary"].get("ours")
        for name in br.CONTENDERS:
            if name in res["missing"]:
                r.add("reconciliation", f"{where}: {name}", "not available", "", "", res["missing"][name])
                continue
            if name in res.get("out_of_memory", {}):
                r.add("reconciliation", f"{where}: {name}", "out of memory", "", "", res["out_of_memory"][name])
                continue
            m = res["summary"].get(name)
            if m is None:
                continue
            compared = ratio = ""
            if ours and name != "ours":
                compared = f"ours {ours['cpu_seconds']:.2f} s CPU / {ours['peak_mib']:.0f} MiB"
                ratio = f"ours/{name}: {ours['cpu_seconds'] / m['cpu_seconds']:.2f}x CPU, {ours['peak_mib'] / m['peak_mib']:.2f}x RSS"
            r.add(
                "reconciliation",
                f"{where}: {name}, CPU / peak RSS",
                f"{m['cpu_seconds']:.2f} s / {m['peak_mib']:.0f} MiB",
                compared,
                ratio,
                f"median of {res['repeats']} fresh processes, alternated (CPU runs {m['cpu_runs']}); wall {m['seconds']:.2f} s",
            )
        first = next(iter(res["outcomes"].values()), None)
        if res["disagreements"]:
            r.add(
                "reconciliation",
                f"{where}: the contenders' answers",
                "DISAGREE",
                "",
                "",
                "; ".join(res["disagreements"][:5]),
            )
        elif first:
            kinds = ", ".join(f"{k} {v:,}" for k, v in first["kinds"].items())
            r.add(
                "reconciliation",
                f"{where}: the contenders' answers",
                "identical",
                ", ".join(res["outcomes"]),
                "",
                f"matched {first['matched']:,}, recorded {first['recorded']}, {kinds}; totals of {len(first['totals'])} currencies",
            )
    for line in targets:
        verdict, _, text = line.partition(": ")
        r.add("reconciliation", f"target: {text.split(':')[0]}", verdict, "", "", text.split(": ", 1)[-1])
    r.raw["reconciliation"] = results
    return section_reconcile_disk(r, [charges for charges, _ in sizes]) and ok


def section_reconcile_disk(r: Results, sizes: list[int]) -> bool:
    """The reconcile function's /tmp at its peak on the two paths that hold a whole file (payments_dev.bench.recon_disk),
    against the budgets its ephemeral storage is sized from; False when one is passed or work is left behind."""
    from payments_dev.bench import bench_reconcile as br
    from payments_dev.bench import recon_disk as rd

    rows = []
    for charges in sizes:
        for path in rd.PATHS:
            log(f"reconciliation: /tmp of the {path}, {charges:,} charges ...")
            rows.append(rd.measure(path, charges, br.OUT))
    ok = True
    for row in rows:
        ratio, verdict, passed = rd.judge(row)
        ok &= passed
        r.add(
            "reconciliation",
            f"{row['charges']:,} charges (file {row['file_bytes'] / 2**20:,.0f} MiB): the reconcile function's /tmp "
            f"at its peak, {row['path']}",
            f"{row['peak_bytes'] / 2**20:,.0f} MiB",
            f"budget {rd.budget(row['path']):.2f} per byte of file",
            f"{ratio:.2f} per byte of file",
            f"{verdict}; one fresh process, sampled every 20 ms (a floor); CPU {row['cpu_seconds']:.1f} s",
        )
    r.raw["reconciliation_disk"] = rows
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The benchmark suite: one table, also written to docs/benchmarks.md")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_true", help="a tiny run of every section, to see that each runs (writes no doc)"
    )
    mode.add_argument("--small", action="store_true", help="smaller run")
    mode.add_argument("--full", action="store_true", help="larger runs of the other sections")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["cold", "warm", "cost", "capacity", "hot", "throughput", "query_index", "reconcile"],
        help="run these sections only",
    )
    parser.add_argument("--no-write", action="store_true", help="print the table, do not write docs/benchmarks.md")
    parser.add_argument(
        "--reconcile-sizes", type=int, nargs="+", help="charges of the reconciliation's day instead of the mode's sizes"
    )
    args = parser.parse_args(argv)
    mode_name = "quick" if args.quick else "small" if args.small else "full" if args.full else "default"
    size = SIZES[mode_name]
    chosen = set(args.only or ["cold", "warm", "cost", "capacity", "hot", "throughput", "query_index", "reconcile"])
    if args.quick:
        args.no_write = True  # tiny figures are no benchmark: they never replace docs/benchmarks.md
    if args.reconcile_sizes:
        size = {**size, "rec": [(n, size["rec"][0][1]) for n in args.reconcile_sizes]}
    started = time.monotonic()
    when = dt.datetime.now(dt.UTC)
    info = machine()
    r = Results()
    warm_data = None
    # Order matters: on Linux a child's ru_maxrss starts from its parent's high-water mark at
    # fork, so the sections that fork measured children (cold start, reconciliation) run while
    # this process is still small; cost and hot seller load moto into this process, so they go last.
    if "cold" in chosen:
        section_cold(r, size["cold"], quick=args.quick)
    reconciled = True
    if "reconcile" in chosen:
        reconciled = section_reconcile(r, size["rec"])
    if "warm" in chosen:
        warm_data = section_warm(r, size["warm"])
    if "throughput" in chosen:
        section_throughput(r, size["demo"], size["demo_runs"])
    if "query_index" in chosen:
        section_query_index(r, size["qi"], size["qi_runs"])
    if "cost" in chosen:
        section_cost(r, size["cost"], warm_data, write=mode_name != "quick")
    if "capacity" in chosen:
        section_capacity(r)
    if "hot" in chosen:
        section_hot(r, size["verify"])
    order = [
        "cold start",
        "warm",
        "cost inputs",
        "dynamodb per checkout",
        "cost",
        "capacity",
        "hot seller",
        "local",
        "reconciliation",
    ]
    r.rows.sort(key=lambda row: order.index(row.area))
    elapsed = time.monotonic() - started
    header = (
        f"Run {when:%Y-%m-%d %H:%M} UTC, `python -m payments_dev.bench.run{' --' + mode_name if mode_name != 'default' else ''}{' --only ' + ' '.join(args.only) if args.only else ''}{' --reconcile-sizes ' + ' '.join(map(str, args.reconcile_sizes)) if args.reconcile_sizes else ''}` ({mode_name}, {elapsed / 60:.1f} min); "
        f"machine: {info['cpu']}, {info['cores']} cores, {info['implementation']} {info['python']}, {info['os']}, load average at start {info['load_at_start']} (shared, noisy: medians)."
    )
    text = table(r.rows)
    print(header)
    print()
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(
        json.dumps({"when": when.isoformat(), "machine": info, "mode": mode_name, "raw": r.raw}, indent=1, default=str)
    )
    if any(row.value == "DISAGREE" for row in r.rows):
        args.no_write = True  # figures of contenders that do different work are no benchmark
    if not args.no_write and not args.only:
        write_doc(header, text)
        log("written: docs/benchmarks.md, payments_dev/bench/out/results.json")
    elif not args.no_write and r.rows:
        splice_doc(header, r.rows)
        log(
            f"written: the {', '.join(sorted({row.area for row in r.rows}))} rows of docs/benchmarks.md, payments_dev/bench/out/results.json"
        )
    if not reconciled:
        log("FAILED: the reconciliation's contenders disagree, or ours is not available (see its rows)")
        return 1
    return 0


DOC_HEAD = """# Benchmarks

Generated by `make bench` (`.venv/bin/python -m payments_dev.bench.run`; `--small` for a smaller run, `--full`
for larger runs of the other sections; the default includes the reconciliation at 1M and 10M charges). Do not edit by hand: re-run. Raw figures: `payments_dev/bench/out/results.json`.
Each figure is a median of several runs; each comparison (ratio column) is measured alternately with
its baseline in the same run, because the machine is shared.

"""

DOC_NOTES = """

## How to read it

* **cold start**: a fresh interpreter per sample imports `functions.<name>.handler` (its module-level
  init) and creates the DynamoDB client its first invocation creates; the floor is `import boto3` +
  one client, in the same interpreter and layout. CPU time is measured inside the child (interpreter
  start-up excluded); peak RSS is the child's `VmHWM`. The layout is Lambda's, rebuilt each run in
  `payments_dev/bench/out/lambda/`: the asset exactly as `infra/bundling.py` builds it (for this machine's
  architecture instead of arm64), first on `sys.path` as `/var/task` is, then boto3 & co compiled as
  the runtime's `/var/runtime`; the interpreter is a Python 3.13 (the runtime's version, found like
  the bundling finds it), run with `-I`. "sources only" is the same asset without its `__pycache__`,
  run with `-B`: what every cold start paid before the bundling compiled bytecode into the asset
  (`/var/task` is read-only, so Python cannot cache what it compiles there). Environment as deployed:
  `LAMBDA_TASK_ROOT` set (so Powertools' Tracer is enabled and patches botocore), metrics enabled,
  fake credentials, `AWS_DEFAULT_REGION=us-east-1`. Import attribution comes from `python -X
  importtime` (self time per top-level package, one sample: indicative only). Local x86 CPU, not a
  Lambda arm64 sandbox: compare ratios, not milliseconds. Without a Python 3.13 the rows fall back
  to this interpreter with the venv's bytecode (and say so). Two more floors run in the same rounds:
  `libraries` (the floor + Powertools' Logger, Metrics and Tracer patching botocore + one pydantic model
  built and validated: what every function stands on, with nothing of ours) and `libraries-api` (+ the
  REST resolver with validation, one route and the idempotency store: what the payment function, the
  checkout API, adds). "ours above" in a function's row is its time above its library floor: the only
  part a change of ours can take off. A target below the library floor's ratio (issue 27 asked for 1.3x
  of the floor) cannot be met while the functions use those libraries.
* **warm**: the handler's own CPU per invocation with every AWS call's CPU subtracted (moto
  in-process), against the same work done without Powertools (parse with the same pydantic
  model, call the same logic function, serialise), alternately. Tracing disabled (no daemon).
* **cost inputs / cost**: counted in the local runtime (`payments_dev/bench/cost.py`) for checkouts of 1
  and of 3 orders on the happy path (`tok_visa`), sequentially, each followed by one GET of the payment
  (assumed: a client polls once for the outcome). Only what the functions do is counted, not the local
  runtime's stand-ins. The counts are stored as `payments/ops/checkout_counts.json`: the cost model prices
  its 3-order checkout, and the capacity model (docs/capacity.md) sizes quotas, warm throughput and
  throttles from the same file (for n orders: the line through the 1- and 3-order counts). Lambda durations
  in AWS are a *model*, the same in both: the handler's CPU x (1,769 MB / memory) + 8 ms per AWS call
  + 300 ms per PSP call (assumed: a card authorisation's round trip, which the executor waits on). The
  dominant item of Standard (state transitions) does not depend on it. Not included: storage, PITR, KMS,
  data transfer, CloudWatch metrics/alarms, GET polls beyond one, retries, the ledger's copy to S3 (per
  ledger transaction: docs/capacity.md, "A 100-million-transaction day"), free tiers. The nightly
  settlement/reconciliation (a few S3 requests and one Lambda run per day) is independent of the number of
  checkouts. The row "cost model against capacity model" is the largest difference between the counts the
  cost model priced and the capacity model's use of one 3-order checkout; a unit test holds it within 5 %,
  another fails when the checked-in counts differ from a fresh run's (`python -m payments_dev.bench.cost
  --write` regenerates them; `make bench` does too).
* **dynamodb per checkout**: every table's DynamoDB requests and units of one 3-order checkout (write units
  include the writes of the indexes a deployed stage has, computed from the items' sizes and index keys; a
  transaction over two tables is in both tables' requests); why each one is there is docs/capacity.md,
  "Every read and write of a checkout".
* **capacity**: `payments_dev/bench/capacity.py`, the quota model of docs/capacity.md (`python -m payments_dev.bench.capacity`
  prints its full tables): checkouts/s per region at AWS default quotas for 1, 3 and 10 orders, the
  quota that binds first, the raises for 5,000 and 20,000 checkouts/s, the wallet shards for one
  seller at 10,000 credits/s. A model, not a load test: quota values are the documented defaults; the use
  per checkout is the cost bench's counts and durations (`payments/ops/checkout_counts.json`, the file the
  cost rows price), with the same GET poll and PSP wait.
* **hot seller**: `shard_of` over 10,000 random order ids of one seller; the ceiling is
  500 credits/s per shard item (a transactional write of an item < 1 KB is 2 WCU; 1,000 WCU/s per
  partition) times credits / credits on the hottest shard. The other two items of a credit
  transaction (the credit marker and the order flag) are keyed by the order: never hot.
  `WALLET_SHARDS` (`Settings.wallet_shards`, 1-64, default 4) may only be raised, never lowered:
  readers sum `range(wallet_shards)`.
* **local**: `payments demo` throughput on this machine, including the scenario's PSP retry
  backoff waits; the profile is py-spy `--gil` (samples of whichever thread holds the GIL, i.e. Python CPU) over
  one extra run of half the checkouts. A run whose workflows do not all finish within 240 s is
  reported as STALLED and excluded from the median (its demo output is kept in payments_dev/bench/out/).
  Each run alternates with a run of the baseline, the local runtime before its two speed-ups:
  `PAYMENTS_LOCAL_TRANSPORT=http` (the process's AWS calls over the socket to moto instead of
  to moto's WSGI application in-process, `payments_dev/local/inprocess.py`) and
  `PAYMENTS_LOCAL_ASL_CACHE=off` (moto parses the ASL for every execution again).
* **reconciliation**: `payments_dev/bench/bench_reconcile.py` (also a script: `python -m
  payments_dev.bench.bench_reconcile --sizes 1000000 --repeats 3`). The inputs, one per size, are written once
  before any contender runs, deterministically (seed 26), by `payments_dev/bench/recon_inputs.py`: an Adyen
  Settlement Details Report (the columns our readers take, `TimeZone` CET, three currencies) and the ledger's
  Parquet copy in the lake's layout and columns (`ledger/psp=adyen/day=.../ccy=.../*.parquet`, in booking
  order, with repeated deliveries). Per 2,000 charges one is booked with another amount, one in another
  currency, two are booked but not settled, one settled but never booked, one booked under another order, two
  settled twice (identically, and with another amount); plus carry-over rows from the day before, refunds,
  chargebacks and reversals (each kind of difference among them too), fees and payouts. Contenders: **ours**
  (`payments.reconciliation.columnar.reconcile_local`, end to end, file and Parquet in, result out; where it
  does not exist the row says "not available" and the run exits non-zero), **pandas** (only the needed
  columns, amounts as `int64` minor units), **polars** (`POLARS_MAX_THREADS=1`), **duckdb** (1 thread) and
  **duckdb-200MB** (1 thread, `memory_limit='200MB'`). Each run is a fresh process that measures itself: CPU
  is `getrusage(RUSAGE_SELF)` user + system from before the contender's imports to its answer (interpreter
  start-up excluded, library imports included), peak RSS its `VmHWM` (its own address space's high-water mark;
  `ru_maxrss`, kept in the raw figures, starts on Linux from the parent's at fork); the contenders are alternated
  and each figure is the median of the runs the row names (3 at 1M, 1 at 10M). Every contender must answer
  the same outcome counts (rows, matched, recorded, each mismatch kind) and the same per-currency totals: the
  run checks it and fails otherwise. The baselines implement the engine's matching rules for these inputs
  (the rules are in the module's docstring; `tests/unit/dev/test_bench_reconcile.py` checks each baseline
  against `payments.reconciliation.engine` on a generated day). They do not implement what the inputs never
  exercise (rejected rows, the point-lookup budget, bank statements). The targets for ours (1M charges: at
  most 3 s CPU and 512 MiB; 10M: 60 s and 1.5 GiB) are printed as PASS or FAIL rows, not asserted. The rows
  above were measured on the 2-core development machine while other jobs ran on it (the load average is in
  the run's line): wall times swing with the load; compare CPU and memory, and ratios within one run.
"""


def splice_doc(header: str, rows: list[Any]) -> None:
    """``--only``: replace the rows of the areas just measured in docs/benchmarks.md (the other
    areas' rows stay, from their own run) and say which run they come from."""
    path = ROOT / "docs" / "benchmarks.md"
    areas = sorted({row.area for row in rows})
    fresh = table(rows).splitlines()[2:]
    note = f"The {', '.join(areas)} rows come from a later run of that section alone: {header}"
    out: list[str] = []
    inserted = skip_blank = False
    for line in path.read_text().splitlines():
        if line.startswith(f"The {', '.join(areas)} rows come from a later run"):
            skip_blank = True  # the note and the blank line after it
            continue
        if skip_blank and not line:
            skip_blank = False
            continue
        if line.startswith("| area |"):
            out += [note, ""]
        if line.startswith("| ") and line[2:].split(" | ")[0] in areas:
            if not inserted:
                out += fresh
                inserted = True
            continue
        out.append(line)
    if not inserted:
        raise SystemExit(f"docs/benchmarks.md has no {', '.join(areas)} rows to replace: run the whole suite")
    path.write_text("\n".join(out) + "\n")


def write_doc(header: str, text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    old = path.read_text() if path.exists() else ""
    # the sections a benchmark of its own writes (python -m payments_dev.bench.pan_refusals --write) stay
    kept = "\n" + old[old.index(pan_refusals.DOC_SECTION) :] if pan_refusals.DOC_SECTION in old else ""
    path.write_text(DOC_HEAD + header + "\n\n" + text + "\n" + DOC_NOTES + kept)


if __name__ == "__main__":
    raise SystemExit(main())
