"""The three-way check reads the wallets and the ledger one after the other: a settlement that commits between
the two reads (another delivery of the same file settling its charges) must not be reported as a difference,
and a difference that stays must be."""

from __future__ import annotations

import pytest

from payments.accounts.wallet import SellerBalance
from payments.reconciliation import service
from payments.reconciliation.service import three_way

ACCOUNT = ("seller_034", "EUR")
BEFORE = SellerBalance(pending=8004, available=10609, in_transit=0)
AFTER = SellerBalance(pending=0, available=18613, in_transit=0)


class Books:
    """Wallets and ledger that move from BEFORE to AFTER in one transaction, at a chosen read."""

    def __init__(self, settle_at_read: int, wallet_drift: int = 0):
        self.reads = 0
        self.settle_at_read = settle_at_read
        self.wallet_drift = wallet_drift

    def _now(self) -> SellerBalance:
        self.reads += 1
        return AFTER if self.reads >= self.settle_at_read else BEFORE

    def ledger_projection(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        return {ACCOUNT: self._now()}

    def wallet_balances(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        parts = self._now()
        return {ACCOUNT: parts._replace(pending=parts.pending + self.wallet_drift)}


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "CONSISTENT_READ_PAUSE_S", 0.0)


def test_a_settlement_committing_between_the_reads_is_not_a_difference() -> None:
    # Given books that settle the charge right after the ledger was read (ledger BEFORE, wallet AFTER)
    books = Books(settle_at_read=2)
    # When the three-way check runs
    checked = three_way({ACCOUNT}, False, books)
    # Then it read again once the ledger stopped moving, and found the books agree
    assert checked["differences"] == [] and books.reads > 2


def test_a_difference_that_stays_is_reported_part_by_part() -> None:
    # Given a wallet whose pending is 1.00 above the ledger's, whatever the moment
    books = Books(settle_at_read=10**9, wallet_drift=100)
    # When the three-way check runs
    checked = three_way({ACCOUNT}, False, books)
    # Then the pending part is reported, with both amounts
    assert [(d["part"], d["wallet_amount"], d["ledger_amount"]) for d in checked["differences"]] == [
        ("pending", "81.04", "80.04")
    ]
