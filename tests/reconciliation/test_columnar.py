"""The matching's SQL (payments/reconciliation/sql/*.sql): one source for duckdb, which runs it here, and
Athena (Trino), which cannot run here: every statement must parse as duckdb and transpile to Trino. And
``reconcile_local``: a settlement file and Parquet objects of the ledger's copy in, the result out, no AWS."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from payments.reconciliation import adyen, columnar, lake
from payments.reconciliation.sources import InMemoryLedgerSource, LedgerEntry

DAY = "2026-11-30"


@pytest.mark.parametrize("name", list(columnar.statements()))
def test_each_statement_parses_as_duckdb_and_transpiles_to_trino(name: str) -> None:
    sql = columnar.statements()[name]
    # Given a statement, When it is parsed as duckdb and written as Trino, with any unsupported construct an error
    (parsed,) = sqlglot.parse(sql, read="duckdb", error_level=ErrorLevel.RAISE)
    assert parsed is not None
    (trino,) = sqlglot.transpile(sql, read="duckdb", write="trino", unsupported_level=ErrorLevel.RAISE)
    # Then the Trino text parses back as Trino, and names the same tables
    again = sqlglot.parse_one(trino, read="trino")
    tables = {t.name for t in parsed.find_all(sqlglot.exp.Table)}
    assert {t.name for t in again.find_all(sqlglot.exp.Table)} == tables


def test_every_sql_file_beside_the_runner_is_run() -> None:
    # Given the .sql files shipped with the package
    shipped = sorted(p.name for p in (Path(columnar.__file__).parent / "sql").glob("*.sql"))
    # Then the runner loads each of them (a file it does not name would be dead SQL, untested)
    assert sorted(columnar.SQL_FILES) == shipped


def test_the_matching_runs_every_statement_of_the_file_and_no_other() -> None:
    # Given the statements the SQL file names, and those the runner executes
    source = Path(columnar.__file__).read_text(encoding="utf-8")
    used = set(re.findall(r'query\("([a-z_]+)"', source)) | set(columnar.TABLES)
    # Then they are the same: no SQL is written inline beside the file, none of the file is dead
    assert used == set(columnar.statements())


def charge(ref: str, order: str, amount: int, at: str = f"{DAY}T10:00:00.000Z", ccy: str = "EUR") -> dict[str, Any]:
    return {
        "psp_reference": ref,
        "merchant_reference": order,
        "amount_minor": amount,
        "currency": ccy,
        "charged_at": at,
    }


def txn(
    ref: str, order: str, amount: int, at: str = f"{DAY}T10:00:00.000Z", ccy: str = "EUR", seller: str = "s1"
) -> dict[str, Any]:
    return {
        "sk": "TXN",
        "txn_id": f"payin:{order}",
        "kind": "PAYIN",
        "payment_order_id": order,
        "psp_reference": ref,
        "seller_account": seller,
        "currency": ccy,
        "amount_minor": amount,
        "commission_minor": 0,
        "settlement_day": f"adyen#{at[:10]}",
        "charged_at": at,
        "booked_at": at,
    }


CHARGES = [
    charge("P1", "po_1", 100),
    charge("P2", "po_2", 200),  # amount differs in the ledger
    charge("P3", "po_3", 300, ccy="USD"),  # currency differs
    charge("P4", "po_x", 400),  # the ledger has P4 under another order
    charge("P1", "po_1", 100),  # an identical duplicate
    charge("P1", "po_1", 101),  # a conflicting one
    charge("P7", "po_7", 700, at="2026-11-29T09:00:00.000Z"),  # a late settlement of the day before
    charge("P8", "po_8", 800),  # never booked
]
LEDGER = [
    txn("P1", "po_1", 100),
    txn("P2", "po_2", 250),
    txn("P3", "po_3", 300),
    txn("P4", "po_4", 400),
    txn("P5", "po_5", 500),  # not settled
    txn("P6", "po_6", 600, at=f"{DAY}T23:45:00.000Z", seller="s2"),  # not settled, charged near midnight
    txn("P7", "po_7", 700, at="2026-11-29T09:00:00.000Z"),
]


def write(tmp: Path, psp: str = "adyen") -> tuple[Path, list[Path]]:
    out = io.StringIO()
    adyen.write_report(CHARGES, DAY, out)
    settlement = tmp / f"{DAY}.csv"
    settlement.write_text(out.getvalue(), encoding="utf-8")
    objects: list[Path] = []
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for item in LEDGER:
        partition = lake.partition_of(item)
        assert partition is not None
        by_partition.setdefault(partition.prefix, []).append(lake.row_of(item))
    for n, (prefix, rows) in enumerate(sorted(by_partition.items())):
        for copy in range(2):  # delivered twice: the copy is at least once
            path = tmp / prefix.replace("psp=adyen", f"psp={psp}") / f"part-{n}-{copy}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(lake.parquet_bytes(rows))
            objects.append(path)
    return settlement, objects


def test_reconcile_local_gives_what_the_in_memory_ledger_gives(tmp_path: Path) -> None:
    # Given a day's file with every outcome, and the ledger's copy as Parquet objects, each delivered twice
    settlement, objects = write(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    # When it is reconciled locally from the copy, and through the engine's in-memory ledger
    result = columnar.reconcile_local(settlement, objects, psp="adyen", work_dir=work, memory_limit="64MB")
    entries = [LedgerEntry.from_item(t) for t in LEDGER]
    expected = columnar.reconcile_local(settlement, [], psp="adyen", work_dir=work)
    assert expected.matched == 0  # no copy: nothing matches
    reader_result = _in_memory(settlement, InMemoryLedgerSource(entries), work)
    # Then both are the same result, with every outcome, and the work directory is left empty
    assert result == reader_result
    assert result.matched == 2 and result.window_day == DAY  # P1 and the late P7
    kinds = sorted((m.kind, m.psp_reference or "") for m in result.mismatches)
    assert kinds == [
        ("AMOUNT_MISMATCH", "P2"),
        ("CURRENCY_MISMATCH", "P3"),
        ("DUPLICATE_IN_SETTLEMENT", "P1"),
        ("DUPLICATE_IN_SETTLEMENT", "P1"),
        ("MISSING_IN_LEDGER", "P4"),
        ("MISSING_IN_LEDGER", "P8"),
        ("MISSING_IN_SETTLEMENT", "P5"),
        ("MISSING_IN_SETTLEMENT", "P6"),
    ]
    rules = {m.psp_reference: m.rule for m in result.mismatches if m.kind == "MISSING_IN_SETTLEMENT"}
    assert rules["P6"].startswith("timing") and rules["P5"].startswith("missing")
    assert result.settled_late == [
        {"psp_reference": "P7", "payment_order_id": "po_7", "line": 8, "charge_day": "2026-11-29"}
    ]
    assert result.seller_accounts == {("s1", "EUR"), ("s2", "EUR")}
    assert list(work.iterdir()) == []


def test_reconcile_local_keeps_only_the_psp_s_partitions(tmp_path: Path) -> None:
    # Given the copy of another PSP only
    settlement, objects = write(tmp_path, psp="other")
    work = tmp_path / "work"
    work.mkdir()
    # When the file is reconciled for adyen, Then none of the other PSP's charges is read
    result = columnar.reconcile_local(settlement, objects, psp="adyen", work_dir=work)
    assert result.matched == 0
    assert not any(m.kind == "MISSING_IN_SETTLEMENT" for m in result.mismatches)


def _in_memory(settlement: Path, ledger: InMemoryLedgerSource, work: Path) -> Any:
    from payments.reconciliation.lines import LineReader
    from payments.reconciliation.model import Bounds

    with open(settlement, "rb") as stream:
        reader = LineReader(stream, Bounds().max_line_bytes)
        return columnar.reconcile_adyen(
            iter(reader), lambda: reader.ended_with_newline, ledger, Bounds(), DAY, work_dir=work
        )


@pytest.mark.parametrize(
    ("second", "says"),
    [
        (txn("P1", "po_9", 900), "has 2 charges under PSP reference 'P1'"),  # two transactions, one reference
        ({**txn("P1", "po_1", 100), "amount_minor": 999}, "2 differing copies of one transaction"),  # a copy differs
    ],
)
def test_an_ambiguous_copy_of_the_day_stops_the_run_and_says_why(
    tmp_path: Path, second: dict[str, Any], says: str
) -> None:
    from payments.kernel.errors import InvariantViolation

    # Given the day's copy with P1 twice: under two transactions, or as two copies of one that differ
    settlement, _ = write(tmp_path)
    rows = [lake.row_of(txn("P1", "po_1", 100)), lake.row_of(second)]
    copy = tmp_path / "copy" / "part-0.parquet"
    copy.parent.mkdir()
    copy.write_bytes(lake.parquet_bytes(rows))
    work = tmp_path / "work"
    work.mkdir()
    # When it is reconciled, Then no outcome is guessed: the run stops, naming the reference and the case
    with pytest.raises(InvariantViolation, match=re.escape(says)):
        columnar.reconcile_local(settlement, [copy], psp="adyen", work_dir=work)


def test_the_matching_binds_no_parameter_so_neither_pandas_nor_numpy_is_imported(tmp_path: Path) -> None:
    # duckdb's Python binding imports pandas and numpy at a process's first bound parameter, where they are
    # installed (here, as in the bench's process): about 0.6 s of CPU a reconciliation does not need
    pytest.importorskip("pandas", reason="the import to avoid needs pandas installed")
    # Given a day with a carry-over (a point lookup of another day) and paths with a quote in them
    folder = tmp_path / "it's"
    folder.mkdir()
    settlement, objects = write(folder)
    work = folder / "work"
    work.mkdir()
    code = (
        "import json, sys; from pathlib import Path; from payments.reconciliation import columnar; "
        "r = columnar.reconcile_local(Path(sys.argv[1]), [Path(p) for p in sys.argv[3:]], psp='adyen', "
        "work_dir=Path(sys.argv[2])); "
        "print(json.dumps([r.matched, len(r.settled_late), [m for m in ('pandas', 'numpy') if m in sys.modules]]))"
    )
    # When it is reconciled in a fresh interpreter
    done = subprocess.run(
        [sys.executable, "-c", code, str(settlement), str(work), *map(str, objects)],
        capture_output=True,
        text=True,
        check=False,
    )
    # Then it matched as ever, and imported neither
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [2, 1, []]


def test_values_are_written_into_the_sql_as_literals_that_cannot_end_early() -> None:
    assert columnar.literal("2026-11-30") == "'2026-11-30'"
    assert columnar.literal("it's'; DROP TABLE x; --") == "'it''s''; DROP TABLE x; --'"
    assert columnar.literal(10_000) == "10000"
    assert columnar.literal(None) == "NULL"
    assert columnar.literal(["a", "b'c"]) == "['a', 'b''c']"
    with pytest.raises(TypeError):
        columnar.literal(True)


def test_the_function_s_copy_of_a_file_is_removed_once_folded_and_a_caller_s_file_never(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a day's file, and the matching watched for whether the file is still on disk when it starts
    from payments.reconciliation import service
    from payments.reconciliation.model import Bounds

    settlement, _ = write(tmp_path)
    entries = InMemoryLedgerSource([LedgerEntry.from_item(t) for t in LEDGER])
    on_disk: list[list[str]] = []
    real_match = columnar.match

    def match(*args: Any, **kwargs: Any) -> Any:
        on_disk.append(sorted(p.name for p in Path(service.tempfile.gettempdir()).glob("settlement-*/*")))
        return real_match(*args, **kwargs)

    monkeypatch.setattr(columnar, "match", match)
    monkeypatch.setattr(service.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    # When the reconcile function's path copies it to its disk and reconciles the copy
    with open(settlement, "rb") as stream:
        copied = service._reconcile_adyen_spooled(stream, entries, Bounds(), DAY, None)
    # Then the copy was gone before the matching started (the disk holds the file, then the tables, not both)
    assert on_disk == [[]]
    # And a file reconciled where it lies (the CLI's, the bench's) is left in place, with the same result
    work = tmp_path / "work"
    work.mkdir()
    assert columnar.reconcile_adyen_file(settlement, entries, Bounds(), DAY, work_dir=work) == copied
    assert settlement.exists() and len(on_disk) == 2


def test_the_matching_prints_no_progress_bar(tmp_path: Path) -> None:
    # Given the reconciliation's duckdb connection (duckdb's Python client prints a progress bar on stdout for any
    # query past 2 s by default: raw text among the function's JSON log lines)
    from payments.reconciliation.model import Bounds

    con = columnar.connect(tmp_path, Bounds())
    # Then it has the bar off
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    con.close()
