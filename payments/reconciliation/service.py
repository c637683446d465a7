"""Reconciling an object of the settlement bucket: engine + S3 + reports + table + quarantine.

One file's life::

    incoming/<path>        --(ObjectCreated)-->  reconcile_object
      readable   -> reports/incoming/<path>.json | .html | .mismatches.csv, run + mismatches in the table
      unreadable -> moved to quarantine/<path> (copy + delete), quarantine/<path>.reason.json,
                    reports/incoming/<path>.json with "quarantined": {"reason": ...} and its .html
      too big for one Lambda (and a state machine configured) -> stepfunctions/reconcile.asl.json
      too big for one function's disk (and the Athena workflow configured) -> stepfunctions/reconcile_athena.asl.json
      its ledger day's copy not complete yet (the lake) -> LedgerDayIncomplete, nothing written: the reconcile
                    function defers the file until the copy is complete (payments.reconciliation.deferred)

The bucket layout keeps the trigger safe: only ``incoming/`` notifies, and nothing
here writes under ``incoming/``. Everything is deterministic in the file's bytes:
reconciling the same file twice writes the same reports and no new table items.
S3 or DynamoDB failures are not input problems: they raise, and the Lambda's
asynchronous retry (then its failure destination) takes over.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from payments.accounts.ledger import LedgerRepository
from payments.accounts.settlement import SettledCharge, Settlement, book_psp_fees, psp_fees_of
from payments.accounts.wallet import SellerBalance, WalletRepository
from payments.kernel import aws
from payments.kernel.config import env_name, settings
from payments.kernel.money import Money, format_minor
from payments.reconciliation import athena, bank, chunks, columnar, detect, engine, report
from payments.reconciliation.detect import day_hint
from payments.reconciliation.lines import BLOCK_BYTES, BinaryStream, Metered, sniff
from payments.reconciliation.model import Bounds, UnreadableFile
from payments.reconciliation.sources import (
    BalanceSource,
    DynamoBalanceSource,
    DynamoLedgerSource,
    LedgerEntry,
    LedgerSource,
)
from payments.reconciliation.store import ReconciliationStore, resolutions, settle_late

INCOMING, REPORTS, QUARANTINE, WORK = "incoming/", "reports/", "quarantine/", "work/"
#: environment variable naming the Distributed Map state machine (unset: always single pass)
STATE_MACHINE_ENV = env_name("reconcile_state_machine_arn")  # the large-file state machine, set by the CDK
#: the paths of one file by size (``route``)
SINGLE, DISTRIBUTED, ATHENA, OVERSIZED = "SINGLE", "DISTRIBUTED", "ATHENA", "OVERSIZED"


#: the folders a reconciliation creates in the temp directory (each removed when its step ends normally)
WORK_PREFIXES = ("settlement-", "reconcile-", "ledger-copy-", "normalise-", "adjusted-", "athena-results-")


def remove_stale_work(root: Path) -> tuple[int, int]:
    """Remove the folders an earlier invocation left in ``root``: call it where nothing of ours is running (a Lambda
    environment's /tmp, as an invocation starts: one invocation at a time per environment). An invocation that timed
    out or ran out of memory never reached its clean-up, and the environment's next invocations share its /tmp: a
    day's leftover spill (gigabytes, docs/capacity.md section 12) would take the space the next file needs. Returns
    (folders, bytes) removed."""
    import shutil

    folders = size = 0
    for path in root.iterdir() if root.is_dir() else ():
        if not path.name.startswith(WORK_PREFIXES) or path.is_symlink() or not path.is_dir():
            continue
        for sub, _, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):  # removed meanwhile
                    size += os.lstat(os.path.join(sub, name)).st_size
        shutil.rmtree(path, ignore_errors=True)
        folders += 1
    return folders, size


def route(size: int, bounds: Bounds, *, distributed: bool, athena: bool) -> str:
    """Which path reconciles a file of ``size`` bytes: one function; the Distributed Map (configured where the
    stage has it); Athena (configured where the stage has the ledger's copy) above ``athena_above_bytes``,
    up to its own bound; else the file is oversized. Without the Athena workflow (the local runtime, a stage
    without the lake) the Distributed Map takes every file up to ``max_file_bytes``."""
    if athena and bounds.athena_above_bytes < size <= bounds.max_athena_file_bytes:
        return ATHENA
    if size > bounds.max_file_bytes:
        return OVERSIZED
    if distributed and size > bounds.max_single_pass_bytes:
        return DISTRIBUTED
    return SINGLE


def reconcile_stream(
    stream: BinaryStream,
    ledger: LedgerSource,
    bounds: Bounds,
    payouts: bank.PayoutBook | None = None,
    hint: str | None = None,
    on_match: Callable[[LedgerEntry], None] | None = None,
) -> tuple[engine.Result, str]:
    """The whole single pass over any binary stream: detect, parse, match. Returns (result, sha256).

    Raises :class:`UnreadableFile` for anything that is not a readable settlement file.
    """
    metered = Metered(stream, bounds.max_file_bytes)
    head, replay = sniff(metered, bounds.sniff_bytes)
    fmt, encoding = detect.sniff(head)
    if fmt in detect.BANK_FORMATS:
        result = bank.reconcile_statement(fmt, replay, bounds, payouts, encoding)
    else:
        result = _reconcile_adyen_spooled(replay, ledger, bounds, hint, on_match)
    while metered.read(1024 * 1024):  # a bank parser may stop at its closing tag: hash the whole file
        pass
    return result, metered.sha256.hexdigest()


def _reconcile_adyen_spooled(
    stream: BinaryStream,
    ledger: LedgerSource,
    bounds: Bounds,
    hint: str | None,
    on_match: Callable[[LedgerEntry], None] | None,
) -> engine.Result:
    """An Adyen file copied to local disk as it is read (bounded and hashed by the caller's stream), then
    reconciled from there: duckdb reads the file itself (:func:`.columnar.reconcile_adyen_file`)."""
    with tempfile.TemporaryDirectory(prefix="settlement-") as folder:
        path = Path(folder) / "settlement.csv"
        with open(path, "wb") as out:
            while block := stream.read(BLOCK_BYTES):
                out.write(block)
        return columnar.reconcile_adyen_file(path, ledger, bounds, hint, on_match, consume=True)


#: how often the three-way check reads again while the books move under it, and the pause between reads
CONSISTENT_READ_ATTEMPTS = 5
CONSISTENT_READ_PAUSE_S = 0.2


def _consistent_reads(
    accounts: set[tuple[str, str]], balances: BalanceSource
) -> tuple[dict[tuple[str, str], SellerBalance], dict[tuple[str, str], SellerBalance]]:
    """The wallets and the ledger's projection of ``accounts`` as of one moment, as far as the three-way check needs.

    The two are read one after the other, not as one snapshot. Every movement between a seller's parts (a
    settlement: pending to available; money back; a payout) changes the wallet and the ledger in ONE transaction,
    so a wallet read between two equal reads of the ledger saw no such movement half done: it is compared with
    them. While the ledger keeps moving (another reconciliation of the same file settling its charges, a payout)
    the reads are taken again, a few times; past that, the last reads are compared and any difference reported."""
    ledger = balances.ledger_projection(accounts)
    wallets = balances.wallet_balances(accounts)
    for _ in range(CONSISTENT_READ_ATTEMPTS):
        again = balances.ledger_projection(accounts)
        if again == ledger:
            break
        time.sleep(CONSISTENT_READ_PAUSE_S)
        ledger, wallets = again, balances.wallet_balances(accounts)
    return wallets, ledger


def three_way(accounts: set[tuple[str, str]], truncated: bool, balances: BalanceSource) -> dict[str, Any]:
    """Wallet vs ledger projection for the (seller, currency) accounts a file touched (invariant 4), part
    by part: pending, available, in transit. One difference per part that disagrees."""
    wallets, ledger = _consistent_reads(accounts, balances) if accounts else ({}, {})
    differences = []
    for seller, ccy in sorted(accounts):
        wallet_parts = wallets.get((seller, ccy), SellerBalance())
        ledger_parts = ledger.get((seller, ccy), SellerBalance())
        for part, wallet_amount, ledger_amount in zip(SellerBalance._fields, wallet_parts, ledger_parts, strict=True):
            if wallet_amount != ledger_amount:
                differences.append(
                    {
                        "seller_account": seller,
                        "currency": ccy,
                        "part": part,
                        "wallet_amount": format_minor(wallet_amount, ccy),
                        "ledger_amount": format_minor(ledger_amount, ccy),
                        "difference": format_minor(wallet_amount - ledger_amount, ccy),
                    }
                )
    sellers = {seller for seller, _ in accounts}
    return {"sellers_checked": len(sellers), "sellers_truncated": truncated, "differences": differences}


@dataclass(frozen=True)
class Outcome:
    source_key: str
    status: str  # RECONCILED | QUARANTINED | DISTRIBUTED | SKIPPED | DEFERRED (the handler: payments.reconciliation.deferred)
    report_key: str | None = None
    mismatches: int = 0
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Reconciler:
    """Reconciles objects of one bucket. Every collaborator can be injected (tests, benchmark)."""

    def __init__(
        self,
        *,
        bucket: str | None = None,
        s3: Any = None,
        ledger: LedgerSource | None = None,
        store: ReconciliationStore | None = None,
        balances: BalanceSource | None = None,
        bounds: Bounds | None = None,
        state_machine_arn: str | None = None,
        athena_state_machine_arn: str | None = None,
        sfn: Any = None,
        on_metric: Callable[[str, int], None] | None = None,
        books: tuple[WalletRepository, LedgerRepository] | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.bucket = bucket or settings().settlement_bucket
        self.s3 = s3 or aws.client("s3")
        # what a reconciled file moves (settled charges to available, the PSP's fees): the stage's wallets
        # and ledger, unless the caller gives its own ledger source (a benchmark, a test) and no books
        if books is None and ledger is None:
            led = LedgerRepository()
            books = (WalletRepository(client=led.ddb, payments=led.payments), led)
        self.books = books
        # the ledger's day: the lake's copy in S3 where the stage has one (LEDGER_LAKE_BUCKET), read without a
        # Query or Scan of the table (rows of other days by key); a stage without it reads the day index
        table = DynamoLedgerSource(repository=books[1] if books else None, psp=settings().psp_name)
        self.ledger: LedgerSource = ledger or columnar.lake_ledger(self.s3, settings().psp_name, table, clock) or table
        self.store = store or ReconciliationStore()
        self.balances = balances or DynamoBalanceSource()
        self.bounds = bounds or Bounds()
        self.state_machine_arn = (
            state_machine_arn if state_machine_arn is not None else settings().reconcile_state_machine_arn
        )
        self.athena_state_machine_arn = (
            athena_state_machine_arn
            if athena_state_machine_arn is not None
            else settings().reconcile_athena_state_machine_arn
        )
        self._sfn = sfn
        self.on_metric = on_metric or (lambda name, value: None)

    # --- the single-function path ---------------------------------------------------------
    def reconcile_object(self, key: str) -> Outcome:
        if not key.startswith(INCOMING):
            return Outcome(key, "SKIPPED", detail="not under incoming/")
        try:
            size = self.s3.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return Outcome(key, "SKIPPED", detail="object no longer exists (already handled)")
            raise
        path = route(
            size, self.bounds, distributed=bool(self.state_machine_arn), athena=bool(self.athena_state_machine_arn)
        )
        if path == OVERSIZED:
            bound = self.bounds.max_athena_file_bytes if self.athena_state_machine_arn else self.bounds.max_file_bytes
            return self.quarantine(key, f"oversized: {size} bytes exceeds the bound of {bound}")
        if path == ATHENA:
            return self._start_distributed(key, self.athena_state_machine_arn)
        if path == DISTRIBUTED:
            return self._start_distributed(key, self.state_machine_arn)
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        settlement = self._settlement(key)
        try:
            result, digest = reconcile_stream(
                body, self.ledger, self.bounds, self.store, day_hint(key), _settling(settlement) if settlement else None
            )
        except UnreadableFile as err:
            return self.quarantine(key, err.reason)
        finally:
            body.close()
        return self.finish(key, result, digest, settlement)

    def _settlement(self, key: str) -> Settlement | None:
        if self.books is None:
            return None
        wallets, ledger = self.books
        return Settlement(wallets, ledger, source_key=key)

    def finish(self, key: str, result: engine.Result, digest: str, settlement: Settlement | None = None) -> Outcome:
        """The books (settled charges to available, the PSP's fees), three-way check, reports, table
        records, metrics: shared by both paths. The books move before the three-way check reads them."""
        if settlement is not None and result.format == detect.ADYEN:
            settled = settlement.flush()
            self.on_metric("ChargesSettled", settled.settled)
            book_psp_fees(settlement.ledger, digest, key, psp_fees_of(result.totals))
        checked = (
            three_way(result.seller_accounts, result.sellers_truncated, self.balances)
            if result.format == detect.ADYEN
            else None
        )
        rendered = report.build(key, digest, result, checked)
        report_key = self._write_reports(key, rendered)
        created = self.store.save_run(rendered, report_key)
        # what this file settles or no longer has is resolved by itself: the reports say so
        for earlier in settle_late(key, result.settled_late, self.store):
            refresh_html(earlier, s3=self.s3, bucket=self.bucket, store=self.store)
        if created < len(rendered["mismatches"]):  # a run before this one: some may be resolved
            refresh_html(key, s3=self.s3, bucket=self.bucket, store=self.store)
        payouts = {ccy: sums["payout"] for ccy, sums in result.totals.items() if sums.get("payout")}
        if payouts:
            self.store.record_payouts(key, payouts)
        count = len(result.mismatches) + result.mismatches_omitted
        self.on_metric("ReconciliationMismatches", count)
        self.on_metric("SettlementRowsRejected", len(result.rejected))
        if checked and checked["differences"]:
            self.on_metric("WalletLedgerDifferences", len(checked["differences"]))
        return Outcome(key, "RECONCILED", report_key, count)

    def _write_reports(self, key: str, rendered: dict[str, Any]) -> str:
        base = REPORTS + key
        self._put(base + ".json", report.to_json(rendered), "application/json")
        self._put(base + ".html", report.to_html(rendered), "text/html; charset=utf-8")
        self._put(base + ".mismatches.csv", report.to_csv(rendered), "text/csv; charset=utf-8")
        return base + ".json"

    def _put(self, key: str, text: str, content_type: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)

    # --- quarantine --------------------------------------------------------------------------
    def quarantine(self, key: str, reason: str) -> Outcome:
        target = QUARANTINE + key.removeprefix(INCOMING)
        self.s3.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key})
        self.s3.delete_object(Bucket=self.bucket, Key=key)
        self._put(
            target + ".reason.json",
            json.dumps({"source_key": key, "reason": reason}, indent=2) + "\n",
            "application/json",
        )
        rendered = report.quarantined(key, reason, target)
        report_key = REPORTS + key + ".json"
        self._put(report_key, report.to_json(rendered), "application/json")
        self._put(REPORTS + key + ".html", report.to_html(rendered), "text/html; charset=utf-8")
        self.store.save_run(rendered, report_key)
        self.on_metric("SettlementFilesQuarantined", 1)
        return Outcome(key, "QUARANTINED", report_key, detail=reason)

    # --- the distributed path (stepfunctions/reconcile.asl.json) ----------------------------
    def _start_distributed(self, key: str, state_machine_arn: str) -> Outcome:
        sfn = self._sfn or aws.client("stepfunctions")
        etag = self.s3.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
        name = re.sub(r"[^A-Za-z0-9_-]", "-", key.removeprefix(INCOMING))[:60] + "-" + etag[:16]
        try:
            sfn.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps({"bucket": self.bucket, "key": key})
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
            # the same bytes already ran to completion (a running one would have been joined):
            # its report stands; a failed run is restarted by hand (docs/deploy.md)
            return Outcome(key, "SKIPPED", detail=f"execution {name} already ran")
        return Outcome(key, "DISTRIBUTED", detail=name)

    def plan(self, key: str, *, for_athena: bool = False) -> dict[str, Any]:
        """Task PlanChunks: byte ranges at line boundaries. An unreadable file is quarantined
        here and the plan has no chunks (the Map then does nothing and MergeChunks skips).
        ``for_athena``: the Athena workflow's plan, bounded by ``max_athena_file_bytes``."""
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            head, replay = sniff(body, self.bounds.sniff_bytes)
            fmt = detect.detect(head)
            if fmt != detect.ADYEN:
                raise UnreadableFile(
                    f"{fmt} files are bounded to {self.bounds.max_bank_statement_bytes} bytes; this one is far larger"
                )
            bounds = (
                replace(self.bounds, max_file_bytes=self.bounds.max_athena_file_bytes) if for_athena else self.bounds
            )
            plan = chunks.plan_chunks(replay, bounds)
            chunks.columns_of(plan)  # validates the header before any chunk runs
        except UnreadableFile as err:
            outcome = self.quarantine(key, err.reason)
            return {"quarantined": True, "chunks": [], "outcome": outcome.to_json()}
        finally:
            body.close()
        return {"quarantined": False, "run_prefix": f"{WORK}{plan.sha256[:16]}/", **plan.to_json()}

    def reconcile_chunk(self, key: str, plan: dict[str, Any], chunk: dict[str, Any]) -> dict[str, Any]:
        """Task ReconcileChunk (one Map item): the chunk's partial and sorted run, written to S3."""
        the_chunk = chunks.Chunk(**chunk)
        partial, entries = self._chunk(key, plan, the_chunk)
        base = f"{plan['run_prefix']}chunk-{the_chunk.index:05d}"
        self._put(base + ".json", json.dumps(partial.to_json()), "application/json")
        self._put(base + ".tsv", "".join(e.to_tsv() for e in entries), "text/tab-separated-values")
        return {"index": the_chunk.index, "partial_key": base + ".json", "run_key": base + ".tsv"}

    def _chunk(
        self, key: str, plan: dict[str, Any], chunk: chunks.Chunk
    ) -> tuple[engine.Partial, list[engine.SettledEntry]]:
        """One chunk of the file (a ranged GET) read by our reader: its partial and its Settled rows."""
        body = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={chunk.start}-{chunk.end - 1}")["Body"]
        try:
            return chunks.process_chunk(body, chunk, chunks.Plan.from_json(_plan_fields(plan)), self.bounds)
        finally:
            body.close()

    def merge_chunks(self, key: str, plan: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
        """Task MergeChunks: add the partials, merge-join the runs with the ledger, finish."""
        if plan.get("quarantined"):
            quarantined: dict[str, Any] = plan["outcome"]
            return quarantined
        the_plan = chunks.Plan.from_json(_plan_fields(plan))
        ordered = sorted(results, key=lambda r: r["index"])
        partials = [
            engine.Partial.from_json(
                json.loads(self.s3.get_object(Bucket=self.bucket, Key=r["partial_key"])["Body"].read())
            )
            for r in ordered
        ]
        bodies = [self.s3.get_object(Bucket=self.bucket, Key=r["run_key"])["Body"] for r in ordered]
        settlement = self._settlement(key)
        try:
            runs = [_entries(body) for body in bodies]
            result = chunks.merge_chunks(
                partials,
                runs,
                the_plan,
                self.ledger,
                self.bounds,
                day_hint(key),
                _settling(settlement) if settlement else None,
            )
        except UnreadableFile as err:
            return self.quarantine(key, err.reason).to_json()
        finally:
            for body in bodies:
                body.close()
        outcome = self.finish(key, result, the_plan.sha256, settlement)
        for r in ordered:
            self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": r["partial_key"]}, {"Key": r["run_key"]}]}
            )
        return outcome.to_json()

    # --- the Athena workflow (stepfunctions/reconcile_athena.asl.json) --------------------------
    def normalise_chunk(self, key: str, plan: dict[str, Any], chunk: dict[str, Any]) -> dict[str, Any]:
        """Task NormaliseChunk (one Map item): the chunk's partial (JSON) and its Settled rows as Parquet under
        ``work/<run>/settled/``, the Glue table Athena reads (:data:`.athena.SETTLED_TABLE`)."""
        the_chunk = chunks.Chunk(**chunk)
        partial, entries = self._chunk(key, plan, the_chunk)
        self._put(_partial_key(plan, the_chunk.index), json.dumps(partial.to_json()), "application/json")
        with tempfile.TemporaryDirectory(prefix="normalise-") as work:
            path = Path(work) / "settled.parquet"
            athena.write_settled(entries, path)
            self.s3.put_object(Bucket=self.bucket, Key=_settled_key(plan, the_chunk.index), Body=path.read_bytes())
        return {"index": the_chunk.index}

    def _total(self, plan: dict[str, Any]) -> engine.Partial:
        partials = [
            engine.Partial.from_json(
                json.loads(self.s3.get_object(Bucket=self.bucket, Key=_partial_key(plan, c["index"]))["Body"].read())
            )
            for c in sorted(plan["chunks"], key=lambda c: c["index"])
        ]
        return chunks.add_up(partials, chunks.Plan.from_json(_plan_fields(plan)), self.bounds)

    def athena_prepare(self, key: str, plan: dict[str, Any]) -> dict[str, Any]:
        """Task PrepareQueries: the partials added up (an unreadable file is quarantined here), the adjustment
        rows written for Athena, and the run's queries with where the workgroup unloads their results."""
        try:
            total = self._total(plan)
        except UnreadableFile as err:
            return {"quarantined": True, "outcome": self.quarantine(key, err.reason).to_json()}
        with tempfile.TemporaryDirectory(prefix="adjusted-") as work:
            path = Path(work) / "adjusted.parquet"
            athena.write_adjusted(total.adjustments, path)
            self.s3.put_object(Bucket=self.bucket, Key=_adjusted_key(plan), Body=path.read_bytes())
        run = _run(plan)
        config = settings()
        day = engine.window_day(total.days, day_hint(key))
        return {
            "quarantined": False,
            "window_day": day,
            "database": config.ledger_lake_database,
            "workgroup": config.ledger_lake_workgroup,
            "results_prefix": f"s3://{config.ledger_lake_bucket}/{athena.RESULTS_PREFIX}{run}/",
            "queries": athena.queries(run=run, psp=config.psp_name, day=day, budget=self.bounds.max_point_lookups),
        }

    def athena_finish(self, key: str, plan: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
        """Task Finish: the queries' unloaded rows read back, the same outcomes as the function's path
        (:func:`.columnar.outcomes`), the report, table records and books; the run's work objects deleted."""
        total = self._total(plan)
        day = engine.window_day(total.days, day_hint(key))
        settlement = self._settlement(key)
        with tempfile.TemporaryDirectory(prefix="athena-results-") as work:
            files = {r["name"]: athena.download(self.s3, r["location"], Path(work) / r["name"]) for r in results}
            query = athena.Results(files, self.bounds.columnar_memory_limit)
            try:
                result = columnar.outcomes(
                    query, total, self.ledger, self.bounds, day, _settling(settlement) if settlement else None
                )
            finally:
                query.close()
        outcome = self.finish(key, result, plan["sha256"], settlement)
        keys = [_adjusted_key(plan)]
        for c in plan["chunks"]:
            keys += [_partial_key(plan, c["index"]), _settled_key(plan, c["index"])]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys at most
            self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]}
            )
        return outcome.to_json()


def _run(plan: dict[str, Any]) -> str:
    """The run's id: the Glue tables' injected ``run`` partition (``work/<run>/``)."""
    return str(plan["run_prefix"]).removeprefix(WORK).rstrip("/")


def _partial_key(plan: dict[str, Any], index: int) -> str:
    return f"{plan['run_prefix']}chunk-{index:05d}.json"


def _settled_key(plan: dict[str, Any], index: int) -> str:
    return f"{plan['run_prefix']}{athena.SETTLED_PREFIX}chunk-{index:05d}.parquet"


def _adjusted_key(plan: dict[str, Any]) -> str:
    return f"{plan['run_prefix']}{athena.ADJUSTED_PREFIX}adjusted.parquet"


def refresh_html(
    source_key: str, *, s3: Any = None, bucket: str | None = None, store: ReconciliationStore | None = None
) -> bool:
    """Write ``reports/<source_key>.html`` again from the stored JSON report and each mismatch's status in
    the table (after a resolution: a person's or reconciliation's own). False when there is no JSON report."""
    s3 = s3 or aws.client("s3")
    bucket = bucket or settings().settlement_bucket
    try:
        body = s3.get_object(Bucket=bucket, Key=REPORTS + source_key + ".json")["Body"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    try:
        rendered = json.loads(body.read())
    finally:
        body.close()
    page = report.to_html(rendered, resolutions=resolutions(source_key, store))
    s3.put_object(
        Bucket=bucket,
        Key=REPORTS + source_key + ".html",
        Body=page.encode("utf-8"),
        ContentType="text/html; charset=utf-8",
    )
    return True


def _settling(settlement: Settlement) -> Callable[[LedgerEntry], None]:
    """The join's ``on_match``: each matched charge's net, to be moved from pending to available."""

    def settle(entry: LedgerEntry) -> None:
        settlement.add(
            SettledCharge(entry.payment_order_id, entry.seller_account, Money(entry.net_minor, entry.currency))
        )

    return settle


def _plan_fields(plan: dict[str, Any]) -> dict[str, Any]:
    return {name: plan[name] for name in ("chunks", "header", "sha256", "size", "ended_with_newline")}


def _entries(body: Any) -> Iterator[engine.SettledEntry]:
    for raw in body.iter_lines(chunk_size=1024 * 1024):
        if raw:
            yield engine.SettledEntry.from_tsv(raw.decode("utf-8"))
