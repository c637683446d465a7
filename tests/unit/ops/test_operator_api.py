"""The operator API (functions/operator) and the attention reason in GET /v1/payments/{id} and GET
/v1/refunds/{id}, driven with API Gateway events (moto in-process)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from functions import registry
from payments.kernel.config import settings
from payments.payin.status import AttentionKind
from payments.reconciliation import store
from payments.reconciliation.report import to_json
from payments.refunds import logic
from payments.refunds.models import RefundRequest
from payments.refunds.repository import RefundsRepository
from payments_dev.local.lambdas import LambdaContext
from tests.unit.conftest import Repos, store_checkout, succeed

OPS = "arn:aws:sts::111122223333:assumed-role/oncall/alice"
KEY = "incoming/adyen/2026-11-30.csv"


def event(
    method: str, path: str, body: Any = None, who: str | None = OPS, query: dict[str, str] | None = None
) -> dict[str, Any]:
    identity: dict[str, Any] = {"sourceIp": "10.0.0.1", **({"userArn": who, "caller": who} if who else {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": method, "path": path, "identity": identity},
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def call(function: registry.Function, evt: dict[str, Any]) -> tuple[int, Any]:
    module = __import__(function.module, fromlist=["handler"])
    response = module.handler(evt, LambdaContext(function.local_name))
    return response["statusCode"], json.loads(response["body"])


def operator(evt: dict[str, Any]) -> tuple[int, Any]:
    return call(registry.OPERATOR, evt)


@pytest.fixture()
def parked(repos: Repos) -> Repos:
    """po_1 paid and parked for a person; rf_1 a refund of po_2, parked as re-drivable."""
    store_checkout(
        repos.payments, "chk_1", [("po_1", "seller_books", 7000, "USD"), ("po_2", "seller_toys", 500, "EUR")]
    )
    succeed(repos.payments, "po_1")
    succeed(repos.payments, "po_2")
    repos.payments.flag_attention("po_1", "chargeback on a refunded order: claim to pursue")
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    request = RefundRequest(refund_id="rf_1", payment_order_id="po_2", amount="1.00", currency="EUR")
    logic.accept_refund("k-rf_1", request, refunds, start=False)
    refunds.flag_attention("rf_1", "refund workflow gave up at ExecuteRefund", AttentionKind.REDRIVE)
    return repos


def test_the_payment_and_the_refund_show_their_attention_reason(parked: Repos) -> None:
    # When the checkout and the refund are read
    status, payment = call(registry.PAYMENT, event("GET", "/v1/payments/chk_1"))
    # Then the flagged order says why and since when, the other says null
    assert status == 200
    orders = {o["payment_order_id"]: o for o in payment["payment_orders"]}
    attention = orders["po_1"]["attention"]
    assert attention["kind"] == "PERSON" and attention["reason"].startswith("chargeback on a refunded order")
    assert attention["since"] and orders["po_1"]["needs_attention"] is True
    assert orders["po_2"]["attention"] is None
    status, refund = call(registry.REFUNDS, event("GET", "/v1/refunds/rf_1"))
    assert status == 200 and refund["attention"]["kind"] == "REDRIVE"
    assert refund["attention"]["reason"] == "refund workflow gave up at ExecuteRefund"


def test_attention_routes_list_show_and_resolve_once_as_the_caller(parked: Repos) -> None:
    # The open flags, oldest first
    status, body = operator(event("GET", "/v1/operator/attention"))
    assert status == 200 and [(f["item"], f["id"], f["kind"]) for f in body["flags"]] == [
        ("order", "po_1", "PERSON"),
        ("refund", "rf_1", "REDRIVE"),
    ]
    status, body = operator(event("GET", "/v1/operator/attention/po_1"))
    assert status == 200 and body["flags"][0]["open"] is True
    # Resolving records the caller's IAM identity, when and why
    status, flag = operator(event("POST", "/v1/operator/attention/po_1/resolve", {"note": "claim filed, case 4711"}))
    assert status == 200 and flag["open"] is False
    assert flag["resolved_by"] == OPS and flag["resolution"] == "claim filed, case 4711" and flag["resolved_at"]
    assert parked.payments.get_order("po_1").attention_resolved_by == OPS
    # Again: nothing open to close (409), the first resolution stands
    status, problem = operator(event("POST", "/v1/operator/attention/po_1/resolve", {"note": "again"}))
    assert status == 409 and problem["type"] == "urn:payments:problem:resource-conflict"
    assert parked.payments.get_order("po_1").attention_resolution == "claim filed, case 4711"
    # An unknown id: 404; an empty note or an unknown field: 422 naming it; no caller identity: 403
    assert operator(event("GET", "/v1/operator/attention/po_nope"))[0] == 404
    assert operator(event("POST", "/v1/operator/attention/po_nope/resolve", {"note": "x"}))[0] == 404
    status, problem = operator(event("POST", "/v1/operator/attention/rf_1/resolve", {"note": "   "}))
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["note"]
    status, problem = operator(event("POST", "/v1/operator/attention/rf_1/resolve", {"note": "x", "by": "me"}))
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["by"]
    status, problem = operator(event("POST", "/v1/operator/attention/rf_1/resolve", {"note": "x"}, who=None))
    assert status == 403 and problem["type"] == "urn:payments:problem:forbidden"
    assert RefundsRepository(payments=parked.payments).get("rf_1").needs_attention is True  # nothing written


def _reconciled(ddb: Any) -> str:
    """A reconciled file with one mismatch, its JSON report in the bucket; returns the mismatch's short id."""
    mismatch = {
        "mismatch_id": "AMOUNT_MISMATCH#psp_a1#2",
        "kind": "AMOUNT_MISMATCH",
        "psp_reference": "psp_a1",
        "payment_order_id": "po_a1",
        "ledger_amount": "19.99",
        "settlement_amount": "19.90",
        "currency": "USD",
        "classification": "MANUAL",
        "rule": "amount differs",
        "line": 2,
    }
    report = {
        "source_key": KEY,
        "format": "adyen_settlement_details",
        "rows": 1,
        "matched": 0,
        "mismatches": [mismatch],
        "rejected_rows": [],
        "sha256": "ab" * 32,
        "clean": False,
        "summary": {"window_day": "2026-11-30", "mismatches_omitted": 0, "totals": {}},
    }
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=settings().settlement_bucket)
    s3.put_object(Bucket=settings().settlement_bucket, Key=f"reports/{KEY}.json", Body=to_json(report).encode())
    store.ReconciliationStore().save_run(report, f"reports/{KEY}.json")
    return store.mismatch_ref(KEY, report["sha256"], mismatch["mismatch_id"], "2026-11-30")


