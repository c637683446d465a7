"""POST /v1/psp/notifications and its SQS consumer (issue 18): HMAC on every item, store once,
[accepted], forward-only application, anomalies, duplicates and out-of-order deliveries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions import registry
from payments.kernel.config import reset_settings
from payments.notifications.store import NotificationStore
from payments.payin.status import OrderStatus
from payments.psp.hmac import signed
from payments.psp.simulator import SimulatedPsp
from payments.refunds import logic
from payments.refunds.models import RefundRequest
from payments.refunds.repository import RefundsRepository
from tests.unit.conftest import Repos, store_checkout
from tests.unit.refunds.test_refunds import invariants, paid

KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"


@pytest.fixture()
def env(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> Repos:
    monkeypatch.setenv("PAYMENTS_PSP_HMAC_KEY", KEY)
    reset_settings()
    return repos


@pytest.fixture()
def psp(env: Repos) -> SimulatedPsp:
    return SimulatedPsp()


@pytest.fixture()
def refunds(env: Repos) -> RefundsRepository:
    return RefundsRepository(payments=env.payments, wallets=env.wallets, ledger=env.ledger)


def post(*items: dict[str, Any]) -> dict[str, Any]:
    from functions.notifications.handler import receive

    body = {"live": "false", "notificationItems": [{"NotificationRequestItem": i} for i in items]}
    return receive(
        {
            "httpMethod": "POST",
            "path": "/v1/psp/notifications",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body),
            "isBase64Encoded": False,
        }
    )


def balance(repos: Repos) -> int:
    return repos.wallets.balances("seller_books").get("USD", 0)


def outcomes() -> list[str]:
    return sorted(n.get("outcome", "-") for n in NotificationStore().scan())


def test_a_bad_or_missing_signature_is_401_and_stores_nothing(env: Repos, psp: SimulatedPsp) -> None:
    # Given a settled order and a genuine chargeback notification, tampered or unsigned
    paid(env, psp, "po_1", 7000)
    good = psp.raise_chargeback("po_1")
    tampered = json.loads(json.dumps(good))
    tampered["amount"]["value"] = 1
    unsigned = {k: v for k, v in good.items() if k != "additionalData"}
    for items in ((tampered,), (unsigned,), (good, unsigned)):
        # When it is posted
        response = post(*items)
        # Then it is refused, and nothing was stored or moved
        assert response["statusCode"] == 401
        assert json.loads(response["body"])["type"] == "urn:payments:problem:invalid-signature"
    assert NotificationStore().scan() == []
    assert balance(env) == 7000


def webhook(
    method: str = "POST", body: str | None = "{}", content_type: str | None = "application/json", encoded: bool = False
) -> dict[str, Any]:
    from functions.notifications.handler import handler
    from payments_dev.local.lambdas import LambdaContext

    headers = {"Content-Type": content_type} if content_type else {}
    event = {
        "httpMethod": method,
        "path": "/v1/psp/notifications",
        "headers": headers,
        "body": body,
        "isBase64Encoded": encoded,
    }
    return handler(event, LambdaContext(registry.NOTIFICATIONS.local_name))


@pytest.mark.parametrize(
    ("request_", "status", "slug"),
    [
        ({"method": "GET", "body": None}, 405, "method-not-allowed"),
        ({"method": "DELETE"}, 405, "method-not-allowed"),
        ({"content_type": "text/plain"}, 415, "unsupported-media-type"),
        ({"content_type": None}, 415, "unsupported-media-type"),
        ({"content_type": "application/json; charset=latin-1"}, 415, "unsupported-media-type"),
        ({"body": "x" * (64 * 1024 + 1)}, 413, "payload-too-large"),
        ({"body": "[" * 60_000}, 400, "malformed-notification"),
        ({"body": '{"notificationItems": ' + "[" * 40 + "]" * 40 + "}"}, 400, "malformed-notification"),
        ({"body": "not json Marker"}, 400, "malformed-notification"),
        ({"body": "//8=", "encoded": True}, 400, "malformed-notification"),  # not UTF-8
        ({"body": "not base64!", "encoded": True}, 400, "malformed-notification"),
        ({"body": '{"notificationItems": []}'}, 400, "malformed-notification"),
        ({"body": '{"notificationItems": [{"NotificationRequestItem": "Marker"}]}'}, 400, "malformed-notification"),
        # forged items holding anything where Adyen's fields go: refused as unsigned, never a 5xx
        (
            {
                "body": '{"notificationItems": [{"NotificationRequestItem": {"amount": ["Marker"], "additionalData": {"hmacSignature": "x"}}}]}'
            },
            401,
            "invalid-signature",
        ),
        (
            {
                "body": '{"notificationItems": [{"NotificationRequestItem": {"pspReference": "\\ud800", "additionalData": {"hmacSignature": "\\udfff"}}}]}'
            },
            401,
            "invalid-signature",
        ),
        (
            {
                "body": '{"notificationItems": [{"NotificationRequestItem": {"amount": {"value": {"a": 1}}, "success": true, "additionalData": "Marker"}}]}'
            },
            401,
            "invalid-signature",
        ),
    ],
)
def test_the_webhook_refuses_bad_requests_with_a_problem_never_a_5xx(
    env: Repos, request_: dict[str, Any], status: int, slug: str
) -> None:
    # Given a request to the webhook that is not a signed Adyen notification
    # When it is posted
    response = webhook(**request_)
    body = json.loads(response["body"])
    # Then the answer is the problem for it, which quotes nothing that was sent, and nothing was stored
    assert (response["statusCode"], body["type"]) == (status, f"urn:payments:problem:{slug}")
    assert response["headers"]["Content-Type"] == "application/problem+json" and "Marker" not in response["body"]
    if status == 405:
        assert response["headers"]["Allow"] == "POST"
    assert NotificationStore().scan() == []


def test_a_signed_notification_through_the_entry_point_is_accepted(env: Repos, psp: SimulatedPsp) -> None:
    # Given a genuine chargeback notification, with the media type Adyen sends (charset included)
    paid(env, psp, "po_1", 7000)
    body = json.dumps(
        {"live": "false", "notificationItems": [{"NotificationRequestItem": psp.raise_chargeback("po_1")}]}
    )
    # When it is posted to the function
    response = webhook(body=body, content_type="application/json; charset=UTF-8")
    # Then the answer is Adyen's literal [accepted] and the item is stored
    assert (response["statusCode"], response["body"], response["headers"]["Content-Type"]) == (
        200,
        "[accepted]",
        "text/plain",
    )
    assert len(NotificationStore().scan()) == 1


def test_chargeback_and_reversal_delivered_twice_and_out_of_order_move_money_once(
    env: Repos, psp: SimulatedPsp
) -> None:
    # Given a settled order of 70.00 and the PSP's chargeback and its reversal
    paid(env, psp, "po_1", 7000)
    chargeback = psp.raise_chargeback("po_1")
    reversal = psp.reverse_chargeback(chargeback["pspReference"])
    # When the reversal arrives first, then the chargeback twice, then the reversal again (its retry)
    first = post(reversal)
    assert first == {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "body": "[accepted]",
        "isBase64Encoded": False,
    }
    assert balance(env) == 7000  # stored, not applied: its chargeback is not booked yet
    assert post(chargeback)["body"] == "[accepted]"
    assert balance(env) == 0
    assert post(chargeback)["statusCode"] == 200
    assert post(reversal)["statusCode"] == 200
    # Then the wallet and the ledger moved once for each, and each item was stored once
    assert balance(env) == 7000
    assert env.ledger.trial_balance()["USD"] == (21000, 21000)
    assert outcomes() == ["APPLIED", "APPLIED"]
    assert invariants(env, RefundsRepository(), psp).violations == []


def test_a_second_chargeback_takes_the_money_again_once_even_before_its_reversal(env: Repos, psp: SimulatedPsp) -> None:
    # Given a settled order of 70.00, the PSP's chargeback, its reversal and then its second chargeback
    paid(env, psp, "po_1", 7000)
    chargeback = psp.raise_chargeback("po_1")
    reversal = psp.reverse_chargeback(chargeback["pspReference"])
    second = psp.second_chargeback(chargeback["pspReference"])
    assert second["eventCode"] == "SECOND_CHARGEBACK" and second["pspReference"] == chargeback["pspReference"]
    # When the second chargeback arrives first, then the chargeback, then the second one again (before
    # its reversal: it waits), then the reversal, then the second chargeback twice
    post(second)
    assert balance(env) == 7000  # stored, not applied: nothing of its dispute is booked yet
    post(chargeback)
    post(second)
    assert balance(env) == 0  # still waiting for its reversal
    post(reversal)
    assert balance(env) == 7000
    post(second)
    post(second)
    # Then the wallet and the ledger moved once for each of the three, and each item was stored once
    assert balance(env) == 0
    assert env.ledger.trial_balance()["USD"] == (28000, 28000)
    assert outcomes() == ["APPLIED", "APPLIED", "APPLIED"]
    order = env.payments.get_order("po_1")
    assert (order.chargeback_minor, order.chargeback_reversed_minor, order.to_api().chargeback_amount) == (
        14000,
        7000,
        "70.00",
    )
    assert RefundsRepository().find_dispute(chargeback["pspReference"])["second_minor"] == 7000  # type: ignore[index]
    assert invariants(env, RefundsRepository(), psp).violations == []


def _as_adyen_sends_it(item: dict[str, Any], *drop: str) -> dict[str, Any]:
    """The item without the fields Adyen's own CHARGEBACK_REVERSED and SECOND_CHARGEBACK examples lack
    (Webhooks-v1: no originalReference), signed again."""
    return signed({k: v for k, v in item.items() if k not in drop}, KEY)


def test_dispute_steps_without_original_reference_are_booked_by_their_dispute(env: Repos, psp: SimulatedPsp) -> None:
    # Given a settled order, its chargeback booked, and its reversal and second chargeback as Adyen's
    # examples carry them: the dispute's pspReference, our merchantReference, no originalReference
    paid(env, psp, "po_1", 7000)
    chargeback = psp.raise_chargeback("po_1")
    post(chargeback)
    reversal = _as_adyen_sends_it(psp.reverse_chargeback(chargeback["pspReference"]), "originalReference")
    second = _as_adyen_sends_it(psp.second_chargeback(chargeback["pspReference"]), "originalReference")
    # When they arrive
    post(reversal)
    assert balance(env) == 7000
    post(second)
    # Then each is booked once on the dispute's order
    assert balance(env) == 0
    assert outcomes() == ["APPLIED", "APPLIED", "APPLIED"]
    assert invariants(env, RefundsRepository(), psp).violations == []


def test_adyens_own_dispute_examples_book_the_chargeback_its_reversal_and_its_second_once(
    env: Repos, psp: SimulatedPsp
) -> None:
    from pathlib import Path

    webhooks = Path(__file__).resolve().parents[4] / "shared" / "specs" / "adyen" / "Webhooks-v1.json"
    if not webhooks.is_file():
        pytest.skip(f"Adyen's Webhooks-v1.json is not at {webhooks}")
    examples = json.loads(webhooks.read_text())["components"]["examples"]
    # Given a settled order of 10.00 EUR, and Adyen's own CHARGEBACK, CHARGEBACK_REVERSED and
    # SECOND_CHARGEBACK examples (10.00 EUR, one pspReference; the last two without originalReference),
    # with only what names us replaced: our merchant account, our order, our charge where it is named
    paid(env, psp, "po_1", 1000, currency="EUR")
    charge = env.payments.get_order("po_1").psp_reference

    def ours(event: str) -> dict[str, Any]:
        item = examples[f"post-{event}-{event.lower()}"]["value"]["notificationItems"][0]["NotificationRequestItem"]
        item = {**item, "merchantAccountCode": "LocalMerchant", "merchantReference": "po_1"}
        if "originalReference" in item:
            item["originalReference"] = charge
        item["additionalData"] = {k: v for k, v in item.get("additionalData", {}).items() if k != "hmacSignature"}
        return signed(item, KEY)

    items = {event: ours(event) for event in ("CHARGEBACK", "CHARGEBACK_REVERSED", "SECOND_CHARGEBACK")}
    assert (
        "originalReference" not in items["CHARGEBACK_REVERSED"]
        and "originalReference" not in items["SECOND_CHARGEBACK"]
    )
    # When each arrives, and each again
    after = []
    for event in ("CHARGEBACK", "CHARGEBACK_REVERSED", "SECOND_CHARGEBACK"):
        post(items[event])
        post(items[event])
        after.append(env.wallets.balances("seller_books").get("EUR", 0))
    # Then the money moved once per event: off the seller, back, and off again
    assert after == [0, 1000, 0]
    assert outcomes() == ["APPLIED", "APPLIED", "APPLIED"]
    assert env.payments.get_order("po_1").to_api().chargeback_amount == "10.00"
    assert invariants(env, RefundsRepository(), psp).violations == []


def test_a_dispute_step_that_names_no_charge_waits_for_its_chargeback_and_a_wrong_one_is_an_anomaly(
    env: Repos, psp: SimulatedPsp
) -> None:
    # Given a reversal naming neither the charge nor our order (only its dispute), delivered before its chargeback
    paid(env, psp, "po_1", 7000)
    paid(env, psp, "po_2", 500)  # the same seller's: 75.00 in the wallet
    chargeback = psp.raise_chargeback("po_1")
    bare = _as_adyen_sends_it(
        psp.reverse_chargeback(chargeback["pspReference"]), "originalReference", "merchantReference"
    )
    # When it arrives: nothing says which charge it is, so it waits (redelivered later), never an anomaly
    post(bare)
    assert balance(env) == 7500 and outcomes() == ["-"]
    # and once the chargeback is booked, its redelivery is booked by the dispute
    post(chargeback)
    post(bare)
    assert balance(env) == 7500
    assert outcomes() == ["APPLIED", "APPLIED"]
    # Then a second chargeback naming another of our orders, or another charge, is an anomaly and moves nothing
    second = psp.second_chargeback(chargeback["pspReference"])
    other_order = _as_adyen_sends_it({**second, "merchantReference": "po_2"}, "originalReference")
    other_charge = _as_adyen_sends_it({**second, "originalReference": "psp_0000000000000000"})
    post(other_order)
    post(other_charge)
    assert balance(env) == 7500
    assert outcomes() == ["ANOMALY", "ANOMALY", "APPLIED", "APPLIED"]
    assert invariants(env, RefundsRepository(), psp).violations == []


@pytest.mark.parametrize("code", ["REFUND_FAILED", "REFUNDED_REVERSED"])
def test_a_refund_that_came_back_parks_the_refund_with_an_alarm_and_moves_nothing(
    env: Repos, psp: SimulatedPsp, refunds: RefundsRepository, code: str
) -> None:
    from payments.kernel.observability import LOCAL_COUNTS

    # Given a refund of 60.00 SUCCEEDED (the seller debited, the ledger booked) and a refund FAILED here
    paid(env, psp, "po_1", 7000)
    for refund_id, amount in (("rf_1", "60.00"), ("rf_2", "5.00")):
        logic.accept_refund(
            f"k-{refund_id}",
            RefundRequest(refund_id=refund_id, payment_order_id="po_1", amount=amount, currency="USD"),
            refunds,
            start=False,
        )
    logic.apply_refund_outcome({"refund_id": "rf_1", "execution": logic.execute_refund("rf_1", refunds, psp)}, refunds)
    refunds.decide("rf_2", False, failure_reason="refused", source="psp")
    charge = env.payments.get_order("po_1").psp_reference
    before, debited = LOCAL_COUNTS["RefundReturnedByScheme"], balance(env)
    # When the PSP says each did not reach the shopper after all (as Adyen's examples: the refund's
    # reference, the payment's originalReference), and one names the wrong payment
    ref = refunds.get("rf_1").psp_reference or ""
    post(psp.notification(code, ref, charge, "rf_1", 6000, "USD", reason="Refund Failed"))
    post(psp.notification(code, "psp_rf2", charge, "rf_2", 500, "USD"))
    post(psp.notification(code, "psp_other", "psp_0000000000000000", "rf_1", 6000, "USD"))
    # Then the SUCCEEDED refund is parked with the event in its reason, and the alarm's metric counts it once
    refund = refunds.get("rf_1")
    assert refund.status.value == "SUCCEEDED" and refund.needs_attention
    assert code in (refund.attention_reason or "") and "60.00 USD" in (refund.attention_reason or "")
    # and marked returned in the same write (the refund's returned event is read from it; the API shows when)
    assert refund.returned_reference == ref and refund.returned_at is not None
    assert refund.to_api().returned_at == refund.returned_at and refunds.get("rf_2").returned_at is None
    assert LOCAL_COUNTS["RefundReturnedByScheme"] == before + 1
    # And nothing moved: the wallet, the ledger and the other refund are as they were
    assert balance(env) == debited and not refunds.get("rf_2").needs_attention
    assert outcomes() == ["ANOMALY", "ANOMALY", "DUPLICATE"]
    assert invariants(env, RefundsRepository(), psp).violations == []


def _refund_executed(env: Repos, psp: SimulatedPsp, refunds: RefundsRepository) -> dict[str, Any]:
    """A paid order po_1 of 70.00 and its refund rf_1 of 60.00, executed at the PSP, its answer not applied."""
    paid(env, psp, "po_1", 7000)
    logic.accept_refund(
        "k",
        RefundRequest(refund_id="rf_1", payment_order_id="po_1", amount="60.00", currency="USD"),
        refunds,
        start=False,
    )
    return logic.execute_refund("rf_1", refunds, psp)


def test_refund_notification_duplicate_and_contradicting_change_nothing(
    env: Repos, psp: SimulatedPsp, refunds: RefundsRepository
) -> None:
    # Given a refund decided SUCCEEDED by the PSP's answer
    execution = _refund_executed(env, psp, refunds)
    logic.apply_refund_outcome({"refund_id": "rf_1", "execution": execution}, refunds)
    notification = psp.refund_notification("rf_1")
    assert notification is not None
    # When its REFUND notification arrives, and a forged-looking late "false" one signed with our key
    post(notification)
    late = signed({**{k: v for k, v in notification.items() if k != "additionalData"}, "success": "false"}, KEY)
    post(late)
    # Then nothing moved again, and the contradiction is an anomaly, never a backwards move
    assert refunds.get("rf_1").status.value == "SUCCEEDED"
    assert balance(env) == 1000
    assert outcomes() == ["ANOMALY", "DUPLICATE"]
    assert invariants(env, refunds, psp).violations == []


def test_a_notification_that_beats_the_psp_answer_decides_the_refund(
    env: Repos, psp: SimulatedPsp, refunds: RefundsRepository
) -> None:
    execution = _refund_executed(env, psp, refunds)
    post(psp.refund_notification("rf_1"))  # type: ignore[arg-type]
    assert logic.apply_refund_outcome({"refund_id": "rf_1", "execution": execution}, refunds)["applied"] is False
    assert refunds.get("rf_1").decided_by == "notification"
    assert balance(env) == 1000
    assert invariants(env, refunds, psp).violations == []


def test_a_refund_refused_in_the_psps_own_words_fails_with_the_one_code_clients_see(
    env: Repos, psp: SimulatedPsp, refunds: RefundsRepository
) -> None:
    # Given a refund the PSP has not answered yet (Adyen answers a refund by its REFUND notification)
    execution = _refund_executed(env, psp, refunds)
    notification = psp.refund_notification("rf_1")
    assert notification is not None
    # When the PSP says no in its own words (Adyen's reason is free text)
    refused = {k: v for k, v in notification.items() if k != "additionalData"}
    post(signed({**refused, "success": "false", "reason": "Insufficient in-process funds on account"}, KEY))
    # Then the refund FAILED with the code the simulator's refusal gives too, and no money moved
    assert logic.apply_refund_outcome({"refund_id": "rf_1", "execution": execution}, refunds)["applied"] is False
    decided = refunds.get("rf_1")
    assert decided.status.value == "FAILED" and decided.failure_reason == "refund_declined"
    assert balance(env) == 7000


def test_an_item_for_another_merchant_account_is_accepted_and_never_applied(env: Repos, psp: SimulatedPsp) -> None:
    paid(env, psp, "po_1", 7000)
    item = psp.raise_chargeback("po_1")
    foreign = signed(
        {**{k: v for k, v in item.items() if k != "additionalData"}, "merchantAccountCode": "SomeoneElse"}, KEY
    )
    assert post(foreign)["statusCode"] == 200
    assert balance(env) == 7000
    assert outcomes() == ["ANOMALY"]


def test_authorisation_settles_an_order_whose_outcome_was_unknown(env: Repos, psp: SimulatedPsp) -> None:
    # Given an order left EXECUTING (the PSP's answer was lost)
    store_checkout(env.payments, "chk_1", [("po_1", "seller_books", 7000, "USD")])
    env.payments.move_order("po_1", OrderStatus.EXECUTING)
    item = psp.notification("AUTHORISATION", "psp_abc", None, "po_1", 7000, "USD")
    # When its AUTHORISATION arrives twice
    post(item)
    post(item)
    # Then the order is SUCCESS, credited and booked once
    order = env.payments.get_order("po_1")
    assert (
        order.status is OrderStatus.SUCCESS
        and order.psp_reference == "psp_abc"
        and order.wallet_updated
        and order.ledger_updated
    )
    assert balance(env) == 7000
    # and a contradicting refusal afterwards is an anomaly
    post(psp.notification("AUTHORISATION", "psp_abc", None, "po_1", 7000, "USD", success=False))
    assert env.payments.get_order("po_1").status is OrderStatus.SUCCESS
    assert outcomes() == ["ANOMALY", "APPLIED"]


def test_the_consumer_reports_a_reversal_before_its_chargeback_as_a_batch_failure(
    env: Repos, psp: SimulatedPsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.notifications_consumer import handler as consumer
    from payments_dev.local.lambdas import LambdaContext

    # Given stored notifications (a queue is configured, so the API only stores them)
    paid(env, psp, "po_1", 7000)
    chargeback = psp.raise_chargeback("po_1")
    reversal = psp.reverse_chargeback(chargeback["pspReference"])
    store = NotificationStore()
    rev_id, cb_id = store.store(reversal).notification_id, store.store(chargeback).notification_id

    def sqs_event(*ids: str) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": i,
                    "body": json.dumps({"notification_id": i}),
                    "eventSource": "aws:sqs",
                    "attributes": {},
                    "messageAttributes": {},
                }
                for i in ids
            ]
        }

    # When the reversal comes off the queue before the chargeback
    result = consumer.handler(sqs_event(rev_id, cb_id), LambdaContext(registry.NOTIFICATIONS_CONSUMER.local_name))
    # Then only the reversal is reported for redelivery; redelivered, it applies once
    assert result == {"batchItemFailures": [{"itemIdentifier": rev_id}]}
    assert balance(env) == 0
    assert consumer.handler(sqs_event(rev_id, rev_id), LambdaContext(registry.NOTIFICATIONS_CONSUMER.local_name)) == {
        "batchItemFailures": []
    }
    assert balance(env) == 7000


def test_during_a_key_rotation_the_webhook_accepts_the_previous_key_until_its_deadline(
    env: Repos, psp: SimulatedPsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a chargeback signed with the stage's key, and the key then rotated: the stage now holds the
    # rotation form, with the old key still valid for a while (queued notifications are signed with it)
    paid(env, psp, "po_1", 7000)
    item = psp.raise_chargeback("po_1")
    new_key = "A" * 64
    rotation = {"current": new_key, "previous": KEY, "previous_valid_until": "2999-01-01T00:00:00Z"}
    monkeypatch.setenv("PAYMENTS_PSP_HMAC_KEY", json.dumps(rotation))
    reset_settings()
    # When it is delivered / Then it is accepted
    assert post(item)["statusCode"] == 200
    # and once the previous key's deadline has passed, a notification signed with it is refused
    monkeypatch.setenv(
        "PAYMENTS_PSP_HMAC_KEY", json.dumps({**rotation, "previous_valid_until": "2000-01-01T00:00:00Z"})
    )
    reset_settings()
    late = signed(dict(item, pspReference="9913333333333339"), KEY)  # a new event, signed with the old key
    assert post(late)["statusCode"] == 401
    # while the same event signed with the new key is accepted
    assert post(signed(dict(item, pspReference="9913333333333339"), new_key))["statusCode"] == 200


# --- a dispute that arrives before its charge is settled here ------------------------------------


def _unknown_outcome(env: Repos, po: str = "po_1", amount_minor: int = 1000) -> None:
    """An order whose charge's outcome is not known here (the PSP answered Received, or its answer was lost)."""
    store_checkout(env.payments, f"chk_{po}", [(po, "seller_books", amount_minor, "USD")], token="tok_adyenReceived")
    env.payments.move_order(po, OrderStatus.EXECUTING)


