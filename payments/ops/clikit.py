"""The kit every ``payments`` command is built on: where it talks to, how it fails, how it prints.

A command is an ``argparse`` sub-parser whose ``func(args) -> int`` is run by :func:`run`:

.. code-block:: python

    from payments.ops import clikit

    def _list(args):
        target = clikit.connect(args)                # the endpoint, resolved once (see below)
        rows = [...]
        clikit.emit(args, {"items": rows}, clikit.Table(("ID", "AMOUNT"), [(r.id, clikit.money(r.minor, r.ccy))]))
        return clikit.FINDINGS if rows else clikit.OK

    def add_commands(subparsers):
        listing = subparsers.add_parser("list", help="...")
        clikit.add_endpoint_option(listing)          # --endpoint URL
        clikit.add_output_option(listing)            # --output table|json
        listing.set_defaults(func=_list)

Exit codes (:data:`OK`, :data:`FINDINGS`, :data:`BROKEN`): 0 all good; 1 findings (a violated
invariant, stuck or parked payments, open attention items or mismatches); 2 the command could not
do its job. ``raise CliError("what is wrong", "what to do")`` anywhere in a command prints
``payments <command>: what is wrong; what to do`` on stderr and exits 2; so do an unreachable
endpoint, a missing region or credential and any unexpected exception (the root ``--debug`` option
prints the traceback as well). argparse's own usage errors exit 2 too.

Where a command talks to (:func:`connect`), first match wins:

1. ``--endpoint URL``: the AWS-compatible endpoint that ``payments serve`` prints (``--endpoint aws``:
   real AWS, whatever runs locally);
2. ``AWS_ENDPOINT_URL``;
3. the one running ``payments serve`` of this user, whatever its ports: ``serve`` writes a discovery
   file into :func:`runtime_dir` (``$PAYMENTS_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/payments``, else
   ``~/.cache/payments``) and removes it on exit; a file whose process is gone or whose port does not
   answer is ignored with a note on stderr; two running ask for ``--endpoint``; a note on stderr says
   so when AWS credentials are configured too (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``);
4. real AWS, with the region and credentials of the environment (``AWS_PROFILE``, ...) and the stage's
   table names and ARNs from the same variables the functions read (``PAYMENTS_TABLE``, ...).

From a local endpoint everything else is derived: the local runtime publishes its settings (API URL,
region, table and bucket names, state machine ARNs) as the SSM parameter :data:`PUBLISHED_PARAMETER` on
that endpoint (:func:`publish`), and :func:`connect` reads them into the environment, with dummy
credentials. An endpoint that publishes nothing (a bare moto) is used with the default names.

Output: ``--output table`` prints a header row and aligned columns (:class:`Table`); ``--output json``
prints one JSON document. Without ``--output``, a command prints a table when its standard output is a
terminal and JSON otherwise (a pipe, a file, a cron job's log): :func:`run` settles it
(:func:`default_output`) before the command runs, so ``args.output`` is always ``table`` or ``json``. Money is always shown by :func:`money` (or :func:`amount`
for a decimal string): major units and the currency (``24.99 USD``), never minor units, in columns
named in ``Table(right=...)``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from payments.kernel import money as money_kit

OK, FINDINGS, BROKEN = 0, 1, 2

#: the SSM parameter where a local runtime publishes its settings (a JSON document)
PUBLISHED_PARAMETER = "/payments/local/runtime"
#: what to do when no local runtime is there (the second half of several error lines)
POINT_AT_LOCAL = "give the AWS endpoint that payments serve prints with --endpoint URL, or start payments serve"


class CliError(Exception):
    """The command cannot do its job: ``what`` is wrong, ``todo`` says what to do about it (exit 2)."""

    def __init__(self, what: str, todo: str = "") -> None:
        super().__init__(what)
        self.what, self.todo = what, todo

    def line(self, command: str) -> str:
        return f"payments {command}: {self.what}" + (f"; {self.todo}" if self.todo else "")


# --- options --------------------------------------------------------------------------------------
def add_endpoint_option(parser: argparse.ArgumentParser) -> None:
    """``--endpoint URL`` (also accepted before the command: ``payments --endpoint URL stuck``)."""
    parser.add_argument(
        "--endpoint",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the AWS-compatible endpoint that payments serve prints, or 'aws' for AWS itself (default: "
        "AWS_ENDPOINT_URL, else the running payments serve, else AWS)",
    )


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """``--output table|json``; unset (None) until :func:`run` gives it :func:`default_output`."""
    parser.add_argument(
        "--output",
        choices=("table", "json"),
        default=None,
        help="table: a header row and aligned columns; json: one JSON document (default: table when the "
        "output is a terminal, json otherwise)",
    )


def default_output() -> str:
    """``table`` when standard output is a terminal, ``json`` otherwise (a pipe, a file, a log)."""
    try:
        return "table" if sys.stdout.isatty() else "json"
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return "json"


def duration(text: str) -> timedelta:
    """An argparse ``type``: ``90s``, ``15m``, ``2h``, ``1d`` or plain seconds (a usage error otherwise)."""
    import re

    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])


def day(text: str) -> str:
    """An argparse ``type``: a UTC day ``YYYY-MM-DD``."""
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day: {text!r} (use YYYY-MM-DD)") from None


# --- money ----------------------------------------------------------------------------------------
def money(minor: int, currency: str) -> str:
    """Integer minor units as the operator reads them: ``money(2499, "USD") == "24.99 USD"``."""
    try:
        return f"{money_kit.format_minor(minor, currency)} {currency}"
    except money_kit.InvalidAmount:  # not an ISO 4217 code: the number as stored, said so
        return f"{minor} minor units of {currency}"


def amount(decimal_text: str | None, currency: str | None) -> str:
    """A decimal string as stored in reports and the API (``"19.99"``) with its currency, or ``-``."""
    if decimal_text in (None, ""):
        return "-"
    return f"{decimal_text} {currency}" if currency else str(decimal_text)


# --- output ---------------------------------------------------------------------------------------
@dataclass
class Table:
    """Rows under a header, columns aligned; ``notes`` are printed after it (a count, a verdict)."""

    header: Sequence[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: printed instead of the header when there is no row (e.g. "nothing stuck")
    empty: str = ""
    #: the columns (by header name) aligned to the right: amounts, counts
    right: Sequence[str] = ()

    def render(self) -> str:
        lines: list[str] = []
        if self.rows or (self.header and not self.empty):
            cells = [[str(c) for c in self.header]] + [["-" if c is None else str(c) for c in r] for r in self.rows]
            widths = [max(len(row[i]) for row in cells) for i in range(len(self.header))]
            flush = [name in self.right for name in self.header]
            for row in cells:
                padded = (c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, flush, strict=True))
                lines.append("  ".join(padded).rstrip())
        elif self.empty:
            lines.append(self.empty)
        return "\n".join(lines + self.notes) + "\n"


def emit(args: argparse.Namespace, document: Any, table: Table | Iterable[Table]) -> None:
    """Print ``document`` as JSON (``--output json``) or the table(s) (``--output table``)."""
    if (getattr(args, "output", None) or default_output()) == "json":
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
        return
    tables = [table] if isinstance(table, Table) else list(table)
    sys.stdout.write("\n".join(t.render() for t in tables))
    sys.stdout.flush()


# --- where the command talks to -------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What :func:`connect` resolved: ``aws_url`` None means real AWS."""

    aws_url: str | None
    api_url: str | None
    source: str  # "--endpoint", "AWS_ENDPOINT_URL", "payments serve (pid N)", "AWS"


