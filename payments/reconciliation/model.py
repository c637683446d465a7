"""The vocabulary of reconciliation: bounds, mismatch kinds, classes, and the records they produce.

Every bound of the engine is in :class:`Bounds` (TigerBeetle style: nothing is
unbounded, and exceeding a bound is an explicit outcome, never a silent drop).
Tests pass smaller bounds; production uses the defaults.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from payments.kernel.money import format_minor


# --- mismatch kinds (the contract) ---------------------------------------------
class MismatchKind(StrEnum):
    """The contract's mismatch kinds; a member *is* its string (reports, tables, JSON)."""

    MISSING_IN_LEDGER = "MISSING_IN_LEDGER"  # settled at the PSP, unknown to us
    MISSING_IN_SETTLEMENT = "MISSING_IN_SETTLEMENT"  # in our ledger for the day, absent from the file
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    DUPLICATE_IN_SETTLEMENT = "DUPLICATE_IN_SETTLEMENT"


MISSING_IN_LEDGER = MismatchKind.MISSING_IN_LEDGER
MISSING_IN_SETTLEMENT = MismatchKind.MISSING_IN_SETTLEMENT
AMOUNT_MISMATCH = MismatchKind.AMOUNT_MISMATCH
CURRENCY_MISMATCH = MismatchKind.CURRENCY_MISMATCH
DUPLICATE_IN_SETTLEMENT = MismatchKind.DUPLICATE_IN_SETTLEMENT
#: kinds that consume a settlement row (MISSING_IN_SETTLEMENT is a ledger-side finding)
ROW_KINDS = frozenset({MISSING_IN_LEDGER, AMOUNT_MISMATCH, CURRENCY_MISMATCH, DUPLICATE_IN_SETTLEMENT})


# --- classification (the three classes of the design) ---------------------------
class Classification(StrEnum):
    """The three classes of the design; a member *is* its string."""

    AUTO_RESOLVABLE = "AUTO_RESOLVABLE"
    MANUAL = "MANUAL"
    UNCLASSIFIED = "UNCLASSIFIED"


AUTO_RESOLVABLE = Classification.AUTO_RESOLVABLE
MANUAL = Classification.MANUAL
UNCLASSIFIED = Classification.UNCLASSIFIED

MiB = 1024 * 1024


@dataclass(frozen=True)
class Bounds:
    """Explicit limits of one reconciliation. Each one is a decision, explained here."""

    #: a file larger than this is quarantined ("oversized"). 8 GiB is ~27 M Adyen rows,
    #: ten times a very large merchant's day; beyond it the file is not a settlement file.
    max_file_bytes: int = 8 * 1024 * MiB
    #: above this a file goes to the Step Functions Distributed Map (when one is configured):
    #: 512 MiB streams in well under Lambda's 15 minutes at ~100k rows/s.
    max_single_pass_bytes: int = 512 * MiB
    #: a file above this goes to the Athena workflow (when one is configured, i.e. the stage has the ledger's
    #: copy): the Distributed Map's last step matches every row in one function, whose /tmp must hold the
    #: settled rows, duckdb's database file and spill (about 2 bytes per byte of file at its peak:
    #: :data:`MERGE_TMP_PER_FILE_BYTE`) and the day's ledger copy. The reconcile function's ephemeral storage is
    #: sized from this bound (infra/constructs/reconciliation.py, :func:`tmp_peak_bytes`).
    athena_above_bytes: int = 2 * 1024 * MiB
    #: the Athena workflow's own bound (instead of ``max_file_bytes``): no function holds the whole file,
    #: Athena scans it. 64 GiB is ~210 M Adyen rows, twice a 100-million-order day.
    max_athena_file_bytes: int = 64 * 1024 * MiB
    #: bank statements go through third-party parsers that hold one statement in memory;
    #: a day's statement of one account is kilobytes, 16 MiB is generous.
    max_bank_statement_bytes: int = 16 * MiB
    #: one physical line; an Adyen row is ~300 bytes. Longer lines are rejected rows.
    max_line_bytes: int = 4096
    #: rows of one file (Adyen data lines or bank entries).
    max_rows: int = 30_000_000
    #: duckdb's memory for the matching (its sort and join spill to the work directory above it): the
    #: reconcile function's 1,769 MB hold it, the interpreter and a chunk's entries with room to spare.
    #: Not more: at 320 MB the 1M-row day took 4.7 s of CPU instead of 5.1, but the 10M-row day ran out of memory
    #: in ``ledger_day``'s DISTINCT ("failed to allocate data of size 4.0 MiB (303.7 MiB/305.1 MiB used)"),
    #: which completes at 256 MB (18.7 s). Why the larger limit fails there is duckdb's own (not found out);
    #: ``make bench`` runs the 10M-row day and fails when ours runs out of memory.
    columnar_memory_limit: str = "256MB"
    #: a statement that runs out of that limit runs again with twice the limit, up to this (MB): duckdb's
    #: out-of-core operators do not spill everything. Measured: a 10M-charge day whose ledger copy was delivered
    #: twice (20M rows) ran out in ``ledger_day``'s DISTINCT, and even in a plain GROUP BY txn_id, at 256 MB,
    #: and completed at 512 MB; delivered three times (30M rows), it ran out at 256 and 512 MB and completed at
    #: 1,024 MB (121 s of CPU, 1,238 MiB peak RSS, the same result). 1 GB and the interpreter stay inside the
    #: reconcile function's 1,769 MB; a fourth copy is not measured.
    columnar_memory_ceiling_mb: int = 1024
    #: duckdb's threads: one, the reconcile function has one vCPU (more would only contend for it).
    columnar_threads: int = 1
    #: bytes of one Distributed Map chunk (~200k rows: one run per chunk).
    chunk_bytes: int = 64 * MiB
    #: more malformed rows than this and the file is garbage: quarantined.
    max_rejected_rows: int = 10_000
    #: mismatches kept in the report and the table; more are counted in ``mismatches_omitted``.
    max_mismatches: int = 100_000
    #: point lookups for rows outside the file's day (carry-over rows) before giving up on them.
    max_point_lookups: int = 10_000
    #: refund, chargeback and reversal rows of one file, held in memory (~300 bytes each) to be
    #: matched with the day's ledger adjustments by key; a day has far fewer than charges.
    #: More (in the file, or booked in the ledger that day) and the file is quarantined.
    max_adjustment_rows: int = 1_000_000
    #: (seller, currency) accounts whose wallet and ledger projection are compared (three-way check).
    max_three_way_sellers: int = 1_000
    #: how much of the head is read to recognise the format.
    sniff_bytes: int = 64 * 1024


