"""Adyen's minor units at every Adyen boundary.

Adyen's table of decimals is not ISO 4217's (``../shared/specs/adyen/FACTS.md`` section 6): CLP has 2
decimals at Adyen (ISO 0), IDR and CVE 0 (ISO 2), ISK is disputed. Every amount that crosses the Adyen
boundary (charge and refund requests, notifications, the settlement report) is converted exactly;
what cannot be converted is refused, never rounded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions import registry
from payments.kernel.config import reset_settings, settings
from payments.kernel.errors import PspRequestInvalid
from payments.notifications.apply import apply_item
from payments.psp import Approved
from payments.psp.adyen import AdyenPsp
from payments.psp.simulator import SimulatedPsp
from payments.reconciliation import adyen as report
from payments.refunds.psp import RefundCall
from payments.refunds.repository import RefundsRepository
from payments_dev.local.adyen_fake import AdyenFake
from payments_dev.local.lambdas import LambdaContext
from tests.unit.adyen_support import API_KEY, HMAC_KEY, charge_request
from tests.unit.adyen_support import fake as fake  # the pytest fixtures, injected by name
from tests.unit.adyen_support import psp as psp
from tests.unit.conftest import Repos
from tests.unit.refunds.test_refunds import paid


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings read again after each test (set up before ``monkeypatch``: reset after its undo)."""
    yield
    reset_settings()


# --- the adapter and the fake -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount_minor", "currency", "value"),
    [
        (1_000_000, "IDR", 10_000),
        (5_000, "CLP", 500_000),
        (300, "CVE", 3),
        (1_999, "USD", 1_999),
        (1_250, "KWD", 1_250),
    ],
)
def test_a_charge_sends_adyens_minor_units(
    fake: AdyenFake, psp: AdyenPsp, amount_minor: int, currency: str, value: int
) -> None:
    # When an order of IDR 10000.00 (CLP 5000, CVE 3.00, ...) is charged at Adyen
    outcome = psp.charge(charge_request("po_1", amount_minor=amount_minor, currency=currency))
    # Then Adyen was asked for its minor units (IDR value 10000, CLP 500000), and charged that
    assert isinstance(outcome, Approved)
    sent = [body for _, path, _, body in fake.requests if path.endswith("/payments")]
    assert [body["amount"] for body in sent] == [{"currency": currency, "value": value}]
    assert [(c["amount_minor"], c["currency"]) for c in fake.charges()] == [(value, currency)]


def test_an_amount_or_currency_adyen_cannot_carry_is_never_sent(fake: AdyenFake, psp: AdyenPsp) -> None:
    # When an IDR amount with cents, and an ISK amount, reach the adapter
    with pytest.raises(PspRequestInvalid, match="IDR"):
        psp.charge(charge_request("po_1", amount_minor=1_000_050, currency="IDR"))
    with pytest.raises(PspRequestInvalid, match="ISK"):
        psp.charge(charge_request("po_2", amount_minor=1_000, currency="ISK"))
    # Then nothing was sent to Adyen (never rounded, never guessed)
    assert fake.requests == []


