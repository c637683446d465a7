"""Split / per-chunk / merge equals the single pass, in pure functions and through S3 and the handler."""

from __future__ import annotations

import io
import random
from pathlib import Path

from functions.reconcile.handler import handler as reconcile_handler
from payments.reconciliation import adyen, chunks, engine
from payments.reconciliation.lines import LineReader
from payments.reconciliation.model import Bounds
from payments.reconciliation.service import Reconciler
from payments.reconciliation.sources import InMemoryLedgerSource, LedgerEntry
from tests.reconciliation.conftest import Aws, Context

DAY = "2026-11-30"


def day_file(rows: int, seed: int = 7) -> tuple[bytes, list[LedgerEntry]]:
    """A day's report and a ledger that differs from it in every way the engine knows."""
    rng = random.Random(seed)
    charges, ledger = [], []
    for i in range(rows):
        ref, order = f"psp_{rng.getrandbits(64):016x}", f"po_{i:06d}"
        amount = rng.randint(100, 50_000)
        charged_at = f"{DAY}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.000Z"
        charges.append(
            {
                "psp_reference": ref,
                "merchant_reference": order,
                "amount_minor": amount,
                "currency": "USD",
                "charged_at": charged_at,
            }
        )
        if i % 97 == 1:
            continue  # missing in ledger
        ledger.append(
            LedgerEntry(ref, order, f"seller_{i % 13}", "USD", amount + (1 if i % 89 == 3 else 0), charged_at)
        )
    ledger.append(LedgerEntry("psp_zzzz0000000001", "po_only_ledger", "seller_1", "USD", 1234, f"{DAY}T12:00:00.000Z"))
    out = io.StringIO()
    adyen.write_report(charges + charges[5:9], DAY, out)  # duplicates
    body = out.getvalue() + "broken,row\n"
    return body.encode(), ledger


def single_pass(body: bytes, ledger: InMemoryLedgerSource, bounds: Bounds) -> engine.Result:
    reader = LineReader(io.BytesIO(body), bounds.max_line_bytes)
    return engine.reconcile_adyen(iter(reader), lambda: reader.ended_with_newline, ledger, bounds)


def test_chunks_cut_at_line_boundaries_and_keep_line_numbers() -> None:
    # Given a file
    body, _ = day_file(300)
    # When it is planned in 2 KiB chunks
    plan = chunks.plan_chunks(io.BytesIO(body), Bounds(chunk_bytes=2048))
    # Then the chunks tile the file after the header, each starting a line, with its line number
    assert plan.chunks[0].start == body.index(b"\n") + 1 and plan.chunks[-1].end == len(body)
    for previous, chunk in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert chunk.start == previous.end and body[chunk.start - 1 : chunk.start] == b"\n"
        assert chunk.first_line == body[: chunk.start].count(b"\n") + 1
    assert len(plan.chunks) > 20 and plan.header.startswith("Company Account,")


def test_merging_n_chunks_equals_the_single_pass() -> None:
    # Given a file with every kind of mismatch, and its ledger
    body, entries = day_file(3000)
    ledger = InMemoryLedgerSource(entries)
    bounds = Bounds(chunk_bytes=16 * 1024)  # many chunks
    # When it is reconciled in one pass, and split, processed per chunk and merged
    expected = single_pass(body, ledger, bounds)
    plan = chunks.plan_chunks(io.BytesIO(body), bounds)
    pieces = [chunks.process_chunk(io.BytesIO(body[c.start : c.end]), c, plan, bounds) for c in plan.chunks]
    merged = chunks.merge_chunks([p for p, _ in pieces], [run for _, run in pieces], plan, ledger, bounds)
    # Then the results are equal, field by field
    assert len(plan.chunks) > 10
    assert merged == expected
    kinds = {m.kind for m in expected.mismatches}
    assert kinds == {"MISSING_IN_LEDGER", "MISSING_IN_SETTLEMENT", "AMOUNT_MISMATCH", "DUPLICATE_IN_SETTLEMENT"}
    assert [r.line for r in expected.rejected] == [body.count(b"\n")]