#: The reconcile function's /tmp at its peak per byte of the file, on each path where one invocation holds a whole
#: file, measured on the bench's day (168-byte rows) by ``python -m payments_dev.bench.recon_disk`` (figures in
#: docs/capacity.md section 12), at 1M, 3M and 10M rows (168 MiB, 504 MiB, 1.64 GiB of file). The single pass (its
#: copy of the file, removed once folded; then duckdb's tables and spill): 2.59 and 3.70 in memory (files up to
#: ``max_single_pass_bytes``, ``columnar.IN_MEMORY_MAX_BYTES``), 1.93 in a database file (10M rows, beyond any
#: deployed single pass). The Distributed Map's merge (the chunks' Settled rows, then duckdb's tables and spill):
#: 2.19 in memory, 1.79 and 2.02 in a database file. Each budget is the largest measurement plus about 5 %; the
#: bench fails when a measurement at 1M rows or more exceeds it.
SINGLE_PASS_TMP_PER_FILE_BYTE = 3.9
MERGE_TMP_PER_FILE_BYTE = 2.3


def tmp_peak_bytes(bounds: Bounds) -> int:
    """The most /tmp one reconcile invocation of a deployed stage needs at the measured rates: the single pass takes
    files up to ``max_single_pass_bytes``, the Distributed Map's merge up to ``athena_above_bytes`` (every deployed
    stage has the Athena workflow for the larger ones)."""
    return int(
        max(
            bounds.max_single_pass_bytes * SINGLE_PASS_TMP_PER_FILE_BYTE,
            bounds.athena_above_bytes * MERGE_TMP_PER_FILE_BYTE,
        )
    )


class UnreadableFile(Exception):
    """The file as a whole cannot be reconciled (binary, encoding, truncated, oversized, ...).

    The service moves such a file to ``quarantine/`` with a report saying why.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class RowError(ValueError):
    """One row is malformed: it becomes a ``rejected_rows`` entry with its line number."""


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str

    def to_report(self) -> dict[str, Any]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: MismatchKind
    psp_reference: str | None
    payment_order_id: str | None
    currency: str  # the settlement's currency (the ledger's for MISSING_IN_SETTLEMENT)
    settlement_amount_minor: int | None
    ledger_amount_minor: int | None
    classification: Classification
    rule: str
    line: int | None = None  # 1-based line of the settlement row, if there is one
    ledger_currency: str | None = None  # set when it differs from ``currency``
    seller_account: str | None = None
    #: a refund's, chargeback's or reversal's mismatch: the file's record type (``Refunded``,
    #: ``Chargeback``, ``ChargebackReversed``) and ``psp_reference`` is the modification's own
    #: reference; None for a payment (``Settled``)
    record_type: str | None = None

    @property
    def mismatch_id(self) -> str:
        """Deterministic identity: the same file yields the same ids (idempotent storage). An
        adjustment's names its record type: a chargeback and its reversal share a reference."""
        reference = self.psp_reference or self.payment_order_id or "-"
        if self.record_type:
            return f"{self.kind}#{self.record_type}:{reference}#{self.line or 0}"
        return f"{self.kind}#{reference}#{self.line or 0}"

    def sort_key(self) -> tuple[str, str, int]:
        return (self.kind, self.psp_reference or self.payment_order_id or "", self.line or 0)

    def to_report(self) -> dict[str, Any]:
        ledger_ccy = self.ledger_currency or self.currency
        out: dict[str, Any] = {
            "mismatch_id": self.mismatch_id,
            "kind": self.kind,
            "psp_reference": self.psp_reference,
            "payment_order_id": self.payment_order_id,
            "ledger_amount": None
            if self.ledger_amount_minor is None
            else format_minor(self.ledger_amount_minor, ledger_ccy),
            "settlement_amount": None
            if self.settlement_amount_minor is None
            else format_minor(self.settlement_amount_minor, self.currency),
            "currency": self.currency,
            "classification": self.classification,
            "rule": self.rule,
            "line": self.line,
        }
        if self.ledger_currency and self.ledger_currency != self.currency:
            out["ledger_currency"] = self.ledger_currency
        if self.record_type:
            out["record_type"] = self.record_type
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mismatch:
        return cls(
            **{**data, "kind": MismatchKind(data["kind"]), "classification": Classification(data["classification"])}
        )
