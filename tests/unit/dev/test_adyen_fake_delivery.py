"""The Adyen fake delivers its notifications by itself, as Adyen does (payments_dev/local/adyen_fake.py,
``Delivery``): signed, in Adyen's JSON format, to the webhook it is given; a notification not acknowledged
with a 2xx is retried 3 times at once, then on Adyen's schedule (FACTS.md §3), the queue's earliest first;
and on purpose duplicated or reordered. The webhook here is a small HTTP server scripted per test."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from payments.psp import hmac as adyen_hmac
from payments_dev.local.adyen_fake import (
    IMMEDIATE_RETRIES,
    RETRY_DELAYS_SECONDS,
    AdyenFake,
    FakeRecord,
)
from tests.unit.adyen_support import API_KEY, HMAC_KEY, MERCHANT, RETURN_URL

SCALE = 0.0005  # 2 min -> 0.06 s, 5 min -> 0.15 s, 10 min -> 0.3 s


class Webhook:
    """A webhook that answers ``refuse`` (a status, or "hang") while ``refusing`` is set, else 200 [accepted]."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.refusing = threading.Event()
        self.refuse: int | str = 500
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server names the handler so
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.received.append((time.monotonic(), body))
                if hook.refusing.is_set() and hook.refuse == "hang":
                    time.sleep(0.6)  # longer than the sender's timeout in the test: no acknowledgement
                    return
                status = int(hook.refuse) if hook.refusing.is_set() else 200
                payload = b"[accepted]" if status == 200 else b"boom"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/psp/notifications"

    def events(self) -> list[tuple[str, str]]:
        return [(_item(b)["eventCode"], _item(b)["merchantReference"]) for _, b in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _item(body: dict[str, Any]) -> dict[str, Any]:
    return body["notificationItems"][0]["NotificationRequestItem"]  # type: ignore[no-any-return]


@pytest.fixture()
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture()
def fake() -> Iterator[AdyenFake]:
    fake = AdyenFake(api_key=API_KEY, merchant_account=MERCHANT, hmac_key=HMAC_KEY, spec=False)
    yield fake
    fake.close()


def _pay(fake: AdyenFake, reference: str, token: str = "tok_visa", value: int = 1000) -> str:
    body = {
        "merchantAccount": MERCHANT,
        "amount": {"currency": "EUR", "value": value},
        "reference": reference,
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": token},
        "shopperReference": "buyer_42",
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "returnUrl": RETURN_URL,
    }
    reply = fake.handle("POST", "/v72/payments", {"X-API-Key": API_KEY}, json.dumps(body).encode())
    assert reply.status == 200 and reply.body is not None, reply
    return str(reply.body["pspReference"])


def _refund(fake: AdyenFake, psp_reference: str, refund_id: str, value: int = 400) -> None:
    body = {"merchantAccount": MERCHANT, "amount": {"currency": "EUR", "value": value}, "reference": refund_id}
    reply = fake.handle(
        "POST", f"/v72/payments/{psp_reference}/refunds", {"X-API-Key": API_KEY}, json.dumps(body).encode()
    )
    assert reply.status == 201, reply


def _until(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_the_fake_posts_its_refund_and_authorisation_notifications_by_itself(fake: AdyenFake, webhook: Webhook) -> None:
    # Given a fake delivering to the stage's webhook
    fake.start_delivery(webhook.url, time_scale=SCALE)
    # When a payment whose outcome is "Received" is made and another one is refunded (nobody calls deliver)
    _pay(fake, "po_received", token="tok_adyenReceived")
    paid = _pay(fake, "po_paid")
    _refund(fake, paid, "rf_1")
    # Then the webhook receives their AUTHORISATION and REFUND notifications, in Adyen's JSON format,
    # each signed with the stage's key, strings where Adyen sends strings
    assert _until(lambda: {("REFUND", "rf_1"), ("AUTHORISATION", "po_received")} <= set(webhook.events()))
    assert fake.delivery is not None and fake.delivery.wait_idle(5)
    for _, body in webhook.received:
        assert body["live"] == "false" and len(body["notificationItems"]) == 1
        assert adyen_hmac.all_valid(body, HMAC_KEY), body
        item = _item(body)
        assert isinstance(item["success"], str) and isinstance(item["amount"]["value"], int)
    refund = next(_item(b) for _, b in webhook.received if _item(b)["eventCode"] == "REFUND")
    assert (refund["originalReference"], refund["amount"], refund["success"]) == (
        paid,
        {"currency": "EUR", "value": 400},
        "true",
    )
    assert fake.notifications == []  # none left waiting for a manual deliver


def test_a_notification_not_acknowledged_is_retried_three_times_at_once_then_on_adyens_schedule(
    fake: AdyenFake, webhook: Webhook
) -> None:
    # Given a webhook answering 500 (Adyen's schedule scaled so that 2 min is 0.24 s)
    scale = 0.002
    webhook.refusing.set()
    delivery = fake.start_delivery(webhook.url, time_scale=scale)
    # When a payment's AUTHORISATION is sent, and the webhook accepts again after seven posts
    _pay(fake, "po_1")
    assert _until(lambda: len(webhook.received) >= 7, 30)
    webhook.refusing.clear()
    # Then it is accepted at last, after 1 post + 3 immediate retries + queued retries, each queued retry
    # waiting at least Adyen's next delay (scaled), the same bytes every time
    assert delivery.wait_idle(10)
    kinds = [a.kind for a in delivery.attempts]
    assert kinds[: 1 + IMMEDIATE_RETRIES] == ["first"] + ["immediate retry"] * IMMEDIATE_RETRIES
    assert set(kinds[1 + IMMEDIATE_RETRIES :]) == {"queued retry"} and len(kinds) == len(webhook.received) >= 8
    assert [a.accepted for a in delivery.attempts] == [False] * (len(kinds) - 1) + [True]
    assert [a.status for a in delivery.attempts][:-1] == [500] * (len(kinds) - 1)
    times = [t for t, _ in webhook.received]
    queued_gaps = [b - a for a, b in zip(times[IMMEDIATE_RETRIES:], times[IMMEDIATE_RETRIES + 1 :], strict=False)]
    for gap, delay in zip(queued_gaps, RETRY_DELAYS_SECONDS, strict=False):
        assert gap >= delay * scale * 0.9, (queued_gaps, delay)
    immediate_gaps = [b - a for a, b in itertools.pairwise(times[: IMMEDIATE_RETRIES + 1])]
    assert max(immediate_gaps) < RETRY_DELAYS_SECONDS[0] * scale, immediate_gaps
    assert all(b == webhook.received[0][1] for _, b in webhook.received)
    assert fake.delivered == [webhook.received[0][1]]


def test_an_unanswered_post_counts_as_not_acknowledged(fake: AdyenFake, webhook: Webhook) -> None:
    # Given a webhook that does not answer within the sender's timeout, once
    webhook.refuse = "hang"
    webhook.refusing.set()
    delivery = fake.start_delivery(webhook.url, time_scale=SCALE, timeout=0.2)
    # When a notification is sent and the webhook then recovers
    _pay(fake, "po_1", token="tok_adyenPending")
    assert _until(lambda: len(webhook.received) >= 1)
    webhook.refusing.clear()
    # Then the post without an answer was retried until accepted
    assert delivery.wait_idle(10)
    assert delivery.attempts[0].status is None and delivery.attempts[-1].accepted


def test_the_queues_earliest_notification_holds_back_the_later_ones_until_it_is_accepted(
    fake: AdyenFake, webhook: Webhook
) -> None:
    # Given a webhook refusing everything, and three notifications that all went to the retry queue
    webhook.refusing.set()
    delivery = fake.start_delivery(webhook.url, time_scale=SCALE)
    paid = _pay(fake, "po_1")
    _refund(fake, paid, "rf_1", 100)
    _refund(fake, paid, "rf_2", 100)
    assert _until(lambda: len(delivery.retry_queue) == 3)
    # While it refuses, only the queue's head is retried: the later ones are not posted again
    time.sleep(0.4)
    after_immediate = webhook.events()[3 * (1 + IMMEDIATE_RETRIES) :]
    assert after_immediate and set(after_immediate) == {("AUTHORISATION", "po_1")}, after_immediate
    # When the webhook accepts again
    webhook.refusing.clear()
    # Then the head is accepted, and the ones behind it follow in their order
    assert delivery.wait_idle(10)
    accepted = [(a.event, a.psp_reference) for a in delivery.attempts if a.accepted]
    assert [event for event, _ in accepted] == ["AUTHORISATION", "REFUND", "REFUND"]
    assert [_item(b)["merchantReference"] for b in fake.delivered] == ["po_1", "rf_1", "rf_2"]


def test_the_switches_duplicate_and_reorder_deliveries_as_adyen_may(fake: AdyenFake, webhook: Webhook) -> None:
    # Given a fake that duplicates every accepted notification and holds back every other one
    delivery = fake.start_delivery(webhook.url, time_scale=SCALE, duplicate=1.0, reorder=1.0, hold_seconds=5.0)
    # When two notifications are sent one after the other
    paid = _pay(fake, "po_1")
    assert _until(lambda: delivery._held is not None)
    _refund(fake, paid, "rf_1")
    # Then the later one arrives first, and each one twice
    assert delivery.wait_idle(10)
    assert webhook.events() == [
        ("REFUND", "rf_1"),
        ("REFUND", "rf_1"),
        ("AUTHORISATION", "po_1"),
        ("AUTHORISATION", "po_1"),
    ]
    assert [a.kind for a in delivery.attempts] == ["first", "duplicate", "first", "duplicate"]


def test_the_fakes_record_answers_the_money_back_phases_questions(fake: AdyenFake, webhook: Webhook) -> None:
    # Given a delivering fake with a refunded payment and a dispute charged back, reversed and charged back again
    fake.start_delivery(webhook.url, time_scale=SCALE)
    record = FakeRecord(fake)
    paid = _pay(fake, "po_1")
    _refund(fake, paid, "rf_1")
    chargeback = record.raise_chargeback("po_1", 600)
    reversal = record.reverse_chargeback(chargeback["pspReference"])
    second = record.second_chargeback(chargeback["pspReference"])
    # Then the record answers what the PSP did, and the fake delivered each of its notifications itself
    assert record.lookup_refund("rf_1") == {
        "psp_reference": record.refund_notification("rf_1")["pspReference"],  # type: ignore[index]
        "succeeded": True,
        "at": record.lookup_refund("rf_1")["at"],  # type: ignore[index]
    }
    assert record.lookup_refund("rf_unknown") is None and record.refund_notification("rf_unknown") is None
    (dispute,) = list(record.disputes())
    assert dispute["dispute_reference"] == chargeback["pspReference"] == reversal["pspReference"]
    assert (dispute["payment_order_id"], dispute["amount_minor"]) == ("po_1", 600)
    assert {"charged_back_at", "reversed_at", "second_at"} <= set(dispute)
    assert second["eventCode"] == "SECOND_CHARGEBACK" and adyen_hmac.all_valid(
        fake.notification({k: v for k, v in second.items() if k != "additionalData"}), HMAC_KEY
    )
    assert record.wait_delivered(10)
    assert [e for e, _ in webhook.events()] == [
        "AUTHORISATION",
        "REFUND",
        "CHARGEBACK",
        "CHARGEBACK_REVERSED",
        "SECOND_CHARGEBACK",
    ]
    with pytest.raises(ValueError):
        record.raise_chargeback("po_unknown")
