"""A settlement file that arrives before its ledger day's copy is complete is deferred, not failed: the reconcile
function queues it with the right delay, keeps its message while the day is still incomplete, and reconciles it
once the day is complete (moto's SQS and a clock; the lake's lag is 30 minutes after the day's end).

moto delivers a delayed or invisible message only when that much real time has passed, so the test's hook records
the ``DelaySeconds`` and ``VisibilityTimeout`` the function asks for, lets moto deliver at once, and moves the
function's clock forward by exactly what was asked: the function never sees a message earlier than it asked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

import functions.reconcile.handler as reconcile_function
from payments.kernel import aws
from payments.kernel.config import env_name, reset_settings, settings
from payments.kernel.observability import LOCAL_COUNTS
from payments.reconciliation import columnar
from payments.reconciliation.deferred import MAX_DELAY_S, MAX_VISIBILITY_S, Deferral, seconds_until
from tests.reconciliation.conftest import DAY, Aws, Context
from tests.reconciliation.test_lake_ledger import KEY, LAKE, seed, write_copy

DAY_END = datetime.fromisoformat(DAY).replace(tzinfo=UTC) + timedelta(days=1)
COMPLETE = DAY_END + timedelta(minutes=30)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Queue:
    """The deferred queue in moto, with the delays and visibilities the function asked for."""

    def __init__(self, sqs: Any, url: str):
        self.sqs, self.url = sqs, url
        self.delays: list[int] = []
        self.visibilities: list[int] = []

    def asked(self, params: dict[str, Any], **kwargs: Any) -> None:
        if params.get("QueueUrl") != self.url:
            return
        if "DelaySeconds" in params:
            self.delays.append(params["DelaySeconds"])
            params["DelaySeconds"] = 0  # the clock moves instead (module docstring)
        if "VisibilityTimeout" in params:
            self.visibilities.append(params["VisibilityTimeout"])
            params["VisibilityTimeout"] = 0

    def receive(self) -> list[dict[str, Any]]:
        """What Lambda's poller hands the function: the received messages as SQS event records."""
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["All"])
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:payments-reconcile-deferred",
                "awsRegion": "us-east-1",
            }
            for m in got.get("Messages", [])
        ]

    def delete(self, record: dict[str, Any]) -> None:
        """What Lambda's poller does with a record not reported as failed."""
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=record["receiptHandle"])

    def depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(DAY_END + timedelta(minutes=10))  # the PSP delivers at 00:10 UTC
    monkeypatch.setattr(reconcile_function, "utc_now", clock)
    return clock


@pytest.fixture
def queue(cloud: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="payments-reconcile-deferred")["QueueUrl"]
    monkeypatch.setenv(env_name("deferred_reconciliations_queue_url"), url)
    monkeypatch.setenv(columnar.LAKE_BUCKET_ENV, LAKE)
    monkeypatch.delenv(columnar.LAKE_FLUSHED_ENV, raising=False)
    reset_settings()
    aws.reset_clients()
    queue = Queue(sqs, url)
    for operation in ("SendMessage", "ChangeMessageVisibility"):
        aws.client("sqs").meta.events.register(f"provide-client-params.sqs.{operation}", queue.asked)
    yield queue
    reset_settings()


def reconciliation_items(cloud: Aws) -> int:
    return len(cloud.items("reconciliation_table"))


