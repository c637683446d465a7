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

from functions import registry
from functions.api_kit import resolve_guarded
from functions.payment import logic
from functions.payment.api import app, idempotency_config
from payments.kernel import config
from payments.kernel.observability import entry_point
from payments.payin.repository import PaymentsRepository
from payments.payin.tasks import FinalizePaymentTask

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.PAYMENT)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "finalize_payment":
        return logic.finalize_payment(FinalizePaymentTask.model_validate(event), PaymentsRepository())
    return resolve_guarded(app, idempotency_config, event, context)