def test_the_fake_refuses_a_currency_outside_adyens_table(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given the adapter's body for a USD charge, in ISK (its decimals at Adyen are disputed)
    body = psp.payment_request(charge_request("po_1"))
    body["amount"] = {"currency": "ISK", "value": 1000}
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json", "Idempotency-Key": "po_1"}
    # When it is posted to the fake
    reply = fake.handle("POST", "/v72/payments", headers, json.dumps(body).encode())
    # Then it is refused and nothing is charged
    assert reply.status == 422 and fake.charges() == []


def test_a_refund_and_its_notification_are_in_adyens_minor_units(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given a CLP 5000 charge at Adyen
    charged = psp.charge(charge_request("po_1", amount_minor=5_000, currency="CLP"))
    assert isinstance(charged, Approved)
    # When CLP 1200 of it is refunded
    answer = psp.refund(RefundCall("rf_1", "po_1", charged.psp_reference, 1_200, "CLP"))
    # Then Adyen was asked for value 120000, and its REFUND notification says so
    assert answer.pending
    sent = [body for _, path, _, body in fake.requests if path.endswith("/refunds")]
    assert sent[0]["amount"] == {"currency": "CLP", "value": 120_000}
    items = [n["notificationItems"][0]["NotificationRequestItem"] for n in fake.notifications]
    assert [i["amount"] for i in items if i["eventCode"] == "REFUND"] == [{"currency": "CLP", "value": 120_000}]


# --- notifications ----------------------------------------------------------------------------------
@pytest.fixture(params=["simulator", "adyen"])
def stage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stage's PSP (``PAYMENTS_PSP``): notifications are read by Adyen's table on both."""
    monkeypatch.setenv("PAYMENTS_PSP", request.param)
    reset_settings()
    yield str(request.param)
    monkeypatch.delenv("PAYMENTS_PSP")
    reset_settings()


def _chargeback(order_id: str, original: str, value: int, currency: str) -> dict[str, Any]:
    return {
        "eventCode": "CHARGEBACK",
        "success": "true",
        "pspReference": "DSP0000000000001",
        "originalReference": original,
        "merchantReference": order_id,
        "merchantAccountCode": settings().payments_psp_merchant_account,
        "amount": {"value": value, "currency": currency},
        "eventDate": "2026-12-01T10:00:00+00:00",
        "additionalData": {},
    }


def test_a_clp_chargeback_of_value_500000_books_5000_clp(repos: Repos, stage: str) -> None:
    # Given an order of CLP 5000, charged
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    paid(repos, SimulatedPsp(), "po_clp", 5_000, currency="CLP")
    order = repos.payments.get_order("po_clp")
    before = repos.wallets.balances("seller_books")["CLP"]
    # When Adyen's CHARGEBACK of the whole charge arrives: value 500000 in Adyen's minor units
    outcome, _ = apply_item(_chargeback("po_clp", str(order.psp_reference), 500_000, "CLP"), refunds)
    # Then CLP 5000 is charged back, not 500000
    assert outcome == "APPLIED"
    assert repos.payments.get_order("po_clp").chargeback_minor == 5_000
    assert repos.wallets.balances("seller_books")["CLP"] == before - 5_000


def test_the_simulators_chargeback_notification_is_in_adyens_units_and_books_its_amount(
    repos: Repos, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the simulator stage and an order of IDR 10000.00 charged there
    monkeypatch.setenv("PAYMENTS_PSP_HMAC_KEY", HMAC_KEY)
    reset_settings()
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    simulator = SimulatedPsp()
    paid(repos, simulator, "po_idr", 1_000_000, currency="IDR")
    # When the simulator raises a chargeback of all of it
    item = simulator.raise_chargeback("po_idr")
    # Then its notification says value 10000 (Adyen's IDR has no decimals), and it books IDR 10000.00
    assert item["amount"] == {"value": 10_000, "currency": "IDR"}
    assert apply_item(item, refunds)[0] == "APPLIED"
    assert repos.payments.get_order("po_idr").chargeback_minor == 1_000_000
    monkeypatch.delenv("PAYMENTS_PSP_HMAC_KEY")
    reset_settings()


# --- the API on an Adyen stage -------------------------------------------------------------------------
def _post_payment(currency: str, amount: str, order: str) -> tuple[int, dict[str, Any]]:
    from functions.payment import handler

    body = {
        "checkout_id": f"chk_{order}",
        "buyer_info": {"buyer_id": "buyer_1"},
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": [{"payment_order_id": order, "seller_account": "s1", "amount": amount, "currency": currency}],
    }
    event = {
        "resource": "/v1/payments",
        "path": "/v1/payments",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "Idempotency-Key": f"k-{order}"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": "POST", "path": "/v1/payments"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
    response = handler.handler(event, LambdaContext(registry.PAYMENT.local_name))
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(
    ("currency", "amount", "field"),
    [("ISK", "1000", "currency"), ("BOV", "10.00", "currency"), ("IDR", "10000.50", "amount")],
)
def test_an_adyen_stage_refuses_what_adyen_cannot_carry_and_stores_nothing(
    repos: Repos, monkeypatch: pytest.MonkeyPatch, currency: str, amount: str, field: str
) -> None:
    from functions.payment import logic

    monkeypatch.setattr(logic, "start_workflow", lambda *a, **k: None)
    monkeypatch.setenv("PAYMENTS_PSP", "adyen")
    reset_settings()
    # When a checkout in ISK (disputed), BOV (not at Adyen) or IDR with cents is posted
    status, problem = _post_payment(currency, amount, "po_refused")
    # Then it is a 422 naming the field, and nothing is stored
    assert status == 422
    assert [e["field"] for e in problem["errors"]] == [f"payment_orders[0].{field}"]
    assert repos.payments.find_order("po_refused") is None


@pytest.mark.parametrize(("currency", "amount"), [("IDR", "10000.50"), ("CVE", "3.25")])
def test_the_simulator_stage_refuses_cents_its_adyen_formatted_files_cannot_carry(
    repos: Repos, monkeypatch: pytest.MonkeyPatch, currency: str, amount: str
) -> None:
    from functions.payment import logic

    monkeypatch.setattr(logic, "start_workflow", lambda *a, **k: None)
    # Given the simulator stage, whose notifications and settlement files use Adyen's decimals (IDR, CVE: 0)
    # When an amount with cents is posted (ISO 4217 allows 2 decimals)
    status, problem = _post_payment(currency, amount, "po_cents")
    # Then it is a 422 naming the amount and saying why, and nothing is stored
    assert status == 422, problem
    assert [e["field"] for e in problem["errors"]] == ["payment_orders[0].amount"]
    assert f"whole number of {currency}" in problem["errors"][0]["message"]
    assert repos.payments.find_order("po_cents") is None
    # and a whole amount is taken
    assert _post_payment(currency, amount.split(".")[0] + ".00", "po_whole")[0] == 202


def test_the_simulator_stage_accepts_isk_and_an_adyen_stage_accepts_idr_and_clp(
    repos: Repos, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.payment import logic

    monkeypatch.setattr(logic, "start_workflow", lambda *a, **k: None)
    assert _post_payment("ISK", "1000", "po_isk")[0] == 202
    monkeypatch.setenv("PAYMENTS_PSP", "adyen")
    reset_settings()
    assert _post_payment("IDR", "10000.00", "po_idr")[0] == 202
    assert _post_payment("CLP", "5000", "po_clp")[0] == 202


def test_an_adyen_stage_refuses_a_refund_adyen_cannot_carry(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.refunds import handler
    from payments.refunds import logic

    # Given an order of IDR 10000.00 on a stage whose PSP is Adyen
    monkeypatch.setattr(logic, "start_workflow", lambda refund_id: None)
    paid(repos, SimulatedPsp(), "po_idr", 1_000_000, currency="IDR")
    monkeypatch.setenv("PAYMENTS_PSP", "adyen")
    reset_settings()
    # When a refund of IDR 10.50 is posted
    body = {"refund_id": "rf_1", "payment_order_id": "po_idr", "amount": "10.50", "currency": "IDR"}
    event = {
        "resource": "/v1/refunds",
        "path": "/v1/refunds",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "Idempotency-Key": "k-rf"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "requestContext": {"requestId": "r", "stage": "test", "httpMethod": "POST", "path": "/v1/refunds"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
    response = handler.handler(event, LambdaContext(registry.REFUNDS.local_name))
    # Then it is a 422 naming the amount, and no refund is stored
    assert response["statusCode"] == 422
    assert [e["field"] for e in json.loads(response["body"])["errors"]] == ["amount"]
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    assert refunds.find("rf_1") is None


# --- the settlement report ----------------------------------------------------------------------------
def test_the_fakes_settlement_report_in_idr_and_clp_is_written_and_read_by_adyens_decimals(
    fake: AdyenFake, psp: AdyenPsp
) -> None:
    # Given IDR 10000.00 and CLP 5000 charged at Adyen on one day
    fake.calendar = lambda payment: "2026-11-30T10:00:00.000Z"
    idr = psp.charge(charge_request("po_idr", amount_minor=1_000_000, currency="IDR"))
    clp = psp.charge(charge_request("po_clp", amount_minor=5_000, currency="CLP"))
    assert isinstance(idr, Approved) and isinstance(clp, Approved)
    # When the fake writes the day's Settlement Details Report
    out = io.StringIO()
    fake.write_settlement("2026-11-30", out)
    lines = out.getvalue().splitlines()
    layout = report.column_index(lines[0].split(","))
    rows = [report.parse_row(report.split_line(line), layout, n) for n, line in enumerate(lines[1:], start=2)]
    settled = {r.merchant_reference: r for r in rows if r.record_type == "Settled"}
    # Then the amounts are written with Adyen's decimals (IDR 10000, CLP 5000.00) ...
    gross = layout.at("Gross Credit (GC)")
    texts = {report.split_line(line)[3]: report.split_line(line)[gross] for line in lines[1:]}
    assert texts["po_idr"] == "10000" and texts["po_clp"] == "5000.00"
    # ... and read back as our money: IDR 10000.00 and CLP 5000, what the ledger booked
    assert (settled["po_idr"].gross_credit, settled["po_clp"].gross_credit) == (1_000_000, 5_000)
    # and every row, fees and payouts included, reads back exactly (nothing rejected)
    assert all(isinstance(r, report.SettlementRow) for r in rows)
    assert {r.record_type for r in rows} == {"Settled", "MerchantPayout"}


def test_an_adyen_report_amount_beyond_adyens_decimals_is_rejected() -> None:
    # Given Adyen's IDR has no decimals and our CLP none either
    # Then a row with IDR cents, or a CLP amount our money cannot hold, is rejected, never rounded
    with pytest.raises(report.RowError, match="more decimals than IDR has at Adyen"):
        report.parse_minor("10000.50", "IDR", "Gross Credit (GC)")
    with pytest.raises(report.RowError, match="cannot be held exactly"):
        report.parse_minor("4871.25", "CLP", "Net Credit (NC)")
    assert report.parse_minor("10000", "IDR", "Gross Credit (GC)") == 1_000_000
    assert report.parse_minor("5000.00", "CLP", "Gross Credit (GC)") == 5_000
