"""The demo's progress bar and the folder it leaves its day in, without a runtime."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from pathlib import Path

from payments_dev.demo import _bar, how_to_open, output_folder


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _draw(stream: io.StringIO, total: int = 42) -> str:
    started = time.monotonic()
    for done in range(1, total + 1):
        _bar(done, total, started, "submitted", stream=stream)
    return stream.getvalue()


def test_progress_into_a_log_has_no_carriage_return_frames() -> None:
    # Given stderr that is not a terminal (a log file, a pipe, CI)
    # When the demo draws its progress over 42 steps
    written = _draw(io.StringIO())
    # Then the log holds one plain line, the phase's end, and no frame redrawn with '\r'
    assert "\r" not in written
    assert written.count("\n") == 1 and "42/42" in written and "1/42" not in written


def test_progress_on_a_terminal_is_redrawn_in_place() -> None:
    # Given stderr that is a terminal
    # When the demo draws its progress over 42 steps
    written = _draw(_Terminal())
    # Then every step redraws the same line, and the phase ends with one newline
    assert written.count("\r") == 42 and written.count("\n") == 1 and written.endswith("/s)\n")
    assert written.split("\r")[-1].startswith("  submitted  [" + "#" * 40 + "] 42/42")


def test_each_run_gets_a_folder_of_its_own(tmp_path: Path) -> None:
    # Given two runs in the same second
    now = datetime(2026, 11, 30, 21, 5, 9, tzinfo=UTC)
    # When each asks for its folder
    first, second = output_folder(tmp_path, now), output_folder(tmp_path, now)
    # Then they are two folders, named after the UTC time, the second never overwriting the first
    assert first.name == "20261130T210509Z" and second.name == "20261130T210509Z-2"
    assert first.is_dir() and second.is_dir()


def test_the_open_line_names_the_platforms_opener_and_a_web_server() -> None:
    report = Path("demo-output/20261130T210509Z/reports/incoming/simulated-psp/2026-11-30.csv.html")
    linux, mac = how_to_open(report, "linux"), how_to_open(report, "darwin")
    assert f"xdg-open {report}" in linux and f"open {report}" in mac and "xdg-open" not in mac
    assert f"python3 -m http.server -d {report.parent} 8000" in linux and report.name in linux
