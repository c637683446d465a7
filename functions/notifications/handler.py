"""Lambda entry point of ``POST /v1/psp/notifications``: the PSP's webhooks (Adyen standard format).

Not IAM-authenticated (a PSP cannot sign SigV4): the HMAC of every item is its authentication,
and the route is throttled. Order of work, as Adyen advises: verify every item's HMAC (one bad
or missing signature: 401, nothing stored) -> store each item once (its event identity) ->
enqueue it for processing -> answer ``200 [accepted]``. Before any of it, the request is
checked as the APIs' request guard does (``functions.payment.guard``), without its card-number
policy (an Adyen pspReference is 16 digits and may pass the Luhn check; nothing unsigned is
stored): method (405 with ``Allow: POST``), media type (415), size (413), UTF-8, nesting depth
(counted before parsing) and JSON syntax (400), Adyen's shape (400). After the signatures, every
field must have the JSON type Adyen sends and ``live`` must be the stage's
(:mod:`payments.psp.adyen_webhook`): otherwise 400 naming the fields, for the whole body (Adyen
acknowledges a body as a whole; it sends one item per JSON body), nothing stored. No answer
quotes what was sent, and no client input leads to a 5xx. Processing runs later
(``functions.notifications_consumer``), so a failure in business logic never fails the webhook.
Without a queue configured, items are processed right after storing (a failure there is
logged; the stored item is processed again on its redelivery).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from functions.payment.guard import body_bytes, header, is_json, json_too_deep
from functions.payment.problems import PROBLEM_JSON, TYPE_PREFIX
from payments.kernel import aws, config
from payments.kernel.config import MAX_BODY_BYTES, MAX_JSON_DEPTH, settings
from payments.kernel.errors import StoreUnavailable, TransientError
from payments.kernel.observability import count, entry_point, logger
from payments.notifications.apply import process
from payments.notifications.store import NotificationStore
from payments.psp import adyen_webhook
from payments.psp import hmac as adyen_hmac
from payments.refunds.repository import RefundsRepository

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.NOTIFICATIONS)


def check_hmac_keys(environ: Mapping[str, str] | None = None) -> None:
    """At cold start: a configured HMAC key that is not hex of at least 16 bytes (or a secret holding
    none) raises :class:`payments.psp.hmac.InvalidHmacKey` naming the setting, never the key, so the
    function's init fails loudly (the init error is the alarm) instead of refusing every notification."""
    current = settings() if environ is None else config.Settings.from_env(environ)
    if current.payments_psp_hmac_key.strip() or current.payments_psp_hmac_key_secret.strip():
        adyen_hmac.configured_keys(environ)


check_hmac_keys()

ACCEPTED = "[accepted]"


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return receive(event)
    except (StoreUnavailable, TransientError):
        # not acknowledged: the PSP delivers again (the stored items are kept, a redelivery changes nothing)
        logger.warning("notification not stored or not enqueued: the PSP will deliver it again")
        return _problem(
            503,
            "service-unavailable",
            "Service unavailable",
            "Please deliver the notification again.",
            {"Retry-After": "1"},
        )
    except Exception:  # noqa: BLE001 - a bug or a configuration error is ours: a problem (the PSP retries), never the request logged
        logger.exception("notification not accepted")
        return _problem(500, "internal-error", "Internal error", "Please deliver the notification again.")


def receive(event: dict[str, Any]) -> dict[str, Any]:
    if str(event.get("httpMethod") or "POST").upper() != "POST":
        return _problem(
            405, "method-not-allowed", "Method not allowed", "This path answers POST only.", {"Allow": "POST"}
        )
    if not is_json(header(event, "Content-Type")):
        return _problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "The body must be application/json (charset utf-8, if given).",
        )
    try:
        data = body_bytes(event.get("body") or "", base64_encoded=bool(event.get("isBase64Encoded")))
    except ValueError:  # binascii.Error included
        return _malformed("The body is not valid base64.")
    if len(data) > MAX_BODY_BYTES:
        return _problem(413, "payload-too-large", "Payload too large", f"The body exceeds {MAX_BODY_BYTES} bytes.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _malformed("The body is not UTF-8 text.")
    if json_too_deep(text):
        return _malformed(f"The body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels.")
    body = parse(text)
    if body is None:
        return _malformed('Expected Adyen\'s {"notificationItems": [{"NotificationRequestItem": {...}}]}.')
    items = [wrapper["NotificationRequestItem"] for wrapper in body["notificationItems"]]
    keys = hmac_keys()
    if not keys:
        logger.error("no PSP HMAC key configured: every notification is refused")
    bad = [i for i, item in enumerate(items) if not keys or not adyen_hmac.is_valid(item, keys)]
    if bad:
        count("NotificationSignatureRejected", len(bad))
        logger.warning("notification refused: bad or missing HMAC signature", extra={"items": bad})
        return _problem(
            401,
            "invalid-signature",
            "Invalid signature",
            "Every notification item must carry a valid HMAC signature. Nothing was stored.",
        )
    # signed, but each field must also have the JSON type Adyen sends (the HMAC signs true and "true"
    # alike), and live must be the stage's: otherwise 400 for the whole body, nothing stored
    errors = adyen_webhook.type_errors(body, live_stage=settings().adyen_environment == "live")
    if errors:
        count("NotificationMalformed")
        logger.warning(
            "notification refused: a field is not of Adyen's type", extra={"fields": [e["field"] for e in errors]}
        )
        return _malformed(
            "Every field must have the JSON type Adyen sends, and live must be this stage's. Nothing was stored.",
            errors,
        )
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
    """The stage's notification HMAC keys (``payments.psp.hmac.configured_keys``): ``PAYMENTS_PSP_HMAC_KEY``
    (local runtime), else the Secrets Manager secret named by ``PAYMENTS_PSP_HMAC_KEY_SECRET``, cached per
    container; a plain hex key, comma-separated keys, or the rotation form that keeps the previous key
    valid until a given time. None configured: no key (every item is refused, and an error is logged);
    a configured but malformed key raises (a 500: the PSP delivers again once it is fixed)."""
    if not (settings().payments_psp_hmac_key.strip() or settings().payments_psp_hmac_key_secret.strip()):
        return []
    return adyen_hmac.configured_keys()


def parse(text: str) -> dict[str, Any] | None:
    """Adyen's standard body (an object whose ``notificationItems`` is a non-empty list of
    ``{"NotificationRequestItem": {...}}``), or None for anything else (not JSON, another shape)."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None
    wrapped = body.get("notificationItems") if isinstance(body, dict) else None
    if not isinstance(wrapped, list) or not wrapped:
        return None
    if not all(isinstance(w, dict) and isinstance(w.get("NotificationRequestItem"), dict) for w in wrapped):
        return None
    return body  # type: ignore[no-any-return]


def dispatch(notification_ids: list[str], store: NotificationStore) -> None:
    queue_url = settings().notifications_queue_url
    if queue_url:
        sqs = aws.client("sqs")
        for start in range(0, len(notification_ids), 10):
            chunk = notification_ids[start : start + 10]
            response = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "MessageBody": json.dumps({"notification_id": i})} for n, i in enumerate(chunk)
                ],
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


def _malformed(detail: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return _problem(400, "malformed-notification", "Malformed notification", detail, errors=errors)


def _problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM_JSON, **(headers or {})},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
