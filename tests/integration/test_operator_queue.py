"""The work queues on the local runtime (non-default ports): the operator routes over HTTP, with the
runtime's stand-in for the caller, the attention reason in GET /v1/payments/{id}, and the
``payments mismatches`` command against the same data."""

from __future__ import annotations

import csv
import json

import pytest

from payments.kernel import clock
from payments.ops.cli import main
from payments.ops.reconcile import psp_settle
from payments.payin.repository import PaymentsRepository
from payments_dev.local.http_api import LOCAL_CALLER
from tests.integration.conftest import checkout, wait_done
from tests.integration.test_reconciliation_flow import put, s3_get, wait_report


def test_mismatches_and_attention_are_work_queues_over_http_and_from_the_shell(
    api, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a day with a paid checkout, and a copy of its settlement file without the checkout's two rows
    body = checkout(orders=[("seller_queue", "7.00", "USD"), ("seller_queue", "3.10", "EUR")])
    assert api.pay(body, "queue-" + body["checkout_id"]).status == 202
    wait_done(api, body["checkout_id"])
    day = clock.now().date().isoformat()
    key = psp_settle(day, None)
    wait_report(key)
    ours = {o["payment_order_id"] for o in body["payment_orders"]}
    lines = s3_get(key).decode().splitlines()
    kept = [line for line in lines if next(csv.reader([line]))[3] not in ours]
    partial = key.replace(".csv", "-partial.csv")
    put(partial, ("\n".join(kept) + "\n").encode())
    wait_report(partial)

    # When the day's open mismatches are read through the operator API
    reply = api.request("GET", f"/v1/operator/mismatches?day={day}&open=true")
    # Then both missing charges are there, each with a short id
    assert reply.status == 200
    mine = [m for m in reply.body["mismatches"] if m["source_key"] == partial]
    assert sorted(m["payment_order_id"] for m in mine) == sorted(ours)
    assert {m["kind"] for m in mine} == {"MISSING_IN_SETTLEMENT"}
    first, second = mine
    # When one is resolved over HTTP: the runtime's stand-in is the caller
    reply = api.request("POST", f"/v1/operator/mismatches/{first['id']}/resolve", {"note": "settles tomorrow"})
    assert reply.status == 200 and reply.body["resolved_by"] == LOCAL_CALLER
    again = api.request("POST", f"/v1/operator/mismatches/{first['id']}/resolve", {"note": "again"})
    assert again.status == 409 and again.headers.get("Content-Type", "").startswith("application/problem+json")
    assert api.request("GET", "/v1/operator/mismatches/20200101-000000000000").status == 404
    # And the other from the shell, against the same runtime
    assert main(["mismatches", "resolve", second["id"], "--note", "checked with the PSP"]) == 0
    capsys.readouterr()
    assert main(["mismatches", "show", second["id"], "--output", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "RESOLVED" and shown["resolution"] == "checked with the PSP"
    main(["mismatches", "list", "--day", day, "--open", "--output", "json"])
    assert not {m["id"] for m in json.loads(capsys.readouterr().out)} & {first["id"], second["id"]}
    # And the file's HTML report was written again, showing both resolutions
    page = (s3_get(f"reports/{partial}.html") or b"").decode()
    assert "checked with the PSP" in page and page.count('class="resolved"') >= 2

    # When one of the orders is parked for a person
    order = body["payment_orders"][0]["payment_order_id"]
    PaymentsRepository().flag_attention(order, "chargeback on a refunded order: claim to pursue")
    # Then GET /v1/payments/{id} says why, and the operator API lists it and closes it as the caller
    orders = {o["payment_order_id"]: o for o in api.payment(body["checkout_id"]).body["payment_orders"]}
    assert orders[order]["attention"]["kind"] == "PERSON" and orders[order]["attention"]["since"]
    flags = api.request("GET", "/v1/operator/attention").body["flags"]
    assert order in {f["id"] for f in flags}
    reply = api.request("POST", f"/v1/operator/attention/{order}/resolve", {"note": "claim filed"})
    assert reply.status == 200 and reply.body["resolved_by"] == LOCAL_CALLER and reply.body["open"] is False
    orders = {o["payment_order_id"]: o for o in api.payment(body["checkout_id"]).body["payment_orders"]}
    assert orders[order]["attention"] is None and orders[order]["needs_attention"] is False
