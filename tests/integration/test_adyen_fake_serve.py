"""``payments serve --psp adyen-fake`` used as a client and an operator would, from other processes: a
refund completes because the fake delivers its REFUND notification to the stage's webhook by itself (as
Adyen does), and ``payments psp settle`` writes the fake's Settlement Details Report (not the simulator's
empty day), which the S3 trigger reconciles clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import free_port, wait_until
from tests.integration.conftest import checkout, unique

SERVE_START_S = 120.0


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    api_port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PAYMENTS_"))}
    env["PAYMENTS_ADYEN_FAKE_RETRY_SCALE"] = "0.001"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "payments.ops.cli",
            "serve",
            "--psp",
            "adyen-fake",
            "--port",
            str(api_port),
            "--aws-port",
            str(aws_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
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
        yield f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _status(api: ApiClient, path: str, wanted: str, seconds: float = 90.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen["body"] = api.request("GET", path).body
        return bool(seen["body"].get("status") == wanted)

    assert wait_until(reached, seconds, interval=0.25), seen
    return seen["body"]


def test_a_refund_completes_and_psp_settle_writes_the_fakes_report(served: tuple[str, str]) -> None:
    api_url, aws_url = served
    api = ApiClient(api_url)
    # Given an order of 19.99 EUR paid through the Adyen adapter against the fake
    body = checkout(orders=[(unique("seller"), "19.99", "EUR")])
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    _status(api, f"/v1/payments/{body['checkout_id']}", "SUCCEEDED")
    po = body["payment_orders"][0]["payment_order_id"]
    # When a refund of 4.00 is asked (nobody delivers notifications by hand)
    refund_id = unique("rf")
    reply = api.request(
        "POST",
        "/v1/refunds",
        {"refund_id": refund_id, "payment_order_id": po, "amount": "4.00", "currency": "EUR"},
        headers={"Idempotency-Key": "k-" + refund_id},
    )
    assert reply.status == 202, reply.body
    # Then it succeeds: the fake's REFUND notification reached the webhook by itself
    refund = _status(api, f"/v1/refunds/{refund_id}", "SUCCEEDED")
    assert refund["amount"] == "4.00", refund
    # When the operator settles the day from another process
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PAYMENTS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "payments.ops.cli", "psp", "settle", "--endpoint", aws_url, "--output", "table"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    # Then the fake wrote its report for the Adyen source, with the charge and the refund
    assert done.returncode == 0, done.stdout + done.stderr
    assert "incoming/adyen/" in done.stdout and "adyen-fake" in done.stdout, done.stdout
    key = done.stdout.split("wrote ", 1)[1].split(" ", 1)[0]
    s3 = boto3.client(
        "s3", endpoint_url=aws_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    csv = s3.get_object(Bucket="settlements", Key=key)["Body"].read().decode()
    assert f",{po}," in csv and ",Settled," in csv and ",Refunded," in csv and f",{refund_id}," in csv, csv
    # And the S3 trigger reconciled it clean
    report: dict[str, Any] = {}

    def reconciled() -> bool:
        try:
            report.update(json.loads(s3.get_object(Bucket="settlements", Key=f"reports/{key}.json")["Body"].read()))
        except s3.exceptions.NoSuchKey:
            return False
        return True

    assert wait_until(reconciled, 120, interval=0.5), f"no report for {key}"
    assert report["clean"] and not report["rejected_rows"] and not report["mismatches"], json.dumps(report)[:3000]
