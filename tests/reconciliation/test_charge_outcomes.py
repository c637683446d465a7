"""``charge_outcomes`` holds every outcome of the charges' join but the matches; the matched count, the sellers the
join met (in the order a bounded three-way check keeps them) and the matched charges (what settles the sellers'
pending money) are derived from ``ledger_day`` and that table (payments/reconciliation/sql/charges.sql).

The reference here is the join's every row, matches included, and the statements that read it (what the SQL did
before it stopped writing the matches): on a generated day with every kind of difference, both agree exactly.
And a statement that runs out of duckdb's memory limit runs again with twice the limit, up to a ceiling."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from payments.reconciliation import columnar, engine, fastfold
from payments.reconciliation.model import Bounds
from payments_dev.bench import recon_inputs

#: the statements as they read the join's every row (each compared here with its successor in charges.sql)
REFERENCE = {
    "matched_count": "SELECT count(*) FROM reference_outcomes WHERE outcome = 'MATCHED'",
    "sellers": """
        SELECT ledger_seller, ledger_currency,
            min(sort_reference || ' ' || CAST(phase AS VARCHAR) || ' ' || lpad(CAST(coalesce(line, 0) AS VARCHAR), 12, '0'))
                AS first_met
        FROM reference_outcomes
        WHERE ledger_reference IS NOT NULL
        GROUP BY ledger_seller, ledger_currency
        ORDER BY first_met
    """,
    "matched_charges": """
        SELECT ledger_order, ledger_seller, ledger_currency, ledger_amount, ledger_commission, ledger_reference,
            ledger_charged_at
        FROM reference_outcomes
        WHERE outcome = 'MATCHED'
    """,
}


def _prepared(tmp_path: Path, seed: int) -> tuple[Any, columnar.Query]:
    inputs = recon_inputs.ensure(tmp_path / "inputs", recon_inputs.PERIOD * 2, seed)
    work = tmp_path / "work"
    work.mkdir()
    bounds = replace(Bounds(), columnar_memory_limit="64MB")
    con = columnar.connect(work, bounds)
    fold = fastfold.fold_file(inputs.settlement, bounds, con, work)
    assert fold is not None
    day = engine.window_day(fold.partial.days, None)
    assert day is not None
    files = [*inputs.ledger, _unsettled(con, inputs.ledger, day, tmp_path / "unsettled.parquet")]
    ledger = columnar.ParquetLedger(lambda day: files, lookup_files=lambda: files)
    query = columnar.prepare(con, None, fold.partial.adjustments, ledger, day, work)
    every_row = columnar.statements()["charge_outcomes"]
    kept = "SELECT * FROM compared WHERE outcome <> 'MATCHED'"
    assert every_row.rstrip().endswith(kept), "charges.sql changed: rewrite the reference"
    every_row = every_row.rstrip()[: -len(kept)] + "SELECT * FROM compared"  # noqa: S608 - the file's own SQL
    con.execute(every_row.replace("CREATE TABLE charge_outcomes AS", "CREATE TABLE reference_outcomes AS", 1))
    return con, query


def _unsettled(con: Any, ledger: list[Path], day: str, path: Path) -> Path:
    """Charges of the day that no row names: two under a reference below every other of its account (a new
    seller's, and one more of the account of the day's first charge: each account then first met in phase 1), and
    one without a PSP reference, met by no reference (MISSING_IN_SETTLEMENT, never a match, no account met)."""
    files = columnar.literal([str(p) for p in ledger])
    con.execute(  # our generated inputs' paths and day
        f"""
        COPY (
            WITH first AS (
                SELECT * FROM read_parquet({files}, union_by_name = true)
                WHERE kind = 'PAYIN' AND charged_at LIKE '{day}%' ORDER BY psp_reference LIMIT 1
            )
            SELECT * REPLACE ('txn_unsettled_1' AS txn_id, 'po_unsettled_1' AS payment_order_id,
                              '0000000000000001' AS psp_reference, 'seller_unsettled' AS seller_account)
            FROM first
            UNION ALL
            SELECT * REPLACE ('txn_unsettled_2' AS txn_id, 'po_unsettled_2' AS payment_order_id,
                              '0000000000000002' AS psp_reference)
            FROM first
            UNION ALL
            SELECT * REPLACE ('txn_unsettled_3' AS txn_id, 'po_unsettled_3' AS payment_order_id,
                              CAST(NULL AS VARCHAR) AS psp_reference, 'seller_without_reference' AS seller_account)
            FROM first
        ) TO {columnar.literal(str(path))} (FORMAT PARQUET)
        """  # noqa: S608
    )
    return path


@pytest.mark.parametrize("seed", [26, 7])
def test_the_matches_derived_from_the_day_equal_the_join_s_own_rows(tmp_path: Path, seed: int) -> None:
    # Given a generated day with every kind of difference, prepared as the function prepares it
    con, query = _prepared(tmp_path, seed)
    kinds = dict(con.execute("SELECT outcome, count(*) FROM reference_outcomes GROUP BY ALL").fetchall())
    assert {"MATCHED", "DUPLICATE", "AMOUNT", "CURRENCY", "CARRIED_OVER", "MISSING_IN_SETTLEMENT"} <= set(kinds)
    # When the statements run
    # Then charge_outcomes holds the join's rows but the matches, and nothing else
    kept = con.execute("SELECT * FROM charge_outcomes EXCEPT ALL SELECT * FROM reference_outcomes").fetchall()
    assert kept == []
    outcomes = dict(con.execute("SELECT outcome, count(*) FROM charge_outcomes GROUP BY ALL").fetchall())
    assert outcomes == {k: n for k, n in kinds.items() if k != "MATCHED"}
    # and the matched count, the sellers in the order they were met, and the matched charges are the reference's
    assert query("matched_count").fetchone() == con.execute(REFERENCE["matched_count"]).fetchone()
    sellers = query("sellers").fetchall()
    assert sellers == con.execute(REFERENCE["sellers"]).fetchall()
    unsettled = [(seller, first_met) for seller, _, first_met in sellers if first_met.split(" ")[1] == "1"]
    assert [key for _, key in unsettled] == ["0000000000000001 1 000000000000", "0000000000000002 1 000000000000"]
    assert unsettled[0][0] == "seller_unsettled" and unsettled[1][0] != "seller_unsettled"
    assert "seller_without_reference" not in {seller for seller, _, _ in sellers}
    missing = con.execute(
        "SELECT count(*) FROM charge_outcomes WHERE outcome = 'MISSING_IN_SETTLEMENT' AND ledger_order = 'po_unsettled_3'"
    )
    assert missing.fetchone() == (1,)
    assert sorted(query("matched_charges").fetchall()) == sorted(con.execute(REFERENCE["matched_charges"]).fetchall())
    con.close()


class _RunsOutOnce:
    """A duckdb connection whose first run of ``statement`` raises duckdb's out-of-memory error, as duckdb does."""

    def __init__(self, con: Any, statement: str, times: int = 1):
        self.con, self.statement, self.times = con, statement, times
        self.runs: list[str] = []

    def execute(self, sql: str) -> Any:
        import duckdb

        self.runs.append(sql)
        if sql == self.statement and self.times:
            self.times -= 1
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 4.0 MiB")
        return self.con.execute(sql)


