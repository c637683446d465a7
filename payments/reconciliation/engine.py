"""Reconciliation of Adyen settlement reports: reading the rows, and what a match of a row means.

What this module holds is ours: the fold of each row of a file into a :class:`Partial` (the totals,
the record-type counts, the rejected rows, the unknown types), with its fast path for the plainly
valid ``Settled`` rows (:func:`fold_batches`); the comparison of a row with a ledger transaction
(:func:`compare_charge`), and the matching of refunds, chargebacks and reversals
(:func:`match_adjustments`: far fewer rows than charges, held in memory within
``Bounds.max_adjustment_rows``). The sort, the spill and the join of a day's ``Settled`` rows with the
ledger's charges of that day, and the pairing of adjustment rows with the ledger's adjustments, are duckdb's
(:mod:`.columnar`, ``sql/charges.sql`` and ``sql/adjustments.sql``).

``Refunded``, ``Chargeback``, ``ChargebackReversed`` and ``SecondChargeback`` rows are matched by key
with the ledger's adjustments booked on the window day (``LedgerSource.day_adjustments``; rows of
another day by transaction id, within the point-lookup budget): matched, ``MISSING_IN_LEDGER``,
``MISSING_IN_SETTLEMENT``, ``AMOUNT_MISMATCH``, ``CURRENCY_MISMATCH``, ``DUPLICATE_IN_SETTLEMENT``, as
for charges.

The distributed path (:mod:`.chunks`) folds each chunk of the file into one Partial and its entries;
partials add up, and the entries of every chunk go to the same matching, so a merge of N chunks equals
the single pass (a test checks it).

Which ledger day: the file's *window day* is the UTC day most of its ``Settled`` rows were charged on
(ties: the later day); with no ``Settled`` rows, the day the caller infers from the object key
(``.../2026-11-30.csv``), if any. Ledger transactions of that day absent from the file are
``MISSING_IN_SETTLEMENT``. Rows charged on other days (late settlements carried over) are looked up one
by one by merchant reference, at most ``Bounds.max_point_lookups`` times.

Every row ends in exactly one outcome, and :func:`.columnar.match` asserts it:
``rows == matched + row mismatches + rejected + recorded`` (architecture invariant 6).
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypedDict

from payments.kernel.iso4217 import MINOR_UNITS
from payments.reconciliation import adyen, rules
from payments.reconciliation.model import (
    AMOUNT_MISMATCH,
    CURRENCY_MISMATCH,
    DUPLICATE_IN_SETTLEMENT,
    MISSING_IN_LEDGER,
    MISSING_IN_SETTLEMENT,
    ROW_KINDS,
    Bounds,
    Mismatch,
    MismatchKind,
    Rejected,
    RowError,
    UnreadableFile,
)
from payments.reconciliation.sources import LedgerAdjustment, LedgerEntry, LedgerSource

TOTAL_FIELDS = (
    "gross_credit",
    "gross_debit",
    "net_credit",
    "net_debit",
    "commission",
    "markup",
    "scheme_fees",
    "interchange",
    "payout",  # MerchantPayout rows: net debit - net credit
    "fee",  # Fee rows (account-level fees invoiced in the batch): net debit - net credit
    "refunded",  # Refunded rows: net debit - net credit
    "chargeback",  # Chargeback rows: net debit - net credit
    "chargeback_reversed",  # ChargebackReversed rows: net credit - net debit
    "second_chargeback",  # SecondChargeback rows: net debit - net credit
    "refunded_reversed",  # RefundedReversed rows: net credit - net debit
)


class SettledEntry(NamedTuple):
    """What the join needs of one ``Settled`` row; written for duckdb as one tab-separated line
    (references are validated plain, see :mod:`.adyen`, so no field holds a tab)."""

    psp_reference: str
    line: int
    payment_order_id: str
    currency: str
    amount_minor: int
    charged_at: str

    def to_tsv(self) -> str:
        return f"{self.psp_reference}\t{self.line}\t{self.payment_order_id}\t{self.currency}\t{self.amount_minor}\t{self.charged_at}\n"

    @classmethod
    def from_tsv(cls, text: str) -> SettledEntry:
        ref, line, order, ccy, amount, charged_at = text.rstrip("\n").split("\t")
        return cls(ref, int(line), order, ccy, int(amount), charged_at)

    def same_payment(self, other: SettledEntry) -> bool:
        return (self.payment_order_id, self.currency, self.amount_minor, self.charged_at) == (
            other.payment_order_id,
            other.currency,
            other.amount_minor,
            other.charged_at,
        )


class AdjustmentEntry(NamedTuple):
    """What matching needs of one ``Refunded``, ``Chargeback`` or ``ChargebackReversed`` row."""

    record_type: str
    modification_reference: str  # the modification's own PSP reference
    line: int
    payment_order_id: str  # the row's Merchant Reference: the payment's
    psp_reference: str  # the payment's
    modification_merchant_reference: str  # a refund's: our refund_id
    currency: str
    amount_minor: int  # positive on the side Adyen books it (adyen.adjustment_amount)

    def same(self, other: AdjustmentEntry) -> bool:
        return self[3:] == other[3:] and self[:2] == other[:2]


@dataclass
class Partial:
    """Everything a stretch of rows contributes that needs no ledger; partials add up."""

    rows: int = 0
    recorded: int = 0  # account-level rows (fees, payouts): recorded in totals
    last_line: int = 0
    #: the line of the last rejected row that ended early (0: none), see check_truncation
    last_incomplete: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)  # adjustments and unknown types
    totals: dict[str, dict[str, int]] = field(default_factory=dict)  # currency -> TOTAL_FIELDS
    record_types: Counter[str] = field(default_factory=Counter)
    days: Counter[str] = field(default_factory=Counter)  # Settled rows per UTC day
    adjustments: list[AdjustmentEntry] = field(default_factory=list)  # matched after the charges

    def add(self, item: adyen.SettlementRow | tuple[int, str, bool], bounds: Bounds) -> SettledEntry | None:
        """Account for one parsed row (or rejected line); return its entry if it is to be matched."""
        self.rows += 1
        if self.rows > bounds.max_rows:
            raise UnreadableFile(f"more than {bounds.max_rows} rows")
        if not isinstance(item, adyen.SettlementRow):
            line, reason, incomplete = item
            self.last_line = max(self.last_line, line)
            if incomplete:
                self.last_incomplete = max(self.last_incomplete, line)
            self.rejected.append(Rejected(line, reason))
            if len(self.rejected) > bounds.max_rejected_rows:
                raise UnreadableFile(f"more than {bounds.max_rejected_rows} malformed rows")
            return None
        row = item
        self.last_line = max(self.last_line, row.line)
        self.record_types[row.record_type] += 1
        self._add_totals(row)
        if row.record_type in adyen.PAYMENT_TYPES:
            self.days[row.day] += 1
            return SettledEntry(
                row.psp_reference,
                row.line,
                row.merchant_reference,
                row.gross_currency,
                row.gross_credit,
                row.charged_at,
            )
        if row.record_type in adyen.ACCOUNT_TYPES:
            self.recorded += 1
            return None
        if row.record_type in adyen.MATCHED_ADJUSTMENTS:
            self.adjustments.append(
                AdjustmentEntry(
                    row.record_type,
                    row.modification_reference,
                    row.line,
                    row.merchant_reference,
                    row.psp_reference,
                    row.modification_merchant_reference,
                    row.gross_currency,
                    adyen.adjustment_amount(row),
                )
            )
            if len(self.adjustments) > bounds.max_adjustment_rows:
                raise UnreadableFile(f"more than {bounds.max_adjustment_rows} refund and chargeback rows")
            return None
        classification, rule = (
            rules.adjustment(row.record_type)
            if row.record_type in adyen.ADJUSTMENT_TYPES
            else rules.unknown_record_type(row.record_type)
        )
        self.mismatches.append(
            Mismatch(
                MISSING_IN_LEDGER,
                row.psp_reference or None,
                row.merchant_reference or None,
                row.gross_currency,
                row.gross_credit - row.gross_debit,
                None,
                classification,
                rule,
                line=row.line,
            )
        )
        return None

    def _sums(self, ccy: str) -> dict[str, int]:
        sums = self.totals.get(ccy)
        if sums is None:
            sums = self.totals[ccy] = dict.fromkeys(TOTAL_FIELDS, 0)
        return sums

    def _add_totals(self, row: adyen.SettlementRow) -> None:
        gross = self._sums(row.gross_currency)
        gross["gross_credit"] += row.gross_credit
        gross["gross_debit"] += row.gross_debit
        net = gross if row.net_currency == row.gross_currency else self._sums(row.net_currency)
        net["net_credit"] += row.net_credit
        net["net_debit"] += row.net_debit
        commission, markup, scheme_fees, interchange = row.fees
        net["commission"] += commission
        net["markup"] += markup
        net["scheme_fees"] += scheme_fees
        net["interchange"] += interchange
        kind = row.record_type
        if kind in adyen.PAYMENT_TYPES:
            return
        if kind == "MerchantPayout":
            net["payout"] += row.net_debit - row.net_credit
        elif kind == "Fee":
            net["fee"] += row.net_debit - row.net_credit
        elif kind in adyen.ADJUSTMENT_TOTALS:
            debit = row.net_debit - row.net_credit
            net[adyen.ADJUSTMENT_TOTALS[kind]] += debit if kind in adyen.DEBIT_ADJUSTMENTS else -debit

    def merge(self, other: Partial) -> None:
        self.rows += other.rows
        self.recorded += other.recorded
        self.last_line = max(self.last_line, other.last_line)
        self.last_incomplete = max(self.last_incomplete, other.last_incomplete)
        self.rejected.extend(other.rejected)
        self.mismatches.extend(other.mismatches)
        for ccy, sums in other.totals.items():
            mine = self.totals.setdefault(ccy, dict.fromkeys(TOTAL_FIELDS, 0))
            for name, amount in sums.items():
                mine[name] = mine.get(name, 0) + amount
        self.record_types.update(other.record_types)
        self.days.update(other.days)
        self.adjustments.extend(other.adjustments)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "recorded": self.recorded,
            "last_line": self.last_line,
            "last_incomplete": self.last_incomplete,
            "rejected": [r.to_report() for r in self.rejected],
            "mismatches": [m.to_json() for m in self.mismatches],
            "totals": self.totals,
            "record_types": dict(self.record_types),
            "days": dict(self.days),
            "adjustments": [list(a) for a in self.adjustments],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Partial:
        return cls(
            rows=data["rows"],
            recorded=data["recorded"],
            last_line=data["last_line"],
            last_incomplete=data.get("last_incomplete", 0),
            rejected=[Rejected(r["line"], r["reason"]) for r in data["rejected"]],
            mismatches=[Mismatch.from_json(m) for m in data["mismatches"]],
            totals=data["totals"],
            record_types=Counter(data["record_types"]),
            days=Counter(data["days"]),
            adjustments=[AdjustmentEntry._make(a) for a in data.get("adjustments", ())],
        )


@dataclass
class Result:
    """The outcome of reconciling one file, before it is rendered as a report."""

    format: str
    rows: int
    matched: int
    recorded: int
    rejected: list[Rejected]
    mismatches: list[Mismatch]
    mismatches_omitted: int
    totals: dict[str, dict[str, int]]
    record_types: dict[str, int]
    window_day: str | None
    #: the (seller, currency) accounts of the matched rows, for the three-way check
    seller_accounts: set[tuple[str, str]]
    sellers_truncated: bool
    statements: list[dict[str, Any]] = field(default_factory=list)  # bank statements only
    #: the text encoding the file was read in (UTF-8, or a bank file's legacy code page)
    encoding: str = "utf-8"
    #: refunds, chargebacks and reversals: record type -> {rows, matched, mismatched,
    #: missing_in_settlement} (Adyen files; every matched record type, zeros included)
    adjustments: dict[str, dict[str, int]] = field(default_factory=dict)
    #: rows charged on an earlier day that matched the ledger here (a late settlement, found by a
    #: bounded point lookup): {psp_reference, payment_order_id, line, charge_day}; they settle that
    #: day's ``MISSING_IN_SETTLEMENT`` (:func:`payments.reconciliation.store.settle_late`)
    settled_late: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            not self.mismatches
            and not self.rejected
            and not self.mismatches_omitted
            and all(s["balanced"] is not False for s in self.statements)  # None: cannot be checked
        )


def window_day(days: Counter[str], hint: str | None) -> str | None:
    if not days:
        return hint
    return max(days.items(), key=lambda item: (item[1], item[0]))[0]


class Collector:
    """Bounded mismatch list plus the counters the row-outcome invariant needs."""

    def __init__(self, bounds: Bounds):
        self.bounds = bounds
        self.kept: list[Mismatch] = []
        self.omitted = 0
        self.row_mismatches = 0

    def add(self, mismatch: Mismatch) -> None:
        if mismatch.kind in ROW_KINDS:
            self.row_mismatches += 1
        if len(self.kept) < self.bounds.max_mismatches:
            self.kept.append(mismatch)
        else:
            self.omitted += 1


class _Identity(TypedDict):
    """What a settled row and its ledger entry name in common, as :class:`Mismatch` fields."""

    psp_reference: str | None
    payment_order_id: str | None
    line: int | None
    seller_account: str | None


def missing_in_settlement(
    led: LedgerEntry | LedgerAdjustment, reference: str | None, at: str, **extra: Any
) -> Mismatch:
    """A ledger booking (charge, or refund/chargeback/reversal) that the file does not hold,
    classified by when it was made (``at``: near midnight it may settle the next day)."""
    cls, rule = rules.missing_in_settlement(at)
    return Mismatch(
        MISSING_IN_SETTLEMENT,
        reference,
        led.payment_order_id,
        led.currency,
        None,
        led.amount_minor,
        cls,
        rule,
        seller_account=led.seller_account,
        **extra,
    )


def compare_charge(row: SettledEntry, led: LedgerEntry) -> Mismatch | None:
    """A Settled row against the ledger's charge of its PSP reference: None if they agree, else the mismatch
    (the order differs: the reference is booked under another; then the currency; then the amount)."""
    common: _Identity = {
        "psp_reference": row.psp_reference,
        "payment_order_id": row.payment_order_id,
        "line": row.line,
        "seller_account": led.seller_account,
    }
    if led.payment_order_id != row.payment_order_id:
        cls, rule = rules.booked_under_another("PSP reference", f"order {led.payment_order_id}")
        return Mismatch(
            MISSING_IN_LEDGER,
            currency=row.currency,
            settlement_amount_minor=row.amount_minor,
            ledger_amount_minor=None,
            classification=cls,
            rule=rule,
            **common,
        )
    if led.currency != row.currency or led.amount_minor != row.amount_minor:
        currency_differs = led.currency != row.currency
        cls, rule = rules.CURRENCY if currency_differs else rules.AMOUNT
        return Mismatch(
            CURRENCY_MISMATCH if currency_differs else AMOUNT_MISMATCH,
            currency=row.currency,
            settlement_amount_minor=row.amount_minor,
            ledger_amount_minor=led.amount_minor,
            classification=cls,
            rule=rule,
            ledger_currency=led.currency if currency_differs else None,
            **common,
        )
    return None


class AdjustmentOutcomes:
    """The refund, chargeback and reversal rows' outcomes as ``sql/adjustments.sql`` gives them (which row took
    which of the window day's ledger adjustments, in line order), turned into counts and mismatches: each row
    taken is compared with its ledger adjustment; a row of another day is looked up by transaction id within
    ``bounds.max_point_lookups`` (``lookups``: what the charges used of it); the day's ledger adjustments no
    row took are ``MISSING_IN_SETTLEMENT``."""

    def __init__(
        self, ledger: LedgerSource, out: Collector, bounds: Bounds, lookups: int, note_seller: Callable[[Any], None]
    ):
        self.ledger, self.out, self.bounds, self.lookups, self.note_seller = ledger, out, bounds, lookups, note_seller
        self.counts = {
            record_type: {"rows": 0, "matched": 0, "mismatched": 0, "missing_in_settlement": 0}
            for record_type in adyen.MATCHED_ADJUSTMENTS
        }

    def outcome(
        self, outcome: str, row: AdjustmentEntry, txn_id: str | None, identical: bool, led: LedgerAdjustment | None
    ) -> None:
        """One row (in line order): ``outcome`` is the SQL's, ``led`` the ledger adjustment it took (TAKEN)."""
        self.counts[row.record_type]["rows"] += 1
        if outcome == "DUPLICATE":
            self.mismatch(
                DUPLICATE_IN_SETTLEMENT, row, rules.DUPLICATE_IDENTICAL if identical else rules.DUPLICATE_CONFLICTING
            )
            return
        if outcome == "LOOKUP":
            if self.lookups >= self.bounds.max_point_lookups:
                self.mismatch(MISSING_IN_LEDGER, row, rules.LOOKUP_BUDGET)
                return
            self.lookups += 1
            # the SQL looks up only a row that names a transaction: booked on another day than the PSP's
            led = self.ledger.find_adjustment(txn_id) if txn_id is not None else None
        if led is None or led.record_type != row.record_type:
            self.mismatch(MISSING_IN_LEDGER, row, rules.unknown_adjustment(row.record_type))
            return
        self.compare(row, led, txn_id)

    def compare(self, row: AdjustmentEntry, led: LedgerAdjustment, txn_id: str | None) -> None:
        self.note_seller(led)
        if led.payment_order_id != row.payment_order_id or (
            led.original_psp_reference and led.original_psp_reference != row.psp_reference
        ):
            self.mismatch(
                MISSING_IN_LEDGER,
                row,
                rules.booked_under_another(
                    f"{row.record_type} {row.modification_reference}",
                    f"order {led.payment_order_id}, payment {led.original_psp_reference}",
                ),
                led,
            )
        elif led.psp_reference and row.modification_reference and led.psp_reference != row.modification_reference:
            self.mismatch(
                MISSING_IN_LEDGER,
                row,
                rules.booked_under_another(f"{row.record_type} {txn_id}", f"PSP reference {led.psp_reference}"),
                led,
            )
        elif led.currency != row.currency:
            self.mismatch(CURRENCY_MISMATCH, row, rules.CURRENCY, led)
        elif led.amount_minor != row.amount_minor:
            self.mismatch(AMOUNT_MISMATCH, row, rules.AMOUNT, led)
        else:
            self.counts[row.record_type]["matched"] += 1

    def mismatch(
        self, kind: MismatchKind, row: AdjustmentEntry, rule: rules.Rule, led: LedgerAdjustment | None = None
    ) -> None:
        self.counts[row.record_type]["mismatched"] += 1
        self.out.add(
            Mismatch(
                kind,
                row.modification_reference or None,
                row.payment_order_id or None,
                row.currency,
                row.amount_minor,
                None if led is None or kind == MISSING_IN_LEDGER else led.amount_minor,
                rule[0],
                rule[1],
                line=row.line,
                ledger_currency=led.currency if led is not None and kind == CURRENCY_MISMATCH else None,
                seller_account=None if led is None else led.seller_account,
                record_type=row.record_type,
            )
        )

    def missing_in_settlement(self, led: LedgerAdjustment) -> None:
        """A ledger adjustment of the window day no row took (in transaction id order): absent from the file."""
        self.note_seller(led)
        self.counts[led.record_type]["missing_in_settlement"] += 1
        self.out.add(
            missing_in_settlement(led, led.psp_reference or led.txn_id, led.booked_at, record_type=led.record_type)
        )


