"""Lambda entry point of reconciliation.

Two kinds of events reach it:

* S3 ``ObjectCreated`` notifications for ``incoming/`` (keys arrive URL-encoded:
  ``unquote_plus``). Each object is reconciled (or quarantined, or handed to the
  Distributed Map when it is too big for one invocation). A bad file never fails
  the invocation: it is an outcome, recorded in its report.
* the three Tasks of ``stepfunctions/reconcile.asl.json``: ``{"action": "plan_chunks"}``,
  ``{"action": "reconcile_chunk"}`` and ``{"action": "merge_chunks"}``.

Metrics (namespace ``Payments``): ``ReconciliationMismatches``, ``SettlementRowsRejected``,
``SettlementFilesQuarantined``, ``WalletLedgerDifferences`` (through
:func:`payments.kernel.observability.count`, which keeps them local when metrics are disabled).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import config
from payments.kernel.observability import count, entry_point, logger
from payments.reconciliation.service import Reconciler

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.RECONCILE)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    action = event.get("action")
    if action is not None:
        reconciler = Reconciler(bucket=event["bucket"], on_metric=count)
        if action == "plan_chunks":
            return reconciler.plan(event["key"])
        if action == "reconcile_chunk":
            return reconciler.reconcile_chunk(event["key"], event["plan"], event["chunk"])
        if action == "merge_chunks":
            return reconciler.merge_chunks(event["key"], event["plan"], event["chunks"])
        raise ValueError(f"unknown action {action!r}")
    outcomes = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket, key = s3.get("bucket", {}).get("name"), unquote_plus(s3.get("object", {}).get("key", ""))
        logger.append_keys(source_key=key)
        outcome = Reconciler(bucket=bucket, on_metric=count).reconcile_object(key)
        logger.info("settlement file handled", extra=outcome.to_json())
        outcomes.append(outcome.to_json())
    return {"outcomes": outcomes}
