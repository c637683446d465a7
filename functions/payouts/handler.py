"""Lambda entry point of the payout service: API Gateway REST proxy events of the payouts API
(``api.py``), behind the checkout API's request guard (``functions.payment.guard``: the card-number
policy, 405 with ``Allow``, media type, size, UTF-8, depth, JSON syntax, control characters, repeated
keys), which runs before anything is parsed further, logged or stored."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from functions.api_kit import resolve_guarded
from functions.payouts.api import app, idempotency_config
from payments.kernel import config
from payments.kernel.observability import entry_point

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.PAYOUTS)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve_guarded(app, idempotency_config, event, context)
