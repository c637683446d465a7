"""The invariant checker passes on clean data and fails on each kind of broken data (payments/ops/invariants.py)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.executor.logic import execute_order
from functions.ledger.logic import book_payin
from functions.payment.logic import finalize_payment
from functions.wallet.logic import credit_seller
from payments.accounts.wallet import shard_of
from payments.kernel.dynamo import to_item
from payments.ops.invariants import Report, check
from payments.payin.models import PaymentMethod
from payments.payin.status import OrderStatus, PaymentStatus
from payments.payin.tasks import ExecuteOrderTask, FinalizePaymentTask, OrderResult
from payments.psp.simulator import SimulatedPsp
from tests.unit.conftest import Repos, store_checkout


def _run_checkout(
    repos: Repos, psp: SimulatedPsp, checkout_id: str, token: str, orders: list[tuple[str, str, int, str]]
) -> None:
    """What the state machine does for one checkout: execute, credit and book each order, then finalize."""
    store_checkout(repos.payments, checkout_id, orders, token=token)
    repos.payments.move_payment(checkout_id, PaymentStatus.PROCESSING)
    results = []
    for po, *_ in orders:
        task = ExecuteOrderTask(
            checkout_id=checkout_id, payment_order_id=po, payment_method=PaymentMethod(type="card", token=token)
        )
        result = execute_order(task, repos.payments, psp)
        if result.status is OrderStatus.SUCCESS:
            credit_seller(po, repos.payments, repos.wallets)
            book_payin(po, repos.payments, repos.ledger)
        results.append(OrderResult(payment_order_id=po, outcome=result.status.value))
    finalize_payment(
        FinalizePaymentTask(action="finalize_payment", checkout_id=checkout_id, order_results=results), repos.payments
    )


@pytest.fixture()
def clean(repos: Repos) -> Repos:
    """Two settled checkouts: chk_1 (two successful orders), chk_2 (one declined order)."""
    psp = SimulatedPsp()
    _run_checkout(
        repos, psp, "chk_1", "tok_visa", [("po_1", "seller_books", 1999, "USD"), ("po_2", "seller_toys", 500, "USD")]
    )
    _run_checkout(repos, psp, "chk_2", "tok_chargeDeclined", [("po_3", "seller_books", 700, "USD")])
    return repos


def _check(repos: Repos, charges: list[dict[str, Any]] | None = None) -> Report:
    from payments.refunds.repository import RefundsRepository

    return check(
        repos.payments,
        repos.wallets,
        repos.ledger,
        charges if charges is not None else list(SimulatedPsp().all_charges()),
        refunds=RefundsRepository(payments=repos.payments),
        psp_refunds=list(SimulatedPsp().all_refunds()),
    )


def _broken(report: Report) -> set[int]:
    return {v.invariant for v in report.violations}


def test_a_clean_dataset_has_no_violations(clean: Repos) -> None:
    # Given two settled checkouts (one success with two orders, one decline)
    # When the invariants are checked
    report = _check(clean)
    # Then every invariant was checked and none is violated
    assert report.violations == []
    assert report.ok
    assert report.checks[1] == 2 and report.checks[2] == 3 and report.checks[5] == 3 and report.checks[6] == 2
    assert report.checks[3] >= 3 and report.checks[4] == 2
    assert report.orders_by_status == {"SUCCESS": 2, "FAILED": 1}
    assert all(line.lstrip().startswith("ok") for line in report.summary_lines())
    assert report.passed and report.skipped == {}


def test_a_check_that_did_not_run_is_skipped_with_its_reason_never_a_pass(clean: Repos) -> None:
    # Given no PSP record of charges, no refunds read, and checkouts possibly in flight
    report = check(clean.payments, clean.wallets, clean.ledger, None, expect_settled=False)
    # Then those checks say SKIPPED and why, nothing is a violation, and the run did not pass
    lines = {line.split(".")[0].split()[-1]: line for line in report.summary_lines()}
    assert (
        lines["1"].lstrip().startswith("SKIP 1.") and "SKIPPED: the PSP's record of charges was not given" in lines["1"]
    )
    assert "SKIPPED: refunds and disputes were not read" in lines["8"]
    assert "SKIPPED: checkouts may still be running (--in-flight)" in lines["6"]
    assert report.ok and not report.complete and not report.passed
    # And a skip the caller asked for (--in-flight) alone leaves the run complete
    assert set(report.skipped) - report.waived == {1, 8}


def test_a_second_wallet_credit_for_one_order_breaks_invariants_2_and_4(clean: Repos, ddb: Any) -> None:
    # Given a second credit marker and balance increment for po_1 (a missing conditional write)
    ddb.put_item(
        TableName="wallets",
        Item=to_item(
            {
                "pk": "CREDIT#po_1#again",
                "sk": "CREDIT",
                "payment_order_id": "po_1",
                "seller_account": "seller_books",
                "currency": "USD",
                "amount_minor": 1999,
                "shard": 0,
                "applied_at": "2026-11-30T10:00:00.000Z",
            }
        ),
    )
    ddb.update_item(
        TableName="wallets",
        Key={"pk": {"S": f"WALLET#seller_books#{shard_of('po_1', 4)}"}, "sk": {"S": "CCY#USD"}},
        UpdateExpression="ADD balance_minor :a",
        ExpressionAttributeValues={":a": {"N": "1999"}},
    )
    # When checked
    report = _check(clean)
    # Then exactly-once (2) and wallet = ledger (4) are reported, naming the order and the seller
    assert _broken(report) == {2, 4}
    assert any(v.invariant == 2 and v.ids == ["po_1"] and "2 wallet credits" in v.detail for v in report.violations)
    assert [(v.ids, v.detail) for v in report.violations if v.invariant == 4] == [
        (["seller_books"], "wallet pending 39.98 USD != ledger 19.99 USD")
    ]
    assert not report.ok


def test_an_unbalanced_ledger_transaction_breaks_invariant_3(clean: Repos, ddb: Any) -> None:
    # Given po_1's transaction rewritten so that its debit (2000) no longer equals its credit (1999)
    item = ddb.get_item(TableName="ledger", Key={"pk": {"S": "TXN#po_1"}, "sk": {"S": "TXN"}})["Item"]
    item["postings"]["L"][0]["M"]["amount_minor"] = {"N": "2000"}
    ddb.put_item(TableName="ledger", Item=item)
    # When checked
    report = _check(clean)
    # Then the ledger invariant (3) fails for that transaction, and nothing else
    assert _broken(report) == {3}
    assert any(v.ids == ["payin:po_1"] and "unbalanced" in v.detail for v in report.violations)


def test_a_trial_balance_that_disagrees_with_the_transactions_breaks_invariant_3(clean: Repos, ddb: Any) -> None:
    # Given a totals shard with a lost credit increment
    totals = ddb.scan(
        TableName="ledger", FilterExpression="begins_with(pk, :t)", ExpressionAttributeValues={":t": {"S": "TOTALS#"}}
    )["Items"]
    ddb.update_item(
        TableName="ledger",
        Key={"pk": totals[0]["pk"], "sk": totals[0]["sk"]},
        UpdateExpression="ADD credits_minor :m",
        ExpressionAttributeValues={":m": {"N": "-1"}},
    )
    # When checked / Then invariant 3 fails on the currency
    report = _check(clean)
    assert _broken(report) == {3}
    assert {tuple(v.ids) for v in report.violations} == {("USD",)}


def test_two_psp_charges_for_one_order_break_invariant_1(clean: Repos) -> None:
    # Given the PSP's charges plus a second charge for po_1
    charges = list(SimulatedPsp().all_charges())
    first = next(c for c in charges if c["merchant_reference"] == "po_1")
    charges.append({**first, "psp_reference": "psp_second"})
    # When checked
    report = _check(clean, charges)
    # Then invariant 1 fails for po_1 (once per charge it holds), and nothing else
    assert _broken(report) == {1}
    assert [v.ids for v in report.violations] == [["po_1"], ["po_1"]]
    assert report.violations[0].detail == "2 charges at the PSP"


def test_a_psp_charge_for_a_failed_order_breaks_invariant_1(clean: Repos) -> None:
    # Given a PSP charge for the declined order po_3
    charges = [*SimulatedPsp().all_charges(), {"merchant_reference": "po_3", "psp_reference": "psp_x"}]
    # When checked / Then invariant 1 names po_3
    report = _check(clean, charges)
    assert [(v.invariant, v.ids) for v in report.violations] == [(1, ["po_3"])]


def test_a_status_history_that_moves_backwards_breaks_invariant_5(clean: Repos, ddb: Any) -> None:
    # Given po_1's history rewritten as NOT_STARTED, EXECUTING, SUCCESS, EXECUTING, SUCCESS
    history = [
        {"status": s, "at": "2026-11-30T10:00:00.000Z"}
        for s in ("NOT_STARTED", "EXECUTING", "SUCCESS", "EXECUTING", "SUCCESS")
    ]
    ddb.update_item(
        TableName="payments",
        Key={"pk": {"S": "ORDER#po_1"}, "sk": {"S": "ORDER"}},
        UpdateExpression="SET status_history = :h",
        ExpressionAttributeValues=to_item({":h": history}),
    )
    # When checked / Then invariant 5 names the backward move of po_1, and nothing else fails
    report = _check(clean)
    assert [(v.invariant, v.detail, v.ids) for v in report.violations] == [(5, "moved SUCCESS -> EXECUTING", ["po_1"])]


def test_a_payment_left_processing_without_attention_breaks_invariant_6(repos: Repos) -> None:
    # Given a checkout whose workflow executed nothing and was never finalized
    store_checkout(repos.payments, "chk_lost", [("po_9", "seller_books", 100, "USD")])
    repos.payments.move_payment("chk_lost", PaymentStatus.PROCESSING)
    # When checked / Then invariant 6 names the checkout
    report = _check(repos, [])
    assert [(v.invariant, v.ids) for v in report.violations] == [(6, ["chk_lost"])]
    # and when settlement is not expected (mid-run), it is not reported
    assert check(repos.payments, repos.wallets, repos.ledger, [], expect_settled=False).ok


def test_violations_print_the_invariant_and_the_ids(clean: Repos) -> None:
    charges = [*SimulatedPsp().all_charges(), {"merchant_reference": "po_404", "psp_reference": "psp_x"}]
    report = _check(clean, charges)
    assert [str(v) for v in report.violations] == [
        "[1] at most one PSP charge per payment_order_id: PSP charge for an order we never stored (po_404, psp_x)"
    ]
    assert any(line.lstrip().startswith("FAIL 1.") for line in report.summary_lines())


def test_a_seller_account_total_that_disagrees_with_its_postings_breaks_invariant_3(clean: Repos, ddb: Any) -> None:
    # Given seller_books's running total (what reconciliation's three-way check reads) with an extra cent
    items = ddb.scan(
        TableName="ledger",
        FilterExpression="begins_with(pk, :a)",
        ExpressionAttributeValues={":a": {"S": "ACCOUNT#seller_pending:seller_books#"}},
    )["Items"]
    ddb.update_item(
        TableName="ledger",
        Key={"pk": items[0]["pk"], "sk": items[0]["sk"]},
        UpdateExpression="ADD credits_minor :m",
        ExpressionAttributeValues={":m": {"N": "1"}},
    )
    # When checked / Then invariant 3 fails on that account, and nothing else
    report = _check(clean)
    assert _broken(report) == {3}
    assert [(v.ids, v.detail) for v in report.violations] == [
        (
            ["seller_pending:seller_books"],
            "account totals of seller_pending:seller_books: 20.00 USD != sum of its postings 19.99 USD",
        )
    ]


# --- an Adyen stage: invariant 1 and the PSP's side of 8 from what Adyen reports ------------------
ADYEN_CHARGE, ADYEN_REFUND = "ADYENCHARGE00001", "ADYENREFUND00001"


@pytest.fixture()
def adyen_stage(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> Repos:
    """A stage that charges through Adyen (``PAYMENTS_PSP=adyen``): the simulator's table is empty.
    po_1 (70.00) was charged at Adyen and settled here; rf_1 (10.00) was refunded, decided by
    Adyen's REFUND notification; rf_2 (5.00) was refused by it."""
    from payments.kernel.config import reset_settings
    from payments.refunds import logic
    from payments.refunds.models import RefundRequest
    from payments.refunds.repository import RefundsRepository
    from tests.unit.conftest import succeed

    monkeypatch.setenv("PAYMENTS_PSP", "adyen")
    reset_settings()
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 7000, "USD")])
    repos.payments.move_payment("chk_1", PaymentStatus.PROCESSING)
    succeed(repos.payments, "po_1", ADYEN_CHARGE)
    credit_seller("po_1", repos.payments, repos.wallets)
    book_payin("po_1", repos.payments, repos.ledger)
    finalize_payment(
        FinalizePaymentTask(
            action="finalize_payment",
            checkout_id="chk_1",
            order_results=[OrderResult(payment_order_id="po_1", outcome="SUCCESS")],
        ),
        repos.payments,
    )
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    for refund_id, amount in (("rf_1", "10.00"), ("rf_2", "5.00")):
        request = RefundRequest(refund_id=refund_id, payment_order_id="po_1", amount=amount, currency="USD")
        logic.accept_refund(f"key-{refund_id}", request, refunds, start=False)
    refunds.decide("rf_1", True, psp_reference=ADYEN_REFUND, source="notification")
    refunds.decide("rf_2", False, psp_reference="ADYENREFUND00002", source="notification")
    return repos


