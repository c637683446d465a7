"""What a client and the operator read: GET /v1/wallets/{seller} per part, the trial balance with the
platform's accounts, and `payments verify`'s invariant 4 per part (payments/accounts/settlement.py)."""

from __future__ import annotations

from typing import Any

from functions.payment.logic import trial_balance_view, wallet_view
from payments.accounts.commission import commission_of
from payments.accounts.settlement import SettledCharge, Settlement, book_psp_fees
from payments.kernel.money import Money
from payments.ops.invariants import check
from payments.payin.models import OrderRecord
from tests.unit.conftest import Repos, payment_record, succeed


def _charged(repos: Repos, po: str, seller: str, amount_minor: int, bps: int) -> OrderRecord:
    money = Money(amount_minor, "EUR")
    order = OrderRecord(
        payment_order_id=po,
        checkout_id=f"chk_{po}",
        seller_account=seller,
        amount_minor=amount_minor,
        currency="EUR",
        commission_bps=bps,
        commission_minor=commission_of(money, bps).minor,
    )
    assert repos.payments.create(payment_record(f"chk_{po}", [po]), [order]).created
    succeed(repos.payments, po)
    repos.wallets.credit(repos.payments.get_order(po))
    repos.ledger.append_payin(repos.payments.get_order(po))
    return repos.payments.get_order(po)


def test_the_wallet_answers_pending_available_and_in_transit(repos: Repos) -> None:
    # Given two charges of 100.00 EUR at 10 %: one settled, one not
    settled = _charged(repos, "po_1", "seller_books", 10000, 1000)
    _charged(repos, "po_2", "seller_books", 10000, 1000)
    Settlement(repos.wallets, repos.ledger).settle([SettledCharge("po_1", "seller_books", settled.net)])
    # When a client reads the wallet
    view = wallet_view("seller_books", repos.wallets).model_dump()
    # Then the parts and their sum are decimal strings
    assert view == {
        "seller_account": "seller_books",
        "balances": [
            {"currency": "EUR", "amount": "180.00", "pending": "90.00", "available": "90.00", "in_transit": "0.00"}
        ],
    }
    # and verify's invariant 4 compares each part with its ledger account
    report = check(repos.payments, repos.wallets, repos.ledger, None, expect_settled=False)
    assert report.ok and report.checks[4] == 2  # the seller's EUR balance, and po_1 settled once


def test_a_settled_amount_moved_in_the_wallet_only_breaks_invariant_4_on_that_part(repos: Repos, ddb: Any) -> None:
    # Given a charge settled, and the wallet's available changed by hand
    settled = _charged(repos, "po_1", "seller_books", 10000, 0)
    Settlement(repos.wallets, repos.ledger).settle([SettledCharge("po_1", "seller_books", settled.net)])
    ddb.update_item(
        TableName="wallets",
        Key={"pk": {"S": "BALANCE#seller_books"}, "sk": {"S": "CCY#EUR"}},
        UpdateExpression="ADD available_minor :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    # When checked / Then the available part is named, with both amounts
    report = check(repos.payments, repos.wallets, repos.ledger, None, expect_settled=False)
    assert [(v.invariant, v.ids, v.detail) for v in report.violations] == [
        (4, ["seller_books"], "wallet available 100.01 EUR != ledger 100.00 EUR")
    ]


def test_the_trial_balance_shows_the_platforms_commission_and_the_psps_fees(repos: Repos) -> None:
    # Given a 100.00 EUR charge at 2.50 % settled, and a file's PSP fees of 1.23 EUR booked (twice: a retry)
    order = _charged(repos, "po_1", "seller_books", 10000, 250)
    Settlement(repos.wallets, repos.ledger).settle([SettledCharge("po_1", "seller_books", order.net)])
    assert book_psp_fees(repos.ledger, "f" * 64, "incoming/adyen/d.csv", {"EUR": 123}) == 1
    assert book_psp_fees(repos.ledger, "f" * 64, "incoming/adyen/d.csv", {"EUR": 123}) == 0
    # When the trial balance is read
    trial = trial_balance_view(repos.ledger).model_dump()
    # Then it balances (100.00 charged + 97.50 settled + 1.23 fees), and lists the platform's accounts
    assert trial["currencies"] == [{"currency": "EUR", "debits": "198.73", "credits": "198.73"}]
    assert trial["accounts"] == [
        {"account": "commission_revenue:platform", "kind": "commission_revenue", "currency": "EUR", "balance": "2.50"},
        {"account": "psp_fees:simulated-psp", "kind": "psp_fees", "currency": "EUR", "balance": "1.23"},
        {"account": "psp_receivable:simulated-psp", "kind": "psp_receivable", "currency": "EUR", "balance": "98.77"},
    ]
    assert check(repos.payments, repos.wallets, repos.ledger, None, expect_settled=False).ok