def test_a_chargeback_before_its_charge_is_settled_waits_and_is_booked_once_the_charge_is(
    env: Repos, psp: SimulatedPsp
) -> None:
    from payments.kernel.observability import LOCAL_COUNTS

    # Given an order of 10.00 whose outcome is unknown, and the PSP's signed CHARGEBACK of its charge
    _unknown_outcome(env)
    chargeback = psp.notification("CHARGEBACK", "dsp_1", "psp_abc", "po_1", 1000, "USD")
    waited = LOCAL_COUNTS["DisputeBeforeItsCharge"]
    # When the chargeback arrives first: it is stored, not applied and not closed (it waits for its charge)
    assert post(chargeback)["statusCode"] == 200
    assert outcomes() == ["-"] and balance(env) == 0
    assert LOCAL_COUNTS["DisputeBeforeItsCharge"] == waited + 1
    # and then the AUTHORISATION settles the order (the seller is credited 10.00)
    post(psp.notification("AUTHORISATION", "psp_abc", None, "po_1", 1000, "USD"))
    assert balance(env) == 1000
    # When the chargeback is delivered again (Adyen's retry, or the queue's redelivery), and once more
    post(chargeback)
    post(chargeback)
    # Then it is booked once: the seller gives the money back, and the order shows the chargeback
    assert balance(env) == 0
    assert env.payments.get_order("po_1").to_api().chargeback_amount == "10.00"
    assert env.ledger.trial_balance()["USD"] == (2000, 2000)
    assert outcomes() == ["APPLIED", "APPLIED"]


