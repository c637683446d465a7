"""The Adyen Settlement Details Report: reading one row, and writing the simulated PSP's file.

Columns are found by their header names (Adyen lets merchants reorder and add
columns); :data:`REQUIRED` must be present, the fee columns are optional.
Amounts are unsigned decimal strings in the column's currency, written with Adyen's
decimals for it (Adyen's table, not ISO 4217's: IDR ``10000``, CLP ``5000.00``;
:func:`payments.psp.adyen_currencies.wire_exponent`); they are read by that exponent and
become integer minor units of our ISO 4217 money here, exactly (an amount our money
cannot hold, such as CLP ``4871.25``, rejects its row), and nowhere is a float involved. ``Creation Date`` is
local to the row's ``TimeZone`` and is converted to UTC (a day is a UTC day).

Record types and what the engine does with them:

* :data:`PAYMENT_TYPES` (``Settled``): one captured payment; matched against the ledger.
* :data:`MATCHED_ADJUSTMENTS` (``Refunded``, ``Chargeback``, ``ChargebackReversed``,
  ``SecondChargeback``): money moved back at the PSP for a payment, matched against the ledger's
  refund, chargeback, reversal and second chargeback transactions by the row's ``Modification
  Reference`` (the modification's own PSP reference; a dispute's for its three steps), like charges.
* the other :data:`ADJUSTMENT_TYPES` (``RefundedReversed``, ``ChargebackExternally``, ...): our
  ledger books no such thing, so each is a ``MISSING_IN_LEDGER`` for a human (rule ``adjustment: ...``).
* :data:`ACCOUNT_TYPES` (fees, payouts, corrections): merchant-account movements with no
  payment of ours behind them; recorded in the summary totals (fees, net, payouts).
* anything else: ``MISSING_IN_LEDGER``, ``UNCLASSIFIED`` (rule ``record type: unknown``).

CSV formula injection: a text field that a spreadsheet would evaluate
(starting with ``=``, ``+``, ``@``, a tab or a carriage return, or ``-`` followed by
something that is not a plain identifier) rejects *that row* with its line
number; the rest of the file is still reconciled (one poisoned row must not
hide a day of settlements), and the report writers escape every field anyway.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, Protocol, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from payments.kernel.config import env_name, settings
from payments.kernel.money import Money, exponent, is_currency
from payments.psp.adyen_currencies import to_adyen_minor, wire_exponent
from payments.reconciliation.model import RowError, UnreadableFile

COLUMNS = (
    "Company Account",
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Payment Method",
    "Creation Date",
    "TimeZone",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Exchange Rate",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Commission (NC)",
    "Markup (NC)",
    "Scheme Fees (NC)",
    "Interchange (NC)",
    "Payment Method Variant",
    "Modification Merchant Reference",
    "Batch Number",
)
REQUIRED = frozenset(
    {
        "Merchant Account",
        "Psp Reference",
        "Merchant Reference",
        "Creation Date",
        "TimeZone",
        "Type",
        "Gross Currency",
        "Gross Debit (GC)",
        "Gross Credit (GC)",
        "Net Currency",
        "Net Debit (NC)",
        "Net Credit (NC)",
    }
)
FEE_COLUMNS = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")
TEXT_COLUMNS = (
    "Company Account",
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Payment Method",
    "Modification Reference",
    "Payment Method Variant",
    "Modification Merchant Reference",
)

PAYMENT_TYPES = frozenset({"Settled", "SettledBulk"})
#: the adjustments of a payment that the report names and totals on their own (matched
#: against the ledger once it books refunds and chargebacks): type -> totals field
REFUNDED, CHARGEBACK, CHARGEBACK_REVERSED, SECOND_CHARGEBACK, REFUNDED_REVERSED = (
    "Refunded",
    "Chargeback",
    "ChargebackReversed",
    "SecondChargeback",
    "RefundedReversed",
)
ADJUSTMENT_TOTALS = {
    REFUNDED: "refunded",
    CHARGEBACK: "chargeback",
    CHARGEBACK_REVERSED: "chargeback_reversed",
    SECOND_CHARGEBACK: "second_chargeback",
    REFUNDED_REVERSED: "refunded_reversed",
}
#: the adjustments the ledger books (issue 18), and the ledger ``kind`` of each
MATCHED_ADJUSTMENTS = {
    REFUNDED: "REFUND",
    CHARGEBACK: "CHARGEBACK",
    CHARGEBACK_REVERSED: "CHARGEBACK_REVERSED",
    SECOND_CHARGEBACK: "SECOND_CHARGEBACK",
}
#: the adjustments that give money back to the PSP (a Gross Debit); the others return it (a Gross Credit)
DEBIT_ADJUSTMENTS = frozenset({REFUNDED, CHARGEBACK, SECOND_CHARGEBACK})
ADJUSTMENT_TYPES = frozenset(
    {
        "Refunded",
        "RefundedBulk",
        "RefundedReversed",
        "RefundedExternally",
        "Chargeback",
        "ChargebackReversed",
        "SecondChargeback",
        "ChargebackExternally",
        "ChargebackReversedExternally",
    }
)
ACCOUNT_TYPES = frozenset(
    {
        "Fee",
        "MiscCosts",
        "PaymentCost",
        "MerchantPayout",
        "DepositCorrection",
        "InvoiceDeduction",
        "Balancetransfer",
        "ReserveAdjustment",
        "CashOutInstruction",
    }
)

#: references become DynamoDB keys, report ids and tab-separated spill fields: kept plain. Every id
#: of ours (payments.kernel.ids: a letter or a digit, then letters, digits, '_' and '-') is of this
#: shape; Adyen's and other merchants' references may also hold '.' and ':' (real reports: "33992337.0")
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,79}$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_FORMULA_START = ("=", "+", "@", "\t", "\r")
_TIMESTAMP = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")


@dataclass(frozen=True, eq=False)
class Layout:
    """Where each column is in this file (-1: an optional column that is absent)."""

    width: int
    positions: dict[str, int]
    text_positions: tuple[tuple[str, int], ...]

    def at(self, name: str) -> int:
        return self.positions.get(name, -1)

    @property
    def amount_positions(self) -> tuple[int, ...]:
        """gross debit, gross credit, net debit, net credit, then the four fee columns (-1: absent)."""
        names = ("Gross Debit (GC)", "Gross Credit (GC)", "Net Debit (NC)", "Net Credit (NC)", *FEE_COLUMNS)
        return tuple(self.at(name) for name in names)


def column_index(header: list[str]) -> Layout:
    """Validate the header line and locate the columns."""
    if len(set(header)) != len(header):
        raise UnreadableFile("Adyen header repeats a column name")
    missing = sorted(REQUIRED - set(header))
    if missing:
        raise UnreadableFile(f"Adyen header lacks required columns: {', '.join(missing)}")
    positions = {name: i for i, name in enumerate(header)}
    return Layout(len(header), positions, tuple((name, positions[name]) for name in TEXT_COLUMNS if name in positions))


class IncompleteRow(RowError):
    """A row that ends early (fewer fields than the header, or an open quote): on the last
    line of a file without a final newline, the mark of a file cut short in transit."""


def split_line(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")  # what csv.reader returns for an unquoted line, ten times faster
    try:
        return next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration) as err:
        if "EOF" in str(err) or "unexpected end" in str(err):
            raise IncompleteRow(f"malformed CSV: {err}") from None
        raise RowError(f"malformed CSV: {err}") from None


def looks_like_formula(value: str) -> bool:
    if value.startswith(_FORMULA_START):
        return True
    return value.startswith("-") and not _IDENTIFIER.match(value)


_AMOUNT = re.compile(r"([0-9]{0,16})(?:\.([0-9]{1,8}))?")
#: parsed amounts per (Adyen's decimals, ISO 4217's) of a currency, by text: a settlement file repeats
#: the same few thousand amounts (prices, fees) hundreds of times; bounded, cleared when full
_AMOUNTS: dict[tuple[int, int], dict[str, int]] = {}
_AMOUNTS_MAX = 100_000


def _amount_cache(currency: str) -> dict[str, int]:
    digits = (wire_exponent(currency), exponent(currency))
    cache = _AMOUNTS.get(digits)
    if cache is None:
        cache = _AMOUNTS[digits] = {}
    return cache


def parse_minor(text: str, currency: str, column: str) -> int:
    """An unsigned decimal string to our minor units (ISO 4217); empty is zero. Exact: no float anywhere.

    Read by Adyen's decimals for the currency (:func:`~payments.psp.adyen_currencies.wire_exponent`:
    IDR 0, CLP 2), then held in ISO 4217 minor units (IDR ``10000`` is 1000000, CLP ``5000.00`` is
    5000); trailing zeros beyond Adyen's decimals are harmless, any other digit rejects the row, and
    so does an amount that ISO 4217 minor units cannot hold exactly (CLP ``4871.25``).
    Adyen writes amounts below one without the leading zero (``.91``): that is ``0.91``.
    """
    if not text:
        return 0
    cache = _amount_cache(currency)
    known = cache.get(text)
    if known is not None:
        return known
    digits, iso = wire_exponent(currency), exponent(currency)
    match = _AMOUNT.fullmatch(text)
    if match is None or not (match.group(1) or match.group(2)) or not text.isascii():
        raise RowError(f"{column} '{text[:40]}' is not an unsigned decimal amount")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > digits:
        if fraction[digits:].strip("0"):
            raise RowError(f"{column} '{text[:40]}' has more decimals than {currency} has at Adyen ({digits})")
        fraction = fraction[:digits]
    value: int = int(whole or "0") * 10**digits + (int(fraction.ljust(digits, "0")) if digits else 0)
    if iso >= digits:
        value *= 10 ** (iso - digits)
    else:
        value, rest = divmod(value, 10 ** (digits - iso))
        if rest:
            raise RowError(
                f"{column} '{text[:40]}' cannot be held exactly in {currency}'s ISO 4217 minor units ({iso} decimals)"
            )
    if len(cache) >= _AMOUNTS_MAX:
        cache.clear()
    cache[text] = value
    return value


#: The ``TimeZone`` abbreviations Adyen writes (the account's report zone, changing with
#: daylight saving: PST in winter, PDT in summer) and their UTC offsets in minutes
#: (../shared/specs/adyen/FACTS.md section 4). The abbreviation names the offset in force
#: when the row was written, so it is exact even in the repeated hour when clocks go back
#: (``01:30 PDT`` and ``01:30 PST`` are an hour apart), which an IANA zone alone cannot say.
#: Ambiguous abbreviations (``CST``: US Central or China; ``IST``: India, Ireland or Israel)
#: are not here: they are read only through :data:`ZONE_ENV` (see :func:`utc_offset`).
#: Anything else is unknown and the row is rejected (fail closed).
ABBREVIATIONS: dict[str, int] = {
    "UTC": 0,
    "GMT": 0,
    "WET": 0,
    "BST": 60,  # British Summer Time, the only BST Adyen's documentation names
    "WEST": 60,
    "CET": 60,
    "CEST": 120,
    "EET": 120,
    "EEST": 180,
    "MSK": 180,
    "EST": -300,
    "EDT": -240,
    "CDT": -300,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
    "SGT": 480,
    "HKT": 480,
    "JST": 540,
    "AEST": 600,
    "AEDT": 660,
}
#: the account's configured report zone (an IANA name such as ``America/Chicago``), when
#: the operator sets it: abbreviations are then checked against it (DST included) and the
#: ambiguous ones are resolved by it
ZONE_ENV = env_name("adyen_report_time_zone")


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _configured_zone() -> ZoneInfo | None:
    name = settings().adyen_report_time_zone
    if not name:
        return None
    try:
        return _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"{ZONE_ENV} '{name[:40]}' is not an IANA time zone") from None


def utc_offset(zone: str, moment: datetime) -> timedelta:
    """The UTC offset of a local ``moment`` labelled with Adyen's ``TimeZone`` value."""
    configured = _configured_zone()
    if configured is not None and zone not in ("UTC", "GMT"):
        # the abbreviation must be one the account's zone uses at that moment (either side
        # of a repeated hour): PDT in January is not Los Angeles time, whatever it claims
        for fold in (0, 1):
            candidate = moment.replace(tzinfo=configured, fold=fold)
            offset = candidate.utcoffset()  # never None for an aware datetime in a ZoneInfo
            if candidate.tzname() == zone and offset is not None:
                return offset
        if zone in ABBREVIATIONS or "/" not in zone:
            raise RowError(f"TimeZone '{zone[:40]}' is not in force in {configured.key} at {moment:%Y-%m-%d %H:%M:%S}")
    if zone in ABBREVIATIONS:
        return timedelta(minutes=ABBREVIATIONS[zone])
    if "/" in zone and zone.isascii():  # an IANA name (not what Adyen writes; accepted when unambiguous)
        try:
            offset = moment.replace(tzinfo=_zone(zone)).utcoffset()
        except (ZoneInfoNotFoundError, ValueError):
            offset = None
        if offset is not None:
            return offset
    raise RowError(f"TimeZone '{zone[:40]}' is unknown")


