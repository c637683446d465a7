"""Postings and sides as types (payments/accounts/ledger.py): Side, Posting, LedgerTransaction.

A LedgerTransaction cannot exist unbalanced: the builder raises (an error, not an assert, so it
holds under ``python -O``). The stored ``postings`` attribute is the same as it always was."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.accounts.chart import Account
from payments.accounts.ledger import LedgerTransaction, Posting, Side, UnbalancedTransaction
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money
from tests.unit.conftest import Repos, store_checkout, succeed

positive = st.integers(min_value=1, max_value=10**13)
USD5 = Money(5, "USD")
A, B = Account.seller_available("a"), Account.psp_receivable("b")


def _debit(account: Account, amount: Money) -> Posting:
    return Posting(account, Side.DEBIT, amount)


def _credit(account: Account, amount: Money) -> Posting:
    return Posting(account, Side.CREDIT, amount)


def test_side_is_a_str_enum_equal_to_the_stored_strings() -> None:
    # Given the two sides / Then they are the very strings stored (existing items read the same)
    assert (Side.DEBIT, Side.CREDIT) == ("DEBIT", "CREDIT")
    assert Side("DEBIT") is Side.DEBIT
    with pytest.raises(ValueError):
        Side("debit")


def test_a_transfer_is_two_postings_stored_as_before() -> None:
    # Given 19.99 USD from the PSP receivable to a seller / When built and stored
    txn = LedgerTransaction.transfer(
        debit=Account.psp_receivable("simulated-psp"), credit=Account.seller_pending("s1"), amount=Money(1999, "USD")
    )
    # Then the stored form names each account of the chart by its name
    assert txn.to_items() == [
        {"account": "psp_receivable:simulated-psp", "side": "DEBIT", "amount_minor": 1999, "currency": "USD"},
        {"account": "seller_pending:s1", "side": "CREDIT", "amount_minor": 1999, "currency": "USD"},
    ]
    assert all(type(item["side"]) is str for item in txn.to_items())
    # and it reads back to the same transaction
    assert LedgerTransaction.from_items(txn.to_items()) == txn


@given(st.lists(positive, min_size=1, max_size=8), st.sampled_from(["USD", "JPY", "KWD"]))
def test_any_split_of_debits_against_one_credit_balances(debits: list[int], currency: str) -> None:
    # Given several debits and one credit of their sum / When built / Then accepted
    postings = [
        Posting(Account.seller_available(f"a{i}"), Side.DEBIT, Money(v, currency)) for i, v in enumerate(debits)
    ]
    postings.append(Posting(B, Side.CREDIT, Money(sum(debits), currency)))
    assert len(LedgerTransaction.of(postings).postings) == len(debits) + 1


@given(positive, st.integers(min_value=1, max_value=10**6))
def test_a_credit_off_by_anything_is_refused(amount: int, off: int) -> None:
    # Given a debit and a credit that differ / When built / Then UnbalancedTransaction (an InvariantViolation)
    with pytest.raises(UnbalancedTransaction):
        LedgerTransaction.of([_debit(A, Money(amount, "USD")), _credit(B, Money(amount + off, "USD"))])
    assert issubclass(UnbalancedTransaction, InvariantViolation)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: LedgerTransaction.of([]), id="empty"),
        pytest.param(lambda: LedgerTransaction.of([Posting(A, Side.DEBIT, Money(5, "USD"))]), id="one-posting"),
        pytest.param(lambda: LedgerTransaction.of([_debit(A, USD5), _debit(B, USD5)]), id="debits-only"),
        pytest.param(lambda: LedgerTransaction.of([_debit(A, USD5), _credit(B, Money(5, "EUR"))]), id="other-currency"),
        pytest.param(lambda: Posting(A, Side.DEBIT, Money(0, "USD")), id="zero"),
        pytest.param(lambda: Posting(A, Side.DEBIT, Money(-5, "USD")), id="negative"),
        pytest.param(lambda: Posting(A, "DEBIT", Money(5, "USD")), id="side-as-bare-string"),  # type: ignore[arg-type]
        pytest.param(lambda: Posting(A, Side.DEBIT, 5), id="amount-as-int"),  # type: ignore[arg-type]
        pytest.param(lambda: LedgerTransaction.transfer(debit=A, credit=B, amount=Money(0, "USD")), id="zero-transfer"),
    ],
)
def test_the_builder_refuses_what_is_not_one_balanced_transaction(build: Any) -> None:
    # Given postings that are too few, one-sided, mixed in currency, not positive or untyped
    # When built / Then UnbalancedTransaction, never a silent book
    with pytest.raises(UnbalancedTransaction):
        build()


@pytest.mark.parametrize(
    "item",
    [
        {"account": "seller_available:a", "side": "debit", "amount_minor": 5, "currency": "USD"},
        {"account": "seller_available:a", "side": "DEBIT", "amount_minor": 19.99, "currency": "USD"},
        {"account": "seller_available:a", "side": "DEBIT", "amount_minor": 5, "currency": "XXX"},
        {"account": "seller_available:a", "side": "DEBIT", "amount_minor": 5},
        {"account": "seller:a", "side": "DEBIT", "amount_minor": 5, "currency": "USD"},
        {"account": "a", "side": "DEBIT", "amount_minor": 5, "currency": "USD"},
    ],
)
def test_a_stored_posting_that_is_not_valid_is_refused_on_read(item: dict[str, Any]) -> None:
    # Given a stored posting with a bad side, a float, an unknown currency, a missing field or an
    # account that is not one of the chart
    # When read back / Then UnbalancedTransaction names it
    with pytest.raises(UnbalancedTransaction):
        Posting.from_item(item)


def test_the_ledger_refuses_an_adjustment_in_another_currency(repos: Repos) -> None:
    # Given a USD order
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    order = succeed(repos.payments, "po_1")
    # When an adjustment in EUR is asked for / Then refused before anything is written
    with pytest.raises(InvariantViolation):
        repos.ledger.adjustment_items("refund:r1", "REFUND", order, Money(500, "EUR"), None, to_seller=False)
    # and a USD one is balanced, debiting the seller's available
    put = repos.ledger.adjustment_items("refund:r1", "REFUND", order, Money(500, "USD"), None, to_seller=False)[0][
        "Put"
    ]["Item"]
    postings = [{k: next(iter(v.values())) for k, v in p["M"].items()} for p in put["postings"]["L"]]
    assert [(p["account"], p["side"], p["amount_minor"]) for p in postings] == [
        ("psp_receivable:simulated-psp", "CREDIT", "500"),
        ("seller_available:seller_books", "DEBIT", "500"),
    ]
    # and one that gives back commission debits the platform's revenue its share
    put = repos.ledger.adjustment_items(
        "refund:r2", "REFUND", order, Money(500, "USD"), None, to_seller=False, commission_share=Money(13, "USD")
    )[0]["Put"]["Item"]
    postings = [{k: next(iter(v.values())) for k, v in p["M"].items()} for p in put["postings"]["L"]]
    assert [(p["account"], p["side"], p["amount_minor"]) for p in postings] == [
        ("psp_receivable:simulated-psp", "CREDIT", "500"),
        ("seller_available:seller_books", "DEBIT", "487"),
        ("commission_revenue:platform", "DEBIT", "13"),
    ]


def test_wallet_adjustment_refuses_a_zero_move(repos: Repos) -> None:
    # Given a zero amount / When a wallet adjustment is asked for / Then InvariantViolation
    with pytest.raises(InvariantViolation):
        repos.wallets.adjustment_items("refund:r1", "REFUND", "po_1", "seller_books", Money(0, "USD"))
