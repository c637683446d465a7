"""Payouts on the local runtime, as a client: the real HTTP API, the payouts function, moto's DynamoDB, KMS and
S3; then ``payments payouts run`` writes the night's pain.001 into the bank bucket.

Available balances come as in production: a charge, then the day's settlement file reconciled."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import boto3
import pytest
import sepaxml
import xmlschema

from payments.kernel.config import settings
from payments.kernel.money import format_minor
from payments.ops.cli import main
from payments.payouts.bank.pain001_reader import read_pain001
from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import REGION, LocalRuntime
from tests.integration.conftest import assert_problem, unique
from tests.integration.test_payouts_e2e import fund

IBAN = "DE89370400440532013000"
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"


def seller_with(api: ApiClient, available_minor: int) -> str:
    seller = unique("seller")
    reply = api.request(
        "PUT",
        f"/v1/sellers/{seller}/payout-account",
        {"iban": IBAN, "account_holder": "Books Ltd", "currency": "EUR"},
    )
    assert reply.status == 200, reply.body
    fund(api, seller, format_minor(available_minor, "EUR"))
    return seller


def payout(api: ApiClient, key: str, **body: object):  # type: ignore[no-untyped-def]
    return api.request("POST", "/v1/payouts", body, headers={"Idempotency-Key": key})


def test_twenty_concurrent_payouts_of_60_on_100_available_give_one_202(api: ApiClient, runtime: LocalRuntime):
    seller = seller_with(api, 10_000)

    def attempt(i: int):  # type: ignore[no-untyped-def]
        return payout(api, f"k-{seller}-{i}", payout_id=f"p{i}-{seller[-12:]}", seller_account=seller,
                      currency="EUR", amount="60.00")  # fmt: skip

    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(attempt, range(20)))
    assert sorted(r.status for r in replies) == [202] + [422] * 19, [r.body for r in replies]
    for reply in replies:
        if reply.status == 422:
            assert_problem(reply, 422, "payout-exceeds-available", "amount")
            assert "at most 40.00 EUR is available" in reply.body["detail"]
    wallet = api.request("GET", f"/v1/wallets/{seller}")
    assert wallet.status in (200, 404)  # the wallet's view of balances is the balances' engineer's


def test_a_payout_is_read_back_replayed_and_sent_in_the_nights_file(
    api: ApiClient, runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
):
    seller = seller_with(api, 2_499)
    payout_id = f"pt-{seller[-12:]}"
    first = payout(api, f"k-{seller}", payout_id=payout_id, seller_account=seller, currency="EUR")
    again = payout(api, f"k-{seller}", payout_id=payout_id, seller_account=seller, currency="EUR")
    assert first.status == again.status == 202 and first.body == again.body and first.body["amount"] == "24.99"
    assert first.headers["Location"] == f"/v1/payouts/{payout_id}"
    got = api.request("GET", f"/v1/payouts/{payout_id}")
    assert got.status == 200 and got.body["status"] == "PENDING"
    # no rail for USD, no account for another seller: 409 saying which
    usd = payout(api, f"k-usd-{seller}", payout_id=f"u-{seller[-12:]}", seller_account=seller, currency="USD",
                 amount="1.00")  # fmt: skip
    assert_problem(usd, 409, "payout-not-possible", "currency")
    nobody = payout(api, f"k-no-{seller}", payout_id=f"n-{seller[-12:]}", seller_account=unique("s"),
                    currency="EUR", amount="1.00")  # fmt: skip
    assert_problem(nobody, 409, "payout-not-possible", "seller_account")

    # When the night's run runs, as the operator runs it locally
    assert main(["payouts", "run", "--date", "2026-12-07", "--endpoint", runtime.aws_url, "--output", "json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert payout_id in answer["submitted"] and answer["files"]
    s3 = boto3.client("s3", endpoint_url=runtime.aws_url, region_name=REGION)
    (file,) = list(answer["files"])
    content = s3.get_object(Bucket=settings().bank_bucket, Key=file["key"])["Body"].read()
    xmlschema.XMLSchema(str(XSD)).validate(content.decode())
    assert payout_id in {t.end_to_end_id for t in read_pain001(content).transactions}
    assert api.request("GET", f"/v1/payouts/{payout_id}").body["status"] == "SUBMITTED"
    assert IBAN not in json.dumps(answer)
    # and a second run of the day sends nothing again
    assert main(["payouts", "run", "--date", date(2026, 12, 7).isoformat(), "--endpoint", runtime.aws_url,
                 "--output", "json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["files"] == []