def test_a_second_chargeback_before_its_charge_is_settled_waits_too(env: Repos, psp: SimulatedPsp) -> None:
    # Given an order whose outcome is unknown, and every step of its dispute naming its charge
    _unknown_outcome(env)
    steps = [
        psp.notification(code, "dsp_1", "psp_abc", "po_1", 1000, "USD")
        for code in ("SECOND_CHARGEBACK", "CHARGEBACK_REVERSED", "CHARGEBACK")
    ]
    # When they all arrive before the charge is settled: none is closed as an anomaly
    for step in steps:
        post(step)
    assert outcomes() == ["-", "-", "-"]
    # and after the AUTHORISATION each is delivered again, in the order it came
    post(psp.notification("AUTHORISATION", "psp_abc", None, "po_1", 1000, "USD"))
    for _ in range(3):
        for step in steps:
            post(step)
    # Then each moved the money once: off, back, off again
    order = env.payments.get_order("po_1")
    assert (order.chargeback_minor, order.chargeback_reversed_minor, balance(env)) == (2000, 1000, 0)
    assert outcomes() == ["APPLIED", "APPLIED", "APPLIED", "APPLIED"]


def test_the_consumer_retries_an_early_chargeback_until_its_charge_is_settled(env: Repos, psp: SimulatedPsp) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    from functions.notifications_consumer import handler as consumer
    from payments_dev.local.lambdas import LambdaContext

    # Given a stored CHARGEBACK of an order whose outcome is unknown (a queue is configured: the API only stores)
    _unknown_outcome(env)
    store = NotificationStore()
    cb_id = store.store(psp.notification("CHARGEBACK", "dsp_1", "psp_abc", "po_1", 1000, "USD")).notification_id
    event = {
        "Records": [
            {
                "messageId": cb_id,
                "body": json.dumps({"notification_id": cb_id}),
                "eventSource": "aws:sqs",
                "attributes": {},
                "messageAttributes": {},
            }
        ]
    }
    context = LambdaContext(registry.NOTIFICATIONS_CONSUMER.local_name)
    # When it comes off the queue while the outcome is still unknown / Then the batch fails each time (alone in
    # its batch, Powertools raises: SQS delivers it again, and after the queue's maxReceiveCount the
    # dead-letter queue and its alarm have it), and nothing moved
    for _ in range(3):
        with pytest.raises(BatchProcessingError, match="All records failed"):
            consumer.handler(event, context)
    assert "outcome" not in store.get(cb_id) and balance(env) == 0
    # When the order is settled and the chargeback is redelivered / Then it is booked
    post(psp.notification("AUTHORISATION", "psp_abc", None, "po_1", 1000, "USD"))
    assert consumer.handler(event, context) == {"batchItemFailures": []}
    assert store.get(cb_id)["outcome"] == "APPLIED" and balance(env) == 0


