"""Lambda entry point of the operator API (``api.py``): API Gateway REST proxy events, behind the
checkout API's request guard (``functions.payment.guard``: the card-number policy, 405 with ``Allow``,
media type, size, UTF-8, depth, JSON syntax), which runs before anything is parsed further or logged."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from functions.api_kit import routes_of
from functions.operator.api import app
from functions.payment.guard import guard_request
from functions.payment.problems import as_proxy
from payments.kernel import config
from payments.kernel.observability import entry_point

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.OPERATOR)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event, rejected = guard_request(event, routes_of(app))
    if rejected is not None:
        return as_proxy(rejected)
    return app.resolve(event, context)
