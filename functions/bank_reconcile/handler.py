"""Lambda entry point of the bank reconciliation: S3 ``ObjectCreated`` notifications of the bank bucket's
``incoming/bank/`` (the bank's pain.002, camt.053 and camt.054; keys arrive URL-encoded: ``unquote_plus``).

Each file is reconciled by :class:`payments.payouts.reconcile.BankReconciler` against the payouts' book
(:class:`payments.payouts.outcomes.PayoutOutcomes`), or quarantined when unreadable. A bad file never fails
the invocation: it is an outcome, in its report. S3 or DynamoDB failures raise: Lambda's asynchronous
retry, then the dead-letter queue, take over; a file run again applies nothing twice.

Metrics (namespace ``Payments``): ``PayoutsReturned`` and ``PayoutsFailed`` (alarmed), ``BankMismatches``,
``BankFilesQuarantined``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import config
from payments.kernel.observability import count, entry_point, logger
from payments.payouts.outcomes import PayoutOutcomes
from payments.payouts.reconcile import BankReconciler
from payments.payouts.repository import PayoutsRepository

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.BANK_RECONCILE)

#: the payouts' book the bank's answers are applied to: the payouts repository (its statuses, the sellers'
#: balance items, the ledger and the payout accounts moved together, each outcome once)
OUTCOMES: Callable[[], PayoutOutcomes] = PayoutsRepository


def payout_outcomes() -> PayoutOutcomes:
    return OUTCOMES()


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = []
    for record in event.get("Records", []):
        s3 = record.get("s3", {})
        bucket, key = s3.get("bucket", {}).get("name"), unquote_plus(s3.get("object", {}).get("key", ""))
        logger.append_keys(source_key=key)
        outcome = BankReconciler(payout_outcomes(), bucket=bucket, on_metric=count).reconcile_object(key)
        logger.info("bank file handled", extra=outcome.to_json())
        if outcome.counts.get("mismatches"):
            logger.warning("bank file has mismatches: payments mismatches list", extra=outcome.to_json())
        outcomes.append(outcome.to_json())
    return {"outcomes": outcomes}
