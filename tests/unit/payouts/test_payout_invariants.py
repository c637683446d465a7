"""`payments verify`'s invariants 10 and 11 (payments/ops/payout_invariants.py): clean on a flow of payouts
through every status, and each check failing when one stored item is corrupted."""

from __future__ import annotations

from typing import Any

import pytest

from payments.accounts.settlement import SettledCharge, Settlement
from payments.kernel.config import settings
from payments.kernel.dynamo import get_item, to_item, to_values
from payments.kernel.money import Money
from payments.ops.invariants import Report, check
from payments.payouts.accounts import PayoutAccountRequest, PayoutAccountsRepository, register
from payments.payouts.repository import PayoutsRepository, payout_key
from tests.unit.accounts.test_balance_views import _charged
from tests.unit.conftest import Repos
from tests.unit.payouts.test_payouts_repository import payout

SELLER = "seller_books"
CAMT = "incoming/bank/camt053/2026-12-06.xml"


def _charged_and_settled(repos: Repos, po: str, amount_minor: int) -> None:
    order = _charged(repos, po, SELLER, amount_minor, 0)
    Settlement(repos.wallets, repos.ledger).settle([SettledCharge(po, SELLER, order.net)])


@pytest.fixture()
def flow(repos: Repos, kms: Any) -> PayoutsRepository:
    """100.00 EUR settled, then payouts in every status: pt_paid 30.00 PAID, pt_failed 20.00 FAILED, pt_returned
    10.00 RETURNED, pt_pending 15.00 PENDING, pt_sent 5.00 SUBMITTED."""
    register(
        SELLER,
        PayoutAccountRequest(iban="DE89370400440532013000", account_holder="Books Ltd", currency="EUR"),
        PayoutAccountsRepository(),
    )
    _charged_and_settled(repos, "po_1", 10_000)
    book = PayoutsRepository(ledger=repos.ledger)
    for payout_id, minor in (("pt_paid", 3000), ("pt_failed", 2000), ("pt_returned", 1000), ("pt_pending", 1500)):
        assert book.reserve(payout(payout_id, minor)).created
    book.reserve(payout("pt_sent", 500))
    for payout_id in ("pt_paid", "pt_failed", "pt_returned", "pt_sent"):
        book.mark_submitted(payout_id, msg_id="MSG1", iban_mac="mac", source="run:2026-12-06")
    book.mark_failed("pt_failed", reason="AC01", source="incoming/bank/pain002/a.xml#L3")
    for payout_id, minor in (("pt_paid", 3000), ("pt_returned", 1000)):
        book.mark_paid(payout_id, amount=Money(minor, "EUR"), booked_on="2026-12-06", source=f"{CAMT}#L{minor}")
    book.mark_returned("pt_returned", amount=Money(1000, "EUR"), reason="AC04", source=f"{CAMT}#L9")
    return book


def _check(repos: Repos, book: PayoutsRepository) -> Report:
    from payments.refunds.repository import RefundsRepository

    return check(
        repos.payments,
        repos.wallets,
        repos.ledger,
        [],
        refunds=RefundsRepository(payments=repos.payments),
        psp_refunds=[],
        payouts=book,
    )


def _broken(report: Report, invariant: int) -> list[str]:
    return [v.detail for v in report.violations if v.invariant == invariant]


def _ledger_key(txn_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"TXN#{txn_id}"}, "sk": {"S": "TXN"}}


def _set(ddb: Any, table: str, key: dict[str, Any], **values: Any) -> None:
    names = {f"#a{i}": name for i, name in enumerate(values)}
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=to_values({f":v{i}": v for i, v in enumerate(values.values())}),
    )


def test_a_clean_flow_passes_10_and_11_with_their_checks(repos, flow):
    report = _check(repos, flow)
    assert _broken(report, 10) == _broken(report, 11) == []
    assert 10 not in report.skipped and 11 not in report.skipped
    assert report.checks[10] >= 5 + 1 + 5  # each payout's reservation, the seller's sum, each replayed reservation
    assert report.checks[11] >= 5 + 1
    lines = "\n".join(report.summary_lines())
    assert "10. never pay out what is not there" in lines and "11. each payout moves money once" in lines


def test_without_a_payouts_table_both_are_skipped_and_say_why(repos, ddb):
    ddb.delete_table(TableName=settings().payouts_table)
    report = check(repos.payments, repos.wallets, repos.ledger, [], refunds=None)
    assert report.skipped[10] == report.skipped[11] == "the stage has no payouts table"
    assert report.checks[10] == report.checks[11] == 0 and not report.passed


def test_by_default_the_stored_payouts_are_checked(repos, ddb, flow):
    ddb.delete_item(TableName=settings().ledger_table, Key=_ledger_key("payout:pt_paid:paid"))
    report = check(repos.payments, repos.wallets, repos.ledger, [], refunds=None)
    assert "PAID payout has 0 'paid' bookings" in _broken(report, 11)


def test_a_missing_reservation_booking_fails_10_and_11(repos, ddb, flow):
    ddb.delete_item(TableName=settings().ledger_table, Key=_ledger_key("payout:pt_pending:reserve"))
    report = _check(repos, flow)
    assert "PENDING payout has 0 reservation bookings" in _broken(report, 10)
    assert "PENDING payout has 0 'reserve' bookings" in _broken(report, 11)


