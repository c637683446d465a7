"""The reconciliation benchmark's baselines answer what the engine answers, on a small generated input.

The benchmark compares ours with pandas, polars and duckdb only if the four do the same work: these tests run
each baseline in this process on one generated day (4,000 charges) and check its counts and totals against the
engine of ``payments.reconciliation`` reading the same file and the same ledger rows; and that the bench's check
catches a baseline that answers differently (a join gone wrong), loudly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payments_dev.bench import bench_reconcile as bench
from payments_dev.bench import recon_inputs

pytest.importorskip("pandas", reason="the bench extra: pip install -e '.[bench]'")
pytest.importorskip("polars", reason="the bench extra: pip install -e '.[bench]'")
pytest.importorskip("pyarrow", reason="the bench extra: pip install -e '.[bench]'")

CHARGES = 4_000


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> recon_inputs.Inputs:
    return recon_inputs.ensure(tmp_path_factory.mktemp("recon"), CHARGES, seed=3)


def engine_outcome(inputs: recon_inputs.Inputs) -> dict:
    """The engine of the product (the sorted-merge join) over the file, the ledger copy's rows in memory."""
    import duckdb

    from payments.reconciliation import engine
    from payments.reconciliation.lines import LineReader
    from payments.reconciliation.model import Bounds
    from payments.reconciliation.sources import InMemoryLedgerSource, LedgerAdjustment, LedgerEntry

    files = ", ".join(f"'{p}'" for p in inputs.ledger)
    with duckdb.connect(":memory:") as con:
        cursor = con.execute(f"SELECT DISTINCT ON (txn_id) * FROM read_parquet([{files}])")  # noqa: S608
        names = [d[0] for d in cursor.description]
        items = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    entries = [LedgerEntry.from_item(i) for i in items if i["kind"] == "PAYIN"]
    adjustments = [a for a in (LedgerAdjustment.from_item(i) for i in items) if a is not None]
    ledger = InMemoryLedgerSource(entries, adjustments)
    bounds = Bounds(max_file_bytes=inputs.settlement.stat().st_size + 1)
    with open(inputs.settlement, "rb") as handle:
        reader = LineReader(handle, bounds.max_line_bytes)
        result = engine.reconcile_adyen(iter(reader), lambda: reader.ended_with_newline, ledger, bounds)
    assert not result.rejected and not result.mismatches_omitted
    kinds: dict[str, int] = {}
    for mismatch in result.mismatches:
        kinds[str(mismatch.kind)] = kinds.get(str(mismatch.kind), 0) + 1
    return bench.outcome(result.rows, result.recorded, result.matched, kinds, result.totals)


def test_the_vocabulary_is_the_engines() -> None:
    # Given the constants the baselines carry (so that a measured child imports nothing of ours)
    from payments.reconciliation import adyen, engine, model, sources

    # Then they are the engine's
    assert set(bench.KINDS) == {str(k) for k in model.MismatchKind}
    assert set(bench.SETTLED) == adyen.PAYMENT_TYPES
    assert bench.ADJUSTMENT_KINDS == adyen.MATCHED_ADJUSTMENTS
    assert set(bench.ACCOUNT_TYPES) == adyen.ACCOUNT_TYPES
    assert set(bench.CREDIT_ADJUSTMENTS) == set(adyen.MATCHED_ADJUSTMENTS) - adyen.DEBIT_ADJUSTMENTS
    assert bench.TOTAL_FIELDS == engine.TOTAL_FIELDS
    assert {k: v for k, v in adyen.ABBREVIATIONS.items() if k in bench.ZONE_OFFSETS} == bench.ZONE_OFFSETS
    assert {v: k for k, v in sources.RECORD_TYPE_OF_KIND.items()} == bench.ADJUSTMENT_KINDS


def test_the_generated_day_has_every_kind_of_difference(inputs: recon_inputs.Inputs) -> None:
    # Given the engine's answer on the generated day
    got = engine_outcome(inputs)
    # Then every mismatch kind is there, as the generator's table says (2 charges per slot at 4,000 charges;
    # 10 refunds, 8 chargebacks, 2 reversals, 1 carry-over row)
    assert got["kinds"] == {
        "MISSING_IN_LEDGER": 2 + 2 + 1,  # never booked; booked under another order; a refund never booked
        "MISSING_IN_SETTLEMENT": 4 + 1 + 1,  # two slots; a refund and a chargeback booked, not in the file
        "AMOUNT_MISMATCH": 2 + 1,  # a slot; a refund booked with another amount
        "CURRENCY_MISMATCH": 2,
        "DUPLICATE_IN_SETTLEMENT": 4 + 1,  # two slots of repeated rows; a repeated refund row
    }
    assert got["recorded"] == 9  # 6 fees and 3 payouts
    assert set(got["totals"]) == {"EUR", "GBP", "USD"}
    assert got["rows"] == inputs.rows


