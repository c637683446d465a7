"""The dev commands of ``payments``: ``serve``, ``demo`` and ``chaos``, on the local runtime.

Registered by :func:`payments.ops.cli.parser` when the dev package and its extra are installed.
Nothing here is imported at module level beyond argparse: the runtime (moto, werkzeug) is imported
by the command that starts it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payments_dev.local.runtime import LocalRuntime

#: what the dev commands need beyond ``pip install .``: the dev extra's modules, and the clone's files
DEV_MODULES = ("moto", "werkzeug")
REPO_ROOT = Path(__file__).resolve().parents[1]
CLONE_FILES = ("stepfunctions/payment.asl.json", "stepfunctions/refund.asl.json", "pyproject.toml")


def missing() -> str | None:
    """Why the dev commands cannot run here, or None. They need the dev extra and a clone of the
    repository (the local runtime interprets the same ASL files the stack deploys)."""
    absent = [name for name in DEV_MODULES if importlib.util.find_spec(name) is None]
    if absent:
        return f"{', '.join(absent)} not installed"
    if not all((REPO_ROOT / name).is_file() for name in CLONE_FILES):
        return "not a clone of the repository: the local runtime runs its stepfunctions/*.asl.json"
    return None


def _local_psp(runtime: LocalRuntime, name: str) -> object | None:
    """``--psp adyen-fake``: Adyen's Checkout API faked on a local port, charged through the Adyen adapter."""
    if name != "adyen-fake":
        return None
    from payments_dev.local.adyen_fake import LocalAdyen

    adyen = LocalAdyen(runtime)
    adyen.start()
    return adyen


