"""The ledger table: append-only double-entry bookkeeping.

Item layout (``pk``, ``sk``):

* transaction  ``TXN#<payment_order_id>`` / ``TXN``: txn_id, payment_order_id, psp_reference,
  seller_account, currency, amount_minor, postings [{account, side, amount_minor, currency}],
  settlement_day (``<psp>#<YYYY-MM-DD>``, index ``by_settlement_day``), booked_at,
  in_account_totals; a refund, chargeback or reversal (``TXN#<kind>:<id>``, see
  :meth:`LedgerRepository.adjustment_items`) carries ``modification_settlement_day`` instead
  (``<psp>#<YYYY-MM-DD>``, the sparse index ``by_modification_day``, sort key ``txn_id``)
* totals shard ``TOTALS#<shard>`` / ``CCY#<currency>``: debits_minor, credits_minor, transactions
* account shard ``ACCOUNT#<account>#<shard>`` / ``CCY#<currency>``: account, currency, debits_minor,
  credits_minor, transactions, for every account of the chart (``payments.accounts.chart``: the
  account's name is ``<kind>:<owner>``, e.g. ``seller_pending:seller_books``): a seller's ledger
  projection, and each platform account's balance, without a scan

The transaction id is derived from the payment order id, so appending is a
conditional put: a retry fails the condition and appends nothing. The same
``TransactWriteItems`` adds to a totals shard (the trial balance without a scan)
and to a shard of each of its accounts' totals (what reconciliation's three-way
check compares each wallet with, and the trial balance's platform accounts, read
by key), and sets ``ledger_updated`` on the order. All or nothing: the totals move exactly when the transaction is appended.
Shards keep a hot seller from making one item a write hotspot; both kinds of
totals are checked against the transactions by ``payments verify``.

In code a transaction is a :class:`LedgerTransaction` of :class:`Posting` (an
:class:`~payments.accounts.chart.Account`, a :class:`Side`, :class:`~payments.kernel.money.Money`) that
cannot be built unbalanced nor name an account outside the chart; stored, its postings are the plain
maps above, each account by its name. A charge: debit ``psp_receivable`` the gross, credit
``seller_pending`` the net and ``commission_revenue`` the commission fixed on the order; money back
debits ``seller_available`` (a refund also ``commission_revenue``, its share of the commission); a
settlement file moves settled nets from ``seller_pending`` to ``seller_available`` and books the PSP's
fees (:mod:`payments.accounts.settlement`).

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
from payments.accounts.chart import Account, AccountKind, NormalSide
from payments.accounts.wallet import SellerBalance
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
    """One line of a ledger transaction: ``amount`` (positive) on one ``side`` of an ``account`` of the
    chart (:class:`~payments.accounts.chart.Account`; stored as its name, ``str(account)``). A stored name
    given instead of an :class:`Account` is read with :meth:`Account.parse` (a name outside the chart raises)."""

    account: Account
    side: Side
    amount: Money

    def __post_init__(self) -> None:
        given: object = self.account
        if isinstance(given, str):  # a stored name: read back into the chart
            object.__setattr__(self, "account", Account.parse(given))
        elif not isinstance(given, Account):
            raise UnbalancedTransaction(f"posting account must be an account of the chart: {self.account!r}")
        if not isinstance(self.side, Side):
            raise UnbalancedTransaction(f"posting side must be DEBIT or CREDIT, got {self.side!r}")
        if not isinstance(self.amount, Money) or not self.amount.is_positive():
            raise UnbalancedTransaction(f"posting amount must be positive Money: {self.amount!r}")

    def to_item(self) -> dict[str, Any]:
        """The stored form: ``{account, side, amount_minor, currency}``, the account by its name."""
        amount = self.amount
        return {
            "account": str(self.account),
            "side": self.side.value,
            "amount_minor": amount.minor,
            "currency": amount.currency,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Posting:
        """A stored posting read back; anything that is not a valid posting raises UnbalancedTransaction."""
        try:
            return cls(
                Account.parse(item["account"]), Side(item["side"]), Money(item["amount_minor"], item["currency"])
            )
        except (KeyError, ValueError, InvariantViolation) as err:  # InvalidAmount is a ValueError, so is a bad Side
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
    def transfer(cls, *, debit: Account, credit: Account, amount: Money) -> LedgerTransaction:
        """``amount`` debited to one account and credited to another: the two-posting transaction."""
        return cls((Posting(debit, Side.DEBIT, amount), Posting(credit, Side.CREDIT, amount)))

    @classmethod
    def from_items(cls, items: Iterable[dict[str, Any]]) -> LedgerTransaction:
        return cls(tuple(Posting.from_item(item) for item in items))

    def to_items(self) -> list[dict[str, Any]]:
        """The stored ``postings`` attribute, byte-compatible with what was always written."""
        return [posting.to_item() for posting in self.postings]


def account_totals_pk(account: Account, shard: int) -> str:
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

    def payin_transaction(self, order: OrderRecord) -> LedgerTransaction:
        """The charge's transaction: debit the PSP receivable the gross, credit the seller's pending the
        net and the platform's commission revenue the commission (no posting when it is zero)."""
        postings = [
            Posting(Account.psp_receivable(self.psp), Side.DEBIT, order.money),
            Posting(Account.seller_pending(order.seller_account), Side.CREDIT, order.net),
        ]
        if order.commission.is_positive():
            postings.append(Posting(Account.commission_revenue(), Side.CREDIT, order.commission))
        return LedgerTransaction.of(postings)

    def append_payin(self, order: OrderRecord) -> AppendResult:
        """Book a successful charge (:meth:`payin_transaction`), with the commission fixed on the order."""
        if order.status is not OrderStatus.SUCCESS or not order.psp_reference or not order.charged_at:
            raise InvariantViolation(f"order {order.payment_order_id} is not a completed charge; nothing to book")
        txn_id = f"payin:{order.payment_order_id}"
        txn = self.payin_transaction(order)
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
            "commission_minor": order.commission_minor,
            "postings": txn.to_items(),
            "settlement_day": f"{self.psp}#{clock.day_of(order.charged_at)}",
            "charged_at": order.charged_at,
            "booked_at": clock.now_iso(),
            # counted in the account totals (by this very transaction)
            "in_account_totals": True,
        }
        refusal = transact_write(
            self.ddb,
            [
                *self._booked(item, txn, self._shard(order.payment_order_id)),
                self.payments.order_flag_update(order.payment_order_id, "ledger_updated"),
            ],
        )
        if refusal is not None:
            if not cancelled_by_condition(refusal, 0):
                raise refusal
            existing = self.find_transaction(order.payment_order_id)
            if existing is None or (
                existing["amount_minor"],
                existing["currency"],
                existing["psp_reference"],
                existing.get("commission_minor", 0),
            ) != (order.amount_minor, order.currency, order.psp_reference, order.commission_minor):
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
        commission_share: Money | None = None,
    ) -> list[TransactWriteItemTypeDef]:
        """The TransactWriteItems items of one balanced transaction that gives money back: a refund
        credits the PSP receivable ``amount`` and debits the seller's available the rest of
        ``commission_share`` (the commission it gives back, debited to the platform's commission
        revenue); a chargeback or second chargeback debits the seller's available in full; a
        chargeback reversal (``to_seller``) credits it back. The transaction item ``TXN#<txn_id>``
        is put on ``attribute_not_exists``, with the totals and the account totals, in the caller's
        transaction: once, or not at all. Its ``kind`` tells it from the pay-in (``PAYIN``); it has
        no ``settlement_day`` (the settlement index lists charges) but a
        ``modification_settlement_day`` (``<psp>#<day>``, the sparse index ``by_modification_day``):
        reconciliation lists the day's refunds, chargebacks and reversals with one Query."""
        if amount.currency != order.currency:
            raise InvariantViolation(f"{kind} {txn_id} of {amount} on an order in {order.currency}")
        share = commission_share or Money.zero(amount.currency)
        if share.minor < 0 or share > amount or (share.minor and to_seller):
            raise InvariantViolation(f"{kind} {txn_id} of {amount} cannot give back {share} of commission")
        receivable = Account.psp_receivable(self.psp)
        available = Account.seller_available(order.seller_account)
        if to_seller:
            txn = LedgerTransaction.transfer(debit=receivable, credit=available, amount=amount)
        else:
            postings = [Posting(receivable, Side.CREDIT, amount)]
            if (amount - share).is_positive():
                postings.append(Posting(available, Side.DEBIT, amount - share))
            if share.is_positive():
                postings.append(Posting(Account.commission_revenue(), Side.DEBIT, share))
            txn = LedgerTransaction.of(postings)
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
            "commission_minor": share.minor,
            "postings": txn.to_items(),
            "modification_day": day,
            "modification_settlement_day": f"{self.psp}#{day}",
            "booked_at": now,
            "in_account_totals": True,
        }
        return self._booked(item, txn, self._shard(txn_id))

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
        return self._booked(item, txn, self._shard(txn_id))

    def _booked(self, item: dict[str, Any], txn: LedgerTransaction, shard: int) -> list[TransactWriteItemTypeDef]:
        """The transaction item put on ``attribute_not_exists`` (first: a caller tells a retry by the
        cancellation of item 0), its debits added to a totals shard, and each account's postings added
        to that account's totals shard: the whole booking, or none of it."""
        debits = sum(
            (p.amount for p in txn.postings if p.side is Side.DEBIT), Money.zero(txn.postings[0].amount.currency)
        )
        return [
            put_new(self.table, item),
            self._totals_update(shard, debits),
            *(
                self._account_totals_update(account, shard, credits=sides[Side.CREDIT], debits=sides[Side.DEBIT])
                for account, sides in sorted(_sides_by_account(txn).items())
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
        self, account: Account, shard: int, *, credits: Money, debits: Money
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
                        ":account": str(account),
                    }
                ),
            }
        }

    def count_in_account_totals(self, txn: dict[str, Any]) -> bool:
        """Add a transaction booked before the account totals existed to them, exactly once.

        The transaction's ``in_account_totals`` flag is set in the same TransactWriteItems,
        conditional on its absence: a second run, a racing run, or a transaction appended
        by the current code (flag set at append) adds nothing. Returns whether it was added now.
        """
        sums = _sides_by_account(LedgerTransaction.from_items(txn["postings"]))
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
                    for account, sides in sorted(sums.items())
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

    def seller_totals_of(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        """(seller, currency) -> the net credits of the seller's three payable accounts (pending,
        available, in transit) in that currency, for these sellers only: their totals shards read by
        key (BatchGetItem)."""
        keys = [
            {"pk": account_totals_pk(Account(kind, seller), shard), "sk": f"CCY#{ccy}"}
            for seller, ccy in sorted(accounts)
            for kind in PAYABLE_KINDS
            for shard in range(self.shards)
        ]
        net: dict[tuple[str, str], dict[AccountKind, int]] = {key: {} for key in accounts}
        for item in batch_get(self.ddb, self.table, keys):
            account = Account.parse(item["account"])
            parts = net[(account.owner, item["currency"])]
            parts[account.kind] = (
                parts.get(account.kind, 0) + item.get("credits_minor", 0) - item.get("debits_minor", 0)
            )
        return {key: SellerBalance.of_kinds(parts) for key, parts in net.items()}

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

    def all_account_totals(self) -> dict[tuple[Account, str], int]:
        """(account, currency) -> net credits, over every account's totals shards (one scan)."""
        net: dict[tuple[Account, str], int] = defaultdict(int)
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["pk"].startswith("ACCOUNT#"):
                account = Account.parse(item["account"])
                net[(account, item["currency"])] += item.get("credits_minor", 0) - item.get("debits_minor", 0)
        return dict(net)

    def platform_balances(self, currencies: set[str]) -> dict[tuple[Account, str], int]:
        """(account, currency) -> balance on its normal side, for the platform's own accounts (the PSP
        receivable, the bank, commission revenue, PSP fees, dispute losses) in these currencies: their
        totals shards read by key (BatchGetItem), no scan. Accounts never posted to are left out."""
        accounts = [
            Account.psp_receivable(self.psp),
            Account.bank(),
            Account.commission_revenue(),
            Account.psp_fees(self.psp),
            Account.dispute_losses(),
        ]
        keys = [
            {"pk": account_totals_pk(account, shard), "sk": f"CCY#{ccy}"}
            for account in accounts
            for ccy in sorted(currencies)
            for shard in range(self.shards)
        ]
        net: dict[tuple[Account, str], int] = defaultdict(int)
        for item in batch_get(self.ddb, self.table, keys):
            net[(Account.parse(item["account"]), item["currency"])] += item.get("credits_minor", 0) - item.get(
                "debits_minor", 0
            )
        return {
            (account, ccy): value if account.kind.normal_side is NormalSide.CREDIT else -value
            for (account, ccy), value in sorted(net.items())
        }

    def account_balances(self) -> dict[tuple[Account, str], int]:
        """(account, currency) -> its balance on its normal side (an asset's or expense's debits minus
        credits, a liability's or revenue's credits minus debits), over every account's totals: what the
        trial balance shows per account (the platform's commission revenue and PSP fees among them)."""
        return {
            (account, ccy): net if account.kind.normal_side is NormalSide.CREDIT else -net
            for (account, ccy), net in sorted(self.all_account_totals().items())
        }


PAYABLE_KINDS = (AccountKind.SELLER_PENDING, AccountKind.SELLER_AVAILABLE, AccountKind.PAYOUTS_IN_TRANSIT)


def _sides_by_account(txn: LedgerTransaction) -> dict[Account, dict[Side, Money]]:
    """Each account's debits and credits in one transaction (one currency per account)."""
    sums: dict[Account, dict[Side, Money]] = {}
    for posting in txn.postings:
        zero = Money.zero(posting.amount.currency)
        sides = sums.setdefault(posting.account, {Side.CREDIT: zero, Side.DEBIT: zero})
        sides[posting.side] += posting.amount
    return sums