# --- reading: the header, the rows -------------------------------------


def read_header(lines: Iterator[tuple[int, str | None]]) -> adyen.Layout:
    """Consume the header line and locate the columns."""
    for _, text in lines:
        if text is None:
            raise UnreadableFile("the header line exceeds the line-length bound")
        if not text.strip():
            continue
        try:
            header = adyen.split_line(text)
        except ValueError as err:
            raise UnreadableFile(f"unreadable header: {err}") from None
        return adyen.column_index([h.strip() for h in header])
    raise UnreadableFile("empty file (no header line)")


#: a settlement entry as the engine moves it: the fields of :class:`SettledEntry`, in its order
Entry = tuple[str, int, str, str, int, str]


class EntrySink(Protocol):
    """Where the fold puts the rows to be matched (in line order): :class:`~.columnar.EntryFile`, or a list's owner."""

    def add(self, entry: Entry) -> None: ...

    def extend(self, entries: list[Entry]) -> None: ...


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused for one pass. The pass creates millions of small
    acyclic objects (rows, entries: tuples of str and int) and may hold many of them (a
    Distributed Map chunk's entries); each automatic collection would traverse them all again. Reference counting still frees everything; cycles wait until after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fold_rows(
    lines: Iterator[tuple[int, str | None]], layout: adyen.Layout, bounds: Bounds, sink: EntrySink
) -> Partial:
    """Stream rows into a Partial and the sink (in batches when ``lines`` has them:
    a :class:`~.lines.Lines` over a :class:`~.lines.LineReader`)."""
    partial = Partial()
    batches = getattr(lines, "batches", None)
    if batches is not None:
        fold_batches(batches(), layout, bounds, partial, sink)
        return partial
    for item in adyen.iter_rows(lines, layout):
        entry = partial.add(item, bounds)
        if entry is not None:
            sink.add(entry)
    return partial


