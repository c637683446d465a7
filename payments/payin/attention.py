"""What needs a person, as data: the open attention flags of orders and refunds, one item's flag, and
the deliberate close of one (who, when, why), for the operator API (``functions/operator``).

An order or a refund is parked ``NEEDS_ATTENTION`` with a kind (:class:`AttentionKind`): ``REDRIVE``
(a step ran out of retries; its workflow, or ``payments resume``, clears the flag once settled) or
``PERSON`` (a decision for a person; nothing clears it by itself). :func:`resolve` closes one open flag
(of either kind) with one conditional write that records who, when and why; it refuses an id that
names nothing, an id with no open flag, an id that names both an order and a refund with open flags
(ids of different kinds may be equal: say which with ``item``), and a flag that changed meanwhile.
The ``payments attention`` command does the same from an operator's shell, and records who it is with
:func:`caller_identity`; the operator API records the IAM identity API Gateway authenticated.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Any, Literal

from payments.kernel.errors import NotFound
from payments.payin.repository import PaymentsRepository, order_key, resolve_attention
from payments.payin.status import AttentionKind

Item = Literal["order", "refund"]


class AttentionError(Exception):
    """The flag cannot be closed as asked: the message says why, in one line."""


class NoSuchItem(AttentionError):
    """No order or refund has this id."""


class EmptyNote(AttentionError):
    """The note says nothing: a resolution must say why."""


class Ambiguous(AttentionError):
    """The id names both an order and a refund with open flags: say which (``item``)."""


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
    """The order and the refund ``ident`` names (none, one, or both), with their flags; those never
    flagged are included (``kind`` PERSON, empty reason)."""
    payments = payments or PaymentsRepository()
    found: list[Flag] = []
    order = payments.find_order(ident)
    if order is not None:
        found.append(_flag("order", order))
    refund = _refunds(payments).find(ident)
    if refund is not None:
        found.append(_flag("refund", refund))
    return found


def resolve(
    ident: str, note: str, *, who: str, item: Item | None = None, payments: PaymentsRepository | None = None
) -> Flag:
    """Close the open flag of the order or refund ``ident`` as ``who``, for the reason ``note``; returns
    the flag as it is now. Raises :class:`NoSuchItem` or :class:`AttentionError` when it cannot."""
    note = note.strip()
    if not note:
        raise EmptyNote("the note must say why the flag is closed (it is kept with who and when)")
    payments = payments or PaymentsRepository()
    found = [f for f in find(ident, payments) if item is None or f.item == item]
    if not found:
        raise NoSuchItem(f"no {item or 'order or refund'} {ident!r}")
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
        raise Ambiguous(f"{ident!r} is both an order and a refund with open flags: say which (item)")
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
        raise NoSuchItem(str(err)) from None
    if not closed:
        raise AttentionError(
            f"{flag.item} {ident!r}: its flag changed while it was being resolved (closed, or parked again): look again"
        )
    return next(f for f in find(ident, payments) if f.item == flag.item)


# --- who resolves ---------------------------------------------------------------------------------------
def local_user() -> str:
    """Who resolves on the local runtime: ``local user <login name>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"local user {user}"


def caller_identity() -> str:
    """Who is resolving from an operator's shell: the caller's AWS identity (STS ``GetCallerIdentity``)
    against a deployed stage; :func:`local_user` on the local runtime (``AWS_ENDPOINT_URL`` set: its
    identity means nothing), or when STS cannot answer (said so in the value)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return local_user()
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return str(boto3.session.Session().client("sts").get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError) as err:
        return f"{local_user()} (AWS identity unavailable: {type(err).__name__})"
