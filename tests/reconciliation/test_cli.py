"""The local commands: ``payments psp settle`` and ``payments reconcile FILE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from payments.ops import clikit
from payments.ops.reconcile import add_commands
from tests.reconciliation.conftest import DAY, FIXTURES, Aws


def parse(argv: list[str]) -> argparse.Namespace:
    """The parsed command, whose ``func`` runs as ``payments`` runs it (a failure: one line, exit 2)."""
    parser = argparse.ArgumentParser(prog="payments")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    command = args.func
    args.func = lambda parsed: clikit.run(parsed, command)
    return args


def test_psp_settle_then_reconcile_the_downloaded_file_is_clean(
    cloud: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a booked charge
    cloud.book("psp_00000000000000c1", "po_c1", "seller_books", 1999, "USD", f"{DAY}T10:00:00.000Z")
    # When the PSP settles the day from the command line
    args = parse(["psp", "settle", "--date", DAY, "--output", "table"])
    assert args.func(args) == 0
    key = f"incoming/simulated-psp/{DAY}.csv"
    local = tmp_path / f"{DAY}.csv"
    local.write_bytes(cloud.get(key))
    # And the file is reconciled locally
    args = parse(["reconcile", str(local), "--output", "table"])
    # Then it is clean (exit 0) and the summary says so
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"wrote {key} (2 rows)" in out and out.rstrip().endswith("\nclean")
    header, row = out.splitlines()[1:3]
    assert header.split() == ["FILE", "FORMAT", "DAY", "ROWS", "MATCHED", "MISMATCHES", "REJECTED"]
    assert row.split()[-4:] == ["2", "1", "0", "0"]  # rows 2, matched 1, no mismatch, none rejected


def test_reconcile_exit_codes_mismatches_and_unreadable(
    cloud: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a settlement file for an empty ledger, and a file that is not a settlement file
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01\x02")
    # When both are reconciled, the first as JSON
    args = parse(["reconcile", str(FIXTURES / "adyen_settlement_2026-11-30.csv"), "--json"])
    code = args.func(args)
    report = json.loads(capsys.readouterr().out)
    # Then the first has mismatches (exit 1), the second cannot be read (exit 2)
    assert code == 1
    assert report["matched"] == 0 and {m["kind"] for m in report["mismatches"]} == {"MISSING_IN_LEDGER"}
    args = parse(["reconcile", str(garbage)])
    assert args.func(args) == 2
    assert "binary content" in capsys.readouterr().err


def _register_local_psp(cloud: Aws, settle_url: str) -> None:
    from payments.kernel.config import settings
    from payments.ops.reconcile import LOCAL_PSP_CONFIG

    cloud.ddb.put_item(
        TableName=settings().psp_table,
        Item={
            "pk": {"S": LOCAL_PSP_CONFIG},
            "sk": {"S": "CONFIG"},
            "psp": {"S": "adyen-fake"},
            "settle_url": {"S": settle_url},
        },
    )


def test_psp_settle_asks_the_local_runtimes_psp_when_it_is_not_the_simulator(
    cloud: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked: list[dict[str, str]] = []

    class Psp(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server names the handler so
            asked.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps({"key": f"incoming/adyen/{DAY}.csv", "rows": 3}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Psp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # Given a local runtime that registered the Adyen fake as its PSP, with a booked charge at the simulator
        _register_local_psp(cloud, f"http://127.0.0.1:{server.server_address[1]}/_fake/settle")
        cloud.book("psp_00000000000000c1", "po_c1", "seller_books", 1999, "USD", f"{DAY}T10:00:00.000Z")
        # When the day is settled
        args = parse(["psp", "settle", "--date", DAY, "--output", "table"])
        assert args.func(args) == 0
    finally:
        server.shutdown()
        server.server_close()
    # Then the fake was asked for that day's report, and the simulator wrote nothing
    assert asked == [{"date": DAY}]
    assert f"wrote incoming/adyen/{DAY}.csv (3 rows, by the runtime's PSP: adyen-fake)" in capsys.readouterr().out
    listed = cloud.s3.list_objects_v2(Bucket=cloud.bucket, Prefix="incoming/simulated-psp/").get("Contents", [])
    assert listed == []


def test_psp_settle_never_posts_to_a_registered_url_off_this_machine(
    cloud: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a registration pointing off the machine
    _register_local_psp(cloud, "http://169.254.169.254/latest")
    # When the day is settled, then it refuses (and posts nothing): one line, exit 2
    args = parse(["psp", "settle", "--date", DAY, "--output", "table"])
    assert args.func(args) == 2
    assert "not on this machine" in capsys.readouterr().err
