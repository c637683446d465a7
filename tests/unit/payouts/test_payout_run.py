"""The nightly payout run against moto (DynamoDB, KMS, S3): scheduled payouts, one pain.001 per run, and a
crash at any step converging on the next run, nothing created or paid twice."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
import sepaxml
import xmlschema

from payments.kernel.config import reset_settings, settings
from payments.kernel.money import Money
from payments.payouts.accounts import PayoutAccountRequest, PayoutAccountsRepository, register
from payments.payouts.bank.pain001_reader import read_pain001
from payments.payouts.outcomes import PayoutStatus
from payments.payouts.repository import PayoutsRepository
from payments.payouts.run import PayoutRun, PayoutRunNeedsOperator, scheduled_payout_id
from tests.unit.conftest import REGION
from tests.unit.payouts.test_payouts_repository import balance, payout, seed_available

DAY = date(2026, 12, 7)
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
BOOKS, TOYS, NOBODY = "seller_books", "seller_toys", "seller_without_account"


@pytest.fixture()
def s3(ddb: Any) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=settings().bank_bucket)
    return client


@pytest.fixture()
def world(kms: Any, s3: Any, ddb: Any) -> PayoutsRepository:
    for seller, iban in ((BOOKS, "DE89370400440532013000"), (TOYS, "DE05370400440100090002")):
        register(
            seller, PayoutAccountRequest(iban=iban, account_holder=seller, currency="EUR"), PayoutAccountsRepository()
        )
    return PayoutsRepository()


def files(s3: Any) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=settings().bank_bucket, Prefix="outgoing/pain001/").get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=settings().bank_bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_the_run_pays_every_seller_above_the_minimum_in_one_valid_file(world, ddb, s3):
    seed_available(ddb, BOOKS, 12_345)
    seed_available(ddb, TOYS, 99)  # below the EUR 1.00 minimum: not paid tonight
    seed_available(ddb, BOOKS, 5_000, "USD")  # no rail
    seed_available(ddb, NOBODY, 7_000)  # no payout account
    answer = PayoutRun().run(DAY)

    books = scheduled_payout_id(BOOKS, "EUR", DAY)
    assert len(books) <= 35
    assert answer.created == [books]
    assert {"seller_account": BOOKS, "currency": "USD", "reason": "no payout rail for USD"} in answer.skipped
    assert any(s["seller_account"] == NOBODY and "no payout account" in s["reason"] for s in answer.skipped)
    assert answer.submitted == [books]
    written = files(s3)
    assert len(written) == 1 and len(answer.files) == 1
    (key, content), info = next(iter(written.items())), answer.files[0]
    assert key == f"outgoing/pain001/{info['msg_id']}.xml" and info["control_sum"] == "123.45"
    xmlschema.XMLSchema(str(XSD)).validate(content.decode())  # the schema sepaxml ships, asserted again here
    read = read_pain001(content)
    assert read.msg_id == info["msg_id"] and not read.problems
    assert [t.end_to_end_id for t in read.transactions] == [books]
    record = world.get(books)
    assert record.status is PayoutStatus.SUBMITTED and record.msg_id == info["msg_id"] and record.origin == "scheduled"
    assert balance(ddb, BOOKS) == (0, 12_345) and balance(ddb, TOYS) == (99, 0)
    assert balance(ddb, BOOKS, "USD") == (5_000, 0)  # stays available


def test_a_second_run_of_the_day_creates_and_sends_nothing_twice(world, ddb, s3):
    seed_available(ddb, BOOKS, 12_345)
    first = PayoutRun().run(DAY)
    seed_available(ddb, BOOKS, 2_000)  # more settled since: the day's payout exists, none is added
    second = PayoutRun().run(DAY)
    assert first.created and not second.created and not second.files and not second.submitted
    assert second.already_created == first.created
    assert len(files(s3)) == 1 and balance(ddb, BOOKS) == (2_000, 12_345)
    # the next day pays what came in since
    assert PayoutRun().run(date(2026, 12, 8)).created == [scheduled_payout_id(BOOKS, "EUR", date(2026, 12, 8))]
    assert len(files(s3)) == 2 and balance(ddb, BOOKS) == (0, 14_345)


def test_a_client_payout_left_pending_joins_the_next_file(world, ddb, s3):
    seed_available(ddb, BOOKS, 10_000)
    world.reserve(payout("pt_manual", 2_500, BOOKS))  # reserved, then the API's process died: no file yet
    answer = PayoutRun().run(DAY)
    scheduled = scheduled_payout_id(BOOKS, "EUR", DAY)
    assert sorted(answer.submitted) == sorted(["pt_manual", scheduled])
    (content,) = files(s3).values()
    assert sorted(t.end_to_end_id for t in read_pain001(content).transactions) == sorted(["pt_manual", scheduled])
    assert balance(ddb, BOOKS) == (0, 10_000)


def test_a_crash_between_the_reservation_and_the_file_converges(world, ddb, s3, monkeypatch):
    seed_available(ddb, BOOKS, 4_000)

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the process died")

    with monkeypatch.context() as m:
        m.setattr(PayoutRun, "write_file", crash)
        with pytest.raises(RuntimeError):
            PayoutRun().run(DAY)
    books = scheduled_payout_id(BOOKS, "EUR", DAY)
    assert world.get(books).status is PayoutStatus.PENDING and not files(s3)
    answer = PayoutRun().run(DAY)
    assert answer.created == [] and answer.submitted == [books] and len(files(s3)) == 1
    assert world.get(books).status is PayoutStatus.SUBMITTED and balance(ddb, BOOKS) == (0, 4_000)


def test_a_crash_after_the_file_writes_the_same_file_once_and_submits(world, ddb, s3, monkeypatch):
    seed_available(ddb, BOOKS, 4_000)
    seed_available(ddb, TOYS, 3_000)
    calls = []

    def crash_after_one(self: PayoutsRepository, payout_id: str, **kwargs: Any) -> Any:
        if calls:
            raise RuntimeError("the process died")
        calls.append(payout_id)
        return original(self, payout_id, **kwargs)

    original = PayoutsRepository.mark_submitted
    with monkeypatch.context() as m:
        m.setattr(PayoutsRepository, "mark_submitted", crash_after_one)
        with pytest.raises(RuntimeError):
            PayoutRun().run(DAY)
    before = files(s3)
    assert len(before) == 1
    answer = PayoutRun().run(DAY)  # a retry, as the scheduler would (a later day's run does the same)
    assert files(s3) == before  # the same key, the same bytes, not replaced
    assert len(answer.submitted) == 2 and not answer.files
    assert {world.get(p).status for p in answer.submitted} == {PayoutStatus.SUBMITTED}


def test_a_retry_of_the_file_step_writes_the_very_same_bytes(world, ddb, s3, monkeypatch):
    seed_available(ddb, BOOKS, 4_000)
    puts: list[bytes] = []
    real_put = s3.put_object

    def lost_answer(**request: Any) -> Any:
        puts.append(request["Body"])
        real_put(**request)
        if len(puts) == 1:
            raise RuntimeError("the answer of the put was lost")
        return None

    run = PayoutRun(s3=s3)
    monkeypatch.setattr(s3, "put_object", lost_answer)
    with pytest.raises(RuntimeError):
        run.run(DAY)
    answer = run.run(DAY)
    assert len(puts) == 2 and puts[0] == puts[1]
    assert answer.files and answer.files[0]["written_now"] is False  # If-None-Match refused the repeat
    assert len(files(s3)) == 1


def test_the_minimum_is_a_stage_setting_per_currency(world, ddb, s3, monkeypatch):
    monkeypatch.setenv("PAYOUT_MINIMUM_MINOR", '{"EUR": 5000}')
    reset_settings()
    seed_available(ddb, BOOKS, 4_999)
    seed_available(ddb, TOYS, 5_000)
    answer = PayoutRun().run(DAY)
    assert answer.created == [scheduled_payout_id(TOYS, "EUR", DAY)]
    assert world.available(BOOKS, "EUR") == Money(4_999, "EUR")


def test_a_file_that_may_be_at_the_bank_is_never_replaced_by_another(world, ddb, s3, monkeypatch):
    seed_available(ddb, BOOKS, 4_000)
    run = PayoutRun(s3=s3)
    real_put = s3.put_object

    def lost(**request: Any) -> Any:
        real_put(**request)
        raise RuntimeError("the answer of the put was lost")

    with monkeypatch.context() as m:
        m.setattr(s3, "put_object", lost)
        with pytest.raises(RuntimeError):
            run.run(DAY)
    # the seller registers another account before the retry: the file out there names the first one
    register(
        BOOKS,
        PayoutAccountRequest(iban="NL91ABNA0417164300", account_holder="B", currency="EUR"),
        PayoutAccountsRepository(),
    )
    with pytest.raises(PayoutRunNeedsOperator):
        run.run(DAY)
    assert len(files(s3)) == 1  # never a second file for the same payouts
    assert world.get(scheduled_payout_id(BOOKS, "EUR", DAY)).status is PayoutStatus.PENDING


def test_a_pending_payout_whose_account_was_marked_invalid_fails_with_its_money_back(world, ddb, s3):
    seed_available(ddb, BOOKS, 4_000)
    world.reserve(payout("pt_manual", 4_000, BOOKS))
    PayoutAccountsRepository().mark_invalid(BOOKS, "EUR", "payout p0 returned by the bank (AC04)")
    answer = PayoutRun().run(DAY)
    assert [f["payout_id"] for f in answer.failed] == ["pt_manual"] and not answer.files and not files(s3)
    failed = world.get("pt_manual")
    assert failed.status is PayoutStatus.FAILED and "marked invalid" in (failed.failure_reason or "")
    assert balance(ddb, BOOKS) == (4_000, 0)
    # and the next night does not pay it again to that account
    assert any(s["seller_account"] == BOOKS and "marked invalid" in s["reason"] for s in PayoutRun().run(DAY).skipped)


def test_the_run_never_logs_or_answers_an_iban(world, ddb, s3, capsys, caplog):
    seed_available(ddb, BOOKS, 4_000)
    seed_available(ddb, TOYS, 3_000)
    answer = PayoutRun().run(DAY)
    printed = capsys.readouterr()
    said = printed.out + printed.err + caplog.text + repr(answer.as_dict())
    assert answer.submitted and "payout run" in said  # the run's own log line is among what is read
    for iban in ("DE89370400440532013000", "DE05370400440100090002", "0532013000", "0100090002"):
        assert iban not in said


def test_the_run_finds_the_balances_through_their_index_never_a_scan(world, ddb, s3):
    # Given many pending wallet shards (the charges' hot path) and two sellers with balance items
    from payments.accounts.balances import BALANCE_SHARDS

    for shard in range(40):
        ddb.put_item(
            TableName=settings().wallets_table,
            Item={"pk": {"S": f"WALLET#{BOOKS}#{shard}"}, "sk": {"S": "EUR"}, "balance_minor": {"N": "1"}},
        )
    seed_available(ddb, BOOKS, 12_345)
    seed_available(ddb, TOYS, 2_000)
    calls: list[tuple[str, dict[str, Any]]] = []
    run = PayoutRun()  # its own client: the hook goes on that one
    run.ddb.meta.events.register(
        "before-parameter-build.dynamodb.*", lambda model, params, **_: calls.append((model.name, params))
    )
    # When the run looks for sellers to pay
    answer = run.run(DAY)
    # Then it queried the sparse index's partitions and never scanned the wallets table
    assert not [name for name, _ in calls if name == "Scan"]
    index_queries = [p for name, p in calls if name == "Query" and p.get("IndexName") == "by_balance_shard"]
    assert len(index_queries) == BALANCE_SHARDS
    assert sorted(answer.created) == sorted(scheduled_payout_id(s, "EUR", DAY) for s in (BOOKS, TOYS))


def test_a_scheduled_payout_id_never_reads_as_a_card_number() -> None:
    # Given a seller whose first digest for the day holds 16 digits in a row that pass the Luhn check in Visa's
    # range (found by search: about one seller in ten thousand)
    from payments.kernel.pan import contains_pan

    day = date(2026, 12, 10)
    plain = "sp-20261210-EUR-" + hashlib.sha256(b"seller-1586|EUR|2026-12-10").hexdigest()[:19]
    assert contains_pan(plain)
    # When the run names its payout, then the id is drawn again: no card number, still 35 characters and the
    # same every time
    payout_id = scheduled_payout_id("seller-1586", "EUR", day)
    assert not contains_pan(payout_id) and payout_id != plain and len(payout_id) == 35
    assert payout_id == scheduled_payout_id("seller-1586", "EUR", day)
    # and an id that never read as one is unchanged
    assert scheduled_payout_id("seller-1", "EUR", day) == (
        "sp-20261210-EUR-" + hashlib.sha256(b"seller-1|EUR|2026-12-10").hexdigest()[:19]
    )
