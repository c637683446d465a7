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
import os
import sys
from datetime import date as date_type
from typing import Any

from botocore.exceptions import ClientError

from payments.kernel import aws
from payments.kernel.clock import now
from payments.kernel.config import settings
from payments.ops import clikit
from payments.ops.clikit import CliError
from payments.reconciliation import report
from payments.reconciliation.detect import ADYEN, day_hint
from payments.reconciliation.model import Bounds, UnreadableFile
from payments.reconciliation.service import reconcile_stream, three_way
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
    key, rows, by = settle(date)
    print(f"wrote {key} ({rows} rows" + (f", by the runtime's PSP: {by})" if by else ")"))
    return key


def settle(date: str | None) -> tuple[str, int, str | None]:
    """Write the day's settlement file at the configured endpoint: (key, rows, the local PSP that wrote it)."""
    day = date or now().date().isoformat()
    local = _local_psp()
    if local is not None:
        name, url = local
        key, rows = _settle_at(url, day)
        return key, rows, name
    key, rows = settle_day(day)
    return key, rows, None


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
    date_type.fromisoformat(day)  # a malformed day is the caller's error: before asking anything
    answer = _post_local(url, {"date": day}, hint="check the runtime's log")
    return str(answer["key"]), int(answer["rows"])


def local_psp_operation(operation: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """POST an operator request (``chargeback``, ``chargeback-reversed``, ``second-chargeback``) to the PSP
    a local runtime runs instead of the simulator: (its name, its answer), or None when the runtime runs the
    simulator. Its operator paths sit beside its settle URL; an answer other than 200 is a :class:`CliError`
    with the PSP's own words."""
    local = _local_psp()
    if local is None:
        return None
    name, settle_url = local
    hint = "check the order with payments attention show"
    return name, _post_local(settle_url.rsplit("/", 1)[0] + "/" + operation, body, hint=hint)


def _post_local(url: str, body: dict[str, Any], *, hint: str) -> dict[str, Any]:
    """POST JSON to the local PSP's operator URL: only over http to this machine (the local runtime's)."""
    import json
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
        raise CliError(f"the local PSP's URL {url!r} is not on this machine", "check the runtime's PSP")
    request = urllib.request.Request(  # noqa: S310 - http on loopback, checked above
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - http on loopback, checked above
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as err:
        try:
            said = json.loads(err.read()).get("error") or err.reason
        except ValueError:
            said = err.reason
        raise CliError(f"refused by the PSP: {said}", hint) from None
    return answer


def reconcile_local_file(path: str, as_json: bool) -> int:
    """Reconcile a local file against the ledger at the endpoint; print; return the exit code."""
    args = argparse.Namespace(output="json" if as_json else "table")
    try:
        return _reconcile(path, args)
    except CliError as err:
        print(err.line("reconcile"), file=sys.stderr)
        return EXIT_UNREADABLE


def _reconcile(path: str, args: argparse.Namespace) -> int:
    bounds = Bounds()
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; an unreadable path is the caller's mistake
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror}", "give the path of a settlement file") from None
    try:
        with handle:
            result, digest = reconcile_stream(
                handle, DynamoLedgerSource(psp=settings().psp_name), bounds, ReconciliationStore(), day_hint(path)
            )
    except UnreadableFile as err:
        raise CliError(
            f"{path} cannot be reconciled: {err.reason}", "it would be quarantined: check the file"
        ) from None
    checked = (
        three_way(result.seller_accounts, result.sellers_truncated, DynamoBalanceSource())
        if result.format == ADYEN
        else None
    )
    rendered = report.build(path, digest, result, checked)
    if args.output == "json":
        sys.stdout.write(report.to_json(rendered))
    else:
        _print_summary(rendered)
    return EXIT_CLEAN if rendered["clean"] else EXIT_MISMATCHES


def _print_summary(rendered: dict[str, Any]) -> None:
    summary = rendered["summary"]
    tables = [
        clikit.Table(
            ("FILE", "FORMAT", "DAY", "ROWS", "MATCHED", "MISMATCHES", "REJECTED"),
            [
                (
                    rendered["source_key"],
                    rendered["format"],
                    summary["window_day"] or "-",
                    rendered["rows"],
                    rendered["matched"],
                    len(rendered["mismatches"]),
                    len(rendered["rejected_rows"]),
                )
            ],
            right=("ROWS", "MATCHED", "MISMATCHES", "REJECTED"),
        )
    ]
    if rendered["mismatches"]:
        tables.append(
            clikit.Table(
                ("KIND", "PSP REFERENCE", "ORDER", "LEDGER", "SETTLED", "CLASS", "RULE"),
                [
                    (
                        m["kind"],
                        m["psp_reference"] or "-",
                        m["payment_order_id"] or "-",
                        clikit.amount(m["ledger_amount"], m["currency"]),
                        clikit.amount(m["settlement_amount"], m["currency"]),
                        m["classification"],
                        m["rule"],
                    )
                    for m in rendered["mismatches"]
                ],
                right=("LEDGER", "SETTLED"),
            )
        )
    if rendered["rejected_rows"]:
        tables.append(
            clikit.Table(("REJECTED LINE", "REASON"), [(r["line"], r["reason"]) for r in rendered["rejected_rows"]])
        )
    statements = rendered.get("statements", [])
    if statements:
        rows = []
        for statement in statements:
            state = (
                "balanced"
                if statement["balanced"]
                else f"cannot check ({statement['balance_check']})"
                if statement["balanced"] is None
                else "NOT BALANCED: " + "; ".join(statement["problems"])
            )
            rows.append(
                (
                    statement["statement_id"],
                    statement["account"],
                    statement["currency"],
                    len(statement["entries"]),
                    state,
                )
            )
        tables.append(clikit.Table(("STATEMENT", "ACCOUNT", "CURRENCY", "ENTRIES", "BALANCE"), rows))
    differences = rendered.get("three_way", {}).get("differences", [])
    if differences:
        tables.append(
            clikit.Table(
                ("SELLER", "BALANCE", "WALLET", "LEDGER"),
                [
                    (
                        d["seller_account"],
                        d.get("part", "total"),
                        clikit.amount(d["wallet_amount"], d["currency"]),
                        clikit.amount(d["ledger_amount"], d["currency"]),
                    )
                    for d in differences
                ],
                ["wallet/ledger differences above"],
                right=("WALLET", "LEDGER"),
            )
        )
    differing = [c for c in rendered.get("summary", {}).get("payout_checks", []) if c["status"] == "differs"]
    if differing:
        tables.append(
            clikit.Table(
                ("CURRENCY", "PAYOUT", "NET OF THE FILE", "DIFFERENCE"),
                [
                    (
                        c["currency"],
                        clikit.amount(c["payout"], c["currency"]),
                        clikit.amount(c["expected_payout"], c["currency"]),
                        clikit.amount(c["difference"], c["currency"]),
                    )
                    for c in differing
                ],
                ["a payout that is not the file's net: ask the PSP for the rows the batch is missing"],
                right=("PAYOUT", "NET OF THE FILE", "DIFFERENCE"),
            )
        )
    tables.append(clikit.Table((), [], ["clean" if rendered["clean"] else "NOT clean"], empty=""))
    clikit.emit(argparse.Namespace(output="table"), rendered, tables)


def add_commands(subparsers: Any) -> None:
    """Register ``psp settle`` and ``reconcile`` on the ``payments`` CLI's subparsers."""
    psp = subparsers.add_parser("psp", help="the simulated PSP: settle a day, raise a chargeback")
    psp_commands = psp.add_subparsers(dest="psp_command", required=True, metavar="COMMAND")
    settle_cmd = psp_commands.add_parser("settle", help="write the day's settlement file into the settlement bucket")
    settle_cmd.add_argument("--date", type=clikit.day, help="UTC day YYYY-MM-DD (default: today)")
    clikit.add_endpoint_option(settle_cmd)
    clikit.add_output_option(settle_cmd)
    settle_cmd.set_defaults(func=_settle_command)

    reconcile = subparsers.add_parser(
        "reconcile",
        help="reconcile a local settlement file against the ledger (exit 1 if not clean); writes nothing",
    )
    reconcile.add_argument("file", help="the settlement file or bank statement (CSV, MT940, BAI2, camt.05x)")
    reconcile.add_argument("--json", action="store_true", help="the same as --output json")
    clikit.add_endpoint_option(reconcile)
    clikit.add_output_option(reconcile)
    reconcile.set_defaults(func=_reconcile_command)


def _settle_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    key, rows, by = settle(args.date)
    document = {"key": key, "rows": rows, "psp": by or settings().psp_name, "bucket": settings().settlement_bucket}
    if args.output == "json":
        clikit.emit(args, document, [])
    else:  # an action, not a listing: one sentence
        print(f"wrote {key} ({rows} rows" + (f", by the runtime's PSP: {by})" if by else ")"))
    return EXIT_CLEAN


def _reconcile_command(args: argparse.Namespace) -> int:
    if args.json:
        args.output = "json"
    if not os.path.isfile(args.file):  # before reaching anything: the operator's mistake, said at once
        raise CliError(f"no file {args.file}", "give the path of a settlement file")
    clikit.connect(args)
    return _reconcile(args.file, args)
