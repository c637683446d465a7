"""The wallets table: how much each seller has, per currency, credited exactly once per order.

Item layout (``pk``, ``sk``):

* credit marker  ``CREDIT#<payment_order_id>`` / ``CREDIT``: seller_account, currency, amount_minor, shard
* balance shard  ``WALLET#<seller_account>#<shard>`` / ``CCY#<currency>``: balance_minor, credits

A credit is one ``TransactWriteItems``: put the marker (``attribute_not_exists``),
``ADD`` the amount to one balance shard, and set ``wallet_updated`` on the order
(only if it is ``SUCCESS``). A retry fails the marker's condition and changes
nothing: exactly once. The shard is a stable hash of the order id, so a hot
seller's credits spread over ``wallet_shards`` partition keys (DynamoDB allows
1,000 WCU/s per partition); the balance is the sum of the shards. The shard count
may be raised, never lowered (readers read ``range(wallet_shards)``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from payments.accounts import ShardedBook
from payments.kernel import clock
from payments.kernel.dynamo import (
    batch_get,
    cancelled_by_condition,
    get_item,
    put_new,
    query_all,
    shard_of,
    to_values,
    transact_write,
)
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money
from payments.payin.models import OrderRecord
from payments.payin.status import OrderStatus

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

__all__ = ["CreditResult", "WalletRepository", "shard_of"]


@dataclass(frozen=True)
class CreditResult:
    payment_order_id: str
    applied: bool  # False: it had been applied before (a retry)
    shard: int


class WalletRepository(ShardedBook):
    table_setting = "wallets_table"
    shards_setting = "wallet_shards"

    def credit(self, order: OrderRecord) -> CreditResult:
        if order.status is not OrderStatus.SUCCESS:
            raise InvariantViolation(
                f"order {order.payment_order_id} is {order.status.value}; only SUCCESS orders credit a wallet"
            )
        shard = self._shard(order.payment_order_id)
        amount = order.money
        marker = {
            "pk": f"CREDIT#{order.payment_order_id}",
            "sk": "CREDIT",
            "payment_order_id": order.payment_order_id,
            "seller_account": order.seller_account,
            "currency": amount.currency,
            "amount_minor": amount.minor,
            "shard": shard,
            "applied_at": clock.now_iso(),
        }
        refusal = transact_write(
            self.ddb,
            [
                put_new(self.table, marker),
                self._balance_update(order.seller_account, shard, amount, counter="credits"),
                self.payments.order_flag_update(order.payment_order_id, "wallet_updated"),
            ],
        )
        if refusal is not None:
            if not cancelled_by_condition(refusal, 0):
                raise refusal
            self._check_marker(order)
            return CreditResult(order.payment_order_id, applied=False, shard=shard)
        return CreditResult(order.payment_order_id, applied=True, shard=shard)

    def adjustment_items(
        self, adjustment_id: str, kind: str, payment_order_id: str, seller_account: str, delta: Money
    ) -> list[TransactWriteItemTypeDef]:
        """The TransactWriteItems items of a wallet adjustment (issue 18: a refund or chargeback
        takes money off, a chargeback reversal gives it back): an ``ADJUST#<adjustment_id>``
        marker (``attribute_not_exists``) and a signed ``ADD`` to one balance shard. The caller
        puts them in the transaction that decides the refund or books the dispute, so the wallet
        moves exactly when that decision is stored, once. A balance may go below zero."""
        if not isinstance(delta, Money) or delta.minor == 0:
            raise InvariantViolation(f"wallet adjustment {adjustment_id} must move a non-zero integer amount")
        shard = self._shard(adjustment_id)
        marker = {
            "pk": f"ADJUST#{adjustment_id}",
            "sk": "ADJUST",
            "adjustment_id": adjustment_id,
            "kind": kind,
            "payment_order_id": payment_order_id,
            "seller_account": seller_account,
            "currency": delta.currency,
            "delta_minor": delta.minor,
            "shard": shard,
            "applied_at": clock.now_iso(),
        }
        return [
            put_new(self.table, marker),
            self._balance_update(seller_account, shard, delta, counter="adjustments"),
        ]

    def _balance_update(
        self, seller_account: str, shard: int, delta: Money, *, counter: str
    ) -> TransactWriteItemTypeDef:
        """The TransactWriteItems item that adds ``delta`` (signed) to one balance shard and counts it."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": f"WALLET#{seller_account}#{shard}"}, "sk": {"S": f"CCY#{delta.currency}"}},
                "UpdateExpression": f"ADD balance_minor :amount, {counter} :one SET seller_account = :seller, currency = :ccy",
                "ExpressionAttributeValues": to_values(
                    {":amount": delta.minor, ":one": 1, ":seller": seller_account, ":ccy": delta.currency}
                ),
            }
        }

    def find_adjustment(self, adjustment_id: str) -> dict[str, Any] | None:
        return get_item(self.ddb, self.table, {"pk": {"S": f"ADJUST#{adjustment_id}"}, "sk": {"S": "ADJUST"}})

    def _check_marker(self, order: OrderRecord) -> None:
        marker = self.find_credit(order.payment_order_id)
        if marker is None or (marker["seller_account"], marker["currency"], marker["amount_minor"]) != (
            order.seller_account,
            order.currency,
            order.amount_minor,
        ):
            raise InvariantViolation(f"credit marker of {order.payment_order_id} does not match the order: {marker}")

    def find_credit(self, payment_order_id: str) -> dict[str, Any] | None:
        return get_item(self.ddb, self.table, {"pk": {"S": f"CREDIT#{payment_order_id}"}, "sk": {"S": "CREDIT"}})

    def balances(self, seller_account: str) -> dict[str, int]:
        """currency -> balance in minor units, summed over the seller's shards."""
        totals: dict[str, int] = defaultdict(int)
        for item in self._shard_items(f"WALLET#{seller_account}#"):
            totals[item["currency"]] += item["balance_minor"]
        return dict(sorted(totals.items()))

    def balances_of(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(seller, currency) -> balance in minor units, for these accounts only: their
        shards read by key (BatchGetItem), however many sellers and currencies there are."""
        keys = [
            {"pk": f"WALLET#{seller}#{shard}", "sk": f"CCY#{ccy}"}
            for seller, ccy in sorted(accounts)
            for shard in range(self.shards)
        ]
        totals = dict.fromkeys(accounts, 0)
        for item in batch_get(self.ddb, self.table, keys):
            totals[(item["seller_account"], item["currency"])] += item["balance_minor"]
        return totals

    def scan(self) -> Iterator[dict[str, Any]]:
        """Every item of the table (balance shards and credit markers), for verification."""
        yield from query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True)
