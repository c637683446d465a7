"""Money flowing back under chaos (payments_dev/chaos/money_back.py, issue 18): after a fixed-seed
pay-in run, concurrent refunds, crashes in the refund workflow (between the PSP's refund and the
wallet debit among them), duplicated / lost / late / out-of-order notifications, a notification
that beats the PSP's answer, chargebacks and reversals hold every invariant; with the
reservation's condition removed, or the refund's debit made non-idempotent, the harness reports it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository
from payments.refunds.repository import RefundsRepository
from payments_dev.chaos import harness
from payments_dev.chaos import schedule as s
from payments_dev.chaos.money_back import run_money_back
from payments_dev.chaos.schedule import PROFILES, FaultSchedule
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
    result = run_money_back(runtime.api_url, prefix, seed=11, out=lines.append, time_scale=0.1)
    # Then every check and every invariant holds, and the faults really happened
    assert result.ok, "\n".join(lines)
    assert result.orders > 5
    for kind in ("concurrent refunds", "chargeback", "reversal before its chargeback", "second chargeback"):
        assert result.faults[kind] > 0, result.faults
    # the refund workflow's own faults: crashes around the PSP's refund and the deciding transaction,
    # DynamoDB errors in its tasks, and every fate of the REFUND notification
    for kind in (
        s.REFUND_PSP_LOST_ANSWER,
        s.REFUND_PSP_OUTAGE,
        s.NOTIFICATION_FIRST,
        s.CRASH_AFTER,
        s.THROTTLE,
        *s.REFUND_NOTIFICATION_KINDS,
        s.REFUND_NOTIFICATION_CONTRADICTING,
        s.REFUND_NOTIFICATION_LATE,
    ):
        assert result.faults[kind] > 0, result.faults
    assert result.checks["invariant 8 (money back)"] > 0
    assert (
        result.checks[
            "a REFUND notification that beats the PSP's answer decides the refund; the answer changes nothing"
        ]
        > 0
    )
    assert result.checks["a refund whose PSP answer was lost is decided as the PSP decided it"] > 0


def test_refund_faults_are_decided_by_the_place_only() -> None:
    # Given two schedules of one seed for two runs (prefixes)
    one, other = FaultSchedule(7, prefix="cm7a"), FaultSchedule(7, prefix="cm7b")

    # When they decide the refund faults of the same logical refunds, whichever request won the race
    def decisions(schedule: FaultSchedule, prefix: str, winner: int) -> list[object]:
        return [
            (
                schedule.refund_psp_fault(f"{prefix}_po_{i}_0_rf{winner}", call),
                schedule.notification_first(f"{prefix}_po_{i}_0_rf{winner}"),
                schedule.refund_notification(f"{prefix}_po_{i}_0_rf{winner}"),
                schedule.refund_notification_after(f"{prefix}_po_{i}_0_rf{winner}"),
                schedule.lambda_fault("refund_apply", f"{prefix}_po_{i}_0_rf{winner}", call),
                schedule.ddb_fault("refund_execute", f"{prefix}_po_{i}_0_rf{winner}", call, 0, "TransactWriteItems"),
            )
            for i in range(300)
            for call in (1, 2)
        ]

    # Then they are the same, and every kind is drawn; a refund step is never persistent; the "none" profile injects nothing
    assert decisions(one, "cm7a", 0) == decisions(other, "cm7b", 3)
    drawn = {d for row in decisions(one, "cm7a", 0) for d in row}
    assert {
        s.REFUND_PSP_OUTAGE,
        s.REFUND_PSP_LOST_ANSWER,
        True,
        *s.REFUND_NOTIFICATION_KINDS,
        s.REFUND_NOTIFICATION_CONTRADICTING,
        s.REFUND_NOTIFICATION_LATE,
        s.CRASH_AFTER,
        s.THROTTLE,
    } <= drawn
    assert s.PERSISTENT not in {
        one.lambda_fault(step, f"cm7a_po_{i}_0_rf0", 1) for step in s.REFUND_STEPS for i in range(2000)
    }
    quiet = FaultSchedule(7, PROFILES["none"])
    assert {
        (
            quiet.refund_psp_fault(f"po_{i}_rf0", 1),
            quiet.notification_first(f"po_{i}_rf0"),
            quiet.refund_notification(f"po_{i}_rf0"),
            quiet.refund_notification_after(f"po_{i}_rf0"),
            quiet.lambda_fault("refund_execute", f"po_{i}_rf0", 1),
        )
        for i in range(500)
    } == {(None, False, None, None, None)}


def test_zz_removing_the_reservation_condition_is_reported(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the refund reservation without its bound (only the order's status is checked)
    monkeypatch.setattr(
        RefundsRepository,
        "reservation_condition",
        lambda self: "attribute_exists(pk) AND #status = :success AND (:zero = :zero) AND (:limit = :limit)",
    )
    prefix = _payin(runtime, 12)
    # When the money-back chaos runs
    result = run_money_back(runtime.api_url, prefix, seed=12, out=QUIET, time_scale=0.1)
    # Then the harness reports concurrent refunds accepted beyond the charge
    assert not result.ok
    assert any("exactly one of concurrent refunds" in v for v in result.violations), result.violations[:5]


def test_zz_a_refund_debit_that_is_not_idempotent_is_reported(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a refund outcome that every signal applies again (the PENDING gate removed) with a debit
    # and a reversing ledger transaction keyed per application, not per refund (blnk #152)
    monkeypatch.setattr(
        RefundsRepository, "decision_condition", lambda self: "attribute_exists(#status) AND (:pending = :pending)"
    )
    applied: dict[str, int] = {}

    def per_application(real):  # type: ignore[no-untyped-def]
        def items(self, adjustment_id, *args, **kwargs):  # type: ignore[no-untyped-def]
            if adjustment_id.startswith("refund:"):
                applied[f"{real.__qualname__}:{adjustment_id}"] = n = (
                    applied.get(f"{real.__qualname__}:{adjustment_id}", 0) + 1
                )
                adjustment_id = adjustment_id if n == 1 else f"{adjustment_id}#{n}"
            return real(self, adjustment_id, *args, **kwargs)

        return items

    monkeypatch.setattr(WalletRepository, "adjustment_items", per_application(WalletRepository.adjustment_items))
    monkeypatch.setattr(LedgerRepository, "adjustment_items", per_application(LedgerRepository.adjustment_items))
    prefix = _payin(runtime, 13)
    # When the money-back chaos runs (the notification that beats the PSP's answer, duplicated
    # deliveries and tasks, the lost answer's retry: each a second signal for one refund)
    result = run_money_back(runtime.api_url, prefix, seed=13, out=QUIET, time_scale=0.1)
    # Then invariant 8 reports the refunds that moved the wallet and the ledger more than once
    assert not result.ok
    assert any("invariant 8" in v and "refund:" in v for v in result.violations), result.violations[:5]


def test_zz_a_lost_refund_answer_taken_for_a_refusal_is_reported(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a refund workflow that takes a lost PSP answer (a read timeout) for a refusal instead
    # of asking again with the same refund_id: it releases the reservation of a refund the PSP made
    from payments.kernel.errors import PspOutcomeUnknown
    from payments.refunds import logic

    real = logic.execute_refund

    def gives_up(refund_id, refunds, psp):  # type: ignore[no-untyped-def]
        try:
            return real(refund_id, refunds, psp)
        except PspOutcomeUnknown:
            return {
                "refund_id": refund_id,
                "decided": False,
                "succeeded": False,
                "psp_reference": None,
                "reason": "timeout",
            }

    monkeypatch.setattr(logic, "execute_refund", gives_up)
    prefix = _payin(runtime, 14)
    # When the money-back chaos runs (the PSP refunds and its answer is lost, on a seeded share)
    result = run_money_back(runtime.api_url, prefix, seed=14, out=QUIET, time_scale=0.1)
    # Then invariant 8 reports the refunds made at the PSP and FAILED here
    assert result.faults[s.REFUND_PSP_LOST_ANSWER] > 0
    assert any("invariant 8" in v and "refunded at the PSP but FAILED here" in v for v in result.violations), (
        result.violations[:5]
    )


def test_the_money_back_phase_runs_on_the_adyen_fake_whose_notifications_arrive_by_themselves() -> None:
    # Given a runtime charging the local Adyen fake, which delivers its notifications by itself and
    # duplicates and reorders a share of them, after a settled fixed-seed pay-in run
    from payments_dev.local.adyen_fake import LocalAdyen

    runtime = LocalRuntime(port=free_port(), aws_port=free_port())
    adyen = LocalAdyen(runtime, duplicate=0.2, reorder=0.2, seed=15, time_scale=0.001)
    adyen.start()
    runtime.start()
    try:
        tag = "mb" + uuid.uuid4().hex[:6]
        config = harness.ChaosConfig(
            checkouts=CHECKOUTS,
            seed=15,
            time_scale=0.1,
            run_tag=tag,
            reconcile=False,
            checkouts_per_day=0,
            psp=adyen,
        )
        payin = harness.run(runtime.api_url, config, out=QUIET)
        assert payin.ok, payin.violations[:10]
        # When refunds race, disputes are raised at the fake, and every notification reaches the webhook
        # from the fake itself as well as from the harness (duplicated, lost, late, out of order)
        lines: list[str] = []
        result = run_money_back(
            runtime.api_url, f"cm15{tag}", seed=15, out=lines.append, time_scale=0.1, psp=adyen.record()
        )
        # Then every check and every invariant holds against the fake's own record
        assert result.ok, "\n".join(lines)
        assert result.orders > 5
        for kind in ("concurrent refunds", "chargeback", "reversal"):
            assert result.faults[kind] > 0, result.faults
        assert result.checks["invariant 8 (money back)"] > 0
        assert result.checks["the PSP's own notifications are all accepted by the webhook"] == 1
        delivery = adyen.fake.delivery
        assert delivery is not None
        by_kind = {(a.event, a.kind) for a in delivery.attempts if a.accepted}
        assert {("REFUND", "first"), ("CHARGEBACK", "first"), ("AUTHORISATION", "duplicate")} <= by_kind, by_kind
    finally:
        runtime.stop()
        adyen.stop()
