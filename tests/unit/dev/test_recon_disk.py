"""The reconcile function's disk bench holds every measurement that matters to the budget the storage is sized from."""

from __future__ import annotations

from typing import Any

from payments.reconciliation.model import MERGE_TMP_PER_FILE_BYTE, SINGLE_PASS_TMP_PER_FILE_BYTE
from payments_dev.bench import recon_disk


def row(path: str, charges: int, ratio: float, left: list[str] | None = None) -> dict[str, Any]:
    file_bytes = 1_000_000_000
    return {
        "path": path,
        "charges": charges,
        "file_bytes": file_bytes,
        "peak_bytes": int(file_bytes * ratio),
        "cpu_seconds": 1.0,
        "matched": 1,
        "left_behind": left or [],
    }


def test_a_peak_above_its_budget_at_a_real_size_fails_the_run_and_says_so() -> None:
    # Given measurements at and past the budgets the storage is sized from, at a day of 1M charges
    within = row("merge", 1_000_000, MERGE_TMP_PER_FILE_BYTE - 0.01)
    over = row("single pass", 10_000_000, SINGLE_PASS_TMP_PER_FILE_BYTE + 0.01)
    # When they are judged and reported
    lines, ok = recon_disk.report([within, over])
    # Then the run fails, and the line of the one over says so
    assert not ok
    assert "(within the budget)" in lines[2] and "(OVER the budget)" in lines[3]
    assert recon_disk.report([within])[1]


def test_a_tiny_day_is_not_held_to_the_budget_but_work_left_in_tmp_always_fails() -> None:
    # Given a tiny day (fixed costs dominate its ratio), once clean and once leaving a folder behind
    tiny = row("merge", recon_disk.QUICK_CHARGES, 9.0)
    leaky = row("merge", recon_disk.QUICK_CHARGES, 0.5, left=["reconcile-abc"])
    # Then the first passes, said to be unheld, and the second fails, naming the folder
    assert recon_disk.judge(tiny) == (9.0, "not held to the budget (too small)", True)
    assert recon_disk.judge(leaky) == (0.5, "work left in /tmp: reconcile-abc", False)
