"""Lambda entry point of the refund service.

* API Gateway REST proxy events: the refunds API (``api.py``), behind the checkout API's request
  guard (``functions.payment.guard``: the card-number policy over path, query, ``Idempotency-Key``
  and body, 405 with ``Allow``, media type, size, UTF-8, depth, JSON syntax, control characters,
  repeated keys), which runs before anything is parsed further, logged or stored;
* the refund workflow's tasks (``stepfunctions/refund.asl.json``): ``{"action": "execute_refund"}``
  (the stage's PSP, :func:`payments.psp.default_psp`), ``{"action": "apply_refund_outcome"}`` and
  ``{"action": "park_refund"}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from functions.api_kit import resolve_guarded
from functions.refunds.api import app, idempotency_config
from payments.kernel import config
from payments.kernel.observability import entry_point
from payments.psp import default_psp
from payments.refunds import logic
from payments.refunds.psp import refunding
from payments.refunds.repository import RefundsRepository

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.REFUNDS)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    action = event.get("action")
    if action == "execute_refund":
        return logic.execute_refund(event["refund_id"], RefundsRepository(), refunding(default_psp()))
    if action == "apply_refund_outcome":
        return logic.apply_refund_outcome(event, RefundsRepository())
    if action == "park_refund":
        return logic.park_refund(event, RefundsRepository())
    return resolve_guarded(app, idempotency_config, event, context)
