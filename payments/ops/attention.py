"""What needs a person, from an operator's shell: ``payments attention list | show ID | resolve ID --note TEXT``.

An order or a refund is parked ``NEEDS_ATTENTION`` with a kind (:class:`AttentionKind`):

* ``REDRIVE``: a step ran out of retries; the workflow, or ``payments resume``, clears the flag once
  the order is settled.
* ``PERSON``: a decision for a person (a chargeback on a refunded order: a claim to pursue; a refund
  the scheme sent back; a request refused). Nothing clears it by itself: ``payments resume`` says so
  and leaves it, and ``payments attention resolve`` is how a person closes it, deliberately.

The data (what is open, one item's flag, the conditional write that closes one, who the caller is)
is :mod:`payments.payin.attention`, which the operator API serves too; this module is the command.
``resolve`` records who (the caller's AWS identity, from STS; on the local runtime the OS user), when,
and why (``--note``). It refuses, with one line and exit 2 (:class:`payments.ops.clikit.CliError`), an
id that names nothing, an id with no open flag, and a flag that changed while it was being closed. An
id that names both an order and a refund with open flags (ids of different kinds may be equal) needs
``--item order|refund``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from payments.ops import clikit
from payments.payin.attention import (
    Ambiguous,
    AttentionError,
    EmptyNote,
    Flag,
    caller_identity,
    find,
    list_open,
    resolve,
)
from payments.payin.status import AttentionKind


# --- CLI -------------------------------------------------------------------------------------------
def _state(flag: Flag) -> str:
    if flag.open:
        return "OPEN"
    if flag.flagged_at is None:
        return "never flagged"
    return f"closed {flag.resolved_at or '?'} by {flag.resolved_by or 'a re-run of its workflow'}"


def _table(flags: list[Flag], empty: str = "") -> clikit.Table:
    rows = [
        (
            f.item,
            f.id,
            f.status,
            "needs a person" if f.kind == AttentionKind.PERSON.value else "re-drivable",
            f.flagged_at or "-",
            _state(f),
            f.reason or "-",
            f.resolution or "-",
        )
        for f in flags
    ]
    return clikit.Table(("ITEM", "ID", "STATUS", "WHO", "FLAGGED AT", "STATE", "WHY", "RESOLUTION"), rows, empty=empty)


def _list_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    flags = list_open()
    table = _table(flags, empty="nothing needs attention")
    if flags:
        table.notes.append(f"{len(flags)} open flag(s): close one with payments attention resolve ID --note TEXT")
    clikit.emit(args, [asdict(f) for f in flags], table)
    return clikit.FINDINGS if flags else clikit.OK


def _show_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    flags = find(args.id)
    if not flags:
        raise clikit.CliError(f"no order or refund {args.id!r}", "list open flags with payments attention list")
    clikit.emit(args, [asdict(f) for f in flags], _table(flags))
    return clikit.FINDINGS if any(f.open for f in flags) else clikit.OK


def _resolve_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    try:
        flag = resolve(args.id, args.note, who=caller_identity(), item=args.item)
    except EmptyNote:
        raise clikit.CliError("--note must say why the flag is closed (it is kept with who and when)") from None
    except Ambiguous:
        raise clikit.CliError(
            f"{args.id!r} is both an order and a refund with open flags", "say which with --item order|refund"
        ) from None
    except AttentionError as err:
        raise clikit.CliError(str(err), f"look at it with payments attention show {args.id}") from None
    table = _table([flag])
    table.notes.append(f"resolved {flag.item} {flag.id} by {flag.resolved_by} at {flag.resolved_at}")
    clikit.emit(args, asdict(flag), table)
    return clikit.OK


def add_commands(subparsers: Any) -> None:
    """Register ``attention list|show|resolve`` on the ``payments`` CLI's subparsers."""
    attention = subparsers.add_parser("attention", help="orders and refunds parked for a person; resolve one")
    commands = attention.add_subparsers(dest="attention_command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="every open flag, oldest first (exit 1 if any)")
    show = commands.add_parser("show", help="the flag of an order or a refund, open or last closed (exit 1 if open)")
    show.add_argument("id", help="a payment_order_id or a refund_id")
    resolve_cmd = commands.add_parser(
        "resolve",
        help="close an open flag deliberately, recording who, when and why (the only way a person's flag closes)",
    )
    resolve_cmd.add_argument("id", help="a payment_order_id or a refund_id")
    resolve_cmd.add_argument("--note", required=True, help="why it is closed: what was done or decided")
    resolve_cmd.add_argument("--item", choices=("order", "refund"), help="when the id names both an order and a refund")
    for command, func in ((listing, _list_command), (show, _show_command), (resolve_cmd, _resolve_command)):
        clikit.add_endpoint_option(command)
        clikit.add_output_option(command)
        command.set_defaults(func=func)