def fold_batches(
    batches: Iterable[tuple[int, list[str | None]]],
    layout: adyen.Layout,
    bounds: Bounds,
    partial: Partial,
    sink: EntrySink,
) -> None:
    """The row loop of a large file: what :meth:`Partial.add` does with what
    :func:`adyen.parse_row` returns, for the rows that are plainly valid ``Settled`` rows.

    Such a row (the bulk of any file) is checked and folded here with no per-row objects but
    its entry (amounts not seen yet are parsed with ``parse_minor``, as ``parse_row`` would);
    anything else (another record type, a quote, a formula-like, padded or malformed field,
    an unknown currency or time zone, a line too long) goes to ``parse_row`` and
    ``Partial.add`` unchanged, so every row ends exactly as it would there. The fast path
    accepts a row only if every check ``parse_row`` makes passes, and computes the same
    values; the equivalence is tested on every quirk and on seeded mutations
    (tests/reconciliation/test_fold.py). Entries reach the sink in line order."""
    if min(adyen._amount_plan(layout)[4:]) < 0:  # optional fee columns absent
        for first, texts in batches:
            for line, text in enumerate(texts, first):
                _fold_one(partial, sink.add, adyen.parse_or_reject(text, layout, line), bounds)
        return
    fold = _FastFold(layout, bounds, partial)
    for first, texts in batches:
        entries: list[Entry] = []
        fast, last_fast = fold.batch(first, texts, _clean_batch(texts), entries.append)
        if fast:
            fold.fast_rows += fast
            partial.rows += fast
            partial.last_line = max(partial.last_line, last_fast)
            if partial.rows > bounds.max_rows:
                raise UnreadableFile(f"more than {bounds.max_rows} rows")
        if entries:
            sink.extend(entries)  # in line order
    fold.finish()


