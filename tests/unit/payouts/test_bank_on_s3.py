"""The simulated bank and the bank reconciliation on moto S3 and DynamoDB (the reconciliation table).

pain.001 in -> pain.002 out; close-day twice -> one camt.053; the PSP's payout read from the settlement
file and matched once; each bank file's run stored with its counts; mismatches in the operator's queue;
an unreadable file quarantined with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest

from payments.accounts.chart import Account
from payments.accounts.ledger import LedgerRepository
from payments.kernel.config import settings
from payments.kernel.errors import InvariantViolation
from payments.ops import mismatches
from payments.payouts import simulated_bank
from payments.payouts.bank.camt import read_camt
from payments.payouts.bank.pain001 import Debtor, PayoutInstruction, write_payout_file
from payments.payouts.bank.pain002 import read_pain002
from payments.payouts.bank.simulated import TEST_IBAN_PAID, TEST_IBAN_REJECTED, TEST_IBAN_RETURNED
from payments.payouts.outcomes import Applied, PayoutStatus
from payments.payouts.reconcile import BankReconciler, StorePspPayouts
from payments.reconciliation import adyen, store
from payments.reconciliation.settlement import settlement_key
from payments.reconciliation.store import ReconciliationStore
from tests.unit.conftest import REGION
from tests.unit.payouts.fake_book import FakeBook

RUN_AT = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
DAY1, DAY2 = date(2026, 12, 6), date(2026, 12, 7)


@pytest.fixture()
def s3(ddb: Any) -> Iterator[Any]:
    client = boto3.client("s3", region_name=REGION)
    for bucket in (settings().bank_bucket, settings().settlement_bucket):
        client.create_bucket(Bucket=bucket)
    yield client


def payout(n: int, iban: str = TEST_IBAN_PAID, minor: int = 1000) -> PayoutInstruction:
    return PayoutInstruction(
        payout_id=f"pt_{n}", account_holder="Books Ltd", iban=iban, amount_minor=minor, currency="EUR", remittance="x"
    )


def send(s3: Any, *payouts: PayoutInstruction) -> str:
    """Our payout run: the pain.001 written to outgoing/pain001/<MsgId>.xml; its key."""
    file = write_payout_file("EUR", Debtor.from_settings(settings()), "run-1", RUN_AT, DAY2, list(payouts))
    s3.put_object(Bucket=settings().bank_bucket, Key=file.key, Body=file.content)
    return file.key


def keys(s3: Any, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=settings().bank_bucket, Prefix=prefix).get("Contents", [])]


def body(s3: Any, key: str, bucket: str | None = None) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket or settings().bank_bucket, Key=key)["Body"].read()
    return data


def test_a_pain001_is_answered_once_and_the_day_is_closed_once(s3: Any) -> None:
    # Given a payout file in outgoing/pain001/
    key = send(s3, payout(1), payout(2, TEST_IBAN_REJECTED))
    assert key.startswith("outgoing/pain001/")
    # When the simulated bank is told of it (twice: S3 delivers at least once)
    reply = simulated_bank.answer_file(key, at=RUN_AT)
    assert reply is not None and reply.group_status == "PART"
    again = simulated_bank.answer_file(key, at=RUN_AT)
    # Then one pain.002 answers it under incoming/bank/pain002/, and the repeat is refused as a duplicate (DU01)
    assert again is not None and again.duplicate
    replies = [read_pain002(body(s3, k)) for k in keys(s3, "incoming/bank/pain002/")]
    assert sorted(r.group_status for r in replies) == ["PART", "RJCT"]
    assert [r.group_reasons for r in replies if r.group_status == "RJCT"] == [("DU01",)]
    # When the day is closed twice, then one camt.053 books the accepted payout once
    first = simulated_bank.close_day(DAY1)
    second = simulated_bank.close_day(DAY1)
    assert first == second and keys(s3, "incoming/bank/camt053/") == ["incoming/bank/camt053/2026-12-06.xml"]
    assert [p.end_to_end_id for p in read_camt(first[1]).booked_payouts()] == ["pt_1"]


def test_the_s3_store_refuses_a_second_write_of_a_key(s3: Any) -> None:
    bank_store = simulated_bank.S3BankStore(settings().bank_bucket)
    assert bank_store.put_new("bank/x", b"1") is True
    assert bank_store.put_new("bank/x", b"2") is False
    assert bank_store.get("bank/x") == b"1" and bank_store.get("bank/y") is None
    assert bank_store.keys("bank/") == ["bank/x"]


def settle(s3: Any, day: date, payout_minor: int) -> str:
    """The PSP's settlement file of ``day`` with one charge and its MerchantPayout row; its key."""
    import io

    out = io.StringIO()
    charge = {
        "currency": "EUR",
        "amount_minor": payout_minor,
        "psp_reference": "PSP1",
        "merchant_reference": "po_1",
        "charged_at": f"{day.isoformat()}T10:00:00Z",
    }
    adyen.write_report([charge], day.isoformat(), out)
    key = settlement_key(day.isoformat())
    s3.put_object(Bucket=settings().settlement_bucket, Key=key, Body=out.getvalue().encode())
    return key


