"""``payments bank close-day [--date D]``: the simulated bank books a day (the local runtime's bank).

The simulated bank writes the day's camt.053 statement to the bank bucket under ``incoming/bank/camt053/``
(the bank reconciliation's trigger): a booked debit per payout it accepted that day, the returns of payouts
booked the day before (test IBANs ending ``0002``), and the PSP's payout to the platform when that day's
settlement file is in the settlement bucket. Closing a day twice writes nothing new; a day before one
already closed is refused. Against a deployed stage the command refuses: there the simulated bank closes
each day on its nightly schedule (docs/payouts-bank.md).
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from payments.kernel.clock import now
from payments.kernel.config import settings
from payments.ops import clikit


def _close_day_command(args: argparse.Namespace) -> int:
    target = clikit.connect(args)
    if target.aws_url is None:
        raise clikit.CliError(
            "payments bank close-day books the local runtime's simulated bank only",
            "a stage's simulated bank closes each day on its nightly schedule (docs/payouts-bank.md)",
        )
    from payments.payouts import simulated_bank

    day = date.fromisoformat(args.date) if args.date else now().date()
    try:
        key, content = simulated_bank.close_day(day)
    except ValueError as err:  # a day before one already closed
        raise clikit.CliError(
            str(err), "close the days in order: the statement of a closed day never changes"
        ) from None
    document = {"date": day.isoformat(), "key": key, "bucket": settings().bank_bucket, "bytes": len(content)}
    if args.output == "json":
        clikit.emit(args, document, [])
    else:
        print(f"closed {day.isoformat()}: wrote {key}")
    return clikit.OK


def add_commands(subparsers: Any) -> None:
    """Register ``bank close-day`` on the ``payments`` CLI's subparsers."""
    bank = subparsers.add_parser("bank", help="the simulated bank of the local runtime: close a day")
    commands = bank.add_subparsers(dest="bank_command", required=True, metavar="COMMAND")
    close = commands.add_parser(
        "close-day", help="write the day's camt.053 statement to the bank bucket (once: a closed day stays closed)"
    )
    close.add_argument("--date", type=clikit.day, help="UTC day YYYY-MM-DD (default: today)")
    clikit.add_endpoint_option(close)
    clikit.add_output_option(close)
    close.set_defaults(func=_close_day_command)