class _FastFold:
    """The state :func:`fold_batches` carries from batch to batch: the layout's column positions
    and adyen's checks (unpacked into locals once per batch), the amount caches, and the
    running day count and per-currency-pair sums of the fast rows, folded into the Partial
    by :meth:`finish`."""

    def __init__(self, layout: adyen.Layout, bounds: Bounds, partial: Partial):
        self.layout, self.bounds, self.partial = layout, bounds, partial
        i_type, i_gross, i_net, i_psp, i_merchant, i_created, i_zone, _ = adyen._plan(layout)
        self.columns = (layout.width, i_type, i_gross, i_net, i_psp, i_merchant, i_created, i_zone)
        self.amount_at = adyen._amount_plan(layout)
        checks = (
            adyen.PAYMENT_TYPES,
            adyen._REFERENCE.match,
            adyen._TIMESTAMP.match,
            adyen.FORMULA_FIELD.search,
            adyen.to_utc,
        )
        self.amount_caches: dict[str, dict[str, int]] = {}  # currency -> adyen's cache of parsed amounts
        self.context = (*checks, partial, layout, bounds, self.amount_caches)
        self.sums: dict[tuple[str, str], list[int]] = {}  # (gross, net currency) -> gc, nd, nc, 4 fees
        self.days: dict[str, int] = {}
        self.bulk = 0  # SettledBulk rows among the fast ones (the others are Settled)
        self.fast_rows = 0
        self.day, self.day_rows, self.pair = "", 0, ("", "")
        self.acc = (0, 0, 0, 0, 0, 0, 0)  # the current pair's gc, nd, nc, commission, markup, scheme, interchange

    def batch(
        self, first: int, texts: list[str | None], clean: bool, append: Callable[[Entry], None]
    ) -> tuple[int, int]:
        """Fold one batch's rows (``clean``: see :func:`_clean_batch`); returns (fast rows, the last
        fast row's line). A field is taken as it is: a padded one (parse_row strips) fails a check.

        The one function of the deployed code over ~70 lines, on purpose: this is the per-row loop
        of millions of rows, kept in one frame with its state in locals (a helper per row would cost
        a call per row; measured in docs/benchmarks.md's reconciliation rows)."""
        width, i_type, i_gross, i_net, i_psp, i_merchant, i_created, i_zone = self.columns
        i_gd, i_gc, i_nd, i_nc, i_commission, i_markup, i_scheme, i_interchange = self.amount_at
        payment_types, plain_reference, timestamp, formula, to_utc, partial, layout, bounds, amount_caches = (
            self.context
        )
        day, day_rows, pair, bulk = self.day, self.day_rows, self.pair, self.bulk
        s_gc, s_nd, s_nc, s_co, s_ma, s_sc, s_in = self.acc
        fast = last_fast = 0
        for line, text in enumerate(texts, first):
            if (not clean and (text is None or '"' in text or formula(text) is not None)) or len(
                f := text.split(",")  # type: ignore[union-attr]  # (clean: no None text)
            ) != width:
                _fold_one(partial, append, adyen.parse_or_reject(text, layout, line), bounds)
                continue
            kind, psp, merchant = f[i_type], f[i_psp], f[i_merchant]
            gross_ccy = f[i_gross]
            net_ccy = f[i_net] or gross_ccy
            gross_cache, net_cache = amount_caches.get(gross_ccy), amount_caches.get(net_ccy)
            if (
                kind not in payment_types
                or gross_cache is None
                or net_cache is None
                or not psp
                or not merchant
                or plain_reference(psp) is None
                or plain_reference(merchant) is None
            ):
                if kind in payment_types:  # an unseen currency: look it up once
                    _add_amount_caches(amount_caches, gross_ccy, net_ccy)
                _fold_one(partial, append, adyen.parse_or_reject(text, layout, line), bounds)
                continue
            gross_debit = gross_cache.get(t) if (t := f[i_gd]) else 0
            gross_credit = gross_cache.get(t) if (t := f[i_gc]) else 0
            net_debit = net_cache.get(t) if (t := f[i_nd]) else 0
            net_credit = net_cache.get(t) if (t := f[i_nc]) else 0
            commission = net_cache.get(t) if (t := f[i_commission]) else 0
            markup = net_cache.get(t) if (t := f[i_markup]) else 0
            scheme = net_cache.get(t) if (t := f[i_scheme]) else 0
            interchange = net_cache.get(t) if (t := f[i_interchange]) else 0
            created, zone = f[i_created], f[i_zone]
            try:  # an amount not seen yet in its currency or a time in another zone: as parse_row would
                if (  # `is None` each, not `None in (...)`: no tuple per row, and the types narrow to int below
                    gross_debit is None
                    or gross_credit is None
                    or net_debit is None
                    or net_credit is None
                    or commission is None
                    or markup is None
                    or scheme is None
                    or interchange is None
                ):
                    gross_debit, gross_credit, net_debit, net_credit, commission, markup, scheme, interchange = (
                        _parse_amounts(
                            f,
                            self.amount_at,
                            gross_ccy,
                            net_ccy,
                            (gross_debit, gross_credit, net_debit, net_credit, commission, markup, scheme, interchange),
                        )
                    )
                utc = (zone == "UTC" or not zone) and timestamp(created) is not None
                charged_at = f"{created[:10]}T{created[11:]}Z" if utc else to_utc(created.strip(), zone.strip())
            except RowError:
                _fold_one(partial, append, adyen.parse_or_reject(text, layout, line), bounds)
                continue
            if gross_debit != 0 or gross_credit <= 0:  # after the time (a pure function): the same outcome
                _fold_one(partial, append, adyen.parse_or_reject(text, layout, line), bounds)
                continue
            fast += 1
            bulk += kind != "Settled"
            if charged_at[:10] != day:  # rows come day by day: counted in a local until the day changes
                _add_day(self.days, day, day_rows)
                day, day_rows = charged_at[:10], 0
            day_rows += 1
            if gross_ccy != pair[0] or net_ccy != pair[1]:  # likewise the totals, per currency pair
                _add_sums(self.sums, pair, (s_gc, s_nd, s_nc, s_co, s_ma, s_sc, s_in))
                pair = (gross_ccy, net_ccy)
                s_gc = s_nd = s_nc = s_co = s_ma = s_sc = s_in = 0
            s_gc, s_nd, s_nc = s_gc + gross_credit, s_nd + net_debit, s_nc + net_credit
            s_co, s_ma = s_co + commission, s_ma + markup  # two or three names at once: no tuple is built
            s_sc, s_in = s_sc + scheme, s_in + interchange
            append((psp, line, merchant, gross_ccy, gross_credit, charged_at))
            last_fast = line
        self.day, self.day_rows, self.pair, self.bulk, self.acc = (
            day,
            day_rows,
            pair,
            bulk,
            (s_gc, s_nd, s_nc, s_co, s_ma, s_sc, s_in),
        )
        return fast, last_fast

    def finish(self) -> None:
        """Fold what the fast rows counted into the Partial (after the last batch)."""
        partial, days, sums = self.partial, self.days, self.sums
        _add_day(days, self.day, self.day_rows)
        _add_sums(sums, self.pair, self.acc)
        kinds = {"Settled": self.fast_rows - self.bulk, "SettledBulk": self.bulk}
        partial.record_types.update({kind: count for kind, count in kinds.items() if count})
        partial.days.update(days)
        for (gross_ccy, net_ccy), acc in sums.items():
            gross = partial._sums(gross_ccy)
            gross["gross_credit"] += acc[0]
            net = gross if net_ccy == gross_ccy else partial._sums(net_ccy)
            for name, amount in zip(
                ("net_debit", "net_credit", "commission", "markup", "scheme_fees", "interchange"), acc[1:], strict=True
            ):
                net[name] += amount


