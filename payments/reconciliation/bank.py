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
* camt.053: the standard library's ``xml.etree.ElementTree.iterparse``, statement by
  statement, clearing each ``Stmt`` after use: constant memory. ``pycamt`` was
  judged unsuitable: it parses the whole document into a tree (``fromstring``),
  converts amounts to ``float``, and is a young single-maintainer project.
  Document type declarations are refused before parsing (:mod:`.detect`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from payments.money import exponent, format_minor, is_currency
from payments.reconciliation.detect import CAMT053, MT940
from payments.reconciliation.engine import Result
from payments.reconciliation.lines import BinaryStream, LineReader, Metered
from payments.reconciliation.model import Bounds, Rejected, UnreadableFile

#: entries listed per statement in the report (all are summed and balance-checked)
MAX_LISTED_ENTRIES = 10_000


class PayoutBook(Protocol):
    def find_payout(self, currency: str, amount_minor: int) -> dict[str, Any] | None:
        """A PSP payout announced for this currency and amount, if any."""
        ...


def decimal_to_minor(amount: Decimal, currency: str) -> int:
    scaled = amount.scaleb(exponent(currency))
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
    statement_id: str
    account: str
    currency: str
    opening_minor: int
    closing_minor: int
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def credits(self) -> int:
        return sum(e.amount_minor for e in self.entries if e.amount_minor > 0)

    @property
    def debits(self) -> int:
        return -sum(e.amount_minor for e in self.entries if e.amount_minor < 0)

    @property
    def balanced(self) -> bool:
        return self.opening_minor + self.credits - self.debits == self.closing_minor

    def to_report(self, payouts: PayoutBook | None) -> tuple[dict[str, Any], int]:
        ccy = self.currency
        computed = self.opening_minor + self.credits - self.debits
        problems = list(self.problems)
        if computed != self.closing_minor:
            problems.append(
                f"opening {format_minor(self.opening_minor, ccy)} + credits {format_minor(self.credits, ccy)} - debits "
                f"{format_minor(self.debits, ccy)} = {format_minor(computed, ccy)}, but the closing balance is "
                f"{format_minor(self.closing_minor, ccy)}"
            )
        matched = 0
        listed = []
        for entry in self.entries:
            payout = payouts.find_payout(ccy, entry.amount_minor) if payouts is not None and entry.amount_minor > 0 else None
            matched += payout is not None
            if len(listed) < MAX_LISTED_ENTRIES:
                listed.append(
                    {
                        "booking_date": entry.booking_date,
                        "amount": format_minor(entry.amount_minor, ccy),
                        "reference": entry.reference,
                        "text": entry.text,
                        "payout": payout,
                    }
                )
        report = {
            "statement_id": self.statement_id,
            "account": self.account,
            "currency": ccy,
            "opening_balance": format_minor(self.opening_minor, ccy),
            "closing_balance": format_minor(self.closing_minor, ccy),
            "credits": format_minor(self.credits, ccy),
            "debits": format_minor(self.debits, ccy),
            "computed_closing_balance": format_minor(computed, ccy),
            "balanced": not problems,
            "problems": problems,
            "entries": listed,
            "entries_not_listed": max(0, len(self.entries) - MAX_LISTED_ENTRIES),
        }
        return report, matched


# --- MT940 ---------------------------------------------------------------------------------


def _mt940_statements(lines: Iterator[tuple[int, str | None]], rejected: list[Rejected]) -> Iterator[tuple[int, str]]:
    """(line of its :20: tag, text) per statement; SWIFT envelope lines ({1:..., -}) are dropped."""
    start, buffer = 0, []
    for line, text in lines:
        if text is None:
            rejected.append(Rejected(line, "line longer than the bound"))
            continue
        if text.startswith(":20:"):
            if buffer:
                yield start, "\n".join(buffer)
            start, buffer = line, []
        if text.startswith(("{", "-}")) or text.strip() == "-":
            continue
        if start:
            buffer.append(text)
        elif text.strip():
            rejected.append(Rejected(line, "text before the first statement (:20:)"))
    if buffer:
        yield start, "\n".join(buffer)


def _parse_mt940(lines: Iterator[tuple[int, str | None]], rejected: list[Rejected]) -> Iterator[Statement]:
    import mt940  # imported on first use: most runs reconcile a PSP report, not a bank statement

    for start, text in _mt940_statements(lines, rejected):
        try:
            parsed = mt940.models.Transactions()
            parsed.parse(text)
            data = parsed.data
            opening = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
            closing = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
            if opening is None or closing is None:
                raise ValueError("statement without an opening (:60F:/:60M:) or closing (:62F:/:62M:) balance")
            ccy = opening.amount.currency
            statement = Statement(
                statement_id=str(data.get("transaction_reference", "")),
                account=str(data.get("account_identification", "")),
                currency=ccy,
                opening_minor=decimal_to_minor(opening.amount.amount, ccy),
                closing_minor=decimal_to_minor(closing.amount.amount, ccy),
            )
            for txn in parsed:
                t = txn.data
                statement.entries.append(
                    Entry(
                        amount_minor=decimal_to_minor(t["amount"].amount, ccy),
                        booking_date=str(t.get("entry_date") or t.get("date") or ""),
                        reference=str(t.get("bank_reference") or t.get("customer_reference") or ""),
                        text=str(t.get("transaction_details") or ""),
                    )
                )
        except Exception as err:  # noqa: BLE001 - a third-party parser; any failure is this statement's rejection
            rejected.append(Rejected(start, f"MT940 statement not readable: {err}"[:300]))
            continue
        yield statement


# --- BAI2 ----------------------------------------------------------------------------------


def _parse_bai2(lines: Iterator[tuple[int, str | None]], rejected: list[Rejected]) -> Iterator[Statement]:
    from bai2 import bai2 as bai2_parser  # imported on first use, like mt940
    from bai2.constants import TypeCodeTransaction

    records = []
    for line, text in lines:
        if text is None:
            raise UnreadableFile(f"BAI2 record at line {line} exceeds the line-length bound")
        if text.strip():
            records.append(text.strip())
    try:
        document = bai2_parser.parse_from_lines(records, check_integrity=False)
    except Exception as err:  # noqa: BLE001 - any parser failure means the file's structure is broken
        raise UnreadableFile(f"BAI2 structure not readable: {err}"[:300]) from None
    for group in document.children:
        group_ccy = group.header.currency or "USD"  # BAI2's default currency is USD
        for account in group.children:
            header = account.header
            ccy = header.currency or group_ccy
            if not is_currency(ccy):
                rejected.append(Rejected(0, f"BAI2 account {header.customer_account_number}: unknown currency {ccy}"))
                continue
            summaries = {s.type_code.code: s.amount or 0 for s in header.summary_items}
            statement = Statement(
                statement_id=f"{group.header.as_of_date}/{header.customer_account_number}",
                account=str(header.customer_account_number),
                currency=ccy,
                opening_minor=summaries.get("010", 0),
                closing_minor=summaries.get("015", 0),
            )
            if "010" not in summaries or "015" not in summaries:
                statement.problems.append("account without opening (010) and closing (015) ledger balances")
            for detail in account.children:
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
            if control != account.trailer.account_control_total:
                statement.problems.append(
                    f"account control total {account.trailer.account_control_total} does not equal the records' sum {control}"
                )
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


def _signed_amount(element: ET.Element, ccy: str) -> int:
    amount = _child(element, "Amt")
    if amount is None:
        raise ValueError("an amount (Amt) is missing")
    try:
        minor = decimal_to_minor(Decimal((amount.text or "").strip()), amount.get("Ccy") or ccy)
    except InvalidOperation:
        raise ValueError(f"amount '{amount.text}' is not a decimal") from None
    return -minor if _text(element, "CdtDbtInd") == "DBIT" else minor


def _parse_camt053(stream: BinaryStream, rejected: list[Rejected]) -> Iterator[Statement]:
    try:
        for _, element in ET.iterparse(stream, events=("end",)):  # type: ignore[arg-type]
            if _local(element.tag) != "Stmt":
                continue
            statement_id = _text(element, "Id")
            try:
                yield _camt_statement(element, statement_id)
            except ValueError as err:
                rejected.append(Rejected(0, f"camt.053 statement {statement_id}: {err}"[:300]))
            element.clear()
    except ET.ParseError as err:
        raise UnreadableFile(f"truncated or malformed XML: {err}") from None


def _camt_statement(element: ET.Element, statement_id: str) -> Statement:
    acct = _child(element, "Acct")
    if acct is None:
        raise ValueError("no account (Acct)")
    account = _text(acct, "Id", "IBAN") or _text(acct, "Id", "Othr", "Id")
    balances: dict[str, int] = {}
    ccy = _text(acct, "Ccy")
    for bal in (c for c in element if _local(c.tag) == "Bal"):
        code = _text(bal, "Tp", "CdOrPrtry", "Cd")
        amt = _child(bal, "Amt")
        ccy = ccy or (amt.get("Ccy", "") if amt is not None else "")
        balances[code] = _signed_amount(bal, ccy)
    if not is_currency(ccy):
        raise ValueError(f"unknown currency '{ccy}'")
    opening = balances.get("OPBD", balances.get("PRCD"))
    closing = balances.get("CLBD")
    if opening is None or closing is None:
        raise ValueError("no opening (OPBD/PRCD) or closing (CLBD) balance")
    statement = Statement(statement_id, account, ccy, opening, closing)
    for entry in (c for c in element if _local(c.tag) == "Ntry"):
        status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
        if status and status != "BOOK":
            continue  # pending or informational entries do not move the booked balance
        statement.entries.append(
            Entry(
                amount_minor=_signed_amount(entry, ccy),
                booking_date=_text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm"),
                reference=_text(entry, "AcctSvcrRef") or _text(entry, "NtryRef"),
                text=_text(entry, "AddtlNtryInf") or _text(entry, "NtryDtls", "TxDtls", "RmtInf", "Ustrd"),
            )
        )
    return statement


# --- the entry point -----------------------------------------------------------------------


def reconcile_statement(fmt: str, stream: BinaryStream, bounds: Bounds, payouts: PayoutBook | None) -> Result:
    """Parse a bank file, balance-check each statement, match credits to PSP payouts."""
    rejected: list[Rejected] = []
    limited = Metered(stream, bounds.max_bank_statement_bytes)
    if fmt == CAMT053:
        statements = _parse_camt053(limited, rejected)
    else:
        reader = LineReader(limited, bounds.max_line_bytes)
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
        raise UnreadableFile(f"no readable {fmt} statement in the file" + (f" ({rejected[0].reason})" if rejected else ""))
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
    )