def test_a_statement_out_of_memory_runs_again_with_twice_the_limit_up_to_the_ceiling() -> None:
    import duckdb

    bounds = replace(Bounds(), columnar_memory_limit="256MB", columnar_memory_ceiling_mb=1024)
    with duckdb.connect(config={"memory_limit": bounds.columnar_memory_limit}) as real:
        # Given a statement that runs out of the limit twice, then completes
        con = _RunsOutOnce(real, "CREATE TABLE t AS SELECT 1 AS x", times=2)
        # When it runs bounded
        columnar.execute_bounded(con, "CREATE TABLE t AS SELECT 1 AS x", bounds, "t")
        # Then it ran three times, at 256, 512 and 1,024 MB, and the raised limit stays
        assert [r for r in con.runs if r.startswith("SET")] == [
            "SET memory_limit = '512MB'",
            "SET memory_limit = '1024MB'",
        ]
        assert real.execute("SELECT x FROM t").fetchall() == [(1,)]
        assert abs(columnar.memory_limit_bytes(real) - 1024 * 10**6) < 2**20  # duckdb answers '976.5 MiB'
        # and a statement that runs out at the ceiling is the caller's error: never a limit above it
        con = _RunsOutOnce(real, "SELECT 2", times=5)
        with pytest.raises(duckdb.OutOfMemoryException):
            columnar.execute_bounded(con, "SELECT 2", bounds, "two")
        assert [r for r in con.runs if r.startswith("SET")] == []