def _ports_free(host: str, ports: list[int]) -> None:
    """Refuse, in one line, ports another process holds (before anything starts)."""
    import socket

    from payments.ops.clikit import CliError

    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError as err:
                raise CliError(
                    f"cannot listen on {host}:{port} ({err.strerror})", "pick free ports with --port and --aws-port"
                ) from None


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager, ``kill``) ends ``serve`` as Ctrl-C does: its discovery file is removed."""
    import signal

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _serve(args: argparse.Namespace) -> int:
    from payments.ops import clikit
    from payments.psp.hmac import InvalidHmacKey
    from payments_dev.local.runtime import LocalRuntime, wait_forever

    given_key = bool(os.environ.get("PAYMENTS_PSP_HMAC_KEY"))  # the runtime exports the one it uses
    aws_port = args.aws_port or args.port + 1
    if aws_port == args.port:
        raise clikit.CliError(f"--aws-port {aws_port} is the API's port", "give two different ports")
    _ports_free(args.host, [args.port, aws_port])
    try:
        runtime = LocalRuntime(args.host, args.port, aws_port, quiet=not args.verbose)
    except InvalidHmacKey as err:  # one line naming the setting, never the key
        print(f"payments serve: {err}", file=sys.stderr)
        return 2
    _stop_on_sigterm()
    adyen = _local_psp(runtime, args.psp)
    runtime.start()
    announced = clikit.announce(runtime.api_url, runtime.aws_url)
    try:
        s = runtime.settings
        if adyen is not None:
            print(f"PSP:          Adyen adapter -> fake Checkout API at {adyen.base_url}")  # type: ignore[attr-defined]
            print(f'              settle a day: curl -X POST {adyen.admin_url}/settle -d \'{{"date": "YYYY-MM-DD"}}\'')  # type: ignore[attr-defined]
            print(
                f"              its notifications: posted by the fake itself to {adyen.webhook_url}, with Adyen's retries "  # type: ignore[attr-defined]
                f"(schedule x {adyen.delivery_options['time_scale']}); settle a day: payments psp settle [--date D]"  # type: ignore[attr-defined]
            )
        print(f"API:          {runtime.api_url}/v1/payments")
        print(
            f"AWS endpoint: {runtime.aws_url}   (aws --endpoint-url {runtime.aws_url} ..., region us-east-1, any credentials)"
        )
        print(f"Bucket:       {s.settlement_bucket}  (settlement files go under incoming/, reports under reports/)")
        print(
            f"Tables:       {', '.join([s.payments_table, s.wallets_table, s.ledger_table, s.idempotency_table, s.psp_table, s.reconciliation_table, s.payout_accounts_table])}"
        )
        print(f"State machine: {s.state_machine_arn}")
        print(f"Refunds:      {runtime.api_url}/v1/refunds   (state machine {s.refund_state_machine_arn})")
        print(
            f"Payout accounts: {runtime.api_url}/v1/sellers/<seller>/payout-account   "
            f"(IBANs sealed with the KMS key {s.payout_accounts_key})"
        )
        key_source = "PAYMENTS_PSP_HMAC_KEY" if given_key else f"generated for this run: {s.payments_psp_hmac_key}"
        print(
            f"PSP webhook:  {runtime.api_url}/v1/psp/notifications   (merchant account {s.payments_psp_merchant_account}, HMAC key {key_source})"
        )
        print(f"Operator commands (payments verify, stuck, ...) find this runtime by themselves ({announced})")
        print("ready", flush=True)
        wait_forever()
    finally:
        clikit.withdraw(announced)
        runtime.stop()
        if adyen is not None:
            adyen.stop()  # type: ignore[attr-defined]
    return 0


def _demo(args: argparse.Namespace) -> int:
    from payments_dev import demo
    from payments_dev.local.runtime import LocalRuntime, free_port

    # the demo's platform takes a commission (unless the environment names another)
    os.environ.setdefault("PAYMENTS_COMMISSION_BPS", str(demo.COMMISSION_BPS))
    os.environ.setdefault("PAYMENTS_COMMISSION_OVERRIDES", json.dumps(demo.COMMISSION_OVERRIDES))
    runtime = LocalRuntime(port=free_port(), aws_port=free_port())
    adyen = _local_psp(runtime, args.psp)
    runtime.start()
    try:
        extra = (
            {"psp_charges": adyen.charges, "psp_refunds": adyen.refunds, "settle": adyen.settle}  # type: ignore[attr-defined]
            if adyen is not None
            else {}
        )
        return demo.run(
            runtime.api_url,
            checkouts=args.checkouts,
            seed=args.seed,
            concurrency=args.concurrency,
            output=args.output_dir,
            **extra,
        )
    finally:
        runtime.stop()
        if adyen is not None:
            adyen.stop()  # type: ignore[attr-defined]


def add_commands(commands: Any) -> None:
    """Register ``serve``, ``demo`` and ``chaos`` on the ``payments`` CLI's subparsers."""
    serve = commands.add_parser("serve", help="run the API and an AWS-compatible endpoint locally")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="the API's port (default 8080)")
    serve.add_argument(
        "--aws-port", type=int, default=None, help="the AWS-compatible endpoint's port (default: --port + 1)"
    )
    serve.add_argument("--verbose", action="store_true", help="INFO logs of every function")
    serve.add_argument(
        "--psp", choices=("simulator", "adyen-fake"), default="simulator", help="the PSP the executor charges"
    )
    serve.set_defaults(func=_serve)

    demo = commands.add_parser("demo", help="run a Cyber Monday scenario end to end and print a summary")
    demo.add_argument("--checkouts", type=int, default=300, help="checkouts to place (default 300)")
    demo.add_argument("--seed", type=int, default=2026, help="same seed => same scenario (default 2026)")
    demo.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients (default 8)")
    demo.add_argument(
        "--output-dir",
        type=Path,
        default=Path("demo-output"),
        help="where the run leaves its day (the settlement file, its JSON, HTML and CSV reports, the trial balance, "
        "the summary): a new folder DIR/<UTC stamp> (default: demo-output)",
    )
    demo.add_argument(
        "--psp", choices=("simulator", "adyen-fake"), default="simulator", help="the PSP the executor charges"
    )
    demo.set_defaults(func=_demo)

    from payments_dev.chaos.cli import add_commands as add_chaos_commands

    add_chaos_commands(commands)  # payments chaos