def _clean_batch(texts: list[str | None]) -> bool:
    """Whether no line of the batch can need the per-line quote and formula checks: no line too
    long (a None), no quote, no formula-like field (a few C-level scans of the joined block)."""
    try:
        block = "\n".join(texts)  # type: ignore[arg-type]
    except TypeError:  # a None: a line too long
        return False
    return '"' not in block and not _formula_in(block)


def _add_amount_caches(amount_caches: dict[str, dict[str, int]], gross_ccy: str, net_ccy: str) -> None:
    """A payment row's currencies not seen yet (known ones only): adyen's amount cache of each."""
    for ccy in (gross_ccy, net_ccy):
        if ccy not in amount_caches and ccy in MINOR_UNITS:
            amount_caches[ccy] = adyen._amount_cache(ccy)


def _parse_amounts(
    f: list[str], amount_at: tuple[int, ...], gross_ccy: str, net_ccy: str, known: tuple[int | None, ...]
) -> list[int]:
    """A fast row's eight amounts (``known``: from adyen's caches, None if not seen yet in their
    currency), the others parsed (and cached) as ``parse_row`` would; raises :class:`RowError`
    when one does not parse."""
    parse_minor, names = adyen.parse_minor, adyen._AMOUNT_NAMES
    return [
        parse_minor(f[at], gross_ccy if n < 2 else net_ccy, names[n]) if value is None else value
        for n, (at, value) in enumerate(zip(amount_at, known, strict=True))
    ]