@pytest.mark.parametrize("name", bench.BASELINES)
def test_each_baseline_answers_what_the_engine_answers(
    name: str, inputs: recon_inputs.Inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the engine's answer on the generated day
    expected = engine_outcome(inputs)
    # When a baseline reads the same file and ledger copy
    monkeypatch.setenv("POLARS_MAX_THREADS", "1")
    got = bench.CONTENDER_FUNCTIONS[name](inputs.settlement, inputs.ledger, tmp_path)
    # Then its counts and totals are the engine's, to the minor unit
    assert bench.compare({"engine": expected, name: got}) == []
    assert got == expected


def test_a_baseline_with_a_wrong_join_is_caught(
    inputs: recon_inputs.Inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pandas baseline whose charge join ignores the currency (a plausible slip)
    good = bench.run_pandas(inputs.settlement, inputs.ledger, tmp_path)
    original = bench._pandas_compare

    def wrong(pairs, kinds):  # type: ignore[no-untyped-def]
        return original(pairs.assign(currency=pairs["gccy"]), kinds)

    monkeypatch.setattr(bench, "_pandas_compare", wrong)
    broken = bench.run_pandas(inputs.settlement, inputs.ledger, tmp_path)
    # When the bench compares the answers
    problems = bench.compare({"pandas": good, "broken pandas": broken})
    # Then it names the figures that differ
    assert "broken pandas matched 4007 != pandas matched 4005" in problems
    assert "broken pandas CURRENCY_MISMATCH 0 != pandas CURRENCY_MISMATCH 2" in problems


def test_the_bench_fails_when_the_contenders_disagree(
    inputs: recon_inputs.Inputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run whose duckdb child answers one matched row too many
    real = bench.measure

    def measured(name: str, folder: Path) -> dict:
        got = real(name, folder)
        if name == "duckdb":
            got["outcome"]["matched"] += 1
        return got

    monkeypatch.setattr(bench, "measure", measured)
    monkeypatch.setattr(bench, "generate", lambda charges, seed, out: inputs.settlement.parent)
    # When the bench runs pandas and duckdb
    status = bench.main(["--sizes", str(CHARGES), "--repeats", "1", "--contenders", "pandas", "duckdb"])
    # Then it exits non-zero
    assert status == 1


def test_the_bench_says_when_ours_is_missing(
    inputs: recon_inputs.Inputs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a run of ours where the function cannot be imported
    monkeypatch.setattr(
        bench, "measure", lambda name, folder: {"not_available": "ImportError: cannot import name 'reconcile_local'"}
    )
    monkeypatch.setattr(bench, "generate", lambda charges, seed, out: inputs.settlement.parent)
    # When the bench runs
    status = bench.main(["--sizes", str(CHARGES), "--repeats", "1", "--contenders", "ours"])
    # Then it says so plainly and fails, and the targets are not claimed
    out = capsys.readouterr().out
    assert status == 1
    assert "ours: not available (ImportError: cannot import name 'reconcile_local')" in out


def test_a_baseline_out_of_its_memory_limit_is_its_row_and_ours_out_of_memory_fails(
    inputs: recon_inputs.Inputs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given contenders that run out of the memory duckdb was limited to (duckdb-200MB did at 10M rows)
    import duckdb

    def exhausted(settlement: Path, ledger: list[Path], work: Path) -> dict:
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 4.0 MiB\nmore")

    monkeypatch.setitem(bench.CONTENDER_FUNCTIONS, "duckdb-200MB", exhausted)
    monkeypatch.setitem(bench.CONTENDER_FUNCTIONS, "ours", exhausted)
    # When the measured child runs each: the baseline's answer is that it ran out, said on one line
    assert bench.child("duckdb-200MB", inputs.settlement.parent) == bench.OUT_OF_MEMORY
    said = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(said) == {
        "out_of_memory": "OutOfMemoryException: Out of Memory Error: failed to allocate data of size 4.0 MiB"
    }
    # and ours running out is a failure of the run, not a row
    with pytest.raises(duckdb.OutOfMemoryException):
        bench.child("ours", inputs.settlement.parent)
    # When the bench gets that answer beside a baseline that answers
    real = bench.measure
    monkeypatch.setattr(
        bench, "measure", lambda name, folder: json.loads(said) if name == "duckdb-200MB" else real(name, folder)
    )
    monkeypatch.setattr(bench, "generate", lambda charges, seed, out: inputs.settlement.parent)
    status = bench.main(["--sizes", str(CHARGES), "--repeats", "1", "--contenders", "duckdb", "duckdb-200MB"])
    # Then the run holds (nothing disagrees, nothing is missing) and the baseline's row says what happened
    out = capsys.readouterr().out
    assert status == 0
    assert "| duckdb-200MB | out of memory at its limit (OutOfMemoryException: Out of Memory Error:" in out


def test_the_inputs_are_the_same_for_the_same_seed(tmp_path: Path) -> None:
    # Given the inputs of one size written twice with one seed, and once with another
    first = recon_inputs.ensure(tmp_path / "a", 2_000, seed=5)
    again = recon_inputs.ensure(tmp_path / "b", 2_000, seed=5)
    other = recon_inputs.ensure(tmp_path / "c", 2_000, seed=6)
    # Then the same seed gives the same bytes (file and every Parquet object), another seed another file
    assert first.settlement.read_bytes() == again.settlement.read_bytes()
    assert [p.relative_to(tmp_path / "a") for p in first.ledger] == [
        p.relative_to(tmp_path / "b") for p in again.ledger
    ]
    for mine, theirs in zip(first.ledger, again.ledger, strict=True):
        assert mine.read_bytes() == theirs.read_bytes()
    assert other.settlement.read_bytes() != first.settlement.read_bytes()
    assert first.rows == other.rows
