"""A reconciled settlement file moves each matched charge's net from pending to available, exactly once per
order, on both paths (single pass and the state machine's chunks), and books the PSP's fees once per file
(payments/accounts/settlement.py)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from payments.accounts.chart import Account
from payments.accounts.commission import commission_of
from payments.accounts.ledger import LedgerRepository
from payments.accounts.settlement import MAX_BATCH, batch_size
from payments.accounts.wallet import SellerBalance, WalletRepository
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money
from payments.ops.invariants import check
from payments.payin.models import OrderRecord
from payments.payin.repository import PaymentsRepository
from payments.reconciliation import adyen
from payments.reconciliation.model import Bounds
from payments.reconciliation.service import Reconciler
from tests.reconciliation.conftest import DAY, Aws
from tests.unit.conftest import payment_record, succeed


class Books:
    def __init__(self) -> None:
        self.payments = PaymentsRepository()
        self.wallets = WalletRepository(payments=self.payments)
        self.ledger = LedgerRepository(payments=self.payments)

    def charge(self, po: str, seller: str, amount_minor: int, currency: str, bps: int = 0) -> dict[str, Any]:
        """A charge at the PSP, its order SUCCESS, its wallet credited and its ledger booked; returns the
        PSP's record of it (what the settlement file reports)."""
        order = OrderRecord(
            payment_order_id=po,
            checkout_id=f"chk_{po}",
            seller_account=seller,
            amount_minor=amount_minor,
            currency=currency,
            commission_bps=bps,
            commission_minor=commission_of(Money(amount_minor, currency), bps).minor,
        )
        assert self.payments.create(payment_record(f"chk_{po}", [po]), [order]).created
        charged_at = f"{DAY}T10:00:00.000Z"
        succeed(self.payments, po, psp_reference=f"PSP{po.upper()}", charged_at=charged_at)
        self.wallets.credit(self.payments.get_order(po))
        self.ledger.append_payin(self.payments.get_order(po))
        return {
            "psp_reference": f"PSP{po.upper()}",
            "merchant_reference": po,
            "currency": currency,
            "amount_minor": amount_minor,
            "charged_at": charged_at,
        }

    def verify(self) -> None:
        report = check(self.payments, self.wallets, self.ledger, None, expect_settled=False)
        assert report.ok, [str(v) for v in report.violations]
        assert report.checks[4] > 0

    def settlements(self) -> list[dict[str, Any]]:
        return [t for t in self.ledger.transactions() if t["kind"] == "SETTLEMENT"]

    def fees(self) -> dict[str, int]:
        balances = self.ledger.account_balances()
        return {ccy: net for (account, ccy), net in balances.items() if account == Account.psp_fees("simulated-psp")}