def test_a_waiting_chargeback_whose_charge_is_refused_after_all_is_an_alarmed_anomaly(
    env: Repos, psp: SimulatedPsp
) -> None:
    from payments.kernel.observability import LOCAL_COUNTS

    # Given an order whose outcome is unknown and an early CHARGEBACK waiting for its charge
    _unknown_outcome(env)
    chargeback = psp.notification("CHARGEBACK", "dsp_1", "psp_abc", "po_1", 1000, "USD")
    post(chargeback)
    assert outcomes() == ["-"]
    before = LOCAL_COUNTS["DisputeOnUnknownCharge"]
    # When the AUTHORISATION says the charge was refused, and the chargeback is delivered again
    post(psp.notification("AUTHORISATION", "psp_abc", None, "po_1", 1000, "USD", success=False))
    post(chargeback)
    # Then it stops waiting: closed as an anomaly, counted for its alarm, and nothing moved
    assert env.payments.get_order("po_1").status is OrderStatus.FAILED
    assert outcomes() == ["ANOMALY", "APPLIED"]
    assert LOCAL_COUNTS["DisputeOnUnknownCharge"] == before + 1
    assert balance(env) == 0


def test_a_chargeback_on_a_charge_never_ours_is_an_anomaly_counted_for_its_alarm(env: Repos, psp: SimulatedPsp) -> None:
    from payments.kernel.observability import LOCAL_COUNTS

    # Given a settled order, and chargebacks naming an order we never had, and another charge of ours
    paid(env, psp, "po_1", 7000)
    before = LOCAL_COUNTS["DisputeOnUnknownCharge"]
    post(psp.notification("CHARGEBACK", "dsp_1", "psp_abc", "po_unknown", 1000, "USD"))
    post(psp.notification("CHARGEBACK", "dsp_2", "psp_0000000000000000", "po_1", 1000, "USD"))
    # Then they are closed as anomalies (they can never be applied), counted for the alarm, and nothing moved
    assert outcomes() == ["ANOMALY", "ANOMALY"]
    assert LOCAL_COUNTS["DisputeOnUnknownCharge"] == before + 2
    assert balance(env) == 7000


