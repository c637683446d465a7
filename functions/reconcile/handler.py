"""Lambda entry point of reconciliation.

Two kinds of events reach it:

* S3 ``ObjectCreated`` notifications for ``incoming/`` (keys arrive URL-encoded:
  ``unquote_plus``). Each object is reconciled (or quarantined, or handed to the
  Distributed Map when it is too big for one invocation). A bad file never fails
  the invocation: it is an outcome, recorded in its report.
* SQS messages of the "deferred reconciliations" queue (``DEFERRED_RECONCILIATIONS_QUEUE_URL``): a file whose
  ledger day's copy was not complete when it arrived (:class:`LedgerDayIncomplete`) is sent there, delayed
  until the copy is complete, and reconciled when the message comes back; still incomplete, the message is
  kept invisible longer (:mod:`payments.reconciliation.deferred`). A deferral never fails the invocation.
* the three Tasks of ``stepfunctions/reconcile.asl.json``: ``{"action": "plan_chunks"}``,
  ``{"action": "reconcile_chunk"}`` and ``{"action": "merge_chunks"}``; and those of
  ``stepfunctions/reconcile_athena.asl.json``: ``{"action": "plan_chunks", "athena": true}``,
  ``{"action": "normalise_chunk"}``, ``{"action": "athena_prepare"}`` and ``{"action": "athena_finish"}``.

Metrics (namespace ``Payments``): ``ReconciliationMismatches``, ``SettlementRowsRejected``,
``SettlementFilesQuarantined``, ``WalletLedgerDifferences``, ``ReconciliationsDeferred`` (through
:func:`payments.kernel.observability.count`, which keeps them local when metrics are disabled).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import aws, config
from payments.kernel.config import settings
from payments.kernel.observability import count, entry_point, logger
from payments.reconciliation.columnar import LedgerDayIncomplete
from payments.reconciliation.deferred import Deferral, DeferredQueue
from payments.reconciliation.service import Outcome, Reconciler, remove_stale_work

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.RECONCILE)

#: a record whose day is still incomplete is reported failed (SQS keeps it, invisible until the day is complete),
#: and a batch of only such records is an answer, not an error: the invocation does not fail
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def utc_now() -> datetime:
    """The clock that decides whether a day's ledger copy is complete (replaced by the tests)."""
    return datetime.now(UTC)


class StillIncomplete(Exception):
    """A deferred file's day is still incomplete: its message was made invisible until then (reported failed)."""


def _queue() -> DeferredQueue:
    return DeferredQueue(aws.client("sqs"), settings().deferred_reconciliations_queue_url)


def reconcile_deferred(record: SQSRecord) -> dict[str, Any]:
    """One message of the deferred queue: the file reconciled now, or its message kept until its day is complete."""
    deferral = Deferral.parse(record.body)
    logger.append_keys(source_key=deferral.key)
    try:
        outcome = Reconciler(bucket=deferral.bucket, on_metric=count, clock=utc_now).reconcile_object(deferral.key)
    except LedgerDayIncomplete as err:
        visibility = _queue().postpone(record.receipt_handle, err.complete_at, utc_now())
        logger.info("settlement file still deferred", extra={"day": err.day, "visible_in_s": visibility})
        raise StillIncomplete(str(err)) from err
    logger.info("deferred settlement file handled", extra=outcome.to_json())
    return outcome.to_json()


def _reconcile_or_defer(bucket: str, key: str) -> Outcome:
    try:
        return Reconciler(bucket=bucket, on_metric=count, clock=utc_now).reconcile_object(key)
    except LedgerDayIncomplete as err:
        queue = _queue()
        if not queue.queue_url:  # no queue configured: fail as before (retries, then the dead-letter queue)
            raise
        delay = queue.defer(Deferral.of(bucket, key, err), err.complete_at, utc_now())
        count("ReconciliationsDeferred", 1)
        return Outcome(key, "DEFERRED", detail=f"{err} (queued, delay {delay} s)")


def _clear_stale_work() -> None:
    """In a Lambda environment (the runtime API is set only there), the folders an earlier invocation of this
    environment left in /tmp (a timeout, out of memory) are removed before this one starts."""
    if not os.environ.get("AWS_LAMBDA_RUNTIME_API"):
        return  # the local runtime and the tests run invocations side by side in one process: never theirs
    folders, size = remove_stale_work(Path(tempfile.gettempdir()))
    if folders:
        logger.warning(
            "removed the work an earlier invocation left in /tmp (it ended without cleaning up: a timeout?)",
            extra={"folders": folders, "bytes": size},
        )


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    _clear_stale_work()
    action = event.get("action")
    if action is not None:
        reconciler = Reconciler(bucket=event["bucket"], on_metric=count)
        if action == "plan_chunks":
            return reconciler.plan(event["key"], for_athena=bool(event.get("athena")))
        if action == "reconcile_chunk":
            return reconciler.reconcile_chunk(event["key"], event["plan"], event["chunk"])
        if action == "merge_chunks":
            return reconciler.merge_chunks(event["key"], event["plan"], event["chunks"])
        if action == "normalise_chunk":
            return reconciler.normalise_chunk(event["key"], event["plan"], event["chunk"])
        if action == "athena_prepare":
            return reconciler.athena_prepare(event["key"], event["plan"])
        if action == "athena_finish":
            return reconciler.athena_finish(event["key"], event["plan"], event["results"])
        raise ValueError(f"unknown action {action!r}")
    records = event.get("Records", [])
    if records and records[0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event, record_handler=reconcile_deferred, processor=processor, context=context
        )
    outcomes = []
    for record in records:
        s3 = record.get("s3", {})
        bucket, key = s3.get("bucket", {}).get("name"), unquote_plus(s3.get("object", {}).get("key", ""))
        logger.append_keys(source_key=key)
        outcome = _reconcile_or_defer(bucket, key)
        logger.info("settlement file handled", extra=outcome.to_json())
        outcomes.append(outcome.to_json())
    return {"outcomes": outcomes}
