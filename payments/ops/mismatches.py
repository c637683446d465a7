"""Settlement mismatches as a work queue: ``payments mismatches list [--day D] [--open] | show ID | resolve ID --note TEXT``.

Every mismatch a reconciliation stores (``payments.reconciliation.store``) has a short id an operator
can type, ``<YYYYMMDD>-<12 hex digits>`` (its settlement day, then a hash: stable, the same file gives
the same ids). ``list`` shows one settlement day's mismatches across every file (``--day``), by
default those of the latest days that have any; ``--open`` only those still open. ``show`` prints one,
with how it was resolved. ``resolve`` records who (the caller's AWS identity in a stage, the local
user on the local runtime: :func:`payments.ops.attention.caller_identity`), when and why (``--note``)
in one conditional write: exactly once, the first resolution stands. The file's HTML report is then
written again with each mismatch's status.

Some mismatches resolve by themselves (``resolved_by`` is ``reconciliation``): a charge missing from
its day's file that a later file settles, and what a file reconciled again no longer has; the store's
module docstring says which and why.

Exit codes: ``list`` 0 when nothing listed is open, 1 when open mismatches are listed; ``show`` and
``resolve`` 0 when done; every command 2 when it could not do its job (an unknown id, a mismatch
already resolved, the tables out of reach), with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from payments.kernel import aws
from payments.kernel.errors import NotFound
from payments.reconciliation import store

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class MismatchError(Exception):
    """The command cannot do what was asked (exit 2): the message says why, in one line."""


def list_queue(day: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
    """The mismatches of settlement day ``day`` (default: the latest days that have any), across files."""
    return store.queue(day, open_only)


def find(ident: str) -> dict[str, Any]:
    """The mismatch whose short id is ``ident``, as it stands now."""
    found = store.get(ident)
    if found is None:
        raise MismatchError(
            f"no mismatch {ident!r} (an id looks like 20261130-3f9a2c81d0e4: see payments mismatches list)"
        )
    return found


def resolve(ident: str, note: str, *, who: str) -> dict[str, Any]:
    """Resolve the mismatch ``ident`` as ``who`` for the reason ``note`` and write its file's HTML report
    again; returns the mismatch as it is now. Raises :class:`MismatchError` when it cannot."""
    try:
        mismatch, done = store.resolve(ident, note, who)
    except ValueError:
        raise MismatchError("--note must say why the mismatch is resolved (it is kept with who and when)") from None
    except NotFound:
        raise MismatchError(f"no mismatch {ident!r}: see payments mismatches list") from None
    if not done:
        raise MismatchError(
            f"{ident} was already resolved by {mismatch.get('resolved_by')} at {mismatch.get('resolved_at')} "
            f"({mismatch.get('resolution')}): the first resolution stands"
        )
    return mismatch


def refresh_report(mismatch: dict[str, Any]) -> str | None:
    """Write the HTML report of the mismatch's file again with the statuses; None when done, else why not."""
    from botocore.exceptions import BotoCoreError, ClientError

    from payments.reconciliation.service import refresh_html

    try:
        if refresh_html(str(mismatch["source_key"])):
            return None
        return "its file has no JSON report to render"
    except (BotoCoreError, ClientError) as err:
        return f"the settlement bucket cannot be read or written: {err}"


def amount(value: Any, currency: Any) -> str:
    """A stored amount (a decimal string in major units) with its currency; ``-`` when there is none."""
    return "-" if value is None else f"{value} {currency}"


def line(m: dict[str, Any]) -> str:
    ledger = amount(m.get("ledger_amount"), m.get("ledger_currency") or m.get("currency"))
    settled = amount(m.get("settlement_amount"), m.get("currency"))
    reference = m.get("psp_reference") or "-"
    order = m.get("payment_order_id") or "-"
    return (
        f"{m['id']:<21} {m['status']:<8} {m.get('kind', ''):<23} {reference:<22} {order:<24} "
        f"{ledger:>16} {settled:>16}  {m.get('source_key', '')}"
    )


HEADER = (
    f"{'ID':<21} {'STATUS':<8} {'KIND':<23} {'PSP REFERENCE':<22} {'ORDER':<24} {'LEDGER':>16} {'SETTLEMENT':>16}  FILE"
)


