"""Reading a table's DynamoDB stream on the local runtime, as a stream consumer does (a pipe, a trigger).

:class:`StreamTail` reads every shard of a table's stream from where it stopped (the first read starts at the
trim horizon) and hands each record to the caller. An iterator the stream no longer knows (moto forgets them,
as a real stream expires them after 15 minutes) is replaced by one after the last sequence number handed over,
and so is the iterator of a read whose handling failed: nothing is skipped, and a record read twice is a
repeated delivery, which every reader of the stream tolerates (as a pipe's or a trigger's retries are).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class StreamTail:
    """Where the reader of one table's stream is, shard by shard."""

    # records per GetRecords (DynamoDB's default and most is 1,000): a read whose handling fails is read again
    # from the record after the last one handed over, so a smaller page wastes less when a reader crashes
    PAGE = 100

    def __init__(self, ddb: Any, streams: Any, table: str) -> None:
        self.table = table
        self._ddb, self._streams = ddb, streams
        self._stream_arn = self._latest_arn()
        self._iterators: dict[str, str] = {}  # shard id -> next iterator
        self._last_sequence: dict[str, str] = {}  # shard id -> the last record's sequence number handed over

    def read(self, take: Callable[[dict[str, Any]], None]) -> None:
        """Hand every record since the last read to ``take``, in each shard's order; a record whose ``take``
        raised is handed over again by the next read."""
        try:
            self._read_once(take)
        except Exception:  # an expired iterator, a recreated table, a failed take: again after what was taken
            logger.warning("%s stream: iterators renewed", self.table, exc_info=True)
            self._iterators.clear()
            self._stream_arn = self._latest_arn()
            self._read_once(take)

    def _latest_arn(self) -> str:
        return str(self._ddb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"])

    def _read_once(self, take: Callable[[dict[str, Any]], None]) -> None:
        shards = self._streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = self._iterators.get(shard_id) or self._first_iterator(shard_id)
            while iterator:
                page = self._streams.get_records(ShardIterator=iterator, Limit=self.PAGE)
                for record in page["Records"]:
                    take(record)
                    self._last_sequence[shard_id] = record["dynamodb"]["SequenceNumber"]
                following = page.get("NextShardIterator")
                if following:
                    self._iterators[shard_id] = following
                if not page["Records"]:
                    break
                iterator = following

    def _first_iterator(self, shard_id: str) -> str:
        """After the last record handed over from the shard, or from its trim horizon when none was."""
        last = self._last_sequence.get(shard_id)
        where: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
            if last
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        answer = self._streams.get_shard_iterator(StreamArn=self._stream_arn, ShardId=shard_id, **where)
        return str(answer["ShardIterator"])


class StreamPoller:
    """A thread that calls :meth:`poll` every ``poll_s`` seconds until :meth:`stop`, which calls :meth:`flush`
    once more: a stream's consumer on the local runtime. A round that fails is logged and done again."""

    def __init__(self, name: str, poll_s: float) -> None:
        self.name, self.poll_s = name, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> object:
        return self.flush()

    def flush(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception:
                logger.exception("%s: not done this round; done again on the next", self.name)
