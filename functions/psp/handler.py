"""Lambda entry point of the simulated PSP's nightly settlement job (EventBridge schedule).

The schedule fires after midnight UTC and settles the day that just ended. An
event ``{"date": "YYYY-MM-DD"}`` settles that day instead (a re-run or a backfill;
writing a day again writes the same file, which reconciles to the same report).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import config
from payments.kernel.clock import now
from payments.kernel.observability import count, entry_point, logger
from payments.reconciliation.settlement import settle_day

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.PSP)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    day = (event or {}).get("date") or (now() - timedelta(days=1)).date().isoformat()
    key, rows = settle_day(day)
    logger.info("settlement file written", extra={"key": key, "rows": rows})
    count("SettlementRowsWritten", rows)
    return {"key": key, "rows": rows}
