"""Reading a pain.001 credit-transfer file back (the simulated bank's side, and our own check of what
sepaxml wrote): group header figures and each transaction, through defusedxml, amounts never float."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from payments.payouts.bank.xmlread import Amount, MessageType, amount, child, children, elements, text
from payments.reconciliation.bank import decimal_to_minor
from payments.reconciliation.model import UnreadableFile

MAX_TRANSACTIONS = 100_000


@dataclass(frozen=True)
class CreditTransfer:
    payment_info_id: str
    end_to_end_id: str
    amount: Amount
    creditor_name: str
    creditor_iban: str = field(repr=False)  # never printed or logged in full
    remittance: str


@dataclass
class CreditTransferFile:
    message: MessageType
    msg_id: str
    created_at: str
    number_of_transactions: int
    control_sum_minor: int | None
    debtor_iban: str = field(default="", repr=False)
    transactions: list[CreditTransfer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_pain001(source: bytes | BinaryIO) -> CreditTransferFile:
    result: CreditTransferFile | None = None

    def accept(message: MessageType) -> str | None:
        return None if message.name == "pain.001" else f"{message} is not a pain.001 credit-transfer file"

    for message, element, _ in elements(source, frozenset({"GrpHdr", "PmtInf"}), accept):
        name = element.tag.rsplit("}", 1)[-1]
        if name == "GrpHdr":
            problems: list[str] = []
            raw_count, raw_sum = text(element, "NbOfTxs"), text(element, "CtrlSum")
            count = int(raw_count) if raw_count.isdigit() and len(raw_count) <= 15 else -1
            if count < 0:
                problems.append(f"NbOfTxs '{raw_count[:20]}' is not a number")
            control: int | None = None
            if raw_sum:
                try:
                    control = decimal_to_minor(Decimal(raw_sum), "EUR")
                except (InvalidOperation, ValueError):
                    problems.append(f"CtrlSum '{raw_sum[:30]}' is not an amount")
            result = CreditTransferFile(message, text(element, "MsgId"), text(element, "CreDtTm"), count, control)
            result.problems.extend(problems)
        elif result is None:
            raise UnreadableFile("pain.001 without its group header first")
        else:
            block = text(element, "PmtInfId")
            result.debtor_iban = result.debtor_iban or text(element, "DbtrAcct", "Id", "IBAN")
            for tx in children(element, "CdtTrfTxInf"):
                if len(result.transactions) >= MAX_TRANSACTIONS:
                    raise UnreadableFile(f"more than {MAX_TRANSACTIONS} transactions")
                e2e = text(tx, "PmtId", "EndToEndId")
                try:
                    value = amount(child(tx, "Amt", "InstdAmt"))
                except ValueError as err:
                    result.problems.append(f"transaction {e2e or '-'}: {err}")
                    continue
                result.transactions.append(
                    CreditTransfer(
                        block,
                        e2e,
                        value,
                        text(tx, "Cdtr", "Nm"),
                        text(tx, "CdtrAcct", "Id", "IBAN"),
                        text(tx, "RmtInf", "Ustrd"),
                    )
                )
            element.clear()
    if result is None:
        raise UnreadableFile("pain.001 without a group header")
    if result.number_of_transactions >= 0 and result.number_of_transactions != len(result.transactions):
        result.problems.append(
            f"NbOfTxs says {result.number_of_transactions}, the file holds {len(result.transactions)} transactions"
        )
    total = sum(t.amount.minor for t in result.transactions)
    if result.control_sum_minor is not None and result.control_sum_minor != total:
        result.problems.append(f"CtrlSum says {result.control_sum_minor} cents, the transactions sum to {total}")
    return result
