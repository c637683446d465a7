"""The SQL fold (duckdb reads the file; only the lines it cannot judge reach our reader) gives exactly what our
reader gives line by line: on every quirk, on the rows SQL converts itself (zones, decimals, dates), on seeded
mutations, and with the line numbers of a file larger than duckdb's read buffers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from payments.kernel.config import reset_settings
from payments.reconciliation import adyen, columnar, engine, fastfold
from payments.reconciliation.lines import LineReader
from payments.reconciliation.model import UnreadableFile
from payments.reconciliation.sources import InMemoryLedgerSource
from tests.reconciliation.test_fold import BOUNDS, HEADER, LEDGER, QUIRKS, row

#: rows SQL takes or hands over beside the batched path's quirks: zones it converts, decimals, dates
SQL_QUIRKS = [
    row(psp="psp_0101", order="po_0101", zone="CEST"),
    row(psp="psp_0102", order="po_0102", zone="AEDT", created="2026-11-30 08:00:00"),
    row(psp="psp_0103", order="po_0103", zone="PDT", created="2026-11-30 20:00:00"),
    row(psp="psp_0104", order="po_0104", zone="GMT"),
    row(psp="psp_0105", order="po_0105", zone="CET", created="2026-02-30 10:00:00"),  # no such day
    row(psp="psp_0106", order="po_0106", zone="CET", created="2026-11-30 24:00:00"),
    row(psp="psp_0107", order="po_0107", zone="UTC", created="2026-13-45 99:99:99"),  # taken as written (UTC)
    row(psp="psp_0108", order="po_0108", zone="CET", created="0999-11-30 10:00:00"),
    row(psp="psp_0109", order="po_0109", zone="CST"),  # ambiguous: rejected unless the account's zone is set
    row(psp="psp_0110", order="po_0110", zone="America/Chicago"),
    row(psp="psp_0111", order="po_0111", zone=" CET"),
    row(psp="psp_0112", order="po_0112", gross_credit="12"),
    row(psp="psp_0113", order="po_0113", gross_credit="12.3", net_credit="12"),
    row(psp="psp_0114", order="po_0114", gross_credit="0012.34"),
    row(psp="psp_0115", order="po_0115", gross_credit="12.340"),  # a zero beyond the decimals
    row(psp="psp_0116", order="po_0116", gross_credit="."),
    row(psp="psp_0117", order="po_0117", gross_credit="1e3"),
    row(psp="psp_0118", order="po_0118", gross_credit="12345678901234567.00"),  # 17 digits
    row(psp="psp_0119", order="po_0119", gross_ccy="JPY", net_ccy="JPY", gross_credit="1234", net_credit="1100"),
    row(psp="psp_0120", order="po_0120", gross_ccy="JPY", net_ccy="JPY", gross_credit="1234.5", net_credit="1100"),
    row(psp="psp_0121", order="po_0121", gross_ccy="KWD", net_ccy="KWD", gross_credit="1.234", net_credit="1.1"),
    row(psp="psp_0122", order="po_0122", gross_ccy="IDR", net_ccy="IDR", gross_credit="10000", net_credit="9000"),
    row(psp="psp_0123", order="po_0123", gross_ccy="CLP", net_ccy="CLP", gross_credit="5000.00", net_credit="4871.25"),
    row(psp="psp_0124", order="po_0124", gross_ccy="CVE", net_ccy="CVE", gross_credit="100", net_credit="90"),
    row(psp="psp_0125", order="po_0125", gross_ccy="USD", net_ccy="EUR", net_credit="10.00", commission="0.20"),
    row(psp="psp:0126.a", order="po-0126_b"),
    row(psp="p" * 81, order="po_0127"),
    row(psp="psp_0128", order="_po_0128"),
    row(psp="psp_0129", order="po_0129", gross_credit="١٢.٣٤"),  # digits that are not ASCII
    row(psp="psp_0130", order="po_0130", type="settled"),
    row(psp="psp_0131", order="po_0131", type=" Settled"),
    row(psp="psp_0132", order="po_0132", net_credit="-1.00"),
    row(psp="psp_0133", order="po_0133", method="a\x1fb"),
]


def python_fold(path: Path) -> object:
    """Our reader, line by line (a generator: not even the batched path)."""
    with open(path, "rb") as stream:
        reader = LineReader(stream, BOUNDS.max_line_bytes)
        try:
            return columnar.reconcile_adyen(
                (line for line in reader), lambda: reader.ended_with_newline, InMemoryLedgerSource(LEDGER), BOUNDS
            )
        except UnreadableFile as err:
            return f"unreadable: {err}"


def sql_fold(path: Path, tmp_path: Path) -> object:
    try:
        return columnar.reconcile_adyen_file(path, InMemoryLedgerSource(LEDGER), BOUNDS, work_dir=tmp_path)
    except UnreadableFile as err:
        return f"unreadable: {err}"


def fast_rows(path: Path, tmp_path: Path) -> int | None:
    """How many rows SQL folded itself (None: the file was left to our reader)."""
    con = columnar.connect(tmp_path, BOUNDS)
    try:
        fold = fastfold.fold_file(path, BOUNDS, con, tmp_path)
        return None if fold is None else fold.fast_rows
    finally:
        con.close()


def write(tmp_path: Path, body: bytes, name: str = "settlement.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


def test_every_quirk_ends_as_our_reader_ends_it(tmp_path: Path) -> None:
    # Given a file holding every kind of row our reader judges, and the rows SQL converts itself
    path = write(tmp_path, (HEADER + "\n" + "\n".join(QUIRKS + SQL_QUIRKS) + "\n").encode())
    # When it is reconciled through SQL and line by line through our reader
    sql, python = sql_fold(path, tmp_path), python_fold(path)
    # Then the results are equal, SQL folded rows itself, and the quirks were exercised
    assert isinstance(sql, engine.Result) and sql == python
    assert (fast_rows(path, tmp_path) or 0) >= 10
    assert sql.matched >= 1 and len(sql.rejected) >= 15 and sql.recorded == 2


def test_a_configured_account_zone_leaves_its_abbreviations_to_our_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    # Given the account's report zone is set (abbreviations are then checked against it, DST included)
    monkeypatch.setenv(adyen.ZONE_ENV, "America/Chicago")
    reset_settings()
    rows = [*SQL_QUIRKS, row(psp="psp_0201", order="po_0201", zone="CST", created="2026-01-15 10:00:00")]
    path = write(tmp_path, (HEADER + "\n" + "\n".join(rows) + "\n").encode())
    # When / Then
    sql = sql_fold(path, tmp_path)
    assert isinstance(sql, engine.Result) and sql == python_fold(path)
    assert not any(r.line == len(rows) + 1 for r in sql.rejected)  # CST read as US Central


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (HEADER + "\r\n" + QUIRKS[0] + "\r\n", "a carriage return"),
        ("\ufeff" + HEADER + "\n" + QUIRKS[0] + "\n", "a Byte Order Mark"),
        ("\n" + HEADER + "\n" + QUIRKS[0] + "\n", "the header on line 2"),
        (HEADER + "\n" + QUIRKS[0] + "\x00\n", "a NUL byte"),
        (HEADER + "\n" + QUIRKS[0] + "\n" + "x" * 3_000_000 + "\n", "a line beyond duckdb's own bound"),
        (
            HEADER + "," + "x" * (len(HEADER) % 2) + "é" * 300 + "\n" + QUIRKS[0] + "\n",
            "a long header, cut in a character",
        ),
        (
            HEADER + "," + "x" * (1 - len(HEADER) % 2) + "é" * 300 + "\n" + QUIRKS[0] + "\n",
            "a long header, cut between",
        ),
    ],
)
def test_a_file_sql_cannot_number_is_left_to_our_reader(tmp_path: Path, body: str, why: str) -> None:
    # Given a file whose lines SQL would not number as our reader does
    path = write(tmp_path, body.encode())
    # When / Then SQL leaves it whole to our reader, and the result is our reader's
    assert fast_rows(path, tmp_path) is None, why
    assert sql_fold(path, tmp_path) == python_fold(path)


def test_text_that_is_not_utf8_is_left_to_our_reader(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + "\n" + QUIRKS[0] + "\n").encode() + b"\xff\xfe,broken\n")
    assert fast_rows(path, tmp_path) is None
    sql = sql_fold(path, tmp_path)
    assert sql == python_fold(path) and isinstance(sql, str) and sql.startswith("unreadable: not utf-8")


@pytest.mark.parametrize("seed", range(60))
def test_mutated_files_end_as_our_reader_ends_them(tmp_path: Path, seed: int) -> None:
    # Given a seeded mutation of the quirks file: lines shuffled, duplicated, cut, bytes replaced
    rng = random.Random(seed)
    pool = QUIRKS[:2] * 8 + QUIRKS + SQL_QUIRKS
    picked = [rng.choice(pool) for _ in range(rng.randint(0, 60))]
    text = HEADER + "\n" + "\n".join(picked) + rng.choice(["\n", "", "\n\n"])
    data = bytearray(text.encode())
    for _ in range(rng.randint(0, 8)):
        at = rng.randrange(len(HEADER) + 1, len(data)) if len(data) > len(HEADER) + 1 else None
        if at is None:
            break
        choice = rng.random()
        if choice < 0.5:
            data[at] = rng.choice(b',"\n =+-@ .0123456789aZ\t:_')
        elif choice < 0.8:
            del data[at : at + rng.randint(1, 30)]
        else:
            data[at:at] = data[at : at + rng.randint(1, 200)]
    path = write(tmp_path, bytes(data))
    # When / Then both end the same (the same result, or the same reason to quarantine)
    assert sql_fold(path, tmp_path) == python_fold(path)


def test_line_numbers_hold_across_duckdb_read_buffers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a file of many buffers (small ones here) with blank lines, rejected rows and overlong lines spread
    monkeypatch.setattr(fastfold, "READ_OPTIONS", "buffer_size = 4096, max_line_size = 2048")
    rng = random.Random(7)
    lines = []
    for i in range(3000):
        pick = rng.random()
        if pick < 0.02:
            lines.append("")
        elif pick < 0.04:
            lines.append("broken,row")
        elif pick < 0.05:
            lines.append("x" * 500)  # longer than the bound (400)
        else:
            lines.append(row(psp=f"psp_{i:06d}", order=f"po_{i:06d}"))
    path = write(tmp_path, (HEADER + "\n" + "\n".join(lines) + "\n").encode())
    # When / Then every rejected line carries the number our reader gives it
    sql, python = sql_fold(path, tmp_path), python_fold(path)
    assert isinstance(sql, engine.Result) and isinstance(python, engine.Result)
    assert [r.line for r in sql.rejected] == [r.line for r in python.rejected] and len(sql.rejected) > 50
    assert sql == python
    assert (fast_rows(path, tmp_path) or 0) > 2500  # SQL read the buffers: the rows are its own


def test_a_file_above_the_in_memory_bound_is_folded_in_a_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file larger than what is folded in memory (the bound lowered to nothing)
    path = write(tmp_path, (HEADER + "\n" + "\n".join(QUIRKS + SQL_QUIRKS) + "\n").encode())
    in_memory = sql_fold(path, tmp_path)
    monkeypatch.setattr(columnar, "IN_MEMORY_MAX_BYTES", 0)
    opened: list[bool] = []
    connect = columnar.connect

    def spying(work_dir: Path, bounds: object, *, on_disk: bool = False) -> object:
        opened.append(on_disk)
        return connect(work_dir, bounds, on_disk=on_disk)  # type: ignore[arg-type]

    monkeypatch.setattr(columnar, "connect", spying)
    # When it is reconciled / Then in a database file, with the same result
    assert sql_fold(path, tmp_path) == in_memory and opened == [True]
