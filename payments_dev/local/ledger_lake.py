"""The ledger's analytical copy on the local runtime: what the deployed pipe and delivery stream do.

In a deployed stage the ledger table's stream feeds an EventBridge pipe and a Firehose delivery stream
that write ``ledger/psp=<psp>/day=<day>/ccy=<CCY>/*.parquet`` (infra/constructs/ledger_lake.py).
Here a thread reads the same stream from moto's DynamoDB Streams, keeps the inserted ledger
transactions (``sk`` = ``TXN``), buffers their rows per partition like the delivery stream (an object per
partition when its buffer reaches :attr:`LedgerLakeWriter.max_rows` rows or its oldest row
:attr:`LedgerLakeWriter.max_age_s` seconds), and writes each object into the runtime's S3 with the shared
mapping (``payments.reconciliation.lake``: ``partition_of``, ``row_of``, ``parquet_bytes``).

Unlike the delivery stream, :meth:`LedgerLakeWriter.flush` writes everything at once: the runtime calls it
before each reconcile invocation, so a local reconciliation sees every transaction booked before it.

Delivery is at least once, as in AWS: rows whose object could not be written stay buffered and go out
with the next flush; a reader keeps one row per ``txn_id``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from payments.reconciliation import lake
from payments_dev.local.streams import StreamPoller, StreamTail

_DESERIALIZER = TypeDeserializer()


@dataclass
class _Buffer:
    rows: list[dict[str, Any]] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)


class LedgerLakeWriter(StreamPoller):
    """Streams the ledger table's inserted transactions into ``bucket`` as the lake's Parquet objects."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        region: str,
        table: str,
        bucket: str,
        max_rows: int = 5_000,
        max_age_s: float = 60.0,
        poll_s: float = 0.5,
    ) -> None:
        self.table, self.bucket = table, bucket
        super().__init__("ledger-lake", poll_s)
        self.max_rows, self.max_age_s = max_rows, max_age_s
        self._ddb = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
        self._streams = boto3.client("dynamodbstreams", endpoint_url=endpoint_url, region_name=region)
        self._s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._tail = StreamTail(self._ddb, self._streams, table)
        self._buffers: dict[lake.Partition, _Buffer] = {}
        self._lock = threading.Lock()  # one drain-and-write at a time (the poller, a reconcile's flush)
        #: keys of the objects written, in order (tests and the operator's curiosity)
        self.objects: list[str] = []

    def flush(self) -> list[str]:
        """Read the stream to its end and write every buffered row; returns the keys written."""
        with self._lock:
            self._drain()
            return self._write(due_only=False)

    def poll(self) -> list[str]:
        """One round of the poller: read the stream, write the partitions whose buffer is due."""
        with self._lock:
            self._drain()
            return self._write(due_only=True)

    def _drain(self) -> None:
        """Every record of the stream since the last read (:class:`~payments_dev.local.streams.StreamTail`: an
        expired iterator is renewed after the last record read; a record read twice is a repeated delivery,
        which readers of the copy drop by ``txn_id``)."""
        self._tail.read(self._take)

    def _take(self, record: dict[str, Any]) -> None:
        """The pipe's filter and input transformation: an inserted transaction item becomes a row."""
        image = record.get("dynamodb", {}).get("NewImage")
        if record.get("eventName") != "INSERT" or not image:
            return
        item = {name: _DESERIALIZER.deserialize(value) for name, value in image.items()}
        partition = lake.partition_of(item)
        if partition is None:
            return
        self._buffers.setdefault(partition, _Buffer()).rows.append(lake.row_of(item))

    def _write(self, *, due_only: bool) -> list[str]:
        written = []
        now = time.monotonic()
        for partition, buffer in list(self._buffers.items()):
            due = len(buffer.rows) >= self.max_rows or now - buffer.since >= self.max_age_s
            if due_only and not due:
                continue
            stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S")
            key = f"{partition.prefix}payments-ledger-lake-{stamp}-{uuid.uuid4()}.parquet"
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=lake.parquet_bytes(buffer.rows))
            del self._buffers[partition]  # only once written: a failed put keeps the rows for the next flush
            written.append(key)
        self.objects.extend(written)
        return written