def _formula_in(block: str) -> bool:
    """Whether a field of these lines (joined by newlines) might start like a formula: a few
    C-level scans of the block; False means no line needs the per-column check."""
    if "=" in block or "+" in block or "@" in block or "\t" in block or "\r" in block:
        return True
    return block.startswith("-") or ",-" in block or "\n-" in block


def _add_day(days: dict[str, int], day: str, rows: int) -> None:
    if rows:  # none before the first row
        days[day] = days.get(day, 0) + rows


def _add_sums(sums: dict[tuple[str, str], list[int]], pair: tuple[str, str], amounts: tuple[int, ...]) -> None:
    if not pair[0]:  # none before the first row
        return
    acc = sums.get(pair)
    if acc is None:
        acc = sums[pair] = [0] * len(amounts)
    for i, amount in enumerate(amounts):
        acc[i] += amount


def _fold_one(
    partial: Partial,
    add: Callable[[Entry], None],
    item: adyen.SettlementRow | tuple[int, str, bool] | None,
    bounds: Bounds,
) -> None:
    if item is not None:
        entry = partial.add(item, bounds)
        if entry is not None:
            add(tuple(entry))  # type: ignore[arg-type]


def check_truncation(partial: Partial, ended_with_newline: bool) -> None:
    """A file whose last line has no terminator *and* ends early (fewer fields than the header,
    an open quote) was cut short in transit. A complete last row without a final newline is
    an ordinary row, rejected or not, like any other (Adyen writes such files)."""
    if not ended_with_newline and partial.last_incomplete and partial.last_incomplete == partial.last_line:
        raise UnreadableFile(f"truncated: the last line ({partial.last_line}) is incomplete")


def reconcile_adyen(
    lines: Iterator[tuple[int, str | None]],
    ended_with_newline: Callable[[], bool],
    ledger: LedgerSource,
    bounds: Bounds,
    day_hint: str | None = None,
    on_match: Callable[[LedgerEntry], None] | None = None,
) -> Result:
    """The single pass (see :func:`.columnar.reconcile_adyen`, which it is)."""
    from payments.reconciliation import columnar

    return columnar.reconcile_adyen(lines, ended_with_newline, ledger, bounds, day_hint, on_match)
