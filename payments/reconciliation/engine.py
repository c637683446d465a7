"""The matching engine for Adyen settlement reports: a sorted-merge join in bounded memory.

Design
======
A settlement file and the ledger are two lists of payments keyed by PSP
reference. Loading either into a dict costs memory proportional to the day; at a
million rows that is hundreds of MiB. Instead both sides are brought into
``psp_reference`` order and merged like two sorted decks of cards:

* **Ledger side**: already sorted. The ledger's ``by_settlement_day`` index has
  ``psp_reference`` as its sort key, so a Query streams the day in order
  (:class:`~payments.reconciliation.sources.LedgerSource`). Memory: one page.
* **Settlement side**: rows arrive in the file's order. Each ``Settled`` row becomes a
  compact entry (a plain tuple of :class:`SettledEntry`'s fields, ~400 bytes in memory); every ``Bounds.run_rows``
  entries are sorted and spilled to a temporary file as one *sorted run*
  (an external merge sort). The runs are then merged (:func:`merge_runs`, a batch at a time), which
  holds one batch of ``SPILL_BATCH`` entries per run. Memory: one run (~40 MiB at 100k rows) plus
  one batch per run, **flat in the file's size**; disk: ~100 bytes per row in ``/tmp``.
* Everything else a row carries (fees, net, record-type counts, rejected rows,
  unknown types) is folded into a :class:`Partial` as it streams by.
* **Refunds, chargebacks, reversals** (``Refunded``, ``Chargeback``, ``ChargebackReversed``, ``SecondChargeback``
  rows, far fewer than charges) are kept in the Partial as :class:`AdjustmentEntry` and,
  after the charges, matched by key with the ledger's adjustments booked on the window day
  (``LedgerSource.day_adjustments``; rows of another day by transaction id, within the
  point-lookup budget): matched, ``MISSING_IN_LEDGER``, ``MISSING_IN_SETTLEMENT``,
  ``AMOUNT_MISMATCH``, ``CURRENCY_MISMATCH``, ``DUPLICATE_IN_SETTLEMENT``, as for charges.

The distributed path (:mod:`.chunks`) is the same algorithm cut at different
places: each chunk of the file is one Partial plus one sorted run written to S3,
and the merge step joins the runs with the ledger exactly as here. That is why a
merge of N chunks equals the single pass (a test checks it).

Which ledger day: the file's *window day* is the UTC day most of its ``Settled``
rows were charged on (ties: the later day); with no ``Settled`` rows, the day the
caller infers from the object key (``.../2026-11-30.csv``), if any. Ledger
transactions of that day absent from the file are ``MISSING_IN_SETTLEMENT``. Rows
charged on other days (late settlements carried over) are looked up one by one by
merchant reference, at most ``Bounds.max_point_lookups`` times.

Every row ends in exactly one outcome, and :func:`merge_join` asserts it:
``rows == matched + row mismatches + rejected + recorded`` (architecture invariant 6).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import marshal
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from typing import Any, BinaryIO, NamedTuple, Self, TypedDict

from payments.kernel.errors import InvariantViolation
from payments.kernel.iso4217 import MINOR_UNITS
from payments.reconciliation import adyen, rules
from payments.reconciliation.detect import ADYEN
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
from payments.reconciliation.sources import LedgerAdjustment, LedgerEntry, LedgerSource, adjustment_txn_id

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
    """What the join needs of one ``Settled`` row; its spilled form is one tab-separated line
    (references are validated plain, see :mod:`.adyen`, so no field holds a tab).

    A named tuple: cheap to create, and its natural order is (PSP reference, line), the
    order of the sorted runs, so they sort and merge without a key function."""

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


class _Collector:
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


def merge_join(
    partial: Partial,
    runs: Sequence[Iterable[Entry]] | Sequence[Iterable[SettledEntry]],
    ledger: LedgerSource,
    bounds: Bounds,
    day_hint: str | None,
    on_match: Callable[[LedgerEntry], None] | None = None,
) -> Result:
    """Join the sorted settlement runs with the ledger's window day; classify every difference.
    ``on_match``: called with the ledger entry of each charge whose ``Settled`` row matched (once per
    charge of this file, in the join's order): what moves the charge from pending to available."""
    out = _Collector(bounds)
    for mismatch in partial.mismatches:
        out.add(mismatch)
    day = window_day(partial.days, day_hint)
    join = _Join(ledger, bounds, out, on_match)
    join.merge(runs, day)
    adjusted, join.lookups = _match_adjustments(
        partial.adjustments, ledger, day, out, bounds, join.lookups, join.note_seller
    )
    join.matched += sum(counts["matched"] for counts in adjusted.values())

    rejected = sorted(partial.rejected, key=attrgetter("line"))
    accounted = join.matched + out.row_mismatches + len(rejected) + partial.recorded
    if accounted != partial.rows:
        raise InvariantViolation(f"{partial.rows} rows but {accounted} outcomes: a row was lost or counted twice")
    return Result(
        format=ADYEN,
        rows=partial.rows,
        matched=join.matched,
        recorded=partial.recorded,
        rejected=rejected,
        mismatches=sorted(out.kept, key=Mismatch.sort_key),
        mismatches_omitted=out.omitted,
        totals={ccy: partial.totals[ccy] for ccy in sorted(partial.totals)},
        record_types=dict(sorted(partial.record_types.items())),
        window_day=day,
        seller_accounts=join.sellers,
        sellers_truncated=join.truncated,
        adjustments=adjusted,
        settled_late=join.settled_late,
    )


def _missing_in_settlement(
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


class _Join:
    """The state of one merge join of the settled rows with the ledger: the outcomes (in
    ``out``), the matched count, the seller accounts seen and the point lookups used."""

    def __init__(
        self,
        ledger: LedgerSource,
        bounds: Bounds,
        out: _Collector,
        on_match: Callable[[LedgerEntry], None] | None = None,
    ):
        self.ledger, self.bounds, self.out = ledger, bounds, out
        self.on_match = on_match
        self.sellers: set[tuple[str, str]] = set()
        self.truncated = False
        self.matched = 0
        self.lookups = 0
        self.settled_late: list[dict[str, Any]] = []  # bounded by the point-lookup budget

    def merge(self, runs: Sequence[Iterable[Entry]] | Sequence[Iterable[SettledEntry]], day: str | None) -> None:
        """The sorted merge: each PSP reference's first row against the ledger entry of that
        reference (a match counted here, in a local), its other rows duplicates; ledger entries
        passed over are missing in the settlement, rows with no entry that day carried over."""
        sellers, note_seller, missing = self.sellers, self.note_seller, self.missing
        compare, carried_over, on_match = self.compare, self.carried_over, self.on_match
        matched = 0
        ledger_stream = _assert_ascending(self.ledger.day_entries(day) if day else iter(()))
        led = next(ledger_stream, None)
        first: Entry | None = None  # the first row of the current PSP reference
        for batch in itertools.chain(merge_runs(runs), [[_END]]):  # ascending by (psp_reference, line)
            for entry in batch:
                if first is not None:
                    if entry[0] == first[0] and entry is not _END:  # a duplicate of the current reference
                        self.duplicate(SettledEntry._make(entry), SettledEntry._make(first))
                        continue
                    # the current reference is complete: its first row against the ledger
                    reference = first[0]
                    while led is not None and led.psp_reference < reference:
                        missing(led)
                        led = next(ledger_stream, None)
                    if led is not None and led.psp_reference == reference:
                        if (
                            led.payment_order_id == first[2]
                            and led.currency == first[3]
                            and led.amount_minor == first[4]
                        ):
                            if (led.seller_account, led.currency) not in sellers:
                                note_seller(led)
                            matched += 1
                            if on_match is not None:
                                on_match(led)
                        else:
                            compare(SettledEntry._make(first), led)
                        led = next(ledger_stream, None)
                    else:
                        carried_over(SettledEntry._make(first))
                first = entry
        while led is not None:
            missing(led)
            led = next(ledger_stream, None)
        self.matched += matched

    def note_seller(self, entry: LedgerEntry) -> None:
        account = (entry.seller_account, entry.currency)
        if account in self.sellers:
            return
        if len(self.sellers) < self.bounds.max_three_way_sellers:
            self.sellers.add(account)
        else:
            self.truncated = True

    def duplicate(self, duplicate: SettledEntry, first: SettledEntry) -> None:
        cls, rule = rules.DUPLICATE_IDENTICAL if duplicate.same_payment(first) else rules.DUPLICATE_CONFLICTING
        self.out.add(
            Mismatch(
                DUPLICATE_IN_SETTLEMENT,
                duplicate.psp_reference,
                duplicate.payment_order_id,
                duplicate.currency,
                duplicate.amount_minor,
                None,
                cls,
                rule,
                line=duplicate.line,
            )
        )

    def compare(self, row: SettledEntry, led: LedgerEntry) -> None:
        self.note_seller(led)
        common: _Identity = {
            "psp_reference": row.psp_reference,
            "payment_order_id": row.payment_order_id,
            "line": row.line,
            "seller_account": led.seller_account,
        }
        if led.payment_order_id != row.payment_order_id:
            cls, rule = rules.booked_under_another("PSP reference", f"order {led.payment_order_id}")
            self.out.add(
                Mismatch(
                    MISSING_IN_LEDGER,
                    currency=row.currency,
                    settlement_amount_minor=row.amount_minor,
                    ledger_amount_minor=None,
                    classification=cls,
                    rule=rule,
                    **common,
                )
            )
        elif led.currency != row.currency or led.amount_minor != row.amount_minor:
            currency_differs = led.currency != row.currency
            cls, rule = rules.CURRENCY if currency_differs else rules.AMOUNT
            self.out.add(
                Mismatch(
                    CURRENCY_MISMATCH if currency_differs else AMOUNT_MISMATCH,
                    currency=row.currency,
                    settlement_amount_minor=row.amount_minor,
                    ledger_amount_minor=led.amount_minor,
                    classification=cls,
                    rule=rule,
                    ledger_currency=led.currency if currency_differs else None,
                    **common,
                )
            )
        else:
            self.matched += 1
            if self.on_match is not None:
                self.on_match(led)

    def carried_over(self, row: SettledEntry) -> None:
        if self.lookups >= self.bounds.max_point_lookups:
            cls, rule = rules.LOOKUP_BUDGET
        else:
            self.lookups += 1
            found = self.ledger.find(row.payment_order_id)
            if found is not None and found.psp_reference == row.psp_reference:
                before = self.matched
                self.compare(row, found)
                if self.matched > before:  # a charge of another day, settled in this file
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

    def missing(self, led: LedgerEntry) -> None:
        self.note_seller(led)
        self.out.add(_missing_in_settlement(led, led.psp_reference, led.charged_at))


def _match_adjustments(
    entries: list[AdjustmentEntry],
    ledger: LedgerSource,
    day: str | None,
    out: _Collector,
    bounds: Bounds,
    lookups: int,
    note_seller: Callable[[Any], None],
) -> tuple[dict[str, dict[str, int]], int]:
    """Match the file's refund, chargeback and reversal rows with the ledger's (like charges):
    each row by (record type, Modification Reference) or by the transaction id it names, first
    among the window day's ledger adjustments, then (a row of another day) by one point lookup
    within ``bounds.max_point_lookups``. The day's ledger adjustments left over are
    ``MISSING_IN_SETTLEMENT``. Returns the per-record-type counts and the lookups used."""
    matcher = _AdjustmentMatch(ledger, out, bounds, lookups, note_seller)
    matcher.index_day(day)
    for row in sorted(entries, key=attrgetter("line")):
        matcher.match(row)
    matcher.missing_in_settlement()
    return matcher.counts, matcher.lookups


class _AdjustmentMatch:
    """The state of :func:`_match_adjustments`: the day's ledger adjustments not matched yet (by
    key and by transaction id), the rows seen (for duplicates), the counts and lookups."""

    def __init__(
        self, ledger: LedgerSource, out: _Collector, bounds: Bounds, lookups: int, note_seller: Callable[[Any], None]
    ):
        self.ledger, self.out, self.bounds, self.lookups, self.note_seller = ledger, out, bounds, lookups, note_seller
        self.counts = {
            record_type: {"rows": 0, "matched": 0, "mismatched": 0, "missing_in_settlement": 0}
            for record_type in adyen.MATCHED_ADJUSTMENTS
        }
        self.by_key: dict[tuple[str, str], LedgerAdjustment] = {}
        self.by_txn: dict[str, LedgerAdjustment] = {}
        self.first_row: dict[str, AdjustmentEntry] = {}  # txn_id (or row key) -> the row that took it

    def index_day(self, day: str | None) -> None:
        for adjustment in self.ledger.day_adjustments(day) if day else ():
            self.by_txn[adjustment.txn_id] = adjustment
            if len(self.by_txn) > self.bounds.max_adjustment_rows:  # held in memory like the file's: the same bound
                raise UnreadableFile(
                    f"the ledger's day {day} has more than {self.bounds.max_adjustment_rows} refunds and chargebacks"
                )
            if adjustment.psp_reference:
                self.by_key[(adjustment.record_type, adjustment.psp_reference)] = adjustment

    def match(self, row: AdjustmentEntry) -> None:
        """One row (in line order): a duplicate, or found and compared, or missing in the ledger."""
        self.counts[row.record_type]["rows"] += 1
        txn_id = adjustment_txn_id(row.record_type, row.modification_reference, row.modification_merchant_reference)
        identity = txn_id or f"{row.record_type}#{row.modification_reference}"
        earlier = self.first_row.get(identity)
        if earlier is not None:
            self.mismatch(
                DUPLICATE_IN_SETTLEMENT,
                row,
                rules.DUPLICATE_IDENTICAL if row.same(earlier) else rules.DUPLICATE_CONFLICTING,
            )
            return
        self.first_row[identity] = row
        led = (
            self.by_key.pop((row.record_type, row.modification_reference), None) if row.modification_reference else None
        )
        if led is not None:
            self.by_txn.pop(led.txn_id, None)
        elif txn_id is not None:
            led = self.by_txn.pop(txn_id, None)
            if led is not None:
                self.by_key.pop((led.record_type, led.psp_reference), None)
            elif self.lookups < self.bounds.max_point_lookups:
                self.lookups += 1
                led = self.ledger.find_adjustment(txn_id)  # booked on another day than the PSP's
            else:
                self.mismatch(MISSING_IN_LEDGER, row, rules.LOOKUP_BUDGET)
                return
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

    def missing_in_settlement(self) -> None:
        """The day's ledger adjustments no row took: booked that day, absent from the file."""
        for led in sorted(self.by_txn.values(), key=attrgetter("txn_id")):
            self.note_seller(led)
            self.counts[led.record_type]["missing_in_settlement"] += 1
            self.out.add(
                _missing_in_settlement(led, led.psp_reference or led.txn_id, led.booked_at, record_type=led.record_type)
            )


def _assert_ascending(entries: Iterator[LedgerEntry]) -> Iterator[LedgerEntry]:
    previous = ""
    for entry in entries:
        if entry.psp_reference <= previous:
            raise InvariantViolation(
                f"ledger day stream not strictly ascending at {entry.psp_reference!r}: the merge join needs it sorted"
            )
        previous = entry.psp_reference
        yield entry


# --- reading: the header, the rows, the sorted runs -------------------------------------


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


#: after the last entry (never compared: it only closes the last PSP reference)
_END: Entry = ("", 0, "", "", 0, "")


def merge_runs(runs: Sequence[Iterable[Entry]] | Sequence[Iterable[SettledEntry]]) -> Iterator[list[Entry]]:
    """The runs (each ascending) merged into one ascending sequence, in batches.

    Like ``heapq.merge`` but a batch at a time: take the smallest of the runs' current last
    entries as a bound, move every run's entries up to it into one list and sort that
    (concatenated sorted pieces: a C-level merge). Everything left in any run is above
    the bound, so the batches follow each other in order. Memory: a batch per run."""
    sources = [_batches_of(run) for run in runs]
    heads: dict[int, list[Entry]] = {}
    for index, source in enumerate(sources):
        batch = next(source, None)
        if batch:
            heads[index] = batch
    while heads:
        if len(heads) == 1:
            ((index, batch),) = heads.items()
            yield batch
            yield from sources[index]
            return
        bound = min(batch[-1] for batch in heads.values())
        out: list[Entry] = []
        for index, batch in list(heads.items()):
            cut = bisect.bisect_right(batch, bound)
            out += batch[:cut]
            if cut < len(batch):
                heads[index] = batch[cut:]
            else:
                following = next(sources[index], None)
                if following:
                    heads[index] = following
                else:
                    del heads[index]
        out.sort()
        yield out


def _batches_of(run: Iterable[Entry] | Iterable[SettledEntry]) -> Iterator[list[Entry]]:
    if isinstance(run, _SpilledRun):
        yield from run.batches()
    elif isinstance(run, list):
        if run:
            yield run
    else:  # any other iterable of entries (a chunk's run streamed back from S3)
        batch: list[Entry] = []
        for entry in run:
            batch.append(tuple(entry))  # type: ignore[arg-type]
            if len(batch) >= SPILL_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


#: the sort key of a run: entries are added in line order and the sort is stable, so this
#: orders them by (PSP reference, line) as the whole tuple would, at a string sort's speed
_REFERENCE_OF = itemgetter(0)

#: entries per marshalled batch in a spilled run: what reading a run holds at a time
SPILL_BATCH = 4096
#: a settlement entry as the engine moves it: the fields of :class:`SettledEntry`, in its order
Entry = tuple[str, int, str, str, int, str]


class SortedRuns:
    """Collects entries; every ``run_rows`` of them are sorted and spilled to ``spill_dir``.

    A file with a single run never touches the disk. A spilled run is a sequence of
    ``marshal``-ed lists of plain tuples (written and read back only by this process, in
    its own temporary directory): a C-level dump and load, no per-entry parsing.
    Use as a context manager: the spill files are removed on exit.
    """

    def __init__(self, bounds: Bounds, spill_dir: str | None = None):
        self.bounds = bounds
        self._buffer: list[Entry] = []
        self._dir = tempfile.TemporaryDirectory(prefix="reconcile-", dir=spill_dir)
        self._paths: list[str] = []
        self._open: list[BinaryIO] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._open:
            handle.close()
        self._dir.cleanup()

    def add(self, entry: Entry) -> None:
        self._buffer.append(tuple(entry))  # type: ignore[arg-type]  # a plain tuple marshals
        if len(self._buffer) >= self.bounds.run_rows:
            self._spill()

    def extend(self, entries: list[Entry]) -> None:
        self._buffer.extend(entries)
        if len(self._buffer) >= self.bounds.run_rows:
            self._spill()

    def _spill(self) -> None:
        buffer = self._buffer
        buffer.sort(key=_REFERENCE_OF)  # stable, and added in line order: (psp_reference, line)
        path = os.path.join(self._dir.name, f"run-{len(self._paths):05d}.bin")
        with open(path, "wb") as handle:
            for start in range(0, len(buffer), SPILL_BATCH):
                data = marshal.dumps(buffer[start : start + SPILL_BATCH])
                handle.write(len(data).to_bytes(8, "little"))
                handle.write(data)
        self._paths.append(path)
        self._buffer = []

    def runs(self) -> list[Iterable[Entry]]:
        if not self._paths:
            self._buffer.sort(key=_REFERENCE_OF)
            return [self._buffer]
        if self._buffer:
            self._spill()
        runs: list[Iterable[Entry]] = []
        for path in self._paths:
            handle = open(path, "rb")  # noqa: SIM115 - closed in __exit__
            self._open.append(handle)
            runs.append(_SpilledRun(handle))
        return runs


class _SpilledRun:
    """One spilled run: length-prefixed marshalled batches (``marshal.load`` on a file object
    reads it a few bytes at a time; one ``read`` per batch and ``loads`` is ten times faster)."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle

    def batches(self) -> Iterator[list[Entry]]:
        while size := int.from_bytes(self._handle.read(8), "little"):
            yield marshal.loads(self._handle.read(size))  # noqa: S302 - our own spill file, written by this process

    def __iter__(self) -> Iterator[Entry]:
        for batch in self.batches():
            yield from batch


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused for one pass. The pass creates millions of small
    acyclic objects (rows, entries: tuples of str and int) and holds up to ``run_rows`` of
    them; each automatic collection would traverse them all again (a third of the pass's
    CPU at 250k rows). Reference counting still frees everything; cycles wait until after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fold_rows(
    lines: Iterator[tuple[int, str | None]], layout: adyen.Layout, bounds: Bounds, runs: SortedRuns
) -> Partial:
    """Stream rows into a Partial and the sorted runs (in batches when ``lines`` has them:
    a :class:`~.lines.Lines` over a :class:`~.lines.LineReader`)."""
    partial = Partial()
    batches = getattr(lines, "batches", None)
    if batches is not None:
        fold_batches(batches(), layout, bounds, partial, runs)
        return partial
    for item in adyen.iter_rows(lines, layout):
        entry = partial.add(item, bounds)
        if entry is not None:
            runs.add(entry)
    return partial


def fold_batches(
    batches: Iterable[tuple[int, list[str | None]]],
    layout: adyen.Layout,
    bounds: Bounds,
    partial: Partial,
    runs: SortedRuns,
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
    (tests/reconciliation/test_fold.py). Entries reach the runs in line order."""
    if min(adyen._amount_plan(layout)[4:]) < 0:  # optional fee columns absent
        for first, texts in batches:
            for line, text in enumerate(texts, first):
                _fold_one(partial, runs.add, adyen.parse_or_reject(text, layout, line), bounds)
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
            runs.extend(entries)  # in line order, as SortedRuns needs
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
    """The single pass: header, rows into runs, then the merge join (``on_match``: see :func:`merge_join`)."""
    layout = read_header(lines)
    with paused_gc(), SortedRuns(bounds) as runs:
        partial = fold_rows(lines, layout, bounds, runs)
        check_truncation(partial, ended_with_newline())
        return merge_join(partial, runs.runs(), ledger, bounds, day_hint, on_match)
