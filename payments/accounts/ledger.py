"""The ledger table: append-only double-entry bookkeeping.

Item layout (``pk``, ``sk``):

* transaction  ``TXN#<payment_order_id>`` / ``TXN``: txn_id, payment_order_id, psp_reference,
  seller_account, currency, amount_minor, postings [{account, side, amount_minor, currency}],
  settlement_day (``<psp>#<YYYY-MM-DD>``, index ``by_settlement_day``), booked_at,
  in_account_totals; a refund, chargeback or reversal (``TXN#<kind>:<id>``, see
  :meth:`LedgerRepository.adjustment_items`) carries ``modification_settlement_day`` instead
  (``<psp>#<YYYY-MM-DD>``, the sparse index ``by_modification_day``, sort key ``txn_id``)
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

In code a transaction is a :class:`LedgerTransaction` of :class:`Posting` (account, :class:`Side`,
:class:`~payments.kernel.money.Money`) that cannot be built unbalanced; stored, its postings are the
plain maps above, the same attribute names and values as ever.

A transaction's money is never updated; a correction is a reversing transaction
with its own id. The one attribute ever set afterwards is ``in_account_totals``:
``payments backfill-account-totals`` adds the transactions of a ledger written
before the account totals existed to them, each exactly once (the append sets it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from payments.accounts import ShardedBook
from payments.kernel import clock
from payments.kernel.config import settings
from payments.kernel.dynamo import (
    batch_get,
    cancelled_by_condition,
    get_item,
    put_new,
    query_all,
    query_index,
    to_values,
    transact_write,
)
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money
from payments.payin.models import OrderRecord
from payments.payin.status import OrderStatus

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class Side(StrEnum):
    """The side of a posting; its value is what the stored item holds (``"DEBIT"``, ``"CREDIT"``)."""

    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


DEBIT, CREDIT = Side.DEBIT, Side.CREDIT


class UnbalancedTransaction(InvariantViolation):
    """A set of postings that is not one balanced double-entry transaction (invariant 3)."""


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of a ledger transaction: ``amount`` (positive) on one ``side`` of ``account``."""

    account: str
    side: Side
    amount: Money

    def __post_init__(self) -> None:
        if not isinstance(self.side, Side):
            raise UnbalancedTransaction(f"posting side must be DEBIT or CREDIT, got {self.side!r}")
        if not isinstance(self.amount, Money) or not self.amount.is_positive():
            raise UnbalancedTransaction(f"posting amount must be positive Money: {self.amount!r}")

    def to_item(self) -> dict[str, Any]:
        """The stored form, unchanged: ``{account, side, amount_minor, currency}``."""
        amount = self.amount
        return {
            "account": self.account,
            "side": self.side.value,
            "amount_minor": amount.minor,
            "currency": amount.currency,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Posting:
        """A stored posting read back; anything that is not a valid posting raises UnbalancedTransaction."""
        try:
            return cls(item["account"], Side(item["side"]), Money(item["amount_minor"], item["currency"]))
        except (KeyError, ValueError) as err:  # InvalidAmount is a ValueError, so is a bad Side
            raise UnbalancedTransaction(f"not a valid posting: {item}: {err}") from None


@dataclass(frozen=True, slots=True)
class LedgerTransaction:
    """The postings of one double-entry transaction: at least two, and per currency the debits
    equal the credits. Built only through :meth:`of` or :meth:`transfer`, which refuse anything
    else with :class:`UnbalancedTransaction` (an error, not an ``assert``: it holds under ``-O``)."""

    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise UnbalancedTransaction(f"a ledger transaction needs two postings or more: {self.postings}")
        net: dict[str, Money] = {}
        for posting in self.postings:
            signed = posting.amount if posting.side is Side.DEBIT else -posting.amount
            net[signed.currency] = net.get(signed.currency, Money.zero(signed.currency)) + signed
        unbalanced = {ccy: str(amount) for ccy, amount in net.items() if amount.minor != 0}
        if unbalanced:
            raise UnbalancedTransaction(
                f"unbalanced ledger transaction (debits - credits: {unbalanced}): {self.postings}"
            )

    @classmethod
    def of(cls, postings: Iterable[Posting]) -> LedgerTransaction:
        return cls(tuple(postings))

    @classmethod
    def transfer(cls, *, debit: str, credit: str, amount: Money) -> LedgerTransaction:
        """``amount`` debited to one account and credited to another: the two-posting transaction."""
        return cls((Posting(debit, Side.DEBIT, amount), Posting(credit, Side.CREDIT, amount)))

    @classmethod
    def from_items(cls, items: Iterable[dict[str, Any]]) -> LedgerTransaction:
        return cls(tuple(Posting.from_item(item) for item in items))

    def to_items(self) -> list[dict[str, Any]]:
        """The stored ``postings`` attribute, byte-compatible with what was always written."""
        return [posting.to_item() for posting in self.postings]


def psp_receivable(psp: str) -> str:
    return f"psp_receivable:{psp}"


def seller_account_id(seller_account: str) -> str:
    return f"seller:{seller_account}"


def account_totals_pk(account: str, shard: int) -> str:
    """The shard is in the partition key, as for wallets: a hot seller's appends spread over partitions."""
    return f"ACCOUNT#{account}#{shard}"


def assert_balanced(postings: list[dict[str, Any]]) -> None:
    """Invariant 3 for one stored transaction: per currency, debits equal credits, amounts
    positive integer minor units. Raises InvariantViolation (UnbalancedTransaction) otherwise."""
    LedgerTransaction.from_items(postings)


@dataclass(frozen=True)
class AppendResult:
    txn_id: str
    appended: bool  # False: it had been appended before (a retry)


class LedgerRepository(ShardedBook):
    table_setting = "ledger_table"
    shards_setting = "ledger_total_shards"

    @cached_property
    def psp(self) -> str:
        """The PSP whose receivable the ledger's transactions post to (``psp_name``)."""
        return settings().psp_name

    def append_payin(self, order: OrderRecord) -> AppendResult:
        """Book a successful charge: debit the PSP receivable, credit the seller."""
        if order.status is not OrderStatus.SUCCESS or not order.psp_reference or not order.charged_at:
            raise InvariantViolation(f"order {order.payment_order_id} is not a completed charge; nothing to book")
        txn_id = f"payin:{order.payment_order_id}"
        amount = order.money
        seller = seller_account_id(order.seller_account)
        txn = LedgerTransaction.transfer(debit=psp_receivable(self.psp), credit=seller, amount=amount)
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
            "postings": txn.to_items(),
            "settlement_day": f"{self.psp}#{clock.day_of(order.charged_at)}",
            "charged_at": order.charged_at,
            "booked_at": clock.now_iso(),
            # counted in the seller account's running totals (by this very transaction)
            "in_account_totals": True,
        }
        shard = self._shard(order.payment_order_id)
        refusal = transact_write(
            self.ddb,
            [
                put_new(self.table, item),
                self._totals_update(shard, amount),
                self._account_totals_update(seller, shard, credits=amount, debits=Money.zero(amount.currency)),
                self.payments.order_flag_update(order.payment_order_id, "ledger_updated"),
            ],
        )
        if refusal is not None:
            if not cancelled_by_condition(refusal, 0):
                raise refusal
            existing = self.find_transaction(order.payment_order_id)
            if existing is None or (existing["amount_minor"], existing["currency"], existing["psp_reference"]) != (
                order.amount_minor,
                order.currency,
                order.psp_reference,
            ):
                raise InvariantViolation(
                    f"ledger transaction of {order.payment_order_id} does not match the order"
                ) from refusal
            return AppendResult(txn_id, appended=False)
        return AppendResult(txn_id, appended=True)

    def adjustment_items(
        self,
        txn_id: str,
        kind: str,
        order: OrderRecord,
        amount: Money,
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
        settlement index lists charges) but a ``modification_settlement_day`` (``<psp>#<day>``,
        the sparse index ``by_modification_day``): reconciliation lists the day's refunds,
        chargebacks and reversals with one Query and matches them with the file's rows."""
        seller = seller_account_id(order.seller_account)
        receivable = psp_receivable(self.psp)
        debit, credit = (receivable, seller) if to_seller else (seller, receivable)
        if amount.currency != order.currency:
            raise InvariantViolation(f"{kind} {txn_id} of {amount} on an order in {order.currency}")
        txn = LedgerTransaction.transfer(debit=debit, credit=credit, amount=amount)
        now = clock.now_iso()
        day = clock.day_of(now)
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
            "amount_minor": amount.minor,
            "postings": txn.to_items(),
            "modification_day": day,
            "modification_settlement_day": f"{self.psp}#{day}",
            "booked_at": now,
            "in_account_totals": True,
        }
        shard = self._shard(txn_id)
        nothing = Money.zero(amount.currency)
        return [
            put_new(self.table, item),
            self._totals_update(shard, amount),
            self._account_totals_update(
                seller, shard, credits=amount if to_seller else nothing, debits=nothing if to_seller else amount
            ),
        ]

    def booking_items(
        self, txn_id: str, kind: str, txn: LedgerTransaction, attributes: dict[str, Any]
    ) -> list[TransactWriteItemTypeDef]:
        """The TransactWriteItems items that book one balanced transaction of the chart
        (:mod:`payments.accounts.chart`) in the caller's transaction: the transaction item
        ``TXN#<txn_id>`` put on ``attribute_not_exists`` (a second booking cancels the whole
        transaction), its amount added to a totals shard, and each account's postings added to
        that account's totals shard. ``attributes`` are stored on the transaction item (its
        references: ``payout_id``, ``seller_account``...); its money is the postings only.
        One currency per transaction."""
        currencies = {posting.amount.currency for posting in txn.postings}
        if len(currencies) != 1:
            raise UnbalancedTransaction(f"a booking is in one currency: {sorted(currencies)}")
        debits = sum((p.amount for p in txn.postings if p.side is Side.DEBIT), Money.zero(currencies.pop()))
        shard = self._shard(txn_id)
        item = {
            **attributes,
            "pk": f"TXN#{txn_id}",
            "sk": "TXN",
            "txn_id": txn_id,
            "kind": kind,
            "currency": debits.currency,
            "amount_minor": debits.minor,
            "postings": txn.to_items(),
            "booked_at": clock.now_iso(),
            "in_account_totals": True,
        }
        sums: dict[str, dict[Side, Money]] = {}
        for posting in txn.postings:
            zero = Money.zero(posting.amount.currency)
            sides = sums.setdefault(posting.account, {Side.CREDIT: zero, Side.DEBIT: zero})
            sides[posting.side] += posting.amount
        return [
            put_new(self.table, item),
            self._totals_update(shard, debits),
            *(
                self._account_totals_update(account, shard, credits=sides[Side.CREDIT], debits=sides[Side.DEBIT])
                for account, sides in sorted(sums.items())
            ),
        ]

    def _totals_update(self, shard: int, amount: Money) -> TransactWriteItemTypeDef:
        """The TransactWriteItems item that adds one balanced transaction of ``amount`` (its debits,
        equal to its credits) to a totals shard: the trial balance without a scan."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": f"TOTALS#{shard}"}, "sk": {"S": f"CCY#{amount.currency}"}},
                "UpdateExpression": "ADD debits_minor :amount, credits_minor :amount, transactions :one SET currency = :ccy",
                "ExpressionAttributeValues": to_values({":amount": amount.minor, ":one": 1, ":ccy": amount.currency}),
            }
        }

    def _account_totals_update(
        self, account: str, shard: int, *, credits: Money, debits: Money
    ) -> TransactWriteItemTypeDef:
        """The TransactWriteItems item that adds one transaction's postings to an account's totals shard."""
        currency = (credits - debits).currency  # one currency, else CurrencyMismatch
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": account_totals_pk(account, shard)}, "sk": {"S": f"CCY#{currency}"}},
                "UpdateExpression": "ADD credits_minor :credits, debits_minor :debits, transactions :one SET currency = :ccy, account = :account",
                "ExpressionAttributeValues": to_values(
                    {
                        ":credits": credits.minor,
                        ":debits": debits.minor,
                        ":one": 1,
                        ":ccy": currency,
                        ":account": account,
                    }
                ),
            }
        }

    def count_in_account_totals(self, txn: dict[str, Any]) -> bool:
        """Add a transaction booked before the seller account totals existed to them, exactly once.

        The transaction's ``in_account_totals`` flag is set in the same TransactWriteItems,
        conditional on its absence: a second run, a racing run, or a transaction appended
        by the current code (flag set at append) adds nothing. Returns whether it was added now.
        """
        sums: dict[tuple[str, str], dict[Side, Money]] = {}
        for posting in LedgerTransaction.from_items(txn["postings"]).postings:
            if posting.account.startswith("seller:"):
                zero = Money.zero(posting.amount.currency)
                sides = sums.setdefault(
                    (posting.account, posting.amount.currency), {Side.CREDIT: zero, Side.DEBIT: zero}
                )
                sides[posting.side] += posting.amount
        shard = self._shard(txn["payment_order_id"])
        refusal = transact_write(
            self.ddb,
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": txn["pk"]}, "sk": {"S": txn["sk"]}},
                        "UpdateExpression": "SET in_account_totals = :yes",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(in_account_totals)",
                        "ExpressionAttributeValues": to_values({":yes": True}),
                    }
                },
                *(
                    self._account_totals_update(account, shard, credits=sides[Side.CREDIT], debits=sides[Side.DEBIT])
                    for (account, _), sides in sorted(sums.items())
                ),
            ],
        )
        if refusal is not None and not cancelled_by_condition(refusal, 0):
            raise refusal
        return refusal is None

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
        return get_item(self.ddb, self.table, {"pk": {"S": f"TXN#{payment_order_id}"}, "sk": {"S": "TXN"}})

    def trial_balance(self) -> dict[str, tuple[int, int]]:
        """currency -> (debits, credits) in minor units, from the totals shards."""
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for item in self._shard_items("TOTALS#"):
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
        return query_index(self.ddb, self.table, "by_settlement_day", "settlement_day", f"{psp or self.psp}#{day}")

    def adjustments_for_day(self, day: str, psp: str | None = None) -> Iterator[dict[str, Any]]:
        """The PSP's refunds, chargebacks and chargeback reversals booked on a UTC day (what
        its settlement file's ``Refunded``, ``Chargeback``, ``ChargebackReversed`` rows should
        match), by ``txn_id``: one Query of the sparse index ``by_modification_day``."""
        psp_day = f"{psp or self.psp}#{day}"
        return query_index(self.ddb, self.table, "by_modification_day", "modification_settlement_day", psp_day)

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
