"""Lambda entry point of the simulated bank (stages whose bank is the simulated one, and the local runtime).

Two kinds of events reach it:

* S3 ``ObjectCreated`` notifications for ``outgoing/pain001/`` of the bank bucket: each pain.001 is
  answered at once with a pain.002 under ``incoming/bank/pain002/`` (the bank reconciliation's trigger);
* the nightly EventBridge schedule (``{"action": "close_day"}``, optionally ``"date": "YYYY-MM-DD"``;
  default: today in UTC): the day's camt.053 under ``incoming/bank/camt053/``. Closing a day twice writes
  nothing new.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import clock, config
from payments.kernel.observability import entry_point, logger
from payments.payouts import simulated_bank

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.SIMULATED_BANK)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "close_day":
        day = date.fromisoformat(event["date"]) if event.get("date") else clock.now().date()
        key, _ = simulated_bank.close_day(day)
        logger.info("day closed", extra={"day": day.isoformat(), "statement_key": key})
        return {"closed": day.isoformat(), "key": key}
    answered = []
    for record in event.get("Records", []):
        key = unquote_plus(record.get("s3", {}).get("object", {}).get("key", ""))
        reply = simulated_bank.answer_file(key)
        if reply is None:
            logger.info("not a payment file to answer", extra={"key": key})
            continue
        logger.info("payment file answered", extra={"key": key, "reply_key": reply.key, "status": reply.group_status})
        answered.append({"key": key, "reply_key": reply.key, "group_status": reply.group_status})
    return {"answered": answered}