def to_utc(local: str, zone: str) -> str:
    """``2026-11-30 14:02:11`` in ``zone`` -> ``2026-11-30T13:02:11Z``."""
    if not _TIMESTAMP.match(local):
        raise RowError(f"Creation Date '{local[:40]}' is not YYYY-MM-DD HH:MM:SS")
    if zone in ("UTC", ""):
        return f"{local[:10]}T{local[11:]}Z"
    try:
        moment = datetime.fromisoformat(local)
    except ValueError:
        raise RowError(f"Creation Date '{local[:40]}' is not a valid date and time") from None
    try:
        utc = moment - utc_offset(zone, moment)
    except OverflowError:
        raise RowError(f"Creation Date '{local[:40]}' is out of range") from None
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


class SettlementRow(NamedTuple):
    line: int
    record_type: str
    psp_reference: str
    merchant_reference: str
    charged_at: str  # UTC, second precision
    gross_currency: str
    gross_debit: int
    gross_credit: int
    net_currency: str
    net_debit: int
    net_credit: int
    fees: tuple[int, int, int, int]  # commission, markup, scheme fees, interchange (net currency)
    batch_number: str
    #: an adjustment's own PSP reference and merchant reference (a refund's: our refund_id);
    #: read for the record types the ledger matches (:data:`MATCHED_ADJUSTMENTS`) only
    modification_reference: str = ""
    modification_merchant_reference: str = ""

    @property
    def day(self) -> str:
        return self.charged_at[:10]


