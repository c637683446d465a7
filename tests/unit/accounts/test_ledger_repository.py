"""LedgerRepository: append-only, balanced, exactly once (payments/accounts/ledger.py)."""

from __future__ import annotations

from typing import Any

import pytest

from payments.accounts.chart import Account
from payments.accounts.ledger import CREDIT, DEBIT, assert_balanced
from payments.accounts.wallet import SellerBalance
from payments.kernel.errors import InvariantViolation
from payments.payin.status import OrderStatus
from tests.unit.conftest import Repos, store_checkout, succeed


def _txn_items(ddb: Any) -> list[dict[str, Any]]:
    return [i for i in ddb.scan(TableName="ledger")["Items"] if i["sk"]["S"] == "TXN"]


def test_appending_the_same_payin_twice_books_one_transaction(repos: Repos, ddb: Any) -> None:
    # Given a successful order
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    order = succeed(repos.payments, "po_1", psp_reference="psp_abc", charged_at="2026-11-30T23:59:59.999Z")
    # When the ledger step runs twice
    first = repos.ledger.append_payin(order)
    second = repos.ledger.append_payin(repos.payments.get_order("po_1"))
    # Then one transaction exists, with the id derived from the order
    assert (first.txn_id, first.appended) == ("payin:po_1", True)
    assert (second.txn_id, second.appended) == ("payin:po_1", False)
    assert len(_txn_items(ddb)) == 1
    txn = repos.ledger.find_transaction("po_1")
    assert txn is not None
    assert txn["postings"] == [
        {"account": "psp_receivable:simulated-psp", "side": DEBIT, "amount_minor": 1999, "currency": "USD"},
        {"account": "seller_pending:seller_books", "side": CREDIT, "amount_minor": 1999, "currency": "USD"},
    ]
    assert (txn["psp_reference"], txn["settlement_day"]) == ("psp_abc", "simulated-psp#2026-11-30")
    assert repos.payments.get_order("po_1").ledger_updated is True
    # and the trial balance counts it once, debits == credits
    assert repos.ledger.trial_balance() == {"USD": (1999, 1999)}


def test_trial_balance_sums_every_transaction_per_currency(repos: Repos) -> None:
    # Given successful orders in two currencies
    store_checkout(
        repos.payments,
        "chk_1",
        [("po_1", "a", 1999, "USD"), ("po_2", "b", 500, "USD"), ("po_3", "a", 1500, "JPY"), ("po_4", "c", 1250, "KWD")],
    )
    # When each is booked
    for po in ("po_1", "po_2", "po_3", "po_4"):
        repos.ledger.append_payin(succeed(repos.payments, po))
    # Then debits equal credits in every currency and equal the booked sums
    assert repos.ledger.trial_balance() == {"JPY": (1500, 1500), "KWD": (1250, 1250), "USD": (2499, 2499)}
    assert sorted(t["payment_order_id"] for t in repos.ledger.transactions()) == ["po_1", "po_2", "po_3", "po_4"]


def test_transactions_for_a_settlement_day_are_those_charged_that_utc_day(repos: Repos) -> None:
    store_checkout(repos.payments, "chk_1", [("po_1", "a", 1, "USD"), ("po_2", "a", 2, "USD")])
    repos.ledger.append_payin(succeed(repos.payments, "po_1", charged_at="2026-11-30T00:00:00.000Z"))
    repos.ledger.append_payin(succeed(repos.payments, "po_2", charged_at="2026-12-01T00:00:00.000Z"))
    assert [t["payment_order_id"] for t in repos.ledger.transactions_for_settlement_day("2026-11-30")] == ["po_1"]
    assert list(repos.ledger.transactions_for_settlement_day("2026-11-30", psp="adyen")) == []


@pytest.mark.parametrize("status", [OrderStatus.NOT_STARTED, OrderStatus.EXECUTING, OrderStatus.FAILED])
def test_only_a_completed_charge_is_booked(repos: Repos, ddb: Any, status: OrderStatus) -> None:
    # Given an order that is not a completed charge
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    if status is not OrderStatus.NOT_STARTED:
        repos.payments.move_order("po_1", status)
    # When booking is asked / Then it refuses and writes nothing
    with pytest.raises(InvariantViolation):
        repos.ledger.append_payin(repos.payments.get_order("po_1"))
    assert ddb.scan(TableName="ledger")["Items"] == []


def test_a_success_without_psp_reference_is_not_booked(repos: Repos) -> None:
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    order = succeed(repos.payments, "po_1").model_copy(update={"psp_reference": None})
    with pytest.raises(InvariantViolation):
        repos.ledger.append_payin(order)


