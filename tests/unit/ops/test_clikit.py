"""The CLI kit (``payments.ops.clikit``): help on every option, money, tables, exit codes, discovery."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from payments.ops import clikit
from payments.ops.cli import parser


def _parsers(root: argparse.ArgumentParser, path: str = "payments") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, root
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            for name, sub in action.choices.items():
                assert name in helped, f"{path} {name} has no help line"
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_and_argument_of_every_command_has_help() -> None:
    # Given the whole parser, the dev commands included
    missing = [
        f"{path}: {action.option_strings or action.dest}"
        for path, command in _parsers(parser())
        for action in command._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    # Then not one option or argument lacks its help text
    assert missing == []


def test_the_walk_sees_the_commands() -> None:
    paths = {path for path, _ in _parsers(parser())}
    assert {
        "payments verify",
        "payments stuck",
        "payments attention list",
        "payments psp settle",
        "payments serve",
    } <= paths


def test_the_walk_would_fail_on_an_option_without_help() -> None:
    root = argparse.ArgumentParser(prog="x")
    root.add_argument("--plain")
    assert [a for _, p in _parsers(root) for a in p._actions if not a.help] != []


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [(2499, "USD", "24.99 USD"), (5, "JPY", "5 JPY"), (1250, "KWD", "1.250 KWD"), (-1, "EUR", "-0.01 EUR")],
)
def test_money_is_major_units_with_currency(minor: int, currency: str, shown: str) -> None:
    assert clikit.money(minor, currency) == shown


def test_table_has_a_header_and_aligned_columns() -> None:
    table = clikit.Table(("ID", "AMOUNT"), [("po_1", "24.99 USD"), ("po_long_name", "5.00 USD")], ["2 rows"])
    lines = table.render().splitlines()
    assert lines[0].split() == ["ID", "AMOUNT"]
    assert {line.index(amount) for line, amount in zip(lines[1:3], ("24.99", "5.00"), strict=True)} == {
        lines[0].index("AMOUNT")
    }
    assert lines[-1] == "2 rows"
    assert clikit.Table(("ID",), [], empty="nothing").render() == "nothing\n"
    right = clikit.Table(("ID", "AMOUNT"), [("a", "5.00 USD"), ("b", "124.99 USD")], right=("AMOUNT",)).render()
    assert [line.rstrip()[-10:] for line in right.splitlines()] == ["    AMOUNT", "  5.00 USD", "124.99 USD"]


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("30", 30)])
def test_duration(text: str, seconds: int) -> None:
    assert clikit.duration(text).total_seconds() == seconds


def test_a_bad_duration_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["stuck", "--older-than", "15x"])
    assert exit_.value.code == 2


def test_run_maps_failures_to_exit_2_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(command="stuck", debug=False)

    def broken(_: argparse.Namespace) -> int:
        raise clikit.CliError("what is wrong", "what to do")

    def bug(_: argparse.Namespace) -> int:
        raise ZeroDivisionError("division by zero")

    assert clikit.run(args, broken) == 2
    assert capsys.readouterr().err == "payments stuck: what is wrong; what to do\n"
    assert clikit.run(args, bug) == 2
    err = capsys.readouterr().err
    assert err.startswith("payments stuck: failed unexpectedly: ZeroDivisionError") and "Traceback" not in err
    assert clikit.run(argparse.Namespace(command="stuck", debug=True), bug) == 2
    assert "Traceback" in capsys.readouterr().err
    assert clikit.run(args, lambda _: clikit.FINDINGS) == 1


class _Terminal:
    """A stdout that is (or is not) a terminal, keeping what is written."""

    def __init__(self, tty: bool) -> None:
        self.tty, self.written = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.written += text
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(("tty", "chosen"), [(True, "table"), (False, "json")], ids=["terminal", "pipe"])
def test_output_defaults_to_a_table_on_a_terminal_and_json_otherwise(
    monkeypatch: pytest.MonkeyPatch, tty: bool, chosen: str
) -> None:
    # Given stdout a terminal (or a pipe), When a command runs without --output
    stdout = _Terminal(tty)
    monkeypatch.setattr(sys, "stdout", stdout)
    args = parser().parse_args(["stuck"])
    assert args.output is None
    seen: list[str] = []

    def command(args: argparse.Namespace) -> int:
        seen.append(args.output)
        clikit.emit(args, {"amount": "24.99", "currency": "USD"}, clikit.Table(("AMOUNT",), [("24.99 USD",)]))
        return clikit.OK

    # Then the command sees the one chosen, and prints it
    assert clikit.run(args, command) == 0
    assert seen == [chosen]
    if chosen == "json":
        assert json.loads(stdout.written) == {"amount": "24.99", "currency": "USD"}
    else:
        assert stdout.written.splitlines() == ["AMOUNT", "24.99 USD"]
    # And an explicit --output wins over the terminal test
    explicit = "json" if tty else "table"
    args = parser().parse_args(["stuck", "--output", explicit])
    assert clikit.run(args, command) == 0 and seen[-1] == explicit


def test_discovery_keeps_the_live_and_drops_the_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_RUNTIME_DIR", str(tmp_path))
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        # Given this process's announcement (its port answers) and a dead process's
        live = clikit.announce("http://127.0.0.1:1", f"http://127.0.0.1:{port}")
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        stale = tmp_path / f"serve-{int(gone.stdout)}.json"
        stale.write_text(json.dumps({"pid": int(gone.stdout), "api_url": "x", "aws_url": f"http://127.0.0.1:{port}"}))
        # When the CLI looks for runtimes
        found = clikit.discover()
    # Then only the live one is found; the stale file is gone
    assert [(d.pid, d.aws_url) for d in found] == [(os.getpid(), f"http://127.0.0.1:{port}")]
    assert not stale.exists()
    clikit.withdraw(live)
    assert not live.exists()


def test_two_running_runtimes_ask_for_an_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with socket.socket() as one, socket.socket() as two:
        for sock in (one, two):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        for n, sock in enumerate((one, two)):
            path = tmp_path / f"serve-{os.getpid()}-{n}.json"
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            path.write_text(json.dumps({"pid": os.getpid(), "api_url": url, "aws_url": url}))
        with pytest.raises(clikit.CliError) as error:
            clikit.connect(argparse.Namespace(endpoint=None))
    assert "2 payments serve are running" in error.value.what and "--endpoint" in error.value.todo


def test_runtime_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PAYMENTS_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert clikit.runtime_dir() == tmp_path / "payments"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert clikit.runtime_dir() == Path.home() / ".cache" / "payments"


def test_endpoint_before_or_after_the_command() -> None:
    # The root's --endpoint reaches the command; the command's own wins when both are given
    assert parser().parse_args(["--endpoint", "http://a:1", "stuck"]).endpoint == "http://a:1"
    assert parser().parse_args(["stuck", "--endpoint", "http://b:2"]).endpoint == "http://b:2"
    assert (
        parser().parse_args(["--endpoint", "http://a:1", "stuck", "--endpoint", "http://b:2"]).endpoint == "http://b:2"
    )
    assert parser().parse_args(["stuck"]).endpoint is None


def test_an_api_url_given_as_the_endpoint_is_said_so(capsys: pytest.CaptureFixture[str]) -> None:
    from botocore.exceptions import ClientError

    def wrong_port(_: argparse.Namespace) -> int:
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "Scan")

    assert clikit.run(argparse.Namespace(command="verify", debug=False), wrong_port) == 2
    assert "not the API's URL" in capsys.readouterr().err