def details(m: dict[str, Any]) -> list[str]:
    """One mismatch in full: what it is, the rule that classified it, and how it stands."""
    lines = [
        f"id:             {m['id']}",
        f"status:         {m['status']}",
        f"kind:           {m.get('kind')} ({m.get('classification')})",
        f"settlement day: {m.get('day')}",
        f"file:           {m.get('source_key')}" + (f" line {m['line']}" if m.get("line") else ""),
        f"psp reference:  {m.get('psp_reference') or '-'}",
        f"order:          {m.get('payment_order_id') or '-'}",
        f"ledger:         {amount(m.get('ledger_amount'), m.get('ledger_currency') or m.get('currency'))}",
        f"settlement:     {amount(m.get('settlement_amount'), m.get('currency'))}",
        f"rule:           {m.get('rule')}",
    ]
    if m["status"] == store.RESOLVED:
        lines += [
            f"resolved by:    {m.get('resolved_by')}",
            f"resolved at:    {m.get('resolved_at')}",
            f"resolution:     {m.get('resolution')}",
        ]
    return lines


# --- CLI -------------------------------------------------------------------------------------------
def _unreachable(command: str) -> Any:
    """Run a command; the store or the endpoint out of reach is one line and exit 2, no traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from payments.kernel.errors import StoreUnavailable

    def wrap(func: Any) -> Any:
        def run(args: argparse.Namespace) -> int:
            try:
                return int(func(args))
            except MismatchError as err:
                print(f"payments mismatches {command}: {err}", file=sys.stderr)
                return 2
            except (BotoCoreError, ClientError, StoreUnavailable) as err:
                print(f"payments mismatches {command}: the tables cannot be read or written: {err}", file=sys.stderr)
                return 2

        return run

    return wrap


def _list_command(args: argparse.Namespace) -> int:
    aws.use_endpoint(args.endpoint)
    found = list_queue(args.day, args.open)
    still_open = sum(1 for m in found if m["status"] == store.OPEN)
    if args.output == "json":
        print(json.dumps(found, indent=2, default=str))
    else:
        if found:
            print(HEADER)
        for m in found:
            print(line(m))
        where = f"settlement day {args.day}" if args.day else f"the latest {store.RECENT_DAYS} settlement days"
        print(f"{still_open} open of {len(found)} mismatch(es) on {where}" if found else f"no mismatches on {where}")
    return 1 if still_open else 0


def _show_command(args: argparse.Namespace) -> int:
    aws.use_endpoint(args.endpoint)
    found = find(args.id)
    if args.output == "json":
        print(json.dumps(found, indent=2, default=str))
    else:
        print("\n".join(details(found)))
    return 0


def _resolve_command(args: argparse.Namespace) -> int:
    aws.use_endpoint(args.endpoint)
    from payments.ops.attention import caller_identity

    mismatch = resolve(args.id, args.note, who=caller_identity())
    problem = refresh_report(mismatch)
    if args.output == "json":
        print(json.dumps(mismatch, indent=2, default=str))
    else:
        print(
            f"resolved {mismatch['id']} ({mismatch.get('kind')}) by {mismatch['resolved_by']} at {mismatch['resolved_at']}"
        )
    if problem:
        print(
            f"payments mismatches resolve: resolved, but the HTML report was not written again: {problem}",
            file=sys.stderr,
        )
    return 0


def _day(value: str) -> str:
    if not _DAY.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a day: write it as YYYY-MM-DD, e.g. 2026-11-30")
    return value


def add_commands(subparsers: Any) -> None:
    """Register ``mismatches list|show|resolve`` on the ``payments`` CLI's subparsers."""
    mismatches = subparsers.add_parser(
        "mismatches", help="settlement mismatches across files, by day; resolve one, recording who and why"
    )
    commands = mismatches.add_subparsers(dest="mismatches_command", required=True)
    endpoint_help = "AWS-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS)"
    ident_help = "the mismatch's short id, as list prints it (e.g. 20261130-3f9a2c81d0e4)"

    listing = commands.add_parser(
        "list", help="a settlement day's mismatches across files (exit 1 if any listed is open)"
    )
    listing.add_argument(
        "--day",
        type=_day,
        help=f"the settlement day, YYYY-MM-DD (default: the latest {store.RECENT_DAYS} days with any)",
    )
    listing.add_argument("--open", action="store_true", help="only the mismatches still open")
    show = commands.add_parser("show", help="one mismatch in full, and how it was resolved")
    show.add_argument("id", help=ident_help)
    resolve_cmd = commands.add_parser(
        "resolve", help="resolve an open mismatch, recording who, when and why (once: the first resolution stands)"
    )
    resolve_cmd.add_argument("id", help=ident_help)
    resolve_cmd.add_argument("--note", required=True, help="why it is resolved: what was done or decided")
    for name, command, func in (
        ("list", listing, _list_command),
        ("show", show, _show_command),
        ("resolve", resolve_cmd, _resolve_command),
    ):
        command.add_argument("--endpoint", default=None, help=endpoint_help)
        command.add_argument(
            "--output", choices=("table", "json"), default="table", help="a table for people, or JSON for tools"
        )
        command.set_defaults(func=_unreachable(name)(func))
