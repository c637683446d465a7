"""``payments psp chargeback PAYMENT_ORDER_ID [--amount A]`` (and ``chargeback-reversed``,
``second-chargeback``, by the dispute reference the chargeback printed).

The simulated PSP raises a chargeback (recorded at the PSP, a row in the day's file) and
delivers its signed CHARGEBACK notification to the API, as the real PSP's webhook would.
It talks to the running ``payments serve``: the AWS-compatible endpoint (``--endpoint``, else
``AWS_ENDPOINT_URL``) and the API (``--api``, else ``PAYMENTS_API_URL``, else the endpoint's
port minus one, as ``payments serve`` lays them out).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from payments.kernel import aws, money


def add_psp_commands(subparsers: Any) -> None:
    """Add the dispute commands under the existing ``payments psp`` command."""
    psp = subparsers.choices.get("psp")
    if psp is None:
        return
    actions = [a for a in psp._actions if isinstance(a, argparse._SubParsersAction)]  # argparse has no public lookup
    if not actions:
        return
    chargeback = actions[0].add_parser(
        "chargeback", help="raise a chargeback on a payment order and deliver its notification"
    )
    chargeback.add_argument("payment_order_id")
    chargeback.add_argument("--amount", help="decimal amount in the order's currency (default: the whole charge)")
    chargeback.set_defaults(func=_chargeback)
    commands = [chargeback]
    for name, step, help_text in (
        ("chargeback-reversed", "reverse_chargeback", "reverse a chargeback (the defence won)"),
        ("second-chargeback", "second_chargeback", "charge a reversed chargeback back again (the defence lost)"),
    ):
        command = actions[0].add_parser(name, help=f"{help_text}, by its dispute reference; deliver its notification")
        command.add_argument("dispute_reference")
        command.set_defaults(func=_dispute_step, step=step)
        commands.append(command)
    for command in commands:
        command.add_argument("--endpoint", help="AWS-compatible endpoint URL (default: AWS_ENDPOINT_URL)")
        command.add_argument("--api", help="API base URL (default: PAYMENTS_API_URL, else the endpoint's port - 1)")


def _setup(args: argparse.Namespace) -> str:
    """Point the PSP at the runtime's endpoint; no AWS variables needed (local credentials, region)."""
    endpoint = (
        args.endpoint or os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:8081"
    )  # `payments serve`'s default
    aws.use_endpoint(endpoint)
    api = args.api or os.environ.get("PAYMENTS_API_URL")
    if not api:
        endpoint = urlsplit(os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:8081"))
        api = urlunsplit((endpoint.scheme, f"{endpoint.hostname}:{(endpoint.port or 8081) - 1}", "", "", ""))
    return api.rstrip("/")


def _chargeback(args: argparse.Namespace) -> int:
    from payments.psp.simulator import SimulatedPsp

    api = _setup(args)
    psp = SimulatedPsp()
    amount = None
    if args.amount is not None:
        outcome = psp.lookup(args.payment_order_id)
        charge = next((c for c in psp.all_charges() if c["merchant_reference"] == args.payment_order_id), None)
        if outcome is None or charge is None:
            print(f"no charge for {args.payment_order_id} at the PSP")
            return 1
        amount = money.parse_amount(args.amount, charge["currency"])
    item = psp.raise_chargeback(args.payment_order_id, amount)
    print(
        f"chargeback {item['pspReference']} on {args.payment_order_id}: {item['amount']['value']} {item['amount']['currency']} (minor units)"
    )
    return deliver(api, item)


def _dispute_step(args: argparse.Namespace) -> int:
    from payments.psp.simulator import PspRequestRejected, SimulatedPsp

    api = _setup(args)
    try:
        item = getattr(SimulatedPsp(), args.step)(args.dispute_reference)
    except PspRequestRejected as err:
        print(f"refused by the PSP: {err}")
        return 1
    print(
        f"{item['eventCode']} for dispute {args.dispute_reference}: {item['amount']['value']} {item['amount']['currency']}"
    )
    return deliver(api, item)


def deliver(api: str, item: dict[str, Any]) -> int:
    if urlsplit(api).scheme not in ("http", "https"):
        raise SystemExit(f"the API URL {api!r} is not http(s)")
    body = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}).encode()
    url, headers = f"{api}/v1/psp/notifications", {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - http(s), checked above
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s), checked above
            print(f"notification delivered: {response.status} {response.read().decode()}")
            return 0
    except urllib.error.HTTPError as err:
        print(f"notification refused: {err.code} {err.read().decode()}")
        return 1
