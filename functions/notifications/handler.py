"""Lambda entry point of ``POST /v1/psp/notifications``: the PSP's webhooks (Adyen standard format).

Not IAM-authenticated (a PSP cannot sign SigV4): the HMAC of every item is its authentication,
and the route is throttled. Order of work, as Adyen advises: verify every item's HMAC (one bad
or missing signature: 401, nothing stored) -> store each item once (its event identity) ->
enqueue it for processing -> answer ``200 [accepted]``. Processing runs later
(``functions.notifications_consumer``), so a failure in business logic never fails the webhook.
Without a queue configured, items are processed right after storing (a failure there is
logged; the stored item is processed again on its redelivery).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.payment.problems import PROBLEM_JSON, TYPE_PREFIX
from payments import aws
from payments.config import MAX_BODY_BYTES, settings
from payments.errors import TransientError
from payments.notifications import signature
from payments.notifications.apply import process
from payments.notifications.store import NotificationStore
from payments.observability import count, entry_point, logger
from payments.refunds.repository import RefundsRepository

ACCEPTED = "[accepted]"


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return receive(event)


def receive(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        return _problem(413, "payload-too-large", "Payload too large", f"The body exceeds {MAX_BODY_BYTES} bytes.")
    items = parse(data)
    if items is None:
        return _problem(400, "malformed-notification", "Malformed notification", "Expected Adyen's {\"notificationItems\": [{\"NotificationRequestItem\": {...}}]}.")
    keys = hmac_keys()
    if not keys:
        logger.error("no PSP HMAC key configured: every notification is refused")
    bad = [i for i, item in enumerate(items) if not keys or not signature.is_valid(item, keys)]
    if bad:
        count("NotificationSignatureRejected", len(bad))
        logger.warning("notification refused: bad or missing HMAC signature", extra={"items": bad})
        return _problem(401, "invalid-signature", "Invalid signature", "Every notification item must carry a valid HMAC signature. Nothing was stored.")
    store = NotificationStore()
    to_process = []
    for item in items:
        stored = store.store(item)
        count("NotificationReceived" if stored.new else "NotificationRedelivered")
        if not stored.processed:
            to_process.append(stored.notification_id)
    dispatch(to_process, store)
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": ACCEPTED, "isBase64Encoded": False}


def hmac_keys() -> list[str]:
    """The stage's notification HMAC keys: ``PAYMENTS_PSP_HMAC_KEY`` (local runtime), else the
    Secrets Manager secret named by ``PAYMENTS_PSP_HMAC_KEY_SECRET`` (cached for 5 minutes)."""
    text = settings().payments_psp_hmac_key
    if not text and settings().payments_psp_hmac_key_secret:
        from aws_lambda_powertools.utilities import parameters

        text = str(parameters.get_secret(settings().payments_psp_hmac_key_secret, max_age=300))
    return [k.strip() for k in text.split(",") if k.strip()]


def parse(data: bytes) -> list[dict[str, Any]] | None:
    try:
        body = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    wrapped = body.get("notificationItems") if isinstance(body, dict) else None
    if not isinstance(wrapped, list) or not wrapped:
        return None
    items = [w.get("NotificationRequestItem") if isinstance(w, dict) else None for w in wrapped]
    if not all(isinstance(i, dict) for i in items):
        return None
    return items  # type: ignore[return-value]


def dispatch(notification_ids: list[str], store: NotificationStore) -> None:
    queue_url = settings().notifications_queue_url
    if queue_url:
        sqs = aws.client("sqs")
        for start in range(0, len(notification_ids), 10):
            chunk = notification_ids[start : start + 10]
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(n), "MessageBody": json.dumps({"notification_id": i})} for n, i in enumerate(chunk)],
            )
            if response.get("Failed"):
                # not acknowledged: the PSP delivers again, and the stored item is enqueued again
                raise TransientError(f"{len(response['Failed'])} notifications could not be enqueued")
        return
    refunds = RefundsRepository()
    for notification_id in notification_ids:
        try:
            process(notification_id, store, refunds)
        except Exception:  # noqa: BLE001 - stored; processed again on its redelivery
            logger.exception("notification stored but not processed", extra={"notification_id": notification_id})


def _problem(status: int, slug: str, title: str, detail: str) -> dict[str, Any]:
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail}
    return {"statusCode": status, "headers": {"Content-Type": PROBLEM_JSON}, "body": json.dumps(body), "isBase64Encoded": False}