def test_the_psp_payout_is_read_from_the_settlement_file_and_booked_as_a_credit(s3: Any) -> None:
    settle(s3, DAY1, 10_000)
    (credit,) = simulated_bank.psp_credits(DAY1)
    commission, markup, scheme, interchange = adyen.fees_for(10_000, "EUR")
    assert credit.currency == "EUR" and credit.amount_minor == 10_000 - commission - markup - scheme - interchange
    assert simulated_bank.psp_credits(DAY2) == []  # no file that day: no credit
    _, statement = simulated_bank.close_day(DAY1)
    (entry,) = read_camt(statement).entries
    assert (entry.direction, entry.amount.minor, entry.transactions[0].is_return) == (
        "CRDT",
        credit.amount_minor,
        False,
    )


def reconciler(book: FakeBook, metrics: list[tuple[str, int]] | None = None) -> BankReconciler:
    return BankReconciler(book, on_metric=lambda n, v: (metrics if metrics is not None else []).append((n, v)))


def test_each_file_is_reconciled_its_run_stored_with_counts_and_mismatches_queued(s3: Any) -> None:
    # Given three payouts sent, answered, and two days closed, the PSP's payout announced by a reconciled file
    book = FakeBook()
    for p in (payout(1), payout(2, TEST_IBAN_REJECTED), payout(3, TEST_IBAN_RETURNED)):
        book.add(p.payout_id, p.amount_minor)
    simulated_bank.answer_file(
        send(s3, payout(1), payout(2, TEST_IBAN_REJECTED), payout(3, TEST_IBAN_RETURNED)), at=RUN_AT
    )
    psp_key = settle(s3, DAY1, 10_000)
    (credit,) = simulated_bank.psp_credits(DAY1)
    table = ReconciliationStore()
    table.record_payouts(psp_key, {"EUR": credit.amount_minor})
    table.ddb.put_item(
        TableName=table.table,
        Item={"pk": {"S": f"RUN#{psp_key}"}, "sk": {"S": "SUMMARY"}, "window_day": {"S": DAY1.isoformat()}},
    )
    simulated_bank.close_day(DAY1)
    simulated_bank.close_day(DAY2)
    files = sorted(keys(s3, "incoming/bank/"))
    # When each is reconciled, twice
    metrics: list[tuple[str, int]] = []
    outcomes = [reconciler(book, metrics).reconcile_object(k) for k in files]
    again = [reconciler(book).reconcile_object(k) for k in files]
    # Then every payout has its outcome once, the PSP's credit is matched, and nothing is a mismatch
    assert [book.status(p) for p in ("pt_1", "pt_2", "pt_3")] == [
        PayoutStatus.PAID,
        PayoutStatus.FAILED,
        PayoutStatus.RETURNED,
    ]
    assert sum(o.counts["applied"] for o in outcomes) == 5 and sum(o.counts["mismatches"] for o in outcomes) == 0
    assert sum(o.counts["already"] for o in again) == 5 and sum(o.counts["applied"] for o in again) == 0
    assert ("PayoutsReturned", 1) in metrics and ("PayoutsFailed", 1) in metrics
    summary = table.summary(files[0])
    assert summary is not None and set(summary["counts"]) == {"applied", "already", "recorded", "mismatches"}
    report = json.loads(body(s3, "reports/" + files[0] + ".json"))
    assert report["source_key"] == files[0] and report["counts"] == summary["counts"]


def test_a_mismatch_is_listed_in_the_operators_queue_with_its_file_and_entry(s3: Any) -> None:
    book = FakeBook()  # the book knows no payout: the bank's booking is unknown
    simulated_bank.answer_file(send(s3, payout(7, minor=700)), at=RUN_AT)
    key, _ = simulated_bank.close_day(DAY1)
    outcome = reconciler(book).reconcile_object(key)
    assert outcome.counts["mismatches"] == 1
    (queued,) = store.queue(DAY1.isoformat())
    assert (queued["kind"], queued["classification"], queued["source_key"], queued["payout_id"]) == (
        "PAYOUT_UNKNOWN",
        "MANUAL",
        key,
        "pt_7",
    )
    assert queued["entry"].startswith("Stmt STMT-20261206 Ntry") and queued["settlement_amount"] == "7.00"
    # and an operator resolves it like any mismatch (a bank file has no HTML page to write again)
    resolved = mismatches.resolve(queued["id"], "the payout was made by hand", who="ops")
    assert resolved["status"] == "RESOLVED" and mismatches.refresh_report(resolved) is None
    assert any(line.startswith("payout:         pt_7") for line in mismatches.details(resolved))