def test_a_file_of_an_incomplete_day_waits_in_the_queue_and_is_reconciled_once_the_day_is_complete(
    cloud: Aws, queue: Queue, clock: Clock
) -> None:
    # Given the day's ledger, its copy in the lake, and the day's file delivered at 00:10 (complete at 00:30)
    cloud.put(KEY, seed(cloud))
    write_copy(cloud)
    deferred_before = LOCAL_COUNTS["ReconciliationsDeferred"]
    # When S3 invokes the function
    result = reconcile_function.handler(cloud.s3_event(KEY), Context())
    # Then the invocation succeeds with the file deferred, nothing written, one message delayed by SQS's largest
    # delay (20 minutes are left, SQS delays at most 15), counted as ReconciliationsDeferred
    (outcome,) = result["outcomes"]
    assert outcome["status"] == "DEFERRED" and DAY in outcome["detail"]
    assert not cloud.exists(f"reports/{KEY}.json") and reconciliation_items(cloud) == 0
    assert queue.delays == [MAX_DELAY_S]
    assert LOCAL_COUNTS["ReconciliationsDeferred"] == deferred_before + 1
    (record,) = queue.receive()
    assert Deferral.parse(record["body"]) == Deferral(
        bucket=cloud.bucket,
        key=KEY,
        day=DAY,
        complete_at=COMPLETE.isoformat(),
        reason=f"the ledger copy of {DAY} is complete only at {COMPLETE.isoformat()}: deferred",
    )

    # When the message comes back 15 minutes later (00:25: the day is still incomplete)
    clock.now += timedelta(seconds=queue.delays[-1])
    answer = reconcile_function.handler({"Records": [record]}, Context())
    # Then the invocation succeeds, the record is reported failed (SQS keeps it) and made invisible for the five
    # minutes left; still nothing written
    assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert queue.visibilities == [5 * 60]
    assert not cloud.exists(f"reports/{KEY}.json")

    # When it comes back at 00:30, the day complete
    clock.now += timedelta(seconds=queue.visibilities[-1])
    assert clock.now == COMPLETE
    (again,) = queue.receive()
    assert again["messageId"] == record["messageId"]  # the same message: one per deferral
    answer = reconcile_function.handler({"Records": [again]}, Context())
    # Then the file is reconciled and the record succeeds (the poller deletes it): the queue is empty
    assert answer == {"batchItemFailures": []}
    queue.delete(again)
    assert queue.depth() == 0
    assert cloud.report(KEY)["matched"] == 3
    report, items = cloud.get(f"reports/{KEY}.json"), reconciliation_items(cloud)
    assert items > 0
    # And a duplicate delivery of the same message yields the same report and no new items
    assert reconcile_function.handler({"Records": [again]}, Context()) == {"batchItemFailures": []}
    assert cloud.get(f"reports/{KEY}.json") == report and reconciliation_items(cloud) == items
    assert queue.delays == [MAX_DELAY_S] and queue.visibilities == [5 * 60]  # nothing deferred again


def test_a_file_whose_day_is_complete_is_reconciled_at_once(cloud: Aws, queue: Queue, clock: Clock) -> None:
    # Given the day's file delivered at 01:00, after the day's copy is complete
    cloud.put(KEY, seed(cloud))
    write_copy(cloud)
    clock.now = DAY_END + timedelta(hours=1)
    # When S3 invokes the function, Then it is reconciled in place and nothing is queued
    (outcome,) = reconcile_function.handler(cloud.s3_event(KEY), Context())["outcomes"]
    assert outcome["status"] == "RECONCILED" and queue.delays == [] and queue.depth() == 0


def test_a_deferral_that_cannot_be_queued_fails_the_invocation(
    cloud: Aws, queue: Queue, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queue that does not exist (a wrong URL, SQS refusing)
    cloud.put(KEY, seed(cloud))
    write_copy(cloud)
    monkeypatch.setenv(env_name("deferred_reconciliations_queue_url"), queue.url + "-gone")
    reset_settings()
    # When S3 invokes the function for a file of an incomplete day, Then the invocation fails (S3's asynchronous
    # retries, then the dead-letter queue): the file is never dropped silently
    with pytest.raises(ClientError, match=r"(?i)queue"):
        reconcile_function.handler(cloud.s3_event(KEY), Context())
    assert not cloud.exists(f"reports/{KEY}.json")


def test_without_a_queue_an_incomplete_day_fails_the_invocation_as_before(
    cloud: Aws, queue: Queue, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.put(KEY, seed(cloud))
    write_copy(cloud)
    monkeypatch.setenv(env_name("deferred_reconciliations_queue_url"), "")
    reset_settings()
    assert settings().deferred_reconciliations_queue_url == ""
    with pytest.raises(columnar.LedgerDayIncomplete):
        reconcile_function.handler(cloud.s3_event(KEY), Context())


@pytest.mark.parametrize(
    ("before", "cap", "expected"),
    [
        (timedelta(minutes=20), MAX_DELAY_S, MAX_DELAY_S),  # longer than SQS's delay: the cap
        (timedelta(seconds=0.2), MAX_DELAY_S, 1),  # rounded up: the message never returns early
        (timedelta(0), MAX_DELAY_S, 0),
        (-timedelta(minutes=5), MAX_DELAY_S, 0),  # already complete
        (timedelta(days=2), MAX_VISIBILITY_S, MAX_VISIBILITY_S),
    ],
)
def test_the_wait_is_the_time_left_until_the_day_is_complete_within_sqss_limits(
    before: timedelta, cap: int, expected: int
) -> None:
    assert seconds_until(COMPLETE, COMPLETE - before, cap) == expected
