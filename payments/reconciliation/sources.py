"""What the engine reads besides the file: the ledger, and the balances of the three-way check.

Both are small interfaces so that production feeds them from DynamoDB and the
benchmark and tests from memory, with the engine none the wiser.

:class:`LedgerSource` promises one thing the sorted-merge join relies on:
``day_entries`` yields a day's transactions **in ascending** ``psp_reference``
**order**. DynamoDB gives that for free: the ledger's ``by_settlement_day`` index
has ``psp_reference`` as its sort key, and a Query returns items in sort-key
order. The engine asserts the order as it consumes it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    psp_reference: str
    payment_order_id: str
    seller_account: str
    currency: str
    amount_minor: int
    charged_at: str  # ISO UTC

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        return cls(
            psp_reference=item["psp_reference"],
            payment_order_id=item["payment_order_id"],
            seller_account=item["seller_account"],
            currency=item["currency"],
            amount_minor=int(item["amount_minor"]),
            charged_at=item["charged_at"],
        )


class LedgerSource(Protocol):
    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        """The PSP's ledger transactions of a UTC day, ascending by ``psp_reference``."""
        ...

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        """One transaction by our payment order id (the settlement's Merchant Reference)."""
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


class InMemoryLedgerSource:
    """A ledger held in memory (benchmark, tests): sorted once per day on first use."""

    def __init__(self, entries: Iterable[LedgerEntry]):
        self._by_day: dict[str, list[LedgerEntry]] = defaultdict(list)
        self._by_order: dict[str, LedgerEntry] = {}
        for entry in entries:
            self._by_day[entry.charged_at[:10]].append(entry)
            self._by_order[entry.payment_order_id] = entry
        for day_entries in self._by_day.values():
            day_entries.sort(key=lambda e: e.psp_reference)

    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        return iter(self._by_day.get(day, ()))

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        return self._by_order.get(payment_order_id)


class BalanceSource(Protocol):
    """Both sides of the three-way check, for (seller, currency) accounts."""

    def wallet_balances(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], int]: ...

    def ledger_projection(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(seller, currency) -> net credits of ``seller:<id>`` in the ledger."""
        ...


class DynamoBalanceSource:
    """Wallets from the wallets table; the ledger side from the seller accounts' running
    totals, which the ledger's append transaction keeps (``ACCOUNT#seller:<id>#<shard>``). Both are
    read by key (BatchGetItem): a file's check costs a request per ~100 shards, whatever the
    size of the ledger. ``payments verify`` checks those totals against the postings
    themselves (invariant 3), so the three-way check does not have to.
    """

    def __init__(self, wallets: WalletRepository | None = None, ledger: LedgerRepository | None = None):
        self.wallets = wallets or WalletRepository()
        self.ledger = ledger or LedgerRepository()

    def wallet_balances(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        return self.wallets.balances_of(accounts)

    def ledger_projection(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        return self.ledger.seller_totals_of(accounts)
