"""Lambda entry point of the payment service.

Two kinds of events reach it:

* API Gateway REST proxy events: the checkout API (``api.py``), behind two guards
  that run before anything is parsed or logged: the body-size bound and the
  card-number (PAN) check.
* the state machine's ``FinalizePayment`` task (``{"action": "finalize_payment", ...}``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.payment import logic
from functions.payment.api import app, idempotency_config
from functions.payment.problems import problem
from payments.config import MAX_BODY_BYTES
from payments.observability import count, entry_point, logger
from payments.pan import find_pans
from payments.repositories.payments import PaymentsRepository
from payments.tasks import FinalizePaymentTask


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "finalize_payment":
        return logic.finalize_payment(FinalizePaymentTask.model_validate(event), PaymentsRepository())
    event, rejected = guard_body(event)
    if rejected is not None:
        return rejected
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)


def guard_body(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Reject oversized bodies and bodies carrying a card number, before validation or logging.

    Returns the event (base64 bodies decoded) and the rejection response, if any.
    """
    raw = event.get("body")
    if not raw:
        return event, None
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        return event, _as_proxy(problem(413, "payload-too-large", "Payload too large", f"The body exceeds {MAX_BODY_BYTES} bytes."))
    text = data.decode("utf-8", "replace")
    try:
        paths = find_pans(json.loads(text))
    except ValueError:
        paths = ["(body)"] if find_pans(text) else []
    if paths:
        count("CardNumberRejected")
        logger.warning("request rejected: card number in body", extra={"fields": paths})
        return event, _as_proxy(
            problem(
                422,
                "card-number-rejected",
                "Card number not accepted",
                "Raw card numbers are never accepted; send a PSP token in payment_method.token. Nothing was stored.",
                [{"field": p, "message": "looks like a card number (PAN)"} for p in paths],
            )
        )
    if event.get("isBase64Encoded"):
        event = {**event, "body": text, "isBase64Encoded": False}
    return event, None


def _as_proxy(response: Any) -> dict[str, Any]:
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": response.headers.get("Content-Type", "application/problem+json"), **{k: v for k, v in response.headers.items() if isinstance(v, str)}},
        "body": response.body,
        "isBase64Encoded": False,
    }
