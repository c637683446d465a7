"""WalletRepository: a seller is credited exactly once per successful order (payments/accounts/wallet.py)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from payments.accounts.wallet import WalletRepository, shard_of
from payments.kernel.errors import InvariantViolation
from payments.payin.status import OrderStatus
from tests.unit.conftest import Repos, store_checkout, succeed


def _wallet_items(ddb: Any) -> list[dict[str, Any]]:
    return ddb.scan(TableName="wallets")["Items"]


def test_crediting_the_same_order_twice_credits_once(repos: Repos, ddb: Any) -> None:
    # Given a successful order of 19.99 USD for seller_books
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    order = succeed(repos.payments, "po_1")
    # When the wallet step runs twice (a retry)
    first = repos.wallets.credit(order)
    second = repos.wallets.credit(repos.payments.get_order("po_1"))
    # Then the first applies, the second does not, and the balance holds the amount once
    assert (first.applied, second.applied) == (True, False)
    assert first.shard == second.shard == shard_of("po_1", 4)
    assert repos.wallets.balances("seller_books") == {"USD": 1999}
    assert repos.payments.get_order("po_1").wallet_updated is True
    marker = repos.wallets.find_credit("po_1")
    assert marker is not None
    assert (marker["seller_account"], marker["currency"], marker["amount_minor"]) == ("seller_books", "USD", 1999)
    assert len(_wallet_items(ddb)) == 2  # one marker, one balance shard


@pytest.mark.parametrize("status", [OrderStatus.NOT_STARTED, OrderStatus.EXECUTING, OrderStatus.FAILED])
def test_a_non_successful_order_never_credits_a_wallet(repos: Repos, ddb: Any, status: OrderStatus) -> None:
    # Given an order that is not SUCCESS
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    if status is not OrderStatus.NOT_STARTED:
        repos.payments.move_order(
            "po_1", status, failure_reason="card_declined" if status is OrderStatus.FAILED else None
        )
    order = repos.payments.get_order("po_1")
    # When the wallet is asked to credit it
    with pytest.raises(InvariantViolation):
        repos.wallets.credit(order)
    # Then nothing is written
    assert _wallet_items(ddb) == []
    assert repos.payments.get_order("po_1").wallet_updated is False


def test_a_retry_that_disagrees_with_the_stored_credit_is_an_invariant_violation(repos: Repos) -> None:
    # Given an order credited for 19.99
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    order = succeed(repos.payments, "po_1")
    repos.wallets.credit(order)
    # When a "retry" arrives with another amount
    with pytest.raises(InvariantViolation):
        repos.wallets.credit(order.model_copy(update={"amount_minor": 2999}))
    # Then the balance is unchanged
    assert repos.wallets.balances("seller_books") == {"USD": 1999}


def test_a_hot_seller_is_spread_over_several_shards_and_balances_sum_them(repos: Repos, ddb: Any) -> None:
    # Given 12 successful orders of one seller, in two currencies
    orders = [(f"po_{i}", "seller_hot", 100 + i, "USD" if i % 4 else "EUR") for i in range(12)]
    store_checkout(repos.payments, "chk_hot", orders)
    # When each is credited
    shards = {repos.wallets.credit(succeed(repos.payments, po)).shard for po, *_ in orders}
    # Then more than one of the 4 shards took writes
    assert len(shards) > 1 and shards <= {0, 1, 2, 3}
    balance_keys = {i["pk"]["S"] for i in _wallet_items(ddb) if i["pk"]["S"].startswith("WALLET#")}
    assert len(balance_keys) > 1
    # and the balance is the exact sum per currency over all shards (EUR: 3 orders, USD: 9 orders)
    assert repos.wallets.balances("seller_hot") == {"EUR": 312, "USD": 954}
    per_shard: dict[str, int] = defaultdict(int)
    for item in _wallet_items(ddb):
        if item["pk"]["S"].startswith("WALLET#"):
            per_shard[item["currency"]["S"]] += int(item["balance_minor"]["N"])
    assert dict(per_shard) == {"EUR": 312, "USD": 954}


def test_shard_of_is_stable_and_within_range() -> None:
    # Given an order id / When sharded repeatedly / Then the same shard in [0, n)
    assert {shard_of("po_1", 8) for _ in range(5)} == {shard_of("po_1", 8)}
    assert all(0 <= shard_of(f"po_{i}", 8) < 8 for i in range(200))
    assert len({shard_of(f"po_{i}", 8) for i in range(200)}) == 8
    assert shard_of("po_1", 1) == 0


def test_a_single_shard_wallet_keeps_one_balance_item(repos: Repos, ddb: Any) -> None:
    # Given a wallet repository with one shard
    wallets = WalletRepository(shards=1, payments=repos.payments)
    store_checkout(repos.payments, "chk_1", [("po_1", "s", 1, "USD"), ("po_2", "s", 2, "USD")])
    # When two orders are credited
    wallets.credit(succeed(repos.payments, "po_1"))
    wallets.credit(succeed(repos.payments, "po_2"))
    # Then one balance item holds 3
    assert wallets.balances("s") == {"USD": 3}
    assert sorted(i["pk"]["S"] for i in _wallet_items(ddb) if i["pk"]["S"].startswith("WALLET#")) == ["WALLET#s#0"]


def test_balances_of_an_unknown_seller_are_empty(repos: Repos) -> None:
    assert repos.wallets.balances("nobody") == {}
