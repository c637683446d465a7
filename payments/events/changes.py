"""From one DynamoDB stream record to the CloudEvents of the change(s) it shows.

A stream record (the shape Lambda and EventBridge Pipes deliver: ``eventName``, ``eventSourceARN``,
``dynamodb.Keys``, ``OldImage``, ``NewImage``, ``SequenceNumber``, ``ApproximateCreationDateTime``) is one
committed write of one item. :func:`changes_of` compares its two images and answers the events of what
changed, in a fixed order (their index in ``sequence``, :func:`payments.events.envelope.sequence_of`):

* a payment ``CHECKOUT#`` / ``PAYMENT``: its status becomes final -> ``payment.<status>``, subject the
  checkout_id;
* an order ``ORDER#`` / ``ORDER``: its status becomes SUCCESS or FAILED -> ``payment_order.succeeded`` /
  ``.failed``; its flag opened (or parked again) or closed -> ``attention.raised`` / ``.resolved``; subject
  the payment_order_id;
* a refund ``REFUND#`` / ``REFUND``: its status becomes SUCCEEDED or FAILED -> ``refund.succeeded`` /
  ``.failed``; its ``returned_reference`` set or changed -> ``refund.returned``; its flag -> ``attention.*``;
  subject the refund_id;
* a dispute ``CHARGEBACK#`` / ``CHARGEBACK``: created -> ``dispute.chargeback``; ``reversed_minor`` set ->
  ``dispute.reversed``; ``second_minor`` set -> ``dispute.second_chargeback``; subject the dispute reference;
* a payout ``PAYOUT#`` / ``PAYOUT``: its status becomes SUBMITTED, PAID, FAILED or RETURNED ->
  ``payout.<status>``, subject the payout_id;
* a run summary ``RUN#<key>`` / ``SUMMARY``: written with content the resource shows differently ->
  ``reconciliation.completed``, subject the file's key (a run that leaves the resource as it was is none).

Anything else (a counter, an anomaly appended, a recovery due time, an item removed, a rewrite of the same
values) is no event. Payouts have no attention flag: a returned payout is its ``payout.returned``.

``time`` is when the change committed: the item's own timestamp of that change (an order's status history
entry, a payout's history entry, a dispute step's ``*_at``, the flag's ``attention_flagged_at`` /
``attention_resolved_at``, ``finalized_at``, ``updated_at``), else the record's ``ApproximateCreationDateTime``.

``data`` is the resource as the API answers it: the record's ``to_api()``; for a checkout the API's own
assembly (:func:`payments.payin.models.payment_out`) of the payment *and its orders*, which are not in the
record: they are read from the table by the ``orders_of`` the caller passes, so they are the orders as they
are when the event is made (at least as far as the final status the payment was computed from). Nothing here
holds a card number (a payment keeps a PSP token, which no API view shows) or an IBAN (a payout keeps a keyed
hash of it, which no API view shows).

The function is pure but for ``orders_of``: the same record gives the same events (ids, types, subjects,
sequences, times and data; a checkout's orders as they are when it is delivered again), so a redelivered
record is a repeated id, which consumers drop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from payments.events.envelope import CloudEvent, EventType, sequence_of
from payments.events.models import AttentionEventOut, DisputeOut, ReconciliationOut
from payments.kernel.dynamo import from_item
from payments.kernel.money import Money
from payments.payin.models import OrderRecord, PaymentRecord, payment_out
from payments.payin.status import AttentionKind, OrderStatus, PaymentStatus
from payments.payouts.models import PayoutRecord
from payments.payouts.outcomes import PayoutStatus
from payments.refunds.models import RefundRecord, RefundStatus

DisputeStepName = Literal["chargeback", "reversed", "second_chargeback"]
#: reads a payment's orders, in request order (the API's read: ``PaymentsRepository.orders_of``)
OrdersOf = Callable[[PaymentRecord], list[OrderRecord]]

_PAYMENT_TYPES = {
    PaymentStatus.SUCCEEDED: EventType.PAYMENT_SUCCEEDED,
    PaymentStatus.PARTIALLY_FAILED: EventType.PAYMENT_PARTIALLY_FAILED,
    PaymentStatus.FAILED: EventType.PAYMENT_FAILED,
}
_ORDER_TYPES = {
    OrderStatus.SUCCESS: EventType.PAYMENT_ORDER_SUCCEEDED,
    OrderStatus.FAILED: EventType.PAYMENT_ORDER_FAILED,
}
_REFUND_TYPES = {RefundStatus.SUCCEEDED: EventType.REFUND_SUCCEEDED, RefundStatus.FAILED: EventType.REFUND_FAILED}
_PAYOUT_TYPES = {
    PayoutStatus.SUBMITTED: EventType.PAYOUT_SUBMITTED,
    PayoutStatus.PAID: EventType.PAYOUT_PAID,
    PayoutStatus.FAILED: EventType.PAYOUT_FAILED,
    PayoutStatus.RETURNED: EventType.PAYOUT_RETURNED,
}
#: the dispute steps: the attribute that books each, when it was booked, its type
_DISPUTE_STEPS: tuple[tuple[str, str, EventType, DisputeStepName], ...] = (
    ("amount_minor", "booked_at", EventType.DISPUTE_CHARGEBACK, "chargeback"),
    ("reversed_minor", "reversed_at", EventType.DISPUTE_REVERSED, "reversed"),
    ("second_minor", "second_at", EventType.DISPUTE_SECOND_CHARGEBACK, "second_chargeback"),
)


#: the stage of the local runtime (``payments serve``): its bus is ``payments-local``
LOCAL_STAGE = "local"


def stage_of(payments_stage: str) -> str:
    """The stage events are published for: the deployed stage's name, else :data:`LOCAL_STAGE`."""
    return payments_stage or LOCAL_STAGE


