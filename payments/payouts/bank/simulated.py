"""The simulated bank: what a real bank does with our payout files, over an injected store.

It is a pure class: the store (:class:`BankStore`) is given, so the local runtime and dev stages can put it
on S3 (a conditional ``PutObject`` with ``If-None-Match: *`` is :meth:`BankStore.put_new`) and tests on
memory. It obeys the same specifications as a real bank:

* :meth:`SimulatedBank.receive` reads a pain.001 (checked against the pain.001 XSD that sepaxml ships) and
  answers at once with a ``pain.002.001.10`` status report, written to ``incoming/bank/pain002/``: per
  transaction ``ACCP``, or ``RJCT`` ``AC01`` for the test IBANs below; the group ``ACCP``, ``PART`` or
  ``RJCT``. A file whose ``MsgId`` the bank already has is refused whole: group ``RJCT`` with ``DU01``
  (duplicate message), nothing booked. A file that breaks its schema is refused whole with ``FF01``.
* :meth:`SimulatedBank.close_day` books the day's accepted payouts into that day's ``camt.053.001.08``
  statement (``incoming/bank/camt053/``): one booked debit per payout with its ``EndToEndId``, opening and
  closing balances; and credits the payouts that the seller's bank sends back, a day after they were
  booked, as a credit with ``RtrInf`` ``AC04`` (account closed); and the PSP's payouts to the platform it is
  told of (:class:`PspCredit`) as credits. Closing a day twice writes nothing new.

Test IBANs, by the last four digits of the account number (all valid IBANs: IBAN checksum,
the German account check digit of the bank's method, and the bank registry, as the payout-account API
checks them (:func:`payments.payouts.bank_account.checked_iban`); bank code 37040044, BIC COBADEFFXXX):

=============================  ===========================================================
``DE32370400440100090001``     ``...0001``: rejected at once, pain.002 ``RJCT AC01``
``DE05370400440100090002``     ``...0002``: paid (booked debit), returned the next day (``AC04``)
``DE89370400440532013000``     any other: paid
=============================  ===========================================================

A file that arrives for a day already closed is booked on the next open day. A simulator's limit: a file
taken while that same day is being closed may miss the day's statement (closing is the nightly job's, files
come in the evening run before it).
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET  # writing only; every read goes through defusedxml (xmlread)
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from payments.kernel.money import format_minor
from payments.kernel.pan import digest_id
from payments.payouts.bank.pain001 import Debtor
from payments.payouts.bank.pain001_reader import CreditTransferFile, read_pain001
from payments.reconciliation.model import UnreadableFile

#: the contract's test IBANs (see the module's text)
TEST_IBAN_REJECTED = "DE32370400440100090001"
TEST_IBAN_RETURNED = "DE05370400440100090002"
TEST_IBAN_PAID = "DE89370400440532013000"

PAIN002_PREFIX = "incoming/bank/pain002/"
CAMT053_PREFIX = "incoming/bank/camt053/"
_RECEIVED = "bank/received/"
_DAYS = "bank/days/"

PAIN002_NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
CAMT053_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"

ACCOUNT_INVALID = "AC01"
ACCOUNT_CLOSED = "AC04"
DUPLICATE = "DU01"
INVALID_FILE_FORMAT = "FF01"


@dataclass(frozen=True)
class PspCredit:
    """A payment the platform's account receives: the PSP's payout (its ``MerchantPayout`` row)."""

    reference: str
    amount_minor: int
    currency: str
    debtor: str


class BankStore(Protocol):
    def put_new(self, key: str, body: bytes) -> bool:
        """Write ``body`` at ``key`` unless something is there already; True when written."""
        ...

    def get(self, key: str) -> bytes | None: ...

    def keys(self, prefix: str) -> list[str]:
        """The keys under ``prefix``, sorted."""
        ...


class MemoryBankStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_new(self, key: str, body: bytes) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = body
        return True

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


@dataclass(frozen=True)
class BankReply:
    key: str
    content: bytes
    group_status: str
    duplicate: bool


def account_fate(iban: str) -> str:
    """What the simulated bank does with a payout to ``iban``: ``rejected``, ``returned`` or ``paid``."""
    try:
        account = IBAN(iban).account_code
    except SchwiftyException:
        return "rejected"
    return {"0001": "rejected", "0002": "returned"}.get(account[-4:], "paid")


@lru_cache(maxsize=4)
def _pain001_schema(version: str) -> Any:
    import sepaxml
    import xmlschema

    path = Path(sepaxml.__file__).parent / "schemas" / f"pain.001.{version}.xsd"
    return xmlschema.XMLSchema(str(path)) if path.exists() else None


def _report_id(prefix: str, *parts: str) -> str:
    """The bank's id of a report: deterministic, never one that reads as a card number (it names the file)."""
    return digest_id(prefix, "\n".join(parts), 20)


