"""The Adyen adapter (payments/psp/adyen.py) over real HTTP against the local Checkout fake.

The adapter's library client (``adyen`` 16.x, urllib) talks to ``payments_dev/local/adyen_fake.py``
on a loopback port; the fake checks every request against Adyen's Checkout v72 document.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from functions.executor.logic import execute_order
from payments.kernel.errors import PspAwaitingNotification, PspOutcomeUnknown, PspRequestInvalid, PspUnavailable
from payments.payin.models import PaymentMethod
from payments.payin.status import OrderStatus
from payments.payin.tasks import ExecuteOrderTask
from payments.psp import Approved, Declined
from payments.psp import hmac as adyen_hmac
from payments.psp.adyen import AdyenPsp, AdyenSettings
from payments.refunds.psp import RefundAnswer, RefundCall
from payments_dev.local.adyen_fake import AdyenFake
from payments_dev.local.runtime import free_port
from tests.unit.adyen_support import API_KEY, HMAC_KEY, MERCHANT, RETURN_URL, adapter, charge_request, spec_or_skip
from tests.unit.adyen_support import fake as fake  # the pytest fixtures, injected by name
from tests.unit.adyen_support import psp as psp
from tests.unit.conftest import Repos, store_checkout


def _charge_until_answered(psp: AdyenPsp, request, attempts: int = 5, pause: float = 0.3):  # type: ignore[no-untyped-def]
    """What the state machine does: retry the transient errors with the same request, after a pause."""
    errors = []
    for _ in range(attempts):
        try:
            return psp.charge(request), errors
        except (PspUnavailable, PspOutcomeUnknown) as err:
            errors.append(type(err).__name__)
            time.sleep(pause)
    raise AssertionError(f"no answer after {attempts} attempts: {errors}")


# --- the requests ----------------------------------------------------------------------------------
def test_every_request_the_adapter_sends_validates_against_the_checkout_spec(fake: AdyenFake, psp: AdyenPsp) -> None:
    spec = spec_or_skip()
    # Given charges with every token the fake knows, in currencies of 0, 2 and 3 minor digits, and a refund
    tokens = [
        "tok_visa",
        "tok_chargeDeclined",
        "tok_insufficientFunds",
        "tok_pspUnavailable",
        "tok_pspTimeout",
        "tok_adyenPartial",
    ]
    for i, token in enumerate(tokens):
        _charge_until_answered(psp, charge_request(f"po_{i}", token))
    _charge_until_answered(psp, charge_request("po_jpy", amount_minor=500, currency="JPY"))
    _charge_until_answered(psp, charge_request("po_kwd", amount_minor=1250, currency="KWD"))
    authorised = fake.charges()[0]
    psp.refund(refund_call("rf_1", authorised["psp_reference"], 100, authorised["currency"], "requested_by_customer"))
    # When the requests the fake received are checked against Adyen's document
    # Then each one validates and was accepted (no 422 from the fake's own validation)
    assert fake.invalid_requests == []
    paths = {path for _, path, _, _ in fake.requests}
    assert {"/v72/payments", f"/v72/payments/{authorised['psp_reference']}/refunds"} <= paths
    assert any(path.endswith("/reversals") for path in paths)  # the partial authorisation's
    for method, path, headers, body in fake.requests:
        assert spec.request_errors(method, path[len("/v72") :], body) == [], (path, body)
        assert headers["x-api-key"] == API_KEY and headers["idempotency-key"]
    # and the charges carry what FACTS.md §1 asks of a merchant-initiated token charge
    charges = {b["reference"]: (h, b) for _, p, h, b in fake.requests if p == "/v72/payments"}
    headers, body = charges["po_jpy"]
    assert headers["idempotency-key"] == "po_jpy"
    assert body == {
        "merchantAccount": MERCHANT,
        "amount": {"currency": "JPY", "value": 500},
        "reference": "po_jpy",
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": "tok_visa"},
        "shopperReference": "buyer_42",
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "returnUrl": RETURN_URL,
    }
    assert charges["po_kwd"][1]["amount"] == {"currency": "KWD", "value": 1250}


# --- resultCodes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("tok_visa", Approved),
        ("tok_mastercard", Approved),
        ("tok_chargeDeclined", Declined("card_declined")),
        ("tok_insufficientFunds", Declined("insufficient_funds")),
        ("tok_adyenError", Declined("psp_error:acquirer_error")),
        ("tok_adyenCancelled", Declined("cancelled")),
        ("tok_adyenRedirect", Declined("shopper_action_not_supported:RedirectShopper")),
        ("tok_adyenIdentify", Declined("shopper_action_not_supported:IdentifyShopper")),
        ("tok_adyenChallenge", Declined("shopper_action_not_supported:ChallengeShopper")),
        ("tok_adyenPresent", Declined("shopper_action_not_supported:PresentToShopper")),
        ("tok_adyenPartial", Declined("partially_authorised_reversed")),
        ("tok_adyenReceived", PspAwaitingNotification),
        ("tok_adyenPending", PspAwaitingNotification),
        ("tok_adyenAuthenticationFinished", PspAwaitingNotification),
    ],
)
def test_each_result_code_ends_in_its_outcome(fake: AdyenFake, psp: AdyenPsp, token: str, expected: object) -> None:
    # Given a token the fake answers with one resultCode
    request = charge_request("po_1", token)
    # When the adapter charges it
    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected):
            psp.charge(request)
        # Then (awaiting) the order is parked; a resend gets the same answer and charges nothing new
        with pytest.raises(expected):
            psp.charge(request)
        assert len(fake.payments) == 1
        return
    outcome = psp.charge(request)
    # Then the outcome is the mapped one
    if expected is Approved:
        assert isinstance(outcome, Approved)
        assert [c["psp_reference"] for c in fake.charges()] == [outcome.psp_reference]
    else:
        assert outcome == expected
        assert fake.charges() == []


def test_a_partial_authorisation_is_reversed_once_even_when_the_charge_is_retried(
    fake: AdyenFake, psp: AdyenPsp
) -> None:
    # Given a charge answered PartiallyAuthorised whose reversal answer is lost once
    fake.inject("lost", path="/reversals")
    # When the adapter charges, and the state machine retries
    outcome, errors = _charge_until_answered(psp, charge_request("po_1", "tok_adyenPartial"))
    # Then it is declined after exactly one reversal at Adyen (the retry replays both answers)
    assert outcome == Declined("partially_authorised_reversed") and errors == ["PspOutcomeUnknown"]
    assert [m["operation"] for m in fake.modifications.values()] == ["reversals"]


# --- lost answers and faults ------------------------------------------------------------------------
def test_a_lost_answer_then_a_retry_returns_the_same_psp_reference_and_never_a_second_charge(
    fake: AdyenFake, psp: AdyenPsp
) -> None:
    # Given tok_pspTimeout: the first call charges and its answer is lost
    request = charge_request("po_1", "tok_pspTimeout")
    with pytest.raises(PspOutcomeUnknown):
        psp.charge(request)
    charged = fake.charges()
    assert len(charged) == 1
    # When the same request is sent again with the same key
    outcome = psp.charge(request)
    # Then it is the first charge's pspReference, and Adyen holds one charge
    assert isinstance(outcome, Approved) and outcome.psp_reference == charged[0]["psp_reference"]
    assert len(fake.charges()) == 1 and len(fake.payments) == 1


@pytest.mark.parametrize(
    ("fault", "first_error"),
    [
        ("error_before", PspOutcomeUnknown),  # a 500: Adyen cannot say whether it processed
        ("error_after", PspOutcomeUnknown),
        ("rate_limit", PspUnavailable),
        ("lost", PspOutcomeUnknown),
        ("garbled", PspOutcomeUnknown),
        ("slow", PspOutcomeUnknown),  # the answer comes after the client's 1 s read timeout
    ],
)
def test_each_fault_is_retried_into_one_charge(fake: AdyenFake, psp: AdyenPsp, fault: str, first_error: type) -> None:
    # Given a fault on the next request
    fake.inject(fault)
    request = charge_request("po_1")
    # When the adapter charges, and retries as the state machine does
    with pytest.raises(first_error):
        psp.charge(request)
    outcome, _ = _charge_until_answered(psp, request, attempts=8)
    # Then it ends Approved with the one charge Adyen holds
    assert isinstance(outcome, Approved)
    assert [c["psp_reference"] for c in fake.charges()] == [outcome.psp_reference]


def test_the_pspunavailable_token_fails_twice_then_charges_once(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given tok_pspUnavailable (503 twice, then success)
    # When charged until answered
    outcome, errors = _charge_until_answered(psp, charge_request("po_1", "tok_pspUnavailable"))
    # Then two transient errors preceded one charge
    assert errors == ["PspUnavailable", "PspUnavailable"] and isinstance(outcome, Approved)
    assert len(fake.charges()) == 1


def test_a_resend_while_the_first_is_in_flight_meets_704_and_is_unknown(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given a first request that takes 1.5 s at Adyen (beyond another client's wait)
    fake.inject("slow")
    patient = adapter(fake.base_url, http_timeout=5)  # type: ignore[attr-defined]
    first: dict[str, object] = {}
    thread = threading.Thread(target=lambda: first.setdefault("outcome", patient.charge(charge_request("po_1"))))
    thread.start()
    try:
        for _ in range(100):  # until the fake holds the key in flight
            if fake.requests:
                break
            threading.Event().wait(0.01)
        threading.Event().wait(0.1)
        # When the same request is sent while the first is processed
        with pytest.raises(PspOutcomeUnknown, match=r"704.*in flight"):
            psp.charge(charge_request("po_1"))
    finally:
        thread.join()
    # Then after the first finished, the resend is answered with the first answer
    again = psp.charge(charge_request("po_1"))
    assert again.psp_reference == first["outcome"].psp_reference and len(fake.charges()) == 1  # type: ignore[union-attr]


def test_the_same_key_with_another_amount_is_rejected_and_not_charged(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given a charged key
    first = psp.charge(charge_request("po_1", amount_minor=1999))
    # When the key is sent with another amount
    with pytest.raises(PspRequestInvalid, match="704"):
        psp.charge(charge_request("po_1", amount_minor=2999))
    # Then nothing more was charged
    assert [c["psp_reference"] for c in fake.charges()] == [first.psp_reference]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "code", "headers", "expected"),
    [
        (502, "000", {}, PspOutcomeUnknown),
        (504, "000", {}, PspOutcomeUnknown),
        (503, "703", {}, PspUnavailable),
        (500, "000", {}, PspOutcomeUnknown),
        (409, "704", {"transient-error": "true"}, PspOutcomeUnknown),
        (422, "704", {"Transient-Error": "true"}, PspOutcomeUnknown),
        (409, "704", {}, PspRequestInvalid),
        (400, "702", {}, PspRequestInvalid),
        (403, "901", {}, PspRequestInvalid),
        (404, "000", {}, PspRequestInvalid),
        (422, "14_030", {}, PspRequestInvalid),
    ],
)
def test_each_adyen_error_ends_in_its_class(
    fake: AdyenFake, psp: AdyenPsp, status: int, code: str, headers: dict, expected: type
) -> None:
    # Given Adyen answering an error (scripted, nothing processed)
    fake.script(status, code, **headers)
    # When the adapter charges
    # Then the library's exception becomes the mapped domain error
    with pytest.raises(expected, match=f"HTTP {status} errorCode {code}"):
        psp.charge(charge_request("po_1"))
    assert fake.payments == {}


def test_a_500_saying_too_many_requests_is_a_rate_limit(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given Adyen's rate limit reported as a 500 (docs: errors/internal)
    fake.script(500, "000", "Too many requests")
    # When charged, Then it is retried as nothing processed
    with pytest.raises(PspUnavailable):
        psp.charge(charge_request("po_1"))


def test_wrong_credentials_and_merchant_account_are_rejected_not_retried(fake: AdyenFake) -> None:
    # Given adapters with a wrong API key and a wrong merchant account
    # When they charge
    # Then both are rejected requests (the order is parked for an operator), nothing charged
    with pytest.raises(PspRequestInvalid, match="HTTP 401"):
        adapter(fake.base_url, api_key="wrong").charge(charge_request())  # type: ignore[attr-defined]
    with pytest.raises(PspRequestInvalid, match="HTTP 403"):
        adapter(fake.base_url, merchant_account="Other").charge(charge_request())  # type: ignore[attr-defined]
    assert fake.payments == {}


def test_an_unreachable_adyen_is_unavailable() -> None:
    # Given nothing listening on the port
    psp = adapter(f"http://127.0.0.1:{free_port()}/v72")
    # When the adapter charges
    # Then nothing can have been charged: PspUnavailable
    with pytest.raises(PspUnavailable, match="could not reach"):
        psp.charge(charge_request())


# --- key lifetime and inputs ---------------------------------------------------------------------
def test_a_key_older_than_seven_days_is_not_resent_and_parks_the_order(fake: AdyenFake) -> None:
    now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    psp = AdyenPsp(
        AdyenSettings(api_key=API_KEY, merchant_account=MERCHANT, return_url=RETURN_URL, base_url=fake.base_url),  # type: ignore[attr-defined]
        now=lambda: now,
    )
    # Given an order first sent 7 days and 1 minute ago, and one sent 6 days ago
    old = (now - timedelta(days=7, minutes=1)).isoformat().replace("+00:00", "Z")
    recent = (now - timedelta(days=6)).isoformat().replace("+00:00", "Z")
    # When each is resent
    # Then the old one is parked without a request, the recent one is sent
    with pytest.raises(PspAwaitingNotification, match="7 days old"):
        psp.charge(charge_request("po_old", first_attempt_at=old))
    assert fake.requests == []
    assert isinstance(psp.charge(charge_request("po_new", first_attempt_at=recent)), Approved)


def test_a_charge_without_a_shopper_reference_is_refused_before_sending(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given requests Adyen could not take: no shopper, a too short shopper, a token longer than 64
    from payments.psp import ChargeRequest

    # When charged
    # Then they end before any request is sent
    with pytest.raises(PspRequestInvalid):
        psp.charge(ChargeRequest("po_1", 1999, "USD", "tok_visa"))
    assert psp.charge(ChargeRequest("po_1", 1999, "USD", "tok_visa", shopper_reference="b1")) == Declined(
        "shopper_reference_invalid"
    )
    assert psp.charge(charge_request("po_1", "tok_" + "x" * 61)) == Declined("payment_method_not_supported")
    with pytest.raises(PspRequestInvalid, match="Idempotency-Key"):
        psp.charge(charge_request("p" * 65))
    assert fake.requests == []


def test_live_needs_its_url_prefix_and_refuses_a_custom_base_url() -> None:
    # Given live settings without a prefix, and with a custom base URL
    # When validated
    # Then both are refused with what to configure
    with pytest.raises(ValueError, match="ADYEN_LIVE_URL_PREFIX"):
        AdyenSettings(api_key="k", merchant_account="m", return_url=RETURN_URL, environment="live")
    with pytest.raises(ValueError, match="ADYEN_BASE_URL"):
        AdyenSettings(
            api_key="k",
            merchant_account="m",
            return_url=RETURN_URL,
            environment="live",
            live_url_prefix="1797a841fbb37ca7-AdyenDemo",
            base_url="http://x/v72",
        )


def test_the_adapter_logs_no_token_and_no_request_body(
    fake: AdyenFake, psp: AdyenPsp, caplog: pytest.LogCaptureFixture
) -> None:
    # Given charges (one declined, one lost and resent) and their log records
    caplog.set_level("DEBUG")
    psp.charge(charge_request("po_1", "tok_visa_secretish"))
    psp.charge(charge_request("po_2", "tok_chargeDeclined"))
    _charge_until_answered(psp, charge_request("po_3", "tok_pspTimeout"))
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    # Then the log names the orders and results, never a token or the shopper
    assert "po_1" in logged and "Authorised" in logged and "Refused" in logged
    assert "tok_" not in logged and "buyer_42" not in logged


# --- refunds ------------------------------------------------------------------------------------------
def refund_call(
    refund_id: str, psp_reference: str, amount_minor: int, currency: str, reason: str | None = None
) -> RefundCall:
    return RefundCall(refund_id, "po_refunded", psp_reference, amount_minor, currency, reason)


def test_a_refund_is_received_and_its_outcome_comes_by_signed_notification(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given a charged order and one whose refunds fail at the scheme
    ok = psp.charge(charge_request("po_1"))
    failing = psp.charge(charge_request("po_2", "tok_refundFails"))
    # When each is refunded (the first twice with the same refund id: a retry)
    first = psp.refund(refund_call("rf_1", ok.psp_reference, 500, "USD", "requested_by_customer"))  # type: ignore[union-attr]
    again = psp.refund(refund_call("rf_1", ok.psp_reference, 500, "USD", "requested_by_customer"))  # type: ignore[union-attr]
    psp.refund(refund_call("rf_2", failing.psp_reference, 1999, "USD"))  # type: ignore[union-attr]
    # Then the refund is received (pending) once, and the REFUND notifications decide, signed
    assert isinstance(first, RefundAnswer) and first.pending and first.succeeded is None and first == again
    refunds = [n["notificationItems"][0]["NotificationRequestItem"] for n in fake.notifications]
    refunds = [item for item in refunds if item["eventCode"] == "REFUND"]
    assert [(r["merchantReference"], r["originalReference"], r["success"]) for r in refunds] == [
        ("rf_1", ok.psp_reference, "true"),  # type: ignore[union-attr]
        ("rf_2", failing.psp_reference, "false"),  # type: ignore[union-attr]
    ]
    assert refunds[0]["pspReference"] == first.psp_reference
    assert all(adyen_hmac.is_valid(item, HMAC_KEY) for item in refunds)
    sent = [b for _, p, h, b in fake.requests if p.endswith("/refunds")]
    assert sent[0] == {
        "merchantAccount": MERCHANT,
        "amount": {"currency": "USD", "value": 500},
        "reference": "rf_1",
        "merchantRefundReason": "CUSTOMER REQUEST",
    }


def test_a_refund_of_an_unknown_payment_is_rejected(fake: AdyenFake, psp: AdyenPsp) -> None:
    with pytest.raises(PspRequestInvalid, match="HTTP 422"):
        psp.refund(refund_call("rf_1", "NOSUCHPAYMENT000", 500, "USD"))


# --- through the executor ------------------------------------------------------------------------------
def test_the_executor_on_adyen_survives_a_lost_answer_with_one_charge(
    repos: Repos, fake: AdyenFake, psp: AdyenPsp
) -> None:
    # Given a stored order paid with tok_pspTimeout (the first answer is lost)
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")], token="tok_pspTimeout")
    task = ExecuteOrderTask(
        checkout_id="chk_1", payment_order_id="po_1", payment_method=PaymentMethod(type="card", token="tok_pspTimeout")
    )
    # When the executor runs, fails with an unknown outcome, and the state machine runs it again
    with pytest.raises(PspOutcomeUnknown):
        execute_order(task, repos.payments, psp)
    result = execute_order(task, repos.payments, psp)
    # Then the order is SUCCESS with Adyen's only charge, charged under the buyer as shopperReference
    assert result.status is OrderStatus.SUCCESS
    assert [c["psp_reference"] for c in fake.charges()] == [result.psp_reference]
    buyer = repos.payments.get("chk_1").buyer_id
    sent = [b for _, p, _, b in fake.requests if p == "/v72/payments"]
    assert len(sent) == 2 and sent[0] == sent[1] and sent[0]["shopperReference"] == buyer


def test_the_settings_choose_the_psp_and_one_adyen_adapter_serves_a_container(
    aws_session: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.kernel.config import reset_settings
    from payments.psp import default_psp
    from payments.psp.simulator import SimulatedPsp

    # Given the simulator by default, then PAYMENTS_PSP=adyen with its settings
    reset_settings()
    assert isinstance(default_psp(), SimulatedPsp)
    monkeypatch.setenv("PAYMENTS_PSP", "adyen")
    for name, value in {
        "ADYEN_API_KEY": "k",
        "ADYEN_MERCHANT_ACCOUNT": MERCHANT,
        "ADYEN_RETURN_URL": RETURN_URL,
        "ADYEN_BASE_URL": "http://127.0.0.1:9/v72",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    try:
        # When the executor asks twice
        first, second = default_psp(), default_psp()
        # Then it is the Adyen adapter, the same object, configured from the environment
        assert isinstance(first, AdyenPsp) and first is second
        assert first.config.merchant_account == MERCHANT and first.config.base_url == "http://127.0.0.1:9/v72"
        # and an unknown PSP name is refused
        monkeypatch.setenv("PAYMENTS_PSP", "stripe")
        reset_settings()
        with pytest.raises(ValueError, match="PAYMENTS_PSP"):
            default_psp()
    finally:
        monkeypatch.delenv("PAYMENTS_PSP")
        reset_settings()


def test_the_api_key_is_read_from_its_secret_and_a_rotation_is_picked_up(aws_session: object, fake: AdyenFake) -> None:
    from moto import mock_aws

    with mock_aws():
        import boto3

        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="payments-dev-adyen-api-key", SecretString=API_KEY)["ARN"]
        # Given an adapter configured with the secret, not the key (re-read at every call: max age 0)
        psp = AdyenPsp(
            AdyenSettings(
                api_key_secret_arn=arn,
                secret_max_age=0,
                merchant_account=MERCHANT,
                return_url=RETURN_URL,
                base_url=fake.base_url,
            )  # type: ignore[attr-defined]
        )
        # When it charges, then the secret is rotated to a key Adyen does not know, and it charges again
        assert isinstance(psp.charge(charge_request("po_1")), Approved)
        secrets.put_secret_value(SecretId=arn, SecretString="rotated-key")
        # Then the first call authenticated with the secret's key and the second with the new one
        with pytest.raises(PspRequestInvalid, match="HTTP 401"):
            psp.charge(charge_request("po_2"))
        assert [h["x-api-key"] for _, _, h, _ in fake.requests] == [API_KEY, "rotated-key"]
    # and exactly one of the key and its secret must be configured
    with pytest.raises(ValueError, match="exactly one"):
        AdyenSettings(merchant_account=MERCHANT, return_url=RETURN_URL)


def test_the_api_key_secret_is_read_once_per_container_within_its_max_age(aws_session: object, fake: AdyenFake) -> None:
    from aws_lambda_powertools.utilities import parameters
    from moto import mock_aws

    parameters.clear_caches()
    with mock_aws():
        import boto3

        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="payments-dev-adyen-api-key-cached", SecretString=API_KEY)["ARN"]
        # Given an adapter as the stage configures it (the secret kept 300 s per container)
        psp = AdyenPsp(
            AdyenSettings(
                api_key_secret_arn=arn,
                secret_max_age=300,
                merchant_account=MERCHANT,
                return_url=RETURN_URL,
                base_url=fake.base_url,
            )  # type: ignore[attr-defined]
        )
        # When it charges, the secret is rotated, and it charges again within the max age
        assert isinstance(psp.charge(charge_request("po_c1")), Approved)
        secrets.put_secret_value(SecretId=arn, SecretString="rotated-key")
        assert isinstance(psp.charge(charge_request("po_c2")), Approved)
        # Then both charges used the key read once (no Secrets Manager call per charge) ...
        assert [h["x-api-key"] for _, _, h, _ in fake.requests] == [API_KEY, API_KEY]
        # ... and a new container (or the max age passed) reads the rotated one
        parameters.clear_caches()
        with pytest.raises(PspRequestInvalid, match="HTTP 401"):
            psp.charge(charge_request("po_c3"))
    parameters.clear_caches()


def test_live_settings_reach_the_documented_live_url_and_test_the_test_url() -> None:
    # Given a live adapter with its prefix, and a test adapter without a base URL
    live = AdyenPsp(
        AdyenSettings(
            api_key="k",
            merchant_account=MERCHANT,
            return_url=RETURN_URL,
            environment="live",
            live_url_prefix="1797a841fbb37ca7-AdyenDemo",
        )
    )
    test = AdyenPsp(AdyenSettings(api_key="k", merchant_account=MERCHANT, return_url=RETURN_URL))

    # When the library resolves the /payments URL as it does before sending
    def url(psp: AdyenPsp) -> str:
        return psp._client._determine_api_url(psp.config.environment, psp._checkout.payments_api.baseUrl + "/payments")

    # Then they are FACTS.md §1's: the live one with its extra /checkout segment, both on v72
    assert url(live) == "https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v72/payments"
    assert url(test) == "https://checkout-test.adyen.com/v72/payments"


def test_refusal_reasons_come_from_the_code_then_the_text() -> None:
    from pathlib import Path

    from payments.psp.adyen import _refusal

    # Given refusals with a code, with only a text (Adyen's library sample), and with neither known
    sample = (
        Path(__file__).resolve().parents[3].parent
        / "shared"
        / "specs"
        / "adyen"
        / "samples"
        / "py-authorise-refused-cvc-declined.json"
    )
    # When they are mapped
    # Then the code wins, the text is the fallback, and an unknown text is kept, slugged
    assert _refusal({"refusalReasonCode": "12", "refusalReason": "Not enough balance"}) == "insufficient_funds"
    assert _refusal({"refusalReason": "Not enough balance"}) == "insufficient_funds"
    assert _refusal({"refusalReason": "Withdrawal amount exceeded!"}) == "refused:withdrawal_amount_exceeded"
    assert _refusal({}) == "refused:unspecified"
    if sample.is_file():
        import json

        assert _refusal(json.loads(sample.read_text())) == "cvc_declined"


#: (refusalReasonCode, refusalReason) as Adyen's test values pair them
#: (docs.adyen.com/development-resources/testing/result-codes; see REFUSAL_REASONS' comment)
ADYEN_REFUSAL_PAIRS = [
    ("2", "Refused"),
    ("3", "Referral"),
    ("4", "Acquirer Error"),
    ("5", "Blocked Card"),
    ("6", "Expired Card"),
    ("7", "Invalid Amount"),
    ("8", "Invalid Card Number"),
    ("9", "Issuer Unavailable"),
    ("11", "3D Not Authenticated"),
    ("12", "Not enough balance"),
    ("14", "Acquirer Fraud"),
    ("20", "FRAUD"),
    ("22", "FRAUD-CANCELLED"),
    ("23", "Transaction Not Permitted"),
    ("24", "CVC Declined"),
    ("25", "Restricted Card"),
    ("26", "Revocation Of Auth"),
    ("27", "Declined Non Generic"),
    ("31", "Issuer Suspected Fraud"),
    ("38", "Authentication required"),
]


@pytest.mark.parametrize(("code", "text"), ADYEN_REFUSAL_PAIRS)
def test_a_refusal_maps_to_the_same_reason_by_code_or_by_its_text(code: str, text: str) -> None:
    from payments.psp.adyen import REFUSAL_REASONS, REFUSAL_TEXTS, _refusal

    # Given one of Adyen's refusals, with its code and without it (the classic API sends only the text)
    # When each is mapped
    # Then both give the same reason: the code table and the text table describe the same refusal
    assert code in REFUSAL_REASONS and text.lower() in REFUSAL_TEXTS
    assert _refusal({"refusalReasonCode": code, "refusalReason": text}) == _refusal({"refusalReason": text})


def test_codes_that_are_not_refusals_are_not_in_the_table() -> None:
    from payments.psp.adyen import REFUSAL_REASONS

    # Given Adyen's codes that come with Authorised (0, 30: partially approved) or Received (13)
    # Then none of them names a refusal reason (an unexpected one falls back to the text)
    assert not {"0", "13", "30"} & set(REFUSAL_REASONS)
