"""The ledger table: append-only double-entry bookkeeping.

Item layout (``pk``, ``sk``):

* transaction  ``TXN#<payment_order_id>`` / ``TXN``: txn_id, payment_order_id, psp_reference,
  seller_account, currency, amount_minor, postings [{account, side, amount_minor, currency}],
  settlement_day (``<psp>#<YYYY-MM-DD>``, index ``by_settlement_day``), booked_at,
  in_account_totals
* totals shard ``TOTALS#<shard>`` / ``CCY#<currency>``: debits_minor, credits_minor, transactions
* seller account shard ``ACCOUNT#seller:<id>#<shard>`` / ``CCY#<currency>``: account, currency,
  debits_minor, credits_minor, transactions (the seller's ledger projection without a scan)

The transaction id is derived from the payment order id, so appending is a
conditional put: a retry fails the condition and appends nothing. The same
``TransactWriteItems`` adds to a totals shard (the trial balance without a scan)
and to a shard of the seller's account totals (what reconciliation's three-way
check compares each wallet with, read by key), and sets ``ledger_updated`` on the
order. All or nothing: the totals move exactly when the transaction is appended.
Shards keep a hot seller from making one item a write hotspot; both kinds of
totals are checked against the transactions by ``payments verify``.

A transaction's money is never updated; a correction is a reversing transaction
with its own id. The one attribute ever set afterwards is ``in_account_totals``:
``payments backfill-account-totals`` adds the transactions of a ledger written
before the account totals existed to them, each exactly once (the append sets it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from payments import aws, clock
from payments.config import settings
from payments.errors import InvariantViolation
from payments.models import OrderRecord
from payments.repositories.dynamo import batch_get, cancelled_by_condition, from_item, query_all, shard_of, to_item, to_values, transient_as_store_unavailable
from payments.repositories.payments import PaymentsRepository
from payments.status import OrderStatus

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

DEBIT, CREDIT = "DEBIT", "CREDIT"


def psp_receivable(psp: str) -> str:
    return f"psp_receivable:{psp}"


def seller_account_id(seller_account: str) -> str:
    return f"seller:{seller_account}"


def account_totals_pk(account: str, shard: int) -> str:
    """The shard is in the partition key, as for wallets: a hot seller's appends spread over partitions."""
    return f"ACCOUNT#{account}#{shard}"


def assert_balanced(postings: list[dict[str, Any]]) -> None:
    """Invariant 3 for one transaction: per currency, debits equal credits, amounts positive."""
    sums: dict[str, int] = defaultdict(int)
    for posting in postings:
        if not isinstance(posting["amount_minor"], int) or posting["amount_minor"] <= 0:
            raise InvariantViolation(f"posting amount must be a positive integer: {posting}")
        sums[posting["currency"]] += posting["amount_minor"] if posting["side"] == DEBIT else -posting["amount_minor"]
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced or len(postings) < 2:
        raise InvariantViolation(f"unbalanced ledger transaction: {postings}")


@dataclass(frozen=True)
class AppendResult:
    txn_id: str
    appended: bool  # False: it had been appended before (a retry)


