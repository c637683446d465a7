"""A flag that needs a person is closed by a person, never by a re-run (payments/payin/attention.py and
its command payments/ops/attention.py, payments/ops/operations.py, payments/payin/repository.py).

A chargeback on an order already refunded is booked (it happened at the PSP) and parks the order as
"claim to pursue": a decision for a person. A resume re-runs the idempotent workflow, which settles
nothing new here; it must say that the flag needs a person and leave it. ``payments attention
resolve ID --note TEXT`` closes it, recording who, when and why, and ``payments verify`` accepts a
claim a person resolved (invariant 8), and still refuses one cleared by no one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.executor.logic import execute_order
from functions.ledger.logic import book_payin
from functions.payment.logic import finalize_payment
from functions.wallet.logic import credit_seller
from payments.kernel.dynamo import to_values
from payments.kernel.money import Money
from payments.ops import operations
from payments.ops.cli import main
from payments.ops.invariants import Report, check
from payments.payin import attention
from payments.payin.models import PaymentMethod
from payments.payin.repository import order_key
from payments.payin.status import AttentionKind, OrderStatus, PaymentStatus
from payments.payin.tasks import ExecuteOrderTask, FinalizePaymentTask, OrderResult
from payments.psp.simulator import SimulatedPsp
from payments.refunds import logic
from payments.refunds.models import RefundRequest
from payments.refunds.repository import RefundsRepository
from tests.unit.conftest import Repos, store_checkout


@pytest.fixture()
def psp(ddb: Any) -> SimulatedPsp:
    return SimulatedPsp()


@pytest.fixture()
def refunds(repos: Repos) -> RefundsRepository:
    return RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)


def _finalize(repos: Repos, checkout: str, po: str) -> None:
    finalize_payment(
        FinalizePaymentTask(
            action="finalize_payment",
            checkout_id=checkout,
            order_results=[OrderResult(payment_order_id=po, outcome="SUCCESS")],
        ),
        repos.payments,
    )


def _paid(repos: Repos, psp: SimulatedPsp, po: str, amount_minor: int = 7000) -> str:
    checkout = f"chk_{po}"
    store_checkout(repos.payments, checkout, [(po, "seller_books", amount_minor, "USD")])
    repos.payments.move_payment(checkout, PaymentStatus.PROCESSING)
    task = ExecuteOrderTask(
        checkout_id=checkout, payment_order_id=po, payment_method=PaymentMethod(type="card", token="tok_visa")
    )
    assert execute_order(task, repos.payments, psp).status is OrderStatus.SUCCESS
    credit_seller(po, repos.payments, repos.wallets)
    book_payin(po, repos.payments, repos.ledger)
    _finalize(repos, checkout, po)
    return checkout


def _parked_refund(refunds: RefundsRepository, refund_id: str, reason: str, kind: AttentionKind) -> None:
    """A refund of 10.00 USD of po_1, accepted (PENDING, its workflow not started), then parked."""
    logic.accept_refund(
        "key-r",
        RefundRequest(refund_id=refund_id, payment_order_id="po_1", amount="10.00", currency="USD"),
        refunds,
        start=False,
    )
    refunds.flag_attention(refund_id, reason, kind)


def _refunded_then_charged_back(repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp) -> str:
    """po_1 of 70.00 refunded 60.00, then charged back 70.00: booked, and parked for a person."""
    checkout = _paid(repos, psp, "po_1")
    logic.accept_refund(
        "key-rf_1",
        RefundRequest(refund_id="rf_1", payment_order_id="po_1", amount="60.00", currency="USD"),
        refunds,
        start=False,
    )
    execution = logic.execute_refund("rf_1", refunds, psp)
    logic.apply_refund_outcome({"refund_id": "rf_1", "execution": execution}, refunds)
    booked = refunds.book_chargeback(repos.payments.get_order("po_1"), "dsp_1", Money(7000, "USD"))
    assert booked.applied and booked.needs_attention
    return checkout


def _invariants(repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp) -> Report:
    return check(
        repos.payments,
        repos.wallets,
        repos.ledger,
        list(psp.all_charges()),
        refunds=refunds,
        psp_refunds=list(psp.all_refunds()),
    )


@pytest.fixture()
def rerun_workflow(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a resume's execution of the payment workflow does to a settled checkout: every step is
    done already, so only FinalizePayment has an effect (it clears re-drivable flags of what is settled).
    Step Functions itself is not run here; the checkouts re-run are listed."""
    started: list[str] = []

    def start(checkout_id: str, repo: Any = None) -> tuple[str, str]:
        started.append(checkout_id)
        order_id = repos.payments.get(checkout_id).payment_order_ids[0]
        _finalize(repos, checkout_id, order_id)
        return f"{checkout_id}-resume-1", f"arn:aws:states:us-east-1:123456789012:execution:payments:{checkout_id}"

    monkeypatch.setattr(operations, "start_resume_execution", start)
    monkeypatch.setattr(operations, "wait_execution", lambda arn, timeout: "SUCCEEDED")
    return started