@dataclass(frozen=True)
class Discovered:
    path: Path
    pid: int
    aws_url: str
    api_url: str


def runtime_dir() -> Path:
    """Where ``payments serve`` announces itself (one JSON file per running runtime)."""
    if os.environ.get("PAYMENTS_RUNTIME_DIR"):
        return Path(os.environ["PAYMENTS_RUNTIME_DIR"])
    base = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
    return Path(base) / "payments"


def announce(api_url: str, aws_url: str) -> Path:
    """Write this process's discovery file (``payments serve``); remove it with :func:`withdraw`."""
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"serve-{os.getpid()}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "api_url": api_url, "aws_url": aws_url}))
    temporary.replace(path)
    return path


def withdraw(path: Path) -> None:
    path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has that pid now
        return False
    return True


def _answers(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def discover() -> list[Discovered]:
    """The running ``payments serve`` of this user; stale discovery files are noted on stderr."""
    folder = runtime_dir()
    found: list[Discovered] = []
    for path in sorted(folder.glob("serve-*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            entry = Discovered(path, int(data["pid"]), str(data["aws_url"]), str(data["api_url"]))
        except (OSError, ValueError, KeyError, TypeError):
            print(f"payments: ignoring {path}: not a discovery file of payments serve", file=sys.stderr)
            continue
        if not _pid_alive(entry.pid):
            print(f"payments: ignoring stale {path}: process {entry.pid} is not running", file=sys.stderr)
            withdraw(path)
            continue
        if not _answers(entry.aws_url):
            print(f"payments: ignoring {path}: {entry.aws_url} does not answer", file=sys.stderr)
            continue
        found.append(entry)
    return found


def publish(aws_url: str, document: dict[str, Any], region: str) -> None:
    """Publish a local runtime's settings on its endpoint (the local runtime calls this once it is up)."""
    import boto3

    from payments.kernel.aws import LOCAL_KEY

    ssm: Any = boto3.client(
        "ssm", endpoint_url=aws_url, region_name=region, aws_access_key_id=LOCAL_KEY, aws_secret_access_key=LOCAL_KEY
    )
    ssm.put_parameter(Name=PUBLISHED_PARAMETER, Value=json.dumps(document), Type="String", Overwrite=True)


def _published(aws_url: str) -> dict[str, Any] | None:
    """The settings a local runtime published at ``aws_url``, or None; :class:`CliError` when it does not answer."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, ReadTimeoutError

    from payments.kernel.aws import LOCAL_KEY

    if urlsplit(aws_url).scheme not in ("http", "https") or not urlsplit(aws_url).hostname:
        raise CliError(f"the endpoint {aws_url!r} is not an http(s) URL", POINT_AT_LOCAL)
    config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=30)
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    ssm: Any = boto3.client(
        "ssm",
        endpoint_url=aws_url,
        region_name=region,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
        config=config,
    )
    try:
        value = ssm.get_parameter(Name=PUBLISHED_PARAMETER)["Parameter"]["Value"]
    except EndpointConnectionError:
        raise CliError(f"cannot reach the endpoint {aws_url}", POINT_AT_LOCAL) from None
    except ReadTimeoutError:
        raise CliError(f"the endpoint {aws_url} did not answer in time", "try again; is it busy?") from None
    except (ClientError, BotoCoreError):
        return None  # an endpoint that publishes nothing (a bare moto): the default names
    try:
        document = json.loads(value)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _use_local(aws_url: str, source: str) -> Target:
    from payments.kernel import aws
    from payments.kernel.config import reset_settings

    published = _published(aws_url)
    if published is None and not _answers(aws_url):
        raise CliError(f"cannot reach the endpoint {aws_url}", POINT_AT_LOCAL)
    published = published or {}
    region = str(published.get("region") or os.environ.get("AWS_DEFAULT_REGION") or aws.LOCAL_REGION)
    os.environ["AWS_ENDPOINT_URL"] = aws_url
    os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = region  # a local endpoint keeps one region
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # a local endpoint checks none: any will do
        if not os.environ.get(name):
            os.environ[name] = aws.LOCAL_KEY
    for name, value in (published.get("settings") or {}).items():
        os.environ[str(name)] = str(value)
    api_url = published.get("api_url")
    if api_url:
        os.environ["PAYMENTS_API_URL"] = str(api_url)
    aws.reset_clients()
    reset_settings()
    return Target(aws_url, str(api_url) if api_url else os.environ.get("PAYMENTS_API_URL"), source)


def _use_aws(*, explicit: bool = False) -> Target:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session()
        region, credentials = session.region_name, session.get_credentials()
    except BotoCoreError as err:  # a broken profile
        raise CliError(f"the AWS configuration cannot be read ({err})", POINT_AT_LOCAL) from None
    found = "" if explicit else "no local runtime found and "
    if not region:
        raise CliError(f"{found}no AWS region configured", POINT_AT_LOCAL + "; for AWS, set AWS_REGION or AWS_PROFILE")
    if credentials is None:
        raise CliError(f"{found}no AWS credentials configured", POINT_AT_LOCAL + "; for AWS, set AWS_PROFILE")
    return Target(None, os.environ.get("PAYMENTS_API_URL"), "AWS")


def connect(args: argparse.Namespace) -> Target:
    """Resolve where this command talks to (see the module's docstring) and point every client there."""
    endpoint = getattr(args, "endpoint", None)
    if endpoint == "aws":
        return _use_aws(explicit=True)
    if endpoint:
        return _use_local(endpoint.rstrip("/"), "--endpoint")
    if os.environ.get("AWS_ENDPOINT_URL"):
        return _use_local(os.environ["AWS_ENDPOINT_URL"].rstrip("/"), "AWS_ENDPOINT_URL")
    running = discover()
    if len(running) > 1:
        urls = ", ".join(f"{r.aws_url} (pid {r.pid})" for r in running)
        raise CliError(f"{len(running)} payments serve are running: {urls}", "choose one with --endpoint URL")
    if running:
        if os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ACCESS_KEY_ID"):
            print(
                f"payments: using the local payments serve at {running[0].aws_url} (pid {running[0].pid}), "
                "not AWS: give --endpoint aws for AWS",
                file=sys.stderr,
            )
        return _use_local(running[0].aws_url, f"payments serve (pid {running[0].pid})")
    return _use_aws()


# --- running a command ----------------------------------------------------------------------------
def command_name(args: argparse.Namespace) -> str:
    """``stuck``, ``attention list``, ``psp settle``: the words of the command that runs."""
    words = [getattr(args, "command", None)]
    for sub in ("attention_command", "psp_command", "mismatches_command", "payouts_command", "events_command"):
        words.append(getattr(args, sub, None))
    return " ".join(w for w in words if w)


def explain(err: BaseException) -> CliError | None:
    """An operator's mistake or an unreachable service as one line; None for a bug."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )

    if isinstance(err, CliError):
        return err
    if isinstance(err, EndpointConnectionError):
        return CliError(f"cannot reach {err.kwargs.get('endpoint_url', 'the endpoint')}", POINT_AT_LOCAL)
    if isinstance(err, ReadTimeoutError):
        return CliError("the endpoint did not answer in time", "try again; if it persists, check the endpoint")
    if isinstance(err, NoRegionError | NoCredentialsError):
        return CliError(f"no local runtime found and {err}", POINT_AT_LOCAL)
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("ResourceNotFoundException", "NoSuchBucket", "StateMachineDoesNotExist"):
            return CliError(
                f"the endpoint has no such table, bucket or state machine ({code}: {err.response['Error'].get('Message', '')})",
                "is it a payments serve, or the right stage (PAYMENTS_TABLE, ...)?",
            )
        if code in ("UnrecognizedClientException", "AccessDenied", "AccessDeniedException", "ExpiredTokenException"):
            return CliError(f"AWS refused the call ({code})", "check your AWS credentials and their permissions")
        return CliError(
            f"the endpoint answered {code}: {err.response.get('Error', {}).get('Message', '')}",
            "is --endpoint the AWS endpoint payments serve prints (not the API's URL), or the right stage?",
        )
    import urllib.error

    from payments.kernel.errors import StoreUnavailable

    if isinstance(err, StoreUnavailable):
        return CliError(f"the tables cannot be read or written: {err}", "try again; if it persists, check the endpoint")
    if isinstance(err, urllib.error.URLError):
        return CliError(f"cannot reach the API ({err.reason})", POINT_AT_LOCAL)
    if isinstance(err, ConnectionError):
        return CliError(f"cannot reach the service ({err})", POINT_AT_LOCAL)
    return None


def run(args: argparse.Namespace, func: Callable[[argparse.Namespace], int | None]) -> int:
    """Run a command: its exit code, or 2 with one line on stderr for whatever stops it."""
    name = command_name(args) or "?"
    debug = bool(getattr(args, "debug", False))
    if hasattr(args, "output") and args.output is None:
        args.output = default_output()
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"payments {name}: interrupted", file=sys.stderr)
        return BROKEN
    except Exception as err:  # noqa: BLE001 - every failure becomes one line and exit 2; --debug shows it
        if debug:
            traceback.print_exc()
        known = explain(err)
        if known is None:
            known = CliError(
                f"failed unexpectedly: {type(err).__name__}: {err}",
                "run it again with payments --debug ... for the traceback, and report it",
            )
        print(known.line(name), file=sys.stderr)
        return BROKEN
