"""Lambda entry point of the nightly payout run (an EventBridge rule invokes it): see payments/payouts/run.py.

The event may name the day (``{"day": "2026-12-07"}``, as ``payments payouts run --date`` does); without one the
run is for today (UTC). Its answer names payouts, sellers and files, never an IBAN."""

from __future__ import annotations

from datetime import date
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import config
from payments.kernel.observability import entry_point
from payments.payouts.run import run_payouts

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.PAYOUT_RUN)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    day = event.get("day") if isinstance(event, dict) else None
    return run_payouts(date.fromisoformat(day) if isinstance(day, str) else None)
