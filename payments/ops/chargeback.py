"""``payments psp chargeback PAYMENT_ORDER_ID [--amount A]`` (and ``chargeback-reversed``,
``second-chargeback``, by the dispute reference the chargeback printed).

The simulated PSP raises a chargeback (recorded at the PSP, a row in the day's file) and
delivers its signed CHARGEBACK notification to the API, as the real PSP's webhook would. When the
runtime runs another PSP (``payments serve --psp adyen-fake``), that PSP raises the dispute step and
delivers the notification to the stage's webhook by itself, with its own retries, as Adyen does: the
command prints what was queued, and the notification's effect follows (``payments attention``).
It talks to the running ``payments serve`` (found by itself, or ``--endpoint URL``), and to the API
that this runtime publishes on its endpoint (``--api`` overrides it).
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from payments.kernel import money
from payments.kernel.money import InvalidAmount
from payments.ops import clikit
from payments.psp.adyen_currencies import from_adyen_minor


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
    chargeback.add_argument("payment_order_id", help="the paid order the cardholder's bank disputes")
    chargeback.add_argument("--amount", help="decimal amount in the order's currency (default: the whole charge)")
    chargeback.set_defaults(func=_chargeback)
    commands = [chargeback]
    for name, step, help_text in (
        ("chargeback-reversed", "reverse_chargeback", "reverse a chargeback (the defence won)"),
        ("second-chargeback", "second_chargeback", "charge a reversed chargeback back again (the defence lost)"),
    ):
        command = actions[0].add_parser(name, help=f"{help_text}, by its dispute reference; deliver its notification")
        command.add_argument("dispute_reference", help="the reference payments psp chargeback printed")
        command.set_defaults(func=_dispute_step, step=step, name=name)
        commands.append(command)
    for command in commands:
        clikit.add_endpoint_option(command)
        command.add_argument(
            "--api",
            metavar="URL",
            help="the API's base URL (default: the one the endpoint's payments serve publishes, else PAYMENTS_API_URL)",
        )
        clikit.add_output_option(command)


def _setup(args: argparse.Namespace) -> str:
    """Point the PSP at the runtime's endpoint and return the API's URL, derived from that endpoint
    (no AWS variables needed: local credentials and region)."""
    target = clikit.connect(args)
    api = args.api or target.api_url
    if not api:
        raise clikit.CliError(
            "the API's URL is not known: the endpoint publishes none and PAYMENTS_API_URL is not set",
            "give it with --api URL",
        )
    if urlsplit(api).scheme not in ("http", "https"):
        raise clikit.CliError(f"the API URL {api!r} is not http(s)", "give it with --api http://HOST:PORT")
    return api.rstrip("/")


def _major(item: dict[str, Any], *, adyen: bool = False) -> str:
    """The notification's amount in major units: Adyen's minor units, from Adyen's own table (``adyen``: the
    runtime's PSP is an Adyen) or as the simulator writes them (its wire exponents)."""
    value, currency = item["amount"]["value"], item["amount"]["currency"]
    try:
        found = from_adyen_minor(int(value), str(currency), strict=adyen)
    except InvalidAmount:
        return f"{value} (Adyen minor units) {currency}"
    return clikit.money(found.minor, found.currency)


def _chargeback(args: argparse.Namespace) -> int:
    from payments.ops.reconcile import local_psp_operation
    from payments.psp.simulator import PspRequestRejected, SimulatedPsp

    api = _setup(args)
    request = {"payment_order_id": args.payment_order_id}
    if args.amount is not None:
        request["amount"] = args.amount
    elsewhere = local_psp_operation("chargeback", request)
    if elsewhere is not None:
        name, answer = elsewhere
        return _announce(args, "CHARGEBACK", args.payment_order_id, answer["item"], api, delivered_by=name)
    psp = SimulatedPsp()
    amount = None
    charge = next((c for c in psp.all_charges() if c["merchant_reference"] == args.payment_order_id), None)
    if psp.lookup(args.payment_order_id) is None or charge is None:
        raise clikit.CliError(
            f"no charge for {args.payment_order_id} at the simulated PSP", "give the payment_order_id of a paid order"
        )
    if args.amount is not None:
        try:
            amount = money.parse_amount(args.amount, charge["currency"])
        except money.InvalidAmount as err:
            raise clikit.CliError(f"--amount {args.amount!r}: {err}", 'give a decimal amount such as "5.00"') from None
    try:
        item = psp.raise_chargeback(args.payment_order_id, amount)
    except PspRequestRejected as err:
        raise clikit.CliError(f"refused by the PSP: {err}", "check the order with payments attention show") from None
    return _announce(args, "CHARGEBACK", args.payment_order_id, item, api)


def _dispute_step(args: argparse.Namespace) -> int:
    from payments.ops.reconcile import local_psp_operation
    from payments.psp.simulator import PspRequestRejected, SimulatedPsp

    api = _setup(args)
    elsewhere = local_psp_operation(args.name, {"dispute_reference": args.dispute_reference})
    if elsewhere is not None:
        name, answer = elsewhere
        item = answer["item"]
        return _announce(args, item["eventCode"], args.dispute_reference, item, api, delivered_by=name)
    try:
        item = getattr(SimulatedPsp(), args.step)(args.dispute_reference)
    except PspRequestRejected as err:
        raise clikit.CliError(
            f"refused by the PSP: {err}", "give the dispute reference payments psp chargeback printed"
        ) from None
    return _announce(args, item["eventCode"], args.dispute_reference, item, api)


def _announce(
    args: argparse.Namespace, event: str, subject: str, item: dict[str, Any], api: str, delivered_by: str = ""
) -> int:
    """Print the dispute step; deliver its notification (the simulator's), or say that the PSP which
    raised it delivers it by itself (``delivered_by``)."""
    if delivered_by:
        status, body = 202, f"queued: {delivered_by} delivers it to the webhook"
    else:
        status, body = deliver(api, item, quiet=True)
    amount = _major(item, adyen=bool(delivered_by))
    document = {
        "event": event,
        "subject": subject,
        "dispute_reference": item["pspReference"],
        "amount": amount,
        "notification": {"status": status, "body": body},
    }
    clikit.emit(
        args,
        document,
        clikit.Table(
            ("EVENT", "ON", "DISPUTE REFERENCE", "AMOUNT", "NOTIFICATION"),
            [(event, subject, item["pspReference"], amount, f"{status} {body}")],
            right=("AMOUNT",),
        ),
    )
    if status not in (200, 202):
        raise clikit.CliError(f"the API refused the notification: {status} {body}", "check the runtime's log")
    return clikit.OK


def deliver(api: str, item: dict[str, Any], *, quiet: bool = False) -> tuple[int, str]:
    """POST the signed notification to the API's webhook: (HTTP status, body)."""
    if urlsplit(api).scheme not in ("http", "https"):
        raise clikit.CliError(f"the API URL {api!r} is not http(s)", "give it with --api http://HOST:PORT")
    body = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}).encode()
    url, headers = f"{api}/v1/psp/notifications", {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - http(s), checked above
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http(s), checked above
            answer = (response.status, response.read().decode())
    except urllib.error.HTTPError as err:
        answer = (err.code, err.read().decode())
    except urllib.error.URLError as err:
        raise clikit.CliError(
            f"the notification was recorded at the PSP but the API at {api} cannot be reached ({err.reason})",
            "start payments serve (the PSP delivers it again only on the next dispute step)",
        ) from None
    if not quiet:
        print(f"notification delivered: {answer[0]} {answer[1]}")
    return answer
