"""The ``payments`` command: the operator's tools, and the dev commands when the dev extra is installed.

* ``payments serve``   the API and an AWS-compatible endpoint on this machine (dev extra)
* ``payments demo``    a Cyber Monday scenario end to end, with a summary (dev extra)
* ``payments verify``  check the money invariants over the current data
* ``payments openapi`` print the OpenAPI description of the API
* ``payments stuck``   list payments unfinished beyond a deadline; ``payments resume`` re-drives one
* ``payments attention``  list what needs a person; ``resolve ID --note TEXT`` closes one, recording who and why
* ``payments mismatches``  settlement mismatches by day (``--day D``, ``--open``); ``resolve ID --note TEXT``
* ``payments backfill-account-totals``  the ledger's seller account totals, for a ledger booked before them
* ``payments chaos``   the fault-injection harness on the local runtime (dev extra)
* ``payments psp chargeback``  the simulated PSP raises a chargeback and sends its notification
* ``payments psp settle`` / ``payments reconcile FILE``  the day's settlement file; reconcile a file
* ``payments bank close-day [--date D]``  the local simulated bank books the day: its camt.053 statement
* ``payments preflight --stage NAME``  the account's quotas and the stage's settings against its target checkouts/s
* ``payments payouts run [--date D]``  the nightly payout now: scheduled payouts, then one pain.001 to the bank
* ``payments events tail [--type T] [--follow]``  the events (CloudEvents) the local runtime delivered, in order
* ``payments loadtest --api URL --rate R --duration D``  checkouts/s against a staging stage (loadtest extra)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from payments.ops import clikit

# The operator's commands (verify, stuck, resume, reconcile, backfill-account-totals) run from
# `pip install .` alone, against a deployed stack. The dev commands (serve, demo, chaos) live in the
# dev package, payments_dev; without the dev extra they are listed and say what to install.
DEV_COMMANDS = {
    "serve": "run the API and an AWS-compatible endpoint locally",
    "demo": "run a Cyber Monday scenario end to end and print a summary",
    "chaos": "run checkouts through the local runtime with seeded fault injection, then check every invariant",
}
DEV_EXTRA_HINT = (
    "in a clone of the repository, make serve / make demo / make chaos (they set up .venv with the dev extra "
    "and the clone's dev tooling)"
)


def add_dev_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``serve``, ``demo`` and ``chaos`` from the dev package, or placeholders that say what is missing:
    the dev extra (moto, werkzeug), or a clone of the repository (the local runtime runs its ASL files)."""
    try:
        from payments_dev import cli as dev

        missing = dev.missing()
    except ModuleNotFoundError as error:
        missing = f"{error.name} is not installed"
    else:
        if missing is None:
            dev.add_commands(commands)
            return
    for name, help_text in DEV_COMMANDS.items():
        command = commands.add_parser(name, help=f"{help_text} (needs the dev extra)", add_help=False)
        command.add_argument("rest", nargs=argparse.REMAINDER)
        command.set_defaults(func=lambda _args, name=name: _needs_dev_extra(name, missing))


def _needs_dev_extra(name: str, missing: str) -> int:
    print(f"payments {name} is a dev command and needs the dev extra ({missing}): {DEV_EXTRA_HINT}", file=sys.stderr)
    return 2


def _verify(args: argparse.Namespace) -> int:
    clikit.connect(args)
    from payments.ops.invariants import check_current

    report = check_current(expect_settled=not args.in_flight, psp_name=args.psp)
    unchecked = sorted(set(report.skipped) - report.waived)
    if report.violations:
        verdict = f"{len(report.violations)} violation(s)"
    elif unchecked:
        verdict = f"NOT VERIFIED: invariant(s) {', '.join(map(str, unchecked))} could not be checked (SKIP above)"
    else:
        verdict = "every invariant holds"
    document = {
        "ok": report.ok,
        "complete": report.complete,
        "verdict": verdict,
        "invariants": report.results(),
        "violations": [{"invariant": v.invariant, "detail": v.detail, "ids": v.ids} for v in report.violations],
        "needs_attention": sorted(report.needs_attention),
    }
    tables = [
        clikit.Table(
            ("RESULT", "INVARIANT", "CHECKS", "BROKEN", "NOTE"),
            [
                (r["result"], f"{r['invariant']}. {r['text'].split(':')[0]}", r["checks"], r["violations"], r["note"])
                for r in report.results()
            ],
            right=("CHECKS", "BROKEN"),
        )
    ]
    notes = (
        [f"needs attention: {', '.join(sorted(report.needs_attention))} (payments attention list)"]
        if report.needs_attention
        else []
    )
    violations = [f"VIOLATION {violation}" for violation in report.violations]  # one greppable line each
    tables.append(clikit.Table((), [], [*violations, *notes, verdict], empty=""))
    clikit.emit(args, document, tables)
    if not report.ok:
        return clikit.FINDINGS
    if unchecked:
        return clikit.BROKEN  # the tool could not check everything: not a pass, not a finding
    return clikit.OK


