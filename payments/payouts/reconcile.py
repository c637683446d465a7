"""The bank's answers, reconciled: each file under ``incoming/bank/`` of the bank bucket, read and applied.

What the bank sends (:mod:`payments.payouts.bank`) is read with the existing readers (defusedxml), then:

===============================================  ==========================================================
pain.002 ``RJCT`` of a transaction               :meth:`PayoutOutcomes.mark_failed` with the ISO reason
pain.002 whole file ``RJCT`` (not ``DU01``)      every payout of the original pain.001 (``outgoing/pain001/<MsgId>.xml``)
                                                 failed with the file's reason
pain.002 ``RJCT DU01`` (duplicate message)       recorded: the original file's own report stands
pain.002 ``ACCP`` (and other non-final states)   recorded, nothing applied
camt booked debit with an ``EndToEndId``         :meth:`PayoutOutcomes.mark_paid`
camt booked credit with ``RtrInf``               :meth:`PayoutOutcomes.mark_returned` (and the ``PayoutsReturned`` metric)
camt booked credit without ``RtrInf``            the PSP's payout to the platform: matched against the settlement
                                                 file's ``MerchantPayout`` row (currency, amount, day), once, and
                                                 booked in the ledger in the same transaction (debit ``bank``,
                                                 credit ``psp_receivable``)
anything else                                    a ``MANUAL`` mismatch in the reconciliation table
===============================================  ==========================================================

"Anything else": a payout the book does not know (``UNKNOWN``), an amount or currency that is not the
payout's (``AMOUNT_DIFFERS``), an outcome the payout's status cannot follow (``CONFLICT``: a late ``RJCT``
for a ``PAID`` payout, a return before its booking), a problem the reader listed (such entries are never
matched), a credit no settlement file announces, a debit with no ``EndToEndId``, a returned direct debit.

Delivered twice, a file applies nothing twice: the book answers :attr:`Applied.ALREADY`, which is counted
apart and is no mismatch. Every write is the book's conditional transaction or the reconciliation store's
conditional put: a run that crashes halfway is run again whole (the S3 event's retry) and converges.
An unreadable file is quarantined like a settlement file (``quarantine/bank/...`` and its reason). Each run
stores a summary (``RUN#<key>``/``SUMMARY``, with ``counts``: applied, already, recorded, mismatches) and its
mismatches, so ``payments mismatches`` lists them with the file's key and the entry they are about.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from payments.accounts.chart import Account
from payments.accounts.ledger import LedgerRepository, LedgerTransaction
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import cancelled_by_condition, put_new, transact_write
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money, format_minor
from payments.payouts.bank.camt import BankEntry, BankMessage, BankTransaction, read_camt
from payments.payouts.bank.pain001 import OUTGOING_PREFIX
from payments.payouts.bank.pain001_reader import read_pain001
from payments.payouts.bank.pain002 import StatusReport, read_pain002
from payments.payouts.bank.xmlread import MAX_BANK_FILE_BYTES, Amount
from payments.payouts.outcomes import Applied, Outcome, PayoutOutcomes, PayoutStatus
from payments.reconciliation import report as reports
from payments.reconciliation.model import UnreadableFile
from payments.reconciliation.store import ReconciliationStore

INCOMING = "incoming/bank/"
OUTGOING = OUTGOING_PREFIX  # our payout files (payments.payouts.bank.pain001)
REPORTS, QUARANTINE = "reports/", "quarantine/"
PAIN002, CAMT053, CAMT054 = "pain.002", "camt.053", "camt.054"
MANUAL = "MANUAL"
#: how many days after its settlement day the PSP's payout may be booked on the platform's account
PSP_CREDIT_DAYS = 5
_MESSAGE = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(pain\.002|camt\.05[34])\.")
#: the metrics the CDK alarms watch (namespace Payments)
PAYOUTS_RETURNED, PAYOUTS_FAILED = "PayoutsReturned", "PayoutsFailed"
BANK_MISMATCHES, BANK_FILES_QUARANTINED = "BankMismatches", "BankFilesQuarantined"


class PspPayouts(Protocol):
    """The PSP's payouts that reconciled settlement files announced (their ``MerchantPayout`` rows)."""

    def claim(self, currency: str, amount_minor: int, booked_on: str, by: str) -> tuple[Applied, str]:
        """Match a credit to one announced payout, once: (APPLIED, the settlement file's key) when claimed by
        ``by`` now, (ALREADY, key) when ``by`` claimed it before; else (UNKNOWN or CONFLICT, why not)."""
        ...


