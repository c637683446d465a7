"""The events on the local runtime: what the deployed pipes, their enrichment and the bus do.

In a deployed stage each of the payments, payouts and reconciliation tables streams its writes into an
EventBridge pipe whose enrichment (``functions/events``) turns the records into CloudEvents, delivered to the
bus ``payments-<stage>``. Here a thread reads the same three streams from moto's DynamoDB Streams
(:class:`~payments_dev.local.streams.StreamTail`: iterators renewed after the last record taken), applies the
same :func:`payments.events.changes.changes_of` to each record (the stage is ``local``), puts each envelope on
moto's EventBridge bus ``payments-local`` (``PutEvents``, the envelope in ``detail``, as the pipe's target
does) and keeps it in the append-only log :mod:`payments.events.log` (an S3 object per delivery, which
``payments events tail`` reads through the runtime's endpoint).

Delivery is at least once, as in AWS: a record whose events could not all be put is taken again by the next
round (its events, already delivered or not, go again with the same ids); :attr:`LocalEvents.delivered`
counts the deliveries of each id.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3

from payments.events import log
from payments.events.changes import LOCAL_STAGE, changes_of
from payments.events.envelope import bus_name
from payments.payin.repository import PaymentsRepository
from payments_dev.local.streams import StreamPoller, StreamTail


class EventBusRefused(RuntimeError):
    """``PutEvents`` answered a failed entry: the record is taken again by the next round."""


class LocalEvents(StreamPoller):
    """Streams the resource tables' changes onto the local bus and into the events' log."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        tables: tuple[str, ...],
        payments_table: str,
        poll_s: float = 0.5,
    ) -> None:
        super().__init__("events", poll_s)
        self.bus = bus_name(LOCAL_STAGE)
        ddb = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
        streams = boto3.client("dynamodbstreams", endpoint_url=endpoint_url, region_name=region)
        self._events = boto3.client("events", endpoint_url=endpoint_url, region_name=region)
        self._s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._payments = PaymentsRepository(table=payments_table, client=ddb)
        self._tails = [StreamTail(ddb, streams, table) for table in tables]
        self._lock = threading.Lock()  # one round at a time (the poller, a flush)
        self._n = 0
        #: deliveries of each event id (more than one: a record taken again)
        self.delivered: Counter[str] = Counter()

    def create(self) -> None:
        """The bus and the log's bucket (the runtime's bootstrap)."""
        self._events.create_event_bus(Name=self.bus)
        self._s3.create_bucket(Bucket=log.LOG_BUCKET)

    def flush(self) -> None:
        """Read every stream to its end, delivering the events of what it holds."""
        with self._lock:
            for tail in self._tails:
                tail.read(self._take)

    def _take(self, record: dict[str, Any]) -> None:
        """The pipe's enrichment and target: the record's events on the bus, then in the log."""
        events = changes_of(record, stage=LOCAL_STAGE, orders_of=self._payments.orders_of)
        if not events:
            return
        answer = self._events.put_events(Entries=[event.put_entry(self.bus) for event in events])
        if answer.get("FailedEntryCount"):
            raise EventBusRefused(f"the bus refused {answer['FailedEntryCount']} of {len(events)} event(s)")
        for event in events:
            self._n += 1
            body = event.model_dump_json()
            key = log.log_key(datetime.now(UTC), self._n, event.id)
            self._s3.put_object(Bucket=log.LOG_BUCKET, Key=key, Body=body.encode(), ContentType="application/json")
            self.delivered[event.id] += 1
