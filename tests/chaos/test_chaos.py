"""The chaos harness in CI: a fixed-seed run must hold every invariant, and the harness
must catch a system whose protection was removed.

The tests share one runtime and the invariants are checked over *all* stored data, so
the test that breaks a protection runs last (it leaves corrupted balances behind).
Size: ``CHAOS_CHECKOUTS`` (default 120; the ASL's retry waits and timeouts run at a
tenth of real time).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import timedelta

import pytest

from payments.accounts.wallet import CreditResult, WalletRepository, shard_of
from payments.kernel.dynamo import to_item, to_values
from payments_dev.chaos import harness
from payments_dev.chaos import schedule as s
from payments_dev.chaos.schedule import PROFILES, FaultProfile, FaultSchedule
from payments_dev.demo import build_scenario
from payments_dev.local.runtime import LocalRuntime

CHECKOUTS = int(os.environ.get("CHAOS_CHECKOUTS", "120"))
SEED = 7
TIME_SCALE = 0.1
QUIET = lambda line: None  # noqa: E731


def tag() -> str:
    return "x" + uuid.uuid4().hex[:6]


# --- the schedule ---------------------------------------------------------------------------
def test_same_seed_gives_the_same_schedule_whatever_the_run_prefix() -> None:
    # Given the same seed and scenario built under two different run prefixes
    first, second = build_scenario(40, SEED, run_id="a1"), build_scenario(40, SEED, run_id="b2")
    # When the schedule of each is digested
    one = FaultSchedule(SEED, FaultProfile(), prefix=f"cm{SEED}a1").digest(first.checkouts)
    two = FaultSchedule(SEED, FaultProfile(), prefix=f"cm{SEED}b2").digest(second.checkouts)
    other = FaultSchedule(SEED + 1, FaultProfile(), prefix=f"cm{SEED}a1").digest(first.checkouts)
    # Then the digests agree, and another seed gives another schedule
    assert one == two
    assert one[0] != other[0]
    assert sum(one[1].values()) > 0


def test_a_decision_depends_on_the_place_only() -> None:
    schedule = FaultSchedule(SEED, PROFILES["heavy"])
    decisions = [schedule.lambda_fault("wallet", f"po_{i}", a) for i in range(200) for a in (1, 2)]
    assert decisions == [schedule.lambda_fault("wallet", f"po_{i}", a) for i in range(200) for a in (1, 2)]
    assert {d for d in decisions if d} >= {s.CRASH_BEFORE, s.CRASH_AFTER, s.DUPLICATE, s.RACE}


def test_settlement_file_faults_are_decided_by_the_files_place_in_the_run() -> None:
    # Given a schedule whose run settled 400 PSP days (two files named after their dates)
    schedule = FaultSchedule(SEED, FaultProfile())
    schedule.settlement_days = {"settlements/2026-11-02.csv": 3, "other-run/settlements/2027-01-09.csv": 3}
    # Then two files at the same place get the same decisions, whatever their dates
    for attempt in (1, 2, 3):
        assert schedule.reconcile_crash("settlements/2026-11-02.csv", attempt) == schedule.reconcile_crash(
            "day#3", attempt
        )
    assert schedule.s3_duplicates("other-run/settlements/2027-01-09.csv") == schedule.s3_duplicates("day#3")
    crashes = [[schedule.reconcile_crash(f"day#{i}", a) for a in (1, 2, 3)] for i in range(400)]
    # and an attempt crashes only if the ones before it did, never the last of Lambda's three
    assert all(c[2] is None and (c[1] is None or c[0] is not None) for c in crashes)
    assert {c for row in crashes for c in row if c} == set(s.RECONCILE_CRASH_POINTS)
    first, second = sum(c[0] is not None for c in crashes), sum(c[1] is not None for c in crashes)
    assert 0.8 * 400 < first < 400 and 0.3 * 400 < second < 0.5 * 400  # rates 0.9 and 0.9 x 0.45
    duplicates = [schedule.s3_duplicates(f"day#{i}") for i in range(400)]
    assert set(duplicates) == {1, 2} and 150 < duplicates.count(2) < 250  # rate 1.0: a third delivery half the time
    # and the `none` profile injects neither
    quiet = FaultSchedule(SEED, PROFILES["none"])
    assert {quiet.reconcile_crash(f"day#{i}", 1) for i in range(50)} == {None}
    assert {quiet.s3_duplicates(f"day#{i}") for i in range(50)} == {0}


def test_the_digest_counts_the_settlement_faults_of_every_day() -> None:
    scenario = build_scenario(10, SEED, run_id="a1")
    schedule = FaultSchedule(SEED, FaultProfile(), prefix=f"cm{SEED}a1")
    digest_1, planned_1 = schedule.digest(scenario.checkouts, days=1)
    digest_30, planned_30 = schedule.digest(scenario.checkouts, days=30)
    assert digest_1 != digest_30
    assert planned_30[s.S3_DUPLICATE] == sum(schedule.s3_duplicates(f"day#{i}") for i in range(30))
    assert planned_30[s.RECONCILE_CRASH] == sum(
        bool(schedule.reconcile_crash(f"day#{i}", a)) for i in range(30) for a in (1, 2, 3)
    )
    assert planned_30[s.RECONCILE_CRASH] > planned_1.get(s.RECONCILE_CRASH, 0)


# --- the runbook tools -------------------------------------------------------------------------
def test_parked_orders_are_listed_by_stuck_and_settled_by_resume(runtime: LocalRuntime) -> None:
    from payments.ops.operations import find_stuck, parse_duration

    # Given checkouts whose wallet step fails on every attempt (retries exhausted: parked)
    profile = dataclasses.replace(PROFILES["none"], persistent=1.0, steps=("wallet",))
    config = harness.ChaosConfig(
        checkouts=3, seed=SEED, profile=profile, time_scale=TIME_SCALE, run_tag=tag(), reconcile=False
    )
    # When the harness runs (it audits, lists stuck payments, resumes them, audits again)
    result = harness.run(runtime.api_url, config, out=QUIET)
    # Then every successful order was parked, listed, resumed, and the audit is clean
    assert result.faults[s.PERSISTENT] > 0
    assert result.parked and result.resumed, result
    assert result.ok, "\n".join(result.violations)
    assert result.checks["payments resume settles a parked checkout"] == len(result.resumed)
    assert not [p for p in find_stuck(timedelta(0)) if p.parked]
    assert parse_duration("15m") == timedelta(minutes=15) and parse_duration("90") == timedelta(seconds=90)


# --- automatic recovery of the Express workflow -----------------------------------------------------
EXPRESS_FAULTS = dataclasses.replace(PROFILES["none"], start_crash=0.35, express_twice=0.3, express_lost=0.35)


def test_express_faults_end_final_without_an_operator(runtime: LocalRuntime) -> None:
    # Given payment functions that crash before starting (the client never retries), executions run
    # twice, executions lost midway, and a recovery deadline of 3 s
    config = harness.ChaosConfig(
        checkouts=12,
        seed=SEED,
        profile=EXPRESS_FAULTS,
        time_scale=TIME_SCALE,
        run_tag=tag(),
        reconcile=False,
        recovery_delay=3.0,
        recovery_interval=0.5,
        settle_timeout=90,
    )
    lines: list[str] = []
    # When the harness runs
    result = harness.run(runtime.api_url, config, out=lines.append)
    # Then every kind was injected, the recovery re-drove the checkouts left behind, and no check failed
    assert (
        result.faults[s.START_CRASH] > 0 and result.faults[s.EXPRESS_TWICE] > 0 and result.faults[s.EXPRESS_LOST] > 0
    ), result.faults
    assert result.redriven, "\n".join(lines)
    assert result.ok, "\n".join(lines)
    assert result.checks["a checkout ends final or NEEDS_ATTENTION without an operator's command"] == 12


def test_without_the_recovery_a_crashed_start_is_reported(runtime: LocalRuntime) -> None:
    # Given a payment function that crashes after storing every checkout, before starting its workflow,
    # clients that never retry, and the recovery switched off (the protection removed)
    profile = dataclasses.replace(PROFILES["none"], start_crash=1.0)
    config = harness.ChaosConfig(
        checkouts=3,
        seed=SEED,
        profile=profile,
        time_scale=TIME_SCALE,
        run_tag=tag(),
        reconcile=False,
        recovery=False,
        settle_timeout=8,
    )
    lines: list[str] = []
    # When the harness runs
    result = harness.run(runtime.api_url, config, out=lines.append)
    # Then it reports every checkout left unfinished without an operator's command
    assert result.faults[s.START_CRASH] == 3
    assert not result.ok
    assert sum("without an operator's command" in v for v in result.violations) == 3, "\n".join(lines)
    assert not result.redriven


# --- the proof ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_fixed_seed_chaos_run_holds_every_invariant(runtime: LocalRuntime) -> None:
    # Given the default fault profile and a fixed seed
    lines: list[str] = []
    config = harness.ChaosConfig(
        checkouts=CHECKOUTS, seed=SEED, time_scale=TIME_SCALE, run_tag=tag(), settle_timeout=240
    )
    # When CHECKOUTS checkouts go through the real ASL under that schedule
    result = harness.run(runtime.api_url, config, out=lines.append)
    # Then faults of every family were injected ...
    kinds = set(result.faults)
    for family in (
        {s.CRASH_BEFORE, s.CRASH_AFTER},
        {s.DUPLICATE, s.RACE},
        {s.THROTTLE, s.TXN_CONFLICT},
        {s.PSP_LOST_ANSWER},
        {s.PSP_OUTAGE},
        {s.LATE_CONTRADICTING},
        {s.RECONCILE_CRASH},
        {s.S3_DUPLICATE},
    ):
        assert kinds & family, (family, result.faults)
    # ... and no check failed (the report is the assertion message)
    assert result.ok, "\n".join(lines)
    # and every simulated PSP day was settled into its own file and reconciled (6 checkouts a day)
    days = -(-CHECKOUTS // config.checkouts_per_day)
    assert result.checks["reconciliation: zero mismatches after a clean day (invariant 7)"] == days
    assert result.checks["each injected reconciliation crash was retried by Lambda (attempts = crashes + 1)"] == days
    # and the schedule is the one the seed names
    again = FaultSchedule(SEED, FaultProfile(), prefix=f"cm{SEED}{config.run_tag}").digest(
        build_scenario(CHECKOUTS, SEED, run_id=config.run_tag).checkouts, days=days
    )
    assert again[0] == result.schedule_digest


def _credit_without_marker_condition(self: WalletRepository, order) -> CreditResult:  # type: ignore[no-untyped-def]
    """WalletRepository.credit with its protection removed: the marker put is unconditional."""
    shard = shard_of(order.payment_order_id, self.shards)
    marker = {
        "pk": f"CREDIT#{order.payment_order_id}",
        "sk": "CREDIT",
        "payment_order_id": order.payment_order_id,
        "seller_account": order.seller_account,
        "currency": order.currency,
        "amount_minor": order.amount_minor,
        "shard": shard,
    }
    self.ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": self.table, "Item": to_item(marker)}},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {
                        "pk": {"S": f"WALLET#{order.seller_account}#{shard}"},
                        "sk": {"S": f"CCY#{order.currency}"},
                    },
                    "UpdateExpression": "ADD balance_minor :amount, credits :one SET seller_account = :seller, currency = :ccy",
                    "ExpressionAttributeValues": to_values(
                        {
                            ":amount": order.amount_minor,
                            ":one": 1,
                            ":seller": order.seller_account,
                            ":ccy": order.currency,
                        }
                    ),
                }
            },
            self.payments.order_flag_update(order.payment_order_id, "wallet_updated"),
        ]
    )
    return CreditResult(order.payment_order_id, applied=True, shard=shard)


def test_zz_removing_the_wallet_protection_is_reported(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs last: it corrupts the wallets table on purpose."""
    # Given a wallet whose exactly-once marker condition was dropped
    monkeypatch.setattr(WalletRepository, "credit", _credit_without_marker_condition)
    # and wallet tasks delivered twice (in sequence or concurrently)
    profile = dataclasses.replace(PROFILES["none"], duplicate=0.5, race=0.3, steps=("wallet",))
    lines: list[str] = []
    config = harness.ChaosConfig(checkouts=12, seed=SEED, profile=profile, time_scale=TIME_SCALE, run_tag=tag())
    # When the harness runs
    result = harness.run(runtime.api_url, config, out=lines.append)
    # Then it reports the double credits: wallet != ledger projection (invariant 4)
    assert result.faults[s.DUPLICATE] + result.faults[s.RACE] > 0
    assert not result.ok
    assert 4 in result.violated_invariants(), "\n".join(lines)
    assert any("wallets equal the ledger" in v for v in result.violations), "\n".join(lines)


