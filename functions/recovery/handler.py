"""Lambda entry point of the recovery (EventBridge Scheduler, every minute): see payments/recovery.py."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import recovery
from payments.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = recovery.run().summary()
    logger.info("recovery run", extra=summary)
    return summary