@dataclass
class BankRun:
    """What one bank file did."""

    source_key: str
    message: str
    sha256: str
    day: str
    applied: int = 0
    already: int = 0
    recorded: int = 0
    entries: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def note(self, where: str, what: str, result: str, **extra: Any) -> None:
        self.lines.append({"where": where, "what": what, "result": result, **extra})

    def mismatch(
        self, kind: str, where: str, detail: str, *, payout_id: str = "", amount: Amount | None = None
    ) -> None:
        n = len(self.mismatches) + 1
        self.mismatches.append(
            {
                "mismatch_id": f"{kind}#{payout_id or '-'}#{n}",
                "kind": kind,
                "classification": MANUAL,
                "rule": "bank",
                "payout_id": payout_id or None,
                "entry": where,
                "detail": detail[:500],
                "settlement_amount": format_minor(amount.minor, amount.currency) if amount else None,
                "currency": amount.currency if amount else None,
            }
        )
        self.note(where, detail, "MISMATCH", kind=kind)

    def counts(self) -> dict[str, int]:
        return {
            "applied": self.applied,
            "already": self.already,
            "recorded": self.recorded,
            "mismatches": len(self.mismatches),
        }

    def report(self) -> dict[str, Any]:
        """The run as the reconciliation store and ``reports/`` keep it (a settlement run's keys, plus ``counts``)."""
        return {
            "source_key": self.source_key,
            "format": self.message,
            "rows": self.entries,
            "matched": self.applied + self.already,
            "mismatches": self.mismatches,
            "rejected_rows": [],
            "sha256": self.sha256,
            "clean": not self.mismatches,
            "counts": self.counts(),
            "summary": {"window_day": self.day},
            "lines": self.lines,
        }


def message_of(content: bytes) -> str:
    """``pain.002``, ``camt.053`` or ``camt.054``, from the ISO 20022 namespace in the file's head."""
    found = _MESSAGE.search(content[:4096])
    if found is None:
        raise UnreadableFile("not a pain.002, camt.053 or camt.054 document (no such ISO 20022 namespace)")
    return found.group(1).decode()


