"""The books: each seller's wallet and the double-entry ledger, written once per money movement.

Used by pay-in (credit, append), refunds (debit, reversing transaction) and notifications
(chargebacks and their reversals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from payments.kernel import aws
from payments.kernel.config import settings
from payments.kernel.dynamo import query_all, shard_of, to_values
from payments.payin.repository import PaymentsRepository


class ShardedBook:
    """What the wallet and the ledger repositories share: their table and its shard count, the
    DynamoDB client, and the payments repository whose orders their transactions flag
    (``wallet_updated``, ``ledger_updated``)."""

    #: the settings fields of the book's table and of its shard count (set by each book)
    table_setting: str
    shards_setting: str

    def __init__(
        self,
        table: str | None = None,
        shards: int | None = None,
        client: Any = None,
        payments: PaymentsRepository | None = None,
    ):
        self.table: str = table or getattr(settings(), self.table_setting)
        self.shards: int = shards or getattr(settings(), self.shards_setting)
        self.ddb = client or aws.client("dynamodb")
        self.payments = payments or PaymentsRepository(client=self.ddb)

    def _shard(self, key: str) -> int:
        """The shard of a money item keyed by ``key`` (a payment order or adjustment id): every
        writer and reader of it agrees (:func:`payments.kernel.dynamo.shard_of`)."""
        return shard_of(key, self.shards)

    def _shard_items(self, partition_prefix: str) -> Iterator[dict[str, Any]]:
        """Every item of the partitions ``<partition_prefix><shard>`` over all the shards (strongly consistent)."""
        for shard in range(self.shards):
            yield from query_all(
                self.ddb,
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_values({":pk": f"{partition_prefix}{shard}"}),
                ConsistentRead=True,
            )
