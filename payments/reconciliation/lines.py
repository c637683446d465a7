"""Bounded, streaming line reading over any binary stream (an S3 body or a local file).

The engine never holds a file: it reads blocks of :data:`BLOCK_BYTES`, cuts them
into physical lines, and hands them on one at a time. Every line is bounded
(``Bounds.max_line_bytes``: a longer one is yielded as ``None`` and the caller
rejects that row; its bytes are skipped, not buffered), every file is bounded
(``max_file_bytes``, checked on what is actually read, not on what a header
claims), and the text must be UTF-8 or the legacy code page detected for a bank file (a NUL byte or an invalid sequence makes
the whole file unreadable: it is binary or in another encoding, and guessing an
encoding for money data is worse than quarantining it).

One record is one physical line: quoted line breaks inside CSV fields are not
supported (no settlement format we read emits them), which is what makes it
sound to split a file into chunks at line boundaries (:mod:`.chunks`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol, cast

from payments.reconciliation.model import UnreadableFile

BLOCK_BYTES = 1024 * 1024


class BinaryStream(Protocol):
    def read(self, size: int = -1) -> bytes: ...


class Prefixed:
    """A stream whose first bytes were already read (to sniff the format) and are replayed."""

    def __init__(self, head: bytes, rest: BinaryStream):
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size) if size >= 0 else self._rest.read()
        if size < 0:
            out, self._head = self._head + self._rest.read(), b""
            return out
        out, self._head = self._head[:size], self._head[size:]
        return out  # a short read is allowed: readers loop until b""


def sniff(stream: BinaryStream, size: int) -> tuple[bytes, Prefixed]:
    """Read up to ``size`` bytes for format detection; return them and a stream that replays them."""
    head = b""
    while len(head) < size:
        block = stream.read(size - len(head))
        if not block:
            break
        head += block
    return head, Prefixed(head, stream)


class Metered:
    """A stream that counts and hashes what is read through it, and stops at ``max_bytes``
    (checked on the bytes actually read, not on what a header or ContentLength claims)."""

    def __init__(self, stream: BinaryStream, max_bytes: int):
        self._stream = stream
        self._max_bytes = max_bytes
        self.bytes_read = 0
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size) if size >= 0 else self._stream.read()
        self.bytes_read += len(data)
        if self.bytes_read > self._max_bytes:
            raise UnreadableFile(f"file exceeds the bound of {self._max_bytes} bytes")
        self.sha256.update(data)
        return data


class LineReader:
    """Iterates ``(line_number, text | None)`` over a binary stream; text has no line terminator.

    ``line_number`` is 1-based and counts from ``first_line`` (a chunk starts mid-file);
    ``limit`` stops after that many bytes (a chunk's byte range). ``None`` means the line
    exceeded ``max_line_bytes``. ``ended_with_newline`` is known once iteration ends.
    """

    def __init__(
        self,
        stream: BinaryStream,
        max_line_bytes: int,
        first_line: int = 1,
        limit: int | None = None,
        encoding: str = "utf-8",
    ):
        self._stream = stream
        self._encoding = encoding
        self._max_line = max_line_bytes
        self._next_line = first_line
        self._limit = limit
        self._consumed = 0
        self.ended_with_newline = True

    def _blocks(self) -> Iterator[bytes]:
        while self._limit is None or self._consumed < self._limit:
            want = BLOCK_BYTES if self._limit is None else min(BLOCK_BYTES, self._limit - self._consumed)
            block = self._stream.read(want)
            if not block:
                return
            self._consumed += len(block)
            yield block

    def __iter__(self) -> Lines:
        return Lines(self.batches())

    def batches(self) -> Iterator[tuple[int, list[str | None]]]:
        """The lines in batches, one per block read: ``(number of the first line, texts)``.

        The same lines as iterating, cut out and decoded a block at a time (a C-level split and
        one decode per block instead of per line): the per-line work of a large file."""
        carry = b""  # the unfinished line at the end of the previous block
        overlong = False  # ... which already exceeds max_line_bytes (its bytes are skipped)
        max_line = self._max_line
        for block in self._blocks():
            cut = block.rfind(b"\n")
            if cut < 0:
                if not overlong:
                    carry += block
                    if len(carry) > max_line:
                        overlong, carry = True, b""
                continue
            if overlong:  # the overlong line ends at the block's first newline
                first = block.find(b"\n")
                yield self._next_line, [None]
                self._next_line += 1
                data, overlong = block[first + 1 : cut], False
                if first == cut:
                    carry = block[cut + 1 :]
                    if len(carry) > max_line:
                        overlong, carry = True, b""
                    continue
            else:
                data = carry + block[:cut] if carry else block[:cut]
            carry = block[cut + 1 :]
            if len(carry) > max_line:
                overlong, carry = True, b""
            yield from self._decode(data)
        if carry or overlong:
            self.ended_with_newline = False
            yield from self._decode(None if overlong else carry)

    def _decode(self, data: bytes | None) -> Iterator[tuple[int, list[str | None]]]:
        """Complete lines (joined by newlines, the last one's newline excluded) as one batch."""
        first = self._next_line
        if data is not None and b"\x00" not in data and data.isascii():
            text = data.decode("ascii")  # every code page we read is ASCII-compatible
            texts = text.split("\n")
            if max(map(len, texts)) <= self._max_line:
                if "\r" in text:
                    texts = [line[:-1] if line.endswith("\r") else line for line in texts]
                self._next_line += len(texts)
                yield first, cast("list[str | None]", texts)  # a list of str is one of str | None (no copy)
                return
        # the careful path, line by line: long lines, NUL bytes, non-ASCII text, the BOM
        out: list[str | None] = []
        try:
            for raw in [None] if data is None else data.split(b"\n"):
                out.append(self._emit(raw if raw is None or len(raw) <= self._max_line else None)[1])
        except UnreadableFile:
            if out:
                yield first, out  # the lines before the unreadable one, as iterating line by line would
            raise
        yield first, out

    def _emit(self, raw: bytes | None) -> tuple[int, str | None]:
        number = self._next_line
        self._next_line += 1
        if raw is None:
            return number, None
        if b"\x00" in raw:
            raise UnreadableFile(f"binary content (NUL byte) at line {number}")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode(self._encoding)
        except UnicodeDecodeError as err:
            raise UnreadableFile(f"not {self._encoding} text at line {number} (byte {err.start} of the line)") from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        return number, text


class Lines:
    """``(line_number, text | None)`` one at a time over a :class:`LineReader`'s batches;
    :meth:`batches` hands the rest over in batches (after a header was read line by line)."""

    def __init__(self, batches: Iterator[tuple[int, list[str | None]]]):
        self._batches = batches
        self._first = 0
        self._pending: list[str | None] = []
        self._next = 0

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> tuple[int, str | None]:
        while self._next >= len(self._pending):
            self._first, self._pending = next(self._batches)
            self._next = 0
        index = self._next
        self._next += 1
        return self._first + index, self._pending[index]

    def batches(self) -> Iterator[tuple[int, list[str | None]]]:
        if self._next < len(self._pending):
            yield self._first + self._next, self._pending[self._next :]
        self._pending, self._next = [], 0
        yield from self._batches
