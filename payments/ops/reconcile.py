"""Local commands: ``payments psp settle`` and ``payments reconcile FILE``.

Both talk to the AWS-compatible endpoint of ``payments serve`` (``--endpoint``,
else ``AWS_ENDPOINT_URL``), or to AWS when neither is set. ``reconcile`` runs the
very engine the Lambda runs, on a local file, against the ledger at the endpoint,
and writes nothing: it prints a summary (or the JSON report) and exits 0 when the
file is clean, 1 when it has mismatches, rejected rows, unbalanced statements or
wallet/ledger differences, and 2 when the file cannot be read at all.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date as date_type
from typing import Any

from botocore.exceptions import ClientError

from payments.kernel import aws
from payments.kernel.clock import now
from payments.kernel.config import settings
from payments.reconciliation import report
from payments.reconciliation.detect import ADYEN
from payments.reconciliation.model import Bounds, UnreadableFile
from payments.reconciliation.service import day_hint, reconcile_stream, three_way
from payments.reconciliation.settlement import settle_day
from payments.reconciliation.sources import DynamoBalanceSource, DynamoLedgerSource
from payments.reconciliation.store import ReconciliationStore

EXIT_CLEAN, EXIT_MISMATCHES, EXIT_UNREADABLE = 0, 1, 2


#: the item of the simulator's table where a local runtime running another PSP (``payments serve --psp
#: adyen-fake``) says which, and where that PSP writes its day's report (written by the dev package)
LOCAL_PSP_CONFIG = "CONFIG#local-psp"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def psp_settle(date: str | None, endpoint_url: str | None) -> str:
    """Write the day's settlement file (default: today) of the PSP the runtime runs; return its key.

    The simulator writes its own; when the local runtime runs another PSP (the Adyen fake), that
    PSP writes its report into the bucket (the S3 trigger reconciles it either way)."""
    aws.use_endpoint(endpoint_url)
    day = date or now().date().isoformat()
    local = _local_psp()
    if local is not None:
        name, url = local
        key, rows = _settle_at(url, day)
        print(f"wrote {key} ({rows} rows, by the runtime's PSP: {name})")
        return key
    key, rows = settle_day(day)
    print(f"wrote {key} ({rows} rows)")
    return key


def _local_psp() -> tuple[str, str] | None:
    """(name, settle URL) of the PSP a local runtime runs instead of the simulator, or None."""
    try:
        item = (
            aws.client("dynamodb")
            .get_item(
                TableName=settings().psp_table,
                Key={"pk": {"S": LOCAL_PSP_CONFIG}, "sk": {"S": "CONFIG"}},
                ConsistentRead=True,
            )
            .get("Item")
        )
    except ClientError:
        return None  # no simulator table (a stage without the simulator): nothing registered
    if item is None:
        return None
    return item["psp"]["S"], item["settle_url"]["S"]


def _settle_at(url: str, day: str) -> tuple[str, int]:
    """Ask a local PSP for its day's report: only over http to this machine (it is the local runtime's)."""
    import json
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
        raise SystemExit(f"the local PSP's settle URL {url!r} is not on this machine")
    date_type.fromisoformat(day)  # a malformed day is the caller's error: before asking anything
    request = urllib.request.Request(  # noqa: S310 - http on loopback, checked above
        url, data=json.dumps({"date": day}).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - http on loopback, checked above
        answer = json.loads(response.read())
    return str(answer["key"]), int(answer["rows"])


def reconcile_local_file(path: str, as_json: bool) -> int:
    """Reconcile a local file against the ledger at the endpoint; print; return the exit code."""
    bounds = Bounds()
    try:
        with open(path, "rb") as handle:
            result, digest = reconcile_stream(
                handle, DynamoLedgerSource(psp=settings().psp_name), bounds, ReconciliationStore(), day_hint(path)
            )
    except UnreadableFile as err:
        print(f"{path}: cannot be reconciled: {err.reason}", file=sys.stderr)
        return EXIT_UNREADABLE
    checked = (
        three_way(result.seller_accounts, result.sellers_truncated, DynamoBalanceSource())
        if result.format == ADYEN
        else None
    )
    rendered = report.build(path, digest, result, checked)
    if as_json:
        sys.stdout.write(report.to_json(rendered))
    else:
        _print_summary(rendered)
    return EXIT_CLEAN if rendered["clean"] else EXIT_MISMATCHES


def _print_summary(rendered: dict[str, Any]) -> None:
    summary = rendered["summary"]
    print(f"{rendered['source_key']}: {rendered['format']}, day {summary['window_day'] or '-'}")
    print(
        f"  rows {rendered['rows']}, matched {rendered['matched']}, mismatches {len(rendered['mismatches'])}, rejected {len(rendered['rejected_rows'])}"
    )
    for mismatch in rendered["mismatches"]:
        print(
            f"  {mismatch['kind']:<24} {mismatch['psp_reference'] or '-':<22} {mismatch['payment_order_id'] or '-':<16} "
            f"ledger {mismatch['ledger_amount'] or '-':>10} settled {mismatch['settlement_amount'] or '-':>10} {mismatch['currency']} "
            f"{mismatch['classification']}: {mismatch['rule']}"
        )
    for row in rendered["rejected_rows"]:
        print(f"  rejected line {row['line']}: {row['reason']}")
    for statement in rendered.get("statements", []):
        state = (
            "balanced"
            if statement["balanced"]
            else f"cannot check ({statement['balance_check']})"
            if statement["balanced"] is None
            else "NOT BALANCED: " + "; ".join(statement["problems"])
        )
        print(
            f"  statement {statement['statement_id']} {statement['account']} {statement['currency']}: {len(statement['entries'])} entries, {state}"
        )
    for diff in rendered.get("three_way", {}).get("differences", []):
        print(
            f"  wallet/ledger difference {diff['seller_account']} {diff['currency']}: wallet {diff['wallet_amount']}, ledger {diff['ledger_amount']}"
        )
    print("  clean" if rendered["clean"] else "  NOT clean")


def add_commands(subparsers: Any) -> None:
    """Register ``psp settle`` and ``reconcile`` on the ``payments`` CLI's subparsers."""
    psp = subparsers.add_parser("psp", help="the simulated PSP")
    psp_commands = psp.add_subparsers(dest="psp_command", required=True)
    settle = psp_commands.add_parser("settle", help="write the day's settlement file into the settlement bucket")
    settle.add_argument("--date", help="UTC day YYYY-MM-DD (default: today)")
    settle.add_argument("--endpoint", help="AWS-compatible endpoint URL (default: AWS_ENDPOINT_URL)")
    settle.set_defaults(func=_settle_command)

    reconcile = subparsers.add_parser("reconcile", help="reconcile a local settlement file against the ledger")
    reconcile.add_argument("file")
    reconcile.add_argument("--json", action="store_true", help="print the JSON report")
    reconcile.add_argument("--endpoint", help="AWS-compatible endpoint URL (default: AWS_ENDPOINT_URL)")
    reconcile.set_defaults(func=_reconcile_command)


def _settle_command(args: argparse.Namespace) -> int:
    psp_settle(args.date, args.endpoint)
    return EXIT_CLEAN


def _reconcile_command(args: argparse.Namespace) -> int:
    aws.use_endpoint(args.endpoint)
    return reconcile_local_file(args.file, args.json)
