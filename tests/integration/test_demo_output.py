"""``payments demo`` leaves its day behind: the reports outlive the runtime, and a log gets no progress frames.

Its own process (the demo owns a local runtime of its own), run as a cron job or CI would: stdout
and stderr are pipes, not a terminal.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_leaves_its_reports_in_a_folder_it_names(tmp_path: Path) -> None:
    # Given a small Cyber Monday run told to leave its day under tmp_path
    command = [sys.executable, "-m", "payments.ops.cli", "demo", "--checkouts", "12", "--concurrency", "4"]
    command += ["--output-dir", str(tmp_path / "out")]
    # When it runs to the end, its output piped (not a terminal), from another working directory
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # Then it names the folder, which still holds the day once the runtime is gone
    named = re.search(r"The day, left behind in (\S+)/ ", result.stdout)
    assert named, result.stdout[-2000:]
    folder = Path(named.group(1))
    assert folder.parent == tmp_path / "out" and folder.is_dir()
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
    assert re.search(r"submitted +\[#+\] 12/12", result.stderr), result.stderr[-800:]
