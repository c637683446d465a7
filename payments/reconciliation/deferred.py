"""Deferred reconciliations: a settlement file whose ledger day's copy is not complete yet waits in a queue.

A deployed stage matches a settlement file against the ledger's analytical copy in S3 (:mod:`.lake`), which
is complete only at the window day's end plus the delivery lag (:func:`.columnar.complete_at`). A file that
arrives earlier (a PSP delivering at 00:10 UTC) raises :class:`.columnar.LedgerDayIncomplete`. Instead of
failing the invocation (retried twice within minutes, then dead-lettered and alarmed), the reconcile function
sends the file's S3 coordinates to the "deferred reconciliations" SQS queue, delayed until the copy is complete
(SQS's ``DelaySeconds`` is at most 15 minutes). The same function consumes the queue:

* the day is complete: the file is reconciled (idempotent per file digest: the same report, no new items), and
  the message is deleted (the record succeeds);
* the day is still incomplete (the first wait was longer than 15 minutes): the message is made invisible until
  the day is complete (``ChangeMessageVisibility``, at most :data:`MAX_VISIBILITY_S` per receive) and the record
  is reported as a batch item failure, so SQS keeps it: one message per deferral, whose age is how long the file
  has been waiting (the queue's ``ApproximateAgeOfOldestMessage`` alarm);
* anything else that fails (S3, DynamoDB) is a batch item failure too: SQS delivers it again after the queue's
  visibility timeout, and after its ``maxReceiveCount`` moves it to the queue's dead-letter queue (alarmed).

Nothing is dropped silently: a deferral that cannot be sent fails the S3-triggered invocation, whose retries and
dead-letter queue take over as before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payments.reconciliation.columnar import LedgerDayIncomplete

#: SQS's largest ``DelaySeconds`` (15 minutes): a longer wait continues as the message's visibility
MAX_DELAY_S = 900
#: the longest visibility set on one receive; SQS refuses more than 12 hours from the receive, and the function
#: may have spent up to its timeout (14 minutes) on the message before it sets it
MAX_VISIBILITY_S = 11 * 3600


def seconds_until(ready: datetime, now: datetime, cap: int) -> int:
    """Whole seconds from ``now`` until ``ready`` (rounded up, so the message never returns early), within [0, cap]."""
    return max(0, min(cap, math.ceil((ready - now).total_seconds())))


@dataclass(frozen=True, slots=True)
class Deferral:
    """One deferred file: what the queue's message carries."""

    bucket: str
    key: str
    day: str
    complete_at: str  # ISO UTC
    reason: str

    def body(self) -> str:
        return json.dumps(
            {
                "bucket": self.bucket,
                "key": self.key,
                "day": self.day,
                "complete_at": self.complete_at,
                "reason": self.reason,
            },
            sort_keys=True,
        )

    @classmethod
    def of(cls, bucket: str, key: str, err: LedgerDayIncomplete) -> Deferral:
        return cls(bucket=bucket, key=key, day=err.day, complete_at=err.complete_at.isoformat(), reason=str(err))

    @classmethod
    def parse(cls, body: str) -> Deferral:
        data = json.loads(body)
        return cls(
            bucket=str(data["bucket"]),
            key=str(data["key"]),
            day=str(data["day"]),
            complete_at=str(data["complete_at"]),
            reason=str(data.get("reason", "")),
        )


class DeferredQueue:
    """The "deferred reconciliations" queue (``Settings.deferred_reconciliations_queue_url``)."""

    def __init__(self, sqs: Any, queue_url: str):
        self.sqs, self.queue_url = sqs, queue_url

    def defer(self, deferral: Deferral, ready: datetime, now: datetime) -> int:
        """Send the file to the queue, delayed until its day is complete (at most 15 minutes); returns the delay."""
        delay = seconds_until(ready, now, MAX_DELAY_S)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=deferral.body(), DelaySeconds=delay)
        return delay

    def postpone(self, receipt_handle: str, ready: datetime, now: datetime) -> int:
        """Keep a received message invisible until its day is complete (at most :data:`MAX_VISIBILITY_S`); the
        caller then reports the record as failed so that SQS keeps it. Returns the visibility set."""
        # at least one second: a visibility of 0 would hand the message straight back
        visibility = max(1, seconds_until(ready, now, MAX_VISIBILITY_S))
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=visibility
        )
        return visibility
