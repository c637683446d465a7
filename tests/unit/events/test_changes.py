"""payments.events.changes: a DynamoDB stream record (hand-built, Lambda/Pipes JSON shape) -> its CloudEvents."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from payments.events.changes import NotAStreamRecord, changes_of
from payments.events.envelope import CloudEvent, EventType, sequence_of
from payments.events.models import DATA_MODELS
from payments.kernel.dynamo import to_item
from payments.payin.models import OrderRecord, PaymentRecord

STAGE = "test"
T0, T1, T2 = "2026-12-07T00:00:00.000Z", "2026-12-07T00:00:01.000Z", "2026-12-07T00:00:02.000Z"


def record(
    old: dict[str, Any] | None, new: dict[str, Any] | None, *, seq: str = "111000000000000000001", name: str = ""
) -> dict[str, Any]:
    """A stream record as Lambda and EventBridge Pipes deliver it (images in DynamoDB JSON)."""
    item = new or old or {}
    stream: dict[str, Any] = {
        "Keys": to_item({"pk": item["pk"], "sk": item["sk"]}),
        "SequenceNumber": seq,
        "ApproximateCreationDateTime": 1796601600,  # 2026-12-07T00:00:00Z
        "StreamViewType": "NEW_AND_OLD_IMAGES",
        "SizeBytes": 100,
    }
    if old is not None:
        stream["OldImage"] = to_item(old)
    if new is not None:
        stream["NewImage"] = to_item(new)
    event_name = name or ("INSERT" if old is None else "REMOVE" if new is None else "MODIFY")
    return {
        "eventID": "1",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/payments/stream/2026-12-07T00:00:00.000",
        "dynamodb": stream,
    }


def order(status: str = "EXECUTING", **extra: Any) -> dict[str, Any]:
    history = [{"status": "NOT_STARTED", "at": T0}]
    if status != "NOT_STARTED":
        history.append({"status": status, "at": T1})
    return {
        "pk": "ORDER#po_1",
        "sk": "ORDER",
        "payment_order_id": "po_1",
        "checkout_id": "co_1",
        "seller_account": "seller_1",
        "amount_minor": 1999,
        "currency": "USD",
        "status": status,
        "status_history": history,
        "created_at": T0,
        "updated_at": T1,
        **extra,
    }


def payment(status: str = "PROCESSING", **extra: Any) -> dict[str, Any]:
    return {
        "pk": "CHECKOUT#co_1",
        "sk": "PAYMENT",
        "checkout_id": "co_1",
        "status": status,
        "is_payment_done": False,
        "buyer_id": "b_1",
        "payment_order_ids": ["po_1"],
        "payment_method_type": "card",
        "payment_method_token": "tok_visa_success",
        "idempotency_key": "k",
        "request_fingerprint": "f",
        "created_at": T0,
        "updated_at": T1,
        "unfinished": "U#3",
        **extra,
    }


def refund(status: str = "PENDING", **extra: Any) -> dict[str, Any]:
    return {
        "pk": "REFUND#rf_1",
        "sk": "REFUND",
        "refund_id": "rf_1",
        "payment_order_id": "po_1",
        "seller_account": "seller_1",
        "amount_minor": 500,
        "currency": "USD",
        "status": status,
        "created_at": T0,
        "updated_at": T1,
        **extra,
    }


def dispute(**extra: Any) -> dict[str, Any]:
    return {
        "pk": "CHARGEBACK#dp_1",
        "sk": "CHARGEBACK",
        "dispute_reference": "dp_1",
        "payment_order_id": "po_1",
        "seller_account": "seller_1",
        "amount_minor": 1999,
        "currency": "USD",
        "booked_at": T0,
        **extra,
    }


def payout(status: str = "PENDING", **extra: Any) -> dict[str, Any]:
    history = [{"status": "PENDING", "at": T0, "source": "api"}]
    if status != "PENDING":
        history.append({"status": status, "at": T2, "source": "run:2026-12-07"})
    return {
        "pk": "PAYOUT#pay_1",
        "sk": "PAYOUT",
        "payout_id": "pay_1",
        "seller_account": "seller_1",
        "currency": "EUR",
        "amount_minor": 1450,
        "status": status,
        "iban_mac": "mac-of-the-iban",
        "request_fingerprint": "f",
        "created_at": T0,
        "updated_at": T2,
        "history": history,
    }


def summary(**extra: Any) -> dict[str, Any]:
    return {
        "pk": "RUN#incoming/simulated-psp/2026-12-06.csv",
        "sk": "SUMMARY",
        "sha256": "ab" * 32,
        "format": "simulated-psp",
        "rows": 10,
        "matched": 9,
        "mismatches": 1,
        "rejected": 0,
        "clean": False,
        "report_key": "reports/2026-12-06.json",
        "window_day": "2026-12-06",
        **extra,
    }


def orders_never(payment: PaymentRecord) -> list[OrderRecord]:
    raise AssertionError("no order read expected")


def events(rec: dict[str, Any], orders_of: Any = orders_never) -> list[CloudEvent]:
    found = changes_of(rec, stage=STAGE, orders_of=orders_of)
    for event in found:  # every event's data is its type's model
        DATA_MODELS[event.type].model_validate(event.data)
        assert event.source == "urn:payments:test"
    return found


def test_an_order_reaching_success_is_one_event_timed_by_its_history() -> None:
    [event] = events(record(order("EXECUTING"), order("SUCCESS", psp_reference="psp_1")))
    assert (event.type, event.subject, event.time) == (EventType.PAYMENT_ORDER_SUCCEEDED, "po_1", T1)
    assert event.data["amount"] == "19.99" and event.data["status"] == "SUCCESS"
    assert event.sequence == sequence_of("111000000000000000001", 0)


def test_an_order_failing_and_an_order_created_final() -> None:
    [failed] = events(record(order("EXECUTING"), order("FAILED", failure_reason="declined")))
    assert failed.type is EventType.PAYMENT_ORDER_FAILED
    assert failed.data["failure_reason"] == "declined"
    assert [e.type for e in events(record(None, order("NOT_STARTED")))] == []


def test_a_counter_or_flag_on_a_final_order_is_no_event() -> None:
    before, after = order("SUCCESS"), order("SUCCESS", wallet_updated=True, updated_at=T2)
    assert events(record(before, after)) == []


def test_a_rewrite_of_the_same_values_is_no_event() -> None:
    assert events(record(order("SUCCESS"), order("SUCCESS"))) == []
    assert events(record(summary(), summary())) == []


def test_a_removed_item_is_no_event() -> None:
    assert events(record(order("SUCCESS"), None)) == []


def test_a_redelivered_record_gives_the_same_ids_and_another_record_other_ids() -> None:
    rec = record(order("EXECUTING"), order("SUCCESS"))
    first, again = events(rec), events(copy.deepcopy(rec))
    assert [e.id for e in first] == [e.id for e in again]
    assert first == again
    later = record(order("EXECUTING"), order("SUCCESS"), seq="111000000000000000002")
    assert events(later)[0].id != first[0].id
    assert events(later)[0].sequence > first[0].sequence


def test_an_order_reaching_success_as_its_flag_closes_is_two_events_in_order() -> None:
    flagged = {
        "needs_attention": True,
        "attention_kind": "REDRIVE",
        "attention_reason": "x",
        "attention_flagged_at": T0,
    }
    closed = {**flagged, "needs_attention": False, "attention_resolved_at": T2, "attention_resolution": "settled"}
    found = events(record(order("EXECUTING", **flagged), order("SUCCESS", **closed)))
    assert [e.type for e in found] == [EventType.PAYMENT_ORDER_SUCCEEDED, EventType.ATTENTION_RESOLVED]
    assert found[0].sequence < found[1].sequence and found[0].id != found[1].id
    resolved = found[1]
    assert resolved.subject == "po_1" and resolved.time == T2
    assert resolved.data["resource"] == "payment_order" and resolved.data["open"] is False
    assert resolved.data["resolution"] == "settled"


def test_attention_raised_and_parked_again_but_not_a_repeat() -> None:
    flag = {
        "needs_attention": True,
        "attention_kind": "PERSON",
        "attention_reason": "claim",
        "attention_flagged_at": T1,
    }
    [raised] = events(record(order("SUCCESS"), order("SUCCESS", **flag)))
    assert raised.type is EventType.ATTENTION_RAISED and raised.time == T1
    assert raised.data == {
        "resource": "payment_order",
        "resource_id": "po_1",
        "open": True,
        "kind": "PERSON",
        "reason": "claim",
        "flagged_at": T1,
        "resolved_at": None,
        "resolved_by": None,
        "resolution": None,
    }
    again = {**flag, "attention_flagged_at": T2, "attention_reason": "more"}
    assert [e.type for e in events(record(order("SUCCESS", **flag), order("SUCCESS", **again)))] == [
        EventType.ATTENTION_RAISED
    ]
    anomaly = {**flag, "anomalies": [{"what": "late", "at": T2}]}
    assert events(record(order("SUCCESS", **flag), order("SUCCESS", **anomaly))) == []


def test_a_payment_reaching_a_final_status_carries_its_orders_as_the_api_answers() -> None:
    read: list[str] = []

    def orders_of(p: PaymentRecord) -> list[OrderRecord]:
        read.append(p.checkout_id)
        return [OrderRecord.model_validate({k: v for k, v in order("SUCCESS").items() if k not in ("pk", "sk")})]

    done = payment("SUCCEEDED", is_payment_done=True, finalized_at=T2)
    del done["unfinished"]
    [event] = events(record(payment("PROCESSING"), done), orders_of)
    assert (event.type, event.subject, event.time) == (EventType.PAYMENT_SUCCEEDED, "co_1", T2)
    assert event.data["payment_orders"][0]["payment_order_id"] == "po_1" and read == ["co_1"]
    assert "tok_visa_success" not in str(event.data)  # the card token is no part of the resource
    for status, type_ in (
        ("PARTIALLY_FAILED", EventType.PAYMENT_PARTIALLY_FAILED),
        ("FAILED", EventType.PAYMENT_FAILED),
    ):
        assert [e.type for e in events(record(payment(), payment(status)), orders_of)] == [type_]
    # PENDING -> PROCESSING, and a final payment written again (recovery due removed): no event, no read
    assert events(record(payment("PENDING"), payment("PROCESSING"))) == []
    assert events(record(payment("SUCCEEDED"), payment("SUCCEEDED", unfinished="U#4"))) == []


def test_a_refund_decided_returned_and_flagged() -> None:
    [succeeded] = events(record(refund(), refund("SUCCEEDED", updated_at=T2, decided_by="psp")))
    assert (succeeded.type, succeeded.subject, succeeded.time) == (EventType.REFUND_SUCCEEDED, "rf_1", T2)
    assert succeeded.data["amount"] == "5.00" and succeeded.data["status"] == "SUCCEEDED"
    [failed] = events(record(refund(), refund("FAILED", failure_reason="refused")))
    assert failed.type is EventType.REFUND_FAILED
    returned = {
        "needs_attention": True,
        "attention_kind": "PERSON",
        "attention_reason": "REFUNDED_REVERSED",
        "attention_flagged_at": T2,
        "returned_reference": "psp_back_1",
        "returned_at": T2,
    }
    found = events(record(refund("SUCCEEDED"), refund("SUCCEEDED", **returned)))
    assert [e.type for e in found] == [EventType.REFUND_RETURNED, EventType.ATTENTION_RAISED]
    assert found[0].data["returned_at"] == T2 and found[0].time == T2
    assert found[1].data["resource"] == "refund" and found[1].subject == "rf_1"


def test_each_dispute_step_is_one_event() -> None:
    [chargeback] = events(record(None, dispute()))
    assert (chargeback.type, chargeback.subject, chargeback.time) == (EventType.DISPUTE_CHARGEBACK, "dp_1", T0)
    assert chargeback.data["chargeback_amount"] == "19.99" and chargeback.data["reversed_amount"] is None
    reversed_ = dispute(reversed_minor=1999, reversed_at=T1)
    [reversal] = events(record(dispute(), reversed_))
    assert (reversal.type, reversal.time, reversal.data["step"]) == (EventType.DISPUTE_REVERSED, T1, "reversed")
    assert reversal.data["reversed_amount"] == "19.99"
    second = dispute(reversed_minor=1999, reversed_at=T1, second_minor=1000, second_at=T2)
    [again] = events(record(reversed_, second))
    assert (again.type, again.data["second_chargeback_amount"]) == (EventType.DISPUTE_SECOND_CHARGEBACK, "10.00")


def test_each_payout_status_is_one_event_and_no_iban() -> None:
    assert events(record(None, payout("PENDING"))) == []
    for status, type_ in (
        ("SUBMITTED", EventType.PAYOUT_SUBMITTED),
        ("PAID", EventType.PAYOUT_PAID),
        ("FAILED", EventType.PAYOUT_FAILED),
        ("RETURNED", EventType.PAYOUT_RETURNED),
    ):
        [event] = events(record(payout("PENDING"), payout(status)))
        assert (event.type, event.subject, event.time) == (type_, "pay_1", T2)
        assert event.data["amount"] == "14.50" and "iban" not in str(event.data).lower()


def test_a_reconciliation_summary_with_new_content_is_one_event() -> None:
    [first] = events(record(None, summary()))
    assert (first.type, first.subject) == (EventType.RECONCILIATION_COMPLETED, "incoming/simulated-psp/2026-12-06.csv")
    assert first.time == "2026-12-07T00:00:00.000Z"  # the record's ApproximateCreationDateTime
    assert first.data["settlement_day"] == "2026-12-06" and first.data["mismatches"] == 1
    assert len(events(record(summary(), summary(matched=10, mismatches=0, clean=True)))) == 1


def test_a_run_that_leaves_the_reconciliation_resource_as_it_was_is_no_event() -> None:
    # A bank file sent twice: its second run applies nothing new ("already"), which only its counts record
    first = summary(format="pain.002", counts={"applied": 3, "already": 0})
    again = summary(format="pain.002", counts={"applied": 0, "already": 3})
    assert events(record(first, again)) == []
    # and a run of the same file whose result the resource shows differently is one
    assert len(events(record(again, {**again, "matched": 10, "mismatches": 0, "clean": True}))) == 1


def test_items_without_events_and_records_that_are_not_stream_records() -> None:
    assert events(record(None, {"pk": "RUN#k", "sk": "MISMATCH#ab#x", "status": "OPEN"})) == []
    assert events(record(None, {"pk": "PAYOUT#EUR#100", "sk": "incoming/x.csv"})) == []
    with pytest.raises(NotAStreamRecord):
        changes_of({"eventName": "INSERT"}, stage=STAGE, orders_of=orders_never)