def test_an_unreadable_bank_file_is_quarantined_with_its_reason(s3: Any) -> None:
    key = "incoming/bank/camt053/broken.xml"
    s3.put_object(Bucket=settings().bank_bucket, Key=key, Body=b"<?xml version='1.0'?><!DOCTYPE x []><x/>")
    outcome = reconciler(FakeBook()).reconcile_object(key)
    assert outcome.status == "QUARANTINED" and keys(s3, key) == []
    reason = json.loads(body(s3, "quarantine/bank/camt053/broken.xml.reason.json"))
    assert reason["source_key"] == key and "ISO 20022" in reason["reason"]
    assert ReconciliationStore().summary(key)["quarantine_reason"] == reason["reason"]  # type: ignore[index]
    assert reconciler(FakeBook()).reconcile_object(key).status == "SKIPPED"  # a repeated event: already handled


def _announced() -> ReconciliationStore:
    """The store after the settlement file of 2026-12-06 announced a PSP payout of 50.00 EUR."""
    table = ReconciliationStore()
    table.record_payouts("incoming/simulated-psp/2026-12-06.csv", {"EUR": 5000})
    table.ddb.put_item(
        TableName=table.table,
        Item={
            "pk": {"S": "RUN#incoming/simulated-psp/2026-12-06.csv"},
            "sk": {"S": "SUMMARY"},
            "window_day": {"S": "2026-12-06"},
        },
    )
    return table


def test_a_psp_payout_is_claimed_by_one_credit_in_its_days_only(ddb: Any) -> None:
    table = _announced()
    psp = StorePspPayouts(table, days=2)
    assert psp.claim("EUR", 5000, "2026-12-05", "a")[0] is Applied.UNKNOWN  # before its settlement day
    assert psp.claim("EUR", 5000, "2026-12-09", "a")[0] is Applied.UNKNOWN  # too late
    assert psp.claim("EUR", 4999, "2026-12-06", "a")[0] is Applied.UNKNOWN  # no such amount
    assert psp.claim("EUR", 5000, "2026-12-07", "a") == (Applied.APPLIED, "incoming/simulated-psp/2026-12-06.csv")
    assert psp.claim("EUR", 5000, "2026-12-07", "a")[0] is Applied.ALREADY
    assert psp.claim("EUR", 5000, "2026-12-08", "b")[0] is Applied.CONFLICT
    # the claimed credit is booked in the ledger once, in the claim's transaction: bank <- the PSP's receivable
    ledger = LedgerRepository()
    (booked,) = [t for t in ledger.transactions() if t["kind"] == "PSP_PAYOUT"]
    assert booked["txn_id"] == "psp_payout:incoming/simulated-psp/2026-12-06.csv:EUR" and booked["claimed_by"] == "a"
    totals = ledger.all_account_totals()
    assert totals[(Account.bank(), "EUR")] == -5000  # net credits: the bank account (an asset) grew by 50.00
    assert totals[(Account.psp_receivable(settings().psp_name), "EUR")] == 5000


def test_a_psp_payout_booked_without_its_claim_is_refused_not_booked_twice(ddb: Any) -> None:
    table = _announced()
    psp = StorePspPayouts(table)
    assert psp.claim("EUR", 5000, "2026-12-07", "a")[0] is Applied.APPLIED
    table.ddb.delete_item(
        TableName=table.table,
        Key={"pk": {"S": "PSPCREDIT#incoming/simulated-psp/2026-12-06.csv#EUR"}, "sk": {"S": "CLAIM"}},
    )
    with pytest.raises(InvariantViolation, match="already books the PSP's payout"):
        psp.claim("EUR", 5000, "2026-12-07", "a")
    assert len([t for t in LedgerRepository().transactions() if t["kind"] == "PSP_PAYOUT"]) == 1


def s3_event(key: str) -> dict[str, Any]:
    return {"Records": [{"s3": {"bucket": {"name": settings().bank_bucket}, "object": {"key": key}}}]}


def test_the_handlers_answer_close_and_reconcile(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.bank_reconcile import handler as reconcile_handler
    from functions.simulated_bank import handler as bank_handler
    from payments_dev.local.lambdas import LambdaContext

    key = send(s3, payout(1), payout(2, TEST_IBAN_REJECTED))
    answered = bank_handler.handler(s3_event(key), LambdaContext("payments-simulated_bank"))
    (reply,) = answered["answered"]
    assert reply["key"] == key and reply["group_status"] == "PART"
    book = FakeBook()
    book.add("pt_1", 1000)
    book.add("pt_2", 1000)
    monkeypatch.setattr(reconcile_handler, "OUTCOMES", lambda: book)
    (done,) = reconcile_handler.handler(s3_event(reply["reply_key"]), LambdaContext("payments-bank_reconcile"))[
        "outcomes"
    ]
    assert done["status"] == "RECONCILED" and book.status("pt_2") is PayoutStatus.FAILED
    closed = bank_handler.handler(
        {"action": "close_day", "date": "2026-12-06"}, LambdaContext("payments-simulated_bank")
    )
    assert closed == {"closed": "2026-12-06", "key": "incoming/bank/camt053/2026-12-06.xml"}
