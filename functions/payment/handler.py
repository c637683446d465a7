"""Lambda entry point of the payment service.

Two kinds of events reach it:

* API Gateway REST proxy events: the checkout API (``api.py``), behind the request
  guard (``guard.py``) that runs before anything is parsed further, logged or stored:
  the card-number (PAN) policy over path, query, ``Idempotency-Key`` and body, the
  method, and bounded parsing (media type, size, UTF-8, depth, JSON syntax).
* the state machine's ``FinalizePayment`` task (``{"action": "finalize_payment", ...}``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.payment import logic
from functions.payment.api import app, idempotency_config, routes
from functions.payment.guard import guard_request
from functions.payment.problems import as_proxy, problem
from payments.observability import entry_point, logger
from payments.repositories.payments import PaymentsRepository
from payments.tasks import FinalizePaymentTask


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "finalize_payment":
        return logic.finalize_payment(FinalizePaymentTask.model_validate(event), PaymentsRepository())
    try:
        event, rejected = guard_request(event, routes())
    except Exception:  # a bug in the guard is ours: a problem, never a Lambda error (the request is not logged)
        logger.exception("request guard failed")
        rejected = problem(500, "internal-error", "Internal error", "Please retry with the same Idempotency-Key.")
    if rejected is not None:
        return as_proxy(rejected)
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)
