"""``payments demo`` leaves its day behind: the reports outlive the runtime, and a log gets no progress frames;
and its sellers get paid: every pain.001 it wrote is valid against the pain.001.001.09 XSD that sepaxml ships,
and each payout ends as its IBAN says (the bank's test IBANs: ``...0001`` rejected, ``...0002`` returned).

Its own process (the demo owns a local runtime of its own), run as a cron job or CI would: stdout
and stderr are pipes, not a terminal. One run (40 checkouts: enough EUR sellers for a paid, a failed and a
returned payout) serves every test of the module.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sepaxml
import xmlschema

from payments.payouts.bank.pain001_reader import read_pain001

REPO = Path(__file__).resolve().parents[2]
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"


@dataclass(frozen=True)
class DemoRun:
    result: subprocess.CompletedProcess[str]
    out: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    tmp_path = tmp_path_factory.mktemp("demo")
    # a small Cyber Monday run told to leave its day under tmp_path
    command = [sys.executable, "-m", "payments.ops.cli", "demo", "--checkouts", "40", "--concurrency", "4"]
    command += ["--output-dir", str(tmp_path / "out")]
    # run to the end, its output piped (not a terminal), from another working directory
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    return DemoRun(result, tmp_path / "out")


def the_day(demo: DemoRun) -> Path:
    assert demo.result.returncode == 0, demo.result.stdout[-3000:] + demo.result.stderr[-3000:]
    named = re.search(r"The day, left behind in (\S+)/ ", demo.result.stdout)
    assert named, demo.result.stdout[-2000:]
    return Path(named.group(1))


def test_the_demo_leaves_its_reports_in_a_folder_it_names(demo: DemoRun) -> None:
    # Given a small Cyber Monday run, when it runs to the end,
    # then it names the folder, which still holds the day once the runtime is gone
    folder = the_day(demo)
    result = demo.result
    assert folder.parent == demo.out and folder.is_dir()
    day_files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    settlement = [f for f in day_files if re.fullmatch(r"incoming/simulated-psp/\d{4}-\d{2}-\d{2}\.csv", f)]
    assert len(settlement) == 1, day_files
    reports = {f for f in day_files if f.startswith(f"reports/{settlement[0]}")}
    assert {f"reports/{settlement[0]}{suffix}" for suffix in (".json", ".html", ".mismatches.csv")} <= reports
    # the saved files are the reconciliation's own: its JSON report names the file it reconciled
    report = json.loads((folder / f"reports/{settlement[0]}.json").read_text())
    assert report["source_key"] == settlement[0] and report["rows"] > 0
    assert json.loads((folder / "trial-balance.json").read_text())["currencies"]
    assert "RESULT: all invariants hold" in (folder / "summary.txt").read_text()
    # and says how to open the HTML report
    html = folder / f"reports/{settlement[0]}.html"
    assert re.search(rf"Open the report: (xdg-open|open) {re.escape(str(html))} ", result.stdout), result.stdout[-800:]

    # And the progress went to stderr as plain lines: no carriage-return frames in a log
    assert "\r" not in result.stderr and "\r" not in result.stdout
    assert re.search(r"submitted +\[#+\] 40/40", result.stderr), result.stderr[-800:]


def test_the_demos_payout_files_are_valid_and_each_payout_ends_as_its_iban_says(demo: DemoRun) -> None:
    folder = the_day(demo) / "bank"
    # Every pain.001 the demo's payout run wrote is left behind and valid against the pain.001.001.09 XSD
    files = sorted((folder / "outgoing" / "pain001").glob("*.xml"))
    assert files, sorted(p.as_posix() for p in folder.rglob("*"))
    schema = xmlschema.XMLSchema(str(XSD))
    fates: dict[str, str] = {}
    for file in files:
        content = file.read_bytes()
        schema.validate(content.decode())
        for tx in read_pain001(content).transactions:
            ending = tx.creditor_iban[-4:]
            fates[tx.end_to_end_id] = {"0001": "FAILED", "0002": "RETURNED"}.get(ending, "PAID")
    # one payout to the rejected test IBAN, one to the returned one, the rest to paid ones
    assert list(fates.values()).count("FAILED") == 1 and list(fates.values()).count("RETURNED") == 1, fates
    assert "PAID" in fates.values()

    # And the bank's files, reconciled with 0 mismatches, took each payout where its IBAN says
    reports = sorted((folder / "reports" / "incoming" / "bank").rglob("*.json"))
    kinds = {r.parent.name for r in reports}
    assert kinds == {"pain002", "camt053"}, reports
    ended: dict[str, str] = {}
    for path in reports:
        report = json.loads(path.read_text())
        assert report["mismatches"] == [], (path.name, report["mismatches"])
        for line in report["lines"]:
            if line["result"] == "APPLIED" and line.get("payout_id"):
                ended[line["payout_id"]] = line["status"]  # PAID then RETURNED: the statements in day order
    assert ended == fates

    # And the summary says so: one FAILED (AC01) and one RETURNED (AC04), their money back in available
    out = demo.result.stdout
    assert re.search(r"payouts by status: +FAILED 1, PAID \d+, RETURNED 1", out), out[-3000:]
    assert re.search(r"FAILED +seller_\d+: [\d.]+ EUR, rejected by the bank \(AC01\)", out)
    assert re.search(r"RETURNED seller_\d+: [\d.]+ EUR, sent back by the seller's bank \(AC04\)", out)
    assert out.count("its money back in available") == 2
    assert "(no payout rail for USD)" in out
    assert re.search(r"EUR +commission +[\d.]+ +PSP fees +[\d.]+ +result +-?[\d.]+", out)


def test_the_demo_counts_the_events_of_each_type_it_produced(demo: DemoRun) -> None:
    the_day(demo)
    out = demo.result.stdout
    # Given the demo's payments by status, and the events it says it produced
    by_status = re.search(r"Payments by status: (.*)", out)
    assert by_status, out[-2000:]
    statuses = {status: int(n) for status, n in re.findall(r"([A-Z_]+) (\d+)", by_status.group(1))}
    section = out[out.index("Events (payments events tail):") :]
    counted = {kind: int(n) for kind, n in re.findall(r"^  (payments\.[a-z_.]+) +(\d+)$", section, flags=re.MULTILINE)}
    # Then every checkout that was final then has its event (one that finished later has one too)
    for status in ("SUCCEEDED", "PARTIALLY_FAILED", "FAILED"):
        if statuses.get(status):
            assert statuses[status] <= counted.get(f"payments.payment.{status.lower()}", 0) <= 40, (status, counted)
    # and the money that moved back and the payouts were heard: refunds, a dispute's steps, payouts paid
    for kind in ("payments.refund.succeeded", "payments.dispute.chargeback", "payments.dispute.reversed"):
        assert counted.get(kind, 0) >= 1, (kind, counted)
    assert counted.get("payments.payout.paid", 0) >= 1 and counted.get("payments.reconciliation.completed", 0) >= 2
    totals = re.search(r"(\d+) events, (\d+) deliveries", section)
    assert totals, section
    events, deliveries = int(totals.group(1)), int(totals.group(2))
    assert events == sum(counted.values()) and deliveries >= events