_FORMULA_FIRST = frozenset("=+@\t\r-")
#: a field (of any column) that starts like a formula, in one line or a block of lines: a
#: block without one needs no per-column check (see :func:`looks_like_formula`)
FORMULA_FIELD = re.compile(r"(?:^|,)[=+@\t\r-]", re.MULTILINE)
_AMOUNT_NAMES = ("Gross Debit (GC)", "Gross Credit (GC)", "Net Debit (NC)", "Net Credit (NC)", *FEE_COLUMNS)


@lru_cache(maxsize=16)
def _plan(layout: Layout) -> tuple[int, ...]:
    at = layout.at
    return (
        at("Type"), at("Gross Currency"), at("Net Currency"), at("Psp Reference"), at("Merchant Reference"),
        at("Creation Date"), at("TimeZone"), at("Batch Number"),
    )  # fmt: skip


def parse_row(fields: list[str], layout: Layout, line: int) -> SettlementRow:
    if len(fields) != layout.width:
        error = IncompleteRow if len(fields) < layout.width else RowError
        raise error(f"expected {layout.width} fields, found {len(fields)}")
    for name, index in layout.text_positions:
        value = fields[index]
        if value and value[0] in _FORMULA_FIRST and looks_like_formula(value):
            raise RowError(f"{name} looks like a spreadsheet formula")
    i_type, i_gross, i_net, i_psp, i_merchant, i_created, i_zone, i_batch = _plan(layout)
    record_type = fields[i_type].strip()
    if not record_type:
        raise RowError("Type is empty")
    raw = [fields[i].strip() if i >= 0 else "" for i in _amount_plan(layout)]
    gross_ccy = fields[i_gross].strip()
    net_ccy = (fields[i_net].strip() if i_net >= 0 else "") or gross_ccy
    if not gross_ccy and record_type not in PAYMENT_TYPES and not (raw[0] or raw[1]):
        # account-level rows (Fee, MerchantPayout, Balancetransfer, ...) carry their amount
        # only in the Net columns, with an empty Gross Currency: they are in the net currency
        gross_ccy = net_ccy
    if not is_currency(gross_ccy):
        raise RowError(f"Gross Currency '{gross_ccy[:10]}' is not an active ISO 4217 code")
    if net_ccy != gross_ccy and not is_currency(net_ccy):
        raise RowError(f"Net Currency '{net_ccy[:10]}' is not an active ISO 4217 code")
    psp_reference, merchant_reference = fields[i_psp].strip(), fields[i_merchant].strip()
    if psp_reference and not _REFERENCE.match(psp_reference):
        raise RowError("Psp Reference is not a plain reference")
    if merchant_reference and not _REFERENCE.match(merchant_reference):
        raise RowError("Merchant Reference is not a plain reference")
    gross_cache, net_cache = _amount_cache(gross_ccy), _amount_cache(net_ccy)
    caches = (gross_cache, gross_cache, net_cache, net_cache, net_cache, net_cache, net_cache, net_cache)
    amounts = [cache.get(text) if text else 0 for cache, text in zip(caches, raw, strict=True)]
    if None in amounts:  # not seen yet in this currency: parse (and remember) it
        amounts = [
            parse_minor(text, gross_ccy if n < 2 else net_ccy, _AMOUNT_NAMES[n]) if amount is None else amount
            for n, (text, amount) in enumerate(zip(raw, amounts, strict=True))
        ]
    known = cast("list[int]", amounts)  # every None was parsed just above (a cast costs nothing per row)
    row = SettlementRow(
        line,
        record_type,
        psp_reference,
        merchant_reference,
        to_utc(fields[i_created].strip(), fields[i_zone].strip()),
        gross_ccy,
        known[0],
        known[1],
        net_ccy,
        known[2],
        known[3],
        (known[4], known[5], known[6], known[7]),
        fields[i_batch].strip() if i_batch >= 0 else "",
    )
    if record_type in PAYMENT_TYPES:
        if not psp_reference or not merchant_reference:
            raise RowError(f"{record_type} row without Psp Reference or Merchant Reference")
        if row.gross_credit <= 0 or row.gross_debit != 0:
            raise RowError(f"{record_type} row must have a positive Gross Credit (GC) and no Gross Debit (GC)")
    elif record_type in MATCHED_ADJUSTMENTS:
        return _adjustment(row, fields, layout)
    return row


