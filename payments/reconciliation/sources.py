"""What the engine reads besides the file: the ledger, and the balances of the three-way check.

Both are small interfaces so that production feeds them from DynamoDB and the
benchmark and tests from memory, with the engine none the wiser.

:class:`LedgerSource` promises one thing the sorted-merge join relies on:
``day_entries`` yields a day's transactions **in ascending** ``psp_reference``
**order**. DynamoDB gives that for free: the ledger's ``by_settlement_day`` index
has ``psp_reference`` as its sort key, and a Query returns items in sort-key
order. The engine asserts the order as it consumes it.

The ledger's refunds, chargebacks and reversals (:class:`LedgerAdjustment`) come by day too
(``day_adjustments``: the sparse index ``by_modification_day``, in any order: the engine
matches them by key) and one by one by transaction id (``find_adjustment``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import SellerBalance, WalletRepository


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    psp_reference: str
    payment_order_id: str
    seller_account: str
    currency: str
    amount_minor: int
    charged_at: str  # ISO UTC
    #: the platform's commission on the charge (fixed on the order): the seller's net is the rest
    commission_minor: int = 0

    @property
    def net_minor(self) -> int:
        """What the charge credited the seller (its pending, until it is settled)."""
        return self.amount_minor - self.commission_minor

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        return cls(
            psp_reference=item["psp_reference"],
            payment_order_id=item["payment_order_id"],
            seller_account=item["seller_account"],
            currency=item["currency"],
            amount_minor=int(item["amount_minor"]),
            charged_at=item["charged_at"],
            commission_minor=int(item.get("commission_minor", 0)),
        )


#: ledger ``kind`` -> the record type of the settlement row that matches it
RECORD_TYPE_OF_KIND = {
    "REFUND": "Refunded",
    "CHARGEBACK": "Chargeback",
    "CHARGEBACK_REVERSED": "ChargebackReversed",
    "SECOND_CHARGEBACK": "SecondChargeback",
}


@dataclass(frozen=True, slots=True)
class LedgerAdjustment:
    """A refund, chargeback or chargeback reversal booked in the ledger (issue 18)."""

    txn_id: str  # refund:<refund_id>, chargeback:<dispute>, chargeback_reversed:<dispute>, second_chargeback:<dispute>
    record_type: str  # the settlement row it matches: Refunded, Chargeback, ChargebackReversed, SecondChargeback
    psp_reference: str  # the modification's own PSP reference ("" if the PSP gave none)
    original_psp_reference: str  # the payment's
    payment_order_id: str
    seller_account: str
    currency: str
    amount_minor: int
    booked_at: str  # ISO UTC

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerAdjustment | None:
        """None for a transaction that is not an adjustment (a pay-in)."""
        record_type = RECORD_TYPE_OF_KIND.get(item.get("kind", ""))
        if record_type is None:
            return None
        return cls(
            txn_id=item["txn_id"],
            record_type=record_type,
            psp_reference=item.get("psp_reference") or "",
            original_psp_reference=item.get("original_psp_reference") or "",
            payment_order_id=item["payment_order_id"],
            seller_account=item["seller_account"],
            currency=item["currency"],
            amount_minor=int(item["amount_minor"]),
            booked_at=item["booked_at"],
        )


class LedgerSource(Protocol):
    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        """The PSP's ledger transactions of a UTC day, ascending by ``psp_reference``."""
        ...

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        """One transaction by our payment order id (the settlement's Merchant Reference)."""
        ...

    def day_adjustments(self, day: str) -> Iterator[LedgerAdjustment]:
        """The refunds, chargebacks and reversals booked on a UTC day, in any order."""
        ...

    def find_adjustment(self, txn_id: str) -> LedgerAdjustment | None:
        """One refund, chargeback or reversal by its transaction id."""
        ...


class DynamoLedgerSource:
    """The ledger table through :class:`LedgerRepository` (index ``by_settlement_day``)."""

    def __init__(self, repository: LedgerRepository | None = None, psp: str | None = None):
        self.repository = repository or LedgerRepository()
        self.psp = psp

    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        for item in self.repository.transactions_for_settlement_day(day, psp=self.psp):
            yield LedgerEntry.from_item(item)

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        item = self.repository.find_transaction(payment_order_id)
        return None if item is None else LedgerEntry.from_item(item)

    def day_adjustments(self, day: str) -> Iterator[LedgerAdjustment]:
        for item in self.repository.adjustments_for_day(day, psp=self.psp):
            adjustment = LedgerAdjustment.from_item(item)
            if adjustment is not None:
                yield adjustment

    def find_adjustment(self, txn_id: str) -> LedgerAdjustment | None:
        item = self.repository.find_transaction(txn_id)  # the item is TXN#<txn_id>, as a pay-in's is TXN#<order>
        return None if item is None else LedgerAdjustment.from_item(item)


class InMemoryLedgerSource:
    """A ledger held in memory (benchmark, tests): sorted once per day on first use."""

    def __init__(self, entries: Iterable[LedgerEntry], adjustments: Iterable[LedgerAdjustment] = ()):
        self._by_day: dict[str, list[LedgerEntry]] = defaultdict(list)
        self._by_order: dict[str, LedgerEntry] = {}
        self._adjustments = {a.txn_id: a for a in adjustments}
        for entry in entries:
            self._by_day[entry.charged_at[:10]].append(entry)
            self._by_order[entry.payment_order_id] = entry
        for day_entries in self._by_day.values():
            day_entries.sort(key=lambda e: e.psp_reference)

    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        return iter(self._by_day.get(day, ()))

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        return self._by_order.get(payment_order_id)

    def day_adjustments(self, day: str) -> Iterator[LedgerAdjustment]:
        return (a for a in self._adjustments.values() if a.booked_at[:10] == day)

    def find_adjustment(self, txn_id: str) -> LedgerAdjustment | None:
        return self._adjustments.get(txn_id)


class BalanceSource(Protocol):
    """Both sides of the three-way check, for (seller, currency) accounts."""

    def wallet_balances(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        """(seller, currency) -> the wallet's pending, available and in transit."""
        ...

    def ledger_projection(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        """(seller, currency) -> net credits of the seller's ``seller_pending``, ``seller_available`` and
        ``payouts_in_transit`` accounts in the ledger."""
        ...


class DynamoBalanceSource:
    """Wallets from the wallets table; the ledger side from the seller accounts' running
    totals, which every ledger booking keeps (``ACCOUNT#<account>#<shard>``, the seller's payable accounts). Both are
    read by key (BatchGetItem): a file's check costs a request per ~100 shards, whatever the
    size of the ledger. ``payments verify`` checks those totals against the postings
    themselves (invariant 3), so the three-way check does not have to.
    """

    def __init__(self, wallets: WalletRepository | None = None, ledger: LedgerRepository | None = None):
        self.wallets = wallets or WalletRepository()
        self.ledger = ledger or LedgerRepository()

    def wallet_balances(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        return self.wallets.balances_of(accounts)

    def ledger_projection(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        return self.ledger.seller_totals_of(accounts)
