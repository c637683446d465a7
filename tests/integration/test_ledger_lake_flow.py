"""The ledger's analytical copy on the local runtime: a settled checkout's PAYIN and a refund's REFUND
transaction are in the lake bucket, under their partitions, as the deployed pipe writes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import duckdb

from payments.kernel import clock
from payments.kernel.config import settings
from payments.reconciliation import lake
from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import LocalRuntime
from tests.integration.conftest import checkout, unique, wait_done
from tests.integration.test_refunds_flow import refund, wait_refund


def lake_rows(runtime: LocalRuntime, prefix: str, work: Path) -> list[tuple[str, dict[str, Any]]]:
    """(key, row) of every row of every object under ``prefix`` of the runtime's lake bucket, each object
    checked to have exactly the columns and types of ``lake.COLUMNS``."""
    s3 = boto3.client("s3", endpoint_url=runtime.aws_url, region_name="us-east-1")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings().ledger_lake_bucket, Prefix=prefix):
        for n, entry in enumerate(page.get("Contents", [])):
            path = work / f"{n}.parquet"
            path.write_bytes(s3.get_object(Bucket=settings().ledger_lake_bucket, Key=entry["Key"])["Body"].read())
            with duckdb.connect() as con:
                relation = con.read_parquet(str(path))
                assert list(zip(relation.columns, map(str, relation.types), strict=True)) == list(lake.COLUMNS)
                found.extend(
                    (entry["Key"], dict(zip(relation.columns, row, strict=True))) for row in relation.fetchall()
                )
    return found


def test_a_settled_checkout_and_its_refund_are_in_the_lake_under_their_partitions(
    runtime: LocalRuntime, api: ApiClient, tmp_path: Path
) -> None:
    # Given a checkout of one order that settles
    seller = unique("seller")
    body = checkout(orders=[(seller, "42.10", "EUR")])
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    assert wait_done(api, body["checkout_id"])["status"] == "SUCCEEDED"
    po = body["payment_orders"][0]["payment_order_id"]
    # And a refund of part of it
    rf = unique("rf")
    reply = refund(api, {"refund_id": rf, "payment_order_id": po, "amount": "10.00", "currency": "EUR"}, "k-" + rf)
    assert reply.status == 202, reply.body
    assert wait_refund(api, rf)["status"] == "SUCCEEDED"
    assert runtime.ledger_lake is not None
    # When the copy is flushed (as before every reconcile invocation)
    runtime.ledger_lake.flush()
    # Then the PAYIN row is under the PSP's charge day, in EUR, with the order's amounts in minor units
    day = clock.day_of(clock.now_iso())
    partition = lake.Partition(psp=settings().psp_name, day=day, ccy="EUR")
    rows = [(key, row) for key, row in lake_rows(runtime, partition.prefix, tmp_path) if row["payment_order_id"] == po]
    by_kind = {row["kind"]: (key, row) for key, row in rows}
    assert sorted(by_kind) == ["PAYIN", "REFUND"], rows
    payin_key, payin = by_kind["PAYIN"]
    assert payin_key.startswith(partition.prefix) and payin_key.endswith(".parquet")
    assert (payin["seller_account"], payin["currency"], payin["amount_minor"]) == (seller, "EUR", 4210)
    assert payin["charged_at"][:10] == day and payin["psp_reference"]
    # And the refund's row, under the day it was booked, names the payment it gives back
    _, refunded = by_kind["REFUND"]
    assert refunded["amount_minor"] == 1000 and refunded["original_psp_reference"] == payin["psp_reference"]
    # And a second flush writes nothing again (each transaction is read from the stream once)
    assert runtime.ledger_lake.flush() == []