def test_a_retry_that_disagrees_with_the_booked_transaction_is_an_invariant_violation(repos: Repos) -> None:
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    order = succeed(repos.payments, "po_1")
    repos.ledger.append_payin(order)
    with pytest.raises(InvariantViolation):
        repos.ledger.append_payin(order.model_copy(update={"psp_reference": "psp_other"}))
    assert repos.ledger.trial_balance() == {"USD": (1999, 1999)}


# --- assert_balanced ---------------------------------------------------------------------------------
def _p(side: str, amount: Any, currency: str = "USD", account: str = "seller_available:x") -> dict[str, Any]:
    return {"account": account, "side": side, "amount_minor": amount, "currency": currency}


def test_assert_balanced_accepts_balanced_transactions() -> None:
    # Given debits equal to credits per currency / When checked / Then no error
    assert_balanced([_p(DEBIT, 1999), _p(CREDIT, 1999)])
    assert_balanced([_p(DEBIT, 1000), _p(CREDIT, 600), _p(CREDIT, 400), _p(DEBIT, 5, "EUR"), _p(CREDIT, 5, "EUR")])


@pytest.mark.parametrize(
    "postings",
    [
        pytest.param([_p(DEBIT, 1999), _p(CREDIT, 1998)], id="unbalanced"),
        pytest.param([_p(DEBIT, 1999), _p(CREDIT, 1999, "EUR")], id="balanced-amounts-other-currency"),
        pytest.param([_p(DEBIT, 0), _p(CREDIT, 0)], id="zero"),
        pytest.param([_p(DEBIT, -5), _p(CREDIT, -5)], id="negative"),
        pytest.param([_p(DEBIT, 10), _p(CREDIT, 15), _p(CREDIT, -5)], id="negative-that-balances"),
        pytest.param([_p(DEBIT, 19.99), _p(CREDIT, 19.99)], id="float"),
        pytest.param([_p(DEBIT, 5)], id="single-posting"),
        pytest.param([], id="empty"),
        pytest.param([_p(DEBIT, 5), _p(DEBIT, 5)], id="debits-only"),
    ],
)
def test_assert_balanced_rejects_broken_transactions(postings: list[dict[str, Any]]) -> None:
    # Given postings that are unbalanced, not positive integers, or too few
    # When checked / Then an InvariantViolation is raised
    with pytest.raises(InvariantViolation):
        assert_balanced(postings)


# --- seller account running totals (what the three-way check reads by key) ------------------------
def _account_items(ddb: Any) -> list[dict[str, Any]]:
    return [i for i in ddb.scan(TableName="ledger")["Items"] if i["pk"]["S"].startswith("ACCOUNT#")]


def test_each_append_adds_its_credit_to_the_sellers_account_totals_once(repos: Repos, ddb: Any) -> None:
    # Given a hot seller with orders in two currencies and another seller
    orders = [(f"po_{i}", "seller_hot", 100 + i, "USD" if i % 3 else "EUR") for i in range(9)] + [
        ("po_x", "seller_x", 7, "USD")
    ]
    store_checkout(repos.payments, "chk_1", orders)
    # When every order is booked, and each booking is retried
    for po, *_ in orders:
        repos.ledger.append_payin(succeed(repos.payments, po))
        assert repos.ledger.append_payin(repos.payments.get_order(po)).appended is False
    # Then the totals read by key are the sums of the credits, each counted once
    accounts = {("seller_hot", "USD"), ("seller_hot", "EUR"), ("seller_x", "USD"), ("seller_none", "USD")}
    assert repos.ledger.seller_totals_of(accounts) == {
        ("seller_hot", "EUR"): SellerBalance(pending=100 + 103 + 106),
        ("seller_hot", "USD"): SellerBalance(pending=101 + 102 + 104 + 105 + 107 + 108),
        ("seller_x", "USD"): SellerBalance(pending=7),
        ("seller_none", "USD"): SellerBalance(),
    }
    # (each booking adds to two accounts: the seller's pending and the PSP receivable)
    assert sum(int(i["transactions"]["N"]) for i in _account_items(ddb)) == 2 * len(orders)
    # and the scan used by `payments verify` agrees
    receivable = Account.psp_receivable("simulated-psp")
    assert repos.ledger.all_account_totals() == {
        (Account.seller_pending("seller_hot"), "EUR"): 309,
        (Account.seller_pending("seller_hot"), "USD"): 627,
        (Account.seller_pending("seller_x"), "USD"): 7,
        (receivable, "EUR"): -309,
        (receivable, "USD"): -634,
    }


