"""The ledger's analytical copy in S3: the layout and the columns every writer and reader agrees on.

The ledger table (DynamoDB) is the book of record. Reconciliation does not page it: it reads this
copy, written as the ledger is written, one row per ledger transaction (``TXN#...`` item, inserted
once: a booking is put on ``attribute_not_exists`` and never changed afterwards).

Writers: in a deployed stage the table's stream feeds the copy through AWS-managed parts (the
infrastructure says which); on the local runtime the runtime writes the same objects into its S3.
Both turn a ledger transaction item into a row with :func:`row_of`'s mapping, so a test can compare
the deployed mapping with this one.

Layout (Hive-style partitions, so that Athena's partition projection and duckdb's
``hive_partitioning`` read the same keys)::

    s3://<lake bucket>/ledger/psp=<psp>/day=<YYYY-MM-DD>/ccy=<CCY>/<object>.parquet

``day`` is the UTC day the transaction belongs to for reconciliation: a charge's ``charged_at`` day
(its settlement day), an adjustment's booking day (``modification_day``); a transaction of the
platform's own (a payout, a PSP fee) its booking day. The currency's partition key is ``ccy``, not
``currency``: Hive (and so Athena) refuses a partition key that is also a column, and ``currency`` is a
column of every object, whoever wrote it.

A delivery may be repeated (streams and their consumers deliver at least once), so a reader keeps
one row per ``txn_id``; the rows of one ``txn_id`` are identical because the item never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PREFIX = "ledger/"

#: (column, type) in order; types are the Parquet/SQL types every writer uses (Glue: string, bigint)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("txn_id", "VARCHAR"),
    ("kind", "VARCHAR"),  # PAYIN, REFUND, CHARGEBACK, CHARGEBACK_REVERSED, SECOND_CHARGEBACK, PAYOUT...
    ("payment_order_id", "VARCHAR"),
    ("checkout_id", "VARCHAR"),
    ("psp_reference", "VARCHAR"),  # the charge's, or the modification's own
    ("original_psp_reference", "VARCHAR"),  # an adjustment's payment
    ("seller_account", "VARCHAR"),
    ("currency", "VARCHAR"),
    ("amount_minor", "BIGINT"),
    ("commission_minor", "BIGINT"),
    ("charged_at", "VARCHAR"),  # ISO UTC, a charge's
    ("booked_at", "VARCHAR"),  # ISO UTC
)
#: the partition columns, in key order (not stored in the Parquet files themselves)
PARTITIONS: tuple[str, ...] = ("psp", "day", "ccy")

_BIGINT = {name for name, kind in COLUMNS if kind == "BIGINT"}


@dataclass(frozen=True, slots=True)
class Partition:
    psp: str
    day: str
    ccy: str

    @property
    def prefix(self) -> str:
        return f"{PREFIX}psp={self.psp}/day={self.day}/ccy={self.ccy}/"


def day_prefix(psp: str, day: str) -> str:
    """Every currency of one PSP's day."""
    return f"{PREFIX}psp={psp}/day={day}/"


def partition_of(item: dict[str, Any]) -> Partition | None:
    """Where a ledger transaction item goes; None for an item that is not a transaction
    (totals, shards, markers: anything whose ``sk`` is not ``TXN``)."""
    if item.get("sk") != "TXN":
        return None
    psp_day = item.get("settlement_day") or item.get("modification_settlement_day")
    if psp_day:
        psp, _, day = str(psp_day).partition("#")
    else:
        psp, day = str(item.get("psp") or "platform"), str(item["booked_at"])[:10]
    return Partition(psp=psp, day=day, ccy=str(item["currency"]))


def row_of(item: dict[str, Any]) -> dict[str, Any]:
    """One ledger transaction item (plain Python values, as boto3's resource layer or
    ``TypeDeserializer`` gives them) as a row of the copy: every column of :data:`COLUMNS`,
    None where the transaction has no such attribute, integers as ``int``."""
    row: dict[str, Any] = {}
    for name, _ in COLUMNS:
        value = item.get(name)
        if value is None:
            row[name] = None
        elif name in _BIGINT:
            row[name] = int(value)
        else:
            row[name] = str(value)
    return row


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Rows of :func:`row_of` as one Parquet object with exactly :data:`COLUMNS`' types (the local
    runtime's writer and the tests'; a deployed stage's copy is written by the managed pipeline)."""
    import os
    import tempfile

    import duckdb

    columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
    placeholders = ", ".join("?" for _ in COLUMNS)
    with tempfile.TemporaryDirectory(prefix="ledger-copy-") as work:
        path = os.path.join(work, "rows.parquet")
        with duckdb.connect(":memory:") as con:
            con.execute(f"CREATE TABLE copy ({columns})")
            if rows:
                con.executemany(
                    f"INSERT INTO copy VALUES ({placeholders})",  # noqa: S608 - placeholders only
                    [[row[name] for name, _ in COLUMNS] for row in rows],
                )
            con.execute(f"COPY copy TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
        with open(path, "rb") as handle:
            return handle.read()
