"""``payments payouts run [--date D]``: the nightly payout run, now.

Against the local runtime the run runs in this process, on the runtime's tables, keys and bank bucket (as its
function would). Against AWS it invokes the stage's ``payout_run`` function (``--stage NAME``), so that
the IBANs are decrypted where the stack allows it and nowhere else. Either way it prints what the run did:
the payouts created and skipped (with why: "no payout rail for USD", no payout account), the file written
and the payouts submitted in it. Never an IBAN.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import Any

from payments.ops import clikit

FUNCTION = "payout_run"


def add_commands(subparsers: Any) -> None:
    payouts = subparsers.add_parser("payouts", help="payouts: run the nightly payout now")
    commands = payouts.add_subparsers(dest="payouts_command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="pay every seller above the stage's minimum, then write one pain.001 of every PENDING EUR payout",
    )
    run.add_argument("--date", type=clikit.day, help="the run's day, UTC YYYY-MM-DD (default: today)")
    run.add_argument("--stage", help="on AWS: the stage whose payout_run function runs it (e.g. dev)")
    clikit.add_endpoint_option(run)
    clikit.add_output_option(run)
    run.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    target = clikit.connect(args)
    if target.aws_url is not None:
        from payments.payouts.run import run_payouts

        answer = run_payouts(date.fromisoformat(args.date) if args.date else None)
    else:
        answer = _invoke(args.stage, args.date)
    clikit.emit(args, answer, _tables(answer))
    return clikit.FINDINGS if answer["failed"] else clikit.OK


def _invoke(stage: str | None, day: str | None) -> dict[str, Any]:
    import boto3

    if not stage:
        raise clikit.CliError("on AWS the run is the stage's function", "give --stage NAME (e.g. --stage dev)")
    name = f"payments-{stage}-{FUNCTION}"
    lambda_: Any = boto3.client("lambda")
    reply = lambda_.invoke(FunctionName=name, Payload=json.dumps({"day": day} if day else {}).encode())
    payload = json.loads(reply["Payload"].read() or b"null")
    if reply.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else None
        raise clikit.CliError(f"the payout run failed: {message or reply['FunctionError']}", f"see {name}'s logs")
    if not isinstance(payload, dict):
        raise clikit.CliError(f"{name} answered no run", f"see {name}'s logs")
    return payload


def _tables(answer: dict[str, Any]) -> list[clikit.Table]:
    files = clikit.Table(
        ["file (MsgId)", "payouts", "total", "written now"],
        [
            [f["msg_id"], f["payouts"], clikit.amount(f["control_sum"], f["currency"]), f["written_now"]]
            for f in answer["files"]
        ],
        empty="no file written",
        right=("payouts", "total"),
    )
    skipped = clikit.Table(
        ["seller", "currency", "not paid because"],
        [[s["seller_account"], s["currency"], s["reason"]] for s in answer["skipped"]],
    )
    failed = clikit.Table(["payout", "failed"], [[f["payout_id"], f["reason"]] for f in answer["failed"]])
    notes = [
        f"run of {answer['day']}: {len(answer['created'])} payouts created, {len(answer['submitted'])} submitted, "
        f"{len(answer['skipped'])} sellers skipped, {len(answer['failed'])} failed"
    ]
    return [
        files,
        *([skipped] if answer["skipped"] else []),
        *([failed] if answer["failed"] else []),
        clikit.Table([], notes=notes),
    ]