def test_a_refused_append_leaves_the_account_totals_untouched(repos: Repos, ddb: Any) -> None:
    # Given a booked order, and a retry that disagrees with it
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    order = succeed(repos.payments, "po_1")
    repos.ledger.append_payin(order)
    with pytest.raises(InvariantViolation):
        repos.ledger.append_payin(order.model_copy(update={"psp_reference": "psp_other"}))
    # Then the account totals moved with the one transaction only (same TransactWriteItems)
    assert repos.ledger.seller_totals_of({("seller_books", "USD")}) == {("seller_books", "USD"): SellerBalance(1999)}


def test_account_totals_of_many_sellers_are_read_in_batches_of_100_keys(repos: Repos) -> None:
    # Given 60 sellers (60 sellers x 3 payable accounts x 4 shards = 720 keys: eight BatchGetItem requests)
    orders = [(f"po_{i}", f"seller_{i}", 10 + i, "USD") for i in range(60)]
    store_checkout(repos.payments, "chk_1", orders)
    for po, *_ in orders:
        repos.ledger.append_payin(succeed(repos.payments, po))
    # When their totals are read / Then each seller has exactly its credit
    totals = repos.ledger.seller_totals_of({(f"seller_{i}", "USD") for i in range(60)})
    assert totals == {(f"seller_{i}", "USD"): SellerBalance(pending=10 + i) for i in range(60)}


def _as_booked_before_account_totals(ddb: Any) -> None:
    """The ledger as the code before the seller account totals wrote it: no ACCOUNT# items, no flag."""
    for item in _account_items(ddb):
        ddb.delete_item(TableName="ledger", Key={"pk": item["pk"], "sk": item["sk"]})
    for item in _txn_items(ddb):
        ddb.update_item(
            TableName="ledger", Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="REMOVE in_account_totals"
        )


def test_the_backfill_counts_each_old_transaction_exactly_once(repos: Repos, ddb: Any) -> None:
    # Given three transactions booked before the account totals existed
    store_checkout(
        repos.payments,
        "chk_1",
        [("po_1", "a", 100, "USD"), ("po_2", "a", 250, "USD"), ("po_3", "b", 7, "EUR"), ("po_4", "b", 9, "EUR")],
    )
    for po in ("po_1", "po_2", "po_3"):
        repos.ledger.append_payin(succeed(repos.payments, po))
    _as_booked_before_account_totals(ddb)
    assert repos.ledger.all_account_totals() == {}
    # When the backfill runs, a new transaction is booked, and the backfill runs again (an interrupted first run)
    assert repos.ledger.backfill_account_totals() == (3, 3)
    repos.ledger.append_payin(succeed(repos.payments, "po_4"))
    assert repos.ledger.backfill_account_totals() == (4, 0)
    # Then every transaction is counted once: old ones by the backfill, the new one by its append
    assert repos.ledger.all_account_totals() == {
        (Account.seller_pending("a"), "USD"): 350,
        (Account.seller_pending("b"), "EUR"): 16,
        (Account.psp_receivable("simulated-psp"), "USD"): -350,
        (Account.psp_receivable("simulated-psp"), "EUR"): -16,
    }
    assert sum(int(i["transactions"]["N"]) for i in _account_items(ddb)) == 2 * 4
    # and a racing second backfill of an already counted transaction adds nothing
    assert (
        repos.ledger.count_in_account_totals(repos.ledger.find_transaction("po_1") | {"in_account_totals": None})
        is False
    )
    assert repos.ledger.seller_totals_of({("a", "USD")}) == {("a", "USD"): SellerBalance(pending=350)}


def test_the_backfill_command_reports_what_it_added(repos: Repos, ddb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from payments.ops.cli import main

    store_checkout(repos.payments, "chk_1", [("po_1", "a", 100, "USD"), ("po_2", "a", 5, "USD")])
    for po in ("po_1", "po_2"):
        repos.ledger.append_payin(succeed(repos.payments, po))
    _as_booked_before_account_totals(ddb)
    assert main(["backfill-account-totals"]) == 0
    assert main(["backfill-account-totals"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2 ledger transactions read, 2 added to their seller account totals now, 0 already counted",
        "2 ledger transactions read, 0 added to their seller account totals now, 2 already counted",
    ]
    assert repos.ledger.seller_totals_of({("a", "USD")}) == {("a", "USD"): SellerBalance(pending=105)}