class NotAStreamRecord(ValueError):
    """The input is not a DynamoDB stream record (no ``dynamodb.SequenceNumber``, no ``Keys``)."""


# a change found in a record, before it is an envelope: (type, subject, time, data)
_Change = tuple[EventType, str, str, dict[str, Any]]


def changes_of(record: Mapping[str, Any], *, stage: str, orders_of: OrdersOf) -> list[CloudEvent]:
    """The CloudEvents of the changes one stream record shows; none when it shows no change of the contract."""
    stream = record.get("dynamodb")
    if not isinstance(stream, Mapping) or not stream.get("SequenceNumber") or not stream.get("Keys"):
        raise NotAStreamRecord("not a DynamoDB stream record: dynamodb.SequenceNumber and dynamodb.Keys are required")
    keys = from_item(stream["Keys"])
    old = _image(stream.get("OldImage"))
    new = _image(stream.get("NewImage"))
    if new is None or old == new:  # removed, or written again with the same values
        return []
    committed = _approximate_time(stream.get("ApproximateCreationDateTime"))
    pk, sk = str(keys.get("pk", "")), str(keys.get("sk", ""))
    found: list[_Change]
    if sk == "PAYMENT" and pk.startswith("CHECKOUT#"):
        found = _payment(old, new, committed, orders_of)
    elif sk == "ORDER" and pk.startswith("ORDER#"):
        found = _order(old, new, committed)
    elif sk == "REFUND" and pk.startswith("REFUND#"):
        found = _refund(old, new, committed)
    elif sk == "CHARGEBACK" and pk.startswith("CHARGEBACK#"):
        found = _dispute(old, new, committed)
    elif sk == "PAYOUT" and pk.startswith("PAYOUT#"):
        found = _payout(old, new, committed)
    elif sk == "SUMMARY" and pk.startswith("RUN#"):
        found = _summary(pk.removeprefix("RUN#"), old, new, committed)
    else:
        found = []
    number = str(stream["SequenceNumber"])
    return [
        CloudEvent.of(
            stage=stage, type_=type_, subject=subject, sequence=sequence_of(number, index), time=time, data=data
        )
        for index, (type_, subject, time, data) in enumerate(found)
    ]


# --- item kinds ---------------------------------------------------------------------------------------
def _payment(old: dict[str, Any] | None, new: dict[str, Any], committed: str, orders_of: OrdersOf) -> list[_Change]:
    payment = PaymentRecord.model_validate(_fields(new))
    if not payment.status.is_final or (old is not None and old.get("status") == new.get("status")):
        return []
    data = payment_out(payment, orders_of(payment)).model_dump(mode="json")
    time = payment.finalized_at or payment.updated_at or committed
    return [(_PAYMENT_TYPES[payment.status], payment.checkout_id, time, data)]


def _order(old: dict[str, Any] | None, new: dict[str, Any], committed: str) -> list[_Change]:
    order = OrderRecord.model_validate(_fields(new))
    found: list[_Change] = []
    if order.status.is_final and (old is None or old.get("status") != new.get("status")):
        at = _last_at(order.status_history, order.status.value) or order.updated_at or committed
        found.append((_ORDER_TYPES[order.status], order.payment_order_id, at, order.to_api().model_dump(mode="json")))
    found += _attention("payment_order", order.payment_order_id, old, new, committed)
    return found


def _refund(old: dict[str, Any] | None, new: dict[str, Any], committed: str) -> list[_Change]:
    refund = RefundRecord.model_validate(_fields(new))
    data = refund.to_api().model_dump(mode="json")
    found: list[_Change] = []
    if refund.status.is_final and (old is None or old.get("status") != new.get("status")):
        found.append((_REFUND_TYPES[refund.status], refund.refund_id, refund.updated_at or committed, data))
    if refund.returned_reference and (old is None or old.get("returned_reference") != refund.returned_reference):
        found.append((EventType.REFUND_RETURNED, refund.refund_id, refund.returned_at or committed, data))
    found += _attention("refund", refund.refund_id, old, new, committed)
    return found


