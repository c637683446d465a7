"""The platform's commission (payments/accounts/commission.py): fixed once per order, booked with the
seller's credit, given back in proportion by refunds, never drifting by a cent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from functions.payment import logic as payment_logic
from payments.accounts.commission import commission_of, divide_half_even, rate_for, refund_share
from payments.accounts.wallet import SellerBalance
from payments.kernel.config import Settings, reset_settings
from payments.kernel.money import Money
from payments.payin.models import OrderRecord, PaymentRequest
from payments.payin.status import OrderStatus
from payments.refunds.repository import RefundsRepository
from tests.unit.conftest import Repos, payment_record, succeed


@pytest.mark.parametrize(
    ("numerator", "denominator", "rounded"),
    [(25, 10, 2), (35, 10, 4), (26, 10, 3), (24, 10, 2), (5, 10, 0), (15, 10, 2), (0, 7, 0), (7, 7, 1)],
)
def test_division_rounds_half_to_even(numerator: int, denominator: int, rounded: int) -> None:
    assert divide_half_even(numerator, denominator) == rounded


def test_the_commission_is_rounded_half_even_to_the_minor_unit() -> None:
    # 2.50 % of 1.00 USD is 2.5 cents -> 2; of 1.40 USD 3.5 cents -> 4; of 19.99 USD 49.975 cents -> 50
    assert commission_of(Money(100, "USD"), 250) == Money(2, "USD")
    assert commission_of(Money(140, "USD"), 250) == Money(4, "USD")
    assert commission_of(Money(1999, "USD"), 250) == Money(50, "USD")
    # in a currency without minor units: 2.50 % of 1,010 JPY = 25.25 -> 25
    assert commission_of(Money(1010, "JPY"), 250) == Money(25, "JPY")
    assert commission_of(Money(1999, "USD"), 0) == Money(0, "USD")
    assert commission_of(Money(1999, "USD"), 10_000) == Money(1999, "USD")


@given(
    amount=st.integers(min_value=1, max_value=10**9),
    bps=st.integers(min_value=0, max_value=10_000),
    cuts=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=12),
)
def test_partial_refunds_of_the_whole_charge_give_back_exactly_the_commission(
    amount: int, bps: int, cuts: list[int]
) -> None:
    # Given a charge with its commission, refunded in pieces that add up to the charge
    charged = Money(amount, "EUR")
    commission = commission_of(charged, bps)
    total_cuts = sum(cuts)
    pieces = [amount * c // total_cuts for c in cuts]
    pieces[-1] += amount - sum(pieces)
    pieces = [p for p in pieces if p > 0]
    # When each refund's share is computed from what was refunded before it
    refunded, given_back = Money.zero("EUR"), Money.zero("EUR")
    for piece in pieces:
        share = refund_share(charged, commission, refunded, Money(piece, "EUR"))
        assert 0 <= share.minor <= piece
        given_back += share
        refunded += Money(piece, "EUR")
    # Then the shares sum to exactly the commission: no drift
    assert given_back == commission


def test_the_rate_is_the_sellers_override_or_the_stage_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_COMMISSION_BPS", "150")
    monkeypatch.setenv("PAYMENTS_COMMISSION_OVERRIDES", '{"seller_books": 250, "seller_free": 0}')
    reset_settings()
    try:
        assert (rate_for("seller_books"), rate_for("seller_free"), rate_for("anyone")) == (250, 0, 150)
    finally:
        reset_settings()


@pytest.mark.parametrize(
    "env",
    [
        {"PAYMENTS_COMMISSION_BPS": "10001"},
        {"PAYMENTS_COMMISSION_BPS": "-1"},
        {"PAYMENTS_COMMISSION_OVERRIDES": '{"seller_books": 10001}'},
        {"PAYMENTS_COMMISSION_OVERRIDES": '{"seller_books": "2.5"}'},
        {"PAYMENTS_COMMISSION_OVERRIDES": "seller_books=250"},
    ],
)
def test_a_commission_setting_out_of_bounds_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings.from_env(env)
    assert "commission" in str(refused.value)


def _request(amount: str) -> PaymentRequest:
    return PaymentRequest.model_validate(
        {
            "checkout_id": "chk_c",
            "buyer_info": {"buyer_id": "b_1"},
            "payment_method": {"type": "card", "token": "tok_visa"},
            "payment_orders": [
                {"payment_order_id": "po_c1", "seller_account": "seller_books", "amount": amount, "currency": "USD"},
                {"payment_order_id": "po_c2", "seller_account": "seller_toys", "amount": amount, "currency": "USD"},
            ],
        }
    )


def test_accepting_a_payment_fixes_each_orders_commission_once(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stage at 1.00 % with seller_books at 2.50 %
    monkeypatch.setenv("PAYMENTS_COMMISSION_BPS", "100")
    monkeypatch.setenv("PAYMENTS_COMMISSION_OVERRIDES", '{"seller_books": 250}')
    reset_settings()
    monkeypatch.setattr(payment_logic, "start_workflow", lambda payment, name=None: None)
    # When a checkout of two 19.99 USD orders is accepted
    payment_logic.accept_payment("key-c", _request("19.99"), repos.payments)
    # Then each order holds its rate and commission
    books, toys = repos.payments.get_order("po_c1"), repos.payments.get_order("po_c2")
    assert (books.commission_bps, books.commission_minor, books.net) == (250, 50, Money(1949, "USD"))
    assert (toys.commission_bps, toys.commission_minor, toys.net) == (100, 20, Money(1979, "USD"))
    # and a retry of the same request after the setting changed keeps what was fixed
    monkeypatch.setenv("PAYMENTS_COMMISSION_OVERRIDES", '{"seller_books": 900}')
    reset_settings()
    payment_logic.accept_payment("key-c", _request("19.99"), repos.payments)
    assert repos.payments.get_order("po_c1").commission_minor == 50
    reset_settings()


def _charged(repos: Repos, po: str, amount_minor: int, bps: int) -> OrderRecord:
    """A SUCCESS order of ``amount_minor`` USD with its commission fixed at ``bps``."""
    money = Money(amount_minor, "USD")
    order = OrderRecord(
        payment_order_id=po,
        checkout_id=f"chk_{po}",
        seller_account="seller_books",
        amount_minor=amount_minor,
        currency="USD",
        commission_bps=bps,
        commission_minor=commission_of(money, bps).minor,
    )
    assert repos.payments.create(payment_record(f"chk_{po}", [po]), [order]).created
    return succeed(repos.payments, po)


def _postings(repos: Repos, txn_key: str) -> list[tuple[str, str, int]]:
    txn = repos.ledger.find_transaction(txn_key)
    assert txn is not None
    return sorted((p["account"], p["side"], p["amount_minor"]) for p in txn["postings"])


def test_a_charge_credits_the_seller_its_net_and_the_platform_its_commission_in_one_transaction(
    repos: Repos,
) -> None:
    # Given a 19.99 USD charge at 2.50 % (0.50 USD commission)
    order = _charged(repos, "po_1", 1999, 250)
    # When the wallet and ledger steps run (twice: retries)
    for _ in range(2):
        repos.wallets.credit(repos.payments.get_order("po_1"))
        repos.ledger.append_payin(repos.payments.get_order("po_1"))
    # Then the ledger holds one balanced transaction: PSP receivable 19.99 = seller pending 19.49 + commission 0.50
    assert _postings(repos, "po_1") == [
        ("commission_revenue:platform", "CREDIT", 50),
        ("psp_receivable:simulated-psp", "DEBIT", 1999),
        ("seller_pending:seller_books", "CREDIT", 1949),
    ]
    # and the seller's wallet has the net, pending
    assert repos.wallets.balance_parts("seller_books") == {"USD": SellerBalance(pending=1949)}
    assert order.net == Money(1949, "USD")


def test_a_charge_without_commission_books_no_zero_posting(repos: Repos) -> None:
    _charged(repos, "po_1", 1999, 0)
    repos.ledger.append_payin(repos.payments.get_order("po_1"))
    assert _postings(repos, "po_1") == [
        ("psp_receivable:simulated-psp", "DEBIT", 1999),
        ("seller_pending:seller_books", "CREDIT", 1999),
    ]


def _refund(refunds: RefundsRepository, refund_id: str, po: str, amount_minor: int) -> None:
    """A refund reserved on the order and decided SUCCEEDED (what the refund workflow does)."""
    from payments.refunds import logic
    from payments.refunds.models import RefundRequest

    amount = Money(amount_minor, "USD").format()
    request = RefundRequest(refund_id=refund_id, payment_order_id=po, amount=amount, currency="USD")
    logic.accept_refund(f"key-{refund_id}", request, refunds, start=False)
    assert refunds.decide(refund_id, True, psp_reference=f"psp_{refund_id}").applied


def test_refunds_give_back_commission_in_proportion_and_take_the_rest_from_available(repos: Repos, ddb: Any) -> None:
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    # Given a 100.01 USD charge at 3.33 % (3.33 USD commission: 333.0333 cents -> 333), credited and booked
    _charged(repos, "po_1", 10001, 333)
    repos.wallets.credit(repos.payments.get_order("po_1"))
    repos.ledger.append_payin(repos.payments.get_order("po_1"))
    # When it is refunded in three pieces: 33.33, 33.33 and the rest 33.35
    _refund(refunds, "rf_1", "po_1", 3333)
    _refund(refunds, "rf_2", "po_1", 3333)
    _refund(refunds, "rf_3", "po_1", 3335)
    # Then each refund debits commission revenue its cumulative share and the seller's available the rest
    shares = []
    for refund_id, amount in (("rf_1", 3333), ("rf_2", 3333), ("rf_3", 3335)):
        postings = _postings(repos, f"refund:{refund_id}")
        share = next(p[2] for p in postings if p[0] == "commission_revenue:platform")
        assert postings == sorted(
            [
                ("commission_revenue:platform", "DEBIT", share),
                ("psp_receivable:simulated-psp", "CREDIT", amount),
                ("seller_available:seller_books", "DEBIT", amount - share),
            ]
        )
        shares.append(share)
    # 333 * 3333 / 10001 = 110.98 -> 111; 333 * 6666 / 10001 = 221.96 -> 222 (111 more); the rest 111
    assert shares == [111, 111, 111] and sum(shares) == 333
    # and the seller's wallet: pending 96.68 (the net, not settled yet), available -96.68 (money back)
    assert repos.wallets.balance_parts("seller_books") == {"USD": SellerBalance(pending=9668, available=-9668)}
    # and the invariants hold
    from payments.ops.invariants import check

    report = check(repos.payments, repos.wallets, repos.ledger, None, refunds=refunds, expect_settled=False)
    assert report.ok, [str(v) for v in report.violations]
    assert repos.payments.get_order("po_1").status is OrderStatus.SUCCESS


def test_chargebacks_and_reversals_move_available_in_full(repos: Repos) -> None:
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    order = _charged(repos, "po_1", 10000, 250)
    repos.wallets.credit(repos.payments.get_order("po_1"))
    repos.ledger.append_payin(repos.payments.get_order("po_1"))
    # When a 100.00 chargeback is booked, reversed, and charged back again
    assert refunds.book_chargeback(order, "cb_1", Money(10000, "USD")).applied
    assert refunds.reverse_chargeback(order, "cb_1", Money(10000, "USD")).applied
    assert refunds.book_second_chargeback(order, "cb_1", Money(10000, "USD")).applied
    # Then each moves the seller's available by the whole amount (the commission is not given back)
    assert _postings(repos, "chargeback:cb_1") == [
        ("psp_receivable:simulated-psp", "CREDIT", 10000),
        ("seller_available:seller_books", "DEBIT", 10000),
    ]
    assert _postings(repos, "chargeback_reversed:cb_1") == [
        ("psp_receivable:simulated-psp", "DEBIT", 10000),
        ("seller_available:seller_books", "CREDIT", 10000),
    ]
    assert repos.wallets.balance_parts("seller_books") == {"USD": SellerBalance(pending=9750, available=-10000)}
