"""Sellers get paid, end to end on one local runtime, as a client: charges pending until the day's settlement
file is reconciled, then available; payouts to the simulated bank's test IBANs rejected, paid, and paid then
returned; the bank's files reconciled with 0 mismatches; ``payments verify`` clean; the same files again
change nothing; a seller whose available went below zero cannot be paid."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from typing import Any

import pytest

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.ops.invariants import check_current
from payments.ops.reconcile import psp_settle
from payments.payouts.bank.simulated import TEST_IBAN_PAID, TEST_IBAN_REJECTED, TEST_IBAN_RETURNED
from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import LocalRuntime, wait_until
from tests.integration.conftest import assert_problem, checkout, unique, wait_done
from tests.integration.test_bank_flow import close, objects, report
from tests.integration.test_reconciliation_flow import wait_report

TIMEOUT_S = 60.0


def wallet(api: ApiClient, seller: str) -> dict[str, str]:
    reply = api.request("GET", f"/v1/wallets/{seller}")
    assert reply.status == 200, reply.body
    (eur,) = [b for b in reply.body["balances"] if b["currency"] == "EUR"]
    return {part: eur[part] for part in ("pending", "available", "in_transit")}


def charge(api: ApiClient, orders: list[tuple[str, str, str]]) -> list[str]:
    body = checkout(orders=orders)
    assert api.pay(body, "e2e-" + body["checkout_id"]).status == 202
    done = wait_done(api, body["checkout_id"])
    assert done["status"] == "SUCCEEDED", done
    return [o["payment_order_id"] for o in body["payment_orders"]]


def fund(api: ApiClient, seller: str, amount: str) -> str:
    """A charge of ``amount`` EUR for ``seller``, made available as in production: the day's settlement file
    reconciled. Its payment order's id."""
    (po,) = charge(api, [(seller, amount, "EUR")])
    settle_today()
    return po


def settle_today() -> None:
    """The day's settlement file written (again) and reconciled: its previous report removed before and after,
    so that each settlement waits for its own reconciliation to end."""
    day = clock.now().date().isoformat()
    s3 = aws.client("s3")
    s3.delete_object(Bucket=settings().settlement_bucket, Key=f"reports/incoming/{settings().psp_name}/{day}.csv.json")
    with contextlib.redirect_stdout(io.StringIO()):  # what the command prints is not the caller's output
        key = psp_settle(day, None)
    # the day's file holds every charge of the runtime's day (other tests' too): the wallets show ours settled
    wait_report(key)
    s3.delete_object(Bucket=settings().settlement_bucket, Key=f"reports/{key}.json")


def register(api: ApiClient, seller: str, iban: str) -> None:
    reply = api.request(
        "PUT", f"/v1/sellers/{seller}/payout-account", {"iban": iban, "account_holder": "Seller Ltd", "currency": "EUR"}
    )
    assert reply.status == 200, reply.body


def payout(api: ApiClient, seller: str, **body: Any) -> Any:
    payout_id = f"pt-{seller[-12:]}"
    return api.request(
        "POST",
        "/v1/payouts",
        {"payout_id": payout_id, "seller_account": seller, "currency": "EUR", **body},
        headers={"Idempotency-Key": f"k-{payout_id}"},
    )


def status(api: ApiClient, seller: str) -> str:
    return str(api.request("GET", f"/v1/payouts/pt-{seller[-12:]}").body["status"])


