"""Refunds, notifications and chargebacks end to end on the local runtime (issue 18): the real
HTTP API, stepfunctions/refund.asl.json interpreted by moto, the real handlers. The package's
autouse fixture checks every invariant (8 included) after each test."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from payments.kernel.observability import LOCAL_COUNTS
from payments.notifications.store import NotificationStore
from payments.psp.simulator import SimulatedPsp
from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import wait_until
from tests.integration.conftest import checkout, unique, wait_done


def paid_order(api: ApiClient, amount: str = "70.00", token: str = "tok_visa") -> tuple[str, str]:
    seller = unique("seller")
    body = checkout(token=token, orders=[(seller, amount, "USD")])
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    done = wait_done(api, body["checkout_id"])
    assert done["status"] == "SUCCEEDED", done
    return body["payment_orders"][0]["payment_order_id"], seller


def refund(api: ApiClient, body: dict[str, Any], key: str) -> Any:
    return api.request("POST", "/v1/refunds", body, headers={"Idempotency-Key": key})


def wait_refund(api: ApiClient, refund_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def decided() -> bool:
        seen["body"] = api.request("GET", f"/v1/refunds/{refund_id}").body
        return seen["body"]["status"] != "PENDING" or seen["body"]["needs_attention"]

    assert wait_until(decided, 60, interval=0.2), seen
    return seen["body"]


def usd_balance(amount: str, pending: str = "70.00") -> list[dict[str, str]]:
    """A seller's USD balance whose only charge (``pending``, its settlement file not reconciled) had
    money given back: what is owed is ``amount``, the money back taken from available."""
    available = Decimal(amount) - Decimal(pending)
    return [
        {"currency": "USD", "amount": amount, "pending": pending, "available": f"{available:.2f}", "in_transit": "0.00"}
    ]


def balance_becomes(api: ApiClient, seller: str, po: str, amount: str) -> None:
    """Notifications are applied asynchronously (queue -> consumer): wait until every stored
    notification of the order has been processed (each has its outcome), then check the balance:
    a notification applied twice, or late, would have moved it by then."""

    def all_processed() -> bool:
        return all("outcome" in n for n in NotificationStore().scan() if n["merchant_reference"] == po)

    assert wait_until(all_processed, 30, interval=0.1), [
        n for n in NotificationStore().scan() if n["merchant_reference"] == po
    ]
    assert api.wallet(seller).body["balances"] == usd_balance(amount), api.wallet(seller).body


def notify(api: ApiClient, *items: dict[str, Any]) -> Any:
    return api.request(
        "POST",
        "/v1/psp/notifications",
        {"live": "false", "notificationItems": [{"NotificationRequestItem": i} for i in items]},
    )


def test_twenty_concurrent_refunds_one_accepted_then_succeeded(api: ApiClient) -> None:
    # Given a paid order of 70.00
    po, seller = paid_order(api)
    # When 20 refunds of 60.00 arrive at once
    bodies = [
        {"refund_id": unique("rf"), "payment_order_id": po, "amount": "60.00", "currency": "USD"} for _ in range(20)
    ]
    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(pool.map(lambda b: refund(api, b, "key-" + b["refund_id"]), bodies))
    # Then exactly one is accepted and 19 are refund-exceeds-remaining
    statuses = sorted(r.status for r in replies)
    assert statuses == [202] + [422] * 19, statuses
    assert all(r.body["type"] == "urn:payments:problem:refund-exceeds-remaining" for r in replies if r.status == 422)
    accepted = next(r for r in replies if r.status == 202)
    rf = accepted.body["refund_id"]
    assert accepted.headers["Location"] == f"/v1/refunds/{rf}"
    # And the workflow refunds it: the seller keeps 10.00, the order shows 60.00 refunded
    assert wait_refund(api, rf)["status"] == "SUCCEEDED"
    assert api.wallet(seller).body["balances"] == usd_balance("10.00")
    # And a replay returns the same refund and starts nothing new
    body = next(b for b in bodies if b["refund_id"] == rf)
    again = refund(api, body, "key-" + rf)
    assert again.status == 202 and again.body["refund_id"] == rf and again.body["amount"] == "60.00"


def test_refund_fails_token_ends_failed_with_no_money_moved(api: ApiClient) -> None:
    po, seller = paid_order(api, token="tok_refundFails")
    rf = unique("rf")
    assert refund(api, {"refund_id": rf, "payment_order_id": po, "currency": "USD"}, "k-" + rf).status == 202
    decided = wait_refund(api, rf)
    assert decided["status"] == "FAILED" and decided["failure_reason"] == "refund_declined"
    assert api.wallet(seller).body["balances"] == usd_balance("70.00")


def test_notifications_bad_signature_duplicates_and_a_chargeback_with_its_reversal(api: ApiClient) -> None:
    po, seller = paid_order(api)
    psp = SimulatedPsp()
    chargeback = psp.raise_chargeback(po)
    # A bad signature is 401 and changes nothing
    forged = json.loads(json.dumps(chargeback))
    forged["additionalData"]["hmacSignature"] = "AAAA" + forged["additionalData"]["hmacSignature"][4:]
    assert notify(api, forged).status == 401
    assert api.wallet(seller).body["balances"] == usd_balance("70.00")
    # The chargeback, delivered twice, takes 70.00 once; a refund is then refused: nothing remains refundable
    for _ in range(2):
        reply = notify(api, chargeback)
        assert reply.status == 200 and reply.body == "[accepted]"
    balance_becomes(api, seller, po, "0.00")
    rf = unique("rf")
    refused = refund(api, {"refund_id": rf, "payment_order_id": po, "amount": "1.00", "currency": "USD"}, "k-" + rf)
    assert refused.status == 422 and refused.body["type"] == "urn:payments:problem:refund-exceeds-remaining"
    # The reversal, delivered twice, gives it back once
    reversal = psp.reverse_chargeback(chargeback["pspReference"])
    notify(api, reversal)
    notify(api, reversal)
    balance_becomes(api, seller, po, "70.00")
    # and the order is refundable again (chargeback_amount 0.00): a refund of 1.00 is accepted and succeeds
    rf = unique("rf")
    accepted = refund(api, {"refund_id": rf, "payment_order_id": po, "amount": "1.00", "currency": "USD"}, "k-" + rf)
    assert accepted.status == 202, accepted.body
    assert wait_refund(api, rf)["status"] == "SUCCEEDED"
    assert api.wallet(seller).body["balances"] == usd_balance("69.00")


def test_a_reversal_before_its_chargeback_waits_on_the_queue_and_applies_once(api: ApiClient) -> None:
    # Given a chargeback and its reversal, delivered in the wrong order
    po, seller = paid_order(api)
    psp = SimulatedPsp()
    chargeback = psp.raise_chargeback(po, 2500)
    reversal = psp.reverse_chargeback(chargeback["pspReference"])
    deferred = LOCAL_COUNTS["ReversalBeforeChargeback"]
    assert notify(api, reversal).status == 200
    # Then the consumer sees the reversal and defers it (it stays on the queue), not applied
    assert wait_until(lambda: LOCAL_COUNTS["ReversalBeforeChargeback"] > deferred, 30, interval=0.05)
    assert api.wallet(seller).body["balances"] == usd_balance("70.00")
    # When the chargeback arrives, the queue redelivers the reversal, and both apply once
    assert notify(api, chargeback).status == 200
    from payments.notifications.store import NotificationStore

    def outcomes() -> dict[str, Any]:
        return {
            n["event_code"]: n.get("outcome")
            for n in NotificationStore().scan()
            if n["psp_reference"] == chargeback["pspReference"]
        }

    assert wait_until(lambda: outcomes() == {"CHARGEBACK": "APPLIED", "CHARGEBACK_REVERSED": "APPLIED"}, 30), outcomes()
    balance_becomes(api, seller, po, "70.00")


def test_payments_psp_chargeback_raises_one_and_delivers_it(api: ApiClient, runtime: Any, capsys: Any) -> None:
    from payments.ops.cli import main

    # Given a paid order of 70.00
    po, seller = paid_order(api)
    # When the operator makes the simulated PSP raise a chargeback of 10.00
    argv = ["psp", "chargeback", po, "--amount", "10.00", "--endpoint", runtime.aws_url, "--api", runtime.api_url]
    assert main([*argv, "--output", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    # Then its signed notification was accepted and the seller lost 10.00 once
    assert printed["notification"] == {"status": 200, "body": "[accepted]"} and printed["amount"] == "10.00 USD"
    balance_becomes(api, seller, po, "60.00")
    dispute = printed["dispute_reference"]
    # and its reversal gives it back
    assert main(["psp", "chargeback-reversed", dispute, "--endpoint", runtime.aws_url, "--api", runtime.api_url]) == 0
    balance_becomes(api, seller, po, "70.00")
    # and its second chargeback (the defence lost after all) takes it again; a second one of it is refused by the PSP
    assert main(["psp", "second-chargeback", dispute, "--endpoint", runtime.aws_url, "--api", runtime.api_url]) == 0
    balance_becomes(api, seller, po, "60.00")
    capsys.readouterr()
    other = paid_order(api)[0]
    assert main(["psp", "chargeback", other, "--endpoint", runtime.aws_url, "--output", "json"]) == 0
    undisputed = json.loads(capsys.readouterr().out)["dispute_reference"]
    # (the PSP refusing a step is the command not doing its job: one line, exit 2)
    assert main(["psp", "second-chargeback", undisputed, "--endpoint", runtime.aws_url]) == 2
    assert "payments psp second-chargeback: refused by the PSP: no reversal for dispute" in capsys.readouterr().err


def test_the_days_file_with_refund_and_chargeback_rows_reconciles_with_zero_mismatches(api: ApiClient) -> None:
    import csv
    import io

    from payments.kernel import aws, clock
    from payments.kernel.config import settings
    from payments.ops.reconcile import psp_settle
    from tests.integration.test_reconciliation_flow import put, s3_get, wait_report

    # Given a charge of 70.00, a refund of 15.00 SUCCEEDED, and a chargeback of 20.00 with its reversal
    # and its second chargeback
    po, seller = paid_order(api)
    rf = unique("rf")
    assert (
        refund(api, {"refund_id": rf, "payment_order_id": po, "amount": "15.00", "currency": "USD"}, "k-" + rf).status
        == 202
    )
    assert wait_refund(api, rf)["status"] == "SUCCEEDED"
    psp = SimulatedPsp()
    chargeback = psp.raise_chargeback(po, 2000)
    assert notify(api, chargeback).status == 200
    balance_becomes(api, seller, po, "35.00")
    assert notify(api, psp.reverse_chargeback(chargeback["pspReference"])).status == 200
    balance_becomes(api, seller, po, "55.00")
    assert notify(api, psp.second_chargeback(chargeback["pspReference"])).status == 200
    balance_becomes(api, seller, po, "35.00")

    # When the PSP settles the day (the S3 trigger reconciles the file; an earlier test's report of
    # the day is removed first, to see the new one)
    day = clock.now().date().isoformat()
    aws.client("s3").delete_object(
        Bucket=settings().settlement_bucket, Key=f"reports/incoming/simulated-psp/{day}.csv.json"
    )
    key = psp_settle(day, None)
    report = wait_report(key)

    # Then the file holds the refund's, the chargeback's, the reversal's and the second chargeback's rows for the order
    rows = list(csv.DictReader(io.StringIO(s3_get(key).decode())))
    ours = sorted(
        (r["Type"], r["Modification Merchant Reference"])
        for r in rows
        if r["Merchant Reference"] == po and r["Type"] != "Settled"
    )
    assert ours == [("Chargeback", ""), ("ChargebackReversed", ""), ("Refunded", rf), ("SecondChargeback", "")]
    # And the day reconciles with 0 mismatches, the refund and chargeback rows counted as matched
    assert report["mismatches"] == [] and report["rejected_rows"] == [], report["mismatches"][:3]
    assert report["clean"] is True
    adjustments = report["summary"]["adjustments"]
    for record_type in ("Refunded", "Chargeback", "ChargebackReversed", "SecondChargeback"):
        counts = adjustments[record_type]
        assert (
            counts["matched"] == counts["rows"] >= 1 and counts["mismatched"] == counts["missing_in_settlement"] == 0
        ), adjustments
    # And the charge, settled, is available: nothing pending, the money back already taken from available
    assert api.wallet(seller).body["balances"] == usd_balance("35.00", pending="0.00")

    # When a copy of the file without our refund's row is uploaded
    text = s3_get(key).decode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        if "Refunded" in row and rf in row:
            continue
        writer.writerow(row)
    short_key = key.replace(".csv", "-without-refund.csv")
    aws.client("s3").delete_object(Bucket=settings().settlement_bucket, Key=f"reports/{short_key}.json")
    put(short_key, out.getvalue().encode())
    short = wait_report(short_key)
    # Then the ledger's refund is reported MISSING_IN_SETTLEMENT, and nothing else
    assert [
        (m["kind"], m.get("record_type"), m["payment_order_id"], m["ledger_amount"]) for m in short["mismatches"]
    ] == [("MISSING_IN_SETTLEMENT", "Refunded", po, "15.00")]
    assert short["summary"]["adjustments"]["Refunded"]["missing_in_settlement"] == 1 and short["clean"] is False
    # And the second file, which reports the charge again, did not make it available a second time
    assert api.wallet(seller).body["balances"] == usd_balance("35.00", pending="0.00")


def test_a_refund_whose_workflow_did_not_start_is_re_driven_by_the_runtimes_recovery_schedule(
    api: ApiClient, runtime: Any
) -> None:
    from botocore.exceptions import ClientError

    from payments.kernel import aws
    from payments.kernel.config import settings
    from payments.refunds.repository import refund_key

    # Given a paid order, and Step Functions failing the StartExecution of one refund
    po, seller = paid_order(api)
    rf = unique("rf")
    sfn = aws.client("stepfunctions")

    def unavailable(params: dict[str, Any], **_: Any) -> None:
        if params.get("name") == rf:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "StartExecution")

    sfn.meta.events.register("before-parameter-build.sfn.StartExecution", unavailable, unique_id="refund-start-fails")
    try:
        # When the refund is posted: the reservation commits, the start fails, the client never retries
        assert refund(api, {"refund_id": rf, "payment_order_id": po, "currency": "USD"}, "k-" + rf).status == 500
    finally:
        sfn.meta.events.unregister("before-parameter-build.sfn.StartExecution", unique_id="refund-start-fails")
    assert api.request("GET", f"/v1/refunds/{rf}").body["status"] == "PENDING"
    # and its recovery deadline has passed (as if the recovery delay had elapsed)
    aws.client("dynamodb").update_item(
        TableName=settings().payments_table,
        Key=refund_key(rf),
        UpdateExpression="SET recovery_due = :past",
        ExpressionAttributeValues={":past": {"S": "2000-01-01T00:00:00.000Z"}},
    )
    # Then the runtime's recovery schedule re-drives it through the refund workflow, and it succeeds once
    summary = runtime.recovery.run_now()
    assert summary["refunds_redriven"] == 1, summary
    assert wait_refund(api, rf)["status"] == "SUCCEEDED"
    assert api.wallet(seller).body["balances"] == usd_balance("0.00")
