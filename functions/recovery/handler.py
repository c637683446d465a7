"""Lambda entry point of the recovery (an EventBridge rule invokes it every minute): see payments/payin/recovery.py."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments.kernel.observability import entry_point, logger
from payments.payin import recovery


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = recovery.run().summary()
    logger.info("recovery run", extra=summary)
    return summary
