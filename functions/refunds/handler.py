"""Lambda entry point of the refund service.

* API Gateway REST proxy events: the refunds API (``api.py``), behind the body-size bound and
  the card-number (PAN) check, which run before anything is parsed or logged;
* the refund workflow's tasks (``stepfunctions/refund.asl.json``): ``{"action": "execute_refund"}``
  (the PSP), ``{"action": "apply_refund_outcome"}`` and ``{"action": "park_refund"}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.payment.problems import problem
from functions.refunds.api import app, idempotency_config
from payments.config import MAX_BODY_BYTES
from payments.observability import count, entry_point, logger
from payments.pan import find_pans
from payments.refunds import logic
from payments.refunds.repository import RefundsRepository


def _psp() -> Any:
    from payments.psp.simulator import SimulatedPsp

    return SimulatedPsp()


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = event.get("action")
    if action == "execute_refund":
        return logic.execute_refund(event["refund_id"], RefundsRepository(), _psp())
    if action == "apply_refund_outcome":
        return logic.apply_refund_outcome(event, RefundsRepository())
    if action == "park_refund":
        return logic.park_refund(event, RefundsRepository())
    rejected = _guard(event)
    if rejected is not None:
        return rejected
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)


def _guard(event: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse oversized bodies and bodies carrying a card number before validation or logging."""
    raw = event.get("body")
    if not raw:
        return None
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        return _proxy(problem(413, "payload-too-large", "Payload too large", f"The body exceeds {MAX_BODY_BYTES} bytes."))
    text = data.decode("utf-8", "replace")
    try:
        paths = find_pans(json.loads(text))
    except ValueError:
        paths = ["(body)"] if find_pans(text) else []
    if paths:
        count("CardNumberRejected")
        logger.warning("request rejected: card number in body", extra={"fields": paths})
        return _proxy(
            problem(422, "card-number-rejected", "Card number not accepted", "Raw card numbers are never accepted. Nothing was stored.",
                    [{"field": p, "message": "looks like a card number (PAN)"} for p in paths])
        )
    if event.get("isBase64Encoded"):
        event["body"], event["isBase64Encoded"] = text, False
    return None


def _proxy(response: Any) -> dict[str, Any]:
    return {"statusCode": response.status_code, "headers": {"Content-Type": "application/problem+json"}, "body": response.body, "isBase64Encoded": False}