class BankFileReconciler:
    """Applies one bank file's content to the payouts' book; pure of S3 (the :class:`BankReconciler` reads)."""

    def __init__(
        self,
        outcomes: PayoutOutcomes,
        psp_payouts: PspPayouts | None = None,
        original: Callable[[str], list[str] | None] = lambda msg_id: None,
        on_metric: Callable[[str, int], None] = lambda name, value: None,
    ):
        self.outcomes = outcomes
        self.psp_payouts = psp_payouts
        #: the EndToEndIds of our pain.001 whose MsgId is given (None: we have no such file)
        self.original = original
        self.on_metric = on_metric

    def reconcile(self, key: str, content: bytes, today: date | None = None) -> BankRun:
        """Read and apply one file. :class:`UnreadableFile` when it is no readable bank file."""
        if len(content) > MAX_BANK_FILE_BYTES:
            raise UnreadableFile(f"oversized: {len(content)} bytes exceeds the bound of {MAX_BANK_FILE_BYTES}")
        message = message_of(content)
        sha = hashlib.sha256(content).hexdigest()
        day = (today or clock.now().date()).isoformat()
        if message == PAIN002:
            run = BankRun(key, message, sha, day)
            self._status_report(run, read_pain002(content))
        else:
            parsed = read_camt(content)
            booked = sorted({e.booking_date for e in parsed.entries if e.booking_date})
            run = BankRun(key, str(parsed.message)[:8], sha, booked[0] if booked else day)
            self._statement(run, parsed)
        if run.mismatches:
            self.on_metric(BANK_MISMATCHES, len(run.mismatches))
        return run

    # --- pain.002 ------------------------------------------------------------------------------
    def _status_report(self, run: BankRun, report: StatusReport) -> None:
        where = f"OrgnlMsgId {report.original_msg_id or '-'}"
        for n, problem in enumerate(report.problems, start=1):
            run.mismatch("BANK_FILE_PROBLEM", f"{where} problem {n}", problem)
        if report.duplicate_refused:
            run.recorded += 1
            run.note(
                where, "the bank refused a repeated delivery (DU01): the original file's report stands", "RECORDED"
            )
            return
        run.entries = len(report.transactions)
        if report.whole_file_rejected and not report.transactions:
            self._whole_file_rejected(run, report, where)
            return
        for tx in report.transactions:
            at = f"{where} OrgnlPmtInfId {tx.payment_info_id or '-'} OrgnlEndToEndId {tx.end_to_end_id or '-'}"
            if not tx.matchable:
                continue  # its problem is a mismatch above: never matched
            if not tx.rejected:
                run.recorded += 1
                run.note(at, f"status {tx.status}", "RECORDED", payout_id=tx.end_to_end_id)
                continue
            reason = tx.reasons[0] if tx.reasons else ""
            outcome = self.outcomes.mark_failed(tx.end_to_end_id, reason=reason, source=f"{run.source_key}#{at}")
            self._count(run, outcome, at, f"rejected ({reason or 'no reason'})", tx.amount)

    def _whole_file_rejected(self, run: BankRun, report: StatusReport, where: str) -> None:
        reason = report.group_reasons[0] if report.group_reasons else ""
        payouts = self.original(report.original_msg_id) if report.original_msg_id else None
        if payouts is None:
            run.mismatch(
                "BANK_FILE_REJECTED_UNKNOWN",
                where,
                f"the bank rejected a whole file ({reason or 'no reason'}) that is not one of ours under {OUTGOING}",
            )
            return
        run.entries = len(payouts)
        for payout_id in payouts:
            at = f"{where} (whole file) EndToEndId {payout_id}"
            outcome = self.outcomes.mark_failed(payout_id, reason=reason, source=f"{run.source_key}#{at}")
            self._count(run, outcome, at, f"rejected with its file ({reason or 'no reason'})", None)

    # --- camt.053 / camt.054 -------------------------------------------------------------------
    def _statement(self, run: BankRun, message: BankMessage) -> None:
        for n, problem in enumerate(message.problems, start=1):
            run.mismatch("BANK_FILE_PROBLEM", f"MsgId {message.msg_id or '-'} problem {n}", problem)
        run.entries = len(message.entries)
        for entry in message.entries:
            at = f"Stmt {entry.statement_id or '-'} Ntry {entry.reference}"
            if not entry.booked:
                run.recorded += 1
                run.note(at, f"entry status {entry.status or '-'}: not booked, not matched", "RECORDED")
                continue
            if entry.problems:
                continue  # reported above, never matched
            if entry.direction == "DBIT":
                self._debit(run, entry, at)
            else:
                self._credit(run, entry, at)

    @staticmethod
    def _value(entry: BankEntry, tx: BankTransaction) -> Amount:
        return tx.amount or entry.amount

    def _debit(self, run: BankRun, entry: BankEntry, at: str) -> None:
        if not entry.transactions or not any(tx.end_to_end_id for tx in entry.transactions):
            run.mismatch(
                "BANK_DEBIT_UNKNOWN", at, "a booked debit with no EndToEndId: not a payout of ours", amount=entry.amount
            )
            return
        for tx in entry.transactions:
            value = self._value(entry, tx)
            where = f"{at} EndToEndId {tx.end_to_end_id or '-'}"
            if tx.is_return:
                run.mismatch(
                    "BANK_RETURN_NOT_A_PAYOUT",
                    where,
                    f"a returned direct debit ({tx.return_reason}): the platform collects none, payouts return as credits",
                    payout_id=tx.end_to_end_id,
                    amount=value,
                )
            elif not tx.end_to_end_id:
                run.mismatch("BANK_DEBIT_UNKNOWN", where, "a booked debit with no EndToEndId", amount=value)
            else:
                outcome = self.outcomes.mark_paid(
                    tx.end_to_end_id,
                    amount=Money(value.minor, value.currency),
                    booked_on=entry.booking_date,
                    source=f"{run.source_key}#{where}",
                )
                self._count(run, outcome, where, "booked", value)

    def _credit(self, run: BankRun, entry: BankEntry, at: str) -> None:
        returns = [tx for tx in entry.transactions if tx.is_return]
        if not returns:
            self._psp_credit(run, entry, at)
            return
        for tx in entry.transactions:
            value = self._value(entry, tx)
            where = f"{at} EndToEndId {tx.end_to_end_id or '-'}"
            if not tx.is_return or not tx.end_to_end_id:
                run.mismatch(
                    "BANK_CREDIT_UNMATCHED",
                    where,
                    "a credit beside returns, or a return without EndToEndId",
                    amount=value,
                )
                continue
            outcome = self.outcomes.mark_returned(
                tx.end_to_end_id,
                amount=Money(value.minor, value.currency),
                reason=tx.return_reason or "",
                source=f"{run.source_key}#{where}",
            )
            if self._count(run, outcome, where, f"returned ({tx.return_reason})", value):
                self.on_metric(PAYOUTS_RETURNED, 1)

    def _psp_credit(self, run: BankRun, entry: BankEntry, at: str) -> None:
        amount = entry.amount
        if self.psp_payouts is None:
            run.mismatch("BANK_CREDIT_UNMATCHED", at, "a credit, and no PSP payouts to match it with", amount=amount)
            return
        applied, said = self.psp_payouts.claim(
            amount.currency, amount.minor, entry.booking_date, f"{run.source_key}#{at}"
        )
        if applied not in (Applied.APPLIED, Applied.ALREADY):
            run.mismatch("BANK_CREDIT_UNMATCHED", at, f"a credit no PSP payout accounts for: {said}", amount=amount)
            return
        if applied is Applied.APPLIED:
            run.applied += 1
        else:
            run.already += 1
        run.note(at, f"the PSP's payout announced by {said}", applied.value, settlement_key=said)

    # --- outcomes -----------------------------------------------------------------------------
    def _count(self, run: BankRun, outcome: Outcome, where: str, what: str, amount: Amount | None) -> bool:
        """Count one answer of the book; True when the outcome was applied now."""
        if outcome.applied is Applied.APPLIED:
            run.applied += 1
            run.note(where, what, "APPLIED", payout_id=outcome.payout_id, status=str(outcome.status))
            if outcome.status is PayoutStatus.FAILED:
                self.on_metric(PAYOUTS_FAILED, 1)
            return True
        if outcome.applied is Applied.ALREADY:
            run.already += 1
            run.note(where, what, "ALREADY", payout_id=outcome.payout_id, status=str(outcome.status))
            return False
        status = outcome.status.value if outcome.status is not None else "no such payout"
        run.mismatch(
            f"PAYOUT_{outcome.applied.value}",
            where,
            f"{what}, but the payout is {status}" + (f": {outcome.detail}" if outcome.detail else ""),
            payout_id=outcome.payout_id,
            amount=amount,
        )
        return False


