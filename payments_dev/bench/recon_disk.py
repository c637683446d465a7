"""The reconcile function's disk: /tmp at its peak while one invocation holds a whole settlement file.

    .venv/bin/python -m payments_dev.bench.recon_disk [--sizes 1000000 3000000 10000000] [--quick]

Two paths hold a whole file in one function, and the function's ephemeral storage must hold their peak
(``infra/constructs/reconciliation.py`` sizes it from ``payments.reconciliation.model.tmp_peak_bytes``):

* ``single pass`` (files up to ``Bounds.max_single_pass_bytes``): the file copied to /tmp as S3 gives it
  (``service._reconcile_adyen_spooled``, the function's own code), folded by duckdb, the copy removed, matched;
* ``merge`` (the Distributed Map's last step, files up to ``Bounds.athena_above_bytes``): the chunks' Settled rows
  written to /tmp, loaded into duckdb, matched (``chunks.merge_chunks``). The chunks are folded first, outside the
  measurement, and kept in ``payments_dev/bench/out/chunks-<inputs>/`` for the next run.

Each measurement is a fresh interpreter whose temp directory is an empty folder, sampled every 20 ms (allocated
blocks of every file under it): a peak between two samples is missed, so the figure is a floor. The inputs are the
reconciliation bench's (``recon_inputs``: 168-byte rows, the ledger's Parquet read in place, not downloaded).
At 1M charges or more a ratio (peak per byte of file) above the budget in ``payments.reconciliation.model``
fails the run (exit 1): the storage deployed was sized from that budget.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from payments_dev.bench.common import OUT, PYTHON, ROOT

QUICK_CHARGES = 10_000
SEED = 26
PATHS = ("single pass", "merge")
#: below this many charges fixed costs dominate the ratio: it is printed, not held to the budget
BUDGET_FROM_CHARGES = 1_000_000


def budget(path: str) -> float:
    from payments.reconciliation.model import MERGE_TMP_PER_FILE_BYTE, SINGLE_PASS_TMP_PER_FILE_BYTE

    return SINGLE_PASS_TMP_PER_FILE_BYTE if path == "single pass" else MERGE_TMP_PER_FILE_BYTE


class Peak:
    """The most bytes allocated under ``root`` at any sample."""

    def __init__(self, root: Path, every_s: float = 0.02):
        self.root, self.every_s, self.bytes = root, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        total = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(OSError):  # removed between the listing and the stat
                    total += os.stat(os.path.join(folder, name)).st_blocks * 512
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.bytes = max(self.bytes, self._size())
            time.sleep(self.every_s)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.bytes = max(self.bytes, self._size())


def child(path: str, inputs_dir: Path, chunks_dir: Path, tmp: Path) -> dict[str, Any]:
    """One measurement, in this (fresh) interpreter: /tmp is ``tmp``."""
    tempfile.tempdir = str(tmp)
    from payments.reconciliation import chunks, columnar, service
    from payments.reconciliation.detect import day_hint
    from payments.reconciliation.model import Bounds
    from payments_dev.bench.recon_inputs import Inputs

    inputs = Inputs.load(inputs_dir)
    files = list(inputs.ledger)
    ledger = columnar.ParquetLedger(lambda day: files, lookup_files=lambda: files)
    bounds, hint = Bounds(), day_hint(inputs.settlement.name)
    if path == "single pass":
        with Peak(tmp) as peak, open(inputs.settlement, "rb") as stream:
            started = time.process_time()
            result = service._reconcile_adyen_spooled(stream, ledger, bounds, hint, None)
    else:
        from payments.reconciliation import engine

        plan = _folded_chunks(inputs.settlement, chunks_dir, bounds)
        partials = [
            engine.Partial.from_json(json.loads((chunks_dir / f"{c.index}.json").read_text())) for c in plan.chunks
        ]

        def run(index: int) -> Iterator[engine.SettledEntry]:
            with open(chunks_dir / f"{index}.tsv", encoding="utf-8") as lines:
                for line in lines:
                    yield engine.SettledEntry.from_tsv(line)

        with Peak(tmp) as peak:
            started = time.process_time()
            result = chunks.merge_chunks(partials, [run(c.index) for c in plan.chunks], plan, ledger, bounds, hint)
    cpu = time.process_time() - started
    left = [p.name for p in tmp.iterdir()]
    return {
        "file_bytes": inputs.settlement.stat().st_size,
        "peak_bytes": peak.bytes,
        "cpu_seconds": cpu,
        "matched": result.matched,
        "left_behind": left,
    }


def _folded_chunks(settlement: Path, folder: Path, bounds: Any) -> Any:
    """The Distributed Map's chunks of the file, folded as its map step folds them and kept as it keeps them (a
    partial as JSON, the Settled rows as TSV: ``service.Reconciler.reconcile_chunk``), for the next run too."""
    from payments.reconciliation import chunks

    done = folder / "plan.json"
    if done.exists():
        return chunks.Plan.from_json(json.loads(done.read_text()))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with open(settlement, "rb") as stream:
        plan = chunks.plan_chunks(stream, bounds)
    with open(settlement, "rb") as stream:
        for chunk in plan.chunks:
            stream.seek(chunk.start)
            body = io.BytesIO(stream.read(chunk.end - chunk.start))
            partial, entries = chunks.process_chunk(body, chunk, plan, bounds)
            (folder / f"{chunk.index}.json").write_text(json.dumps(partial.to_json()))
            (folder / f"{chunk.index}.tsv").write_text("".join(e.to_tsv() for e in entries), encoding="utf-8")
    done.write_text(json.dumps(plan.to_json()))
    return plan


def measure(path: str, charges: int, out: Path) -> dict[str, Any]:
    from payments_dev.bench.bench_reconcile import generate

    inputs = generate(charges, SEED, out)
    with tempfile.TemporaryDirectory(prefix="recon-disk-") as tmp:
        code = (
            "import json, sys; from pathlib import Path; from payments_dev.bench import recon_disk as m; "
            "print(json.dumps(m.child(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))))"
        )
        done = subprocess.run(
            [PYTHON, "-c", code, path, str(inputs), str(out / f"chunks-{inputs.name}"), tmp],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{path} at {charges:,} charges failed:\n{done.stderr[-3000:]}")
    return {"path": path, "charges": charges, **json.loads(done.stdout.strip().splitlines()[-1])}


def judge(row: dict[str, Any]) -> tuple[float, str, bool]:
    """A measurement's peak per byte of file, its verdict against the budget, and whether it passes."""
    ratio = row["peak_bytes"] / row["file_bytes"]
    if row["left_behind"]:
        return ratio, f"work left in /tmp: {', '.join(row['left_behind'])}", False
    if row["charges"] < BUDGET_FROM_CHARGES:
        return ratio, "not held to the budget (too small)", True
    within = ratio <= budget(row["path"])
    return ratio, "within the budget" if within else "OVER the budget", within