def test_a_reservation_of_another_amount_fails_10(repos, ddb, flow):
    key = _ledger_key("payout:pt_sent:reserve")
    postings = to_item(get_item(ddb, settings().ledger_table, key) or {})["postings"]
    for posting in postings["L"]:
        posting["M"]["amount_minor"] = {"N": "400"}
    ddb.update_item(
        TableName=settings().ledger_table,
        Key=key,
        UpdateExpression="SET postings = :p",
        ExpressionAttributeValues={":p": postings},
    )
    report = _check(repos, flow)
    assert "its reservation booking does not move the payout's amount from available" in _broken(report, 10)


def test_payouts_above_the_settled_credits_fail_10(repos, ddb, flow):
    # the settlement that made the charge available is gone: nothing was ever settled for the seller
    settlement = next(t for t in repos.ledger.transactions() if t["kind"] == "SETTLEMENT")
    ddb.delete_item(TableName=settings().ledger_table, Key=_ledger_key(settlement["txn_id"]))
    report = _check(repos, flow)
    assert any(d.startswith("payouts not failed or returned 50.00 EUR > settled 0.00 EUR") for d in _broken(report, 10))


def test_a_reservation_booked_before_the_money_was_available_fails_10(repos, ddb, flow):
    # every credit of available (the settlement, the failed and returned payouts) booked long after the
    # reservations: no reservation could have found the money available
    for txn in repos.ledger.transactions():
        if txn["kind"] in ("SETTLEMENT", "PAYOUT_FAILED", "PAYOUT_RETURNED"):
            _set(ddb, settings().ledger_table, _ledger_key(txn["txn_id"]), booked_at="2099-01-01T00:00:00.000Z")
    report = _check(repos, flow)
    assert "reserved 30.00 EUR when available held at most 0.00 EUR" in _broken(report, 10)


def test_a_missing_paid_booking_fails_11(repos, ddb, flow):
    ddb.delete_item(TableName=settings().ledger_table, Key=_ledger_key("payout:pt_paid:paid"))
    assert "PAID payout has 0 'paid' bookings" in _broken(_check(repos, flow), 11)


def test_a_booking_for_a_status_not_reached_fails_11(repos, ddb, flow):
    paid = get_item(ddb, settings().ledger_table, _ledger_key("payout:pt_paid:paid")) or {}
    booking = {**paid, "pk": "TXN#payout:pt_sent:paid", "txn_id": "payout:pt_sent:paid", "payout_id": "pt_sent"}
    ddb.put_item(TableName=settings().ledger_table, Item=to_item(booking))
    assert "SUBMITTED payout has 1 'paid' bookings" in _broken(_check(repos, flow), 11)


def test_a_booking_for_no_payout_fails_11(repos, ddb, flow):
    ddb.delete_item(TableName=settings().payouts_table, Key=payout_key("pt_failed"))
    broken = _broken(_check(repos, flow), 11)
    assert "ledger bookings ['failed', 'reserve'] for a payout that does not exist" in broken


def test_a_status_its_bookings_do_not_say_fails_11(repos, ddb, flow):
    _set(ddb, settings().payouts_table, payout_key("pt_failed"), status="PAID")
    broken = _broken(_check(repos, flow), 11)
    assert "PAID payout has 0 'paid' bookings" in broken
    assert "PAID payout has 1 'failed' bookings" in broken
    assert "status PAID is not the last of its history" in broken


def test_in_transit_other_than_the_open_payouts_fails_11(repos, ddb, flow):
    _set(ddb, settings().wallets_table, {"pk": {"S": f"BALANCE#{SELLER}"}, "sk": {"S": "CCY#EUR"}}, in_transit_minor=1)
    broken = _broken(_check(repos, flow), 11)
    assert "in transit 0.01 EUR != its PENDING and SUBMITTED payouts 20.00 EUR" in broken


def test_paid_by_anything_but_a_bank_file_fails_11(repos, ddb, flow):
    record = flow.get("pt_paid")
    history = [e.model_dump(mode="json") for e in record.history]
    history[-1]["source"] = "api"
    _set(ddb, settings().payouts_table, payout_key("pt_paid"), history=history)
    assert "PAID by 'api', not by a bank file's entry" in _broken(_check(repos, flow), 11)


@pytest.mark.parametrize(
    ("booked_at", "fails"), [("2000-01-01T00:00:00.000Z", True), ("2099-01-01T00:00:00.000Z", False)]
)
def test_money_back_counts_against_the_payouts_reserved_after_it_only(repos, ddb, flow, booked_at, fails):
    # a refund of 60.00 from available: before the payouts (50.00 not failed or returned > 100.00 - 60.00), or
    # after them (available below zero: it blocks the next payout, it cannot undo those made)
    refund = {
        "pk": "TXN#refund:rf_1",
        "sk": "TXN",
        "txn_id": "refund:rf_1",
        "kind": "REFUND",
        "currency": "EUR",
        "amount_minor": 6000,
        "booked_at": booked_at,
        "postings": [
            {"account": f"seller_available:{SELLER}", "side": "DEBIT", "amount_minor": 6000, "currency": "EUR"},
            {"account": "psp_receivable:simulated-psp", "side": "CREDIT", "amount_minor": 6000, "currency": "EUR"},
        ],
    }
    ddb.put_item(TableName=settings().ledger_table, Item=to_item(refund))
    over = [d for d in _broken(_check(repos, flow), 10) if d.startswith("payouts not failed or returned")]
    assert over == (
        ["payouts not failed or returned 50.00 EUR > settled 100.00 EUR - money back 60.00 EUR"] if fails else []
    )
