"""Payouts against moto: the reservation (one transaction: the payout, available >= amount, the ledger), and
each bank outcome applied once, with its ledger transaction and its balance move."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from payments.accounts import balances
from payments.accounts.balances import balance_key, move_update
from payments.accounts.chart import Account
from payments.accounts.ledger import LedgerRepository
from payments.kernel.config import settings
from payments.kernel.dynamo import get_item, transact_write
from payments.kernel.errors import Conflict
from payments.kernel.money import Money
from payments.payouts.accounts import PayoutAccountRequest, PayoutAccountsRepository, register
from payments.payouts.logic import fingerprint, new_payout
from payments.payouts.outcomes import Applied, PayoutOutcomes, PayoutStatus
from payments.payouts.repository import PayoutExceedsAvailable, PayoutsRepository

SELLER = "seller_books"
IBAN = "DE89370400440532013000"


def seed_available(ddb: Any, seller: str, minor: int, currency: str = "EUR") -> None:
    """Available money as the balances' own writer would leave it (the settlement path is another's)."""
    assert (
        transact_write(ddb, [move_update(settings().wallets_table, seller, available=Money(minor, currency))]) is None
    )


def balance(ddb: Any, seller: str = SELLER, currency: str = "EUR") -> tuple[int, int]:
    item = get_item(ddb, settings().wallets_table, balance_key(seller, currency)) or {}
    return item.get("available_minor", 0), item.get("in_transit_minor", 0)


def account_net(ddb: Any, account: str, currency: str = "EUR") -> int:
    """Net credits of a ledger account over its totals shards."""
    return LedgerRepository(client=ddb).all_account_totals().get((Account.parse(account), currency), 0)


def payout(payout_id: str, minor: int, seller: str = SELLER, key: str = "k") -> Any:
    request = {"payout_id": payout_id, "amount": minor}
    return new_payout(
        payout_id,
        seller,
        Money(minor, "EUR"),
        origin="api",
        idempotency_key=key,
        request_fingerprint=fingerprint(key, request),
        source="api",
    )


@pytest.fixture()
def repo(kms: Any) -> PayoutsRepository:
    register(
        SELLER,
        PayoutAccountRequest(iban=IBAN, account_holder="Books Ltd", currency="EUR"),
        PayoutAccountsRepository(),
    )
    return PayoutsRepository()


def test_the_reservation_moves_available_to_in_transit_and_books_it(repo, ddb):
    seed_available(ddb, SELLER, 10_000)
    reserved = repo.reserve(payout("pt_1", 6_000))
    assert reserved.created and reserved.payout.status is PayoutStatus.PENDING
    assert balance(ddb) == (4_000, 6_000)
    txn = LedgerRepository(client=ddb).find_transaction("payout:pt_1:reserve")
    assert txn is not None and txn["kind"] == "PAYOUT_RESERVED"
    assert account_net(ddb, f"seller_available:{SELLER}") == -6_000
    assert account_net(ddb, f"payouts_in_transit:{SELLER}") == 6_000
    # the same payout again: the stored one, nothing reserved twice
    again = repo.reserve(payout("pt_1", 6_000))
    assert not again.created and balance(ddb) == (4_000, 6_000)
    # the same id for another payout: a conflict, nothing written
    with pytest.raises(Conflict):
        repo.reserve(payout("pt_1", 1_000, key="other"))
    assert balance(ddb) == (4_000, 6_000)


def test_more_than_available_is_refused_saying_how_much_is_available(repo, ddb):
    seed_available(ddb, SELLER, 5_000)
    with pytest.raises(PayoutExceedsAvailable) as refused:
        repo.reserve(payout("pt_1", 5_001))
    assert refused.value.available == Money(5_000, "EUR")
    assert repo.find("pt_1") is None and balance(ddb) == (5_000, 0)


def test_a_negative_available_blocks_every_payout(repo, ddb):
    seed_available(ddb, SELLER, -300)
    with pytest.raises(PayoutExceedsAvailable) as refused:
        repo.reserve(payout("pt_1", 1))
    assert refused.value.available == Money(-300, "EUR")


class OneTransactionAtATime:
    """The DynamoDB client with moto's in-process backend made atomic per transaction, as DynamoDB is (moto's
    own backend is not thread-safe: two threads in one transaction corrupt its state). The requests still
    race: which one comes first, and every read in between, is the threads' order."""

    def __init__(self, client: Any):
        self._client, self._lock = client, threading.Lock()

    def transact_write_items(self, **request: Any) -> Any:
        with self._lock:
            return self._client.transact_write_items(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def concurrent_reservations(repo: PayoutsRepository, n: int = 20, minor: int = 6_000) -> list[str]:
    repo = PayoutsRepository(client=OneTransactionAtATime(repo.ddb))

    def attempt(i: int) -> str:
        try:
            repo.reserve(payout(f"pt_{i}", minor, key=f"k{i}"))
        except PayoutExceedsAvailable:
            return "refused"
        return "reserved"

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


def assert_never_overdrawn(outcomes: list[str], ddb: Any) -> None:
    available, in_transit = balance(ddb)
    assert outcomes.count("reserved") == 1 and outcomes.count("refused") == 19, outcomes
    assert (available, in_transit) == (4_000, 6_000)


def test_twenty_concurrent_payouts_of_60_on_100_available_reserve_exactly_one(repo, ddb):
    seed_available(ddb, SELLER, 10_000)
    assert_never_overdrawn(concurrent_reservations(repo), ddb)


def test_without_the_reservations_condition_the_concurrent_payouts_overdraw(repo, ddb, monkeypatch):
    # the proof that the condition is what holds invariant 10: the same update without it overdraws
    seed_available(ddb, SELLER, 10_000)
    original = balances.reserve_update

    def unconditional(table: str, seller: str, amount: Money) -> Any:
        update = original(table, seller, amount)
        del update["Update"]["ConditionExpression"]
        return update

    monkeypatch.setattr("payments.payouts.repository.reserve_update", unconditional)
    outcomes = concurrent_reservations(repo)
    with pytest.raises(AssertionError):
        assert_never_overdrawn(outcomes, ddb)
    assert balance(ddb)[0] < 0  # overdrawn: what the real condition prevents


def reserved_and_submitted(repo: PayoutsRepository, ddb: Any, payout_id: str = "pt_1") -> None:
    seed_available(ddb, SELLER, 10_000)
    repo.reserve(payout(payout_id, 6_000))
    mac = PayoutAccountsRepository().get(SELLER, "EUR").iban_mac  # type: ignore[union-attr]
    assert repo.mark_submitted(payout_id, msg_id="M1", iban_mac=mac, source="run:t").applied is Applied.APPLIED


def test_paid_moves_in_transit_to_the_bank_once(repo, ddb):
    outcomes: PayoutOutcomes = repo  # the protocol the bank reconciliation calls
    reserved_and_submitted(repo, ddb)
    eur = Money(6_000, "EUR")
    first = outcomes.mark_paid("pt_1", amount=eur, booked_on="2026-12-07", source="camt053#L1")
    second = outcomes.mark_paid("pt_1", amount=eur, booked_on="2026-12-07", source="camt053#L1")
    assert (first.applied, second.applied) == (Applied.APPLIED, Applied.ALREADY)
    assert balance(ddb) == (4_000, 0)
    assert account_net(ddb, "bank:platform") == 6_000 and account_net(ddb, f"payouts_in_transit:{SELLER}") == 0
    record = repo.get("pt_1")
    assert record.status is PayoutStatus.PAID and [h.status for h in record.history] == [
        PayoutStatus.PENDING,
        PayoutStatus.SUBMITTED,
        PayoutStatus.PAID,
    ]


def test_failed_gives_the_money_back_to_available_once(repo, ddb):
    reserved_and_submitted(repo, ddb)
    first = repo.mark_failed("pt_1", reason="AC01", source="pain002#L3")
    second = repo.mark_failed("pt_1", reason="AC01", source="pain002#L3")
    assert (first.applied, second.applied) == (Applied.APPLIED, Applied.ALREADY)
    assert balance(ddb) == (10_000, 0)
    assert repo.get("pt_1").failure_reason == "AC01"
    assert account_net(ddb, f"seller_available:{SELLER}") == 0


def test_returned_gives_back_to_available_and_marks_the_account_invalid(repo, ddb):
    reserved_and_submitted(repo, ddb)
    eur = Money(6_000, "EUR")
    repo.mark_paid("pt_1", amount=eur, booked_on="2026-12-07", source="camt053#L1")
    first = repo.mark_returned("pt_1", amount=eur, reason="AC04", source="camt054#L2")
    second = repo.mark_returned("pt_1", amount=eur, reason="AC04", source="camt054#L2")
    assert (first.applied, second.applied) == (Applied.APPLIED, Applied.ALREADY)
    assert balance(ddb) == (10_000, 0)
    assert account_net(ddb, "bank:platform") == 0
    account = PayoutAccountsRepository().get(SELLER, "EUR")
    assert account is not None and not account.valid and "AC04" in (account.invalid_reason or "")


def test_out_of_order_unknown_and_other_amounts_change_nothing(repo, ddb):
    reserved_and_submitted(repo, ddb)
    eur = Money(6_000, "EUR")
    assert repo.mark_returned("pt_1", amount=eur, reason="AC04", source="s").applied is Applied.CONFLICT
    assert repo.mark_paid("nope", amount=eur, booked_on="d", source="s").applied is Applied.UNKNOWN
    other = repo.mark_paid("pt_1", amount=Money(5_999, "EUR"), booked_on="d", source="s")
    assert other.applied is Applied.AMOUNT_DIFFERS
    assert (
        repo.mark_paid("pt_1", amount=Money(6_000, "USD"), booked_on="d", source="s").applied is Applied.AMOUNT_DIFFERS
    )
    repo.mark_failed("pt_1", reason="AC01", source="s")
    assert repo.mark_paid("pt_1", amount=eur, booked_on="d", source="s").applied is Applied.CONFLICT
    assert repo.mark_submitted("pt_1", msg_id="M1", iban_mac="mac", source="s").applied is Applied.CONFLICT
    assert balance(ddb) == (10_000, 0) and repo.get("pt_1").status is PayoutStatus.FAILED


def test_submitted_again_in_another_file_is_a_conflict(repo, ddb):
    reserved_and_submitted(repo, ddb)
    mac = repo.get("pt_1").iban_mac or ""
    assert repo.mark_submitted("pt_1", msg_id="M1", iban_mac=mac, source="s").applied is Applied.ALREADY
    assert repo.mark_submitted("pt_1", msg_id="M2", iban_mac=mac, source="s").applied is Applied.CONFLICT