def test_sellers_get_paid_as_the_test_ibans_say_and_the_books_agree(
    api: ApiClient, runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    today = clock.now().date()
    fates = {"rejected": TEST_IBAN_REJECTED, "returned": TEST_IBAN_RETURNED, "paid": TEST_IBAN_PAID}
    sellers = {fate: unique(f"seller_{fate}") for fate in fates}
    # Given charges for three sellers: pending until the PSP's file is reconciled
    charge(api, [(sellers["rejected"], "30.00", "EUR"), (sellers["returned"], "40.00", "EUR")])
    charge(api, [(sellers["paid"], "50.00", "EUR")])
    assert wallet(api, sellers["paid"]) == {"pending": "50.00", "available": "0.00", "in_transit": "0.00"}
    register(api, sellers["paid"], TEST_IBAN_PAID)
    too_early = payout(api, sellers["paid"], amount="1.00")
    assert_problem(too_early, 422, "payout-exceeds-available", "amount")
    # When the day's settlement file is reconciled: available
    settle_today()
    assert wallet(api, sellers["paid"]) == {"pending": "0.00", "available": "50.00", "in_transit": "0.00"}
    # When each registers a test IBAN and asks for all its available
    for fate, iban in fates.items():
        register(api, sellers[fate], iban)
        accepted = payout(api, sellers[fate])
        assert accepted.status == 202, accepted.body
    assert wallet(api, sellers["returned"]) == {"pending": "0.00", "available": "0.00", "in_transit": "40.00"}
    # When the night's run sends the file: the simulated bank answers, the 0001 payout FAILED, its money back
    assert main_json(["payouts", "run", "--date", today.isoformat(), "--endpoint", runtime.aws_url], capsys)["files"]
    assert wait_until(lambda: status(api, sellers["rejected"]) == "FAILED", TIMEOUT_S, 0.2)
    assert wallet(api, sellers["rejected"]) == {"pending": "0.00", "available": "30.00", "in_transit": "0.00"}
    # When the day is closed: its camt.053 reconciles with 0 mismatches, the others PAID (the bank books a file
    # on the first day not yet closed: another test of the runtime may have closed today already)
    day = today
    while f"incoming/bank/camt053/{day.isoformat()}.xml" in objects("incoming/bank/camt053/"):
        day += timedelta(days=1)
    statement = close(runtime, day.isoformat())
    assert report(statement)["counts"]["mismatches"] == 0
    assert status(api, sellers["paid"]) == status(api, sellers["returned"]) == "PAID"
    assert wallet(api, sellers["paid"]) == {"pending": "0.00", "available": "0.00", "in_transit": "0.00"}
    # When the next day is closed: the 0002 payout RETURNED, its money back once, its payout account invalid
    returned = close(runtime, (day + timedelta(days=1)).isoformat())
    assert report(returned)["counts"]["mismatches"] == 0
    assert status(api, sellers["returned"]) == "RETURNED"
    assert wallet(api, sellers["returned"]) == {"pending": "0.00", "available": "40.00", "in_transit": "0.00"}
    account = api.request("GET", f"/v1/sellers/{sellers['returned']}/payout-account")
    assert account.status == 200 and account.body["valid"] is False, account.body
    # Then payments verify is clean, invariants 1 to 11 each checked
    assert_verified()
    # When the bank's files are delivered again: nothing changes
    before = {fate: (wallet(api, s), status(api, s)) for fate, s in sellers.items()}
    bank_files = [k for k in objects("incoming/bank/") if k.endswith(".xml")]
    assert bank_files
    s3 = aws.client("s3")
    for key in bank_files:
        s3.delete_object(Bucket=settings().bank_bucket, Key=f"reports/{key}.json")
        body = s3.get_object(Bucket=settings().bank_bucket, Key=key)["Body"].read()
        s3.put_object(Bucket=settings().bank_bucket, Key=key, Body=body)
    for key in bank_files:
        assert report(key)["counts"]["applied"] == 0, key
    assert {fate: (wallet(api, s), status(api, s)) for fate, s in sellers.items()} == before
    assert_verified()


def test_a_seller_whose_available_is_below_zero_cannot_be_paid(api: ApiClient, runtime: LocalRuntime) -> None:
    seller = unique("seller_refunded")
    po = fund(api, seller, "20.00")
    register(api, seller, TEST_IBAN_PAID)
    # a refund after settlement takes the money back from available, and more: a payout took it first
    assert payout(api, seller, amount="15.00").status == 202
    refund_id = unique("rf")
    refund = api.request(
        "POST",
        "/v1/refunds",
        {"refund_id": refund_id, "payment_order_id": po, "amount": "20.00", "currency": "EUR"},
        headers={"Idempotency-Key": f"k-{refund_id}"},
    )
    assert refund.status == 202, refund.body
    assert wait_until(
        lambda: api.request("GET", f"/v1/refunds/{refund_id}").body["status"] == "SUCCEEDED", TIMEOUT_S, 0.2
    )
    assert wallet(api, seller)["available"] == "-15.00"
    refused = api.request(
        "POST",
        "/v1/payouts",
        {"payout_id": f"neg-{seller[-12:]}", "seller_account": seller, "currency": "EUR", "amount": "0.01"},
        headers={"Idempotency-Key": f"k-neg-{seller}"},
    )
    assert_problem(refused, 422, "payout-exceeds-available", "amount")


def main_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from payments.ops.cli import main

    capsys.readouterr()
    assert main([*argv, "--output", "json"]) == 0
    answer: dict[str, Any] = json.loads(capsys.readouterr().out)
    return answer


def assert_verified() -> None:
    verified = check_current(expect_settled=True)
    assert verified.ok, "\n".join(str(v) for v in verified.violations)
    assert all(verified.checks[n] for n in (2, 3, 4, 5, 6, 10, 11)), verified.checks
    assert not {10, 11} & set(verified.skipped), verified.skipped