def _reconciled_adyen_report(charges: list[tuple[str, str]], refunded: list[tuple[str, str]]) -> None:
    """An Adyen Settlement Details Report of 2026-11-30 with a Settled row per (payment_order_id,
    psp_reference) and a Refunded row per (refund_id, modification reference) of po_1, put into the
    settlement bucket and reconciled (what the bucket's trigger does)."""
    import io

    import boto3

    from payments.kernel.config import settings
    from payments.reconciliation import adyen
    from payments.reconciliation.service import Reconciler

    day = "2026-11-30"
    out = io.StringIO()
    adyen.write_report(
        [
            {
                "psp_reference": ref,
                "merchant_reference": po,
                "amount_minor": 7000,
                "currency": "USD",
                "charged_at": f"{day}T10:00:00Z",
            }
            for po, ref in charges
        ],
        day,
        out,
        [
            {
                "record_type": "Refunded",
                "psp_reference": ADYEN_CHARGE,
                "merchant_reference": "po_1",
                "modification_reference": ref,
                "modification_merchant_reference": refund_id,
                "amount_minor": 1000,
                "currency": "USD",
                "at": f"{day}T11:00:00Z",
            }
            for refund_id, ref in refunded
        ],
    )
    s3 = boto3.client("s3")
    bucket = settings().settlement_bucket
    s3.create_bucket(Bucket=bucket)
    key = f"incoming/adyen/{day}.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=out.getvalue().encode())
    Reconciler().reconcile_object(key)


