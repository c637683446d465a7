"""Split, per-chunk, merge: the engine cut into pieces for the Step Functions Distributed Map.

Files above ``Bounds.max_single_pass_bytes`` would outlast one Lambda (15 minutes),
so ``stepfunctions/reconcile.asl.json`` runs them in three steps, each a pure
function here (the S3 plumbing is in :mod:`.service`):

1. :func:`plan_chunks` streams the file once (no parsing: it counts newlines) and cuts
   it into byte ranges of about ``Bounds.chunk_bytes`` that start and end at line
   boundaries, each with the line number it starts at, so rejected rows keep their
   real line numbers. It also reads the header and hashes the file.
2. :func:`process_chunk` reads one range (an S3 ranged GET) and returns its
   :class:`~.engine.Partial` and its ``Settled`` entries, in line order.
   Memory: one chunk's entries (~200k rows, ~50 MiB).
3. :func:`merge_chunks` adds the partials and runs the same matching as the single
   pass (:func:`.columnar.match`) over the chunks' entries (streamed back from S3 into
   the work directory's file of settled rows, a batch at a time).

Because a chunk's entries are exactly what the single pass writes, and partials add up,
the merged result equals the single-pass result (tested).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from payments.reconciliation import columnar, engine
from payments.reconciliation.adyen import Layout
from payments.reconciliation.lines import BLOCK_BYTES, BinaryStream, LineReader
from payments.reconciliation.model import Bounds, UnreadableFile
from payments.reconciliation.sources import LedgerEntry, LedgerSource


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # byte offset, inclusive
    end: int  # byte offset, exclusive
    first_line: int


@dataclass(frozen=True)
class Plan:
    chunks: list[Chunk]
    header: str
    sha256: str
    size: int
    ended_with_newline: bool

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "chunks": [asdict(c) for c in self.chunks]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(**{**data, "chunks": [Chunk(**c) for c in data["chunks"]]})


def plan_chunks(stream: BinaryStream, bounds: Bounds) -> Plan:
    digest = hashlib.sha256()
    header = bytearray()
    header_done = False
    chunks: list[Chunk] = []
    pos = 0  # absolute offset of the current block
    line = 1  # line number of the byte at the cursor
    chunk_start = chunk_line = 0
    last_byte = b""
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            break
        digest.update(block)
        if pos + len(block) > bounds.max_file_bytes:
            raise UnreadableFile(f"file exceeds the bound of {bounds.max_file_bytes} bytes")
        i = 0
        while i < len(block):
            if not header_done:
                newline = block.find(b"\n", i)
                header += block[i : len(block) if newline < 0 else newline]
                if len(header) > bounds.max_line_bytes:
                    raise UnreadableFile("the header line exceeds the line-length bound")
                if newline < 0:
                    break
                header_done, line, i = True, line + 1, newline + 1
                chunk_start, chunk_line = pos + i, line
                continue
            cut_after = chunk_start + bounds.chunk_bytes - 1  # cut at the first newline at or after this offset
            if pos + len(block) <= cut_after:
                line += block.count(b"\n", i)
                break
            newline = block.find(b"\n", max(i, cut_after - pos))
            if newline < 0:
                line += block.count(b"\n", i)
                break
            line += block.count(b"\n", i, newline + 1)
            chunks.append(Chunk(len(chunks), chunk_start, pos + newline + 1, chunk_line))
            chunk_start, chunk_line, i = pos + newline + 1, line, newline + 1
        pos += len(block)
        last_byte = block[-1:]
    if not header_done and not header:
        raise UnreadableFile("empty file")
    if header_done and chunk_start < pos:
        chunks.append(Chunk(len(chunks), chunk_start, pos, chunk_line))
    try:
        text = bytes(header).rstrip(b"\r").decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise UnreadableFile("the header line is not UTF-8") from None
    return Plan(chunks, text, digest.hexdigest(), pos, last_byte == b"\n")


def columns_of(plan: Plan) -> Layout:
    return engine.read_header(iter([(1, plan.header)]))


def process_chunk(
    stream: BinaryStream, chunk: Chunk, plan: Plan, bounds: Bounds
) -> tuple[engine.Partial, list[engine.SettledEntry]]:
    """``stream`` yields exactly the chunk's bytes (a ranged read)."""
    layout = columns_of(plan)
    reader = LineReader(stream, bounds.max_line_bytes, first_line=chunk.first_line, limit=chunk.end - chunk.start)
    partial = engine.Partial()
    entries = _Entries()
    with engine.paused_gc():
        engine.fold_batches(reader.batches(), layout, bounds, partial, entries)
    return partial, list(map(engine.SettledEntry._make, entries.entries))


class _Entries:
    """A chunk's entries, in line order (an :class:`~.engine.EntrySink`)."""

    def __init__(self) -> None:
        self.entries: list[engine.Entry] = []

    def add(self, entry: engine.Entry) -> None:
        self.entries.append(entry)

    def extend(self, entries: list[engine.Entry]) -> None:
        self.entries.extend(entries)


def add_up(partials: Iterable[engine.Partial], plan: Plan, bounds: Bounds) -> engine.Partial:
    """The chunks' partials added up, checked as the single pass checks the whole file."""
    total = engine.Partial()
    for partial in partials:
        total.merge(partial)
    if len(total.rejected) > bounds.max_rejected_rows:
        raise UnreadableFile(f"more than {bounds.max_rejected_rows} malformed rows")
    engine.check_truncation(total, plan.ended_with_newline)
    return total


def merge_chunks(
    partials: Iterable[engine.Partial],
    runs: Sequence[Iterable[engine.SettledEntry]],
    plan: Plan,
    ledger: LedgerSource,
    bounds: Bounds,
    day_hint: str | None = None,
    on_match: Callable[[LedgerEntry], None] | None = None,
    work_dir: Path | None = None,
) -> engine.Result:
    total = add_up(partials, plan, bounds)
    with tempfile.TemporaryDirectory(prefix="reconcile-", dir=work_dir) as work:
        entries = columnar.EntryFile(Path(work) / "settled.tsv")
        try:
            for run in runs:
                batch: list[engine.SettledEntry] = []
                for entry in run:
                    batch.append(entry)
                    if len(batch) >= columnar.FETCH_ROWS:
                        entries.extend(batch)
                        batch = []
                entries.extend(batch)
        finally:
            entries.close()
        return columnar.match(total, entries.path, ledger, bounds, day_hint, Path(work), on_match)