# --- every signed field has the JSON type Adyen sends ---------------------------------------------


def _retyped(item: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The signed item with one field's JSON type changed and its signature kept (the HMAC signs the text)."""
    copy = json.loads(json.dumps(item))
    target = copy
    *parents, last = path.split(".")
    for parent in parents:
        target = target[parent]
    if value is _ABSENT:
        del target[last]
    else:
        target[last] = value
    return copy  # type: ignore[no-any-return]


_ABSENT = object()


def test_a_replayed_refund_with_success_as_a_json_boolean_is_400_and_changes_nothing(
    env: Repos, psp: SimulatedPsp, refunds: RefundsRepository
) -> None:
    # Given a refund the PSP paid, still PENDING here (its answer not applied yet), and its signed REFUND
    _refund_executed(env, psp, refunds)
    genuine = psp.refund_notification("rf_1")
    assert genuine is not None and genuine["success"] == "true"
    # When it is re-posted with "success": true (a JSON boolean: the signature still matches)
    replayed = _retyped(genuine, "success", True)
    response = post(replayed)
    # Then it is refused as malformed, naming the field, and nothing is stored or decided
    problem = json.loads(response["body"])
    assert response["statusCode"] == 400 and problem["type"] == "urn:payments:problem:malformed-notification"
    assert [e["field"] for e in problem["errors"]] == ["notificationItems[0].NotificationRequestItem.success"]
    assert NotificationStore().scan() == [] and refunds.get("rf_1").status.value == "PENDING"
    # And the genuine one, posted after, decides the refund as the PSP did
    assert post(genuine)["statusCode"] == 200
    assert refunds.get("rf_1").status.value == "SUCCEEDED" and balance(env) == 1000
    assert outcomes() == ["APPLIED"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("success", True),
        ("success", False),
        ("success", "TRUE"),
        ("success", _ABSENT),
        ("amount.value", "1000"),
        ("amount.value", 1000.0),
        ("amount.value", True),
        ("amount.value", 2**64),
        ("amount.currency", None),
        ("amount", _ABSENT),
        ("pspReference", 8815000000000001),
        ("merchantReference", 12345),
        ("originalReference", None),
        ("merchantAccountCode", _ABSENT),
        ("eventCode", None),
        ("eventDate", 1700000000),
    ],
)
def test_a_signed_field_of_another_json_type_is_400_names_it_and_stores_nothing(
    env: Repos, psp: SimulatedPsp, path: str, value: Any
) -> None:
    # Given a signed AUTHORISATION whose references are numbers as text (they sign like JSON numbers)
    store_checkout(env.payments, "chk_1", [("12345", "seller_books", 1000, "USD")])
    env.payments.move_order("12345", OrderStatus.EXECUTING)
    item = psp.notification("AUTHORISATION", "8815000000000001", None, "12345", 1000, "USD")
    if path == "originalReference":
        item = signed({**{k: v for k, v in item.items() if k != "additionalData"}, "originalReference": ""}, KEY)
    # When one field is posted with another JSON type (or missing): its signature kept where the signed text is
    # the same (a replay), signed again where it is not (a sender with the key that breaks Adyen's types)
    from payments.psp.hmac import signing_string

    retyped = _retyped(item, path, value)
    if signing_string(retyped) != signing_string(item):
        retyped = signed({k: v for k, v in retyped.items() if k != "additionalData"}, KEY)
    response = post(retyped)
    # Then it is a 400 naming that field (the signature passed), and nothing is stored or applied
    problem = json.loads(response["body"])
    assert response["statusCode"] == 400, problem
    assert problem["type"] == "urn:payments:problem:malformed-notification"
    assert [e["field"] for e in problem["errors"]] == [f"notificationItems[0].NotificationRequestItem.{path}"]
    assert NotificationStore().scan() == [] and env.payments.get_order("12345").status is OrderStatus.EXECUTING
    # while the item as signed is accepted and applied
    assert post(item)["statusCode"] == 200 and env.payments.get_order("12345").status is OrderStatus.SUCCESS


