"""A hot seller: how one seller's credits spread over its wallet shard items, and the ceiling.

    .venv/bin/python -m payments_dev.bench.hot_seller [--credits 10000] [--verify 400]

1. Spread: ``payments.accounts.wallet.shard_of`` (crc32(payment_order_id) % N) over
   ``--credits`` order ids of one seller, for N = 1..16: items per shard, max / mean.
2. Verification on moto in-process (``mock_aws``): ``--verify`` real credits through
   ``WalletRepository.credit`` (SUCCESS orders created by ``PaymentsRepository``), at N = 8;
   the ``credits`` counter of every stored shard item must equal the predicted count.
3. Ceiling per seller: a credit is one TransactWriteItems of three items on three partition
   keys: the marker (its own key, never hot), the order flag (payments table, its own key) and
   ONE shard item ``WALLET#<seller>#<shard>`` (< 1 KB: 1 KB x 2 for a transaction = 2 WCU).
   DynamoDB allows 1,000 WCU/s per partition, so one shard item takes at most 500 credits/s,
   and the seller's ceiling is 500 x credits / (credits on the hottest shard), about 500 x N.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from typing import Any

PARTITION_WCU = 1000
WCU_PER_CREDIT_ON_SHARD = 2  # transactional write of an item < 1 KB


def order_ids(n: int, seller: str = "seller_hot", sequential: bool = True) -> list[str]:
    """Sequential ids (the demo's shape) or random ones (seeded): crc32 is linear, so sequential
    ids spread perfectly evenly over a power-of-two shard count; random ids show the real variance."""
    if sequential:
        return [f"{seller}_po_{i:07d}" for i in range(n)]
    import random

    rng = random.Random(2026)
    return [f"po_{rng.getrandbits(64):016x}" for _ in range(n)]


def spread(credits: int = 10_000, max_shards: int = 16, sequential: bool = False) -> list[dict[str, Any]]:
    from payments.accounts.wallet import shard_of

    ids = order_ids(credits, sequential=sequential)
    rows = []
    for n in range(1, max_shards + 1):
        counts = Counter(shard_of(i, n) for i in ids)
        per = [counts.get(s, 0) for s in range(n)]
        hottest = max(per)
        rows.append(
            {
                "shards": n,
                "per_shard": per,
                "max_over_mean": hottest / (credits / n),
                "ceiling_credits_per_s": PARTITION_WCU / WCU_PER_CREDIT_ON_SHARD * credits / hottest,
            }
        )
    return rows


def verify(credits: int = 400, shards: int = 8) -> dict[str, Any]:
    """Credit one seller for real (moto in-process) and read back the shard items."""
    os.environ.update(
        {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    with mock_aws():
        import boto3

        from payments.accounts.wallet import WalletRepository, shard_of
        from payments.kernel import aws
        from payments.kernel.config import reset_settings
        from payments.kernel.tables import TABLES
        from payments.payin.models import OrderRecord, PaymentRecord
        from payments.payin.repository import PaymentsRepository
        from payments.payin.status import OrderStatus

        reset_settings()
        aws.reset_clients()
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for table in TABLES:
            if table.setting not in ("payments_table", "wallets_table"):
                continue
            ddb.create_table(
                TableName={"payments_table": "payments", "wallets_table": "wallets"}[table.setting],
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            )
        payments = PaymentsRepository(table="payments")
        wallets = WalletRepository(table="wallets", shards=shards, payments=payments)
        ids = order_ids(credits)
        for start in range(0, credits, 40):  # one checkout holds at most 50 orders
            chunk = ids[start : start + 40]
            checkout = f"hot_chk_{start}"
            payments.create(
                PaymentRecord(
                    checkout_id=checkout, buyer_id="buyer_1", payment_order_ids=chunk, payment_method_type="card",
                    payment_method_token="tok_visa", idempotency_key=f"k{start}", request_fingerprint="f",
                ),
                [OrderRecord(payment_order_id=i, checkout_id=checkout, seller_account="seller_hot", amount_minor=100, currency="USD") for i in chunk],
            )  # fmt: skip
            for order_id in chunk:
                payments.move_order(order_id, OrderStatus.EXECUTING)
                order = payments.move_order(
                    order_id, OrderStatus.SUCCESS, psp_reference=f"psp_{order_id}", charged_at="2026-11-30T10:00:00Z"
                )
                wallets.credit(order)
        stored = {}
        for shard in range(shards):
            item = ddb.get_item(
                TableName="wallets", Key={"pk": {"S": f"WALLET#seller_hot#{shard}"}, "sk": {"S": "CCY#USD"}}
            ).get("Item")
            stored[shard] = int(item["credits"]["N"]) if item else 0
        predicted = Counter(shard_of(i, shards) for i in ids)
        return {
            "credits": credits,
            "shards": shards,
            "stored_per_shard": [stored[s] for s in range(shards)],
            "predicted_per_shard": [predicted.get(s, 0) for s in range(shards)],
            "match": all(stored[s] == predicted.get(s, 0) for s in range(shards)),
            "balance_minor": wallets.balances("seller_hot").get("USD"),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hot seller: credits per wallet shard and the ceiling")
    parser.add_argument("--credits", type=int, default=10_000)
    parser.add_argument("--verify", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="a tiny run: 1,000 ids, 16 credits verified")
    args = parser.parse_args(argv)
    if args.quick:
        args.credits, args.verify = 1_000, 16
    print(
        json.dumps(
            {
                "spread": spread(args.credits),
                "spread_sequential_ids": spread(args.credits, sequential=True),
                "verify": verify(args.verify) if args.verify else None,
            },
            indent=1,
        )
    )

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
