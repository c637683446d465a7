"""``payments events tail [--type T] [--output json] [--follow]``: the events the local runtime delivered.

Every state change of the contract's list is published once as a CloudEvent (``CONTRACT.md``, "Events"). The
local runtime (``payments serve``) delivers them to its bus ``payments-local`` and keeps each delivery in its
events' log (:mod:`payments.events.log`); ``tail`` prints that log in delivery order: all of it, or with
``--type`` only the events of one type (``payments.refund.succeeded``) or of one resource (``refund``), and
with ``--follow`` the deliveries still to come, until interrupted. A repeated delivery of one id is printed
again: a consumer drops it by its ``id``.

``--output json``: one JSON document, the envelopes as delivered; with ``--follow`` one envelope per line
(JSON Lines). Against a deployed stage the command refuses: there the events are on the bus
``payments-<stage>`` and in its archive, for the marketplace's rules.

Exit codes: 0 when done (or interrupted while following); 2 when it could not do its job (the endpoint out
of reach, no events' log there, an unknown type).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from payments.events.envelope import EventType
from payments.ops import clikit

#: how often ``--follow`` looks for new deliveries
FOLLOW_INTERVAL_S = 0.5


def event_filter(text: str) -> str:
    """``--type``: an event type of the contract, or the resource part of one (``refund``)."""
    types = {t.value for t in EventType}
    if text in types or text in {t.resource for t in EventType}:
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is no event type: one of {', '.join(sorted(types))}, or its resource (payment, refund, ...)"
    )


def matches(envelope: dict[str, Any], wanted: str | None) -> bool:
    if wanted is None:
        return True
    kind = str(envelope.get("type", ""))
    return kind == wanted or kind.split(".")[1:2] == [wanted]


def _row(envelope: dict[str, Any]) -> tuple[str, ...]:
    data = envelope.get("data") or {}
    status = data.get("status") or data.get("step") or ("open" if data.get("open") else "") or ""
    return (
        str(envelope.get("time", "")),
        str(envelope.get("type", "")),
        str(envelope.get("subject", "")),
        str(status),
        str(envelope.get("sequence", "")),
        str(envelope.get("id", "")),
    )


_HEADER = ("TIME", "TYPE", "SUBJECT", "STATUS", "SEQUENCE", "ID")


def _tail_command(args: argparse.Namespace) -> int:
    target = clikit.connect(args)
    if target.aws_url is None:
        raise clikit.CliError(
            "payments events tail reads the local runtime's events' log",
            "a stage's events are on its EventBridge bus payments-<stage> (and its archive): a rule on the bus "
            "delivers them to a queue or a function",
        )
    from botocore.exceptions import ClientError

    from payments.events import log
    from payments.kernel import aws

    s3 = aws.client("s3")
    try:
        found = [(key, e) for key, e in log.read(s3) if matches(e, args.type)]
    except ClientError as err:
        if "NoSuchBucket" in str(err):
            raise clikit.CliError(
                f"no events' log at {target.aws_url}", "start payments serve again with this version"
            ) from None
        raise
    envelopes = [e for _, e in found]
    if not args.follow:
        where = f" of type {args.type}" if args.type else ""
        table = clikit.Table(
            _HEADER,
            [_row(e) for e in envelopes],
            [f"{len(envelopes)} event(s){where}, {len({e['id'] for e in envelopes})} id(s)"] if envelopes else [],
            empty=f"no events{where} yet",
        )
        clikit.emit(args, envelopes, table)
        return clikit.OK
    as_json = (args.output or clikit.default_output()) == "json"
    last = found[-1][0] if found else ""
    _print(envelopes, as_json)
    try:
        while True:
            time.sleep(FOLLOW_INTERVAL_S)
            more = list(log.read(s3, after=last))
            if more:
                last = more[-1][0]
                _print([e for _, e in more if matches(e, args.type)], as_json)
    except KeyboardInterrupt:
        return clikit.OK


def _print(envelopes: list[dict[str, Any]], as_json: bool) -> None:
    for envelope in envelopes:
        if as_json:
            sys.stdout.write(json.dumps(envelope, sort_keys=True) + "\n")
        else:
            sys.stdout.write("  ".join(_row(envelope)) + "\n")
    sys.stdout.flush()


def add_commands(subparsers: Any) -> None:
    """Register ``events tail`` on the ``payments`` CLI's subparsers."""
    events = subparsers.add_parser("events", help="the events the local runtime delivered (CloudEvents)")
    commands = events.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    tail = commands.add_parser(
        "tail", help="print the delivered events in order (--type T: one type or resource; --follow: keep printing)"
    )
    tail.add_argument(
        "--type", type=event_filter, default=None, help="an event type (payments.refund.succeeded) or a resource"
    )
    tail.add_argument("--follow", action="store_true", help="keep printing the deliveries still to come")
    clikit.add_endpoint_option(tail)
    clikit.add_output_option(tail)
    tail.set_defaults(func=_tail_command)