def test_a_separator_in_a_signed_reference_is_refused(env: Repos, psp: SimulatedPsp) -> None:
    # Given the signing string joins the fields with ":" unescaped, so a ":" moved across a field boundary
    # signs the same (here between originalReference and merchantAccountCode)
    from payments.psp.hmac import signing_string

    paid(env, psp, "po_1", 7000)
    charge = env.payments.get_order("po_1").psp_reference
    one = {"pspReference": "dsp_1", "originalReference": charge, "merchantAccountCode": "LocalMerchant:x"}
    other = {"pspReference": "dsp_1", "originalReference": f"{charge}:LocalMerchant", "merchantAccountCode": "x"}
    assert signing_string(one) == signing_string(other)
    # When a signed chargeback holds ":" in a field other than merchantReference (ours; Adyen's examples have it)
    for field, value in (("pspReference", "dsp:1"), ("originalReference", f"{charge}:x"), ("eventCode", "CHARGEBACK:")):
        item = psp.notification("CHARGEBACK", "dsp_1", charge, "po_1", 1000, "USD")
        item = signed({**{k: v for k, v in item.items() if k != "additionalData"}, field: value}, KEY)
        response = post(item)
        # Then it is refused naming the field, and nothing is stored
        assert response["statusCode"] == 400
        errors = json.loads(response["body"])["errors"]
        assert errors == [
            {"field": f"notificationItems[0].NotificationRequestItem.{field}", "message": "must not contain ':'"}
        ]
    assert NotificationStore().scan() == [] and balance(env) == 7000


