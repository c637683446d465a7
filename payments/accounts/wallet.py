"""The wallets table: what the platform owes each seller, per currency, moved exactly once per movement.

A seller's balance in a currency has three parts (:class:`SellerBalance`): ``pending`` (charged, its
settlement file not reconciled yet), ``available`` (settled: what a payout may take; money back is
taken from it and it may go below zero) and ``in_transit`` (in payouts the bank has not booked).
Their sum is what the platform owes the seller.

Item layout (``pk``, ``sk``):

* credit marker  ``CREDIT#<payment_order_id>`` / ``CREDIT``: seller_account, currency, amount_minor
  (the net credited: the charge minus the commission), gross_minor, commission_minor, shard
* pending shard  ``WALLET#<seller_account>#<shard>`` / ``CCY#<currency>``: balance_minor (pending),
  credits, settled
* balance item   ``BALANCE#<seller_account>`` / ``CCY#<currency>``: available_minor, in_transit_minor
  (:mod:`payments.accounts.balances`)
* adjustment marker ``ADJUST#<adjustment_id>`` / ``ADJUST``: a refund, chargeback, reversal or second
  chargeback: delta_minor (what moved in available), commission_minor (a refund's commission given back)
* settled marker ``SETTLED#<payment_order_id>`` / ``SETTLED``: the charge's net moved from pending to
  available, once (:mod:`payments.accounts.settlement`)

A credit is one ``TransactWriteItems``: put the marker (``attribute_not_exists``),
``ADD`` the net to one pending shard, and set ``wallet_updated`` on the order
(only if it is ``SUCCESS``). A retry fails the marker's condition and changes
nothing: exactly once. The shard is a stable hash of the order id, so a hot
seller's credits spread over ``wallet_shards`` partition keys (DynamoDB allows
1,000 WCU/s per partition); pending is the sum of the shards. The shard count
may be raised, never lowered (readers read ``range(wallet_shards)``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from payments.accounts import ShardedBook
from payments.accounts.balances import balance_key, move_update
from payments.accounts.chart import AccountKind
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

__all__ = ["CreditResult", "SellerBalance", "WalletRepository", "shard_of"]


class SellerBalance(NamedTuple):
    """A seller's balance in one currency, in minor units: its three parts and their sum (:attr:`total`)."""

    pending: int = 0
    available: int = 0
    in_transit: int = 0

    @property
    def total(self) -> int:
        """What the platform owes the seller: pending + available + in transit."""
        return self.pending + self.available + self.in_transit

    @classmethod
    def of_kinds(cls, parts: Mapping[AccountKind, int]) -> SellerBalance:
        """From the net credits of the seller's payable accounts of the chart."""
        return cls(
            parts.get(AccountKind.SELLER_PENDING, 0),
            parts.get(AccountKind.SELLER_AVAILABLE, 0),
            parts.get(AccountKind.PAYOUTS_IN_TRANSIT, 0),
        )

    def add(self, *, pending: int = 0, available: int = 0, in_transit: int = 0) -> SellerBalance:
        return SellerBalance(self.pending + pending, self.available + available, self.in_transit + in_transit)


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
        amount = order.net  # the charge minus the commission fixed on the order
        if amount.minor < 0:
            raise InvariantViolation(f"order {order.payment_order_id}: commission above the charge")
        marker = {
            "pk": f"CREDIT#{order.payment_order_id}",
            "sk": "CREDIT",
            "payment_order_id": order.payment_order_id,
            "seller_account": order.seller_account,
            "currency": amount.currency,
            "amount_minor": amount.minor,
            "gross_minor": order.amount_minor,
            "commission_minor": order.commission_minor,
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
        self,
        adjustment_id: str,
        kind: str,
        payment_order_id: str,
        seller_account: str,
        delta: Money,
        *,
        commission: Money | None = None,
    ) -> list[TransactWriteItemTypeDef]:
        """The TransactWriteItems items of money back (a refund, chargeback or second chargeback takes
        it off, a chargeback reversal gives it back): an ``ADJUST#<adjustment_id>`` marker
        (``attribute_not_exists``) and a signed move of the seller's **available** balance (the
        balance item, :func:`payments.accounts.balances.move_update`; it may go below zero).
        ``commission``: the commission a refund gives back (recorded on the marker; the seller's
        delta is the refund minus it). The caller puts them in the transaction that decides the
        refund or books the dispute, so the wallet moves exactly when that decision is stored, once."""
        if not isinstance(delta, Money) or delta.minor == 0:
            raise InvariantViolation(f"wallet adjustment {adjustment_id} must move a non-zero integer amount")
        marker = {
            "pk": f"ADJUST#{adjustment_id}",
            "sk": "ADJUST",
            "adjustment_id": adjustment_id,
            "kind": kind,
            "payment_order_id": payment_order_id,
            "seller_account": seller_account,
            "currency": delta.currency,
            "delta_minor": delta.minor,
            "commission_minor": (commission or Money.zero(delta.currency)).minor,
            "applied_at": clock.now_iso(),
        }
        return [put_new(self.table, marker), move_update(self.table, seller_account, available=delta)]

    def pending_update(
        self, seller_account: str, shard: int, delta: Money, *, counter: str
    ) -> TransactWriteItemTypeDef:
        """The TransactWriteItems item that adds ``delta`` (signed) to one pending shard and counts it
        (``credits``, or ``settled`` when settled charges leave pending)."""
        return self._balance_update(seller_account, shard, delta, counter=counter)

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
            order.net.minor,
        ):
            raise InvariantViolation(f"credit marker of {order.payment_order_id} does not match the order: {marker}")

    def find_credit(self, payment_order_id: str) -> dict[str, Any] | None:
        return get_item(self.ddb, self.table, {"pk": {"S": f"CREDIT#{payment_order_id}"}, "sk": {"S": "CREDIT"}})

    def balances(self, seller_account: str) -> dict[str, int]:
        """currency -> what the platform owes the seller in minor units (pending + available + in transit)."""
        return {ccy: parts.total for ccy, parts in self.balance_parts(seller_account).items()}

    def balance_parts(self, seller_account: str) -> dict[str, SellerBalance]:
        """currency -> the seller's pending (summed over its shards), available and in transit."""
        parts: dict[str, SellerBalance] = defaultdict(SellerBalance)
        for item in self._shard_items(f"WALLET#{seller_account}#"):
            parts[item["currency"]] = parts[item["currency"]].add(pending=item["balance_minor"])
        for item in query_all(
            self.ddb,
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_values({":pk": f"BALANCE#{seller_account}"}),
            ConsistentRead=True,
        ):
            parts[item["currency"]] = parts[item["currency"]].add(
                available=item.get("available_minor", 0), in_transit=item.get("in_transit_minor", 0)
            )
        return dict(sorted(parts.items()))

    def balances_of(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        """(seller, currency) -> its balance, for these accounts only: their pending shards and balance
        items read by key (BatchGetItem), however many sellers and currencies there are."""
        keys = [
            {"pk": f"WALLET#{seller}#{shard}", "sk": f"CCY#{ccy}"}
            for seller, ccy in sorted(accounts)
            for shard in range(self.shards)
        ]
        keys += [
            {name: value["S"] for name, value in balance_key(seller, ccy).items()} for seller, ccy in sorted(accounts)
        ]
        totals = dict.fromkeys(accounts, SellerBalance())
        for item in batch_get(self.ddb, self.table, keys):
            key = (item["seller_account"], item["currency"])
            if item["pk"].startswith("BALANCE#"):
                totals[key] = totals[key].add(
                    available=item.get("available_minor", 0), in_transit=item.get("in_transit_minor", 0)
                )
            else:
                totals[key] = totals[key].add(pending=item["balance_minor"])
        return totals

    def scan(self) -> Iterator[dict[str, Any]]:
        """Every item of the table (balance shards and credit markers), for verification."""
        yield from query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True)
