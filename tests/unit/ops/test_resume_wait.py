"""How `payments resume` tells the outcome of an Express re-run from the payments table (payments/ops/operations.py).

An Express execution has no DescribeExecution: the resume watches the payment. The orders it was
started for are still flagged from before until the re-run settles them, and other writers touch the
payment meanwhile (the recovery's re-drive claims it). Only the payment done, or an order parked
again after the resume started, is the re-run's outcome.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from payments.kernel import clock
from payments.ops.operations import wait_payment
from payments.payin.status import PaymentStatus
from tests.unit.conftest import Repos, store_checkout


@pytest.fixture(autouse=True)
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reading of the clock is one millisecond after the last (stored times have milliseconds),
    so "before the resume started" and "after" are told apart without sleeping."""
    start, ticks = datetime(2026, 12, 2, 12, 0, tzinfo=UTC), itertools.count()
    monkeypatch.setattr(clock, "now", lambda: start + timedelta(milliseconds=next(ticks)))


def _parked_checkout(repos: Repos) -> str:
    store_checkout(repos.payments, "chk_parked", [("po_parked", "seller_books", 1999, "USD")])
    repos.payments.move_payment("chk_parked", PaymentStatus.PROCESSING)
    repos.payments.flag_attention("po_parked", "executor step: PspUnavailable: retries exhausted")
    return "chk_parked"


def test_an_order_parked_before_the_resume_and_a_payment_touched_since_are_not_its_outcome(repos: Repos) -> None:
    # Given an order parked before the resume started
    checkout_id = _parked_checkout(repos)
    since = clock.now_iso()
    # When another writer touches the payment after the resume started (a recovery re-drive claims it)
    repos.payments.move_payment(checkout_id, PaymentStatus.PROCESSING, recheck_at=clock.now_iso())
    assert repos.payments.get(checkout_id).updated_at >= since
    # Then the resume keeps waiting for its re-run, and says it timed out rather than "parked"
    assert wait_payment(checkout_id, since, 0.3, repos.payments, interval=0.05) == "TIMED_OUT"


def test_an_order_parked_again_after_the_resume_started_is_parked(repos: Repos) -> None:
    # Given a resume started on a parked order
    checkout_id = _parked_checkout(repos)
    since = clock.now_iso()
    # When the re-run gives up on the order again
    repos.payments.flag_attention("po_parked", "executor step: PspUnavailable: retries exhausted again")
    # Then the resume reports it parked, and keeps when it was parked again
    assert wait_payment(checkout_id, since, 5, repos.payments, interval=0.05) == "PARKED"
    assert (repos.payments.get_order("po_parked").attention_flagged_at or "") >= since


def test_a_payment_done_is_succeeded_even_with_a_flag_left_from_before(repos: Repos) -> None:
    # Given a resume started on a parked order, and the re-run finalized the payment as done
    checkout_id = _parked_checkout(repos)
    since = clock.now_iso()
    repos.payments.move_payment(checkout_id, PaymentStatus.FAILED, is_payment_done=True)
    # Then the resume reports SUCCEEDED (it clears the flag of what is settled afterwards)
    assert wait_payment(checkout_id, since, 5, repos.payments, interval=0.05) == "SUCCEEDED"
