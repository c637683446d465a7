"""Reconciliation tests run against moto in-process: the tables of payments/kernel/tables.py and the bucket."""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from functions import registry

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Payments")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "reconcile")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from payments.kernel import aws
from payments.kernel.config import reset_settings, settings
from payments.kernel.dynamo import to_item
from payments.kernel.tables import create_tables

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "settlements"
DAY = "2026-11-30"


class Context:
    function_name = registry.RECONCILE.local_name
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:payments-reconcile"
    aws_request_id = "test-request"


@dataclass
class Aws:
    s3: Any
    ddb: Any
    bucket: str

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def report(self, key: str) -> dict[str, Any]:
        return json.loads(self.get(f"reports/{key}.json"))

    def exists(self, key: str) -> bool:
        return self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key).get("KeyCount", 0) > 0 and any(
            o["Key"] == key for o in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key)["Contents"]
        )

    def items(self, table_setting: str) -> list[dict[str, Any]]:
        table = getattr(settings(), table_setting)
        return self.ddb.scan(TableName=table)["Items"]

    def s3_event(self, key: str) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": self.bucket}, "object": {"key": quote_plus(key)}},
                }
            ]
        }

    # --- seeding, in the item layouts of the repositories -----------------------------
    def book(
        self, psp_reference: str, order: str, seller: str, amount_minor: int, currency: str, charged_at: str
    ) -> None:
        """A ledger transaction (payments.accounts.ledger) and the PSP's charge (payments.psp.simulator)."""
        postings = [
            {
                "account": "psp_receivable:simulated-psp",
                "side": "DEBIT",
                "amount_minor": amount_minor,
                "currency": currency,
            },
            {
                "account": f"seller_pending:{seller}",
                "side": "CREDIT",
                "amount_minor": amount_minor,
                "currency": currency,
            },
        ]
        txn = {
            "pk": f"TXN#{order}",
            "sk": "TXN",
            "txn_id": f"payin:{order}",
            "kind": "PAYIN",
            "payment_order_id": order,
            "psp_reference": psp_reference,
            "seller_account": seller,
            "currency": currency,
            "amount_minor": amount_minor,
            "postings": postings,
            "settlement_day": f"simulated-psp#{charged_at[:10]}",
            "charged_at": charged_at,
            "booked_at": charged_at,
        }
        self.ddb.put_item(TableName=settings().ledger_table, Item=to_item(txn))
        shard = zlib.crc32(order.encode()) % settings().ledger_total_shards
        for account, side in (
            (f"seller_pending:{seller}", "credits_minor"),
            ("psp_receivable:simulated-psp", "debits_minor"),
        ):
            self.ddb.update_item(  # each account's running totals, kept in the same transaction
                TableName=settings().ledger_table,
                Key={"pk": {"S": f"ACCOUNT#{account}#{shard}"}, "sk": {"S": f"CCY#{currency}"}},
                UpdateExpression=f"ADD {side} :a, transactions :one SET currency = :c, account = :acct",
                ExpressionAttributeValues={
                    ":a": {"N": str(amount_minor)},
                    ":one": {"N": "1"},
                    ":c": {"S": currency},
                    ":acct": {"S": account},
                },
            )
        self.charge(psp_reference, order, amount_minor, currency, charged_at)
        self.credit_wallet(seller, order, amount_minor, currency)

    def charge(self, psp_reference: str, order: str, amount_minor: int, currency: str, charged_at: str) -> None:
        item = {
            "pk": f"CHARGE#{psp_reference}",
            "sk": "CHARGE",
            "psp_reference": psp_reference,
            "merchant_reference": order,
            "merchant_account": "PaymentsMarketplaceECOM",
            "amount_minor": amount_minor,
            "currency": currency,
            "charged_at": charged_at,
            "charge_day": charged_at[:10],
            "payment_method": "visa",
        }
        self.ddb.put_item(TableName=settings().psp_table, Item=to_item(item))

    def credit_wallet(self, seller: str, order: str, amount_minor: int, currency: str) -> None:
        shard = zlib.crc32(order.encode()) % settings().wallet_shards
        self.ddb.update_item(
            TableName=settings().wallets_table,
            Key={"pk": {"S": f"WALLET#{seller}#{shard}"}, "sk": {"S": f"CCY#{currency}"}},
            UpdateExpression="ADD balance_minor :a SET seller_account = :s, currency = :c",
            ExpressionAttributeValues={":a": {"N": str(amount_minor)}, ":s": {"S": seller}, ":c": {"S": currency}},
        )


@pytest.fixture
def cloud() -> Iterator[Aws]:
    with mock_aws():
        reset_settings()
        aws.reset_clients()
        ddb = boto3.client("dynamodb")
        s3 = boto3.client("s3")
        create_tables(ddb, settings())
        s3.create_bucket(Bucket=settings().settlement_bucket)
        yield Aws(s3=s3, ddb=ddb, bucket=settings().settlement_bucket)
        aws.reset_clients()