def report(rows: list[dict[str, Any]]) -> tuple[list[str], bool]:
    lines = [
        "| path | charges | file | /tmp peak | per byte of file | budget | CPU | left in /tmp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ok = True
    for row in rows:
        ratio, verdict, passed = judge(row)
        ok &= passed
        lines.append(
            f"| {row['path']} | {row['charges']:,} | {row['file_bytes'] / 2**20:,.0f} MiB | "
            f"{row['peak_bytes'] / 2**20:,.0f} MiB | {ratio:.2f} | {budget(row['path']):.2f} ({verdict}) | "
            f"{row['cpu_seconds']:.1f} s | {', '.join(row['left_behind']) or 'nothing'} |"
        )
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CHARGES:,} charges (what CI runs)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    sizes = [QUICK_CHARGES] if args.quick else args.sizes
    out = Path(tempfile.mkdtemp(prefix="recon-disk-quick-")) if args.quick else args.out
    try:
        rows = []
        for charges in sizes:
            for path in args.paths:
                print(f"reconcile /tmp: {path}, {charges:,} charges ...", file=sys.stderr)
                rows.append(measure(path, charges, out))
        lines, ok = report(rows)
    finally:
        if args.quick:
            shutil.rmtree(out, ignore_errors=True)
    print("\n".join(lines))
    if not ok:
        print("FAIL: a peak above its budget (the deployed /tmp was sized from it), or work left behind in /tmp")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
