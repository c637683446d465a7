"""The local runtime's writer of the ledger's copy: the ledger table's stream (moto) in, one Parquet object
per partition out, written when its buffer is full or old, and everything on a flush."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import duckdb

from payments.kernel.config import settings
from payments.reconciliation import lake
from payments_dev.local.ledger_lake import LedgerLakeWriter
from tests.unit.conftest import REGION


def transaction(txn_id: str, day: str, currency: str = "EUR", **extra: Any) -> dict[str, Any]:
    return {
        "pk": {"S": f"TXN#{txn_id}"},
        "sk": {"S": "TXN"},
        "txn_id": {"S": txn_id},
        "kind": {"S": "PAYIN"},
        "currency": {"S": currency},
        "amount_minor": {"N": "1999"},
        "settlement_day": {"S": f"simulated-psp#{day}"},
        "booked_at": {"S": f"{day}T10:00:00.000000Z"},
        **extra,
    }


def rows(s3: Any, key: str, work: Path) -> list[tuple[Any, ...]]:
    path = work / "object.parquet"
    path.write_bytes(s3.get_object(Bucket="lake", Key=key)["Body"].read())
    with duckdb.connect() as con:
        return con.read_parquet(str(path)).select("txn_id", "amount_minor").order("txn_id").fetchall()


def test_a_partition_is_written_when_its_buffer_is_full_and_the_rest_on_a_flush(ddb: Any, tmp_path: Path) -> None:
    # Given the ledger table (streamed, as payments.kernel.tables declares it) and a lake bucket
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="lake")
    writer = LedgerLakeWriter(
        endpoint_url=None, region=REGION, table=settings().ledger_table, bucket="lake", max_rows=2, max_age_s=3600
    )
    table = settings().ledger_table
    # When two transactions of one day, one of another day, and a totals item (not a transaction) are written
    ddb.put_item(TableName=table, Item=transaction("t1", "2026-11-30"))
    ddb.put_item(TableName=table, Item=transaction("t2", "2026-11-30"))
    ddb.put_item(TableName=table, Item=transaction("t3", "2026-12-01", currency="USD"))
    ddb.put_item(TableName=table, Item={"pk": {"S": "TOTALS#EUR#0"}, "sk": {"S": "TOTALS"}, "n": {"N": "1"}})
    # And an item is changed (a MODIFY record: an inserted transaction is its only record)
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "TXN#t1"}, "sk": {"S": "TXN"}},
        UpdateExpression="SET amount_minor = :a",
        ExpressionAttributeValues={":a": {"N": "1"}},
    )
    written = writer.poll()
    # Then only the full partition is written, under its prefix, with its two rows
    full = lake.Partition(psp="simulated-psp", day="2026-11-30", ccy="EUR")
    assert len(written) == 1 and written[0].startswith(full.prefix) and written[0].endswith(".parquet")
    assert rows(s3, written[0], tmp_path) == [("t1", 1999), ("t2", 1999)]
    # And a flush writes the other partition, and nothing else is left
    (rest,) = writer.flush()
    assert rest.startswith(lake.Partition(psp="simulated-psp", day="2026-12-01", ccy="USD").prefix)
    assert rows(s3, rest, tmp_path) == [("t3", 1999)]
    assert writer.flush() == [] and writer.objects == [written[0], rest]
