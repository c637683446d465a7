"""Reconciliation on the lake path reads the ledger's day from its Parquet copy in S3, never from the table's
index: a test fails on any Query or Scan of the ledger table while a file is reconciled (a botocore event hook).
A day whose copy may still be incomplete is deferred with a retryable error, never matched."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payments.kernel import aws
from payments.kernel.config import settings
from payments.kernel.dynamo import from_item
from payments.reconciliation import adyen, columnar, lake
from payments.reconciliation.service import Reconciler
from payments.reconciliation.sources import DynamoLedgerSource
from tests.reconciliation.conftest import DAY, Aws

LAKE = "ledger-lake-test"
KEY = f"incoming/adyen/{DAY}.csv"


def seed(cloud: Aws) -> bytes:
    """Five charges of the day in the ledger (one not settled, one settled for another amount), a file that also
    settles an order we never booked and repeats a row; returns the file."""
    charges = []
    for i in range(5):
        order, reference, at = f"po_{i}", f"PSP{i:04d}", f"{DAY}T1{i}:00:00.000Z"
        cloud.book(reference, order, f"seller_{i % 2}", 1000 + i, "EUR", at)
        if i != 3:
            amount = 1000 + i + (5 if i == 4 else 0)
            charges.append(
                {
                    "psp_reference": reference,
                    "merchant_reference": order,
                    "amount_minor": amount,
                    "currency": "EUR",
                    "charged_at": at,
                }
            )
    charges.append(dict(charges[0]))
    charges.append(
        {
            "psp_reference": "PSP9999",
            "merchant_reference": "po_x",
            "amount_minor": 7,
            "currency": "EUR",
            "charged_at": f"{DAY}T20:00:00.000Z",
        }
    )
    out = io.StringIO()
    adyen.write_report(charges, DAY, out)
    return out.getvalue().encode()


def write_copy(cloud: Aws) -> int:
    """The ledger's transactions as the lake's objects, each partition delivered twice (at least once); returns
    the number of objects."""
    cloud.s3.create_bucket(Bucket=LAKE)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in cloud.ddb.scan(TableName=settings().ledger_table)["Items"]:
        item = from_item(raw)
        partition = lake.partition_of(item)
        if partition is not None:
            rows[partition.prefix].append(lake.row_of(item))
    for prefix, part in rows.items():
        cloud.s3.put_object(Bucket=LAKE, Key=f"{prefix}part-0.parquet", Body=lake.parquet_bytes(part))
        cloud.s3.put_object(Bucket=LAKE, Key=f"{prefix}part-1.parquet", Body=lake.parquet_bytes(part[:2]))
    return 2 * len(rows)


def forbid_paging(calls: list[str], *clients: Any) -> None:
    """Any Query or Scan of the ledger table through these clients or the process's shared one fails."""

    def refuse(params: dict[str, Any], **kwargs: Any) -> None:
        if params.get("TableName") == settings().ledger_table:
            calls.append(kwargs["event_name"])
            raise AssertionError(f"{kwargs['event_name']} of the ledger table during reconciliation")

    for client in {id(c): c for c in (*clients, aws.client("dynamodb"))}.values():
        for operation in ("Query", "Scan"):
            client.meta.events.register(f"provide-client-params.dynamodb.{operation}", refuse)


def test_the_lake_path_reads_no_ledger_item_from_the_table_and_reports_as_the_index_does(
    cloud: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a day booked in the ledger, its copy in the lake (every object twice), and the day's file
    body = seed(cloud)
    assert write_copy(cloud) >= 2
    cloud.put(KEY, body)
    # ...reconciled first from the table's day index, the stage without the lake
    assert Reconciler().reconcile_object(KEY).status == "RECONCILED"
    from_index = cloud.get(f"reports/{KEY}.json")
    cloud.s3.delete_object(Bucket=cloud.bucket, Key=f"reports/{KEY}.json")
    # When the same file is reconciled again on a stage with the lake, with any Query or Scan of the ledger refused
    monkeypatch.setenv(columnar.LAKE_BUCKET_ENV, LAKE)
    reconciler = Reconciler()
    assert isinstance(reconciler.ledger, columnar.LakeLedger)
    calls: list[str] = []
    assert reconciler.books is not None
    forbid_paging(calls, reconciler.books[1].ddb, cloud.ddb)
    outcome = reconciler.reconcile_object(KEY)
    # Then it is reconciled without paging the table, and the report is the index's, byte for byte
    assert outcome.status == "RECONCILED" and calls == []
    assert cloud.get(f"reports/{KEY}.json") == from_index
    report = cloud.report(KEY)
    kinds = sorted(m["kind"] for m in report["mismatches"])
    assert kinds == ["AMOUNT_MISMATCH", "DUPLICATE_IN_SETTLEMENT", "MISSING_IN_LEDGER", "MISSING_IN_SETTLEMENT"]


def test_the_hook_does_catch_the_index_path(cloud: Aws) -> None:
    # Given the table's day index as the ledger source (no lake), with Query of the ledger refused
    body = seed(cloud)
    cloud.put(KEY, body)
    calls: list[str] = []
    forbid_paging(calls, cloud.ddb)
    # When the file is reconciled, Then the refusal is hit: the hook sees what it must forbid
    with pytest.raises(AssertionError, match="Query of the ledger table"):
        Reconciler(ledger=DynamoLedgerSource(psp="simulated-psp")).reconcile_object(KEY)
    assert calls and all(c.endswith("Query") for c in calls)


@pytest.mark.parametrize(("after_end", "deferred"), [(timedelta(minutes=29), True), (timedelta(minutes=30), False)])
def test_a_day_whose_copy_may_be_incomplete_is_deferred(cloud: Aws, after_end: timedelta, deferred: bool) -> None:
    # Given a day's file and the copy, read some minutes after the day's end (the lag: 30 minutes)
    cloud.put(KEY, seed(cloud))
    write_copy(cloud)
    end = datetime.fromisoformat(DAY).replace(tzinfo=UTC) + timedelta(days=1)
    table = DynamoLedgerSource(psp="simulated-psp")
    ledger = columnar.LakeLedger(
        s3=cloud.s3, bucket=LAKE, psp="simulated-psp", point_lookups=table, now=lambda: end + after_end
    )
    reconciler = Reconciler(ledger=ledger)
    # When it is reconciled
    if deferred:
        # Then before the lag is over it fails with a retryable error, and nothing is written
        with pytest.raises(columnar.LedgerDayIncomplete, match=DAY):
            reconciler.reconcile_object(KEY)
        assert not cloud.exists(f"reports/{KEY}.json")
    else:
        assert reconciler.reconcile_object(KEY).status == "RECONCILED"
        assert cloud.report(KEY)["matched"] == 3
