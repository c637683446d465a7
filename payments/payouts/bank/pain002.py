"""pain.002 customer payment status reports (versions 001.03 to 001.10), read into typed results.

A bank answers each payment file (pain.001 for credit transfers) with one or more status reports:
a group status for the whole file (``OrgnlGrpInfAndSts``: ``OrgnlMsgId`` names the file), a status
per payment-information block (``OrgnlPmtInfAndSts``) and per transaction (``TxInfAndSts``, matched by
``OrgnlEndToEndId`` = our ``payout_id``), each with ISO reason codes (``AC01`` account identifier
incorrect, ``AC04`` account closed, ``AM04`` insufficient funds, ``DU01`` duplicate message...).

A transaction's :attr:`TransactionStatus.status` is its own ``TxSts``, else the status of its block,
else the file's: a whole-file ``RJCT`` with no transaction listed rejects every transaction of the
file, *except* ``DU01`` (duplicate message): that refuses the repeated delivery, not the original
file, whose own report stands (:attr:`StatusReport.duplicate_refused`).

What does not add up is listed in :attr:`StatusReport.problems` (a reconciler reports them and never
matches on them): a repeated ``OrgnlEndToEndId``, a transaction with no status at any level, an
unknown status code, an amount that is not one, counts per status (``NbOfTxsPerSts``) that disagree
with the transactions listed. Transactions involved are marked ``matchable=False``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # the Element type only: XML is read through defusedxml
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from payments.payouts.bank.xmlread import (
    Amount,
    MessageType,
    amount,
    child,
    children,
    elements,
    reason,
    text,
)
from payments.reconciliation.model import UnreadableFile

#: the pain.002 versions read (ISO 20022 customer payment status report)
VERSIONS = frozenset({"001.03", "001.04", "001.05", "001.06", "001.07", "001.08", "001.09", "001.10"})
#: ISO 20022 ExternalPaymentTransactionStatus1Code / ExternalPaymentGroupStatus1Code values
TRANSACTION_STATUSES = frozenset(
    {"ACCC", "ACCP", "ACSC", "ACSP", "ACTC", "ACWC", "ACWP", "ACFC", "BLCK", "PDNG", "RCVD", "RJCT", "CANC", "PART"}
)
#: final negative status: the payout failed
REJECTED = "RJCT"
#: the file was a duplicate of one already received (ISO 20022 ExternalStatusReason1Code)
DUPLICATE_MESSAGE = "DU01"
#: the most transactions one report may list (a payout file holds at most as many)
MAX_TRANSACTIONS = 100_000


@dataclass(frozen=True)
class TransactionStatus:
    end_to_end_id: str
    #: effective status: the transaction's own, else its block's, else the file's
    status: str
    #: ISO reason codes, in the order given (the transaction's own, else those of the level that set the status)
    reasons: tuple[str, ...]
    payment_info_id: str
    amount: Amount | None
    #: False when a problem of the report concerns this transaction: report it, never match it
    matchable: bool = True

    @property
    def rejected(self) -> bool:
        return self.status == REJECTED


@dataclass
class StatusReport:
    message: MessageType
    msg_id: str
    original_msg_id: str
    original_message_name: str
    group_status: str
    group_reasons: tuple[str, ...]
    original_number_of_transactions: int | None
    payment_infos: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    transactions: list[TransactionStatus] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def duplicate_refused(self) -> bool:
        """The bank refused this delivery as a repeat of a file it already has (``RJCT DU01``):
        nothing about the original file's transactions follows from it."""
        return self.group_status == REJECTED and DUPLICATE_MESSAGE in self.group_reasons

    @property
    def whole_file_rejected(self) -> bool:
        """Every transaction of the original file is rejected (and not because it was a repeat)."""
        return self.group_status == REJECTED and not self.duplicate_refused

    def matchable(self) -> list[TransactionStatus]:
        return [t for t in self.transactions if t.matchable]


def _reasons(element: ET.Element) -> tuple[str, ...]:
    return tuple(r for r in (reason(info) for info in children(element, "StsRsnInf")) if r)


def _count(raw: str, what: str, problems: list[str]) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 15:
        problems.append(f"{what} '{raw[:20]}' is not a number")
        return None
    return int(raw)


def _check_status(value: str, where: str, problems: list[str]) -> None:
    if value and value not in TRANSACTION_STATUSES:
        problems.append(f"{where}: unknown status code '{value[:10]}'")


def _per_status_counts(element: ET.Element, where: str, listed: Counter[str], problems: list[str]) -> None:
    """``NbOfTxsPerSts`` (``DtldNbOfTxs`` per ``DtldSts``) against the transactions listed with that status."""
    for per in children(element, "NbOfTxsPerSts"):
        status, declared = text(per, "DtldSts"), _count(text(per, "DtldNbOfTxs"), f"{where} DtldNbOfTxs", problems)
        if declared is not None and listed and declared != listed.get(status, 0):
            problems.append(
                f"{where}: {declared} transactions with status {status} declared, {listed.get(status, 0)} listed"
            )


