"""What the local runtime's query index (payments_dev/local/moto_patches.py, part 4) buys, by table size.

    .venv/bin/python -m payments_dev.bench.query_index [--sizes 2000 10000] [--runs 3] [--queries 200]

moto answers a Query by sorting every item of the table and testing each; the patch reads one
partition (a table query) or one hash-key bucket of a GSI (an index query). Each run is a fresh
process with moto in-process (``mock_aws``, the same botocore client path for both) that fills a
table created as the ledger is (``payments/kernel/tables.py``: ``pk``/``sk``, the GSI ``by_settlement_day``;
about six items per day, as the chaos harness's default calendar gives) with ``size`` items, then times ``--queries``
table queries (one partition of 2 items) and as many index queries (one day). The baseline is the
same process with the patch off (``PAYMENTS_LOCAL_QUERY_INDEX=off``); runs alternate baseline and
patched, and the figures are medians per query over all runs. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from payments_dev.bench.common import PYTHON, ROOT, log, machine, median, spread

ITEMS_PER_DAY = 6


def child(size: int, queries: int) -> dict[str, float]:
    import boto3
    from moto import mock_aws

    from payments.kernel.tables import TABLES, create_table_request
    from payments_dev.local import moto_patches

    moto_patches.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ledger = next(t for t in TABLES if t.setting == "ledger_table")  # the ledger's real keys and index
        ddb.create_table(**create_table_request(ledger, "ledger"))
        for start in range(0, size, 50):  # a transaction per 2 items would be closer, and slower to fill
            rows = [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": f"TXN#{i // 2}"},
                            "sk": {"S": f"ENTRY#{i % 2}"},
                            "settlement_day": {"S": f"psp#day{i // ITEMS_PER_DAY}"},
                            "psp_reference": {"S": f"ch_{i}"},
                            "amount_minor": {"N": str(100 + i)},
                        }
                    }
                }
                for i in range(start, min(start + 50, size))
            ]
            for chunk in (rows[:25], rows[25:]):
                if chunk:
                    ddb.batch_write_item(RequestItems={"ledger": chunk})
        days = size // ITEMS_PER_DAY
        timings: dict[str, list[float]] = {"table": [], "index": []}
        for q in range(queries):
            began = time.perf_counter()
            page = ddb.query(
                TableName="ledger",
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": f"TXN#{(q * 7919) % (size // 2)}"}},
            )
            timings["table"].append(time.perf_counter() - began)
            assert len(page["Items"]) == 2
            began = time.perf_counter()
            page = ddb.query(
                TableName="ledger",
                IndexName="by_settlement_day",
                KeyConditionExpression="settlement_day = :d",
                ExpressionAttributeValues={":d": {"S": f"psp#day{(q * 104729) % days}"}},
            )
            timings["index"].append(time.perf_counter() - began)
            assert len(page["Items"]) == ITEMS_PER_DAY
        return {kind: statistics.median(values) * 1000 for kind, values in timings.items()}


def run_child(size: int, queries: int, patched: bool) -> dict[str, float]:
    env = dict(os.environ, PAYMENTS_LOCAL_QUERY_INDEX="on" if patched else "off")
    out = subprocess.run(
        [PYTHON, "-m", "payments_dev.bench.query_index", "--child", str(size), "--queries", str(queries)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


KINDS = (("table", "table query (one partition of 2 items)"), ("index", "GSI query (one settlement day, 6 items)"))


def run(sizes: list[int], runs: int, queries: int) -> dict[int, dict[str, dict[str, list[float]]]]:
    """{size: {"moto"|"patched": {kind: [median ms per query of each run]}}}, baseline and patched alternated."""
    out: dict[int, dict[str, dict[str, list[float]]]] = {}
    for size in sizes:
        got: dict[str, dict[str, list[float]]] = {
            "moto": {k: [] for k, _ in KINDS},
            "patched": {k: [] for k, _ in KINDS},
        }
        for i in range(runs):
            log(f"query index: {size} items, run {i + 1}/{runs} ...")
            for variant in ("moto", "patched"):
                for kind, ms in run_child(size, queries, patched=variant == "patched").items():
                    got[variant][kind].append(ms)
        out[size] = got
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a tiny run: 200 items, once, 20 queries")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.queries)))
        return 0
    if args.quick:
        args.sizes, args.runs, args.queries = [200], 1, 20
    print(f"machine: {machine()}")
    print(
        f"{'items':>7}  {'query':<42} {'moto (ms)':>10} {'patched (ms)':>13} {'speed-up':>9}  spread of the runs (moto / patched)"
    )
    for size, got in run(args.sizes, args.runs, args.queries).items():
        for kind, label in KINDS:
            b, f = median(got["moto"][kind]), median(got["patched"][kind])
            print(
                f"{size:>7}  {label:<42} {b:>10.2f} {f:>13.2f} {b / f:>8.1f}x  {spread(got['moto'][kind])} / {spread(got['patched'][kind])}"
            )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
