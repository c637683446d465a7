"""Payouts under chaos (payments_dev/chaos/payouts.py, issue 25): after a fixed-seed pay-in run whose charges
are settled and reconciled, the run's sellers are paid while payouts race each other and a chargeback, the
payout run crashes around its pain.001, the bank gets a file twice and its pain.002 comes twice, late or
never, and payouts are returned after they were paid. Every invariant holds; with the reservation's
condition removed, the harness reports payouts beyond available."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from payments.accounts import balances
from payments.payouts import repository
from payments_dev.chaos import harness
from payments_dev.chaos import schedule as s
from payments_dev.chaos.payouts import PAYOUT_FAULT_KINDS, PayoutsResult, run_payouts
from payments_dev.chaos.schedule import PROFILES, FaultSchedule
from payments_dev.local.runtime import LocalRuntime, free_port

CHECKOUTS = 60
QUIET = lambda line: None  # noqa: E731


@pytest.fixture()
def runtime() -> Iterator[LocalRuntime]:
    """A runtime of its own per test: each audit reads only its own data, and the protection removed in one
    test leaves nothing behind for another."""
    with LocalRuntime(port=free_port(), aws_port=free_port()) as rt:
        yield rt


def _paid_in(runtime: LocalRuntime, seed: int) -> str:
    """A fixed-seed pay-in run, its charges settled and reconciled (two PSP days): its prefix."""
    tag = "po" + uuid.uuid4().hex[:4]
    config = harness.ChaosConfig(
        checkouts=CHECKOUTS, seed=seed, time_scale=0.1, run_tag=tag, checkouts_per_day=CHECKOUTS // 2
    )
    result = harness.run(runtime.api_url, config, out=QUIET)
    assert result.ok, result.violations[:10]
    return f"cm{seed}{tag}"


def _payouts(runtime: LocalRuntime, seed: int) -> tuple[PayoutsResult, list[str]]:
    prefix = _paid_in(runtime, seed)
    lines: list[str] = []
    return run_payouts(runtime.api_url, prefix, seed=seed, out=lines.append, timeout=120.0), lines


def test_sellers_are_paid_under_chaos_and_every_invariant_holds(runtime: LocalRuntime) -> None:
    # When the run's sellers are paid while everything around their payouts goes wrong
    result, lines = _payouts(runtime, 21)
    # Then every check and every invariant holds
    assert result.ok, "\n".join(lines)
    # and every payout fault really happened, and every final status was reached
    assert result.rounds == 6 and result.sellers >= result.rounds, "\n".join(lines)
    assert {kind: result.faults[kind] for kind in PAYOUT_FAULT_KINDS if not result.faults[kind]} == {}, result.faults
    assert {"PAID", "FAILED", "RETURNED"} <= set(result.by_status), result.by_status
    assert result.checks["invariant 10 (payouts)"] > 0 and result.checks["invariant 11 (payouts)"] > 0
    for name in (
        "of concurrent payouts of more than half the available, at most one is accepted (202)",
        "a camt.053 before its pain.002 pays the payout",
        "a payout whose RJCT pain.002 has not arrived is not final",
        "a pain.001 delivered twice is refused by the bank as a repeated MsgId (RJCT)",
        "a payout run run again after a crash after its file completes that file and writes it no second time",
        "each payout is in exactly one pain.001 (the file written once)",
        "a returned payout's account is marked invalid",
    ):
        assert result.checks[name] > 0, name


def test_payout_rounds_meet_every_fault_kind_in_turn() -> None:
    # Given the schedule of a seed
    schedule = FaultSchedule(21)
    # When it decides six rounds
    rounds = [schedule.payout_round(i) for i in range(6)]
    # Then every crash and every pain.002 fate comes in turn, and the pain.001 twice; the same again
    assert {crash for crash, _, _ in rounds} >= set(s.PAYOUT_RUN_CRASHES)
    assert {fate for _, fate, _ in rounds} >= set(s.PAIN002_FATES)
    assert {twice for _, _, twice in rounds} == {True, False}
    assert rounds == [FaultSchedule(21, prefix="cm21other").payout_round(i) for i in range(6)]
    # and the "none" profile meets none
    assert {FaultSchedule(21, PROFILES["none"]).payout_round(i) for i in range(12)} == {(None, None, False)}


def test_zz_removing_the_reservation_condition_is_reported(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a reservation without its bound: available -= amount whatever available holds
    real = balances.reserve_update

    def unbounded(table, seller_account, amount):  # type: ignore[no-untyped-def]
        update = real(table, seller_account, amount)
        update["Update"]["ConditionExpression"] = "attribute_exists(pk)"
        return update

    monkeypatch.setattr(balances, "reserve_update", unbounded)
    monkeypatch.setattr(repository, "reserve_update", unbounded)  # the name the payouts repository calls
    # When the run's sellers are paid
    result, lines = _payouts(runtime, 22)
    # Then the harness reports concurrent payouts accepted beyond available, and invariant 10 the payouts
    # that took more than the seller had
    assert not result.ok
    names = {v.split("]", 1)[0] + "]" for v in result.violations}
    assert "[of concurrent payouts of more than half the available, at most one is accepted (202)]" in names, lines
    assert "[concurrent payouts never reserve more than available]" in names, lines
    assert 10 in result.invariants_violated, lines
    # and nothing else: the rest of the books still agree with what was (wrongly) paid
    assert names <= {
        "[of concurrent payouts of more than half the available, at most one is accepted (202)]",
        "[concurrent payouts never reserve more than available]",
        "[invariant 10, payouts]",
    }, (names, "\n".join(lines))