def _post_live(live: Any, *items: dict[str, Any]) -> dict[str, Any]:
    from functions.notifications.handler import receive

    body: dict[str, Any] = {"notificationItems": [{"NotificationRequestItem": i} for i in items]}
    if live is not _ABSENT:
        body["live"] = live
    return receive({"httpMethod": "POST", "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)})


@pytest.mark.parametrize(
    ("environment", "accepted", "refused"),
    [("test", "false", ("true", False, _ABSENT, "False")), ("live", "true", ("false", True, _ABSENT))],
)
def test_live_must_be_the_stages(
    env: Repos,
    psp: SimulatedPsp,
    monkeypatch: pytest.MonkeyPatch,
    environment: str,
    accepted: str,
    refused: tuple[Any, ...],
) -> None:
    # Given a stage in Adyen's test or live environment, and a genuine signed chargeback
    paid(env, psp, "po_1", 7000)
    item = psp.raise_chargeback("po_1")
    monkeypatch.setenv("ADYEN_ENVIRONMENT", environment)
    reset_settings()
    # When it is posted with any other live / Then it is a 400 naming live, and nothing is stored
    for live in refused:
        response = _post_live(live, item)
        assert response["statusCode"] == 400, live
        assert [e["field"] for e in json.loads(response["body"])["errors"]] == ["live"]
    assert NotificationStore().scan() == [] and balance(env) == 7000
    # When it is posted with the stage's live / Then it is accepted and applied
    assert _post_live(accepted, item)["statusCode"] == 200
    assert balance(env) == 0


def test_one_mistyped_item_refuses_the_whole_body(env: Repos, psp: SimulatedPsp) -> None:
    # Given two settled orders and a body of two signed chargebacks, the second with "success": true
    paid(env, psp, "po_1", 7000)
    paid(env, psp, "po_2", 500)
    good = psp.raise_chargeback("po_1")
    bad = _retyped(psp.raise_chargeback("po_2"), "success", True)
    # When it is posted / Then the body is refused (Adyen acknowledges a body as a whole) and nothing is stored
    response = post(good, bad)
    assert response["statusCode"] == 400
    assert [e["field"] for e in json.loads(response["body"])["errors"]] == [
        "notificationItems[1].NotificationRequestItem.success"
    ]
    assert NotificationStore().scan() == [] and balance(env) == 7500