def test_mismatch_routes_list_show_and_resolve_once_as_the_caller(ddb: Any) -> None:
    ident = _reconciled(ddb)
    # The day's open mismatches, and the recent days' without a day
    status, body = operator(event("GET", "/v1/operator/mismatches", query={"day": "2026-11-30", "open": "true"}))
    assert status == 200 and [m["id"] for m in body["mismatches"]] == [ident]
    assert body["mismatches"][0]["ledger_amount"] == "19.99" and body["mismatches"][0]["currency"] == "USD"
    assert [m["id"] for m in operator(event("GET", "/v1/operator/mismatches"))[1]["mismatches"]] == [ident]
    assert operator(event("GET", "/v1/operator/mismatches", query={"day": "2026-11-29"}))[1] == {"mismatches": []}
    status, problem = operator(event("GET", "/v1/operator/mismatches", query={"day": "30/11/2026"}))
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["day"]
    # One, then resolved as the caller; the file's HTML report is written again
    status, one = operator(event("GET", f"/v1/operator/mismatches/{ident}"))
    assert status == 200 and one["status"] == "OPEN" and one["source_key"] == KEY
    status, done = operator(event("POST", f"/v1/operator/mismatches/{ident}/resolve", {"note": "fee correction"}))
    assert status == 200 and done["status"] == "RESOLVED" and done["resolved_by"] == OPS
    assert done["resolution"] == "fee correction" and done["resolved_at"]
    html = boto3.client("s3").get_object(Bucket=settings().settlement_bucket, Key=f"reports/{KEY}.html")
    page = html["Body"].read().decode()
    assert "fee correction" in page and f"by {OPS}" in page  # the resolution, on the page finance reads
    assert operator(event("GET", "/v1/operator/mismatches", query={"open": "true"}))[1] == {"mismatches": []}
    # Again: 409, the first stands; unknown: 404; empty note: 422; no caller: 403
    status, problem = operator(event("POST", f"/v1/operator/mismatches/{ident}/resolve", {"note": "other"}))
    assert status == 409 and OPS in problem["detail"]
    assert store.get(ident)["resolution"] == "fee correction"  # type: ignore[index]
    assert operator(event("GET", "/v1/operator/mismatches/20261130-000000000000"))[0] == 404
    assert operator(event("POST", "/v1/operator/mismatches/nope/resolve", {"note": "x"}))[0] == 404
    assert operator(event("POST", f"/v1/operator/mismatches/{ident}/resolve", {"note": ""}))[0] == 422
    assert operator(event("POST", f"/v1/operator/mismatches/{ident}/resolve", {"note": "x"}, who=None))[0] == 403