class StorePspPayouts:
    """The PSP's payouts as reconciled settlement files recorded them (:meth:`ReconciliationStore.record_payouts`),
    each matched to at most one bank credit and booked in the ledger once: the claim
    (``PSPCREDIT#<settlement key>#<currency>``, put on ``attribute_not_exists``) and the ledger's
    ``psp_payout:<settlement key>:<currency>`` (debit ``bank``, credit ``psp_receivable``) are ONE transaction,
    so a second credit of the same amount is not matched, and the bank account in the ledger moves by what the
    statement booked, once."""

    def __init__(self, store: ReconciliationStore, days: int = PSP_CREDIT_DAYS, ledger: LedgerRepository | None = None):
        self.store = store
        self.days = days
        self._ledger = ledger

    @property
    def ledger(self) -> LedgerRepository:
        if self._ledger is None:
            self._ledger = LedgerRepository(client=self.store.ddb)
        return self._ledger

    def claim(self, currency: str, amount_minor: int, booked_on: str, by: str) -> tuple[Applied, str]:
        found = self.store.find_payout(currency, amount_minor)
        what = f"{format_minor(amount_minor, currency)} {currency}"
        if found is None:
            return Applied.UNKNOWN, f"no reconciled settlement file announces a payout of {what}"
        source = str(found["source_key"])
        summary = self.store.summary(source) or {}
        settled = summary.get("window_day")
        try:
            booked = date.fromisoformat(booked_on)
            if settled is None or not (
                date.fromisoformat(settled) <= booked <= date.fromisoformat(settled) + timedelta(days=self.days)
            ):
                return (
                    Applied.UNKNOWN,
                    f"{source} announces {what} for {settled or 'no day'}, the bank booked it on {booked_on}",
                )
        except ValueError:
            return Applied.UNKNOWN, f"booking date '{booked_on[:20]}' is not a date"
        pk = f"PSPCREDIT#{source}#{currency}"
        psp = self.ledger.psp
        txn = LedgerTransaction.transfer(
            debit=Account.bank(), credit=Account.psp_receivable(psp), amount=Money(amount_minor, currency)
        )
        refusal = transact_write(
            self.store.ddb,
            [
                put_new(self.store.table, {"pk": pk, "sk": "CLAIM", "claimed_by": by, "amount_minor": amount_minor}),
                *self.ledger.booking_items(
                    f"psp_payout:{source}:{currency}",
                    "PSP_PAYOUT",
                    txn,
                    {"source_key": source, "psp": psp, "booked_on": booked_on, "claimed_by": by},
                ),
            ],
        )
        if refusal is None:
            return Applied.APPLIED, source
        if not cancelled_by_condition(refusal, 0):
            raise InvariantViolation(f"the ledger already books the PSP's payout of {source}, which nothing claimed")
        if (self.store.item(pk, "CLAIM") or {}).get("claimed_by") == by:
            return Applied.ALREADY, source
        return Applied.CONFLICT, f"the payout {source} announces was matched to another credit already"


