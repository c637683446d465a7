"""The bank rail on the local runtime: a pain.001 in the bank bucket is answered by the simulated bank (S3
notification), its pain.002 reconciled (S3 notification); ``payments bank close-day`` books the day, and
its camt.053 is reconciled. The payouts' book is an in-memory PayoutOutcomes (tests/unit/payouts/fake_book.py): this test is the bank
rail's alone (tests/integration/test_payouts_e2e.py runs the same loop on the payouts' own book)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import functions.bank_reconcile.handler as bank_reconcile
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.ops.cli import main
from payments.payouts.bank.pain001 import Debtor, PayoutInstruction, write_payout_file
from payments.payouts.bank.simulated import TEST_IBAN_PAID, TEST_IBAN_REJECTED, TEST_IBAN_RETURNED
from payments.payouts.outcomes import PayoutStatus
from payments_dev.local.runtime import LocalRuntime, wait_until
from tests.integration.conftest import unique
from tests.unit.payouts.fake_book import FakeBook

TIMEOUT_S = 60.0


@pytest.fixture()
def book(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBook]:
    fake = FakeBook()
    monkeypatch.setattr(bank_reconcile, "OUTCOMES", lambda: fake)
    yield fake


def objects(prefix: str) -> list[str]:
    listed = aws.client("s3").list_objects_v2(Bucket=settings().bank_bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def report(key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def written() -> bool:
        try:
            found["r"] = json.loads(
                aws.client("s3").get_object(Bucket=settings().bank_bucket, Key=f"reports/{key}.json")["Body"].read()
            )
        except aws.client("s3").exceptions.NoSuchKey:
            return False
        return True

    assert wait_until(written, TIMEOUT_S, interval=0.2), f"no report for {key}"
    return found["r"]


def close(runtime: LocalRuntime, day: str) -> str:
    assert main(["bank", "close-day", "--date", day, "--endpoint", runtime.aws_url, "--output", "json"]) == 0
    return f"incoming/bank/camt053/{day}.xml"


def test_a_payout_file_is_answered_booked_returned_and_reconciled(runtime: LocalRuntime, book: FakeBook) -> None:
    # Given three payouts SUBMITTED in one file, to the paid, rejected and returned test IBANs
    ids = {fate: unique("pt") for fate in ("paid", "rejected", "returned")}
    ibans = {"paid": TEST_IBAN_PAID, "rejected": TEST_IBAN_REJECTED, "returned": TEST_IBAN_RETURNED}
    payouts = [
        PayoutInstruction(
            payout_id=ids[fate],
            account_holder="Books Ltd",
            iban=ibans[fate],
            amount_minor=1500,
            currency="EUR",
            remittance="Payout",
        )
        for fate in ids
    ]
    for p in payouts:
        book.add(p.payout_id, p.amount_minor)
    now = datetime.now(UTC)
    file = write_payout_file("EUR", Debtor.from_settings(settings()), unique("run"), now, now.date(), payouts)
    # When it lands in outgoing/pain001/ (as the payout run writes it)
    aws.client("s3").put_object(Bucket=settings().bank_bucket, Key=file.key, Body=file.content)
    # Then the simulated bank answers, and the answer is reconciled: the rejected payout FAILED (AC01)
    assert wait_until(lambda: book.payouts[ids["rejected"]].status is PayoutStatus.FAILED, TIMEOUT_S, 0.2)
    (reply_key,) = [k for k in objects("incoming/bank/pain002/") if report(k)["counts"]["applied"] == 1]
    assert report(reply_key)["counts"] == {"applied": 1, "already": 0, "recorded": 2, "mismatches": 0}
    # When the day is closed (twice), then one statement books the two accepted payouts: PAID
    # (on the first day not yet closed: another test of the runtime may have closed today already)
    today = clock.now().date()
    while f"incoming/bank/camt053/{today.isoformat()}.xml" in objects("incoming/bank/camt053/"):
        today += timedelta(days=1)
    statement = close(runtime, today.isoformat())
    assert close(runtime, today.isoformat()) == statement
    assert report(statement)["counts"]["mismatches"] == 0
    assert book.status(ids["paid"]) is PayoutStatus.PAID and book.status(ids["returned"]) is PayoutStatus.PAID
    # When the next day is closed, then the 0002 payout comes back: RETURNED (AC04)
    returned = close(runtime, (today + timedelta(days=1)).isoformat())
    assert report(returned)["counts"] == {"applied": 1, "already": 0, "recorded": 0, "mismatches": 0}
    assert book.status(ids["returned"]) is PayoutStatus.RETURNED and book.payouts[ids["returned"]].reason == "AC04"
    assert {statement, returned} <= set(objects("incoming/bank/camt053/"))
