"""Lambda entry point of the recovery (an EventBridge rule invokes it every minute): see payments/payin/recovery.py."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import config
from payments.kernel.observability import entry_point, logger
from payments.payin import recovery

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.RECOVERY)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = recovery.run().summary()
    logger.info("recovery run", extra=summary)
    return summary
