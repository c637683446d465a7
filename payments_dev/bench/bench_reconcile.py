"""Benchmark of the reconciliation engine against a plain pandas merge (a script, not a test).

    .venv/bin/python payments_dev/bench/bench_reconcile.py                 # 250k and 1M rows, 3 runs each
    .venv/bin/python payments_dev/bench/bench_reconcile.py --sizes 100000 --repeats 1

For each size it writes an Adyen Settlement Details Report of that many ``Settled``
rows (``payments_dev/bench/out/``, reused between runs) with a ledger that differs from it in
a few places (amounts, missing rows), then reconciles it in a fresh subprocess
per run and reports the median wall time, rows/s and peak resident memory
(``ru_maxrss`` of that subprocess, interpreter and imports included).

The ledger side is a synthetic :class:`LedgerSource` that computes its entries
from their index, in ``psp_reference`` order, without holding them: the same
interface the engine reads DynamoDB through, so what is measured is the engine,
not a ledger held in memory. The file's rows are in creation order, which is not
PSP-reference order, so the engine's sort-and-spill path is exercised in full.

The pandas baseline is the straightforward approach: ``read_csv`` the file,
build the ledger as a DataFrame, outer-merge on PSP reference and compare
amounts (as integer minor units, no floats). pandas is an optional, bench-only
dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
sys.path.insert(0, str(ROOT))

from payments.reconciliation import adyen, engine
from payments.reconciliation.lines import LineReader
from payments.reconciliation.model import Bounds
from payments.reconciliation.sources import LedgerEntry

OUT = ROOT / "payments_dev" / "bench" / "out"
DAY = "2026-11-30"
MULTIPLIER = 2_654_435_761  # Knuth's multiplicative hash: spreads indexes over the reference space


def _prime_at_least(n: int) -> int:
    candidate = max(3, n) | 1
    while any(candidate % d == 0 for d in range(3, int(candidate**0.5) + 1, 2)):
        candidate += 2
    return candidate


class Synthetic:
    """Row ``i`` of a day: its reference is a bijection of ``i`` so file order != reference order."""

    def __init__(self, rows: int):
        self.rows = rows
        self.modulus = _prime_at_least(rows)
        self.inverse = pow(MULTIPLIER, -1, self.modulus)

    def reference(self, i: int) -> str:
        return f"psp_{(i * MULTIPLIER) % self.modulus:016d}"

    def amount(self, i: int) -> int:
        return 100 + (i * 7919) % 50_000

    def charged_at(self, i: int) -> str:
        second = (i * 86_399) // max(1, self.rows)
        return f"{DAY}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000Z"

    def ledger_entry(self, i: int) -> LedgerEntry:
        amount = self.amount(i) + (1 if i % 50_000 == 7 else 0)  # a few amount mismatches
        return LedgerEntry(self.reference(i), f"po_{i:09d}", f"seller_{i % 500}", "USD", amount, self.charged_at(i))

    def in_ledger(self, i: int) -> bool:
        return i % 100_000 != 11  # a few missing in the ledger

    def charges(self) -> Iterator[dict]:
        for i in range(self.rows):
            yield {
                "psp_reference": self.reference(i),
                "merchant_reference": f"po_{i:09d}",
                "merchant_account": "PaymentsMarketplaceECOM",
                "amount_minor": self.amount(i),
                "currency": "USD",
                "charged_at": self.charged_at(i),
            }


class SyntheticLedger:
    """A LedgerSource computing entries on demand, ascending by reference: O(1) memory."""

    def __init__(self, rows: int):
        self.data = Synthetic(rows)

    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        for value in range(self.data.modulus):
            i = (value * self.data.inverse) % self.data.modulus
            if i < self.data.rows and self.data.in_ledger(i):
                yield self.data.ledger_entry(i)

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        i = int(payment_order_id.removeprefix("po_"))
        return self.data.ledger_entry(i) if i < self.data.rows and self.data.in_ledger(i) else None

    def day_adjustments(self, day: str) -> Iterator[object]:
        return iter(())  # the synthetic day has no refunds or chargebacks

    def find_adjustment(self, txn_id: str) -> None:
        return None


def generate(rows: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"adyen-{rows}.csv"
    if not path.exists():
        with open(path, "w", encoding="utf-8", newline="") as handle:
            adyen.write_report(Synthetic(rows).charges(), DAY, handle)
    return path


def run_engine(path: Path, rows: int) -> dict:
    bounds = Bounds(max_file_bytes=path.stat().st_size + 1)
    with open(path, "rb") as handle:
        reader = LineReader(handle, bounds.max_line_bytes)
        result = engine.reconcile_adyen(iter(reader), lambda: reader.ended_with_newline, SyntheticLedger(rows), bounds)
    return {"matched": result.matched, "mismatches": len(result.mismatches) + result.mismatches_omitted}


def run_pandas(path: Path, rows: int) -> dict:
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    settled = frame[frame["Type"] == "Settled"]
    settled = settled.assign(amount=settled["Gross Credit (GC)"].str.replace(".", "", regex=False).astype("int64"))
    data = Synthetic(rows)
    entries = [data.ledger_entry(i) for i in range(rows) if data.in_ledger(i)]
    ledger = pd.DataFrame(
        {
            "Psp Reference": [e.psp_reference for e in entries],
            "ledger_amount": [e.amount_minor for e in entries],
            "ledger_currency": "USD",
        }
    )
    merged = settled.merge(ledger, on="Psp Reference", how="outer", indicator=True)
    both = merged[merged["_merge"] == "both"]
    differs = (both["amount"] != both["ledger_amount"]) | (both["Gross Currency"] != both["ledger_currency"])
    duplicates = int(settled["Psp Reference"].duplicated().sum())
    return {
        "matched": int((~differs).sum()),
        "mismatches": int(differs.sum() + (merged["_merge"] != "both").sum() + duplicates),
    }


def child(tool: str, path: Path, rows: int) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime  # imports excluded, like the wall time
    started = time.perf_counter()
    outcome = (run_engine if tool == "engine" else run_pandas)(path, rows)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mib = usage.ru_maxrss / 1024
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak_mib, **outcome}))


def measure(tool: str, path: Path, rows: int, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--child", tool, "--file", str(path), "--rows", str(rows)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(r["seconds"] for r in runs)
    return {
        "seconds": seconds,
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "rows_per_s": rows / seconds,
        "peak_mib": statistics.median(r["peak_mib"] for r in runs),
        "matched": runs[0]["matched"],
        "mismatches": runs[0]["mismatches"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (2,000 rows, once; pandas only if installed)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tools", nargs="+", default=["engine", "pandas"], choices=["engine", "pandas"])
    parser.add_argument("--child", choices=["engine", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.file, args.rows)
        return 0
    if args.quick:
        args.sizes, args.repeats = [2_000], 1
        args.tools = [t for t in args.tools if t != "pandas" or pandas_installed()]
    print(
        f"{'rows':>10} {'tool':<8} {'median s':>9} {'rows/s':>10} {'peak RSS MiB':>13} {'matched':>9} {'mismatches':>10}"
    )
    for rows in args.sizes:
        path = generate(rows)
        for tool in args.tools:
            m = measure(tool, path, rows, args.repeats)
            print(
                f"{rows:>10} {tool:<8} {m['seconds']:>9.2f} {m['rows_per_s']:>10,.0f} {m['peak_mib']:>13.0f} {m['matched']:>9} {m['mismatches']:>10}",
                flush=True,
            )
    return 0


def pandas_installed() -> bool:
    """pandas is the bench extra's (``pip install -e '.[bench]'``), not the dev environment's."""
    import importlib.util

    return importlib.util.find_spec("pandas") is not None


if __name__ == "__main__":
    sys.exit(main())