@dataclass(frozen=True)
class FileOutcome:
    source_key: str
    status: str  # RECONCILED | QUARANTINED | SKIPPED
    report_key: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BankReconciler:
    """Reconciles the objects of the bank bucket under ``incoming/bank/``: S3, reports, quarantine, the table."""

    def __init__(
        self,
        outcomes: PayoutOutcomes,
        *,
        bucket: str | None = None,
        s3: Any = None,
        store: ReconciliationStore | None = None,
        psp_payouts: PspPayouts | None = None,
        on_metric: Callable[[str, int], None] | None = None,
    ):
        self.bucket = bucket or settings().bank_bucket
        self.s3 = s3 or aws.client("s3")
        self.store = store or ReconciliationStore()
        self.on_metric = on_metric or (lambda name, value: None)
        self.files = BankFileReconciler(
            outcomes,
            psp_payouts if psp_payouts is not None else StorePspPayouts(self.store),
            self._original,
            self.on_metric,
        )

    def _get(self, key: str) -> bytes | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        try:
            data: bytes = body.read(MAX_BANK_FILE_BYTES + 1)
        finally:
            body.close()
        return data

    def _original(self, msg_id: str) -> list[str] | None:
        """The EndToEndIds of our pain.001 ``outgoing/pain001/<MsgId>.xml``, None when there is none."""
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,35}", msg_id):
            return None
        content = self._get(f"{OUTGOING}{msg_id}.xml")
        if content is None:
            return None
        try:
            return [tx.end_to_end_id for tx in read_pain001(content).transactions]
        except UnreadableFile:
            return None

    def reconcile_object(self, key: str) -> FileOutcome:
        if not key.startswith(INCOMING):
            return FileOutcome(key, "SKIPPED", detail=f"not under {INCOMING}")
        content = self._get(key)
        if content is None:
            return FileOutcome(key, "SKIPPED", detail="object no longer exists (already handled)")
        try:
            run = self.files.reconcile(key, content)
        except UnreadableFile as err:
            return self.quarantine(key, err.reason)
        rendered = run.report()
        report_key = REPORTS + key + ".json"
        self._put(report_key, json.dumps(rendered, indent=2, ensure_ascii=False) + "\n")
        self.store.save_run(rendered, report_key)
        return FileOutcome(key, "RECONCILED", report_key, run.counts())

    def quarantine(self, key: str, reason: str) -> FileOutcome:
        """Move an unreadable file to ``quarantine/<path under incoming/>`` with its reason (as settlement files)."""
        target = QUARANTINE + key.removeprefix("incoming/")
        self.s3.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key})
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        self._put(target + ".reason.json", json.dumps({"source_key": key, "reason": reason}, indent=2) + "\n")
        rendered = reports.quarantined(key, reason, target) | {
            "counts": {"applied": 0, "already": 0, "recorded": 0, "mismatches": 0}
        }
        report_key = REPORTS + key + ".json"
        self._put(report_key, json.dumps(rendered, indent=2) + "\n")
        self.store.save_run(rendered, report_key)
        self.on_metric(BANK_FILES_QUARANTINED, 1)
        return FileOutcome(key, "QUARANTINED", report_key, detail=reason)

    def _put(self, key: str, text: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType="application/json")