def test_the_chargeback_on_a_refunded_order_is_parked_for_a_person(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    _refunded_then_charged_back(repos, refunds, psp)
    order = repos.payments.get_order("po_1")
    assert order.needs_attention and order.attention_kind == AttentionKind.PERSON.value
    assert order.overpaid_flagged_minor == 6000 + 7000
    assert _invariants(repos, refunds, psp).violations == []


def test_resume_never_clears_a_flag_that_needs_a_person(
    repos: Repos,
    refunds: RefundsRepository,
    psp: SimulatedPsp,
    rerun_workflow: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the chargeback-on-a-refunded-order claim parked on po_1
    checkout = _refunded_then_charged_back(repos, refunds, psp)
    # When an operator resumes its checkout
    code = main(["resume", checkout, "--output", "table"])
    out = capsys.readouterr().out
    # Then the workflow re-ran, but the flag is still open: resume says it needs a person, in words
    assert rerun_workflow == [checkout]
    order = repos.payments.get_order("po_1")
    assert order.needs_attention and "claim to pursue" in (order.attention_reason or "")
    header, row = out.splitlines()[:2]
    assert header.split()[-3:] == ["CLEARED", "STILL", "PARKED"] and row.split()[-2:] == ["-", "-"]  # nothing cleared
    assert "needs a person" in out and "payments attention resolve po_1" in out
    assert code == 1
    # And stuck still lists it, and verify holds (the over-return is known to a person)
    assert [p.checkout_id for p in operations.find_stuck(operations.parse_duration("15m"))] == [checkout]
    assert _invariants(repos, refunds, psp).violations == []


def test_a_later_execution_of_the_workflow_does_not_clear_a_flag_that_needs_a_person(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    checkout = _refunded_then_charged_back(repos, refunds, psp)
    _finalize(repos, checkout, "po_1")  # a re-drive's FinalizePayment on a settled order
    assert repos.payments.get_order("po_1").needs_attention
    assert repos.payments.clear_attention("po_1", "resumed") is False


def test_resume_still_clears_a_redrivable_flag_once_the_order_is_settled(
    repos: Repos, psp: SimulatedPsp, rerun_workflow: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a settled order whose wallet step had run out of retries in an earlier execution
    checkout = _paid(repos, psp, "po_1")
    repos.payments.flag_attention("po_1", "wallet step: StoreUnavailable: throttled", AttentionKind.REDRIVE)
    # When resumed / Then the re-run's FinalizePayment clears it, with its trail
    assert main(["resume", checkout]) == 0
    order = repos.payments.get_order("po_1")
    assert not order.needs_attention and order.attention_resolution == "settled by a later execution of the workflow"
    assert order.attention_resolved_by is None


def test_a_redrivable_flag_never_downgrades_an_open_flag_that_needs_a_person(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    _refunded_then_charged_back(repos, refunds, psp)
    assert repos.payments.flag_attention("po_1", "recovery: still unfinished", AttentionKind.REDRIVE) is False
    order = repos.payments.get_order("po_1")
    assert order.attention_kind == AttentionKind.PERSON.value and "claim to pursue" in (order.attention_reason or "")
    assert "recovery: still unfinished" in order.anomalies[-1]["what"]


def test_attention_resolve_closes_the_flag_recording_who_when_and_why(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the parked claim, listed as needing a person
    _refunded_then_charged_back(repos, refunds, psp)
    assert main(["attention", "list", "--output", "table"]) == 1
    assert "po_1" in capsys.readouterr().out
    # When an operator resolves it with a note
    code = main(
        ["attention", "resolve", "po_1", "--note", "claim filed with the acquirer, case 4711", "--output", "table"]
    )
    out = capsys.readouterr().out
    # Then it is closed, with who (the caller's AWS identity), when and why, on the order and in its log
    assert code == 0 and "resolved order po_1" in out
    order = repos.payments.get_order("po_1")
    assert not order.needs_attention
    assert order.attention_resolved_by == "arn:aws:sts::123456789012:user/moto"
    assert order.attention_resolution == "claim filed with the acquirer, case 4711"
    assert order.attention_resolved_at and order.attention_resolved_at >= (order.attention_flagged_at or "")
    raw = repos.payments.ddb.get_item(TableName=repos.payments.table, Key=order_key("po_1"))["Item"]
    (entry,) = raw["attention_log"]["L"]
    assert entry["M"]["kind"]["S"] == "PERSON" and "claim to pursue" in entry["M"]["reason"]["S"]
    # And nothing is open any more; verify accepts the over-return a person resolved
    assert main(["attention", "list"]) == 0
    assert _invariants(repos, refunds, psp).violations == []
    # And a redelivered chargeback does not reopen what the person closed
    refunds.book_chargeback(repos.payments.get_order("po_1"), "dsp_1", Money(7000, "USD"))
    assert not repos.payments.get_order("po_1").needs_attention


def test_more_money_back_after_a_resolution_parks_the_order_again(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    _refunded_then_charged_back(repos, refunds, psp)
    attention.resolve("po_1", "claim filed", who="alice")
    refunds.book_chargeback(repos.payments.get_order("po_1"), "dsp_2", Money(500, "USD"))
    order = repos.payments.get_order("po_1")
    assert order.needs_attention and order.overpaid_flagged_minor == 6000 + 7000 + 500


def test_verify_fails_an_over_return_whose_flag_nobody_resolved(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp
) -> None:
    # Given the claim's flag cleared with no person's resolution (what a resume did before)
    _refunded_then_charged_back(repos, refunds, psp)
    repos.payments.ddb.update_item(
        TableName=repos.payments.table,
        Key=order_key("po_1"),
        UpdateExpression="SET needs_attention = :no, attention_resolution = :how",
        ExpressionAttributeValues=to_values({":no": False, ":how": "resumed by execution chk_po_1-resume-1"}),
    )
    # Then invariant 8 says nobody was told
    report = _invariants(repos, refunds, psp)
    assert [(v.invariant, v.ids) for v in report.violations] == [(8, ["po_1"])]
    assert "nobody was told" in report.violations[0].detail


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["attention", "resolve", "po_404", "--note", "x"], "no order or refund 'po_404'"),
        (["attention", "resolve", "po_2", "--note", "x"], "'po_2' has no open flag to resolve"),
        (["attention", "resolve", "po_1", "--note", "  "], "--note must say why"),
        (["attention", "show", "po_404"], "no order or refund 'po_404'"),
    ],
)
def test_attention_resolve_refuses_what_it_cannot_close_in_one_line(
    repos: Repos, psp: SimulatedPsp, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    _paid(repos, psp, "po_1")
    repos.payments.flag_attention("po_1", "ExecuteOrder step: PspRequestRejected: refused", AttentionKind.PERSON)
    _paid(repos, psp, "po_2")
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert repos.payments.get_order("po_1").needs_attention


def test_a_parked_refund_is_resolved_by_its_id_and_an_id_shared_by_two_kinds_needs_item(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an order po_1 and a refund whose id is also po_1, both parked
    _paid(repos, psp, "po_1")
    _parked_refund(refunds, "po_1", "REFUND_FAILED from the PSP: refund the shopper again", AttentionKind.PERSON)
    repos.payments.flag_attention("po_1", "ExecuteOrder step: StatusConflict: contradicted", AttentionKind.PERSON)
    # When resolved without saying which / Then refused
    assert main(["attention", "resolve", "po_1", "--note", "x"]) == 2
    assert "--item order|refund" in capsys.readouterr().err
    # When resolved as the refund / Then only the refund's flag is closed
    assert (
        main(["attention", "resolve", "po_1", "--item", "refund", "--note", "shopper refunded by bank transfer"]) == 0
    )
    assert not refunds.get("po_1").needs_attention and refunds.get("po_1").attention_resolved_by
    assert repos.payments.get_order("po_1").needs_attention


def test_the_resolver_is_the_os_user_on_the_local_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setattr(attention.getpass, "getuser", lambda: "alice")
    assert attention.caller_identity() == "local user alice"


def test_stuck_shows_each_parked_items_kind_reason_and_since(
    repos: Repos, refunds: RefundsRepository, psp: SimulatedPsp, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a paid order parked for a person, and a pending refund of it parked for a re-drive
    _paid(repos, psp, "po_1")
    repos.payments.flag_attention("po_1", "ExecuteOrder step: StatusConflict: contradicted", AttentionKind.PERSON)
    _parked_refund(refunds, "rf_1", "refund workflow: the PSP did not answer", AttentionKind.REDRIVE)
    order_since = repos.payments.get_order("po_1").attention_flagged_at
    refund_since = refunds.get("rf_1").attention_flagged_at
    assert order_since and refund_since
    # When stuck lists them as JSON
    assert main(["stuck", "--output", "json"]) == 1
    listed = json.loads(capsys.readouterr().out)
    # Then each carries its flag as the API shows it: kind, reason, since
    (payment,) = listed["payments"]
    assert payment["orders"][0]["attention"] == {
        "kind": "PERSON",
        "reason": "ExecuteOrder step: StatusConflict: contradicted",
        "since": order_since,
    }
    (refund,) = listed["refunds"]
    assert refund["attention"] == {
        "kind": "REDRIVE",
        "reason": "refund workflow: the PSP did not answer",
        "since": refund_since,
    }
    # And the table says the same in its WHY IT WAITS column
    assert main(["stuck", "--output", "table"]) == 1
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[-3:] == ["WHY", "IT", "WAITS"]
    assert f"po_1 PERSON since {order_since}: ExecuteOrder step: StatusConflict: contradicted" in table
    assert f"REDRIVE since {refund_since}: refund workflow: the PSP did not answer" in table
