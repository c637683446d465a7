"""What needs a person: ``payments attention list | show ID | resolve ID --note TEXT``.

An order or a refund is parked ``NEEDS_ATTENTION`` with a kind (:class:`AttentionKind`):

* ``REDRIVE``: a step ran out of retries; the workflow, or ``payments resume``, clears the flag once
  the order is settled.
* ``PERSON``: a decision for a person (a chargeback on a refunded order: a claim to pursue; a refund
  the scheme sent back; a request refused). Nothing clears it by itself: ``payments resume`` says so
  and leaves it, and ``payments attention resolve`` is how a person closes it, deliberately.

``resolve`` closes one open flag (of either kind) with one conditional write that records who (the
caller's AWS identity, from STS; on the local runtime the OS user), when, and why (``--note``). It
refuses, with one line and exit 2 (:class:`payments.ops.clikit.CliError`), an id that names nothing, an id with no open flag, and a flag that
changed while it was being closed. An id that names both an order and a refund with open flags
(ids of different kinds may be equal) needs ``--item order|refund``.
"""

from __future__ import annotations

import argparse
import getpass
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from payments.kernel.errors import NotFound
from payments.ops import clikit
from payments.payin.repository import PaymentsRepository, order_key, resolve_attention
from payments.payin.status import AttentionKind

Item = Literal["order", "refund"]


class AttentionError(Exception):
    """The command cannot do what was asked (exit 2): the message says why, in one line."""


@dataclass(frozen=True)
class Flag:
    """An order's or a refund's attention flag, open or last closed."""

    item: Item
    id: str
    status: str
    open: bool
    kind: str
    reason: str
    flagged_at: str | None
    resolved_at: str | None = None
    resolved_by: str | None = None
    resolution: str | None = None

    def line(self) -> str:
        if self.open:
            state = "OPEN"
        elif self.flagged_at is None:
            state = "never flagged"
        else:
            state = f"closed {self.resolved_at or '?'} by {self.resolved_by or 'a re-run of its workflow'}"
        who = "needs a person" if self.kind == AttentionKind.PERSON.value else "re-drivable"
        return f"{self.item:<6} {self.id:<40} {self.status:<10} {who:<15} {self.flagged_at or '-':<24} {state}: {self.reason}"


def _flag(item: Item, record: Any) -> Flag:
    return Flag(
        item=item,
        id=record.payment_order_id if item == "order" else record.refund_id,
        status=record.status.value,
        open=bool(record.needs_attention),
        kind=AttentionKind.of(record.attention_kind).value,
        reason=record.attention_reason or "",
        flagged_at=record.attention_flagged_at,
        resolved_at=record.attention_resolved_at,
        resolved_by=record.attention_resolved_by,
        resolution=record.attention_resolution,
    )


def _refunds(payments: PaymentsRepository) -> Any:
    from payments.refunds.repository import RefundsRepository

    return RefundsRepository(payments=payments)


def list_open(payments: PaymentsRepository | None = None) -> list[Flag]:
    """Every order and refund parked NEEDS_ATTENTION now, oldest flag first (a full scan: an audit)."""
    payments = payments or PaymentsRepository()
    flags = [_flag("order", o) for o in payments.scan_orders() if o.needs_attention]
    flags += [_flag("refund", r) for r in _refunds(payments).scan_refunds() if r.needs_attention]
    return sorted(flags, key=lambda f: (f.flagged_at or "", f.item, f.id))


def find(ident: str, payments: PaymentsRepository | None = None) -> list[Flag]:
    """The order and the refund ``ident`` names (none, one, or both: ids of different kinds may be equal),
    with their flags; those that were never flagged are included (``kind`` PERSON, empty reason)."""
    payments = payments or PaymentsRepository()
    found: list[Flag] = []
    order = payments.find_order(ident)
    if order is not None:
        found.append(_flag("order", order))
    refund = _refunds(payments).find(ident)
    if refund is not None:
        found.append(_flag("refund", refund))
    return found


def caller_identity() -> str:
    """Who is resolving: the caller's AWS identity (STS ``GetCallerIdentity``) against a deployed stage;
    the OS user on the local runtime (``AWS_ENDPOINT_URL`` set: its identity means nothing), or when
    STS cannot answer (said so in the value)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        user = "unknown"
    if os.environ.get("AWS_ENDPOINT_URL"):
        return f"local user {user}"
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(boto3.session.Session().client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError) as err:
        return f"local user {user} (AWS identity unavailable: {type(err).__name__})"


def resolve(
    ident: str, note: str, *, who: str, item: Item | None = None, payments: PaymentsRepository | None = None
) -> Flag:
    """Close the open flag of the order or refund ``ident`` as ``who``, for the reason ``note``;
    returns the flag as it is now. Raises :class:`AttentionError` when it cannot."""
    note = note.strip()
    if not note:
        raise AttentionError("--note must say why the flag is closed (it is kept with who and when)")
    payments = payments or PaymentsRepository()
    found = [f for f in find(ident, payments) if item is None or f.item == item]
    if not found:
        what = f"{item} " if item else "order or refund "
        raise AttentionError(f"no {what}{ident!r}")
    flagged = [f for f in found if f.open]
    if not flagged:
        last = "; ".join(
            f"{f.item} {f.id} closed {f.resolved_at} by {f.resolved_by or 'a re-run'}"
            if f.resolved_at
            else f"{f.item} {f.id} was never flagged"
            for f in found
        )
        raise AttentionError(f"{ident!r} has no open flag to resolve ({last})")
    if len(flagged) > 1:
        raise AttentionError(
            f"{ident!r} is both an order and a refund with open flags: say which with --item order|refund"
        )
    flag = flagged[0]
    if flag.item == "order":
        client, table, key = payments.ddb, payments.table, order_key(ident)
    else:
        from payments.refunds.repository import refund_key

        refunds = _refunds(payments)
        client, table, key = refunds.ddb, refunds.table, refund_key(ident)
    try:
        closed = resolve_attention(client, table, key, flagged_at=flag.flagged_at, who=who, note=note)
    except NotFound as err:
        raise AttentionError(str(err)) from None
    if not closed:
        raise AttentionError(
            f"{flag.item} {ident!r}: its flag changed while it was being resolved (closed, or parked again): "
            f"look again with payments attention show {ident}"
        )
    return next(f for f in find(ident, payments) if f.item == flag.item)


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
    except AttentionError as err:
        raise clikit.CliError(str(err), "look at it with payments attention show ID") from None
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
