"""Settlement mismatches as a work queue: ``payments mismatches list [--day D] [--open] | show ID | resolve ID --note TEXT``.

Every mismatch a reconciliation stores (``payments.reconciliation.store``) has a short id an operator
can type, ``<YYYYMMDD>-<12 hex digits>`` (its settlement day, then a hash: stable, the same file gives
the same ids). ``list`` shows one settlement day's mismatches across every file (``--day``), by
default those of the latest days that have any; ``--open`` only those still open. ``show`` prints one,
with how it was resolved. ``resolve`` records who (the caller's AWS identity in a stage, the local
user on the local runtime: :func:`payments.payin.attention.caller_identity`), when and why (``--note``)
in one conditional write: exactly once, the first resolution stands. The file's HTML report is then
written again with each mismatch's status.

Some mismatches resolve by themselves (``resolved_by`` is ``reconciliation``): a charge missing from
its day's file that a later file settles, and what a file reconciled again no longer has; the store's
module docstring says which and why.

The commands are built on :mod:`payments.ops.clikit`: where they talk to (``--endpoint``, or the running
``payments serve`` found by itself), ``--output table|json``, amounts in major units with their currency.
Exit codes: ``list`` 0 when nothing listed is open, 1 when open mismatches are listed; ``show`` and
``resolve`` 0 when done; every command 2 when it could not do its job (an unknown id, a mismatch
already resolved, an empty note, the endpoint out of reach), with one line saying why.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from payments.kernel.errors import NotFound
from payments.ops import clikit
from payments.payin.attention import caller_identity
from payments.reconciliation import store

#: what an id looks like, and where to find one (the second half of an unknown id's error line)
_FIND_ONE = "an id looks like 20261130-3f9a2c81d0e4: see payments mismatches list"


def find(ident: str) -> dict[str, Any]:
    """The mismatch whose short id is ``ident``, as it stands now."""
    found = store.get(ident)
    if found is None:
        raise clikit.CliError(f"no mismatch {ident!r}", _FIND_ONE)
    return found


def resolve(ident: str, note: str, *, who: str) -> dict[str, Any]:
    """Resolve the mismatch ``ident`` as ``who`` for the reason ``note``; the mismatch as it is now.
    Raises :class:`~payments.ops.clikit.CliError` when it cannot."""
    try:
        mismatch, done = store.resolve(ident, note, who)
    except ValueError:
        raise clikit.CliError("--note must say why the mismatch is resolved (it is kept with who and when)") from None
    except NotFound:
        raise clikit.CliError(f"no mismatch {ident!r}", _FIND_ONE) from None
    if not done:
        raise clikit.CliError(
            f"{ident} was already resolved by {mismatch.get('resolved_by')} at {mismatch.get('resolved_at')} "
            f"({mismatch.get('resolution')})",
            "the first resolution stands",
        )
    return mismatch


def refresh_report(mismatch: dict[str, Any]) -> str | None:
    """Write the HTML report of the mismatch's file again with the statuses; None when done, else why not."""
    from botocore.exceptions import BotoCoreError, ClientError

    from payments.payouts.reconcile import INCOMING as BANK_FILES
    from payments.reconciliation.service import refresh_html

    if str(mismatch["source_key"]).startswith(BANK_FILES):
        return None  # a bank file's report is JSON only (in the bank bucket): no page to write again
    try:
        if refresh_html(str(mismatch["source_key"])):
            return None
        return "its file has no JSON report to render"
    except (BotoCoreError, ClientError) as err:
        return f"the settlement bucket cannot be read or written: {err}"


def _ledger(m: dict[str, Any]) -> str:
    return clikit.amount(m.get("ledger_amount"), m.get("ledger_currency") or m.get("currency"))


def _settled(m: dict[str, Any]) -> str:
    return clikit.amount(m.get("settlement_amount"), m.get("currency"))


def _table(found: list[dict[str, Any]], where: str) -> clikit.Table:
    still_open = sum(1 for m in found if m["status"] == store.OPEN)
    rows = [
        (
            m["id"],
            m["status"],
            m.get("kind", ""),
            m.get("psp_reference") or "-",
            m.get("payment_order_id") or "-",
            _ledger(m),
            _settled(m),
            m.get("source_key", ""),
        )
        for m in found
    ]
    return clikit.Table(
        ("ID", "STATUS", "KIND", "PSP REFERENCE", "ORDER", "LEDGER", "SETTLEMENT", "FILE"),
        rows,
        [f"{still_open} open of {len(found)} mismatch(es) on {where}"] if found else [],
        empty=f"no mismatches on {where}",
        right=("LEDGER", "SETTLEMENT"),
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
        f"ledger:         {_ledger(m)}",
        f"settlement:     {_settled(m)}",
        f"rule:           {m.get('rule')}",
    ]
    if m.get("payout_id") or m.get("entry"):  # a bank file's mismatch (payments.payouts.reconcile)
        lines += [
            f"payout:         {m.get('payout_id') or '-'}",
            f"entry:          {m.get('entry') or '-'}",
            f"detail:         {m.get('detail') or '-'}",
        ]
    if m["status"] == store.RESOLVED:
        lines += [
            f"resolved by:    {m.get('resolved_by')}",
            f"resolved at:    {m.get('resolved_at')}",
            f"resolution:     {m.get('resolution')}",
        ]
    return lines


# --- CLI -------------------------------------------------------------------------------------------
def _list_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    found = store.queue(args.day, args.open)
    where = f"settlement day {args.day}" if args.day else f"the latest {store.RECENT_DAYS} settlement days"
    clikit.emit(args, found, _table(found, where))
    return clikit.FINDINGS if any(m["status"] == store.OPEN for m in found) else clikit.OK


def _show_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    found = find(args.id)
    clikit.emit(args, found, clikit.Table((), [], details(found)))
    return clikit.OK


def _resolve_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    mismatch = resolve(args.id, args.note, who=caller_identity())
    problem = refresh_report(mismatch)
    done = (
        f"resolved {mismatch['id']} ({mismatch.get('kind')}) by {mismatch['resolved_by']} at {mismatch['resolved_at']}"
    )
    clikit.emit(args, mismatch, clikit.Table((), [], [done]))
    if problem:
        print(
            f"payments mismatches resolve: resolved, but the HTML report was not written again: {problem}",
            file=sys.stderr,
        )
    return clikit.OK


def add_commands(subparsers: Any) -> None:
    """Register ``mismatches list|show|resolve`` on the ``payments`` CLI's subparsers."""
    mismatches = subparsers.add_parser(
        "mismatches", help="settlement mismatches across files, by day; resolve one, recording who and why"
    )
    commands = mismatches.add_subparsers(dest="mismatches_command", required=True, metavar="COMMAND")
    ident_help = "the mismatch's short id, as list prints it (e.g. 20261130-3f9a2c81d0e4)"

    listing = commands.add_parser(
        "list", help="a settlement day's mismatches across files (exit 1 if any listed is open)"
    )
    listing.add_argument(
        "--day",
        type=clikit.day,
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
    for command, func in ((listing, _list_command), (show, _show_command), (resolve_cmd, _resolve_command)):
        clikit.add_endpoint_option(command)
        clikit.add_output_option(command)
        command.set_defaults(func=func)