def test_the_distributed_steps_through_s3_give_the_single_pass_report(cloud: Aws) -> None:
    # Given a file in the bucket and a ledger
    body, entries = day_file(1500)
    key = f"incoming/adyen/{DAY}.csv"
    cloud.put(key, body)
    ledger = InMemoryLedgerSource(entries)
    bounds = Bounds(chunk_bytes=8 * 1024)
    reconciler = Reconciler(ledger=ledger, bounds=bounds)
    # When the state machine's three tasks run (plan, every chunk, merge)
    plan = reconciler.plan(key)
    results = [reconciler.reconcile_chunk(key, plan, chunk) for chunk in plan["chunks"]]
    outcome = reconciler.merge_chunks(key, plan, results)
    distributed = cloud.get(f"reports/{key}.json")
    # Then its report is byte for byte the single pass's, and the work files are gone
    single = reconciler.reconcile_object(key)
    assert outcome["status"] == single.status == "RECONCILED"
    assert cloud.get(f"reports/{key}.json") == distributed
    assert cloud.s3.list_objects_v2(Bucket=cloud.bucket, Prefix="work/").get("KeyCount", 0) == 0


def test_the_handler_dispatches_the_state_machine_actions(cloud: Aws) -> None:
    # Given an unreadable file and the state machine's first task
    cloud.put("incoming/adyen/x.csv", b"\x00\x01garbage")
    # When PlanChunks runs on it
    plan = reconcile_handler(
        {"action": "plan_chunks", "bucket": cloud.bucket, "key": "incoming/adyen/x.csv"}, Context()
    )
    # Then it is quarantined there, and MergeChunks passes the outcome through
    assert plan["quarantined"] is True and plan["chunks"] == []
    merged = reconcile_handler(
        {"action": "merge_chunks", "bucket": cloud.bucket, "key": "incoming/adyen/x.csv", "plan": plan, "chunks": []},
        Context(),
    )
    assert merged["status"] == "QUARANTINED"


def test_a_large_merge_matches_in_a_database_file_and_drops_its_rows_file(monkeypatch, tmp_path) -> None:
    # Given a file whose Settled rows, once the chunks are merged, pass the in-memory bound (shrunk to 1 byte)
    from payments.reconciliation import columnar

    body, entries = day_file(3000)
    ledger = InMemoryLedgerSource(entries)
    bounds = Bounds(chunk_bytes=16 * 1024)
    plan = chunks.plan_chunks(io.BytesIO(body), bounds)
    pieces = [chunks.process_chunk(io.BytesIO(body[c.start : c.end]), c, plan, bounds) for c in plan.chunks]
    expected = chunks.merge_chunks([p for p, _ in pieces], [run for _, run in pieces], plan, ledger, bounds)
    monkeypatch.setattr(columnar, "IN_MEMORY_MAX_ENTRY_BYTES", 1)
    seen: list[tuple[list[str], bool]] = []
    real_prepare = columnar.prepare

    def prepare(con, rows, *args):  # type: ignore[no-untyped-def]
        query = real_prepare(con, rows, *args)
        work = next(arg for arg in args if isinstance(arg, Path))  # the work directory
        seen.append((sorted(p.name for p in work.iterdir()), con.execute("PRAGMA database_list").fetchall()[0][2]))
        return query

    monkeypatch.setattr(columnar, "prepare", prepare)
    # When they are merged again
    merged = chunks.merge_chunks(
        [p for p, _ in pieces], [run for _, run in pieces], plan, ledger, bounds, work_dir=tmp_path
    )
    # Then the matching ran in a database file (duckdb compresses its tables there, where it writes an in-memory
    # database's blocks to its spill as they are), the rows' file was read once and removed, and nothing changed
    ((files, database),) = seen
    assert database and database.endswith("reconcile.duckdb") and "settled.tsv" not in files
    assert merged == expected
    assert list(tmp_path.iterdir()) == []  # the work folder is gone with the merge
