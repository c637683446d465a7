"""The nightly payout run for a day D: scheduled payouts, then one pain.001 file of every PENDING EUR payout.

1. **Scheduled payouts.** Every seller balance (seller, currency) whose ``available`` is at least the stage's
   minimum for that currency (``payout_minimum_minor``, default EUR 1.00) gets a payout of all its available,
   reserved as a client's payout is (:meth:`PayoutsRepository.reserve`). Its id is derived from the seller,
   the currency and D (:func:`scheduled_payout_id`): a second run of D finds it and creates nothing. A
   currency without a payout rail is skipped with "no payout rail for XXX" (its money stays available); a
   seller without a usable payout account is skipped with the reason.
2. **The file.** Every PENDING payout of the rail's currency joins one run, including payouts left PENDING by a
   crash between their reservation and a file. A run is fixed before its file is written:

   a. the run item ``RUN#<D>#<currency>`` / ``RUN#<n>`` is put (``attribute_not_exists``) naming its payouts;
   b. each payout is claimed for the run (``run_id`` set on the payout if it is still PENDING and unclaimed, or
      already this run's): a payout joins one run only; a payout whose account is no longer usable is marked
      FAILED (its money back to available) and left out;
   c. the file is written with ``sepaxml`` (:func:`~payments.payouts.bank.pain001.write_payout_file`) from the
      run's payouts, its MsgId stored on the run item first (``CreDtTm`` is the run item's ``created_at``),
      then put at ``outgoing/pain001/<MsgId>.xml`` in the bank bucket with ``If-None-Match: *`` (S3's
      conditional put: a file that is there already is never replaced), then the run item marked ``written``;
   d. each payout is marked SUBMITTED with the MsgId, then the run item SUBMITTED.

   A crash anywhere leaves a run not SUBMITTED, or payouts claimed by it: the next run (of D or a later day)
   completes that run first, from its item: the same payouts, the same MsgId, the same bytes (MsgId and
   ``CreDtTm`` are the run's, never the clock's), which S3 refuses as already there. A run whose MsgId is
   stored but whose file can no longer be written the same (a payout account changed or was marked invalid
   in between) stops with :class:`PayoutRunNeedsOperator`: nothing is ever sent in a second file.

Payout accounts are read with :meth:`PayoutAccountsRepository.for_payout`: the IBAN decrypted in memory for
the file only, never logged; the answer names payouts and sellers, never an IBAN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import ClientError

from payments.accounts.balances import BALANCE_INDEX, BALANCE_SHARDS
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import batch_get, get_item, query_all, query_index, to_item, to_values
from payments.kernel.errors import Conflict
from payments.kernel.money import Money
from payments.kernel.observability import count, logger
from payments.kernel.pan import digest_id
from payments.payouts.accounts import PayoutAccountUnusable
from payments.payouts.bank.pain001 import (
    EUR,
    MAX_END_TO_END_ID,
    Debtor,
    PayoutInstruction,
    rail_for,
    write_payout_file,
)
from payments.payouts.logic import fingerprint, new_payout
from payments.payouts.outcomes import Applied, PayoutStatus
from payments.payouts.repository import PayoutExceedsAvailable, PayoutsRepository, payout_key

#: currencies a rail pays (the run writes one file per currency that has a rail)
RAIL_CURRENCIES = (EUR,)
#: run item states
FIXING, FIXED, SUBMITTED, EMPTY = "FIXING", "FIXED", "SUBMITTED", "EMPTY"
#: payouts named by one run item (far below DynamoDB's 400 KB item: 2,000 ids of 35 characters ~ 80 KB)
MAX_PAYOUTS_PER_RUN = 2000


#: a payout of a written file found in one of these: the bank answered the file before the run marked it sent
ANSWERED = frozenset({PayoutStatus.FAILED, PayoutStatus.PAID, PayoutStatus.RETURNED})


class PayoutRunNeedsOperator(RuntimeError):
    """A run whose file may be at the bank cannot be written again as it was: an operator decides (the alarm
    on the run function's errors fires); nothing is sent twice."""

    def __init__(self, run_id: str, reason: str):
        super().__init__(f"payout run {run_id} needs an operator: {reason}")
        self.run_id = run_id


def scheduled_payout_id(seller_account: str, currency: str, day: date) -> str:
    """``sp-<YYYYMMDD>-<currency>-<19 hex digits of SHA-256 over the seller>``: 35 characters, the EndToEndId's
    most; the same for the same seller, currency and day. Never one that reads as a card number: 19 hex digits
    can hold 13 to 19 decimal digits in a row that pass the Luhn check in an issuer's range (about one id in
    ten thousand), which the API would refuse as an id and the logs would redact; such a digest is drawn again
    over the same inputs and a counter, so the id stays deterministic."""
    prefix = f"sp-{day:%Y%m%d}-{currency}-"
    return digest_id(prefix, f"{seller_account}|{currency}|{day.isoformat()}", MAX_END_TO_END_ID - len(prefix))


@dataclass
class RunAnswer:
    day: str
    created: list[str] = field(default_factory=list)
    already_created: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "created": self.created,
            "already_created": self.already_created,
            "skipped": self.skipped,
            "files": self.files,
            "submitted": self.submitted,
            "failed": self.failed,
        }