class LedgerRepository:
    def __init__(self, table: str | None = None, shards: int | None = None, client: Any = None, payments: PaymentsRepository | None = None):
        self.table = table or settings().ledger_table
        self.shards = shards or settings().ledger_total_shards
        self.psp = settings().psp_name
        self.ddb = client or aws.client("dynamodb")
        self.payments = payments or PaymentsRepository(client=self.ddb)

    def append_payin(self, order: OrderRecord) -> AppendResult:
        """Book a successful charge: debit the PSP receivable, credit the seller."""
        if order.status is not OrderStatus.SUCCESS or not order.psp_reference or not order.charged_at:
            raise InvariantViolation(f"order {order.payment_order_id} is not a completed charge; nothing to book")
        txn_id = f"payin:{order.payment_order_id}"
        postings = [
            {"account": psp_receivable(self.psp), "side": DEBIT, "amount_minor": order.amount_minor, "currency": order.currency},
            {"account": seller_account_id(order.seller_account), "side": CREDIT, "amount_minor": order.amount_minor, "currency": order.currency},
        ]
        assert_balanced(postings)
        item = {
            "pk": f"TXN#{order.payment_order_id}",
            "sk": "TXN",
            "txn_id": txn_id,
            "kind": "PAYIN",
            "payment_order_id": order.payment_order_id,
            "checkout_id": order.checkout_id,
            "psp_reference": order.psp_reference,
            "seller_account": order.seller_account,
            "currency": order.currency,
            "amount_minor": order.amount_minor,
            "postings": postings,
            "settlement_day": f"{self.psp}#{clock.day_of(order.charged_at)}",
            "charged_at": order.charged_at,
            "booked_at": clock.now_iso(),
            # counted in the seller account's running totals (by this very transaction)
            "in_account_totals": True,
        }
        shard = self._shard(order.payment_order_id)
        try:
            with transient_as_store_unavailable():
                self.ddb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": self.table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}},
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": {"pk": {"S": f"TOTALS#{shard}"}, "sk": {"S": f"CCY#{order.currency}"}},
                                "UpdateExpression": "ADD debits_minor :amount, credits_minor :amount, transactions :one SET currency = :ccy",
                                "ExpressionAttributeValues": to_values({":amount": order.amount_minor, ":one": 1, ":ccy": order.currency}),
                            }
                        },
                        self._account_totals_update(seller_account_id(order.seller_account), order.currency, shard, order.amount_minor, 0),
                        self.payments.order_flag_update(order.payment_order_id, "ledger_updated"),
                    ]
                )
        except ClientError as err:
            if cancelled_by_condition(err, 0):
                existing = self.find_transaction(order.payment_order_id)
                if existing is None or (existing["amount_minor"], existing["currency"], existing["psp_reference"]) != (
                    order.amount_minor,
                    order.currency,
                    order.psp_reference,
                ):
                    raise InvariantViolation(f"ledger transaction of {order.payment_order_id} does not match the order") from err
                return AppendResult(txn_id, appended=False)
            raise
        return AppendResult(txn_id, appended=True)

    def adjustment_items(
        self,
        txn_id: str,
        kind: str,
        order: OrderRecord,
        amount_minor: int,
        psp_reference: str | None,
        *,
        to_seller: bool,
    ) -> list[TransactWriteItemTypeDef]:
        """The TransactWriteItems items of one balanced transaction that gives money back
        (issue 18): a refund or a chargeback debits the seller and credits the PSP receivable
        (the pay-in reversed); a chargeback reversal (``to_seller``) books it the other way.
        The transaction item ``TXN#<txn_id>`` is put on ``attribute_not_exists``, with the
        totals and the seller account totals, in the caller's transaction: once, or not at all.
        Its ``kind`` tells it from the pay-in (``PAYIN``); it has no ``settlement_day`` (the
        settlement index lists charges)."""
        seller = seller_account_id(order.seller_account)
        receivable = psp_receivable(self.psp)
        debit, credit = (receivable, seller) if to_seller else (seller, receivable)
        postings = [
            {"account": debit, "side": DEBIT, "amount_minor": amount_minor, "currency": order.currency},
            {"account": credit, "side": CREDIT, "amount_minor": amount_minor, "currency": order.currency},
        ]
        assert_balanced(postings)
        item = {
            "pk": f"TXN#{txn_id}",
            "sk": "TXN",
            "txn_id": txn_id,
            "kind": kind,
            "payment_order_id": order.payment_order_id,
            "checkout_id": order.checkout_id,
            "psp_reference": psp_reference,
            "original_psp_reference": order.psp_reference,
            "seller_account": order.seller_account,
            "currency": order.currency,
            "amount_minor": amount_minor,
            "postings": postings,
            "modification_day": clock.day_of(clock.now_iso()),
            "booked_at": clock.now_iso(),
            "in_account_totals": True,
        }
        shard = self._shard(txn_id)
        return [
            {"Put": {"TableName": self.table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": f"TOTALS#{shard}"}, "sk": {"S": f"CCY#{order.currency}"}},
                    "UpdateExpression": "ADD debits_minor :amount, credits_minor :amount, transactions :one SET currency = :ccy",
                    "ExpressionAttributeValues": to_values({":amount": amount_minor, ":one": 1, ":ccy": order.currency}),
                }
            },
            self._account_totals_update(seller, order.currency, shard, amount_minor if to_seller else 0, 0 if to_seller else amount_minor),
        ]

    def _shard(self, payment_order_id: str) -> int:
        """The totals shard of an order's transaction: the append and the backfill must agree."""
        return shard_of(payment_order_id, self.shards)

    def _account_totals_update(self, account: str, currency: str, shard: int, credits: int, debits: int) -> TransactWriteItemTypeDef:
        """The TransactWriteItems item that adds one transaction's postings to an account's totals shard."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": account_totals_pk(account, shard)}, "sk": {"S": f"CCY#{currency}"}},
                "UpdateExpression": "ADD credits_minor :credits, debits_minor :debits, transactions :one SET currency = :ccy, account = :account",
                "ExpressionAttributeValues": to_values({":credits": credits, ":debits": debits, ":one": 1, ":ccy": currency, ":account": account}),
            }
        }

    def count_in_account_totals(self, txn: dict[str, Any]) -> bool:
        """Add a transaction booked before the seller account totals existed to them, exactly once.

        The transaction's ``in_account_totals`` flag is set in the same TransactWriteItems,
        conditional on its absence: a second run, a racing run, or a transaction appended
        by the current code (flag set at append) adds nothing. Returns whether it was added now.
        """
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for posting in txn["postings"]:
            if posting["account"].startswith("seller:"):
                sums[(posting["account"], posting["currency"])][0 if posting["side"] == CREDIT else 1] += int(posting["amount_minor"])
        shard = self._shard(txn["payment_order_id"])
        try:
            with transient_as_store_unavailable():
                self.ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": {"pk": {"S": txn["pk"]}, "sk": {"S": txn["sk"]}},
                                "UpdateExpression": "SET in_account_totals = :yes",
                                "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(in_account_totals)",
                                "ExpressionAttributeValues": to_values({":yes": True}),
                            }
                        },
                        *(self._account_totals_update(account, ccy, shard, c, d) for (account, ccy), (c, d) in sorted(sums.items())),
                    ]
                )
        except ClientError as err:
            if cancelled_by_condition(err, 0):
                return False
            raise
        return True

    def backfill_account_totals(self) -> tuple[int, int]:
        """(transactions read, transactions added now): every transaction not yet counted in
        its seller account's totals is added (see :meth:`count_in_account_totals`). Safe to
        run while payments flow, and to run again after an interruption."""
        read = added = 0
        for txn in self.transactions():
            read += 1
            if not txn.get("in_account_totals") and self.count_in_account_totals(txn):
                added += 1
        return read, added

    def find_transaction(self, payment_order_id: str) -> dict[str, Any] | None:
        with transient_as_store_unavailable():
            response = self.ddb.get_item(
                TableName=self.table, Key={"pk": {"S": f"TXN#{payment_order_id}"}, "sk": {"S": "TXN"}}, ConsistentRead=True
            )
        return from_item(response.get("Item"))

    def trial_balance(self) -> dict[str, tuple[int, int]]:
        """currency -> (debits, credits) in minor units, from the totals shards."""
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for shard in range(self.shards):
            for item in query_all(
                self.ddb,
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_values({":pk": f"TOTALS#{shard}"}),
                ConsistentRead=True,
            ):
                totals[item["currency"]][0] += item["debits_minor"]
                totals[item["currency"]][1] += item["credits_minor"]
        return {c: (d, cr) for c, (d, cr) in sorted(totals.items())}

    def seller_totals_of(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(seller, currency) -> net credits of ``seller:<id>`` in that currency, for these
        accounts only: their totals shards read by key (BatchGetItem)."""
        keys = [
            {"pk": account_totals_pk(seller_account_id(seller), shard), "sk": f"CCY#{ccy}"}
            for seller, ccy in sorted(accounts)
            for shard in range(self.shards)
        ]
        totals = dict.fromkeys(accounts, 0)
        for item in batch_get(self.ddb, self.table, keys):
            seller = item["account"].split(":", 1)[1]
            totals[(seller, item["currency"])] += item.get("credits_minor", 0) - item.get("debits_minor", 0)
        return totals

    def transactions_for_settlement_day(self, day: str, psp: str | None = None) -> Iterator[dict[str, Any]]:
        """The PSP's transactions charged on a UTC day (what its settlement file should hold)."""
        yield from query_all(
            self.ddb,
            TableName=self.table,
            IndexName="by_settlement_day",
            KeyConditionExpression="settlement_day = :day",
            ExpressionAttributeValues=to_values({":day": f"{psp or self.psp}#{day}"}),
        )

    def transactions(self) -> Iterator[dict[str, Any]]:
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["sk"] == "TXN":
                yield item

    def totals_items(self) -> Iterator[dict[str, Any]]:
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["pk"].startswith("TOTALS#"):
                yield item

    def all_account_totals(self) -> dict[tuple[str, str], int]:
        """(account, currency) -> net credits, over every account's totals shards (one scan)."""
        net: dict[tuple[str, str], int] = defaultdict(int)
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["pk"].startswith("ACCOUNT#"):
                net[(item["account"], item["currency"])] += item.get("credits_minor", 0) - item.get("debits_minor", 0)
        return dict(net)