def _sub(parent: ET.Element, tag: str, value: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    if value is not None:
        node.text = value
    return node


def _document(namespace: str) -> ET.Element:
    return ET.Element("Document", {"xmlns": namespace})


def _bytes(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulatedBank:
    """The platform's bank, holding ``account`` (whose IBAN the statements name)."""

    def __init__(self, store: BankStore, account: Debtor, bic: str = "COBADEFFXXX", opening_minor: int = 0):
        self.store = store
        self.account = account
        self.bic = bic
        self.opening_minor = opening_minor

    # --- pain.001 in, pain.002 out ---------------------------------------------------------

    def receive(self, content: bytes, received_at: datetime) -> BankReply:
        """Take one pain.001 and answer it (the pain.002 is written to the store and returned)."""
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        sha = hashlib.sha256(content).hexdigest()
        try:
            parsed = read_pain001(content)
        except UnreadableFile as err:
            return self._refuse_file("", "", sha, received_at, INVALID_FILE_FORMAT, err.reason)
        # the file has been read through defusedxml above (no DTD, no entity): xmlschema sees a safe document
        schema = _pain001_schema(parsed.message.version)
        schema_error = None
        if schema is None:
            schema_error = f"pain.001.{parsed.message.version} is not a version this bank takes"
        else:
            error = next(iter(schema.iter_errors(content.decode("utf-8", errors="replace"))), None)
            schema_error = None if error is None else str(error.reason or "not valid against its schema")
        if schema_error is None and parsed.problems:
            schema_error = "; ".join(parsed.problems)
        if schema_error is not None or not parsed.msg_id:
            return self._refuse_file(
                parsed.msg_id, parsed.created_at, sha, received_at, INVALID_FILE_FORMAT, schema_error or "no MsgId"
            )
        answer, record = self._answer(parsed, sha, received_at)
        # one conditional write decides the first delivery and records everything the bank owes for it
        # (its reply and its bookings); the reply is written after it, and again on any later delivery,
        # so a crash between the two never loses the reply of a file the bank has taken
        if not self.store.put_new(f"{_RECEIVED}{parsed.msg_id}.json", json.dumps(record).encode()):
            taken = json.loads(self.store.get(f"{_RECEIVED}{parsed.msg_id}.json") or b"{}")
            if taken.get("reply_key"):
                self.store.put_new(taken["reply_key"], taken["reply"].encode())
            return self._refuse_file(parsed.msg_id, parsed.created_at, sha, received_at, DUPLICATE, "duplicate message")
        self.store.put_new(answer.key, answer.content)
        return answer

    def _booking_day(self, received_on: date) -> date:
        day = received_on
        while self.store.get(f"{_DAYS}{day.isoformat()}.json") is not None:
            day += timedelta(days=1)
        return day

    def _answer(self, parsed: CreditTransferFile, sha: str, received_at: datetime) -> tuple[BankReply, dict[str, Any]]:
        """The pain.002 that accepts the file (by the test IBANs), and the record of what it books."""
        report_id = _report_id("ST", parsed.msg_id, sha)
        verdicts = [(tx, account_fate(tx.creditor_iban)) for tx in parsed.transactions]
        accepted = [
            {
                "end_to_end_id": tx.end_to_end_id,
                "amount_minor": tx.amount.minor,
                "currency": tx.amount.currency,
                "creditor_name": tx.creditor_name,
                "returned": fate == "returned",
            }
            for tx, fate in verdicts
            if fate != "rejected"
        ]
        rejected = len(verdicts) - len(accepted)
        group = "ACCP" if not rejected else "RJCT" if not accepted else "PART"
        root = _document(PAIN002_NS)
        report = _sub(root, "CstmrPmtStsRpt")
        self._group_header(report, report_id, received_at)
        original = self._original_group(report, parsed.msg_id, parsed.created_at, len(verdicts), group)
        if group == "PART":
            for status, n in (("ACCP", len(accepted)), ("RJCT", rejected)):
                per = _sub(original, "NbOfTxsPerSts")
                _sub(per, "DtldNbOfTxs", str(n))
                _sub(per, "DtldSts", status)
        blocks: dict[str, list[tuple[Any, str]]] = {}
        for tx, fate in verdicts:
            blocks.setdefault(tx.payment_info_id, []).append((tx, fate))
        for block_id, txs in blocks.items():
            block = _sub(report, "OrgnlPmtInfAndSts")
            _sub(block, "OrgnlPmtInfId", block_id)
            for n, (tx, fate) in enumerate(txs, start=1):
                info = _sub(block, "TxInfAndSts")
                _sub(info, "StsId", f"{report_id}-{block_id[-6:]}-{n}"[:35])
                _sub(info, "OrgnlEndToEndId", tx.end_to_end_id)
                _sub(info, "TxSts", "RJCT" if fate == "rejected" else "ACCP")
                if fate == "rejected":
                    reason = _sub(_sub(info, "StsRsnInf"), "Rsn")
                    _sub(reason, "Cd", ACCOUNT_INVALID)
                ref = _sub(info, "OrgnlTxRef")
                _sub(
                    _sub(ref, "Amt"),
                    "InstdAmt",
                    format_minor(tx.amount.minor, tx.amount.currency),
                    Ccy=tx.amount.currency,
                )
        content = _bytes(root)
        key = f"{PAIN002_PREFIX}{report_id}.xml"
        day = self._booking_day(received_at.astimezone(UTC).date())
        record = {
            "msg_id": parsed.msg_id,
            "sha256": sha,
            "day": day.isoformat(),
            "reply_key": key,
            "reply": content.decode(),
            "transactions": accepted,
        }
        return BankReply(key, content, group, duplicate=False), record

    def _group_header(self, report: ET.Element, report_id: str, at: datetime) -> None:
        header = _sub(report, "GrpHdr")
        _sub(header, "MsgId", report_id)
        _sub(header, "CreDtTm", _timestamp(at))
        _sub(_sub(_sub(header, "DbtrAgt"), "FinInstnId"), "BICFI", self.bic)

    @staticmethod
    def _original_group(
        report: ET.Element, msg_id: str, created: str, count: int | None, status: str, reason: str | None = None
    ) -> ET.Element:
        original = _sub(report, "OrgnlGrpInfAndSts")
        _sub(original, "OrgnlMsgId", msg_id or "NOTPROVIDED")
        _sub(original, "OrgnlMsgNmId", "pain.001.001.09")
        if created:
            _sub(original, "OrgnlCreDtTm", created)
        if count is not None:
            _sub(original, "OrgnlNbOfTxs", str(count))
        _sub(original, "GrpSts", status)
        if reason is not None:
            _sub(_sub(_sub(original, "StsRsnInf"), "Rsn"), "Cd", reason)
        return original

    def _refuse_file(self, msg_id: str, created: str, sha: str, at: datetime, reason: str, why: str) -> BankReply:
        report_id = _report_id("DU" if reason == DUPLICATE else "FF", msg_id, sha, _timestamp(at))
        root = _document(PAIN002_NS)
        report = _sub(root, "CstmrPmtStsRpt")
        self._group_header(report, report_id, at)
        original = self._original_group(report, msg_id, created, None, "RJCT", reason)
        status_reason = original.find("StsRsnInf")
        if status_reason is not None:
            _sub(status_reason, "AddtlInf", why[:105])
        content = _bytes(root)
        key = f"{PAIN002_PREFIX}{report_id}.xml"
        self.store.put_new(key, content)
        return BankReply(key, content, "RJCT", duplicate=reason == DUPLICATE)

    # --- close of day: camt.053 ------------------------------------------------------------

    def close_day(self, day: date, psp_credits: Sequence[PspCredit] = ()) -> tuple[str, bytes]:
        """Book ``day``: its camt.053 (key, content). Closing a closed day answers the same statement.

        ``psp_credits``: what the PSP paid the platform that day (its settlement file's ``MerchantPayout``
        rows), booked as credits without ``RtrInf``; only the account's currency (EUR) is booked. They
        are read at the first closing of the day: a closed day is never booked again."""
        record_key = f"{_DAYS}{day.isoformat()}.json"
        record = self.store.get(record_key)
        if record is None:
            closed = self.store.keys(_DAYS)
            later = [k for k in closed if k[len(_DAYS) : -5] >= day.isoformat()]
            if later:
                raise ValueError(f"{day} comes before a day already closed ({later[-1][len(_DAYS) : -5]})")
            previous = json.loads(self.store.get(closed[-1]) or b"{}") if closed else None
            self.store.put_new(record_key, json.dumps(self._book(day, previous, psp_credits)).encode())
            record = self.store.get(record_key)
        assert record is not None  # noqa: S101 - written just above (or by a racing close, identical)
        booked = json.loads(record)
        content = self._statement(day, booked)
        key = f"{CAMT053_PREFIX}{day.isoformat()}.xml"
        self.store.put_new(key, content)
        return key, self.store.get(key) or content

    def _book(self, day: date, previous: dict[str, Any] | None, psp_credits: Sequence[PspCredit]) -> dict[str, Any]:
        opening = previous["closing_minor"] if previous is not None else self.opening_minor
        debits: list[dict[str, Any]] = []
        for key in self.store.keys(_RECEIVED):  # a simulator's volume: one file a night
            received = json.loads(self.store.get(key) or b"{}")
            if received.get("day") == day.isoformat():
                debits.extend(dict(tx, msg_id=received["msg_id"]) for tx in received["transactions"])
        credits = [tx for tx in (previous or {}).get("debits", []) if tx["returned"]]
        received = [
            {"reference": c.reference, "amount_minor": c.amount_minor, "currency": c.currency, "debtor_name": c.debtor}
            for c in psp_credits
            if c.currency == "EUR" and c.amount_minor > 0
        ]
        closing = (
            opening
            - sum(t["amount_minor"] for t in debits)
            + sum(t["amount_minor"] for t in credits)
            + sum(t["amount_minor"] for t in received)
        )
        return {
            "day": day.isoformat(),
            "opening_minor": opening,
            "closing_minor": closing,
            "debits": debits,
            "credits": credits,
            "received": received,
        }

    def _statement(self, day: date, booked: dict[str, Any]) -> bytes:
        ccy = "EUR"
        stamp = f"{day.isoformat()}T23:59:59Z"
        statement_id = f"STMT-{day:%Y%m%d}"
        root = _document(CAMT053_NS)
        message = _sub(root, "BkToCstmrStmt")
        header = _sub(message, "GrpHdr")
        _sub(header, "MsgId", statement_id)
        _sub(header, "CreDtTm", stamp)
        stmt = _sub(message, "Stmt")
        _sub(stmt, "Id", statement_id)
        _sub(stmt, "ElctrncSeqNb", day.strftime("%Y%m%d"))
        _sub(stmt, "CreDtTm", stamp)
        period = _sub(stmt, "FrToDt")
        _sub(period, "FrDtTm", f"{day.isoformat()}T00:00:00Z")
        _sub(period, "ToDtTm", stamp)
        acct = _sub(stmt, "Acct")
        _sub(_sub(acct, "Id"), "IBAN", self.account.iban)
        _sub(acct, "Ccy", ccy)
        _sub(_sub(acct, "Ownr"), "Nm", self.account.name)
        _sub(_sub(_sub(acct, "Svcr"), "FinInstnId"), "BICFI", self.bic)
        for code, value in (("OPBD", booked["opening_minor"]), ("CLBD", booked["closing_minor"])):
            bal = _sub(stmt, "Bal")
            _sub(_sub(_sub(bal, "Tp"), "CdOrPrtry"), "Cd", code)
            _sub(bal, "Amt", format_minor(abs(value), ccy), Ccy=ccy)
            _sub(bal, "CdtDbtInd", "CRDT" if value >= 0 else "DBIT")
            _sub(_sub(bal, "Dt"), "Dt", day.isoformat())
        debits: Sequence[dict[str, Any]] = booked["debits"]
        credits: Sequence[dict[str, Any]] = booked["credits"]
        received: Sequence[dict[str, Any]] = booked.get("received", [])
        summary = _sub(stmt, "TxsSummry")
        for name, entries in (("TtlCdtNtries", [*credits, *received]), ("TtlDbtNtries", debits)):
            total = _sub(summary, name)
            _sub(total, "NbOfNtries", str(len(entries)))
            _sub(total, "Sum", format_minor(sum(t["amount_minor"] for t in entries), ccy))
        for n, tx in enumerate(debits, start=1):
            self._entry(stmt, day, f"{statement_id}-D{n}", "DBIT", tx, returned=False)
        for n, tx in enumerate(credits, start=1):
            self._entry(stmt, day, f"{statement_id}-C{n}", "CRDT", tx, returned=True)
        for n, credit in enumerate(received, start=1):
            self._received(stmt, day, f"{statement_id}-R{n}", credit)
        return _bytes(root)

    @staticmethod
    def _received(stmt: ET.Element, day: date, ref: str, credit: dict[str, Any]) -> None:
        """A credit transfer received (the PSP's payout to the platform): ``RCDT``, no ``RtrInf``."""
        ccy, value = credit["currency"], format_minor(credit["amount_minor"], credit["currency"])
        details = _booked_entry(stmt, day, ref, "CRDT", value, ccy, ("RCDT", "ESCT"))
        _sub(_sub(details, "Refs"), "EndToEndId", credit["reference"])
        _sub(details, "Amt", value, Ccy=ccy)
        _sub(details, "CdtDbtInd", "CRDT")
        _sub(_sub(_sub(details, "RltdPties"), "Dbtr"), "Pty").append(_named(credit["debtor_name"]))
        _sub(_sub(details, "RmtInf"), "Ustrd", f"Payout {credit['reference']}")

    @staticmethod
    def _entry(stmt: ET.Element, day: date, ref: str, direction: str, tx: dict[str, Any], returned: bool) -> None:
        ccy, value = tx["currency"], format_minor(tx["amount_minor"], tx["currency"])
        details = _booked_entry(stmt, day, ref, direction, value, ccy, ("ICDT", "RRTN" if returned else "ESCT"))
        refs = _sub(details, "Refs")
        _sub(refs, "MsgId", tx["msg_id"])
        _sub(refs, "EndToEndId", tx["end_to_end_id"])
        _sub(details, "Amt", value, Ccy=ccy)
        _sub(details, "CdtDbtInd", direction)
        _sub(_sub(_sub(details, "RltdPties"), "Cdtr"), "Pty").append(_named(tx["creditor_name"]))
        if returned:
            info = _sub(details, "RtrInf")
            _sub(_sub(info, "Rsn"), "Cd", ACCOUNT_CLOSED)
            _sub(info, "AddtlInf", "Account closed: payout returned by the beneficiary bank")


def _booked_entry(
    stmt: ET.Element, day: date, ref: str, direction: str, value: str, ccy: str, family: tuple[str, str]
) -> ET.Element:
    """A booked ``Ntry`` of ``day`` (its bank transaction code: PMNT, ``family``); its ``TxDtls``, to fill."""
    entry = _sub(stmt, "Ntry")
    _sub(entry, "NtryRef", ref)
    _sub(entry, "Amt", value, Ccy=ccy)
    _sub(entry, "CdtDbtInd", direction)
    _sub(_sub(entry, "Sts"), "Cd", "BOOK")
    _sub(_sub(entry, "BookgDt"), "Dt", day.isoformat())
    _sub(_sub(entry, "ValDt"), "Dt", day.isoformat())
    _sub(entry, "AcctSvcrRef", ref)
    domain = _sub(_sub(entry, "BkTxCd"), "Domn")
    _sub(domain, "Cd", "PMNT")
    fmly = _sub(domain, "Fmly")
    _sub(fmly, "Cd", family[0])
    _sub(fmly, "SubFmlyCd", family[1])
    return _sub(_sub(entry, "NtryDtls"), "TxDtls")


def _named(name: str) -> ET.Element:
    node = ET.Element("Nm")
    node.text = name
    return node
