"""Money flowing back under chaos (payments_dev/chaos/money_back.py, issue 18): after a fixed-seed
pay-in run, concurrent refunds, duplicated / lost / late / out-of-order notifications,
chargebacks and reversals hold every invariant; with the reservation's condition removed the
harness reports it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from payments.refunds.repository import RefundsRepository
from payments_dev.chaos import harness
from payments_dev.chaos.money_back import run_money_back
from payments_dev.local.runtime import LocalRuntime, free_port

CHECKOUTS = 40
QUIET = lambda line: None  # noqa: E731


@pytest.fixture()
def runtime() -> Iterator[LocalRuntime]:
    """A runtime of its own per test (moto is reset at its start): each audit reads only its own
    data, and a protection removed in one test leaves nothing behind for another."""
    with LocalRuntime(port=free_port(), aws_port=free_port()) as rt:
        yield rt


def _payin(runtime: LocalRuntime, seed: int) -> str:
    tag = "mb" + uuid.uuid4().hex[:6]
    config = harness.ChaosConfig(checkouts=CHECKOUTS, seed=seed, time_scale=0.1, run_tag=tag, reconcile=False)
    result = harness.run(runtime.api_url, config, out=QUIET)
    assert result.ok, result.violations[:10]
    return f"cm{seed}{tag}"


def test_refunds_notifications_and_chargebacks_under_chaos_hold_every_invariant(runtime: LocalRuntime) -> None:
    # Given a settled fixed-seed pay-in run
    prefix = _payin(runtime, 11)
    # When refunds race, notifications are duplicated, lost, late and out of order, and chargebacks land
    lines: list[str] = []
    result = run_money_back(runtime.api_url, prefix, seed=11, out=lines.append)
    # Then every check and every invariant holds, and the faults really happened
    assert result.ok, "\n".join(lines)
    assert result.orders > 5
    for kind in ("concurrent refunds", "chargeback", "reversal before its chargeback", "REFUND notification duplicated"):
        assert result.faults[kind] > 0, result.faults
    assert result.checks["invariant 8 (money back)"] > 0


def test_zz_removing_the_reservation_condition_is_reported(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the refund reservation without its bound (only the order's status is checked)
    monkeypatch.setattr(
        RefundsRepository,
        "reservation_condition",
        lambda self: "attribute_exists(pk) AND #status = :success AND (:zero = :zero) AND (:limit = :limit)",
    )
    prefix = _payin(runtime, 12)
    # When the money-back chaos runs
    result = run_money_back(runtime.api_url, prefix, seed=12, out=QUIET)
    # Then the harness reports concurrent refunds accepted beyond the charge
    assert not result.ok
    assert any("exactly one of concurrent refunds" in v for v in result.violations), result.violations[:5]
