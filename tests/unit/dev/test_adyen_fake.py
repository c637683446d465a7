"""The local Adyen fake (payments_dev/local/adyen_fake.py): spec-valid answers, Adyen's idempotency,
signed notifications and the settlement report. Driven through ``handle`` (no HTTP needed)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from payments.psp import hmac as adyen_hmac
from payments.reconciliation import adyen as report
from payments_dev.local.adyen_fake import RESULT_TOKENS, AdyenFake, Reply
from tests.unit.adyen_support import API_KEY, HMAC_KEY, MERCHANT, RETURN_URL, spec_or_skip

REPO = Path(__file__).resolve().parents[3]
TOKENS = ["tok_visa", "tok_amex", "tok_chargeDeclined", "tok_insufficientFunds", "tok_refundFails", *RESULT_TOKENS]


def _fake() -> AdyenFake:
    return AdyenFake(api_key=API_KEY, merchant_account=MERCHANT, hmac_key=HMAC_KEY)


def _payment(reference: str, token: str = "tok_visa", value: int = 1999, currency: str = "EUR") -> dict:
    return {
        "merchantAccount": MERCHANT,
        "amount": {"currency": currency, "value": value},
        "reference": reference,
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": token},
        "shopperReference": "buyer_42",
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "returnUrl": RETURN_URL,
    }


def _post(fake: AdyenFake, path: str, body: dict, key: str | None = None, api_key: str = API_KEY) -> Reply:
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    return fake.handle("POST", "/v72" + path, headers, json.dumps(body).encode())


def test_every_answer_of_the_fake_validates_against_the_checkout_spec() -> None:
    spec = spec_or_skip()
    fake = _fake()
    # Given payments with every token, a refund, a reversal, a cancel and a set of error answers
    answers: list[tuple[str, Reply]] = []
    for i, token in enumerate(TOKENS):
        answers.append(("/payments", _post(fake, "/payments", _payment(f"po_{i}", token), key=f"po_{i}")))
    psp = next(r.body["pspReference"] for _, r in answers if r.body["resultCode"] == "Authorised")  # type: ignore[index]
    partial = next(r.body["pspReference"] for _, r in answers if r.body["resultCode"] == "PartiallyAuthorised")  # type: ignore[index]
    modifications = [
        (
            f"/payments/{psp}/refunds",
            {"merchantAccount": MERCHANT, "amount": {"currency": "EUR", "value": 100}, "reference": "rf_1"},
        ),
        (f"/payments/{partial}/reversals", {"merchantAccount": MERCHANT, "reference": "po_partial"}),
        (f"/payments/{psp}/cancels", {"merchantAccount": MERCHANT}),
    ]
    for path, body in modifications:
        answers.append((path, _post(fake, path, body, key=path[-20:])))
    answers.append(("/payments", _post(fake, "/payments", _payment("po_x"), api_key="wrong")))  # 401
    answers.append(("/payments", _post(fake, "/payments", {**_payment("po_y"), "merchantAccount": "Other"})))  # 403
    answers.append(
        ("/payments", _post(fake, "/payments", {**_payment("po_z"), "amount": {"currency": "EUR", "value": "10.00"}}))
    )  # 422
    # When each answer body is checked against the operation's response schema in Adyen's document
    # Then every one validates
    statuses = set()
    for path, reply in answers:
        statuses.add(reply.status)
        assert reply.body is not None
        assert spec.response_errors("POST", path, reply.status, reply.body) == [], (path, reply.status, reply.body)
    assert {200, 201, 401, 403, 422} <= statuses


def test_an_invalid_request_is_rejected_by_the_spec_and_processes_nothing() -> None:
    spec_or_skip()
    fake = _fake()
    # Given a payment whose amount is a decimal string and one without returnUrl
    bad_amount = {**_payment("po_1"), "amount": {"currency": "EUR", "value": "10.00"}}
    no_return = {k: v for k, v in _payment("po_2").items() if k != "returnUrl"}
    # When they are posted
    replies = [_post(fake, "/payments", bad_amount, key="po_1"), _post(fake, "/payments", no_return, key="po_2")]
    # Then both are 422 validation errors naming the field, and nothing was charged
    assert [r.status for r in replies] == [422, 422]
    assert "amount/value" in replies[0].body["message"] and "returnUrl" in replies[1].body["message"]  # type: ignore[index]
    assert fake.payments == {} and len(fake.invalid_requests) == 2


def test_the_same_key_gets_the_same_answer_and_another_body_gets_704() -> None:
    fake = _fake()
    # Given a processed payment
    first = _post(fake, "/payments", _payment("po_1"), key="po_1")
    # When the same request is repeated, and the key is reused for another amount
    again = _post(fake, "/payments", _payment("po_1"), key="po_1")
    other = _post(fake, "/payments", _payment("po_1", value=2999), key="po_1")
    # Then the repeat is the first answer (no second payment), the reuse a 422 704 without transient-error
    assert (again.status, again.body) == (first.status, first.body) and again.headers["Idempotency-Key"] == "po_1"
    assert len(fake.payments) == 1
    assert (other.status, other.body["errorCode"]) == (422, "704") and "transient-error" not in other.headers  # type: ignore[index]


def test_a_request_without_a_key_is_processed_each_time() -> None:
    fake = _fake()
    # Given the same payment posted twice without Idempotency-Key
    _post(fake, "/payments", _payment("po_1"))
    _post(fake, "/payments", _payment("po_1"))
    # Then Adyen (and the fake) charge twice: the adapter must always send the key
    assert len(fake.charges()) == 2


def test_faults_before_processing_charge_nothing_and_after_processing_keep_the_answer() -> None:
    fake = _fake()
    # Given a 500 before processing, then a 500 after processing
    fake.inject("error_before")
    before = _post(fake, "/payments", _payment("po_1"), key="po_1")
    assert before.status == 500 and fake.payments == {}
    fake.inject("error_after")
    after = _post(fake, "/payments", _payment("po_1"), key="po_1")
    # When the key is sent once more
    replay = _post(fake, "/payments", _payment("po_1"), key="po_1")
    # Then the payment was processed once, and the replay is its answer
    assert after.status == 500 and replay.status == 200 and len(fake.payments) == 1
    assert replay.body["pspReference"] in fake.payments  # type: ignore[index]


def test_notifications_are_signed_and_name_our_references() -> None:
    fake = _fake()
    # Given an authorised and a refused payment and a refund
    ok = _post(fake, "/payments", _payment("po_1"), key="po_1").body
    _post(fake, "/payments", _payment("po_2", "tok_chargeDeclined"), key="po_2")
    _post(
        fake,
        "/payments/" + ok["pspReference"] + "/refunds",
        {"merchantAccount": MERCHANT, "amount": {"currency": "EUR", "value": 500}, "reference": "rf_1"},
        key="rf_1",
    )  # type: ignore[index]
    # When the queued notifications are read
    items = [n["notificationItems"][0]["NotificationRequestItem"] for n in fake.notifications]
    # Then they are Adyen-shaped (string success), signed with the key, and carry our references
    assert [(i["eventCode"], i["merchantReference"], i["success"]) for i in items] == [
        ("AUTHORISATION", "po_1", "true"),
        ("AUTHORISATION", "po_2", "false"),
        ("REFUND", "rf_1", "true"),
    ]
    assert items[2]["originalReference"] == ok["pspReference"]  # type: ignore[index]
    assert all(adyen_hmac.all_valid(n, HMAC_KEY) for n in fake.notifications)
    assert not adyen_hmac.all_valid(fake.notifications[0], "00" * 32)


def test_the_settlement_report_has_one_settled_row_per_authorised_charge_and_parses() -> None:
    fake = AdyenFake(
        api_key=API_KEY, merchant_account=MERCHANT, hmac_key=HMAC_KEY, calendar=lambda p: "2026-11-30T10:00:00.000Z"
    )
    # Given two authorised charges and a refused one
    for ref, token in (("po_1", "tok_visa"), ("po_2", "tok_mastercard"), ("po_3", "tok_chargeDeclined")):
        _post(fake, "/payments", _payment(ref, token, value=1999, currency="USD"), key=ref)
    # When the day's report is written
    out = io.StringIO()
    rows = fake.write_settlement("2026-11-30", out)
    # Then the reconciliation's reader parses it: two Settled rows with our references, one payout
    lines = out.getvalue().splitlines()
    layout = report.column_index(lines[0].split(","))
    parsed = [report.parse_row(report.split_line(line), layout, n) for n, line in enumerate(lines[1:], start=2)]
    settled = sorted(
        (r.merchant_reference, r.gross_credit, r.gross_currency) for r in parsed if r.record_type == "Settled"
    )
    assert rows == 3 and settled == [("po_1", 1999, "USD"), ("po_2", 1999, "USD")]
    assert {r.psp_reference for r in parsed if r.record_type == "Settled"} == {
        c["psp_reference"] for c in fake.charges()
    }
    assert [r.record_type for r in parsed].count("MerchantPayout") == 1


def test_the_settlement_report_has_the_days_refund_and_chargeback_rows() -> None:
    from payments.kernel import clock

    fake = _fake()
    # Given a charge, a refund of it, a refund that fails, a chargeback and its reversal, all today
    ok = _post(fake, "/payments", _payment("po_1", value=1999, currency="USD"), key="po_1").body
    _post(fake, "/payments", _payment("po_2", "tok_refundFails", value=500, currency="USD"), key="po_2")
    charge = ok["pspReference"]  # type: ignore[index]
    refund = _post(
        fake,
        f"/payments/{charge}/refunds",
        {"merchantAccount": MERCHANT, "amount": {"currency": "USD", "value": 500}, "reference": "rf_1"},
        key="rf_1",
    ).body
    failed = next(c["psp_reference"] for c in fake.charges() if c["merchant_reference"] == "po_2")
    _post(
        fake,
        f"/payments/{failed}/refunds",
        {"merchantAccount": MERCHANT, "amount": {"currency": "USD", "value": 500}, "reference": "rf_2"},
        key="rf_2",
    )
    dispute = fake.chargeback(charge, 700)["notificationItems"][0]["NotificationRequestItem"]["pspReference"]
    fake.chargeback_reversed(dispute)
    fake.second_chargeback(dispute)
    # When the day's report is written and read back
    out = io.StringIO()
    fake.write_settlement(clock.day_of(clock.now_iso()), out)
    lines = out.getvalue().splitlines()
    layout = report.column_index(lines[0].split(","))
    parsed = [report.parse_row(report.split_line(line), layout, n) for n, line in enumerate(lines[1:], start=2)]
    # Then the successful refund and the dispute's three steps have their rows (the failed refund none),
    # naming the payment and the modification as the simulator's do: one dispute reference for the three
    adjustments = [
        (
            r.record_type,
            r.psp_reference,
            r.merchant_reference,
            r.modification_merchant_reference,
            report.adjustment_amount(r),
        )
        for r in parsed
        if r.record_type in report.MATCHED_ADJUSTMENTS
    ]
    assert adjustments == [
        ("Refunded", charge, "po_1", "rf_1", 500),
        ("Chargeback", charge, "po_1", "", 700),
        ("ChargebackReversed", charge, "po_1", "", 700),
        ("SecondChargeback", charge, "po_1", "", 700),
    ]
    assert {r.modification_reference for r in parsed if "Chargeback" in r.record_type} == {dispute}
    assert parsed[[r.record_type for r in parsed].index("Refunded")].modification_reference == refund["pspReference"]  # type: ignore[index]


def test_the_fake_is_not_shipped_with_the_functions() -> None:
    # Given the asset's allow-list
    from infra.bundling import shipped_files

    # Then the fake is not in it, and no shipped module names it
    shipped = shipped_files()
    assert all(p.parts[0] != "payments_dev" for p in shipped)
    offenders = [str(p) for p in shipped if p.suffix == ".py" and "adyen_fake" in (REPO / p).read_text()]
    assert offenders == []


@pytest.mark.parametrize("token", ["tok_pspUnavailable"])
def test_the_unavailable_token_fails_twice_per_key_before_processing(token: str) -> None:
    fake = _fake()
    # Given tok_pspUnavailable
    # When posted three times with one key
    statuses = [_post(fake, "/payments", _payment("po_1", token), key="po_1").status for _ in range(3)]
    # Then twice 503 with nothing processed, then the payment
    assert statuses == [503, 503, 200] and len(fake.payments) == 1


def test_the_fakes_notifications_validate_against_adyens_webhook_spec() -> None:
    webhooks_path = REPO.parent / "shared" / "specs" / "adyen" / "Webhooks-v1.json"
    if not webhooks_path.is_file():
        pytest.skip(f"Adyen's Webhooks-v1.json is not at {webhooks_path}")
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    document = json.loads(webhooks_path.read_text())
    registry = Registry().with_resource("urn:adyen:webhooks", Resource(contents=document, specification=DRAFT202012))
    fake = _fake()
    # Given every event the fake sends: authorisations (one refused), a refund, a reversal, a cancel, a chargeback and its reversal
    ok = _post(fake, "/payments", _payment("po_1"), key="po_1").body
    _post(fake, "/payments", _payment("po_2", "tok_chargeDeclined"), key="po_2")
    partial = _post(fake, "/payments", _payment("po_3", "tok_adyenPartial"), key="po_3").body
    _post(
        fake,
        f"/payments/{ok['pspReference']}/refunds",
        {"merchantAccount": MERCHANT, "amount": {"currency": "EUR", "value": 500}, "reference": "rf_1"},
        key="rf_1",
    )  # type: ignore[index]
    _post(
        fake,
        f"/payments/{partial['pspReference']}/reversals",
        {"merchantAccount": MERCHANT, "reference": "po_3"},
        key="rev_3",
    )  # type: ignore[index]
    _post(fake, f"/payments/{ok['pspReference']}/cancels", {"merchantAccount": MERCHANT}, key="cxl_1")  # type: ignore[index]
    dispute = fake.chargeback(ok["pspReference"])["notificationItems"][0]["NotificationRequestItem"]["pspReference"]  # type: ignore[index]
    fake.chargeback_reversed(dispute)
    fake.second_chargeback(dispute)
    events = set()
    for body in fake.notifications:
        item = body["notificationItems"][0]["NotificationRequestItem"]
        events.add(item["eventCode"])
        # When each is checked against its event's request schema in Adyen's Webhooks document
        # (additionalData aside: the spec's lists no hmacSignature, real payloads carry it; FACTS.md §3)
        additional = item["additionalData"]
        bare = {
            **body,
            "notificationItems": [
                {"NotificationRequestItem": {k: v for k, v in item.items() if k != "additionalData"}}
            ],
        }
        schema = document["webhooks"]["/" + item["eventCode"]]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["$ref"]
        validator = Draft202012Validator({"$ref": "urn:adyen:webhooks" + schema}, registry=registry)
        # Then it validates, and additionalData is a string map holding the signature
        assert [e.message for e in validator.iter_errors(bare)] == [], item
        assert (
            all(isinstance(k, str) and isinstance(v, str) for k, v in additional.items())
            and additional["hmacSignature"]
        )
    assert events == {
        "AUTHORISATION",
        "REFUND",
        "CANCEL_OR_REFUND",
        "CANCELLATION",
        "CHARGEBACK",
        "CHARGEBACK_REVERSED",
        "SECOND_CHARGEBACK",
    }


def test_operator_requests_under_fake_reach_the_admin_hook_not_adyens_api() -> None:
    import urllib.error
    import urllib.request

    # Given a served fake whose operator hook records what it is asked
    fake = _fake()
    asked: list[tuple[str, dict]] = []
    fake.admin = lambda path, body: asked.append((path, body)) or (200, {"ok": True})  # type: ignore[func-returns-value]
    base = fake.serve()
    try:
        # When an operator posts to /_fake/settle, and a client posts to /v72/payments without a key
        request = urllib.request.Request(
            base.rsplit("/", 1)[0] + "/_fake/settle", data=b'{"date": "2026-11-30"}', method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        with pytest.raises(urllib.error.HTTPError) as unauthorised:
            urllib.request.urlopen(urllib.request.Request(base + "/payments", data=b"{}", method="POST"), timeout=5)
    finally:
        fake.close()
    # Then the hook answered the operator, and Adyen's API still demanded its key
    assert answer == {"ok": True} and asked == [("/_fake/settle", {"date": "2026-11-30"})]
    assert unauthorised.value.code == 401