class PayoutRun:
    """One run of the nightly payout (see the module's text); every step may be repeated."""

    def __init__(self, payouts: PayoutsRepository | None = None, s3: Any = None, bucket: str | None = None):
        self.payouts = payouts or PayoutsRepository()
        self.s3 = s3 or aws.client("s3")
        self.bucket = bucket or settings().bank_bucket
        self.debtor = Debtor.from_settings(settings())

    @property
    def ddb(self) -> Any:
        return self.payouts.ddb

    @property
    def table(self) -> str:
        return self.payouts.table

    def run(self, day: date) -> RunAnswer:
        answer = RunAnswer(day=day.isoformat())
        created = self.schedule(day, answer)
        for currency in RAIL_CURRENCIES:
            self.send(day, currency, answer, created)
        count("PayoutRunsCompleted")
        logger.info(
            "payout run",
            extra={
                "day": answer.day,
                "payouts_created": len(answer.created),
                "skipped": len(answer.skipped),
                "files": [f["msg_id"] for f in answer.files],
                "submitted": len(answer.submitted),
            },
        )
        return answer

    # --- 1. scheduled payouts ---------------------------------------------------------------------------

    def balances(self) -> Iterable[tuple[str, Money]]:
        """(seller, available) of every seller balance item: the keys from the sparse ``by_balance_shard``
        index, shard by shard (never a Scan of the wallets table, whose pending shards outnumber the
        balance items), then the items themselves read strongly consistent (the index is eventually
        consistent, and a balance is what a payout reserves from: the reservation's condition decides)."""
        for shard in range(BALANCE_SHARDS):
            keys = [
                {"pk": item["pk"], "sk": item["sk"]}
                for item in query_index(
                    self.ddb, self.payouts.wallets_table, BALANCE_INDEX, "balance_shard", f"B#{shard}"
                )
            ]
            for item in batch_get(self.ddb, self.payouts.wallets_table, keys):
                seller = item["pk"].removeprefix("BALANCE#")
                currency = item["sk"].removeprefix("CCY#")
                yield seller, Money(int(item.get("available_minor", 0)), currency)

    def schedule(self, day: date, answer: RunAnswer) -> list[str]:
        minimums = settings().payout_minimum_minor
        created: list[str] = []
        for seller, available in sorted(self.balances(), key=lambda b: (b[0], b[1].currency)):
            currency = available.currency
            minimum = Money(max(minimums.get(currency, 1), 1), currency)
            if available < minimum:
                continue
            if rail_for(currency, self.debtor) is None:
                answer.skipped.append(
                    {"seller_account": seller, "currency": currency, "reason": f"no payout rail for {currency}"}
                )
                continue
            try:
                self.payouts.accounts.usable(seller, currency)
            except PayoutAccountUnusable as unusable:
                answer.skipped.append({"seller_account": seller, "currency": currency, "reason": unusable.reason})
                continue
            payout_id = scheduled_payout_id(seller, currency, day)
            if self.payouts.find(payout_id) is not None:
                answer.already_created.append(payout_id)
                continue
            request = {"seller_account": seller, "currency": currency, "day": day.isoformat()}
            record = new_payout(
                payout_id,
                seller,
                available,
                origin="scheduled",
                idempotency_key=None,
                request_fingerprint=fingerprint(None, request),
                source=f"run:{day.isoformat()}",
            )
            try:
                reserved = self.payouts.reserve(record)
            except PayoutExceedsAvailable as exceeded:
                reason = f"available changed during the run (now {exceeded.available})"
                answer.skipped.append({"seller_account": seller, "currency": currency, "reason": reason})
                continue
            except Conflict:
                answer.skipped.append(
                    {"seller_account": seller, "currency": currency, "reason": f"payout_id {payout_id} is taken"}
                )
                continue
            (answer.created if reserved.created else answer.already_created).append(payout_id)
            created.append(payout_id)
        return created

    # --- 2. the file ------------------------------------------------------------------------------------

    def send(self, day: date, currency: str, answer: RunAnswer, created: list[str]) -> None:
        pending = {p.payout_id: p for p in self.payouts.pending(currency)}
        for payout_id in created:  # the index may not show what this run has just created
            found = self.payouts.find(payout_id)
            if found is not None and found.status is PayoutStatus.PENDING:
                pending[payout_id] = found
        # runs left unfinished (a crash): this day's, and any day's that claimed a payout still PENDING
        unfinished = {run["run_id"]: run for run in self.runs_of(day, currency) if run["state"] != SUBMITTED}
        for run_key in sorted({p.run_id for p in pending.values() if p.run_id}):
            run = self.run_item(run_key)
            if run is not None and run["state"] != SUBMITTED:
                unfinished[run_key] = run
        for run in sorted(unfinished.values(), key=lambda r: r["run_id"]):
            self.complete(run, answer)
        fresh = []
        for payout_id in sorted(pending):
            current = self.payouts.find(payout_id)
            if current is not None and current.status is PayoutStatus.PENDING and not current.run_id:
                fresh.append(payout_id)
        for start in range(0, len(fresh), MAX_PAYOUTS_PER_RUN):
            run = self.new_run(day, currency, fresh[start : start + MAX_PAYOUTS_PER_RUN])
            self.complete(run, answer)

    def runs_of(self, day: date, currency: str) -> list[dict[str, Any]]:
        return list(
            query_all(
                self.ddb,
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_values({":pk": f"RUN#{day.isoformat()}#{currency}"}),
                ConsistentRead=True,
            )
        )

    def run_item(self, run_id: str) -> dict[str, Any] | None:
        day, currency, number = run_id.split("#")
        return get_item(self.ddb, self.table, to_item({"pk": f"RUN#{day}#{currency}", "sk": f"RUN#{number}"}))

    def new_run(self, day: date, currency: str, payout_ids: list[str]) -> dict[str, Any]:
        """Put the next run item of (day, currency) naming ``payout_ids`` (the next number if one is taken)."""
        number = len(self.runs_of(day, currency))
        while True:
            number += 1
            run = {
                "pk": f"RUN#{day.isoformat()}#{currency}",
                "sk": f"RUN#{number:04d}",
                "run_id": f"{day.isoformat()}#{currency}#{number:04d}",
                "day": day.isoformat(),
                "currency": currency,
                "payout_ids": payout_ids,
                "state": FIXING,
                "created_at": clock.now().astimezone(UTC).replace(microsecond=0).isoformat(),
            }
            try:
                self.ddb.put_item(
                    TableName=self.table, Item=to_item(run), ConditionExpression="attribute_not_exists(pk)"
                )
            except self.ddb.exceptions.ConditionalCheckFailedException:
                continue  # another run of the same day took this number
            return run

    def complete(self, run: dict[str, Any], answer: RunAnswer) -> None:
        """Take ``run`` from wherever it stopped to SUBMITTED (see the module's text, steps b to d)."""
        run_id = run["run_id"]
        source = f"run:{run_id}"
        if run["state"] == FIXING:
            run = self.claim(run, answer)
        if run["state"] == EMPTY:
            return
        if not run.get("written"):
            run = self.write_file(run, answer)
            if run["state"] == EMPTY:
                return
            run = self._update_run(run, {"written": True})
        for payout_id in run["payout_ids"]:
            mac = run["iban_macs"][payout_id]
            outcome = self.payouts.mark_submitted(payout_id, msg_id=run["msg_id"], iban_mac=mac, source=source)
            if outcome.applied in (Applied.APPLIED, Applied.ALREADY) or outcome.status in ANSWERED:
                # ANSWERED: the bank read the file and its answer was reconciled before this mark (a fast bank)
                answer.submitted.append(payout_id)
            else:
                answer.failed.append({"payout_id": payout_id, "reason": outcome.detail or outcome.applied.value})
        self._update_run(run, {"state": SUBMITTED})

    def claim(self, run: dict[str, Any], answer: RunAnswer) -> dict[str, Any]:
        """Step b: each payout of the run claimed for it, or left out; the run item then FIXED (or EMPTY)."""
        claimed = []
        for payout_id in run["payout_ids"]:
            record = self.payouts.find(payout_id)
            if record is None or record.status is not PayoutStatus.PENDING:
                continue
            if record.run_id not in (None, run["run_id"]):
                continue  # another run has it
            try:
                self.payouts.accounts.usable(record.seller_account, record.currency)
            except PayoutAccountUnusable as unusable:
                self._fail(payout_id, unusable.reason, run, answer)
                continue
            if self._claim(payout_id, run["run_id"]):
                claimed.append(payout_id)
        return self._update_run(run, {"payout_ids": claimed, "state": FIXED if claimed else EMPTY})

    def _claim(self, payout_id: str, run_id: str) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=payout_key(payout_id),
                UpdateExpression="SET run_id = :run",
                ConditionExpression="#status = :pending AND (attribute_not_exists(run_id) OR run_id = :run)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_values({":run": run_id, ":pending": PayoutStatus.PENDING.value}),
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _fail(self, payout_id: str, reason: str, run: dict[str, Any], answer: RunAnswer) -> None:
        outcome = self.payouts.mark_failed(payout_id, reason=reason, source=f"run:{run['run_id']}")
        answer.failed.append({"payout_id": payout_id, "reason": reason, "applied": outcome.applied.value})

    def write_file(self, run: dict[str, Any], answer: RunAnswer) -> dict[str, Any]:
        """Step c: the run's file, its MsgId stored on the run item before the file is put (If-None-Match).

        Once a MsgId is stored, the file may be at the bank: a retry writes exactly that file again (S3 refuses
        it, it is there) or, if it cannot (a payout account changed or became unusable since), stops with
        :class:`PayoutRunNeedsOperator` rather than send the payouts in a second file."""
        fixed = run.get("msg_id")
        instructions: list[PayoutInstruction] = []
        macs: dict[str, str] = {}
        for payout_id in run["payout_ids"]:
            record = self.payouts.get(payout_id)
            if record.status is not PayoutStatus.PENDING and not fixed:
                continue  # decided otherwise before any file named it: left out
            try:
                destination = self.payouts.accounts.for_payout(record.seller_account, record.currency)
            except PayoutAccountUnusable as unusable:
                if fixed:
                    raise PayoutRunNeedsOperator(run["run_id"], f"payout {payout_id}: {unusable.reason}") from None
                self._fail(payout_id, unusable.reason, run, answer)
                continue
            macs[payout_id] = destination.iban_mac
            instructions.append(
                PayoutInstruction(
                    payout_id=payout_id,
                    account_holder=destination.account_holder,
                    iban=destination.iban,
                    bic=destination.bic,
                    amount_minor=record.amount_minor,
                    currency=record.currency,
                    remittance=f"Payout {payout_id}",
                )
            )
        if not instructions:
            return self._update_run(run, {"payout_ids": [], "state": EMPTY})
        created_at = datetime.fromisoformat(run["created_at"])
        file = write_payout_file(
            run["currency"], self.debtor, run["run_id"], created_at, date.fromisoformat(run["day"]), instructions
        )
        if fixed and fixed != file.msg_id:
            raise PayoutRunNeedsOperator(
                run["run_id"], f"its file {fixed} may be at the bank, and a payout account changed since"
            )
        if not fixed:
            run = self._update_run(run, {"payout_ids": list(macs), "msg_id": file.msg_id, "iban_macs": macs})
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=file.key, Body=file.content, ContentType="application/xml", IfNoneMatch="*"
            )
            written = True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
            written = False  # a retry: the same MsgId, so the same bytes, are there already
        answer.files.append(
            {
                "msg_id": file.msg_id,
                "key": file.key,
                "payouts": file.number_of_transactions,
                "control_sum": Money(file.control_sum_minor, file.currency).format(),
                "currency": file.currency,
                "written_now": written,
            }
        )
        if written:
            count("PayoutFilesWritten")
        return run

    def _update_run(self, run: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        names = {f"#a{i}": name for i, name in enumerate(sorted(changes))}
        values = {f":a{i}": changes[name] for i, name in enumerate(sorted(changes))}
        self.ddb.update_item(
            TableName=self.table,
            Key=to_item({"pk": run["pk"], "sk": run["sk"]}),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(changes))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_values(values),
        )
        return {**run, **changes}


def run_payouts(day: date | None = None) -> dict[str, Any]:
    """The run for ``day`` (default: today, UTC) with the stage's settings; its answer as plain values."""
    return PayoutRun().run(day or clock.now().astimezone(UTC).date()).as_dict()
