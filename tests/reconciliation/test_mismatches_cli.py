"""``payments mismatches list|show|resolve``: the queue from an operator's shell, exit codes 0/1/2, no traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments.ops.cli import main
from payments.payin.attention import caller_identity
from payments.reconciliation import report as report_module
from payments.reconciliation import store
from tests.reconciliation.conftest import DAY, Aws
from tests.reconciliation.test_mismatch_queue import KEY, LATE, late_charge_missing


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``payments mismatches ARGV``; a table unless ``--output`` says otherwise (a test's stdout is no terminal)."""
    code = main(["mismatches", *argv, *([] if "--output" in argv else ["--output", "table"])])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_show_resolve_with_exit_codes(
    cloud: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the day's 23:50 charge missing from its file: one open mismatch on DAY
    missing = late_charge_missing(cloud)
    # When the day's open mismatches are listed
    code, out, _ = run(capsys, "list", "--day", DAY, "--open")
    # Then it is listed with a header, its amount in major units with its currency, and exit 1 (findings)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "KIND"]
    row = next(line for line in lines if line.startswith(missing["id"]))
    assert "OPEN" in row and "MISSING_IN_SETTLEMENT" in row and "25.00 USD" in row and KEY in row
    assert lines[-1] == f"1 open of 1 mismatch(es) on settlement day {DAY}"
    code, out, _ = run(capsys, "list", "--output", "json")
    assert code == 1 and [m["id"] for m in json.loads(out)] == [missing["id"]]
    # And show prints it in full
    code, out, _ = run(capsys, "show", missing["id"])
    assert code == 0 and f"psp reference:  {LATE}" in out and "ledger:         25.00 USD" in out
    # When it is resolved with a note
    rendered: list[Any] = []
    real = report_module.to_html
    monkeypatch.setattr(
        report_module,
        "to_html",
        lambda report, resolutions=None: rendered.append((report["source_key"], resolutions)) or real(report),
    )
    code, out, err = run(capsys, "resolve", missing["id"], "--note", "the PSP settled it on the 2nd, ticket 12")
    # Then it records who, when and why, and the file's HTML report is written again with the status
    assert code == 0 and err == ""
    now = store.get(missing["id"])
    assert now is not None and now["status"] == "RESOLVED"
    assert now["resolved_by"] == caller_identity() and now["resolution"] == "the PSP settled it on the 2nd, ticket 12"
    assert (
        out.strip()
        == f"resolved {missing['id']} (MISSING_IN_SETTLEMENT) by {now['resolved_by']} at {now['resolved_at']}"
    )
    code, out, _ = run(capsys, "show", missing["id"])
    assert code == 0 and f"resolved by:    {now['resolved_by']}" in out
    assert rendered == [(KEY, {missing["mismatch_id"]: {k: now[k] for k in store.STATUS_FIELDS}})]
    # And nothing is open any more: exit 0, and show says how it was resolved
    code, out, _ = run(capsys, "list", "--day", DAY, "--open")
    assert code == 0 and out.strip() == f"no mismatches on settlement day {DAY}"
    code, out, _ = run(capsys, "list", "--day", DAY)
    assert (
        code == 0 and "RESOLVED" in out and out.splitlines()[-1] == f"0 open of 1 mismatch(es) on settlement day {DAY}"
    )
    code, out, _ = run(capsys, "show", missing["id"], "--output", "json")
    assert code == 0 and json.loads(out)["resolution"] == "the PSP settled it on the 2nd, ticket 12"


def test_what_cannot_be_done_is_one_line_and_exit_2(
    cloud: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = late_charge_missing(cloud)
    run(capsys, "resolve", missing["id"], "--note", "first")
    # A second resolution: refused, saying who resolved it first
    code, out, err = run(capsys, "resolve", missing["id"], "--note", "second")
    assert code == 2 and out == "" and "already resolved by" in err and "(first)" in err
    assert store.get(missing["id"])["resolution"] == "first"  # type: ignore[index]
    # An unknown id, an id that is no mismatch id, an empty note
    for argv in (
        ("show", "20261130-000000000000"),
        ("show", "po_a7"),
        ("resolve", "20261130-000000000000", "--note", "x"),
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "no mismatch" in err and "Traceback" not in err
    other = store.queue(DAY)[0]["id"]
    code, _, err = run(capsys, "resolve", other, "--note", "  ")
    assert code == 2 and "--note must say why" in err
    # A day that is not a day: a usage error (exit 2)
    with pytest.raises(SystemExit) as usage:
        main(["mismatches", "list", "--day", "30/11/2026"])
    assert usage.value.code == 2 and "YYYY-MM-DD" in capsys.readouterr().err
    # An endpoint nothing answers: one line, exit 2
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run(capsys, "list", "--endpoint", "http://127.0.0.1:9")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("payments mismatches list: cannot reach the endpoint http://127.0.0.1:9; ")


def test_without_output_a_pipe_gets_json(cloud: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # Given one open mismatch, When listed with no --output and stdout no terminal (captured, as a pipe)
    missing = late_charge_missing(cloud)
    code = main(["mismatches", "list", "--day", DAY])
    # Then one JSON document, amounts as decimal strings with their currency
    listed = json.loads(capsys.readouterr().out)
    assert code == 1 and [m["id"] for m in listed] == [missing["id"]]
    assert (listed[0]["ledger_amount"], listed[0]["currency"]) == ("25.00", "USD")
