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

from payments.repositories.ledger import LedgerRepository, seller_account_id
from payments.repositories.wallet import WalletRepository


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
    def wallet_balances(self, seller_account: str) -> dict[str, int]: ...

    def ledger_projection(self, sellers: set[str]) -> dict[str, dict[str, int]]:
        """seller -> currency -> net credits of ``seller:<id>`` in the ledger."""
        ...


class DynamoBalanceSource:
    """Wallets from the wallets table; the ledger side by scanning ledger postings.

    The scan reads the whole ledger table once per reconciliation: fine at the
    current scale, linear in the ledger's size. The scalable replacement is a
    per-seller running total maintained in the ledger's append transaction (like
    the trial-balance shards), read by key.
    """

    def __init__(self, wallets: WalletRepository | None = None, ledger: LedgerRepository | None = None):
        self.wallets = wallets or WalletRepository()
        self.ledger = ledger or LedgerRepository()

    def wallet_balances(self, seller_account: str) -> dict[str, int]:
        return self.wallets.balances(seller_account)

    def ledger_projection(self, sellers: set[str]) -> dict[str, dict[str, int]]:
        accounts = {seller_account_id(s): s for s in sellers}
        totals: dict[str, dict[str, int]] = {s: defaultdict(int) for s in sellers}
        for txn in self.ledger.transactions():
            for posting in txn.get("postings", []):
                seller = accounts.get(posting["account"])
                if seller is not None:
                    sign = 1 if posting["side"] == "CREDIT" else -1
                    totals[seller][posting["currency"]] += sign * int(posting["amount_minor"])
        return {s: dict(c) for s, c in totals.items()}
