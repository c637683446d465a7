"""The matching of a settlement file with the ledger on a columnar engine (duckdb).

What is ours stays ours: the format readers and their quirks (:mod:`.adyen`), the fold of every row
into a :class:`~.engine.Partial` (totals, record types, rejected rows), the classification rules
(:mod:`.rules`) and the report. What a library does better is left to it: the sort, the spill to
disk and the join of a day's Settled rows with the ledger's charges of that day are the SQL of
``sql/charges.sql``, run by duckdb with a memory limit and a temporary directory to spill into.
The same SQL is what Athena (Trino) runs when a day outgrows one function (a test transpiles it).

The ledger side is the ledger's analytical copy (:mod:`.lake`): Parquet objects of the window day.
A :class:`LedgerSource` that has no copy (a stage without the lake, the tests' in-memory ledger)
is written into the work directory as rows of the copy's columns first: one engine for both.

Memory: duckdb's ``memory_limit`` (``Bounds.columnar_memory_limit``) plus the interpreter; the rows
go to disk as they are read (one tab-separated line per Settled row, ~80 bytes), and duckdb spills
its sort and join to ``work_dir`` above the limit. One thread by default (``Bounds.columnar_threads``):
the reconcile function has one vCPU.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import IO, Any

from payments.kernel.errors import InvariantViolation
from payments.reconciliation import engine, lake, rules
from payments.reconciliation.detect import ADYEN
from payments.reconciliation.model import DUPLICATE_IN_SETTLEMENT, MISSING_IN_LEDGER, Bounds, Mismatch, UnreadableFile
from payments.reconciliation.sources import (
    RECORD_TYPE_OF_KIND,
    LedgerAdjustment,
    LedgerEntry,
    LedgerSource,
)

#: the settled rows' columns, in the order :class:`EntryFile` writes them
SETTLED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("psp_reference", "VARCHAR"),
    ("line", "BIGINT"),
    ("payment_order_id", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("amount_minor", "BIGINT"),
    ("charged_at", "VARCHAR"),
)
#: rows fetched from duckdb at a time
FETCH_ROWS = 10_000


#: the adjustment rows' columns (:class:`engine.AdjustmentEntry`), what duckdb reads as ``adjusted``
ADJUSTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("record_type", "VARCHAR"),
    ("modification_reference", "VARCHAR"),
    ("line", "BIGINT"),
    ("payment_order_id", "VARCHAR"),
    ("psp_reference", "VARCHAR"),
    ("modification_merchant_reference", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("amount_minor", "BIGINT"),
)
#: the SQL files, in the order a run executes them
SQL_FILES = ("charges.sql", "adjustments.sql")


def literal(value: str | int | Sequence[str] | None) -> str:
    """``value`` as a duckdb SQL literal: a string quoted (quotes doubled), an integer, a list of strings, NULL.

    The reconciliation binds no parameters: duckdb's Python binding imports pandas (and numpy) to convert the
    first parameter of a process, where they are installed, about 0.6 s of CPU for nothing in a 3-second budget.
    The values are ours (a day, a budget, validated references, our work directory's paths)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        raise TypeError("no boolean literal here")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return "[" + ", ".join(literal(str(item)) for item in value) + "]"


@cache
def statements() -> dict[str, str]:
    """The statements of :data:`SQL_FILES` as {name: statement}, in order (each starts with ``-- name: <name>``)."""
    named: dict[str, str] = {}
    for file in SQL_FILES:
        text = resources.files("payments.reconciliation").joinpath(f"sql/{file}").read_text(encoding="utf-8")
        for block in text.split("-- name: ")[1:]:
            name, _, body = block.partition("\n")
            named[name.strip()] = body.strip().rstrip(";")
    return named


class EntryFile:
    """The file's Settled rows (:data:`engine.Entry` tuples) written as they are read, one tab-separated line each:
    what duckdb reads as ``settled``. The references are plain (validated by :mod:`.adyen`): no tab, no quote."""

    def __init__(self, path: Path):
        self.path = path
        self._handle: IO[str] = open(path, "w", encoding="utf-8", newline="\n", buffering=1024 * 1024)  # noqa: SIM115
        self.rows = 0

    def add(self, entry: engine.Entry) -> None:
        self.extend([entry])

    def extend(self, entries: Iterable[engine.Entry] | Iterable[engine.SettledEntry]) -> None:
        lines = [f"{a}\t{b}\t{c}\t{d}\t{e}\t{f}\n" for a, b, c, d, e, f in entries]
        self.rows += len(lines)
        self._handle.write("".join(lines))

    def close(self) -> None:
        self._handle.close()


class ParquetLedger:
    """The ledger as Parquet objects of the analytical copy on local disk (``lake.COLUMNS``, any layout),
    read by duckdb: a :class:`LedgerSource` plus :meth:`parquet_paths`, which the matching reads directly.

    ``files(day)`` gives the objects that hold the day's transactions (a lake download, or every file
    given). Point lookups (a row of another day) search :attr:`lookup_files` unless ``point_lookups``
    (the ledger table, read by key) answers them."""

    def __init__(
        self,
        files: Callable[[str], Sequence[Path]],
        *,
        lookup_files: Callable[[], Sequence[Path]] | None = None,
        point_lookups: LedgerSource | None = None,
    ):
        self._files = files
        self._lookup_files = lookup_files
        self._point_lookups = point_lookups
        self._adjustments: dict[str, dict[str, Any]] | None = None  # txn_id -> the copy's row (lookup files)

    def parquet_paths(self, day: str) -> list[Path]:
        return list(self._files(day))

    def _query(self, paths: Sequence[Path], where: str) -> list[dict[str, Any]]:
        """The copy's rows of ``paths`` that ``where`` (its values as :func:`literal`) keeps, once per transaction."""
        if not paths:
            return []
        import duckdb

        names = [name for name, _ in lake.COLUMNS]
        with duckdb.connect(":memory:", config={"threads": 1}) as con:
            rows = con.execute(
                f"SELECT DISTINCT ON (txn_id) {', '.join(names)} "  # noqa: S608 - literal() values, our column names
                f"FROM read_parquet({literal([str(p) for p in paths])}, union_by_name = true) "
                f"WHERE {where} ORDER BY txn_id"
            ).fetchall()
        return [dict(zip(names, row, strict=True)) for row in rows]

    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        rows = self._query(self.parquet_paths(day), f"kind = 'PAYIN' AND substr(charged_at, 1, 10) = {literal(day)}")
        yield from sorted((_entry(row) for row in rows), key=lambda e: e.psp_reference)

    def day_adjustments(self, day: str) -> Iterator[LedgerAdjustment]:
        kinds = ", ".join(f"'{kind}'" for kind in RECORD_TYPE_OF_KIND)
        where = f"kind IN ({kinds}) AND substr(booked_at, 1, 10) = {literal(day)}"
        for row in self._query(self.parquet_paths(day), where):
            adjustment = LedgerAdjustment.from_item(row)
            if adjustment is not None:
                yield adjustment

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        if self._point_lookups is not None:
            return self._point_lookups.find(payment_order_id)
        return self.find_many([payment_order_id]).get(payment_order_id)

    def find_many(self, payment_order_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """The charges of these orders (one query, where the point lookups are not the table's)."""
        if self._point_lookups is not None:
            found = {order: self._point_lookups.find(order) for order in payment_order_ids}
            return {order: entry for order, entry in found.items() if entry is not None}
        if not payment_order_ids or self._lookup_files is None:
            return {}
        rows = self._query(
            self._lookup_files(),
            # a hash join, not a scan of the list per row
            f"kind = 'PAYIN' AND payment_order_id IN (SELECT unnest(CAST({literal(payment_order_ids)} AS VARCHAR[])))",
        )
        return {row["payment_order_id"]: _entry(row) for row in rows}

    def find_adjustment(self, txn_id: str) -> LedgerAdjustment | None:
        if self._point_lookups is not None:
            return self._point_lookups.find_adjustment(txn_id)
        if self._lookup_files is None:
            return None
        if self._adjustments is None:  # read once: a file's lookups are many, the copy's adjustments few
            kinds = ", ".join(f"'{kind}'" for kind in RECORD_TYPE_OF_KIND)
            rows = self._query(self._lookup_files(), f"kind IN ({kinds})")
            self._adjustments = {row["txn_id"]: row for row in rows}
        row = self._adjustments.get(txn_id)
        return LedgerAdjustment.from_item(row) if row is not None else None


def _entry(row: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry.from_item({**row, "commission_minor": row.get("commission_minor") or 0})


@dataclass
class _Sellers:
    """The (seller, currency) accounts of the three-way check, in the order the merge first meets them, bounded."""

    bound: int
    accounts: set[tuple[str, str]]
    truncated: bool = False

    def note(self, entry: LedgerEntry | LedgerAdjustment) -> None:
        account = (entry.seller_account, entry.currency)
        if account in self.accounts:
            return
        if len(self.accounts) < self.bound:
            self.accounts.add(account)
        else:
            self.truncated = True


#: a settlement file above this many bytes is folded into a database file in the work directory, not in memory.
#: Past the memory limit duckdb writes an in-memory database's blocks to its spill uncompressed, a database file's
#: tables compressed: in memory costs about twice the disk and a third less CPU (3M rows, 504 MiB: 30 s of CPU and
#: 1.9 GiB of /tmp in memory, 43 s and 0.9 GiB in a file; 10M rows: 114 s and 6.4 GiB, 136 s and 3.2 GiB). The
#: bound is the single pass's own (``Bounds.max_single_pass_bytes``): every file a deployed stage reconciles in one
#: pass is matched in memory, and only larger ones (the local runtime, the CLI) trade CPU for disk.
IN_MEMORY_MAX_BYTES = Bounds().max_single_pass_bytes
#: the same choice for the Settled rows our reader wrote (:class:`EntryFile`: the Distributed Map's merge, and a
#: file only our reader numbers): 128 MiB is about 1.6M rows. Every merge of a deployed stage (files above 512 MiB,
#: 3M rows or more) is then matched in a database file: in memory the 10M-row merge took 6.4 GiB of /tmp at its
#: peak (the rows' file, the spilled tables, the sort), in a file 3.3 GiB (docs/capacity.md section 12). A file's
#: string compressions stay on: without them (``disabled_compression_methods = 'fsst,dict_fsst,dictionary'``) the
#: 10M-row merge took 70 s of CPU instead of about 80, but 4.1 GiB of /tmp instead of 2.9, past the budget the
#: deployed storage is sized from (``model.MERGE_TMP_PER_FILE_BYTE``); disabling only some of them saved nothing
#: beyond the noise
IN_MEMORY_MAX_ENTRY_BYTES = 128 * 1024 * 1024


def connect(work_dir: Path, bounds: Bounds, *, on_disk: bool = False) -> Any:
    """A duckdb connection bounded in memory and threads, spilling into ``work_dir`` (``on_disk``: its tables in a
    database file there too)."""
    import duckdb

    spill = work_dir / "spill"
    spill.mkdir(exist_ok=True)
    con = duckdb.connect(
        str(work_dir / "reconcile.duckdb") if on_disk else ":memory:",
        config={
            "memory_limit": bounds.columnar_memory_limit,
            "threads": bounds.columnar_threads,
            "temp_directory": str(spill),
            "preserve_insertion_order": False,
        },
    )
    # duckdb prints a progress bar to stdout for any query past 2 s (on by default in its Python client, and a
    # setting of the connection, not of the database): in the function that is raw text among the JSON log lines,
    # in the bench it broke the children's answers
    con.execute("SET enable_progress_bar = false")
    return con


_MEMORY = re.compile(r"([0-9.]+) (KiB|MiB|GiB|TiB)")
_UNIT = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def memory_limit_bytes(con: Any) -> int:
    """The connection's ``memory_limit`` in bytes (duckdb answers it as text: ``244.1 MiB``)."""
    (text,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    found = _MEMORY.fullmatch(str(text))
    if found is None:
        raise ValueError(f"duckdb's memory_limit is {text!r}, not a size this code reads")
    return int(float(found.group(1)) * _UNIT[found.group(2)])


def execute_bounded(con: Any, sql: str, bounds: Bounds, name: str) -> Any:
    """``con.execute(sql)``; where duckdb runs out of its memory limit, the statement (which duckdb rolled back)
    runs again with twice the limit, up to ``bounds.columnar_memory_ceiling_mb``, each raise logged as a warning;
    past the ceiling the error is the caller's. The raised limit stays for the statements that follow: they
    read the same rows."""
    import duckdb

    while True:
        try:
            return con.execute(sql)
        except duckdb.OutOfMemoryException as exc:
            raised_mb = -(-2 * memory_limit_bytes(con) // 10**6)
            if raised_mb > bounds.columnar_memory_ceiling_mb:
                raise
            from payments.kernel.observability import logger

            logger.warning(
                "reconciliation: duckdb ran out of its memory limit; the statement runs again with twice the limit",
                extra={"statement": name, "memory_limit_mb": raised_mb, "error": str(exc).splitlines()[0]},
            )
            con.execute(f"SET memory_limit = '{raised_mb}MB'")


def _ledger_view(con: Any, ledger: LedgerSource, day: str | None, work_dir: Path) -> None:
    """``ledger_copy``: the lake's Parquet objects of the day, or the source's day written as the copy's rows."""
    columns = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in lake.COLUMNS)
    empty = f"SELECT {columns} WHERE false"
    if day is None:
        con.execute(f"CREATE VIEW ledger_copy AS {empty}")
        return
    paths = getattr(ledger, "parquet_paths", None)
    if paths is not None:
        files = [str(p) for p in paths(day)]
        if not files:
            con.execute(f"CREATE VIEW ledger_copy AS {empty}")
            return
        names = ", ".join(name for name, _ in lake.COLUMNS)
        con.execute(
            f"CREATE VIEW ledger_copy AS SELECT {names} FROM read_parquet({literal(files)}, union_by_name = true)"  # noqa: S608
        )
        return
    path = work_dir / "ledger-day.tsv"
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        batch: list[str] = []
        for e in ledger.day_entries(day):
            batch.append(
                f"payin:{e.payment_order_id}\tPAYIN\t{e.payment_order_id}\t{e.psp_reference}\t\\N\t{e.seller_account}"
                f"\t{e.currency}\t{e.amount_minor}\t{e.commission_minor}\t{e.charged_at}\t{e.charged_at}\n"
            )
            if len(batch) >= FETCH_ROWS:
                handle.write("".join(batch))
                batch = []
        handle.write("".join(batch))
    tsv = {
        "txn_id": "VARCHAR",
        "kind": "VARCHAR",
        "payment_order_id": "VARCHAR",
        "psp_reference": "VARCHAR",
        "original_psp_reference": "VARCHAR",
        "seller_account": "VARCHAR",
        "currency": "VARCHAR",
        "amount_minor": "BIGINT",
        "commission_minor": "BIGINT",
        "charged_at": "VARCHAR",
        "booked_at": "VARCHAR",
    }
    selected = ", ".join(name if name in tsv else f"CAST(NULL AS {kind}) AS {name}" for name, kind in lake.COLUMNS)
    adjustments = work_dir / "ledger-adjustments.csv"
    kind_of = {record_type: kind for kind, record_type in RECORD_TYPE_OF_KIND.items()}
    with open(adjustments, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(
            (
                a.txn_id,
                kind_of[a.record_type],
                a.payment_order_id,
                a.psp_reference,
                a.original_psp_reference,
                a.seller_account,
                a.currency,
                a.amount_minor,
                0,
                "",
                a.booked_at,
            )
            for a in ledger.day_adjustments(day)
        )
    con.execute(
        f"CREATE VIEW ledger_copy AS SELECT {selected} FROM {_read_tsv(path, tsv)} "  # noqa: S608 - our own names
        f"UNION ALL SELECT {selected} FROM {_read_quoted(adjustments, tsv)}"
    )


def _read_tsv(path: Path, columns: dict[str, str]) -> str:
    """A ``read_csv`` of our own tab-separated file: no header, no quoting, empty fields as empty strings."""
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return (
        f"read_csv({literal(str(path))}, delim = '\t', header = false, quote = '', escape = '', nullstr = '\\N', "
        f"auto_detect = false, columns = {{{spec}}})"
    )


def _read_quoted(path: Path, columns: dict[str, str]) -> str:
    """A ``read_csv`` of our own quoted file (``csv.QUOTE_ALL``): any text, empty fields as empty strings."""
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return (
        f"read_csv({literal(str(path))}, delim = ',', header = false, quote = '\"', escape = '\"', allow_quoted_nulls = false, "
        f"auto_detect = false, columns = {{{spec}}})"
    )


#: one statement's rows: ``query(name, *params)`` runs (duckdb) or reads (Athena's results) the named statement
Query = Callable[..., Any]


def prepare(
    con: Any,
    entries: Path | None,
    adjustments: list[engine.AdjustmentEntry],
    ledger: LedgerSource,
    day: str | None,
    work_dir: Path,
    bounds: Bounds | None = None,
) -> Query:
    """The inputs (``settled``, ``adjusted``, ``params``, ``ledger_copy``) and the statements that create tables,
    on a duckdb connection; returns the :data:`Query` that runs the others on it. ``entries`` None: the
    connection holds ``settled`` already (:mod:`.fastfold` filled it). A statement that runs out of the
    connection's memory limit runs again with more (:func:`execute_bounded`, up to ``bounds``' ceiling)."""
    bounds = bounds or Bounds()
    sql = statements()
    if entries is not None:
        con.execute(
            f"CREATE TABLE settled AS SELECT * FROM {_read_tsv(entries, dict(SETTLED_COLUMNS))}"  # noqa: S608 - read once
        )
        # written for this one read, in this reconciliation's work directory: /tmp holds the rows once, as the table
        entries.unlink()
    path = work_dir / "adjusted.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(adjustments)
    con.execute(
        f"CREATE TABLE adjusted AS SELECT * FROM {_read_quoted(path, dict(ADJUSTED_COLUMNS))}"  # noqa: S608 - ours
    )
    con.execute(f"CREATE TABLE params AS SELECT CAST({literal(day)} AS VARCHAR) AS window_day")
    _ledger_view(con, ledger, day, work_dir)
    for name in TABLES:
        execute_bounded(con, sql[name], bounds, name)

    def query(name: str, *params: int) -> Any:
        """Run statement ``name``, its ``?`` (an integer: a limit) filled in as literals, in order."""
        text = sql[name]
        if text.count("?") != len(params):
            raise ValueError(f"{name}: {text.count('?')} placeholder(s), {len(params)} value(s)")
        for value in params:
            text = text.replace("?", literal(int(value)), 1)
        return execute_bounded(con, text, bounds, name)

    return query


#: the statements that create a table the others read (duckdb runs them; Athena inlines them as WITH clauses)
TABLES = ("ledger_day", "charge_outcomes", "ledger_adjustments", "adjustment_rows", "adjustment_claims")


def match(
    partial: engine.Partial,
    entries: Path | None,
    ledger: LedgerSource,
    bounds: Bounds,
    day_hint: str | None,
    work_dir: Path,
    on_match: Callable[[LedgerEntry], None] | None = None,
    connection: Any = None,
) -> engine.Result:
    """Join the Settled rows (``entries``: an :class:`EntryFile`; None: the table ``settled`` of ``connection``,
    which :mod:`.fastfold` filled) with the ledger's window day; classify every difference; match the refunds,
    chargebacks and reversals; account for every row (invariant 6). ``connection`` is closed here."""
    day = engine.window_day(partial.days, day_hint)
    if connection is None:
        on_disk = entries is not None and entries.stat().st_size > IN_MEMORY_MAX_ENTRY_BYTES
        connection = connect(work_dir, bounds, on_disk=on_disk)
    with contextlib.closing(connection) as con:
        query = prepare(con, entries, partial.adjustments, ledger, day, work_dir, bounds)
        return outcomes(query, partial, ledger, bounds, day, on_match)


def outcomes(
    query: Query,
    partial: engine.Partial,
    ledger: LedgerSource,
    bounds: Bounds,
    day: str | None,
    on_match: Callable[[LedgerEntry], None] | None = None,
) -> engine.Result:
    """The result from the statements' rows, whichever engine ran them (duckdb here, Athena: :mod:`.athena`)."""
    out = engine.Collector(bounds)
    for mismatch in partial.mismatches:
        out.add(mismatch)
    sellers = _Sellers(bounds.max_three_way_sellers, set())
    conflict = query("ledger_day_conflict").fetchone()
    if conflict is not None:
        reference, rows, several = conflict
        what = f"{rows} charges" if several else f"{rows} differing copies of one transaction"
        raise InvariantViolation(f"the ledger's day {day} has {what} under PSP reference {reference!r}")
    (matched,) = query("matched_count").fetchone()
    met = query("sellers").fetchmany(bounds.max_three_way_sellers + 1)
    carried = query("carried_over", bounds.max_point_lookups).fetchall()
    charges = _Charges(ledger, bounds, out, [order for (order,) in carried])
    cursor = query("findings")
    while batch := cursor.fetchmany(FETCH_ROWS):
        charges.add(batch)
    matched += charges.matched
    # the accounts in the merge's order: the join's, and those of rows of other days found by a lookup
    for _, seller, ccy in sorted([(key, s, c) for s, c, key in met] + charges.found_sellers):
        sellers.note(LedgerEntry("", "", seller, ccy, 0, ""))
    if on_match is not None:
        cursor = query("matched_charges")
        while batch := cursor.fetchmany(FETCH_ROWS):
            for order, seller, ccy, amount, commission, reference, charged_at in batch:
                on_match(LedgerEntry(reference, order, seller, ccy, amount, charged_at, commission))
        for entry in charges.settled_entries:
            on_match(entry)
    adjusted = _adjustments(query, ledger, out, bounds, charges.lookups, sellers.note, day)
    matched += sum(counts["matched"] for counts in adjusted.values())
    rejected = sorted(partial.rejected, key=lambda r: r.line)
    accounted = matched + out.row_mismatches + len(rejected) + partial.recorded
    if accounted != partial.rows:
        raise InvariantViolation(f"{partial.rows} rows but {accounted} outcomes: a row was lost or counted twice")
    return engine.Result(
        format=ADYEN,
        rows=partial.rows,
        matched=matched,
        recorded=partial.recorded,
        rejected=rejected,
        mismatches=sorted(out.kept, key=Mismatch.sort_key),
        mismatches_omitted=out.omitted,
        totals={ccy: partial.totals[ccy] for ccy in sorted(partial.totals)},
        record_types=dict(sorted(partial.record_types.items())),
        window_day=day,
        seller_accounts=sellers.accounts,
        sellers_truncated=sellers.truncated,
        adjustments=adjusted,
        settled_late=charges.settled_late,
    )


def _adjustments(
    query: Query,
    ledger: LedgerSource,
    out: engine.Collector,
    bounds: Bounds,
    lookups: int,
    note_seller: Callable[[Any], None],
    day: str | None,
) -> dict[str, dict[str, int]]:
    """``sql/adjustments.sql``'s outcomes: every adjustment row compared, looked up or a duplicate."""
    (held,) = query("ledger_adjustment_count").fetchone()
    if held > bounds.max_adjustment_rows:  # held in memory like the file's: the same bound
        raise UnreadableFile(
            f"the ledger's day {day} has more than {bounds.max_adjustment_rows} refunds and chargebacks"
        )
    adjustments = engine.AdjustmentOutcomes(ledger, out, bounds, lookups, note_seller)
    cursor = query("adjustment_outcomes")
    while batch := cursor.fetchmany(FETCH_ROWS):
        for outcome, *fields in batch:
            row = engine.AdjustmentEntry(*fields[:8])
            txn_id, identical, l_txn, l_type, l_ref, l_original, l_order, l_seller, l_ccy, l_amount, l_at = fields[8:]
            led = (
                None
                if l_txn is None
                else LedgerAdjustment(l_txn, l_type, l_ref, l_original, l_order, l_seller, l_ccy, l_amount, l_at)
            )
            adjustments.outcome(outcome, row, txn_id, bool(identical), led)
    for missing in query("adjustments_missing_in_settlement").fetchall():
        adjustments.missing_in_settlement(LedgerAdjustment(*missing))
    return adjustments.counts


class _Charges:
    """The SQL's findings, in the merge's order, as mismatches; rows of another day looked up (bounded)."""

    def __init__(self, ledger: LedgerSource, bounds: Bounds, out: engine.Collector, carried: list[str]):
        self.ledger, self.bounds, self.out = ledger, bounds, out
        self.found = self._find(carried)
        self.matched = 0
        self.lookups = 0
        self.settled_late: list[dict[str, Any]] = []
        self.settled_entries: list[LedgerEntry] = []
        self.found_sellers: list[tuple[str, str, str]] = []

    def _find(self, carried: list[str]) -> dict[str, LedgerEntry]:
        """The charges of the orders of the rows of another day that the budget lets us look up."""
        find_many = getattr(self.ledger, "find_many", None)
        if find_many is not None:
            found: dict[str, LedgerEntry] = find_many(carried)
            return found
        entries = {order: self.ledger.find(order) for order in carried}
        return {order: entry for order, entry in entries.items() if entry is not None}

    def add(self, findings: list[tuple[Any, ...]]) -> None:
        for finding in findings:
            outcome, met_key, reference, line, order, ccy, amount, charged_at, identical = finding[:9]
            row = engine.SettledEntry(reference, line, order, ccy, amount, charged_at)
            if outcome == "DUPLICATE":
                cls, rule = rules.DUPLICATE_IDENTICAL if identical else rules.DUPLICATE_CONFLICTING
                self.out.add(
                    Mismatch(DUPLICATE_IN_SETTLEMENT, reference, order, ccy, amount, None, cls, rule, line=line)
                )
                continue
            l_ref, l_order, l_seller, l_ccy, l_amount, l_commission, l_charged_at = finding[9:]
            if outcome == "MISSING_IN_SETTLEMENT":
                led = LedgerEntry(l_ref, l_order, l_seller, l_ccy, l_amount, l_charged_at, l_commission)
                self.out.add(engine.missing_in_settlement(led, l_ref, l_charged_at))
            elif outcome == "CARRIED_OVER":
                self.carried_over(row, met_key, self.found)
            else:
                self.compare(row, LedgerEntry(l_ref, l_order, l_seller, l_ccy, l_amount, l_charged_at, l_commission))

    def compare(self, row: engine.SettledEntry, led: LedgerEntry) -> bool:
        """The row against a ledger charge of its PSP reference; True if they agree."""
        mismatch = engine.compare_charge(row, led)
        if mismatch is None:
            self.matched += 1
            return True
        self.out.add(mismatch)
        return False

    def carried_over(self, row: engine.SettledEntry, met_key: str, found_by_order: dict[str, LedgerEntry]) -> None:
        if self.lookups >= self.bounds.max_point_lookups:
            cls, rule = rules.LOOKUP_BUDGET
        else:
            self.lookups += 1
            found = found_by_order.get(row.payment_order_id)
            if found is not None and found.psp_reference == row.psp_reference:
                self.found_sellers.append((met_key, found.seller_account, found.currency))
                if self.compare(row, found):  # a charge of another day, settled in this file
                    self.settled_entries.append(found)
                    self.settled_late.append(
                        {
                            "psp_reference": row.psp_reference,
                            "payment_order_id": row.payment_order_id,
                            "line": row.line,
                            "charge_day": found.charged_at[:10],
                        }
                    )
                return
            cls, rule = (
                rules.UNKNOWN_PAYMENT
                if found is None
                else rules.booked_under_another(f"order {row.payment_order_id}", f"PSP reference {found.psp_reference}")
            )
        self.out.add(
            Mismatch(
                MISSING_IN_LEDGER,
                row.psp_reference,
                row.payment_order_id,
                row.currency,
                row.amount_minor,
                None,
                cls,
                rule,
                line=row.line,
            )
        )


def reconcile_adyen(
    lines: Iterator[tuple[int, str | None]],
    ended_with_newline: Callable[[], bool],
    ledger: LedgerSource,
    bounds: Bounds,
    day_hint: str | None = None,
    on_match: Callable[[LedgerEntry], None] | None = None,
    work_dir: Path | None = None,
) -> engine.Result:
    """The single pass: the header, every row folded (the Settled ones written for duckdb), then the matching."""
    layout = engine.read_header(lines)
    with _work(work_dir) as work:
        entries = EntryFile(work / "settled.tsv")
        try:
            with engine.paused_gc():
                partial = engine.fold_rows(lines, layout, bounds, entries)
        finally:
            entries.close()
        engine.check_truncation(partial, ended_with_newline())
        return match(partial, entries.path, ledger, bounds, day_hint, work, on_match)


def reconcile_adyen_file(
    path: Path,
    ledger: LedgerSource,
    bounds: Bounds,
    day_hint: str | None = None,
    on_match: Callable[[LedgerEntry], None] | None = None,
    work_dir: Path | None = None,
    *,
    consume: bool = False,
) -> engine.Result:
    """The single pass over a file on local disk: its plainly valid Settled rows read and folded by duckdb
    (:mod:`.fastfold`), every other line by our reader; a file only our reader can number is read as a stream
    (:func:`reconcile_adyen`). The same result either way. ``consume``: the file is a copy of ours, removed once
    folded, so that the disk holds it or the matching's tables and spill, not both (the reconcile function's /tmp)."""
    from payments.reconciliation import fastfold
    from payments.reconciliation.lines import LineReader

    with _work(work_dir) as work:
        con = connect(work, bounds, on_disk=path.stat().st_size > IN_MEMORY_MAX_BYTES)
        try:
            fold = fastfold.fold_file(path, bounds, con, work)
        except BaseException:
            con.close()
            raise
        if fold is not None:
            if consume:
                path.unlink()
            engine.check_truncation(fold.partial, fold.ended_with_newline)
            return match(fold.partial, None, ledger, bounds, day_hint, work, on_match, connection=con)
        con.close()
    with open(path, "rb") as stream:
        reader = LineReader(stream, bounds.max_line_bytes)
        return reconcile_adyen(
            iter(reader), lambda: reader.ended_with_newline, ledger, bounds, day_hint, on_match, work_dir
        )


@contextlib.contextmanager
def _work(work_dir: Path | None) -> Iterator[Path]:
    """A fresh directory for one reconciliation's files (inside ``work_dir`` if given), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="reconcile-", dir=work_dir) as path:
        yield Path(path)


def reconcile_local(
    settlement: Path,
    ledger_parquet: Sequence[Path],
    *,
    psp: str,
    work_dir: Path,
    memory_limit: str | None = None,
) -> engine.Result:
    """One Adyen settlement file reconciled with Parquet objects of the ledger's copy, end to end, no AWS:
    the file in, the :class:`~.engine.Result` (what the report renders) out. ``psp`` keeps the copy's rows
    of that PSP where the objects carry the ``psp=`` partition in their path (the lake's layout)."""
    from dataclasses import replace

    from payments.reconciliation.detect import day_hint

    files = [p for p in ledger_parquet if "psp=" not in str(p) or f"psp={psp}/" in str(p)]
    ledger = ParquetLedger(lambda day: files, lookup_files=lambda: files)
    bounds = Bounds() if memory_limit is None else replace(Bounds(), columnar_memory_limit=memory_limit)
    return reconcile_adyen_file(settlement, ledger, bounds, day_hint(settlement.name), work_dir=work_dir)


# --- the ledger's copy in S3 (the reconcile function, where the stage has the lake) ---------------------------

#: the lake bucket's name; a stage without it reads the ledger table's day index (:class:`.DynamoLedgerSource`)
LAKE_BUCKET_ENV = "LEDGER_LAKE_BUCKET"
#: minutes after a day's end before its copy is complete: the delivery pipeline's worst-case buffering
#: (the stream's consumer and the delivery stream flush within 15 minutes; twice that, to be safe)
LAKE_LAG_ENV = "LEDGER_LAKE_LAG_MINUTES"
DEFAULT_LAKE_LAG_MINUTES = 30
#: "true" where the copy's writer flushes every row before it invokes the reconciliation (the local runtime,
#: ``Settings.ledger_lake_flushed``): no lag is waited for; never set on a deployed stage
LAKE_FLUSHED_ENV = "LEDGER_LAKE_FLUSHED"


class LedgerDayIncomplete(Exception):
    """The copy of the window day may still be missing transactions: the file is not matched against a partial
    copy. The reconcile function defers the file until ``complete_at`` (:mod:`.deferred`)."""

    def __init__(self, day: str, complete_at: datetime):
        super().__init__(f"the ledger copy of {day} is complete only at {complete_at.isoformat()}: deferred")
        self.day, self.complete_at = day, complete_at


def complete_at(day: str, lag: timedelta) -> datetime:
    """When the copy of ``day`` (UTC) holds every transaction of that day: its end plus the delivery lag."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1) + lag


class LakeLedger(ParquetLedger):
    """The day's partition objects (``lake.day_prefix``) listed and downloaded from the lake bucket into a
    temporary directory, then read like any Parquet copy. Rows of another day and adjustments booked on
    another day are found by key in the ledger table (``point_lookups``: GetItem, within the point-lookup
    budget): the day itself is never paged from the table."""

    def __init__(
        self,
        *,
        s3: Any,
        bucket: str,
        psp: str,
        point_lookups: LedgerSource,
        lag: timedelta | None = timedelta(minutes=DEFAULT_LAKE_LAG_MINUTES),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        super().__init__(self._download, point_lookups=point_lookups)
        self.s3, self.bucket, self.psp, self.lag, self.now = s3, bucket, psp, lag, now
        self._dir = tempfile.TemporaryDirectory(prefix="ledger-copy-")
        self._days: dict[str, list[Path]] = {}

    def _download(self, day: str) -> list[Path]:
        if day in self._days:
            return self._days[day]
        if self.lag is not None:  # None: the writer flushed before this reconciliation (the local runtime)
            ready = complete_at(day, self.lag)
            if self.now() < ready:
                raise LedgerDayIncomplete(day, ready)
        prefix = lake.day_prefix(self.psp, day)
        paths: list[Path] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith(".parquet"):
                    continue
                target = Path(self._dir.name) / f"{len(paths):06d}.parquet"
                self.s3.download_file(self.bucket, obj["Key"], str(target))
                paths.append(target)
        self._days[day] = paths
        return paths

    def close(self) -> None:
        self._dir.cleanup()
        self._days.clear()


def lake_ledger(
    s3: Any, psp: str, point_lookups: LedgerSource, now: Callable[[], datetime] | None = None
) -> LakeLedger | None:
    """The stage's lake source from its environment (:data:`LAKE_BUCKET_ENV`, :data:`LAKE_LAG_ENV`), None without it;
    ``now``: the clock that tells whether a day's copy is complete (the tests'; by default the system's)."""
    bucket = os.environ.get(LAKE_BUCKET_ENV, "")
    if not bucket:
        return None
    if os.environ.get(LAKE_FLUSHED_ENV, "").lower() == "true":
        # the writer flushed the copy before invoking us (the local runtime): complete now, whatever the day
        return LakeLedger(s3=s3, bucket=bucket, psp=psp, point_lookups=point_lookups, lag=None)
    lag = timedelta(minutes=int(os.environ.get(LAKE_LAG_ENV, DEFAULT_LAKE_LAG_MINUTES)))
    if now is None:
        return LakeLedger(s3=s3, bucket=bucket, psp=psp, point_lookups=point_lookups, lag=lag)
    return LakeLedger(s3=s3, bucket=bucket, psp=psp, point_lookups=point_lookups, lag=lag, now=now)