def _adjustment(row: SettlementRow, fields: list[str], layout: Layout) -> SettlementRow:
    """A ``Refunded``, ``Chargeback`` or ``ChargebackReversed`` row with its modification's
    references (checked plain like the others: they become keys). Nothing else is required of
    it: a row the engine cannot match (no Modification Reference) is a mismatch, not a rejection."""
    at = layout.at("Modification Reference")
    modification = fields[at].strip() if at >= 0 else ""
    at = layout.at("Modification Merchant Reference")
    modification_merchant = fields[at].strip() if at >= 0 else ""
    if modification and not _REFERENCE.match(modification):
        raise RowError("Modification Reference is not a plain reference")
    if modification_merchant and not _REFERENCE.match(modification_merchant):
        raise RowError("Modification Merchant Reference is not a plain reference")
    return row._replace(modification_reference=modification, modification_merchant_reference=modification_merchant)


def adjustment_amount(row: SettlementRow) -> int:
    """What an adjustment moved, in gross minor units, positive on the side Adyen books it: a
    refund or a chargeback is a Gross Debit, a chargeback reversal a Gross Credit."""
    if row.record_type in DEBIT_ADJUSTMENTS:
        return row.gross_debit - row.gross_credit
    return row.gross_credit - row.gross_debit


@lru_cache(maxsize=16)
def _amount_plan(layout: Layout) -> tuple[int, ...]:
    return layout.amount_positions