def _row(out: str, invariant: int) -> list[str]:
    """The cells of an invariant's row in verify's table (RESULT, INVARIANT, CHECKS, BROKEN, NOTE)."""
    header = out.splitlines()[0]
    (line,) = [line for line in out.splitlines() if line.split()[1:2] == [f"{invariant}."]]
    starts = [header.index(name) for name in ("RESULT", "INVARIANT", "CHECKS", "BROKEN", "NOTE")]
    return [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from payments.ops.cli import main

    code = main(["verify", "--output", "table"])
    return code, capsys.readouterr().out


def test_verify_on_an_adyen_stage_with_no_report_says_skipped_and_finds_no_false_violation(
    adyen_stage: Repos, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an Adyen stage whose PSP has reported nothing yet (no settlement report reconciled)
    # When verified
    code, out = _verify(capsys)
    # Then invariant 1 is SKIPPED with its reason, not "0 checks, 0 violations" and not a pass
    result, text, checks, _, note = _row(out, 1)
    assert (result, text) == ("SKIP", "1. at most one PSP charge per payment_order_id")
    assert note.startswith("SKIPPED: no Adyen settlement report") and checks == "0"
    # And the refunds Adyen decided are no violation of invariant 8; the PSP's side of it is SKIPPED
    assert "\nVIOLATION " not in out
    assert _row(out, 8)[0] == "SKIP" and _row(out, 8)[4].startswith("SKIPPED: the PSP's side")
    # And the exit code says it was not verified (2), and why
    assert code == 2 and "NOT VERIFIED: invariant(s) 1, 8" in out


def test_verify_on_an_adyen_stage_checks_invariants_1_and_8_from_the_reconciled_report(
    adyen_stage: Repos, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Adyen's report of the day: po_1's charge and rf_1's refund
    _reconciled_adyen_report([("po_1", ADYEN_CHARGE)], [("rf_1", ADYEN_REFUND)])
    # When verified / Then every invariant was checked, from the report, and holds
    code, out = _verify(capsys)
    assert code == 0, out
    assert _row(out, 1)[:4] == ["ok", "1. at most one PSP charge per payment_order_id", "1", "0"]
    assert "1 reconciled Adyen settlement report(s)" in out and "\nSKIP" not in out and "\nVIOLATION " not in out


def test_a_second_charge_or_a_refund_failed_here_in_adyens_report_are_violations(
    adyen_stage: Repos, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Adyen's report settling a second charge for po_1, and refunding rf_2 (FAILED here)
    _reconciled_adyen_report(
        [("po_1", ADYEN_CHARGE), ("po_1", "ADYENCHARGE00002")],
        [("rf_1", ADYEN_REFUND), ("rf_2", "ADYENREFUND00002")],
    )
    # When verified / Then both are violations, naming the order and the refund
    code, out = _verify(capsys)
    assert code == 1
    violations = [line for line in out.splitlines() if line.startswith("VIOLATION")]
    assert sum("2 charges at the PSP (po_1)" in line for line in violations) == 2
    assert any("refunded at the PSP but FAILED here (rf_2)" in line for line in violations)