def _attention(
    resource: Literal["payment_order", "refund"],
    resource_id: str,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    committed: str,
) -> list[_Change]:
    """A flag opened (or parked again: open before and after, flagged anew), or closed."""
    was_open, is_open = bool(old and old.get("needs_attention")), bool(new.get("needs_attention"))
    if is_open and (not was_open or (old or {}).get("attention_flagged_at") != new.get("attention_flagged_at")):
        type_, time = EventType.ATTENTION_RAISED, new.get("attention_flagged_at") or committed
    elif was_open and not is_open:
        type_, time = EventType.ATTENTION_RESOLVED, new.get("attention_resolved_at") or committed
    else:
        return []
    data = AttentionEventOut(
        resource=resource,
        resource_id=resource_id,
        open=is_open,
        kind=AttentionKind.of(new.get("attention_kind")),
        reason=str(new.get("attention_reason") or ""),
        flagged_at=new.get("attention_flagged_at"),
        resolved_at=None if is_open else new.get("attention_resolved_at"),
        resolved_by=None if is_open else new.get("attention_resolved_by"),
        resolution=None if is_open else new.get("attention_resolution"),
    )
    return [(type_, resource_id, str(time), data.model_dump(mode="json"))]


def _dispute(old: dict[str, Any] | None, new: dict[str, Any], committed: str) -> list[_Change]:
    found: list[_Change] = []
    currency = str(new["currency"])
    for attribute, attribute_at, type_, step in _DISPUTE_STEPS:
        if new.get(attribute) is None or (old is not None and old.get(attribute) is not None):
            continue
        data = DisputeOut(
            dispute_reference=str(new["dispute_reference"]),
            payment_order_id=str(new["payment_order_id"]),
            currency=currency,
            step=step,
            chargeback_amount=Money(int(new["amount_minor"]), currency).format(),
            reversed_amount=_amount(new.get("reversed_minor"), currency),
            second_chargeback_amount=_amount(new.get("second_minor"), currency),
            booked_at=str(new["booked_at"]),
        )
        time = str(new.get(attribute_at) or committed)
        found.append((type_, data.dispute_reference, time, data.model_dump(mode="json")))
    return found


def _payout(old: dict[str, Any] | None, new: dict[str, Any], committed: str) -> list[_Change]:
    payout = PayoutRecord.model_validate(_fields(new))
    type_ = _PAYOUT_TYPES.get(payout.status)
    if type_ is None or (old is not None and old.get("status") == new.get("status")):
        return []
    entries = [entry.at for entry in payout.history if entry.status is payout.status]
    time = entries[-1] if entries else payout.updated_at or committed
    return [(type_, payout.payout_id, time, payout.to_api().model_dump(mode="json"))]


def _summary(source_key: str, old: dict[str, Any] | None, new: dict[str, Any], committed: str) -> list[_Change]:
    """A run's summary whose resource changed: a run of the same file that the summary already shows (an S3
    event delivered again, a bank file sent twice: its second run finds every entry applied already, which
    only the summary's own ``counts`` record) is no event."""
    data = _reconciliation_out(source_key, new)
    if old is not None and _reconciliation_out(source_key, old) == data:
        return []
    return [(EventType.RECONCILIATION_COMPLETED, source_key, committed, data.model_dump(mode="json"))]


def _reconciliation_out(source_key: str, item: dict[str, Any]) -> ReconciliationOut:
    return ReconciliationOut(
        source_key=source_key,
        format=str(item.get("format") or ""),
        sha256=str(item.get("sha256") or ""),
        settlement_day=item.get("window_day"),
        rows=int(item.get("rows") or 0),
        matched=int(item.get("matched") or 0),
        mismatches=int(item.get("mismatches") or 0),
        rejected=int(item.get("rejected") or 0),
        clean=bool(item.get("clean")),
        report_key=str(item.get("report_key") or ""),
        quarantine_reason=item.get("quarantine_reason"),
    )


# --- helpers ------------------------------------------------------------------------------------------
def _image(image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return from_item(image) if image else None


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}


def _last_at(history: list[dict[str, str]], status: str) -> str | None:
    times = [entry.get("at") for entry in history if entry.get("status") == status]
    return times[-1] if times else None


def _amount(minor: Any, currency: str) -> str | None:
    return None if minor is None else Money(int(minor), currency).format()


def _approximate_time(value: Any) -> str:
    """A record's ``ApproximateCreationDateTime``: epoch seconds in Lambda's and Pipes' JSON (milliseconds
    when the stream is set so), a datetime from boto3's ``get_records``; ISO 8601 UTC, milliseconds."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, int | float | Decimal) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        seconds = float(value)
        moment = datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)
    elif isinstance(value, str) and value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise NotAStreamRecord("a stream record has its ApproximateCreationDateTime")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