# --- writing (the simulated PSP's nightly report) ------------------------------------


class Writable(Protocol):
    def write(self, text: str) -> Any: ...


COMPANY_ACCOUNT = "PaymentsMarketplace"
#: the simulated PSP's pricing, in basis points of the gross amount (integer arithmetic)
INTERCHANGE_BPS, SCHEME_FEE_BPS, MARKUP_BPS = 80, 12, 60
_EPOCH = date(2020, 1, 1)


def batch_number(day: str) -> int:
    """Adyen numbers settlement batches sequentially; the simulator numbers them by day."""
    return (date.fromisoformat(day) - _EPOCH).days + 1


def fees_for(amount_minor: int, currency: str) -> tuple[int, int, int, int]:
    """(commission, markup, scheme fees, interchange) in our minor units: a fixed commission of 0.10
    of the currency's major unit (at least one minor unit) plus percentage fees, always less than the
    gross so that the net is positive. Each is a whole number of the coarser of ISO 4217's and Adyen's
    minor units, so that the report can write it with Adyen's decimals and we can read it back exactly
    (IDR: whole rupiah; CLP: whole pesos)."""
    iso, adyen = exponent(currency), wire_exponent(currency)
    scale = 10 ** max(0, iso - adyen)  # our minor units per unit of the coarser of the two
    coarse = amount_minor // scale
    commission = min(max(1, 10 ** min(iso, adyen) // 10), coarse // 10)
    return (
        commission * scale,
        coarse * MARKUP_BPS // 10_000 * scale,
        coarse * SCHEME_FEE_BPS // 10_000 * scale,
        coarse * INTERCHANGE_BPS // 10_000 * scale,
    )


def format_minor(minor: int, currency: str) -> str:
    """Our minor units (ISO 4217) as the report's decimal text, with Adyen's decimals for the currency
    (:func:`~payments.psp.adyen_currencies.wire_exponent`): IDR 1000000 is ``10000``, CLP 5000 is
    ``5000.00``, USD 1999 is ``19.99``. Exact, or InvalidAmount (never rounded)."""
    value = to_adyen_minor(Money(minor, currency), strict=False)
    digits = wire_exponent(currency)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def chargeback_fee(currency: str) -> int:
    """The simulated PSP's fee for handling a chargeback (Adyen books it in ``Markup (NC)`` of the
    ``Chargeback`` row, on top of the disputed amount): 10 of the currency's major unit."""
    return int(10 * 10 ** exponent(currency))  # int ** int is typed Any (a negative power is a float)


def write_report(
    charges: Iterable[dict[str, Any]], day: str, out: Writable, modifications: Iterable[dict[str, Any]] = ()
) -> int:
    """Write one day's Settlement Details Report: a ``Settled`` row per charge, then a row per
    refund, chargeback and chargeback reversal, then one ``MerchantPayout`` row per currency
    paying out the batch's net (none when the net is not positive: it carries over). Returns
    the row count.

    ``charges`` are the simulated PSP's records (``SimulatedPsp.charges_for_day``),
    consumed once as a stream; only per-currency totals are kept. ``modifications`` are
    ``SimulatedPsp.modifications_for_day``'s, written as Adyen writes them (the real reports in
    ``../shared/samples/adyen``): ``Psp Reference`` and ``Merchant Reference`` are the payment's,
    ``Modification Reference`` the modification's own PSP reference, ``Modification Merchant
    Reference`` a refund's reference (our refund_id); a ``Refunded`` row is a Gross and Net
    Debit with no fees, a ``Chargeback`` a Gross Debit whose Net Debit adds the chargeback fee
    (in ``Markup (NC)``), a ``ChargebackReversed`` a Gross and Net Credit (the fee stays).
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    batch = str(batch_number(day))
    payouts: dict[str, int] = {}  # currency -> the batch's net so far
    rows = _write_charges(writer, charges, batch, payouts)
    rows += _write_modifications(writer, modifications, batch, payouts)
    return rows + _write_payouts(writer, payouts, day, batch)


def _write_charges(writer: Any, charges: Iterable[dict[str, Any]], batch: str, payouts: dict[str, int]) -> int:
    """A ``Settled`` row per charge, its net added to ``payouts``; returns the row count."""
    rows = 0
    for charge in charges:
        ccy, amount = charge["currency"], int(charge["amount_minor"])
        commission, markup, scheme, interchange = fees_for(amount, ccy)
        net = amount - commission - markup - scheme - interchange
        payouts[ccy] = payouts.get(ccy, 0) + net
        created = charge["charged_at"][:19].replace("T", " ")
        writer.writerow(
            _row(
                charge.get("merchant_account", ""),
                charge["psp_reference"],
                charge["merchant_reference"],
                charge.get("payment_method", "visa"),
                created,
                "Settled",
                "",
                ccy,
                "",
                format_minor(amount, ccy),
                net_credit=format_minor(net, ccy),
                fees=[format_minor(f, ccy) for f in (commission, markup, scheme, interchange)],
                batch=batch,
            )
        )
        rows += 1
    return rows


def _write_modifications(
    writer: Any, modifications: Iterable[dict[str, Any]], batch: str, payouts: dict[str, int]
) -> int:
    """A row per refund, chargeback and chargeback reversal, its net added to ``payouts``;
    returns the row count."""
    rows = 0
    for modification in modifications:
        record_type, ccy, amount = (
            modification["record_type"],
            modification["currency"],
            int(modification["amount_minor"]),
        )
        gross_debit, gross_credit, net_debit, net_credit, net, fees = _modification_amounts(record_type, ccy, amount)
        payouts[ccy] = payouts.get(ccy, 0) + net
        writer.writerow(
            _row(
                modification.get("merchant_account", ""),
                modification["psp_reference"],
                modification["merchant_reference"],
                modification.get("payment_method", "visa"),
                modification["at"][:19].replace("T", " "),
                record_type,
                modification["modification_reference"],
                ccy,
                gross_debit,
                gross_credit,
                net_debit=net_debit,
                net_credit=net_credit,
                fees=fees,
                batch=batch,
                modification_merchant_reference=modification.get("modification_merchant_reference", ""),
            )
        )
        rows += 1
    return rows


def _modification_amounts(record_type: str, ccy: str, amount: int) -> tuple[str, str, str, str, int, list[str]]:
    """A modification row's (gross debit, gross credit, net debit, net credit) texts, its net
    in minor units (what it adds to the payout) and its four fee texts."""
    gross = format_minor(amount, ccy)
    fees = ["", "", "", ""]
    if record_type == CHARGEBACK_REVERSED:
        return "", gross, "", gross, amount, fees
    if record_type == CHARGEBACK:
        fee = chargeback_fee(ccy)
        fees[1] = format_minor(fee, ccy)
        return gross, "", format_minor(amount + fee, ccy), "", -(amount + fee), fees
    if record_type in (REFUNDED, SECOND_CHARGEBACK):  # the dispute's fee was charged with its first chargeback
        return gross, "", gross, "", -amount, fees
    raise ValueError(f"the simulated PSP writes no {record_type} rows")


def _write_payouts(writer: Any, payouts: dict[str, int], day: str, batch: str) -> int:
    """One ``MerchantPayout`` row per currency with a positive net; returns the row count."""
    rows = 0
    for ccy, net in sorted(payouts.items()):
        if net <= 0:
            continue  # nothing to pay out: the negative balance carries over to the next batch
        writer.writerow(
            _row(
                "",
                "",
                "",
                "",
                f"{day} 23:59:59",
                "MerchantPayout",
                f"payout-{batch}-{ccy}",
                ccy,
                "",
                "",
                net_debit=format_minor(net, ccy),
                fees=["", "", "", ""],
                batch=batch,
            )
        )
        rows += 1
    return rows


def _row(
    merchant_account: str,
    psp_reference: str,
    merchant_reference: str,
    method: str,
    created: str,
    record_type: str,
    modification: str,
    currency: str,
    gross_debit: str,
    gross_credit: str,
    *,
    fees: list[str],
    batch: str,
    net_debit: str = "",
    net_credit: str = "",
    modification_merchant_reference: str = "",
) -> list[str]:
    return [
        COMPANY_ACCOUNT,
        merchant_account,
        psp_reference,
        merchant_reference,
        method,
        created,
        "UTC",
        record_type,
        modification,
        currency,
        gross_debit,
        gross_credit,
        "1",
        currency,
        net_debit,
        net_credit,
        *fees,
        method,
        modification_merchant_reference,
        batch,
    ]


def parse_or_reject(text: str | None, layout: Layout, line: int) -> SettlementRow | tuple[int, str, bool] | None:
    """One physical line: its row, ``(line, reason, incomplete)`` if rejected, None if blank."""
    if text is None:
        return line, "line longer than the bound", False
    if not text.strip():
        return None
    try:
        return parse_row(split_line(text), layout, line)
    except RowError as err:
        return line, str(err), isinstance(err, IncompleteRow)


def iter_rows(
    lines: Iterator[tuple[int, str | None]], layout: Layout
) -> Iterator[SettlementRow | tuple[int, str, bool]]:
    """Parsed rows, or ``(line, reason, incomplete)`` for a rejected one (``incomplete``: the
    row ends early, see :class:`IncompleteRow`). Blank lines carry no data and are skipped."""
    for line, text in lines:
        if text is None:
            yield line, "line longer than the bound", False
            continue
        if not text.strip():
            continue
        try:
            yield parse_row(split_line(text), layout, line)
        except RowError as err:
            yield line, str(err), isinstance(err, IncompleteRow)
