"""``payments serve`` is quiet: the functions log below WARNING only with ``--verbose`` (``quiet=False``).

The functions' logger is made when a process first imports it, before the runtime sets its level:
the runtime applies its level to that logger, so a scheduled recovery run prints no INFO line.
"""

from __future__ import annotations

import logging

import pytest

from payments.kernel.observability import logger
from payments_dev.local.runtime import LocalRuntime


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_a_recovery_run_logs_nothing_on_a_quiet_runtime(
    runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the quiet runtime (as payments serve without --verbose)
    assert runtime.quiet and logger.log_level == logging.WARNING
    caplog.clear()
    # When the schedule runs the recovery function
    runtime.recovery.run_now()
    # Then it logs nothing
    assert "recovery run" not in _logged(caplog)


def test_at_info_the_same_run_is_logged(runtime: LocalRuntime, caplog: pytest.LogCaptureFixture) -> None:
    # the check above can fail: at INFO (what --verbose sets) the same run logs its line
    logger.setLevel(logging.INFO)
    try:
        caplog.clear()
        runtime.recovery.run_now()
    finally:
        logger.setLevel(logging.WARNING)
    assert "recovery run" in _logged(caplog)
