"""The local commands: ``payments psp settle`` and ``payments reconcile FILE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from payments.ops.reconcile import add_commands
from tests.reconciliation.conftest import DAY, FIXTURES, Aws


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="payments")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_psp_settle_then_reconcile_the_downloaded_file_is_clean(
    cloud: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a booked charge
    cloud.book("psp_00000000000000c1", "po_c1", "seller_books", 1999, "USD", f"{DAY}T10:00:00.000Z")
    # When the PSP settles the day from the command line
    args = parse(["psp", "settle", "--date", DAY])
    assert args.func(args) == 0
    key = f"incoming/simulated-psp/{DAY}.csv"
    local = tmp_path / f"{DAY}.csv"
    local.write_bytes(cloud.get(key))
    # And the file is reconciled locally
    args = parse(["reconcile", str(local)])
    # Then it is clean (exit 0) and the summary says so
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"wrote {key} (2 rows)" in out and "rows 2, matched 1, mismatches 0, rejected 0" in out and "  clean" in out


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
