"""camt.053 statements and camt.054 notifications (versions 001.02 to 001.08), read entry by entry for payouts.

:mod:`payments.reconciliation.bank` reads camt.053 at the statement level (balances: opening + credits -
debits = closing) for the PSP's payouts to the platform; this reader goes one level down, to what a
payout reconciler needs: each entry (``Ntry``) with its transaction details (``NtryDtls/TxDtls``), the
``EndToEndId`` (= our ``payout_id``) and amount of each transaction, and returns (``RtrInf``: reason
code such as ``AC04`` account closed, ``AC06`` account blocked). Both parse through defusedxml.

* a **booked debit** (``CdtDbtInd`` DBIT, status ``BOOK``) carrying an ``EndToEndId`` is a payout the bank
  paid (:meth:`BankMessage.booked_payouts`);
* a transaction with ``RtrInf`` is a **return** (:meth:`BankMessage.returns`): for a credit transfer we sent,
  the money comes back as a credit; a returned direct debit is a debit. Its reason is the ISO code.

``Sts`` is read as text (``<Sts>BOOK</Sts>``, versions 02-03) or as ``<Sts><Cd>BOOK</Cd></Sts>``; pending
(``PDNG``) and informational entries are listed, never matched.

What does not add up makes the entry unmatchable (its problems are listed on it and on the message): the
entry's amount against the sum of its transactions' amounts, a batch's ``NbOfTxs`` or ``TtlAmt`` against the
transactions listed, transactions in another currency or direction than their entry, several transactions
without amounts, an ``EndToEndId`` repeated within the file, a summary (``TxsSummry``) that disagrees with the
entries. A reconciler reports those; it never matches them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # the Element type only: XML is read through defusedxml
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Literal

from payments.payouts.bank.xmlread import Amount, MessageType, amount, child, children, code, elements, reason, text
from payments.reconciliation.bank import fmt
from payments.reconciliation.model import UnreadableFile

VERSIONS = frozenset({"001.02", "001.03", "001.04", "001.05", "001.06", "001.07", "001.08"})
MESSAGES = frozenset({"camt.053", "camt.054"})
BOOKED = "BOOK"
#: the most entries one file may hold (a day of one account's payouts is far below)
MAX_ENTRIES = 200_000
#: the most transaction details one entry may hold
MAX_TRANSACTIONS_PER_ENTRY = 100_000

Direction = Literal["CRDT", "DBIT"]


@dataclass(frozen=True)
class BankTransaction:
    """One ``TxDtls``: ``amount`` is None when the file gives none (then a single transaction is its entry's)."""

    end_to_end_id: str
    amount: Amount | None
    direction: Direction | None
    return_reason: str | None
    return_info: str
    remittance: str

    @property
    def is_return(self) -> bool:
        return self.return_reason is not None


@dataclass(frozen=True)
class BankEntry:
    statement_id: str
    account: str
    amount: Amount
    direction: Direction
    status: str
    booking_date: str
    reference: str
    transactions: tuple[BankTransaction, ...]
    problems: tuple[str, ...] = ()

    @property
    def booked(self) -> bool:
        return self.status == BOOKED

    @property
    def matchable(self) -> bool:
        return self.booked and not self.problems


@dataclass(frozen=True)
class BookedPayout:
    """A booked debit of a transaction with an EndToEndId: the bank paid that payout."""

    end_to_end_id: str
    amount: Amount
    booking_date: str
    statement_id: str


@dataclass(frozen=True)
class Return:
    """A transaction with ``RtrInf``: the money came back (or, for a direct debit, went back)."""

    end_to_end_id: str
    amount: Amount
    direction: Direction
    reason: str
    info: str
    booking_date: str
    statement_id: str


@dataclass
class BankMessage:
    message: MessageType
    msg_id: str
    entries: list[BankEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def _matchable(self) -> list[tuple[BankEntry, BankTransaction, Amount]]:
        out = []
        for entry in self.entries:
            if not entry.matchable:
                continue
            for tx in entry.transactions:
                if tx.end_to_end_id:
                    out.append((entry, tx, tx.amount or entry.amount))
        return out

    def booked_payouts(self) -> list[BookedPayout]:
        """Booked debits with an EndToEndId that is not a return, from consistent entries only."""
        return [
            BookedPayout(tx.end_to_end_id, value, entry.booking_date, entry.statement_id)
            for entry, tx, value in self._matchable()
            if entry.direction == "DBIT" and not tx.is_return
        ]

    def returns(self) -> list[Return]:
        """Booked transactions with ``RtrInf``, from consistent entries only."""
        return [
            Return(
                tx.end_to_end_id,
                value,
                entry.direction,
                tx.return_reason or "",
                tx.return_info,
                entry.booking_date,
                entry.statement_id,
            )
            for entry, tx, value in self._matchable()
            if tx.is_return
        ]

    def payout_returns(self) -> list[Return]:
        """Returns of credit transfers we sent: the money comes back as a credit."""
        return [r for r in self.returns() if r.direction == "CRDT"]


def _direction(raw: str) -> Direction | None:
    return "CRDT" if raw == "CRDT" else "DBIT" if raw == "DBIT" else None


def _tx_amount(tx: ET.Element) -> ET.Element | None:
    """A TxDtls's amount: ``Amt`` (version 04 on), else ``AmtDtls/TxAmt/Amt``, else ``AmtDtls/InstdAmt/Amt``."""
    for path in (("Amt",), ("AmtDtls", "TxAmt", "Amt"), ("AmtDtls", "InstdAmt", "Amt")):
        found = child(tx, *path)
        if found is not None:
            return found
    return None


def _entry(element: ET.Element, statement_id: str, account: str, problems: list[str]) -> BankEntry:
    ref = text(element, "AcctSvcrRef") or text(element, "NtryRef") or "-"
    where = f"entry {ref}"
    direction = _direction(text(element, "CdtDbtInd"))
    if direction is None:
        raise ValueError(f"{where}: CdtDbtInd is neither CRDT nor DBIT")
    value = amount(child(element, "Amt"))
    own: list[str] = []
    txs: list[BankTransaction] = []
    batches = [b for details in children(element, "NtryDtls") for b in children(details, "Btch")]
    for details in children(element, "NtryDtls"):
        for tx in children(details, "TxDtls"):
            if len(txs) >= MAX_TRANSACTIONS_PER_ENTRY:
                raise UnreadableFile(f"{where}: more than {MAX_TRANSACTIONS_PER_ENTRY} transaction details")
            e2e = text(tx, "Refs", "EndToEndId")
            e2e = "" if e2e == "NOTPROVIDED" else e2e
            tx_amount: Amount | None = None
            raw = _tx_amount(tx)
            if raw is not None:
                try:
                    tx_amount = amount(raw)
                except ValueError as err:
                    own.append(f"{where}, transaction {e2e or '-'}: {err}")
            tx_direction = _direction(text(tx, "CdtDbtInd"))
            if tx_direction is not None and tx_direction != direction:
                own.append(f"{where}: transaction {e2e or '-'} is a {tx_direction} inside a {direction} entry")
            rtr = child(tx, "RtrInf")
            txs.append(
                BankTransaction(
                    end_to_end_id=e2e,
                    amount=tx_amount,
                    direction=tx_direction,
                    return_reason=(reason(rtr) or "unknown") if rtr is not None else None,
                    return_info=" ".join(t for t in (text(i) for i in children(rtr, "AddtlInf")) if t)
                    if rtr is not None
                    else "",
                    remittance=text(tx, "RmtInf", "Ustrd"),
                )
            )
    ccy = value.currency
    with_amount = [t.amount for t in txs if t.amount is not None]
    if len(txs) > 1 and len(with_amount) < len(txs):
        own.append(f"{where}: {len(txs) - len(with_amount)} of its {len(txs)} transactions carry no amount")
    other = sorted({a.currency for a in with_amount if a.currency != ccy})
    if other:
        own.append(f"{where}: transactions in {', '.join(other)}, the entry is in {ccy}: they cannot be summed")
    elif with_amount and len(with_amount) == len(txs):
        total = sum(a.minor for a in with_amount)
        if total != value.minor:
            own.append(
                f"{where}: the entry is {fmt(value.minor, ccy)} {ccy}, its transactions sum to {fmt(total, ccy)} {ccy}"
            )
    for batch in batches:
        declared = text(batch, "NbOfTxs")
        if declared and (not declared.isdigit() or int(declared) != len(txs)):
            own.append(f"{where}: its batch declares {declared[:15]} transactions, {len(txs)} are listed")
        total_el = child(batch, "TtlAmt")
        if total_el is not None and with_amount:
            try:
                batch_total = amount(total_el)
            except ValueError as err:
                own.append(f"{where}: batch total: {err}")
            else:
                listed = sum(a.minor for a in with_amount if a.currency == batch_total.currency)
                if listed != batch_total.minor:
                    own.append(
                        f"{where}: its batch totals {fmt(batch_total.minor, batch_total.currency)} "
                        f"{batch_total.currency}, the transactions listed sum to "
                        f"{fmt(listed, batch_total.currency)} {batch_total.currency}"
                    )
    problems.extend(own)
    return BankEntry(
        statement_id=statement_id,
        account=account,
        amount=value,
        direction=direction,
        status=code(element, "Sts"),
        booking_date=text(element, "BookgDt", "Dt") or text(element, "BookgDt", "DtTm")[:10],
        reference=ref,
        transactions=tuple(txs),
        problems=tuple(own),
    )


def _summary(element: ET.Element, counted: Counter[str], where: str, problems: list[str]) -> None:
    """``TxsSummry``: the number of credit and debit entries declared against those listed."""
    summary = child(element, "TxsSummry")
    if summary is None:
        return
    for name, direction in (("TtlCdtNtries", "CRDT"), ("TtlDbtNtries", "DBIT")):
        declared = text(summary, name, "NbOfNtries")
        if declared and (not declared.isdigit() or int(declared) != counted[direction]):
            problems.append(f"{where}: {name} declares {declared[:15]} entries, {counted[direction]} are listed")


def _accept(message: MessageType) -> str | None:
    if message.name not in MESSAGES or message.version not in VERSIONS:
        return f"{message} is not a camt.053 or camt.054 of a version read here (001.02-001.08)"
    return None


def read_camt(source: bytes | BinaryIO) -> BankMessage:
    """Read one camt.053 or camt.054 file. :class:`UnreadableFile` when it is neither (or not readable)."""
    result: BankMessage | None = None
    statement_id, account = "", ""
    counted: Counter[str] = Counter()
    wanted = frozenset({"GrpHdr", "Id", "Acct", "Ntry", "Stmt", "Ntfctn"})
    for message, element, parent in elements(source, wanted, _accept):
        if result is None:
            result = BankMessage(message=message, msg_id="")
        name = element.tag.rsplit("}", 1)[-1]
        in_statement = parent in ("Stmt", "Ntfctn")
        if name == "GrpHdr":
            result.msg_id = text(element, "MsgId")
        elif name == "Id" and in_statement:
            statement_id = (element.text or "").strip()
        elif name == "Acct" and in_statement:
            account = text(element, "Id", "IBAN") or text(element, "Id", "Othr", "Id")
        elif name == "Ntry" and in_statement:
            if len(result.entries) >= MAX_ENTRIES:
                raise UnreadableFile(f"more than {MAX_ENTRIES} entries")
            try:
                entry = _entry(element, statement_id, account, result.problems)
            except ValueError as err:
                result.problems.append(f"statement {statement_id or '-'}: {err}: the entry is not read")
            else:
                result.entries.append(entry)
                counted[entry.direction] += 1
            element.clear()
        elif name in ("Stmt", "Ntfctn"):
            _summary(element, counted, f"{name} {statement_id or '-'}", result.problems)
            statement_id, account, counted = "", "", Counter()
            element.clear()
    if result is None:
        raise UnreadableFile("empty camt document")
    _mark_repeats(result)
    return result


def _mark_repeats(result: BankMessage) -> None:
    seen = Counter(t.end_to_end_id for e in result.entries for t in e.transactions if t.end_to_end_id)
    repeated = {e2e for e2e, n in seen.items() if n > 1}
    if not repeated:
        return
    for e2e in sorted(repeated):
        result.problems.append(f"EndToEndId {e2e} appears {seen[e2e]} times: none of its entries is matched")
    result.entries = [
        replace(e, problems=(*e.problems, "an EndToEndId of it is repeated in the file"))
        if any(t.end_to_end_id in repeated for t in e.transactions)
        else e
        for e in result.entries
    ]