@pytest.mark.slow
def test_the_chaos_command_holds_every_invariant_against_the_adyen_fake() -> None:
    """Its own process: ``payments chaos --psp adyen-fake`` starts its own runtime and Adyen fake."""
    import subprocess
    import sys
    from pathlib import Path

    # Given the chaos command with the executor charging the local Adyen fake over HTTP
    command = [
        sys.executable,
        "-m",
        "payments.ops.cli",
        "chaos",
        "--psp",
        "adyen-fake",
        "--checkouts",
        "12",
        "--seed",
        str(SEED),
        "--time-scale",
        str(TIME_SCALE),
        "--timeout",
        "240",
    ]
    # When it runs (faults at every step, the PSP's answers lost after a charge among them)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=Path(__file__).resolve().parents[2]
    )
    out = done.stdout + done.stderr
    # Then every invariant held, including "at most one PSP charge per order" read from the fake's own record
    assert done.returncode == 0, out[-4000:]
    assert "RESULT: no violations" in out
    assert "psp_lost_answer" in out and "invariant 1 (final)" in out
    # and the fake received only requests valid against Adyen's Checkout spec, and settled its day
    assert ", 0 invalid against the Checkout spec" in out
    assert "wrote incoming/adyen/" in out and "reconciliation: zero mismatches after a clean day (invariant 7)" in out
