"""A Lambda environment's /tmp outlives an invocation that timed out: what it left is removed before the next one."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from functions.reconcile import handler as reconcile
from payments.reconciliation import service
from payments.reconciliation.service import WORK_PREFIXES, remove_stale_work

ROOT = Path(__file__).resolve().parents[2]


def _leftover(root: Path, prefix: str, size: int) -> Path:
    folder = root / f"{prefix}abc123"
    (folder / "spill").mkdir(parents=True)
    (folder / "spill" / "duckdb_temp_block-1.block").write_bytes(b"x" * size)
    return folder


def test_the_work_an_earlier_invocation_left_is_removed_and_nothing_else(tmp_path: Path) -> None:
    # Given the leftovers of a reconciliation killed mid-way, and files that are not ours
    for prefix in WORK_PREFIXES:
        _leftover(tmp_path, prefix, 1000)
    (tmp_path / "extension-cache").mkdir()
    (tmp_path / "reconcile-notes.txt").write_text("a file, not a work folder")
    (tmp_path / "settlement-link").symlink_to(tmp_path / "extension-cache")
    # When the stale work is removed
    folders, size = remove_stale_work(tmp_path)
    # Then every work folder is gone, counted with its bytes, and the rest stays
    assert (folders, size) == (len(WORK_PREFIXES), 1000 * len(WORK_PREFIXES))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extension-cache", "reconcile-notes.txt", "settlement-link"]
    assert remove_stale_work(tmp_path / "absent") == (0, 0)


def test_every_folder_a_reconciliation_creates_is_one_the_clean_up_knows() -> None:
    # Given every temporary folder the reconciliation's code creates (its prefix= argument)
    prefixes = set()
    for path in (ROOT / "payments" / "reconciliation").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("TemporaryDirectory", "mkdtemp"):
                prefix = next((k.value for k in node.keywords if k.arg == "prefix"), None)
                assert isinstance(prefix, ast.Constant), f"{path.name}:{node.lineno}: a temporary folder with no prefix"
                prefixes.add(prefix.value)
    # Then each is one the clean-up removes (a new one must be added to WORK_PREFIXES)
    assert prefixes and prefixes <= set(WORK_PREFIXES), prefixes - set(WORK_PREFIXES)


@pytest.mark.parametrize("in_lambda", [True, False])
def test_the_handler_clears_stale_work_only_in_a_lambda_environment(
    in_lambda: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a leftover in the temp directory, in a Lambda environment (its runtime API set) or in the local runtime
    leftover = _leftover(tmp_path, "reconcile-", 4096)
    monkeypatch.setattr(reconcile.tempfile, "gettempdir", lambda: str(tmp_path))
    if in_lambda:
        monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    else:
        monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    # When an invocation starts
    with caplog.at_level(logging.WARNING):
        reconcile._clear_stale_work()
    # Then in Lambda the leftover is removed and said; locally (invocations side by side in one process) it stays
    assert leftover.exists() is not in_lambda
    assert ("removed the work an earlier invocation left" in caplog.text) is in_lambda
    assert service.remove_stale_work is reconcile.remove_stale_work
