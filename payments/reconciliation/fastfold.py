"""The fold of a settlement file's plainly valid ``Settled`` rows as SQL: duckdb reads the file, the rest is ours.

The bulk of an Adyen Settlement Details Report is ``Settled`` rows that every check of
:func:`.adyen.parse_row` passes. Here duckdb reads the file (one line a row, numbered as the file numbers
it), splits the fields and makes those checks as vectorised expressions: the field count, the record type,
the currencies, the plain references, the amounts (with each currency's decimals at Adyen, held in ISO 4217
minor units), the ``Creation Date`` and its ``TimeZone``, a positive Gross Credit and no Gross Debit. A row
that passes all of them is folded in SQL (its entry stays in duckdb as a row of ``settled``; its totals,
record type and day are summed by ``GROUP BY``) and no Python object is built for it.

Every other line (another record type, a quote, a field that may look like a formula, a padded, empty or
malformed field, an amount with more decimals than the simple form, an unknown or configured-zone
``TimeZone``, a blank or overlong line) goes, with its line number, to the Python reader
(:func:`.adyen.parse_or_reject` and :meth:`.engine.Partial.add`), in line order: its outcome, its
rejection reason, its quirks are the reader's, unchanged. The SQL only ever accepts fewer rows than the
reader would; where it accepts one, it computes the same values (tests/reconciliation/test_fastfold.py
compares the two folds on every quirk and on seeded mutations).

A file this path cannot number exactly as :class:`.lines.LineReader` does (a carriage return or a NUL
byte anywhere, text that is not UTF-8, a header that is not on the first line, a Byte Order Mark, no fee
columns) is left to the Python fold entirely: :func:`fold_file` answers None and the caller reads the file
as before. The same when duckdb itself refuses the file.
"""

from __future__ import annotations

import codecs
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payments.kernel.config import settings
from payments.kernel.iso4217 import MINOR_UNITS
from payments.psp.adyen_currencies import wire_exponent
from payments.reconciliation import adyen, engine
from payments.reconciliation.model import Bounds, UnreadableFile

#: the Python reader's check of a reference (``adyen._REFERENCE``), as an RE2 full match
REFERENCE = r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,79}"
#: ``adyen._TIMESTAMP``; and the narrower form whose date SQL converts (others go to the reader)
TIMESTAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
CONVERTIBLE = r"(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
#: bytes per block of the pre-scan
BLOCK = 4 * 1024 * 1024
#: more options of duckdb's read_csv (the tests shrink its buffers)
READ_OPTIONS = ""
#: rows fetched from duckdb at a time
FETCH_ROWS = 10_000


@dataclass
class Fold:
    """The file folded: the Partial (every row accounted for) and the open connection holding ``settled``."""

    partial: engine.Partial
    con: Any
    layout: adyen.Layout
    ended_with_newline: bool
    #: rows SQL folded itself (the others went to our reader)
    fast_rows: int


