"""Refunds, chargebacks and reversals (issue 18): the reservation under concurrency, exactly-once
outcomes, first outcome wins, disputes moving wallet and ledger once, and invariant 8."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from functions.executor.logic import execute_order
from functions.ledger.logic import book_payin
from functions.payment.logic import finalize_payment
from functions.wallet.logic import credit_seller
from payments.kernel.money import Money
from payments.kernel.observability import LOCAL_COUNTS
from payments.ops.invariants import Report, check
from payments.payin.models import PaymentMethod
from payments.payin.status import OrderStatus, PaymentStatus
from payments.payin.tasks import ExecuteOrderTask, FinalizePaymentTask, OrderResult
from payments.psp.simulator import SimulatedPsp
from payments.refunds import logic
from payments.refunds.models import RefundRecord, RefundRequest, RefundStatus
from payments.refunds.repository import (
    ChargebackNotBooked,
    OrderNotRefundable,
    RefundExceedsRemaining,
    RefundsRepository,
)
from payments_dev.local import moto_patches
from tests.unit.conftest import Repos, store_checkout


@pytest.fixture()
def psp(ddb: Any) -> SimulatedPsp:
    return SimulatedPsp()


@pytest.fixture()
def refunds(repos: Repos) -> RefundsRepository:
    return RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)


def paid(
    repos: Repos,
    psp: SimulatedPsp,
    po: str,
    amount_minor: int = 7000,
    token: str = "tok_visa",
    seller: str = "seller_books",
    currency: str = "USD",
) -> None:
    """A settled checkout of one order: charged at the PSP, wallet credited, ledger booked."""
    checkout = f"chk_{po}"
    store_checkout(repos.payments, checkout, [(po, seller, amount_minor, currency)], token=token)
    repos.payments.move_payment(checkout, PaymentStatus.PROCESSING)
    task = ExecuteOrderTask(
        checkout_id=checkout, payment_order_id=po, payment_method=PaymentMethod(type="card", token=token)
    )
    assert execute_order(task, repos.payments, psp).status is OrderStatus.SUCCESS
    credit_seller(po, repos.payments, repos.wallets)
    book_payin(po, repos.payments, repos.ledger)
    finalize_payment(
        FinalizePaymentTask(
            action="finalize_payment",
            checkout_id=checkout,
            order_results=[OrderResult(payment_order_id=po, outcome="SUCCESS")],
        ),
        repos.payments,
    )


def request(refund_id: str, po: str, amount: str | None = "60.00") -> RefundRequest:
    return RefundRequest(refund_id=refund_id, payment_order_id=po, amount=amount, currency="USD")


def accept(
    refunds: RefundsRepository, refund_id: str, po: str, amount: str | None = "60.00", key: str | None = None
) -> dict[str, Any]:
    return logic.accept_refund(key or f"key-{refund_id}", request(refund_id, po, amount), refunds, start=False)


def run_refund(refunds: RefundsRepository, psp: SimulatedPsp, refund_id: str) -> dict[str, Any]:
    """What the refund workflow does: execute at the PSP, then apply the answer."""
    execution = logic.execute_refund(refund_id, refunds, psp)
    return logic.apply_refund_outcome({"refund_id": refund_id, "execution": execution}, refunds)


def invariants(repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp) -> Report:
    return check(
        repos.payments,
        repos.wallets,
        repos.ledger,
        list(psp.all_charges()),
        refunds=refunds,
        psp_refunds=list(psp.all_refunds()),
    )


def balance(repos: Repos, seller: str = "seller_books") -> int:
    return repos.wallets.balances(seller).get("USD", 0)


def test_twenty_concurrent_refunds_of_60_on_70_reserve_exactly_one(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given a settled order of 70.00, and DynamoDB serialising writes per item as it does in AWS
    moto_patches.install()
    paid(repos, psp, "po_1", 7000)

    # When 20 refunds of 60.00 arrive at once
    def attempt(i: int) -> str:
        try:
            accept(refunds, f"rf_{i}", "po_1")
            return "accepted"
        except RefundExceedsRemaining:
            return "exceeds"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    # Then exactly one is accepted and 19 are refused, storing nothing
    assert outcomes.count("accepted") == 1 and outcomes.count("exceeds") == 19
    assert len(refunds.scan_refunds()) == 1
    assert repos.payments.get_order("po_1").refund_reserved_minor == 6000
    assert invariants(repos, refunds, psp).violations == []


class _NoLimit(RefundsRepository):
    """The reservation without its bound (only the order's status is checked)."""

    def reservation_condition(self) -> str:
        return "attribute_exists(pk) AND #status = :success AND (:zero = :zero OR chargeback_minor = :zero) AND (:limit = :limit)"


def test_without_the_reservation_condition_the_invariant_breaks(repos: Repos, psp: SimulatedPsp) -> None:
    # Given the reservation stripped of its bound
    moto_patches.install()
    paid(repos, psp, "po_1", 7000)
    unbounded = _NoLimit(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    # When two refunds of 60.00 on 70.00 are accepted and their success is applied
    # (the PSP itself refuses the second one, so both are decided as the notifications would)
    for refund_id in ("rf_a", "rf_b"):
        accept(unbounded, refund_id, "po_1")
        unbounded.decide(refund_id, True, psp_reference=f"psp_{refund_id}", source="notification")
    # Then the invariant checker reports money given back beyond what was charged
    report = check(repos.payments, repos.wallets, repos.ledger, list(psp.all_charges()), refunds=unbounded)
    assert any(v.invariant == 8 and "gave back 120.00 USD of 70.00 USD" in v.detail for v in report.violations)


def test_a_succeeded_refund_moves_wallet_and_ledger_once(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given a settled order of 70.00 and a refund of 60.00
    paid(repos, psp, "po_1", 7000)
    resource = accept(refunds, "rf_1", "po_1")
    assert resource["status"] == "PENDING" and resource["amount"] == "60.00"
    # When the workflow runs it, and runs again (a retry), and the PSP's notification arrives too
    assert run_refund(refunds, psp, "rf_1")["status"] == "SUCCEEDED"
    again = refunds.decide("rf_1", True, psp_reference=refunds.get("rf_1").psp_reference, source="psp")
    # Then the seller lost 60.00 once, the ledger balances, and the order shows the refund
    assert again.applied is False
    assert balance(repos) == 1000
    debits, credits = repos.ledger.trial_balance()["USD"]
    assert debits == credits == 7000 + 6000
    order = repos.payments.get_order("po_1")
    assert order.to_api().refunded_amount == "60.00" and order.to_api().chargeback_amount == "0.00"
    assert invariants(repos, refunds, psp).violations == []


def test_replay_returns_the_same_refund_and_reuse_is_a_conflict(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    from payments.kernel.errors import Conflict

    paid(repos, psp, "po_1", 7000)
    first = accept(refunds, "rf_1", "po_1", "10.00", key="k1")
    # When the same request is repeated / the same refund_id comes with another body
    assert accept(refunds, "rf_1", "po_1", "10.00", key="k1") == first
    with pytest.raises(Conflict):
        accept(refunds, "rf_1", "po_1", "11.00", key="k2")
    # Then one reservation of 10.00 exists
    assert repos.payments.get_order("po_1").refund_reserved_minor == 1000


def test_amount_omitted_refunds_what_is_left(repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp) -> None:
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1", "25.00")
    assert accept(refunds, "rf_2", "po_1", None)["amount"] == "45.00"
    # a retry of the request that took everything left is the same refund, not a 422
    assert accept(refunds, "rf_2", "po_1", None)["amount"] == "45.00"
    with pytest.raises(RefundExceedsRemaining):
        accept(refunds, "rf_3", "po_1", None)


def test_refund_fails_token_ends_failed_and_releases_the_reservation(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given an order paid with tok_refundFails
    paid(repos, psp, "po_1", 7000, token="tok_refundFails")
    accept(refunds, "rf_1", "po_1")
    # When the refund runs
    outcome = run_refund(refunds, psp, "rf_1")
    # Then it is FAILED, no money moved, and the whole amount is refundable again
    assert outcome["status"] == "FAILED"
    assert refunds.get("rf_1").failure_reason == "refund_declined"
    assert balance(repos) == 7000
    assert repos.payments.get_order("po_1").refund_reserved_minor == 0
    assert invariants(repos, refunds, psp).violations == []


def test_first_outcome_wins_and_the_other_changes_nothing(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given a pending refund whose PSP refund happened, and whose notification beats the answer
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1")
    execution = logic.execute_refund("rf_1", refunds, psp)
    first = refunds.decide("rf_1", True, psp_reference=execution["psp_reference"], source="notification")
    # When the PSP's answer is applied afterwards, and a contradicting late signal arrives
    late = logic.apply_refund_outcome({"refund_id": "rf_1", "execution": execution}, refunds)
    contradiction = refunds.decide("rf_1", False, failure_reason="late", source="notification")
    # Then the refund was decided once, never moved back, and the contradiction is an anomaly
    assert first.applied and late["applied"] is False and contradiction.applied is False
    refund = refunds.get("rf_1")
    assert refund.status is RefundStatus.SUCCEEDED and refund.decided_by == "notification"
    assert len(refund.anomalies) == 1
    assert balance(repos) == 1000
    assert invariants(repos, refunds, psp).violations == []


def test_a_decided_refund_is_not_sent_to_the_psp_again(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1")
    refunds.decide("rf_1", False, failure_reason="refused", source="notification")
    assert logic.execute_refund("rf_1", refunds, psp) == {"refund_id": "rf_1", "decided": True, "status": "FAILED"}
    assert psp.lookup_refund("rf_1") is None


def test_only_a_success_order_can_be_refunded(repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp) -> None:
    store_checkout(repos.payments, "chk_x", [("po_x", "seller_books", 7000, "USD")], token="tok_chargeDeclined")
    with pytest.raises(OrderNotRefundable):
        accept(refunds, "rf_1", "po_x")
    assert refunds.scan_refunds() == []


def test_chargeback_and_reversal_move_wallet_and_ledger_once_each(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given a settled order of 70.00
    paid(repos, psp, "po_1", 7000)
    order = repos.payments.get_order("po_1")
    # When a reversal arrives before its chargeback (out of order)
    with pytest.raises(ChargebackNotBooked):
        refunds.reverse_chargeback(order, "dsp_1", Money(7000, "USD"))
    assert balance(repos) == 7000
    # and then the chargeback arrives twice, and the reversal twice
    assert refunds.book_chargeback(order, "dsp_1", Money(7000, "USD")).applied is True
    assert refunds.book_chargeback(order, "dsp_1", Money(7000, "USD")).applied is False
    assert balance(repos) == 0
    assert repos.payments.get_order("po_1").to_api().chargeback_amount == "70.00"
    assert refunds.reverse_chargeback(order, "dsp_1", Money(7000, "USD")).applied is True
    assert refunds.reverse_chargeback(order, "dsp_1", Money(7000, "USD")).applied is False
    # Then the wallet and the ledger moved once for each
    assert balance(repos) == 7000
    assert repos.ledger.trial_balance()["USD"] == (7000 * 3, 7000 * 3)
    assert repos.payments.get_order("po_1").to_api().chargeback_amount == "0.00"
    assert invariants(repos, refunds, psp).violations == []


def test_a_second_chargeback_needs_its_reversal_fits_it_and_moves_money_once(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given an order of 70.00 refunded for 60.00, then charged back for the remaining 10.00
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1")
    run_refund(refunds, psp, "rf_1")
    order = repos.payments.get_order("po_1")
    assert refunds.book_chargeback(order, "dsp_1", Money(1000, "USD")).applied is True
    # When its second chargeback arrives before the reversal
    with pytest.raises(ChargebackNotBooked, match="before its reversal"):
        refunds.book_second_chargeback(order, "dsp_1", Money(1000, "USD"))
    assert balance(repos) == 0
    # and after the reversal: one for more than was reversed, the right one twice, then a contradicting one
    assert refunds.reverse_chargeback(order, "dsp_1", Money(1000, "USD")).applied is True
    assert "does not fit dispute dsp_1" in (
        refunds.book_second_chargeback(order, "dsp_1", Money(1001, "USD")).anomaly or ""
    )
    first = refunds.book_second_chargeback(order, "dsp_1", Money(1000, "USD"))
    again = refunds.book_second_chargeback(order, "dsp_1", Money(1000, "USD"))
    other = refunds.book_second_chargeback(order, "dsp_1", Money(500, "USD"))
    # Then it moved the wallet and the ledger once; the others moved nothing
    assert (first.applied, first.needs_attention, again.applied, again.anomaly) == (True, False, False, None)
    assert "contradicts the one booked (1000)" in (other.anomaly or "")
    assert balance(repos) == 7000 - 6000 - 1000 + 1000 - 1000
    # And the order gave back exactly what was charged (refund 60.00 + chargebacks 20.00 - reversal 10.00):
    # nothing to flag, and every invariant holds
    kept = repos.payments.get_order("po_1")
    assert (kept.chargeback_minor, kept.chargeback_reversed_minor, kept.needs_attention) == (2000, 1000, False)
    assert invariants(repos, refunds, psp).violations == []


def test_verify_reports_a_refund_the_psp_decided_that_is_still_pending_here_and_not_parked(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given a refund the PSP made, whose answer was never applied here (the workflow died after the PSP's call)
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1")
    execution = logic.execute_refund("rf_1", refunds, psp)
    assert refunds.get("rf_1").status is RefundStatus.PENDING

    def pending_findings(**options: Any) -> list[str]:
        report = check(
            repos.payments,
            repos.wallets,
            repos.ledger,
            list(psp.all_charges()),
            refunds=refunds,
            psp_refunds=list(psp.all_refunds()),
            **options,
        )
        return [str(v) for v in report.violations if "still PENDING here" in str(v)]

    # When verify runs with nothing in flight / Then it names the refund
    assert len(pending_findings()) == 1 and "rf_1" in pending_findings()[0]
    # And with refunds in flight (payments verify --in-flight) it is not a finding yet
    assert pending_findings(expect_settled=False) == []
    # And parked for an operator it is known, not silent
    refunds.flag_attention("rf_1", "ExecuteRefund step: retries exhausted")
    assert pending_findings() == []
    # And once the answer is applied every invariant holds
    logic.apply_refund_outcome({"refund_id": "rf_1", "execution": execution}, refunds)
    assert invariants(repos, refunds, psp).violations == []


def test_a_standing_chargeback_is_not_refundable_and_the_rest_is(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given an order of 70.00 charged back for 20.00
    paid(repos, psp, "po_1", 7000)
    refunds.book_chargeback(repos.payments.get_order("po_1"), "dsp_1", Money(2000, "USD"))
    # When a refund of 60.00 is asked / Then it is refused, saying 50.00 remains, and nothing is stored
    with pytest.raises(RefundExceedsRemaining) as refused:
        accept(refunds, "rf_1", "po_1", "60.00")
    assert refused.value.remaining_minor == 5000
    assert refunds.scan_refunds() == []
    # And a refund with no amount takes exactly what remains: the charge less the standing chargeback
    assert accept(refunds, "rf_2", "po_1", None)["amount"] == "50.00"
    assert repos.payments.get_order("po_1").refund_reserved_minor == 5000


def test_a_reversed_chargeback_no_longer_counts_and_a_second_one_counts_again(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given an order of 70.00 charged back for 10.00, and the chargeback reversed (chargeback_amount 0.00)
    paid(repos, psp, "po_1", 7000)
    order = repos.payments.get_order("po_1")
    refunds.book_chargeback(order, "dsp_1", Money(1000, "USD"))
    refunds.reverse_chargeback(order, "dsp_1", Money(1000, "USD"))
    assert repos.payments.get_order("po_1").to_api().chargeback_amount == "0.00"
    # When a refund of 1.00 is asked / Then it is accepted (it was 409 order-not-refundable before)
    assert accept(refunds, "rf_1", "po_1", "1.00")["status"] == "PENDING"
    # When the defence is lost after all (second chargeback of 10.00)
    refunds.book_second_chargeback(order, "dsp_1", Money(1000, "USD"))
    # Then those 10.00 are not refundable again: 70.00 - 1.00 - 10.00 = 59.00 remain
    with pytest.raises(RefundExceedsRemaining) as refused:
        accept(refunds, "rf_2", "po_1", "59.01")
    assert refused.value.remaining_minor == 5900
    assert accept(refunds, "rf_3", "po_1", None)["amount"] == "59.00"
    with pytest.raises(RefundExceedsRemaining):
        accept(refunds, "rf_4", "po_1", None)
    # And what the order gives back never exceeds the charge
    kept = repos.payments.get_order("po_1")
    assert kept.refund_reserved_minor + kept.chargeback_minor - kept.chargeback_reversed_minor == 7000
    assert {r.refund_id for r in refunds.scan_refunds()} == {"rf_1", "rf_3"}


def test_a_chargeback_booked_between_the_read_and_the_reservation_is_counted(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given the order as the API read it (70.00 refundable), then a chargeback of 70.00 booked before the write
    paid(repos, psp, "po_1", 7000)
    read = repos.payments.get_order("po_1")
    refunds.book_chargeback(read, "dsp_1", Money(7000, "USD"))
    record = RefundRecord(
        refund_id="rf_1",
        payment_order_id="po_1",
        seller_account="seller_books",
        amount_minor=1000,
        currency="USD",
        idempotency_key="k",
        request_fingerprint="f",
    )
    # When the reservation is written on the stale read / Then the condition refuses it: nothing remains
    with pytest.raises(RefundExceedsRemaining) as refused:
        refunds.reserve(record, read)
    assert refused.value.remaining_minor == 0
    assert refunds.scan_refunds() == []
    # And once the chargeback is reversed, the same stale read reserves on the order as it is now
    refunds.reverse_chargeback(read, "dsp_1", Money(7000, "USD"))
    assert refunds.reserve(record, read).created is True
    assert repos.payments.get_order("po_1").refund_reserved_minor == 1000


def test_chargeback_on_a_refunded_order_is_booked_and_flagged(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given an order of 70.00 refunded for 60.00
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1")
    run_refund(refunds, psp, "rf_1")
    before = LOCAL_COUNTS["ChargebackOnRefundedOrder"]
    # When the cardholder's bank charges back the whole 70.00
    booked = refunds.book_chargeback(repos.payments.get_order("po_1"), "dsp_1", Money(7000, "USD"))
    # Then it is booked (it happened at the PSP), the order needs attention and the alarm metric counts it
    assert booked.applied and booked.needs_attention
    order = repos.payments.get_order("po_1")
    assert order.needs_attention and "chargeback on a refunded order" in (order.attention_reason or "")
    assert LOCAL_COUNTS["ChargebackOnRefundedOrder"] == before + 1
    assert balance(repos) == 7000 - 6000 - 7000
    # and the invariant holds: the over-return is known and surfaced, not silent
    assert invariants(repos, refunds, psp).violations == []


def test_a_crash_between_the_psp_refund_and_the_wallet_debit_is_repaired_once(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given a refund the PSP executed, whose outcome was never applied (the task crashed after the call)
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1")
    first = logic.execute_refund("rf_1", refunds, psp)
    assert balance(repos) == 7000 and refunds.get("rf_1").status is RefundStatus.PENDING
    # When the workflow's retry runs the whole refund again
    outcome = run_refund(refunds, psp, "rf_1")
    # Then the PSP answered the same refund (its idempotency key), and the money moved once
    assert outcome == {"refund_id": "rf_1", "status": "SUCCEEDED", "applied": True}
    assert refunds.get("rf_1").psp_reference == first["psp_reference"]
    assert len(list(psp.all_refunds())) == 1
    assert balance(repos) == 1000
    assert invariants(repos, refunds, psp).violations == []


def test_parking_keeps_the_reservation_and_flags_the_refund(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1")
    before = LOCAL_COUNTS["RefundNeedsAttention"]
    parked = logic.park_refund(
        {"refund_id": "rf_1", "step": "execute", "error": {"Error": "PspUnavailable", "Cause": "down"}}, refunds
    )
    refund = refunds.get("rf_1")
    assert parked["parked"] is True and refund.needs_attention and "PspUnavailable" in (refund.attention_reason or "")
    assert LOCAL_COUNTS["RefundNeedsAttention"] == before + 1
    assert repos.payments.get_order("po_1").refund_reserved_minor == 6000  # still reserved: never guessed
    assert invariants(repos, refunds, psp).violations == []


def test_the_psp_lists_the_days_modifications_for_its_settlement_file(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.kernel import clock
    from payments.kernel.config import reset_settings

    monkeypatch.setenv("PAYMENTS_PSP_HMAC_KEY", "00ff" * 16)
    reset_settings()
    paid(repos, psp, "po_1", 7000)
    accept(refunds, "rf_1", "po_1", "10.00")
    run_refund(refunds, psp, "rf_1")
    chargeback = psp.raise_chargeback("po_1", 2000)
    psp.reverse_chargeback(chargeback["pspReference"])
    psp.second_chargeback(chargeback["pspReference"])
    rows = list(psp.modifications_for_day(clock.day_of(clock.now_iso())))
    charge_ref = repos.payments.get_order("po_1").psp_reference
    assert [(r["record_type"], r["amount_minor"], r["psp_reference"]) for r in rows] == [
        ("Refunded", 1000, charge_ref),
        ("Chargeback", 2000, charge_ref),
        ("ChargebackReversed", 2000, charge_ref),
        ("SecondChargeback", 2000, charge_ref),
    ]
    assert rows[0]["modification_merchant_reference"] == "rf_1"
    assert {r["modification_reference"] for r in rows[1:]} == {chargeback["pspReference"]}


# --- the day's settlement file: Refunded, Chargeback, ChargebackReversed, SecondChargeback rows, reconciled


def settled_day(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, bytes]:
    """A charge of 70.00, a refund of 10.00 SUCCEEDED, a refund FAILED (tok_refundFails), a chargeback
    of 20.00, its reversal and its second chargeback, booked through the notifications; the day
    settled by the simulator."""
    import boto3

    from payments.kernel import clock
    from payments.kernel.config import reset_settings, settings
    from payments.notifications.apply import apply_item
    from payments.reconciliation.settlement import settle_day

    monkeypatch.setenv("PAYMENTS_PSP_HMAC_KEY", "00ff" * 16)
    reset_settings()
    paid(repos, psp, "po_1", 7000)
    paid(repos, psp, "po_2", 3000, token="tok_refundFails")
    accept(refunds, "rf_1", "po_1", "10.00")
    run_refund(refunds, psp, "rf_1")
    accept(refunds, "rf_2", "po_2", "5.00")
    run_refund(refunds, psp, "rf_2")
    chargeback = psp.raise_chargeback("po_1", 2000)
    assert apply_item(chargeback, refunds)[0] == "APPLIED"
    assert apply_item(psp.reverse_chargeback(chargeback["pspReference"]), refunds)[0] == "APPLIED"
    assert apply_item(psp.second_chargeback(chargeback["pspReference"]), refunds)[0] == "APPLIED"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=settings().settlement_bucket)
    day = clock.day_of(clock.now_iso())
    key, _ = settle_day(day, psp=psp, s3=s3)
    return day, s3.get_object(Bucket=settings().settlement_bucket, Key=key)["Body"].read()


def test_the_days_settlement_file_has_refund_and_chargeback_rows_as_adyen_writes_them(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv
    import io

    # Given a day with a refund, a failed refund, a chargeback, its reversal and its second chargeback
    _, body = settled_day(repos, refunds, psp, monkeypatch)
    # When its settlement file is read
    rows = {r["Type"]: r for r in csv.DictReader(io.StringIO(body.decode()))}
    # Then it holds one row of each kind (the failed refund moved no money: no row)
    assert sorted(rows) == [
        "Chargeback",
        "ChargebackReversed",
        "MerchantPayout",
        "Refunded",
        "SecondChargeback",
        "Settled",
    ]
    charge_ref = repos.payments.get_order("po_1").psp_reference
    refund, chargeback, reversal = rows["Refunded"], rows["Chargeback"], rows["ChargebackReversed"]
    second = rows["SecondChargeback"]
    # And each names the payment (Psp Reference, Merchant Reference) and the modification (its references)
    assert {r["Psp Reference"] for r in (refund, chargeback, reversal, second)} == {charge_ref}
    assert {r["Merchant Reference"] for r in (refund, chargeback, reversal, second)} == {"po_1"}
    assert (
        refund["Modification Reference"] == refunds.get("rf_1").psp_reference
        and refund["Modification Merchant Reference"] == "rf_1"
    )
    assert (
        chargeback["Modification Reference"]
        == reversal["Modification Reference"]
        == second["Modification Reference"]
        == refunds.scan_disputes()[0]["dispute_reference"]
    )
    # And the amounts are on Adyen's sides: refunds and chargebacks debit (the chargeback fee on top, in Markup), reversals credit
    amounts = ("Gross Debit (GC)", "Gross Credit (GC)", "Net Debit (NC)", "Net Credit (NC)", "Markup (NC)")
    assert [refund[c] for c in amounts] == ["10.00", "", "10.00", "", ""]
    assert [chargeback[c] for c in amounts] == ["20.00", "", "30.00", "", "10.00"]
    assert [reversal[c] for c in amounts] == ["", "20.00", "", "20.00", ""]
    assert [second[c] for c in amounts] == ["20.00", "", "20.00", "", ""]  # the dispute's fee came with its first
    # And the payout is the batch's net: the charges' net, less the refund and the chargeback (fee included),
    # plus the reversal, less the second chargeback
    settled_net = sum(
        int(r["Net Credit (NC)"].replace(".", ""))
        for r in csv.DictReader(io.StringIO(body.decode()))
        if r["Type"] == "Settled"
    )
    assert int(rows["MerchantPayout"]["Net Debit (NC)"].replace(".", "")) == settled_net - 1000 - 3000 + 2000 - 2000


def test_the_days_file_with_refund_and_chargeback_rows_reconciles_with_zero_mismatches(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from payments.reconciliation.model import Bounds
    from payments.reconciliation.service import reconcile_stream
    from payments.reconciliation.sources import DynamoLedgerSource

    # Given the day's file of two charges, a refund, a chargeback, its reversal and its second chargeback
    day, body = settled_day(repos, refunds, psp, monkeypatch)
    # When it is reconciled against the ledger
    result, _ = reconcile_stream(io.BytesIO(body), DynamoLedgerSource(repos.ledger), Bounds(), None, None)
    # Then every row matched: the charges and each refund, chargeback, reversal and second chargeback row
    assert result.mismatches == [] and result.rejected == [] and result.window_day == day
    assert result.matched == 6
    assert result.adjustments == {
        "Refunded": {"rows": 1, "matched": 1, "mismatched": 0, "missing_in_settlement": 0},
        "Chargeback": {"rows": 1, "matched": 1, "mismatched": 0, "missing_in_settlement": 0},
        "ChargebackReversed": {"rows": 1, "matched": 1, "mismatched": 0, "missing_in_settlement": 0},
        "SecondChargeback": {"rows": 1, "matched": 1, "mismatched": 0, "missing_in_settlement": 0},
    }
    # And the three-way check covers the seller the adjustments touched
    assert ("seller_books", "USD") in result.seller_accounts


def test_the_refund_task_takes_the_stages_psp_only_if_it_refunds(repos: Repos) -> None:
    from payments.refunds.psp import RefundingPsp, refunding

    class ChargesOnly:
        def charge(self, request: Any) -> None: ...

    # Given the simulator (which refunds) and a PSP that only charges
    simulator = SimulatedPsp()
    # When each is taken as the refund task's PSP
    # Then the simulator is, and the other is a configuration error that names it
    assert refunding(simulator) is simulator and isinstance(simulator, RefundingPsp)
    with pytest.raises(TypeError, match="ChargesOnly"):
        refunding(ChargesOnly())
