"""The ``payments`` command: the operator's tools, and the dev commands when the dev extra is installed.

* ``payments serve``   the API and an AWS-compatible endpoint on this machine (dev extra)
* ``payments demo``    a Cyber Monday scenario end to end, with a summary (dev extra)
* ``payments verify``  check the money invariants over the current data
* ``payments openapi`` print the OpenAPI description of the API
* ``payments stuck``   list payments unfinished beyond a deadline; ``payments resume`` re-drives one
* ``payments attention``  list what needs a person; ``resolve ID --note TEXT`` closes one, recording who and why
* ``payments backfill-account-totals``  the ledger's seller account totals, for a ledger booked before them
* ``payments chaos``   the fault-injection harness on the local runtime (dev extra)
* ``payments psp chargeback``  the simulated PSP raises a chargeback and sends its notification
* ``payments psp settle`` / ``payments reconcile FILE``  the day's settlement file; reconcile a file
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

# The operator's commands (verify, stuck, resume, reconcile, backfill-account-totals) run from
# `pip install .` alone, against a deployed stack. The dev commands (serve, demo, chaos) live in the
# dev package, payments_dev; without the dev extra they are listed and say what to install.
DEV_COMMANDS = {
    "serve": "run the API and an AWS-compatible endpoint locally",
    "demo": "run a Cyber Monday scenario end to end and print a summary",
    "chaos": "run checkouts through the local runtime with seeded fault injection, then check every invariant",
}
DEV_EXTRA_HINT = "in a clone of the repository, pip install -e '.[dev]' (or make serve / make demo / make chaos)"


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
    from payments.kernel import aws

    aws.use_endpoint(args.endpoint)
    from payments.ops.invariants import check_current

    report = check_current(expect_settled=not args.in_flight, psp_name=args.psp)
    for line in report.summary_lines():
        print(line)
    for violation in report.violations:
        print(f"VIOLATION {violation}")
    if report.needs_attention:
        print(f"needs attention: {', '.join(sorted(report.needs_attention))}")
    if not report.ok:
        return 1
    if not report.complete:
        unchecked = sorted(set(report.skipped) - report.waived)
        print(
            f"NOT VERIFIED: invariant(s) {', '.join(map(str, unchecked))} could not be checked (SKIPPED above); "
            "no violation among what was checked"
        )
        return 2
    return 0


def _openapi(_: argparse.Namespace) -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from functions.payment.api import app

    spec = json.loads(app.get_openapi_json_schema())
    from functions.refunds.api import openapi_additions

    openapi_additions(spec)  # the refunds API and the PSP's webhook (issue 18)
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
        prog="payments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = root.add_subparsers(dest="command", required=True)

    add_dev_commands(commands)  # payments serve / demo / chaos: from the dev extra

    verify = commands.add_parser("verify", help="check the money invariants over the current data")
    verify.add_argument(
        "--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="AWS-compatible endpoint (default: real AWS)"
    )
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
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