def _scan(path: Path) -> bool | None:
    """Whether the file ends with a newline; None if the SQL path cannot number its lines as the reader does
    (a carriage return, a NUL byte, text that is not UTF-8, a Byte Order Mark)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    last = b""
    with open(path, "rb") as handle:
        first = True
        while block := handle.read(BLOCK):
            if (first and block.startswith(codecs.BOM_UTF8)) or b"\r" in block or b"\x00" in block:
                return None
            first = False
            if not block.isascii():
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    return None
            last = block[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return last == b"\n"


def _header(path: Path, bounds: Bounds) -> adyen.Layout | None:
    """The layout of a header on line 1 (None: elsewhere, or too long: the reader's case)."""
    with open(path, "rb") as handle:
        first = handle.readline(bounds.max_line_bytes + 2)
    if len(first.rstrip(b"\n")) > bounds.max_line_bytes:
        return None
    text = first.decode("utf-8").rstrip("\n")  # the file is UTF-8 (:func:`_scan`)
    if not text.strip():
        return None
    return engine.read_header(iter([(1, text)]))


def _currencies() -> str:
    """(currency, ten-thousandths per unit of its decimals at Adyen, factor to ISO 4217 minor units) for every
    currency whose ISO 4217 minor units hold Adyen's exactly (the others, such as CLP, go to the reader)."""
    rows = []
    for ccy, iso in sorted(MINOR_UNITS.items()):
        wire = wire_exponent(ccy)
        if iso >= wire:
            rows.append(f"('{ccy}', {10 ** (4 - wire)}, {10 ** (iso - wire)})")
    return "SELECT * FROM (VALUES " + ", ".join(rows) + ") AS c(ccy, divisor, factor)"  # noqa: S608 - ISO codes


def _zones() -> str:
    """The ``TimeZone`` values SQL converts, with their offsets in minutes: none but UTC and GMT when the
    account's zone is configured (the reader checks the abbreviation against it)."""
    configured = bool(settings().adyen_report_time_zone)
    zones = {"GMT": 0} if configured else dict(adyen.ABBREVIATIONS)
    zones.pop("UTC", None)  # UTC and the empty zone: the text as it is, no conversion (as the reader)
    values = ", ".join(f"('{zone}', {minutes})" for zone, minutes in sorted(zones.items()))
    return f"SELECT * FROM (VALUES {values}) AS z(zone, minutes)"  # noqa: S608 - adyen's table


def _ten_thousandths(field: str) -> str:
    """An amount field, checked by the row's pattern (:func:`_pattern`: at most 12 digits and 4 decimals), in
    ten-thousandths: the pattern leaves duckdb's decimal cast only digits and a point to read, so it is exact."""
    return f"CASE WHEN {field} = '' THEN 0 ELSE CAST(TRY_CAST({field} AS DECIMAL(18, 4)) * 10000 AS BIGINT) END"


def _amount(field: str, currency: str) -> str:
    """Ten-thousandths as minor units of the currency: NULL where a digit beyond its decimals at Adyen is not a
    zero (the reader then judges the row), else scaled to ISO 4217's decimals."""
    return f"CASE WHEN {field} % {currency}.divisor = 0 THEN {field} // {currency}.divisor * {currency}.factor END"


#: a field the fold does not read: anything but a comma, a quote, a tab or a character that may start or make a
#: formula (``=``, ``+``, ``@`` anywhere, ``-`` first): a line with one of those is the reader's, which checks more
OTHER_FIELD = r'(?:[^,"=+@\t\-][^,"=+@\t]*)?'
AMOUNTS = ("gd", "gc", "nd", "nc", "commission", "markup", "scheme", "interchange")


def _line_pattern(layout: adyen.Layout) -> str:
    """What a line SQL folds looks like, as one RE2 pattern over the whole line (no groups: RE2 answers a full
    match from its DFA, one pass over the line): exactly the layout's fields, each without a comma; the record
    type, the two references, the two currencies, the Creation Date, the TimeZone and the eight amounts each in
    its own form, every other field plain (:data:`OTHER_FIELD`)."""
    i_type, i_gross, i_net, i_psp, i_merchant, i_created, i_zone, _ = adyen._plan(layout)
    amount = r"[0-9]{0,12}(?:\.[0-9]{1,4})?"  # at most 12 digits and 4 decimals: exact in DECIMAL(18, 4)
    forms = {
        i_type: "(?:Settled|SettledBulk)",
        i_psp: REFERENCE,
        i_merchant: REFERENCE,
        i_gross: "[A-Z]{3}",
        i_net: "(?:[A-Z]{3})?",  # empty: the gross currency (as the reader)
        i_created: TIMESTAMP,
        i_zone: "[A-Z]{0,5}",
    }
    forms.update(dict.fromkeys(adyen._amount_plan(layout), amount))
    return ",".join(forms.get(i, OTHER_FIELD) for i in range(layout.width))


def _fold_sql(path: Path, layout: adyen.Layout, bounds: Bounds) -> str:
    i_type, i_gross, i_net, i_psp, i_merchant, i_created, i_zone, _ = adyen._plan(layout)

    def field(i: int) -> str:
        return f"f[{i + 1}]"

    parsed = ",\n".join(f"{_amount(f'c.{name}', 'g' if n < 2 else 'n')} AS {name}" for n, name in enumerate(AMOUNTS))
    scaled = ", ".join(
        f"CASE WHEN candidate THEN {_ten_thousandths(field(at))} END AS {name}"
        for name, at in zip(AMOUNTS, adyen._amount_plan(layout), strict=True)
    )
    quoted = str(path).replace("'", "''")
    options = f", {READ_OPTIONS}" if READ_OPTIONS else ""
    read = (
        f"read_csv('{quoted}', columns = {{'t': 'VARCHAR'}}, delim = '\\0', quote = '', escape = '', header = false, "
        f"auto_detect = false, new_line = '\\n', skip = 1, strict_mode = false, null_padding = false{options})"
    )
    return f"""
CREATE TABLE fold AS
WITH numbered AS (
    SELECT row_number() OVER () + 1 AS line, t FROM {read}
),
candidates AS (
    SELECT line, t,
        coalesce(strlen(t) <= {bounds.max_line_bytes} AND regexp_full_match(t, '{_line_pattern(layout)}'), false)
            AS candidate
    FROM numbered
),
scaled AS (
    SELECT line, t, candidate, {field(i_type)} AS kind, {field(i_psp)} AS psp, {field(i_merchant)} AS po,
        {field(i_gross)} AS gross_ccy,
        CASE WHEN {field(i_net)} = '' THEN {field(i_gross)} ELSE {field(i_net)} END AS net_ccy,
        {field(i_created)} AS created, {field(i_zone)} AS zone, {scaled}
    FROM (SELECT *, CASE WHEN candidate THEN string_split(t, ',') END AS f FROM candidates)
),
parsed AS (
    SELECT line, t, candidate, kind, psp, po, gross_ccy, net_ccy,
        {parsed},
        CASE
            WHEN c.zone IN ('UTC', '') THEN c.created[:10] || 'T' || c.created[12:] || 'Z'
            WHEN z.minutes IS NOT NULL AND regexp_full_match(c.created, '{CONVERTIBLE}')
                THEN strftime(TRY_CAST(c.created AS TIMESTAMP) - to_minutes(CAST(z.minutes AS BIGINT)),
                              '%Y-%m-%dT%H:%M:%SZ')
        END AS charged_at,
        g.ccy IS NOT NULL AND n.ccy IS NOT NULL AS known
    FROM scaled AS c
    LEFT JOIN ({_currencies()}) AS g ON g.ccy = CASE WHEN c.candidate THEN c.gross_ccy END
    LEFT JOIN ({_currencies()}) AS n ON n.ccy = CASE WHEN c.candidate THEN c.net_ccy END
    LEFT JOIN ({_zones()}) AS z ON z.zone = CASE WHEN c.candidate THEN c.zone END
),
judged AS (
    SELECT *,
        coalesce(candidate AND known AND charged_at IS NOT NULL AND gd = 0 AND gc > 0 AND nd IS NOT NULL
                 AND nc IS NOT NULL AND commission IS NOT NULL AND markup IS NOT NULL AND scheme IS NOT NULL
                 AND interchange IS NOT NULL, false) AS fast
    FROM parsed
)
SELECT line, fast, CASE WHEN NOT fast THEN t END AS t,
    kind, psp, po, gross_ccy, net_ccy, gc, nd, nc, commission, markup, scheme, interchange, charged_at
FROM judged
"""  # noqa: S608 - the layout's positions, our constants and the work directory's path


def fold_file(path: Path, bounds: Bounds, con: Any, work_dir: Path) -> Fold | None:
    """Fold the file at ``path`` into a Partial, its Settled rows into the table ``settled`` of ``con``
    (:data:`.columnar.SETTLED_COLUMNS`); None (nothing done) where the file is the Python reader's alone."""
    ended_with_newline = _scan(path)
    if ended_with_newline is None:
        return None
    layout = _header(path, bounds)
    if layout is None or min(adyen._amount_plan(layout)) < 0:
        return None
    import duckdb

    from payments.reconciliation.columnar import execute_bounded

    try:
        # one thread, in the file's order: row_number() OVER () is then the line's number in the file
        con.execute("SET threads = 1")
        con.execute("SET preserve_insertion_order = true")
        execute_bounded(con, _fold_sql(path, layout, bounds), bounds, "fold")
    except duckdb.InvalidInputException:  # the CSV reader refused the file (a line beyond its own bound, say)
        return None
    finally:
        con.execute(f"SET threads = {bounds.columnar_threads}")
        con.execute("SET preserve_insertion_order = false")
    partial = engine.Partial()
    slow = _SlowEntries(work_dir / "settled-slow.tsv")
    try:
        cursor = con.execute(
            f"SELECT line, coalesce(t, ''), strlen(t) > {bounds.max_line_bytes} FROM fold WHERE NOT fast ORDER BY line"  # noqa: S608
        )
        with engine.paused_gc():
            while batch := cursor.fetchmany(FETCH_ROWS):
                for line, text, overlong in batch:
                    item = adyen.parse_or_reject(None if overlong else text, layout, line)
                    engine._fold_one(partial, slow.add, item, bounds)
    finally:
        slow.close()
    fast_rows = _add_fast(con, partial, bounds)
    con.execute(f"CREATE TABLE settled_slow AS SELECT * FROM {slow.read_sql()}")  # noqa: S608 - our own path
    con.execute("""
        CREATE VIEW settled AS
        SELECT psp AS psp_reference, line, po AS payment_order_id, gross_ccy AS currency, gc AS amount_minor,
               charged_at
        FROM fold WHERE fast
        UNION ALL
        SELECT * FROM settled_slow
    """)
    return Fold(partial, con, layout, ended_with_newline, fast_rows)


def _add_fast(con: Any, partial: engine.Partial, bounds: Bounds) -> int:
    """The fast rows' counts, days and totals into the Partial (as :meth:`.engine._FastFold.finish`); their count."""
    groups = con.execute("""
        SELECT gross_ccy, net_ccy, charged_at[:10], kind = 'Settled', count(*), max(line), sum(gc), sum(nd), sum(nc),
               sum(commission), sum(markup), sum(scheme), sum(interchange)
        FROM fold WHERE fast GROUP BY ALL ORDER BY ALL
    """).fetchall()
    rows = sum(group[4] for group in groups)
    partial.rows += rows
    partial.last_line = max([partial.last_line, *(group[5] for group in groups)])
    if partial.rows > bounds.max_rows:
        raise UnreadableFile(f"more than {bounds.max_rows} rows")
    kinds: Counter[str] = Counter()
    sums: dict[tuple[str, str], list[int]] = {}
    for gross_ccy, net_ccy, day, settled, count, _, *amounts in groups:
        partial.days[day] += count
        kinds["Settled" if settled else "SettledBulk"] += count
        acc = sums.setdefault((gross_ccy, net_ccy), [0] * len(amounts))
        for i, amount in enumerate(amounts):
            acc[i] += int(amount)
    partial.record_types.update(kinds)
    for (gross_ccy, net_ccy), (gc, *net_sums) in sums.items():
        gross = partial._sums(gross_ccy)
        gross["gross_credit"] += int(gc)
        net = gross if net_ccy == gross_ccy else partial._sums(net_ccy)
        for name, amount in zip(
            ("net_debit", "net_credit", "commission", "markup", "scheme_fees", "interchange"), net_sums, strict=True
        ):
            net[name] += int(amount)
    return int(rows)


class _SlowEntries:
    """The Settled rows the Python reader folded (a quoted row, say), written for duckdb beside the fast ones."""

    def __init__(self, path: Path):
        from payments.reconciliation.columnar import EntryFile

        self.file = EntryFile(path)

    def add(self, entry: engine.Entry) -> None:
        self.file.add(entry)

    def close(self) -> None:
        self.file.close()

    def read_sql(self) -> str:
        from payments.reconciliation.columnar import SETTLED_COLUMNS, _read_tsv

        return _read_tsv(self.file.path, dict(SETTLED_COLUMNS))
