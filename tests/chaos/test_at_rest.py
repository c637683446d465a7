"""The audit of a chaos run reads the tables while nothing writes them (CI flake of 2026-12-07: a re-drive
raced the audit after the run).

Two writers the harness's pause of its recovery schedule did not stop:

* the recovery schedule of *another* runtime of the process (the chaos package's shared runtime, alive while
  test_money_back started its own): it invokes the recovery through the process-wide dispatcher and
  environment, so it re-drove the newer runtime's parked payments during the audit;
* a task invocation whose state timed out: it goes on running, and writes, after its execution moved on.
"""

from __future__ import annotations

import threading
import time

import pytest

from functions import registry
from payments_dev.chaos import harness
from payments_dev.local.lambdas import DISPATCHER
from payments_dev.local.runtime import LocalRuntime, free_port

RECOVERY = registry.RECOVERY.local_name


def test_only_the_current_runtime_runs_its_recovery_schedule() -> None:
    # Given a runtime still alive when another one is started in the same process
    with LocalRuntime(port=free_port(), aws_port=free_port()) as older:
        with LocalRuntime(port=free_port(), aws_port=free_port()) as newer:
            before = DISPATCHER.invocations.get(RECOVERY, 0)
            # When the older runtime's schedule ticks
            ran = older.recovery.run_now(only_if_enabled=True)
            # Then it invokes nothing (the process's environment is the newer runtime's)
            assert ran is None
            assert DISPATCHER.invocations.get(RECOVERY, 0) == before
            # and the newer runtime's schedule runs as before
            assert newer.recovery.run_now(only_if_enabled=True) is not None
            assert DISPATCHER.invocations.get(RECOVERY, 0) == before + 1
        # once the newer one stopped, the older one's schedule still does nothing: moto's state it knew was reset
        assert older.recovery.run_now(only_if_enabled=True) is None


@pytest.fixture()
def slow_ledger(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The ledger's handler replaced by one that runs until the returned event is set."""
    release = threading.Event()

    def handler(event: object, context: object) -> dict[str, str]:
        release.wait(10)
        return {"status": "written late"}

    monkeypatch.setitem(DISPATCHER._handlers, registry.LEDGER.local_name, handler)
    monkeypatch.setattr(harness, "_running_executions", lambda: 0)  # its execution has ended
    return release


def test_the_audit_waits_for_an_invocation_that_outlived_its_execution(slow_ledger: threading.Event) -> None:
    # Given a ledger invocation still running after its execution ended (its state timed out)
    finished: list[float] = []

    def invoke() -> None:
        DISPATCHER.invoke(registry.LEDGER.local_name, {})
        finished.append(time.monotonic())

    invocation = threading.Thread(target=invoke)
    invocation.start()
    threading.Timer(1.0, slow_ledger.set).start()
    result = harness.ChaosResult(harness.ChaosConfig())
    # When the harness waits for the system to come to rest
    harness._wait_at_rest(harness._Checks(result), timeout=10)
    returned = time.monotonic()
    invocation.join()
    # Then it returned only after the invocation had finished, and says the system came to rest
    assert finished and finished[0] <= returned
    assert result.ok, result.violations


def test_a_system_that_never_comes_to_rest_is_a_violation_naming_what_runs(slow_ledger: threading.Event) -> None:
    # Given an invocation that runs longer than the harness waits
    invocation = threading.Thread(target=DISPATCHER.invoke, args=(registry.LEDGER.local_name, {}))
    invocation.start()
    try:
        result = harness.ChaosResult(harness.ChaosConfig())
        # When the harness waits for rest, briefly
        harness._wait_at_rest(harness._Checks(result), timeout=1.5)
    finally:
        slow_ledger.set()
        invocation.join()
    # Then the run is not ok, and the finding names the function in flight
    assert not result.ok
    assert any(registry.LEDGER.local_name in v and "comes to rest" in v for v in result.violations), result.violations