def settlement_file(charges: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    adyen.write_report(charges, DAY, out)
    return out.getvalue().encode()


def fees_of(charges: list[dict[str, Any]]) -> dict[str, int]:
    fees: dict[str, int] = {}
    for charge in charges:
        fees[charge["currency"]] = fees.get(charge["currency"], 0) + sum(
            adyen.fees_for(charge["amount_minor"], charge["currency"])
        )
    return fees


@pytest.fixture()
def books(cloud: Aws) -> Books:
    return Books()


def test_a_charge_is_pending_until_its_file_is_reconciled_then_available_once(cloud: Aws, books: Books) -> None:
    # Given three charges: two of seller_books in USD (one at 2.50 % commission), one of seller_toys in EUR
    charges = [
        books.charge("po_1", "seller_books", 1999, "USD", bps=250),
        books.charge("po_2", "seller_books", 1000, "USD"),
        books.charge("po_3", "seller_toys", 500, "EUR"),
    ]
    # Then before any file they are pending
    assert books.wallets.balance_parts("seller_books") == {"USD": SellerBalance(pending=1949 + 1000)}
    assert books.wallets.balance_parts("seller_toys") == {"EUR": SellerBalance(pending=500)}
    books.verify()
    # When the day's settlement file is reconciled
    key = f"incoming/adyen/{DAY}.csv"
    cloud.put(key, settlement_file(charges))
    assert Reconciler().reconcile_object(key).status == "RECONCILED"
    # Then each seller's net is available, nothing pending, in one ledger transaction per (seller, currency)
    assert books.wallets.balance_parts("seller_books") == {"USD": SellerBalance(available=2949)}
    assert books.wallets.balance_parts("seller_toys") == {"EUR": SellerBalance(available=500)}
    assert sorted(
        (t["seller_account"], t["amount_minor"], sorted(t["payment_order_ids"])) for t in books.settlements()
    ) == [
        ("seller_books", 2949, ["po_1", "po_2"]),
        ("seller_toys", 500, ["po_3"]),
    ]
    assert cloud.report(key)["three_way"]["differences"] == []
    books.verify()
    # and the PSP's fees of the file are the platform's expense, per currency
    assert books.fees() == fees_of(charges)
    # When the same file is reconciled again, and the same charges arrive in a second file
    assert Reconciler().reconcile_object(key).status == "RECONCILED"
    again = f"incoming/adyen/{DAY}-resent.csv"
    cloud.put(again, settlement_file(charges) + b"\n")
    assert Reconciler().reconcile_object(again).status == "RECONCILED"
    # Then nothing moves a second time
    assert books.wallets.balance_parts("seller_books") == {"USD": SellerBalance(available=2949)}
    assert books.wallets.balance_parts("seller_toys") == {"EUR": SellerBalance(available=500)}
    assert len(books.settlements()) == 2
    books.verify()
    # and the fees are booked once per file: the same bytes nothing, the second file its own
    assert books.fees() == {ccy: 2 * fee for ccy, fee in fees_of(charges).items()}


def test_a_file_that_reports_settled_and_new_charges_settles_only_the_new_ones(cloud: Aws, books: Books) -> None:
    # Given po_1 settled by a first file
    first = [books.charge("po_1", "seller_books", 1999, "USD")]
    cloud.put("incoming/adyen/first.csv", settlement_file(first))
    Reconciler().reconcile_object("incoming/adyen/first.csv")
    # When a second file reports po_1 again with a new charge po_2 of the same seller (one batch: the batch is
    # refused on po_1's marker and redone order by order)
    second = [*first, books.charge("po_2", "seller_books", 700, "USD")]
    cloud.put("incoming/adyen/second.csv", settlement_file(second))
    Reconciler().reconcile_object("incoming/adyen/second.csv")
    # Then po_2 alone moved to available
    assert books.wallets.balance_parts("seller_books") == {"USD": SellerBalance(available=2699)}
    assert sorted(tuple(t["payment_order_ids"]) for t in books.settlements()) == [("po_1",), ("po_2",)]
    books.verify()


def test_the_state_machine_path_settles_too(cloud: Aws, books: Books) -> None:
    # Given a file of 95 charges of one seller (two batches) cut into several chunks
    charges = [books.charge(f"po_{i:03d}", "seller_hot", 100 + i, "USD") for i in range(95)]
    key = f"incoming/adyen/{DAY}.csv"
    cloud.put(key, settlement_file(charges))
    reconciler = Reconciler(bounds=Bounds(chunk_bytes=4 * 1024))
    # When the state machine's three tasks run, twice (a redriven execution)
    for _ in range(2):
        plan = reconciler.plan(key)
        assert len(plan["chunks"]) > 1
        results = [reconciler.reconcile_chunk(key, plan, chunk) for chunk in plan["chunks"]]
        assert reconciler.merge_chunks(key, plan, results)["status"] == "RECONCILED"
    # Then every charge is available once, in batches of at most the bound
    total = sum(c["amount_minor"] for c in charges)
    assert books.wallets.balance_parts("seller_hot") == {"USD": SellerBalance(available=total)}
    sizes = sorted(len(t["payment_order_ids"]) for t in books.settlements())
    assert sum(sizes) == 95 and max(sizes) <= batch_size(books.wallets.shards) <= MAX_BATCH
    books.verify()


def test_a_lost_marker_is_reported_by_verify_and_never_settles_twice(cloud: Aws, books: Books) -> None:
    # Given a settled charge whose SETTLED marker is lost (deleted by hand)
    charges = [books.charge("po_1", "seller_books", 1999, "USD")]
    cloud.put("incoming/adyen/a.csv", settlement_file(charges))
    Reconciler().reconcile_object("incoming/adyen/a.csv")
    cloud.ddb.delete_item(TableName="wallets", Key={"pk": {"S": "SETTLED#po_1"}, "sk": {"S": "SETTLED"}})
    # Then verify names the order: settled in the ledger, no marker
    report = check(books.payments, books.wallets, books.ledger, None, expect_settled=False)
    assert [(v.invariant, v.ids, v.detail) for v in report.violations] == [
        (4, ["po_1"], "settled 1 times in the ledger, marker absent")
    ]
    # When the file is reconciled again / Then the batch's own ledger transaction refuses it: loudly, no money moves
    with pytest.raises(InvariantViolation):
        Reconciler().reconcile_object("incoming/adyen/a.csv")
    assert books.wallets.balance_parts("seller_books") == {"USD": SellerBalance(available=1999)}


def test_a_file_reconciled_again_costs_a_refused_batch_and_a_read_per_batch_not_a_transaction_per_charge(
    cloud: Aws, books: Books
) -> None:
    from payments.kernel import aws

    # Given a day of 95 charges of one seller (two batches), settled by its file
    charges = [books.charge(f"po_{i:03d}", "seller_hot", 100 + i, "USD") for i in range(95)]
    key = f"incoming/adyen/{DAY}.csv"
    cloud.put(key, settlement_file(charges))
    assert Reconciler().reconcile_object(key).status == "RECONCILED"
    calls: list[str] = []
    client = aws.client("dynamodb")
    for operation in ("TransactWriteItems", "BatchGetItem"):
        client.meta.events.register(
            f"before-call.dynamodb.{operation}", lambda model, calls=calls, **_: calls.append(model.name)
        )
    # When the same file arrives again under another name (its charges all settled)
    cloud.put(f"{key}.resent", settlement_file(charges) + b"\n")
    assert Reconciler().reconcile_object(f"{key}.resent").status == "RECONCILED"
    # Then each batch was refused once, its markers read once, and no charge was tried on its own
    settlement_writes = [c for c in calls if c == "TransactWriteItems"]
    assert calls.count("BatchGetItem") >= 2 and len(settlement_writes) <= 2 + 2  # two batches, and the file's fees
    total = sum(c["amount_minor"] for c in charges)
    assert books.wallets.balance_parts("seller_hot") == {"USD": SellerBalance(available=total)}
    books.verify()