def _accept(message: MessageType) -> str | None:
    if message.name != "pain.002" or message.version not in VERSIONS:
        return f"{message} is not a pain.002 status report of a version read here (001.03-001.10)"
    return None


def read_pain002(source: bytes | BinaryIO) -> StatusReport:
    """Read one pain.002 status report. :class:`UnreadableFile` when it is not a readable pain.002."""
    report: StatusReport | None = None
    header: tuple[str, str] = ("", "")
    wanted = frozenset({"GrpHdr", "OrgnlGrpInfAndSts", "OrgnlPmtInfAndSts"})
    for message, element, _ in elements(source, wanted, _accept):
        name = element.tag.rsplit("}", 1)[-1]
        if name == "GrpHdr":
            header = (text(element, "MsgId"), text(element, "CreDtTm"))
        elif name == "OrgnlGrpInfAndSts":
            problems: list[str] = []
            group_status = text(element, "GrpSts")
            _check_status(group_status, "group status", problems)
            report = StatusReport(
                message=message,
                msg_id=header[0],
                original_msg_id=text(element, "OrgnlMsgId"),
                original_message_name=text(element, "OrgnlMsgNmId"),
                group_status=group_status,
                group_reasons=_reasons(element),
                original_number_of_transactions=_count(text(element, "OrgnlNbOfTxs"), "OrgnlNbOfTxs", problems),
                problems=problems,
            )
            element.clear()
        else:
            if report is None:  # OrgnlGrpInfAndSts precedes the blocks in every version's schema
                raise UnreadableFile("pain.002 without its original group information (OrgnlGrpInfAndSts) first")
            _read_block(element, report)
            element.clear()
    if report is None:
        raise UnreadableFile("pain.002 without its original group information (OrgnlGrpInfAndSts)")
    if not report.original_msg_id:
        report.problems.append("no original message id (OrgnlMsgId): the report cannot be tied to a file")
    _mark_repeats(report)
    if not report.transactions and not report.group_status and not report.payment_infos:
        report.problems.append("no status at any level: the report says nothing")
    return report


def _read_block(element: ET.Element, report: StatusReport) -> None:
    problems = report.problems
    block_id = text(element, "OrgnlPmtInfId")
    block_status = text(element, "PmtInfSts")
    _check_status(block_status, f"payment information {block_id}", problems)
    block_reasons = _reasons(element)
    report.payment_infos[block_id] = (block_status, block_reasons)
    listed: Counter[str] = Counter()
    for tx in children(element, "TxInfAndSts"):
        if len(report.transactions) >= MAX_TRANSACTIONS:
            raise UnreadableFile(f"more than {MAX_TRANSACTIONS} transactions in one status report")
        e2e = text(tx, "OrgnlEndToEndId")
        own = text(tx, "TxSts")
        _check_status(own, f"transaction {e2e or '-'}", problems)
        matchable = True
        if own:
            status, reasons = own, _reasons(tx)
        elif block_status:
            status, reasons = block_status, block_reasons
        else:
            status, reasons = report.group_status, report.group_reasons
        if not status:
            problems.append(f"transaction {e2e or '-'} has no status, nor has its block or the file")
            matchable = False
        if not e2e:
            problems.append(f"a transaction of payment information {block_id or '-'} has no OrgnlEndToEndId")
            matchable = False
        if status == REJECTED and not reasons:
            problems.append(f"transaction {e2e or '-'} is rejected without a reason code")
        tx_amount: Amount | None = None
        instructed = child(tx, "OrgnlTxRef", "Amt", "InstdAmt")
        if instructed is not None:
            try:
                tx_amount = amount(instructed)
            except ValueError as err:
                problems.append(f"transaction {e2e or '-'}: {err}")
                matchable = False
        listed[status] += 1
        report.transactions.append(TransactionStatus(e2e, status, reasons, block_id, tx_amount, matchable))
    _per_status_counts(element, f"payment information {block_id or '-'}", listed, problems)


def _mark_repeats(report: StatusReport) -> None:
    seen = Counter(t.end_to_end_id for t in report.transactions if t.end_to_end_id)
    repeated = {e2e for e2e, n in seen.items() if n > 1}
    for e2e in sorted(repeated):
        report.problems.append(f"OrgnlEndToEndId {e2e} is reported {seen[e2e]} times: none of them is matched")
    if repeated:
        report.transactions = [
            TransactionStatus(t.end_to_end_id, t.status, t.reasons, t.payment_info_id, t.amount, False)
            if t.end_to_end_id in repeated
            else t
            for t in report.transactions
        ]
