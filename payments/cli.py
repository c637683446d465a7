"""The ``payments`` command: the local runtime and the operator's tools.

* ``payments serve``   the API and an AWS-compatible endpoint on this machine
* ``payments demo``    a Cyber Monday scenario end to end, with a summary
* ``payments verify``  check the money invariants over the current data
* ``payments openapi`` print the OpenAPI description of the API
* ``payments stuck``   list payments unfinished beyond a deadline; ``payments resume`` re-drives one
* ``payments backfill-account-totals``  the ledger's seller account totals, for a ledger booked before them
* ``payments chaos``   the fault-injection harness on the local runtime
* ``payments psp settle`` / ``payments reconcile FILE``  the day's settlement file; reconcile a file
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the dev extra's local runtime, named in annotations only (never imported here)
    from payments.local.runtime import LocalRuntime

# The operator's commands (verify, stuck, resume, reconcile, backfill-account-totals) run from
# `pip install .` alone, against a deployed stack: the local runtime (moto, werkzeug, the dev extra)
# is imported only by the dev commands that start it (serve, demo, chaos).


def _local_psp(runtime: LocalRuntime, name: str) -> object | None:
    """``--psp adyen-fake``: Adyen's Checkout API faked on a local port, charged through the Adyen adapter."""
    if name != "adyen-fake":
        return None
    from payments.local.adyen_fake import LocalAdyen

    adyen = LocalAdyen(runtime)
    adyen.start()
    return adyen


def _serve(args: argparse.Namespace) -> int:
    from payments.local.runtime import LocalRuntime, wait_forever

    given_key = bool(os.environ.get("PAYMENTS_PSP_HMAC_KEY"))  # the runtime exports the one it uses
    runtime = LocalRuntime(args.host, args.port, args.aws_port, quiet=not args.verbose)
    adyen = _local_psp(runtime, args.psp)
    runtime.start()
    s = runtime.settings
    if adyen is not None:
        print(f"PSP:          Adyen adapter -> fake Checkout API at {adyen.base_url}")  # type: ignore[attr-defined]
        print(f"              settle a day: curl -X POST {adyen.admin_url}/settle -d '{{\"date\": \"YYYY-MM-DD\"}}'")  # type: ignore[attr-defined]
    print(f"API:          {runtime.api_url}/v1/payments")
    print(f"AWS endpoint: {runtime.aws_url}   (aws --endpoint-url {runtime.aws_url} ..., region us-east-1, any credentials)")
    print(f"Bucket:       {s.settlement_bucket}  (settlement files go under incoming/, reports under reports/)")
    print(f"Tables:       {', '.join([s.payments_table, s.wallets_table, s.ledger_table, s.idempotency_table, s.psp_table, s.reconciliation_table])}")
    print(f"State machine: {s.state_machine_arn}")
    print(f"Refunds:      {runtime.api_url}/v1/refunds   (state machine {s.refund_state_machine_arn})")
    key_source = "PAYMENTS_PSP_HMAC_KEY" if given_key else f"generated for this run: {s.payments_psp_hmac_key}"
    print(f"PSP webhook:  {runtime.api_url}/v1/psp/notifications   (merchant account {s.payments_psp_merchant_account}, HMAC key {key_source})")
    print("ready", flush=True)
    wait_forever()
    runtime.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from payments import demo
    from payments.local.runtime import LocalRuntime, free_port

    runtime = LocalRuntime(port=free_port(), aws_port=free_port())
    adyen = _local_psp(runtime, args.psp)
    runtime.start()
    try:
        extra = {"psp_charges": adyen.charges, "settle": adyen.settle} if adyen is not None else {}  # type: ignore[attr-defined]
        return demo.run(runtime.api_url, checkouts=args.checkouts, seed=args.seed, concurrency=args.concurrency, **extra)
    finally:
        runtime.stop()
        if adyen is not None:
            adyen.stop()  # type: ignore[attr-defined]


def _verify(args: argparse.Namespace) -> int:
    if args.endpoint:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from payments.invariants import check_current

    report = check_current(expect_settled=not args.in_flight)
    for line in report.summary_lines():
        print(line)
    for violation in report.violations:
        print(f"VIOLATION {violation}")
    if report.needs_attention:
        print(f"needs attention: {', '.join(sorted(report.needs_attention))}")
    return 0 if report.ok else 1


def _openapi(_: argparse.Namespace) -> int:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from functions.payment.api import app

    spec = json.loads(app.get_openapi_json_schema())
    from functions.refunds.api import openapi_additions

    openapi_additions(spec)  # the refunds API and the PSP's webhook (issue 18)
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
    root = argparse.ArgumentParser(prog="payments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API and an AWS-compatible endpoint locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--aws-port", type=int, default=None, help="default: port + 1")
    serve.add_argument("--verbose", action="store_true", help="INFO logs of every function")
    serve.add_argument("--psp", choices=("simulator", "adyen-fake"), default="simulator", help="the PSP the executor charges")
    serve.set_defaults(func=_serve)

    demo = commands.add_parser("demo", help="run a Cyber Monday scenario end to end and print a summary")
    demo.add_argument("--checkouts", type=int, default=300)
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--concurrency", type=int, default=8)
    demo.add_argument("--psp", choices=("simulator", "adyen-fake"), default="simulator", help="the PSP the executor charges")
    demo.set_defaults(func=_demo)

    verify = commands.add_parser("verify", help="check the money invariants over the current data")
    verify.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="AWS-compatible endpoint (default: real AWS)")
    verify.add_argument("--in-flight", action="store_true", help="checkouts may still be running: skip the 'nothing lost' check")
    verify.set_defaults(func=_verify)

    openapi = commands.add_parser("openapi", help="print the OpenAPI description of the API")
    openapi.set_defaults(func=_openapi)

    from payments.chaos.cli import add_commands as add_chaos_commands
    from payments.operations import add_commands as add_operations_commands
    from payments.reconciliation.cli import add_commands as add_reconciliation_commands

    add_reconciliation_commands(commands)  # payments psp settle / payments reconcile
    from payments.refunds.cli import add_psp_commands

    add_psp_commands(commands)  # payments psp chargeback / chargeback-reversed
    add_chaos_commands(commands)  # payments chaos
    add_operations_commands(commands)  # payments stuck / resume / backfill-account-totals
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
