"""Bank statements (SWIFT MT940, BAI2, ISO 20022 camt.053): parsed, balance-checked, payouts matched.

What reconciling a bank statement means here
============================================
A bank statement knows nothing of PSP references or payment orders: it shows
what arrived on our bank account. Two things can be checked honestly:

1. **The statement is internally consistent**: opening balance + credits - debits
   = closing balance, per statement (per account). A failure is reported
   (``balanced: false`` and a ``problems`` entry), never a crash.
2. **PSP payouts arrived**: each credit entry is looked up among the payouts that
   reconciled PSP reports announced (``MerchantPayout`` rows, recorded by currency
   and amount in the reconciliation table). A hit is counted in ``matched``;
   every entry is listed with its payout match or ``null``.

Other bank movements (fees, transfers) are listed, not judged: there is nothing
of ours to compare them with. So a bank statement's report has ``rows`` = entries,
``matched`` = entries matched to a PSP payout, and no per-payment ``mismatches``.

Parsers
=======
* MT940: ``mt-940`` (WoLpH/mt940, maintained, typed, Decimal amounts). The file is
  streamed and cut into statements at each ``:20:`` tag; each statement is parsed
  alone, so memory is one statement, and an unparseable statement is a rejected
  row (its ``:20:`` line) rather than the loss of the whole file.
* BAI2: ``bai2`` (ministryofjustice/bai2, maintained, the only complete BAI2 parser on
  PyPI). It builds the whole file's model, so bank files are bounded by
  ``Bounds.max_bank_statement_bytes`` (16 MiB: a day of one bank's accounts is KiB).
  Amounts are integers in minor units already. Control totals are checked by us
  (reported as problems) rather than by the parser (which would raise).
* camt.053: ``defusedxml``'s ``iterparse`` (the standard library's, guarded), statement by
  statement, clearing each ``Stmt`` after use: constant memory. ``pycamt`` was
  judged unsuitable: it parses the whole document into a tree (``fromstring``),
  converts amounts to ``float``, and is a young single-maintainer project.
  No document type declaration is processed, wherever it sits in the file: the parser
  refuses a DTD (``forbid_dtd``), an entity and an external reference as it meets them, and
  the file is quarantined with that reason (:mod:`.detect` also refuses one in the file's head).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET  # the Element type only: XML is read through defusedxml
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import iterparse

from payments.kernel.money import exponent, format_minor, is_currency
from payments.reconciliation.detect import CAMT053, MT940, XML_DTD_REFUSED
from payments.reconciliation.engine import Result
from payments.reconciliation.lines import BinaryStream, LineReader, Metered
from payments.reconciliation.model import Bounds, Rejected, UnreadableFile

#: entries listed per statement in the report (all are summed and balance-checked)
MAX_LISTED_ENTRIES = 10_000


class PayoutBook(Protocol):
    def find_payout(self, currency: str, amount_minor: int) -> dict[str, Any] | None:
        """A PSP payout announced for this currency and amount, if any."""
        ...


#: currencies withdrawn from ISO 4217 that old statements still carry (the Deutsche Mark
#: before 2002): read with their former minor units, never accepted for a payment
WITHDRAWN_MINOR_UNITS = {
    "DEM": 2,
    "FRF": 2,
    "NLG": 2,
    "ATS": 2,
    "FIM": 2,
    "IEP": 2,
    "BEF": 0,
    "ITL": 0,
    "ESP": 0,
    "PTE": 0,
    "LUF": 0,
    "GRD": 0,
}


def known_currency(code: str) -> bool:
    return is_currency(code) or code in WITHDRAWN_MINOR_UNITS


def _exponent(currency: str) -> int:
    return WITHDRAWN_MINOR_UNITS[currency] if currency in WITHDRAWN_MINOR_UNITS else exponent(currency)


def fmt(minor: int, currency: str) -> str:
    if currency not in WITHDRAWN_MINOR_UNITS:
        return format_minor(minor, currency)
    digits = _exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def decimal_to_minor(amount: Decimal, currency: str) -> int:
    if not amount.is_finite():
        raise ValueError(f"{amount} is not an amount")
    if abs(amount.adjusted()) > 30:
        raise ValueError(f"{amount} is out of range")
    scaled = amount.scaleb(_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency} allows")
    return int(scaled)


@dataclass
class Entry:
    amount_minor: int  # signed: credit > 0, debit < 0
    booking_date: str
    reference: str
    text: str


@dataclass
class Statement:
    """One statement (one account's period). ``opening_minor``/``closing_minor`` are ``None``
    when the file has no such balance; ``control_credits``/``control_debits`` are a BAI2
    account's 100/400 totals, which check the entries when the balances are absent."""

    statement_id: str
    account: str
    currency: str
    opening_minor: int | None
    closing_minor: int | None
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    control_credits: int | None = None
    control_debits: int | None = None

    @property
    def credits(self) -> int:
        return sum(e.amount_minor for e in self.entries if e.amount_minor > 0)

    @property
    def debits(self) -> int:
        return -sum(e.amount_minor for e in self.entries if e.amount_minor < 0)

    def check(self) -> tuple[str, bool | None, list[str]]:
        """(how the statement was checked, balanced or None when it cannot be checked, problems)."""
        ccy, problems = self.currency, list(self.problems)
        if self.opening_minor is not None and self.closing_minor is not None:
            how = "opening + credits - debits = closing"
            computed = self.opening_minor + self.credits - self.debits
            if computed != self.closing_minor:
                problems.append(
                    f"opening {fmt(self.opening_minor, ccy)} + credits {fmt(self.credits, ccy)} - debits "
                    f"{fmt(self.debits, ccy)} = {fmt(computed, ccy)}, but the closing balance is "
                    f"{fmt(self.closing_minor, ccy)}"
                )
            return how, not problems, problems
        if self.control_credits is not None or self.control_debits is not None:
            how = "entries = control totals (100 credits, 400 debits)"
            for name, control, actual in (
                ("credits", self.control_credits, self.credits),
                ("debits", self.control_debits, self.debits),
            ):
                if control is not None and control != actual:
                    problems.append(f"{name} total {fmt(control, ccy)} in the file, entries sum to {fmt(actual, ccy)}")
            return how, not problems, problems
        missing = "opening" if self.opening_minor is None else "closing"
        return f"not possible: no {missing} balance", (False if problems else None), problems

    def to_report(self, payouts: PayoutBook | None) -> tuple[dict[str, Any], int]:
        ccy = self.currency
        how, balanced, problems = self.check()
        matched = 0
        listed: list[dict[str, Any]] = []
        for entry in self.entries:
            payout = (
                payouts.find_payout(ccy, entry.amount_minor) if payouts is not None and entry.amount_minor > 0 else None
            )
            matched += payout is not None
            if len(listed) < MAX_LISTED_ENTRIES:
                listed.append(
                    {
                        "booking_date": entry.booking_date,
                        "amount": fmt(entry.amount_minor, ccy),
                        "reference": entry.reference,
                        "text": entry.text,
                        "payout": payout,
                    }
                )
        opening, closing = self.opening_minor, self.closing_minor
        report = {
            "statement_id": self.statement_id,
            "account": self.account,
            "currency": ccy,
            "opening_balance": None if opening is None else fmt(opening, ccy),
            "closing_balance": None if closing is None else fmt(closing, ccy),
            "credits": fmt(self.credits, ccy),
            "debits": fmt(self.debits, ccy),
            "computed_closing_balance": None if opening is None else fmt(opening + self.credits - self.debits, ccy),
            "balance_check": how,
            "balanced": balanced,
            "problems": problems,
            "entries": listed,
            "entries_not_listed": max(0, len(self.entries) - MAX_LISTED_ENTRIES),
        }
        return report, matched


# --- MT940 ---------------------------------------------------------------------------------

#: the library reports every unparseable tag by logging its regex at ERROR level; with no
#: handler configured, Python's last-resort handler prints that to stderr. Our report
#: carries the reason (a rejected row), so the library's own log is silenced at its source.
_MT940_LOGGER = logging.getLogger("mt940")
_MT940_LOGGER.addHandler(logging.NullHandler())
_MT940_LOGGER.propagate = False

#: control characters some banks wrap a file in (mBank: SOH first, ETX last; DOS: SUB at the end)
_WRAPPERS = " \t\x01\x02\x03\x1a"
#: the bank codes (IBAN bank code / BIC prefix) of de Volksbank's brands, which put the
#: counterparty IBAN (up to 34 characters) in the :61: customer reference: the mt-940
#: library reads them with its own ``StatementASNB`` tag
_IBAN_REFERENCE_BANKS = frozenset({"ASNB", "SNSB", "RBRB"})
_ENVELOPE_BANK = re.compile(r"\{1:F01([A-Z]{4})")
_ACCOUNT_BANK = re.compile(r"^:25:[A-Z]{2}[0-9]{2}([A-Z]{4})", re.MULTILINE)
_BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$")
_ING_HEADER = re.compile(r"^[0-9]{4} [0-9]{2}[A-Z]{6}[A-Z0-9]{2}[A-Z0-9]*$")
_TRAILER = re.compile(r"^-(?:\}.*|[A-Z]{3})?$")
_FIRM_TRAILER = re.compile(r"^-(?:\}.*|[A-Z]{3})$")


def mt940_preamble(text: str) -> str | None:
    """The one place that decides what a bank puts around MT940 statements.

    Returns what the line is when it is a known bank header or trailer (dropped, never a
    statement's content), else ``None``. Called for lines outside a statement (before the
    first ``:20:``, after a statement's terminator); inside one only :func:`mt940_ends_statement`
    applies. Known forms:

    * SWIFT FIN envelopes: ``{1:F01...}{2:...}{3:}{4:`` before, ``-}`` / ``-}{5:...}`` after
    * Rabobank: a ``:940:`` first line
    * ABN AMRO: ``ABNANL2A`` / ``940`` / ``ABNANL2A`` before each statement
    * ING (old format): ``0000 01INGBNL2AXXXX00001`` / ``940 00`` before, ``-XXX`` after
    * mBank: SOH (0x01) alone on the first line, ``-`` + ETX (0x03) on the last
    * a bare ``-`` (the SWIFT end of a message text), blank lines
    """
    line = text.strip(_WRAPPERS)
    if not line:
        return "blank"
    if line.startswith("{"):
        return "SWIFT envelope"
    if _TRAILER.match(line):
        return "end of statement"
    if line in (":940:", "940", "940 00"):
        return "message type 940"
    if _BIC.match(line) or _ING_HEADER.match(line):
        return "bank header"
    return None


def mt940_ends_statement(text: str, after_dash: bool) -> bool:
    """Inside a statement: a firm terminator (``-}``, ``-XXX``), a new message header, or,
    after a bare ``-`` line, a bank header. A bare ``-`` alone does not end a statement:
    banks also wrap ``:86:`` text so that a line holds just ``-`` (ING); the library drops it."""
    line = text.strip(_WRAPPERS)
    if _FIRM_TRAILER.match(line) or line.startswith("{") or line == ":940:":
        return True
    return after_dash and line != "" and mt940_preamble(line) is not None


def _mt940_statements(
    lines: Iterator[tuple[int, str | None]], rejected: list[Rejected]
) -> Iterator[tuple[int, str, str]]:
    """(line of its :20: tag, text, bank code) per statement; headers and trailers are dropped."""
    buffer: list[str] = []
    start, bank, inside, after_dash = 0, "", False, False
    for line, raw in lines:
        if raw is None:
            rejected.append(Rejected(line, "line longer than the bound"))
            continue
        text = raw.strip(_WRAPPERS) if not raw.strip(_WRAPPERS).startswith(":") else raw.rstrip(_WRAPPERS)
        envelope = _ENVELOPE_BANK.search(text)
        if envelope:
            bank = envelope.group(1)
        if "{4:" in text and not text.startswith(":"):  # the envelope's text block may start on its line
            text = text.split("{4:", 1)[1]
            if not text.strip():
                continue
        if text.startswith(":20:"):
            if buffer:
                yield start, "\n".join(buffer), bank
            start, buffer, inside = line, [text], True
            continue
        if inside:
            if mt940_ends_statement(text, after_dash):
                yield start, "\n".join(buffer), bank
                buffer, inside = [], False
                if text.startswith("{"):
                    bank = envelope.group(1) if envelope else ""
            else:
                buffer.append(text)
                if text.strip(_WRAPPERS):
                    after_dash = text.strip(_WRAPPERS) == "-"
        elif mt940_preamble(text) is None:
            rejected.append(Rejected(line, "text outside a statement (before its :20: or after its end)"))
    if buffer:
        yield start, "\n".join(buffer), bank


def _mt940_tags(bank: str) -> dict[int | str, Any]:
    import mt940

    class WrappedStatementNumber(mt940.tags.StatementNumber):
        """``:28C:`` whose digits some banks wrap onto the next line (ING: ``0000`` / ``0``)."""

        pattern = r"""
        (?P<statement_number>\d{1,5}(?:\n\d{1,5})?)  # 5n, possibly wrapped
        (?:/?(?P<sequence_number>\d{1,5}))?  # [/5n]
        \s*$"""

    class WrappedStatement(mt940.tags.Statement):
        """``:61:`` whose supplementary details run over several lines (ING: ``/TRCD/...``)."""

        pattern = mt940.tags.Statement.pattern.replace(
            "(\\n?(?P<extra_details>.*))?", "(\\n?(?P<extra_details>(?:.|\\n)*))?"
        )

    tags: dict[int | str, Any] = {28: WrappedStatementNumber(), "28C": WrappedStatementNumber(), 61: WrappedStatement()}
    if bank in _IBAN_REFERENCE_BANKS:
        tags[61] = mt940.tags.StatementASNB()
    return tags


def _mt940_options() -> Any:
    import mt940

    # reversal_sign: RC (reversal of a credit) is money leaving the account, RD money coming
    # back; case_insensitive_marks: 'rc'/'d' likewise; the others keep every detail
    return mt940.Options(
        reversal_sign=True, case_insensitive_marks=True, unbounded_details=True, merge_keeps_values=True, strip_bom=True
    )


def _reason(err: BaseException) -> str:
    """A parser failure as deterministic text: never an object's repr (its address changes)."""
    args = err.args
    if isinstance(err, RuntimeError) and len(args) == 3 and hasattr(args[1], "id"):
        tag, value = args[1], str(args[2])
        return f"tag :{tag.id}: ({type(tag).__name__}) does not match {value[:80]!r}"
    return _ADDRESS.sub("", f"{type(err).__name__}: {err}")


_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


def _parse_mt940(lines: Iterator[tuple[int, str | None]], rejected: list[Rejected]) -> Iterator[Statement]:
    import mt940  # imported on first use: most runs reconcile a PSP report, not a bank statement

    options = _mt940_options()
    for start, text, bank in _mt940_statements(lines, rejected):
        account_bank = _ACCOUNT_BANK.search(text)
        try:
            parsed = mt940.models.Transactions(
                tags=_mt940_tags(account_bank.group(1) if account_bank else bank), options=options
            )
            parsed.parse(text)
            data = parsed.data
            opening = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
            closing = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
            balance = opening or closing
            if balance is None:
                raise ValueError("statement without an opening (:60F:/:60M:) and a closing (:62F:/:62M:) balance")
            ccy = str(balance.amount.currency)
            if not known_currency(ccy):
                raise ValueError(f"unknown currency '{ccy[:10]}'")
            if closing is not None and str(closing.amount.currency) != ccy:
                raise ValueError(f"closing balance in {closing.amount.currency}, opening balance in {ccy}")
            statement = Statement(
                statement_id=str(data.get("transaction_reference", "")),
                account=str(data.get("account_identification", "")),
                currency=ccy,
                opening_minor=None if opening is None else decimal_to_minor(opening.amount.amount, ccy),
                closing_minor=None if closing is None else decimal_to_minor(closing.amount.amount, ccy),
            )
            for txn in parsed:
                t = txn.data
                if "amount" not in t:
                    continue  # statement-level :86: after the closing balance, no :61:
                statement.entries.append(
                    Entry(
                        amount_minor=decimal_to_minor(t["amount"].amount, ccy),
                        booking_date=str(t.get("entry_date") or t.get("date") or ""),
                        reference=str(t.get("bank_reference") or t.get("customer_reference") or ""),
                        text=str(t.get("transaction_details") or ""),
                    )
                )
        except Exception as err:  # noqa: BLE001 - a third-party parser; any failure is this statement's rejection
            rejected.append(Rejected(start, f"MT940 statement not readable: {_reason(err)}"[:300]))
            continue
        yield statement


# --- BAI2 ----------------------------------------------------------------------------------

_BAI2_RECORD_START = re.compile(r"(?<=/)\s+(?=(?:01|02|03|16|49|88|98|99),)")
_BAI2_CODE = re.compile(r"^[0-9]{2},")
_TYPE_CODE = re.compile(r"^[0-9]{3}$")


def _account_identifier(fields: list[str]) -> str:
    """An ``03`` record's fields (continuations joined) made regular for the parser.

    Each summary is type code, amount, item count, funds type, then the availability the
    funds type announces (``V``: date and time; ``S``: three amounts; ``D``: a count and
    that many day/amount pairs). Some banks put an extra comma before a record's ``/``,
    which then shows up as an empty field where a summary should start: it is dropped.
    """
    out, rest = fields[:2], fields[2:]
    while rest:
        if not rest[0] and len(rest) > 1 and _TYPE_CODE.match(rest[1]):
            rest = rest[1:]  # the extra comma before a '/'
            continue
        if len(rest) < 4 and not any(rest):
            break  # trailing empty fields
        group, rest = rest[:4], rest[4:]
        funds = group[3] if len(group) == 4 else ""
        extra = {"V": 2, "S": 3}.get(funds.upper(), 0)
        if funds.upper() == "D" and rest:
            extra = 1 + 2 * int(rest[0]) if rest[0].isdigit() and len(rest[0]) < 4 else 1
        group, rest = group + rest[:extra], rest[extra:]
        out.extend(group)
    return ",".join(out)


def bai2_records(lines: Iterator[tuple[int, str | None]]) -> Iterator[tuple[int, str]]:
    """Logical BAI2 records from physical lines, made regular before the parser sees them:

    * several records packed on one physical line (each ending with ``/``) are split;
    * a physical line that starts with no record code continues the record before it
      (fixed-width exports wrap long records);
    * an ``88`` continuation of an account identifier (``03``) is joined to it here, with a
      field boundary at each ``/`` (``190/`` + ``88,500000`` is the summary ``190,500000``),
      and the summaries are regularised (:func:`_account_identifier`). Continuations of
      other records are left to the parser.
    """
    pending: tuple[int, str] | None = None

    def flush(item: tuple[int, str]) -> tuple[int, str]:
        line, record = item
        if record.startswith("03,"):
            body = record[3:]
            return line, "03," + _account_identifier([f.strip() for f in body.replace("/", ",").split(",")])
        if record.startswith("16,"):
            fields = record.split(",", 7)
            if len(fields) == 8 and fields[3].upper() == "S":  # an empty availability amount is zero
                fields[4:7] = [f.strip() or "0" for f in fields[4:7]]
                return line, ",".join(fields)
        return item

    for line, text in lines:
        if text is None:
            raise UnreadableFile(f"BAI2 record at line {line} exceeds the line-length bound")
        for piece in _BAI2_RECORD_START.split(text.strip(_WRAPPERS)):
            record = piece.strip()
            if not record:
                continue
            if pending is not None and not _BAI2_CODE.match(record):
                pending = (pending[0], pending[1] + record)
                continue
            if record.startswith("88,") and pending is not None and pending[1].startswith("03,"):
                head = pending[1].rstrip()
                pending = (pending[0], (head[:-1] if head.endswith("/") else head) + "," + record[3:])
                continue
            if pending is not None:
                yield flush(pending)
            pending = (line, record)
    if pending is not None:
        yield flush(pending)


#: what may follow each record code (``88`` continues the record before it)
_BAI2_NEXT = {
    "": {"01"},
    "01": {"02", "99"},
    "02": {"03", "98"},
    "03": {"16", "49"},
    "16": {"16", "49"},
    "49": {"03", "98"},
    "98": {"02", "99"},
    "99": set(),
}


def check_bai2_structure(records: list[tuple[int, str]]) -> None:
    """The record order BAI2 prescribes (01, then groups 02..98 of accounts 03..49, then 99),
    checked before the parser runs: the parser loops forever on a file that ends early."""
    previous = ""
    for line, record in records:
        code = record[:2]
        if code == "88" and previous:
            continue
        if code not in _BAI2_NEXT.get(previous, set()):
            after = f"after a {previous} record" if previous else "first"
            raise UnreadableFile(f"BAI2 structure: a {code[:2]!r} record at line {line} cannot come {after}")
        previous = code
    if previous != "99":
        raise UnreadableFile("BAI2 structure: the file ends before its 99 trailer (truncated)")


def _parse_bai2(lines: Iterator[tuple[int, str | None]], rejected: list[Rejected]) -> Iterator[Statement]:
    from bai2 import bai2 as bai2_parser  # imported on first use, like mt940
    from bai2.constants import TypeCodeTransaction

    numbered = list(bai2_records(lines))
    check_bai2_structure(numbered)
    records = [text for _, text in numbered]
    try:
        document = bai2_parser.parse_from_lines(records, check_integrity=False)
    except Exception as err:  # noqa: BLE001 - any parser failure means the file's structure is broken
        raise UnreadableFile(f"BAI2 structure not readable: {_reason(err)}"[:300]) from None
    for group in document.children:
        group_ccy = group.header.currency or "USD"  # BAI2's default currency is USD
        for account in group.children:
            header = account.header
            ccy = header.currency or group_ccy
            if not known_currency(ccy):
                rejected.append(
                    Rejected(0, f"BAI2 account {header.customer_account_number}: unknown currency {ccy}"[:300])
                )
                continue
            # a summary may be empty (``03,acct,USD,,,,,060,...``: no type code): it says nothing
            summaries = {s.type_code.code: s.amount for s in header.summary_items if s.type_code is not None}
            statement = Statement(
                statement_id=f"{group.header.as_of_date}/{header.customer_account_number}",
                account=str(header.customer_account_number),
                currency=ccy,
                opening_minor=summaries.get("010"),
                closing_minor=summaries.get("015"),
                control_credits=summaries.get("100"),
                control_debits=summaries.get("400"),
            )
            for detail in account.children:
                if detail.type_code is None:
                    raise UnreadableFile(
                        f"BAI2 account {header.customer_account_number}: a 16 record without a type code"
                    )
                sign = 1 if detail.type_code.transaction == TypeCodeTransaction.credit else -1
                statement.entries.append(
                    Entry(
                        amount_minor=sign * (detail.amount or 0),
                        booking_date=str(group.header.as_of_date),
                        reference=str(detail.bank_reference or detail.customer_reference or ""),
                        text=str(detail.text or ""),
                    )
                )
            control = sum(s.amount or 0 for s in header.summary_items) + sum(d.amount or 0 for d in account.children)
            declared = account.trailer.account_control_total
            if declared is not None and control != declared:  # a blank control total (49,,2/) declares nothing
                statement.problems.append(f"account control total {declared} does not equal the records' sum {control}")
            yield statement


# --- camt.053 ------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, *path: str) -> ET.Element | None:
    node: ET.Element | None = element
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _text(element: ET.Element, *path: str) -> str:
    node = _child(element, *path)
    return (node.text or "").strip() if node is not None else ""


def _signed_amount(element: ET.Element, ccy: str) -> tuple[int, str]:
    """The element's signed amount in minor units, and the currency its ``Amt`` names
    (``ccy`` when it names none). The caller compares that currency with the statement's."""
    amount = _child(element, "Amt")
    if amount is None:
        raise ValueError("an amount (Amt) is missing")
    named = (amount.get("Ccy") or ccy).strip()
    if not known_currency(named):
        raise ValueError(f"unknown currency '{named[:10]}'")
    try:
        minor = decimal_to_minor(Decimal((amount.text or "").strip()), named)
    except InvalidOperation:
        raise ValueError(f"amount '{(amount.text or '')[:40]}' is not a decimal") from None
    return (-minor if _text(element, "CdtDbtInd") == "DBIT" else minor), named


def _parse_camt053(stream: BinaryStream, rejected: list[Rejected]) -> Iterator[Statement]:
    try:
        for _, element in iterparse(stream, events=("end",), forbid_dtd=True):
            if _local(element.tag) != "Stmt":
                continue
            statement_id = _text(element, "Id")
            try:
                yield _camt_statement(element, statement_id)
            except ValueError as err:
                rejected.append(Rejected(0, f"camt.053 statement {statement_id}: {err}"[:300]))
            element.clear()
    except DTDForbidden:
        raise UnreadableFile(XML_DTD_REFUSED) from None
    except DefusedXmlException as err:  # an entity or an external reference (without a DTD: never reached)
        raise UnreadableFile(f"XML with {type(err).__name__} is refused: no entity is processed") from None
    except ET.ParseError as err:
        raise UnreadableFile(f"truncated or malformed XML: {err}") from None
    except (LookupError, ValueError) as err:  # an unknown or multi-byte encoding declaration
        raise UnreadableFile(f"XML not readable: {str(err)[:200]}") from None


def _camt_statement(element: ET.Element, statement_id: str) -> Statement:
    acct = _child(element, "Acct")
    if acct is None:
        raise ValueError("no account (Acct)")
    account = _text(acct, "Id", "IBAN") or _text(acct, "Id", "Othr", "Id")
    bals = [(_text(bal, "Tp", "CdOrPrtry", "Cd"), bal) for bal in element if _local(bal.tag) == "Bal"]
    # the statement's currency: the account's, else that of its opening (else first) balance
    ccy = _text(acct, "Ccy")
    if not ccy:
        first = next((b for code, b in bals if code in ("OPBD", "PRCD")), bals[0][1] if bals else None)
        amt = _child(first, "Amt") if first is not None else None
        ccy = (amt.get("Ccy", "") if amt is not None else "").strip()
    if not known_currency(ccy):
        raise ValueError(f"unknown currency '{ccy[:10]}'")
    problems: list[str] = []
    balances: dict[str, int] = {}
    for code, bal in bals:
        minor, named = _signed_amount(bal, ccy)
        if named != ccy:
            if code in ("OPBD", "PRCD", "CLBD"):
                problems.append(f"balance {code} is in {named}, the statement is in {ccy}: it cannot be compared")
            continue
        balances.setdefault(code, minor)
    opening = balances.get("OPBD", balances.get("PRCD"))
    closing = balances.get("CLBD")
    if opening is None and closing is None and not problems:
        raise ValueError("no opening (OPBD/PRCD) and no closing (CLBD) balance")
    statement = Statement(statement_id, account, ccy, opening, closing, problems=problems)
    for entry in (c for c in element if _local(c.tag) == "Ntry"):
        status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
        if status and status != "BOOK":
            continue  # pending or informational entries do not move the booked balance
        minor, named = _signed_amount(entry, ccy)
        reference = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
        if named != ccy:
            problems.append(f"entry {reference or '-'} is in {named}, the statement is in {ccy}: not summed")
            continue
        statement.entries.append(
            Entry(
                amount_minor=minor,
                booking_date=_text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm"),
                reference=reference,
                text=_text(entry, "AddtlNtryInf") or _text(entry, "NtryDtls", "TxDtls", "RmtInf", "Ustrd"),
            )
        )
    return statement


# --- the entry point -----------------------------------------------------------------------


def reconcile_statement(
    fmt: str, stream: BinaryStream, bounds: Bounds, payouts: PayoutBook | None, encoding: str = "utf-8"
) -> Result:
    """Parse a bank file, balance-check each statement, match credits to PSP payouts."""
    rejected: list[Rejected] = []
    limited = Metered(stream, bounds.max_bank_statement_bytes)
    if fmt == CAMT053:
        statements = _parse_camt053(limited, rejected)
    else:
        reader = LineReader(limited, bounds.max_line_bytes, encoding=encoding)
        statements = _parse_mt940(iter(reader), rejected) if fmt == MT940 else _parse_bai2(iter(reader), rejected)
    reports, rows, matched = [], 0, 0
    for statement in statements:
        report, hits = statement.to_report(payouts)
        reports.append(report)
        rows += len(statement.entries)
        matched += hits
        if rows > bounds.max_rows:
            raise UnreadableFile(f"more than {bounds.max_rows} statement entries")
    if not reports:
        raise UnreadableFile(
            f"no readable {fmt} statement in the file" + (f" ({rejected[0].reason})" if rejected else "")
        )
    return Result(
        format=fmt,
        rows=rows,
        matched=matched,
        recorded=rows - matched,
        rejected=rejected,
        mismatches=[],
        mismatches_omitted=0,
        totals={},
        record_types={},
        window_day=None,
        seller_accounts=set(),
        sellers_truncated=False,
        statements=reports,
        encoding="utf-8" if fmt == CAMT053 else encoding,
    )
