"""One black-box client, two PSPs: ``payments serve`` and ``payments serve --psp adyen-fake`` driven from other
processes exactly alike, through the HTTP API, the operator's CLI and the AWS-compatible endpoint only.

The same tests run on both (the module is parametrised by PSP): checkouts and a decline, refunds (partial,
concurrent, replayed, declined by the PSP), notifications (a forged one, and a dispute's whole course raised
with ``payments psp chargeback`` and its steps), then ``payments psp settle``, the S3 trigger's reconciliation
report, and ``payments verify``. Nothing here knows which PSP runs: on the simulator the CLI delivers each
dispute notification, on the Adyen fake the fake delivers it to the webhook by itself (as Adyen does), and
the client only waits for what the API shows. The tests run in file order and share the runtime: the last
one settles the day that the others made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from payments_dev.local.client import ApiClient, Reply
from payments_dev.local.runtime import free_port, wait_until
from tests.integration.conftest import checkout, unique

SERVE_START_S = 120.0
SETTLE_S = 90.0
PSPS = ("simulator", "adyen-fake")


@dataclass
class Served:
    psp: str
    api_url: str
    aws_url: str
    env: dict[str, str]

    @property
    def api(self) -> ApiClient:
        return ApiClient(self.api_url)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """An operator command against this runtime, from another process, as JSON."""
        return subprocess.run(
            [sys.executable, "-m", "payments.ops.cli", *args, "--endpoint", self.aws_url, "--output", "json"],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=180,
            check=False,
        )

    def s3(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.aws_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )


@pytest.fixture(scope="module", params=PSPS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    psp: str = request.param
    api_port, aws_port = free_port(), free_port()
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PAYMENTS_", "BOTO"))}
    env.update({"HOME": str(home), "PAYMENTS_RUNTIME_DIR": str(tmp_path_factory.mktemp("run"))})
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    serve_env = {**env, "PAYMENTS_ADYEN_FAKE_RETRY_SCALE": "0.001"}
    command = [sys.executable, "-m", "payments.ops.cli", "serve", "--psp", psp]
    process = subprocess.Popen(
        [*command, "--port", str(api_port), "--aws-port", str(aws_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=serve_env,
    )
    assert process.stdout is not None
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:  # keep draining, so that the server never blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.strip() == "ready":
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(SERVE_START_S), "".join(output)[-3000:]
        yield Served(psp, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _until(fetch: Any, done: Any, what: str, seconds: float = SETTLE_S) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen["body"] = fetch()
        return bool(done(seen["body"]))

    assert wait_until(reached, seconds, interval=0.25), f"{what}: {seen.get('body')}"
    return seen["body"]


def _payment_done(api: ApiClient, checkout_id: str) -> dict[str, Any]:
    return _until(
        lambda: api.payment(checkout_id).body,
        lambda b: b.get("is_payment_done") or b.get("status") == "FAILED",
        f"checkout {checkout_id} not done",
    )


def _refund(api: ApiClient, body: dict[str, Any]) -> Reply:
    return api.request("POST", "/v1/refunds", body, headers={"Idempotency-Key": "k-" + body["refund_id"]})


def _refund_decided(api: ApiClient, refund_id: str) -> dict[str, Any]:
    return _until(
        lambda: api.request("GET", f"/v1/refunds/{refund_id}").body,
        lambda b: b.get("status") != "PENDING" or b.get("needs_attention"),
        f"refund {refund_id} not decided",
    )


def _order(api: ApiClient, checkout_id: str) -> dict[str, Any]:
    (order,) = api.payment(checkout_id).body["payment_orders"]
    return dict(order)


def _amount(api: ApiClient, seller: str, currency: str = "USD") -> str:
    balances = api.wallet(seller).body.get("balances", [])
    return next((b["amount"] for b in balances if b["currency"] == currency), "0.00")


def _paid(served: Served, amount: str, token: str = "tok_visa") -> tuple[str, str, str]:
    """(checkout_id, payment_order_id, seller) of a paid order of ``amount`` USD."""
    seller = unique("seller")
    body = checkout(token=token, orders=[(seller, amount, "USD")])
    assert served.api.pay(body, "key-" + body["checkout_id"]).status == 202
    assert _payment_done(served.api, body["checkout_id"])["status"] == "SUCCEEDED"
    return body["checkout_id"], body["payment_orders"][0]["payment_order_id"], seller


def test_a_checkout_of_three_orders_and_a_declined_one(served: Served) -> None:
    api = served.api
    # Given a checkout of three sellers' orders, in currencies of 2, 0 and 3 decimals
    orders = [(unique("seller"), "19.99", "USD"), (unique("seller"), "1500", "JPY"), (unique("seller"), "7.250", "KWD")]
    body = checkout(orders=orders)
    first = api.pay(body, "key-" + body["checkout_id"])
    assert first.status == 202, first.body
    # Then every order is charged, and each seller's wallet holds its amount
    done = _payment_done(api, body["checkout_id"])
    assert done["status"] == "SUCCEEDED", done
    assert [o["status"] for o in done["payment_orders"]] == ["SUCCESS"] * 3, done
    assert all(o["wallet_updated"] and o["ledger_updated"] for o in done["payment_orders"]), done
    for seller, amount, currency in orders:
        assert _amount(api, seller, currency) == amount, api.wallet(seller).body
    # And the same request again is the same payment, not a second charge
    again = api.pay(body, "key-" + body["checkout_id"])
    assert again.status in (200, 202) and again.body["checkout_id"] == body["checkout_id"], again.body
    # When a card is declined, the checkout fails and no money moves
    declined = checkout(token="tok_chargeDeclined", orders=[(unique("seller"), "5.00", "USD")])
    assert api.pay(declined, "key-" + declined["checkout_id"]).status == 202
    failed = _payment_done(api, declined["checkout_id"])
    assert failed["status"] == "FAILED" and failed["payment_orders"][0]["status"] == "FAILED", failed
    assert _amount(api, declined["payment_orders"][0]["seller_account"]) == "0.00"
    balance = api.trial_balance().body
    assert all(c["debits"] == c["credits"] for c in balance["currencies"]), balance


def test_refunds_partial_concurrent_replayed_and_the_rest(served: Served) -> None:
    api = served.api
    checkout_id, po, seller = _paid(served, "70.00")
    # When 20 refunds of 60.00 arrive at once, exactly one is accepted
    bodies = [
        {"refund_id": unique("rf"), "payment_order_id": po, "amount": "60.00", "currency": "USD"} for _ in range(20)
    ]
    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(lambda b: _refund(api, b), bodies))
    assert sorted(r.status for r in replies) == [202] + [422] * 19, [r.status for r in replies]
    assert {r.body["type"] for r in replies if r.status == 422} == {"urn:payments:problem:refund-exceeds-remaining"}
    accepted = next(r.body for r in replies if r.status == 202)
    # Then it succeeds at the PSP, and the seller keeps 10.00
    assert _refund_decided(api, accepted["refund_id"])["status"] == "SUCCEEDED"
    assert _amount(api, seller) == "10.00"
    # And its replay returns the same refund and moves nothing
    body = next(b for b in bodies if b["refund_id"] == accepted["refund_id"])
    again = _refund(api, body)
    assert again.status == 202 and again.body["refund_id"] == body["refund_id"], again.body
    # When the rest is refunded (amount omitted: all that is still refundable)
    rest = unique("rf")
    reply = _refund(api, {"refund_id": rest, "payment_order_id": po, "currency": "USD"})
    assert reply.status == 202 and reply.body["amount"] == "10.00", reply.body
    assert _refund_decided(api, rest)["status"] == "SUCCEEDED"
    # Then the order shows 70.00 refunded, the seller has nothing, and nothing more can be refunded
    order = _until(lambda: _order(api, checkout_id), lambda o: o.get("refunded_amount") == "70.00", "refunded")
    assert order["status"] == "SUCCESS", order
    assert _amount(api, seller) == "0.00"
    more = _refund(api, {"refund_id": unique("rf"), "payment_order_id": po, "amount": "0.01", "currency": "USD"})
    assert more.status == 422, more.body


def test_a_refund_the_psp_declines_fails_and_moves_no_money(served: Served) -> None:
    api = served.api
    _, po, seller = _paid(served, "12.00", token="tok_refundFails")
    rf = unique("rf")
    assert _refund(api, {"refund_id": rf, "payment_order_id": po, "amount": "5.00", "currency": "USD"}).status == 202
    decided = _refund_decided(api, rf)
    assert decided["status"] == "FAILED" and decided["failure_reason"] == "refund_declined", decided
    assert _amount(api, seller) == "12.00"


def test_a_forged_notification_is_refused_and_a_dispute_runs_its_course(served: Served) -> None:
    api = served.api
    checkout_id, po, seller = _paid(served, "30.00")
    psp_reference = _order(api, checkout_id)["psp_reference"]
    # A notification with a signature the stage's key did not make: 401, nothing changes
    forged = {
        "eventCode": "CHARGEBACK",
        "success": "true",
        "pspReference": "FORGED0000000001",
        "originalReference": psp_reference,
        "merchantReference": po,
        "merchantAccountCode": "LocalMerchant",
        "amount": {"value": 3000, "currency": "USD"},
        "eventDate": "2026-12-07T10:00:00+01:00",
        "reason": "forged",
        "additionalData": {"hmacSignature": "A" * 43 + "="},
    }
    body = {"live": "false", "notificationItems": [{"NotificationRequestItem": forged}]}
    assert api.request("POST", "/v1/psp/notifications", body).status == 401
    assert _amount(api, seller) == "30.00"
    # When the cardholder's bank disputes 10.00 (the operator's command; the PSP sends the notification)
    raised = served.cli("psp", "chargeback", po, "--amount", "10.00", "--api", served.api_url)
    assert raised.returncode == 0, raised.stdout + raised.stderr
    dispute = json.loads(raised.stdout)["dispute_reference"]
    # Then the order shows the chargeback, and the seller gives the 10.00 back
    _until(lambda: _order(api, checkout_id), lambda o: o.get("chargeback_amount") == "10.00", "charged back")
    _until(lambda: {"amount": _amount(api, seller)}, lambda b: b["amount"] == "20.00", "seller debited")
    # When the defence wins, the chargeback is reversed: the seller has it again, and it no longer counts
    reversed_ = served.cli("psp", "chargeback-reversed", dispute, "--api", served.api_url)
    assert reversed_.returncode == 0, reversed_.stdout + reversed_.stderr
    _until(lambda: _order(api, checkout_id), lambda o: o.get("chargeback_amount") == "0.00", "reversed")
    _until(lambda: {"amount": _amount(api, seller)}, lambda b: b["amount"] == "30.00", "seller credited")
    # And the order can be refunded again
    rf = unique("rf")
    assert _refund(api, {"refund_id": rf, "payment_order_id": po, "amount": "5.00", "currency": "USD"}).status == 202
    assert _refund_decided(api, rf)["status"] == "SUCCEEDED"
    # When the defence loses after all (a second chargeback), the 10.00 is taken again
    second = served.cli("psp", "second-chargeback", dispute, "--api", served.api_url)
    assert second.returncode == 0, second.stdout + second.stderr
    _until(lambda: _order(api, checkout_id), lambda o: o.get("chargeback_amount") == "10.00", "charged back again")
    _until(lambda: {"amount": _amount(api, seller)}, lambda b: b["amount"] == "15.00", "seller debited again")
    # And a dispute step the PSP has no record of is one line, exit 2
    unknown = served.cli("psp", "chargeback-reversed", "NOSUCHDISPUTE000", "--api", served.api_url)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr, unknown.stdout + unknown.stderr


def test_the_day_settles_reconciles_clean_and_verifies(served: Served) -> None:
    # Given (besides what the tests before made) a paid order with a refund, so that the day has both
    _, po, _ = _paid(served, "3.00")
    rf = unique("rf")
    assert (
        _refund(served.api, {"refund_id": rf, "payment_order_id": po, "amount": "1.00", "currency": "USD"}).status
        == 202
    )
    assert _refund_decided(served.api, rf)["status"] == "SUCCEEDED"
    # When the operator settles the day (whichever PSP the runtime runs writes its file)
    settled = served.cli("psp", "settle")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    written = json.loads(settled.stdout)
    key = written["key"]
    assert written["rows"] > 0, written
    s3 = served.s3()
    if served.psp == "adyen-fake":  # the fake's Settlement Details Report, not the simulator's file
        assert key.startswith("incoming/adyen/") and written["psp"] == "adyen-fake", written
        csv = s3.get_object(Bucket="settlements", Key=key)["Body"].read().decode()
        assert f",{po}," in csv and ",Settled," in csv and f",{rf}," in csv and ",Refunded," in csv, csv[:3000]
    # Then the S3 trigger reconciles it clean: every charge, refund and dispute step of the day matched
    report: dict[str, Any] = {}

    def reconciled() -> bool:
        try:
            report.update(json.loads(s3.get_object(Bucket="settlements", Key=f"reports/{key}.json")["Body"].read()))
        except s3.exceptions.NoSuchKey:
            return False
        return True

    assert wait_until(reconciled, 120, interval=0.5), f"no report for {key}"
    assert report["clean"] and not report["rejected_rows"] and not report["mismatches"], json.dumps(report)[:3000]
    # And every money invariant holds, read from the PSP's own record
    verified = served.cli("verify", "--psp", "adyen" if served.psp == "adyen-fake" else "simulator")
    assert verified.returncode == 0, verified.stdout[-4000:] + verified.stderr
    checks = json.loads(verified.stdout)
    assert "SKIPPED" not in json.dumps(checks), checks