def _openapi(_: argparse.Namespace) -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from functions.payment.api import app

    spec = json.loads(app.get_openapi_json_schema())
    from functions.refunds.api import openapi_additions

    openapi_additions(spec)  # the refunds API and the PSP's webhook (issue 18)
    from functions.operator.api import openapi_additions as operator_routes

    operator_routes(spec)  # the operator API: attention and mismatches as work queues
    from functions.payouts.api import openapi_additions as payouts_additions

    payouts_additions(spec)  # payout accounts
    print(json.dumps(tidy_openapi(spec), indent=2))
    return 0


def tidy_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Responses in status order, and no component schema that nothing refers to.

    Powertools adds its own validation-error schemas to every document; the API answers
    problem details instead (see ``functions/payment/api.py``), so they describe nothing.
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = dict(sorted(operation["responses"].items()))
    schemas = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({k: v for k, v in document.items() if k != "components"}) + json.dumps(schemas)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return document
        for name in unused:
            del schemas[name]


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="payments",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--version", action="version", version=f"payments {version()}", help="print the version and exit")
    root.add_argument("--debug", action="store_true", help="on a failure, print the traceback as well")
    root.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="the AWS-compatible endpoint of payments serve, or 'aws' for AWS itself, for every command "
        "(default: AWS_ENDPOINT_URL, else the running payments serve, else AWS)",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_dev_commands(commands)  # payments serve / demo / chaos: from the dev extra

    verify = commands.add_parser(
        "verify", help="check the money invariants over the current data (exit 1 on a violation)"
    )
    clikit.add_endpoint_option(verify)
    clikit.add_output_option(verify)
    verify.add_argument(
        "--in-flight", action="store_true", help="checkouts may still be running: skip the 'nothing lost' check"
    )
    verify.add_argument(
        "--psp",
        choices=("simulator", "adyen"),
        default=None,
        help="the PSP the stage runs, whose record invariants 1 and 8 read (default: PAYMENTS_PSP, else simulator); "
        "adyen: the settlement reports reconciliation read",
    )
    verify.set_defaults(func=_verify)

    openapi = commands.add_parser("openapi", help="print the OpenAPI description of the API")
    openapi.set_defaults(func=_openapi)

    from payments.ops.operations import add_commands as add_operations_commands
    from payments.ops.reconcile import add_commands as add_reconciliation_commands

    add_reconciliation_commands(commands)  # payments psp settle / payments reconcile
    from payments.ops.chargeback import add_psp_commands

    add_psp_commands(commands)  # payments psp chargeback / chargeback-reversed
    add_operations_commands(commands)  # payments stuck / resume / backfill-account-totals
    from payments.ops.attention import add_commands as add_attention_commands

    add_attention_commands(commands)  # payments attention list / show / resolve
    from payments.ops.mismatches import add_commands as add_mismatches_commands

    add_mismatches_commands(commands)  # payments mismatches list / show / resolve
    from payments.ops.preflight import add_commands as add_preflight_commands

    add_preflight_commands(commands)  # payments preflight --stage NAME: quotas and settings against the target
    from payments.ops.bank import add_commands as add_bank_commands

    add_bank_commands(commands)  # payments bank close-day: the local simulated bank books a day
    from payments.ops.payouts import add_commands as add_payouts_commands

    add_payouts_commands(commands)  # payments payouts run [--date D]
    from payments.ops.events import add_commands as add_events_commands

    add_events_commands(commands)  # payments events tail: the events the local runtime delivered
    from payments.ops.loadtest import add_commands as add_loadtest_commands

    add_loadtest_commands(commands)  # payments loadtest: Locust against a stage (the loadtest extra)
    return root


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("serverless-payments")
    except PackageNotFoundError:
        return "unknown (not installed: run from a clone without pip install)"


EXIT_CODES = """exit codes: 0 all good; 1 findings (a violated invariant, stuck or parked payments, open attention
items or mismatches); 2 the command could not do its job (bad arguments, unreachable endpoint, unknown id).
--output table|json: without it, a table on a terminal and JSON otherwise (a pipe, a file, a log).
--debug prints the traceback of a failure."""


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return clikit.run(args, args.func)


if __name__ == "__main__":
    sys.exit(main())
