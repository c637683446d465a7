"""Faults of the events reader (:class:`payments_dev.local.events.LocalEvents`), as a pipe meets them.

While :attr:`ReaderFaults.enabled`, for a seeded share of stream records, decided by the record's sequence
number (the same run, the same decisions):

* ``events reader crash after delivery``: the reader dies after the record's events (if it has any: else the
  crash is not injected) were put on the bus and
  in the log, before it took the record (a pipe's batch failing after its target got part of it): the next
  read starts after the last record taken, so these events are delivered again, with the same ids;
* ``events reader crash before delivery``: it dies before delivering them: they go on the next read;
* ``events reader iterator lost``: after a record is taken, the reader's shard iterators are forgotten (moto
  forgets them, a real stream expires them after 15 minutes): its next read starts after the last record
  taken.

Each record crashes the reader at most once before and once after delivering (each at ``rate``); the writes retried after a crash (a Lambda retried by the workflow) are the
harness's own faults. Counted per kind in :attr:`ReaderFaults.injected`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

#: the reader's own logs of a failed round (each injected crash is one): quiet while the faults are injected
_LOGGERS = ("payments_dev.local.streams",)

CRASH_AFTER = "events reader crash after delivery"
CRASH_BEFORE = "events reader crash before delivery"
ITERATOR_LOST = "events reader iterator lost"


class ReaderCrashed(RuntimeError):
    """An injected crash of the events reader."""


class ReaderFaults:
    """Injects the reader's faults into one :class:`LocalEvents` while entered and :attr:`enabled`."""

    def __init__(self, events: Any, seed: int, rate: float = 0.05, lost_rate: float = 0.1) -> None:
        self.events, self.seed, self.rate, self.lost_rate = events, seed, rate, lost_rate
        self.enabled = True
        self.injected: Counter[str] = Counter()
        self._crashed: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._saved: Callable[[dict[str, Any]], None] | None = None
        self._levels: dict[str, int] = {}

    def _draw(self, *place: object) -> float:
        digest = hashlib.sha256(":".join(map(str, (self.seed, *place))).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def __enter__(self) -> ReaderFaults:
        take = self.events._take
        self._saved = take
        for name in _LOGGERS:
            self._levels[name] = logging.getLogger(name).level
            logging.getLogger(name).setLevel(logging.CRITICAL)

        def once(kind: str, number: str) -> bool:
            """Whether the record crashes the reader at this point: a seeded draw, at most once per record."""
            with self._lock:
                if not self.enabled or (kind, number) in self._crashed or self._draw(kind, number) >= self.rate:
                    return False
                self._crashed.add((kind, number))
                return True

        def faulty_take(record: dict[str, Any]) -> None:
            number = str(record["dynamodb"]["SequenceNumber"])
            if once("before", number):
                self.injected[CRASH_BEFORE] += 1
                raise ReaderCrashed(f"the events reader crashed before delivering record {number}")
            delivered = self.events._n
            take(record)
            if self.events._n > delivered and once("after", number):  # a crash after delivering something
                self.injected[CRASH_AFTER] += 1
                raise ReaderCrashed(f"the events reader crashed after delivering record {number}")
            if self.enabled and self._draw("lost", number) < self.lost_rate:
                for tail in self.events._tails:  # the next round starts after the last record taken
                    tail._iterators.clear()
                self.injected[ITERATOR_LOST] += 1

        self.events._take = faulty_take
        return self

    def drain(self) -> None:
        """Read the streams to their end with the faults on (a crashed round is read again), then switch them
        off: every record of the phase met them, not only those the poller took meanwhile."""
        for _ in range(1000):
            try:
                self.events.flush()
            except ReaderCrashed:
                continue
            break
        self.enabled = False

    def __exit__(self, *exc: object) -> None:
        self.enabled = False
        if self._saved is not None:
            del self.events._take  # the instance's own method again
            self._saved = None
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


class NoFaults:
    """No reader faults (no local runtime here, or a rate of zero)."""

    enabled = False

    def __init__(self) -> None:
        self.injected: Counter[str] = Counter()

    def __enter__(self) -> NoFaults:
        return self

    def drain(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def on_runtime(seed: int, rate: float) -> ReaderFaults | NoFaults:
    """The reader's faults on the local runtime of this process at ``rate`` (iterators lost at twice it)."""
    from payments_dev.local import runtime

    current = runtime.CURRENT
    if current is None or current.events is None or rate <= 0:
        return NoFaults()
    return ReaderFaults(current.events, seed, rate=rate, lost_rate=min(1.0, 2 * rate))
