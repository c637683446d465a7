"""What the marketplace hears: the CloudEvents 1.0 envelope of every state change, and its types.

An event is derived from the write that made its change, never sent beside it: the tables that hold
resources (payments, payouts, reconciliation) have DynamoDB streams with old and new images, and a stream
record whose images show a change (a status reached, a flag raised, a dispute step booked) becomes the
events of that change (:mod:`payments.events.changes`). A write that did not commit has no stream record,
hence no event; a write that committed always has one, hence its events, whatever crashed after it.

Identity and order come from the stream record, so that a redelivery (the pipe retrying a batch, the local
reader renewing its iterator) carries the same values:

* ``sequence``: the record's ``SequenceNumber`` (DynamoDB assigns it "reflecting the order in which the
  record was published to the stream"; the records of one item appear in the order of its writes),
  zero-padded to 40 digits so that strings compare as the numbers do (CloudEvents' ``sequence`` extension
  is a lexicographically ordered string), then ``.`` and the event's index within the record (one write can
  make two changes: an order reaching SUCCESS as its attention flag is closed).
* ``id``: a UUID (version 5) of the source, subject, type and sequence: one per change, the same for every
  delivery of it.

The envelope travels in the EventBridge event's ``detail``; ``detail-type`` is the CloudEvents ``type``
and the EventBridge ``source`` is the CloudEvents ``source`` (``urn:payments:<stage>``), so that a rule
matches on either without reading the envelope.
"""

from __future__ import annotations

import json
import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SPECVERSION: Literal["1.0"] = "1.0"
DATACONTENTTYPE: Literal["application/json"] = "application/json"
#: the namespace of every event id (uuid5 of the source, subject, type and sequence)
EVENT_ID_NAMESPACE = uuid.UUID("4f0c2c8e-3b1a-5d7e-9a64-6c1d2b7e8f30")
#: digits of a stream record's SequenceNumber (DynamoDB: 21 to 40 characters)
SEQUENCE_DIGITS = 40


class EventType(StrEnum):
    """Every event type of the contract (``CONTRACT.md``, "Events"), and only those."""

    PAYMENT_SUCCEEDED = "payments.payment.succeeded"
    PAYMENT_PARTIALLY_FAILED = "payments.payment.partially_failed"
    PAYMENT_FAILED = "payments.payment.failed"
    PAYMENT_ORDER_SUCCEEDED = "payments.payment_order.succeeded"
    PAYMENT_ORDER_FAILED = "payments.payment_order.failed"
    ATTENTION_RAISED = "payments.attention.raised"
    ATTENTION_RESOLVED = "payments.attention.resolved"
    REFUND_SUCCEEDED = "payments.refund.succeeded"
    REFUND_FAILED = "payments.refund.failed"
    REFUND_RETURNED = "payments.refund.returned"
    DISPUTE_CHARGEBACK = "payments.dispute.chargeback"
    DISPUTE_REVERSED = "payments.dispute.reversed"
    DISPUTE_SECOND_CHARGEBACK = "payments.dispute.second_chargeback"
    PAYOUT_SUBMITTED = "payments.payout.submitted"
    PAYOUT_PAID = "payments.payout.paid"
    PAYOUT_FAILED = "payments.payout.failed"
    PAYOUT_RETURNED = "payments.payout.returned"
    RECONCILIATION_COMPLETED = "payments.reconciliation.completed"

    @property
    def resource(self) -> str:
        """The resource the type is about: ``payment``, ``payment_order``, ``attention``, ..."""
        return self.value.split(".")[1]


def source_of(stage: str) -> str:
    """The CloudEvents ``source`` (and EventBridge ``source``) of a stage's events."""
    return f"urn:payments:{stage}"


def bus_name(stage: str) -> str:
    """The stage's EventBridge bus."""
    return f"payments-{stage}"


def sequence_of(stream_sequence_number: str, index: int = 0) -> str:
    """The event's ``sequence``: the stream record's sequence number, zero-padded, and the event's index in it."""
    if not stream_sequence_number.isdigit() or len(stream_sequence_number) > SEQUENCE_DIGITS:
        raise ValueError(f"not a DynamoDB stream sequence number: {stream_sequence_number!r}")
    if not 0 <= index < 100:
        raise ValueError(f"event index {index} out of range")
    return f"{stream_sequence_number.zfill(SEQUENCE_DIGITS)}.{index:02d}"


def event_id(source: str, subject: str, type_: EventType, sequence: str) -> str:
    """The event's ``id``: the same for every delivery of one change, different for any other change."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\n".join((source, subject, type_.value, sequence))))


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope (JSON format) with the ``sequence`` extension, as published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = SPECVERSION
    id: str = Field(description="The same for every delivery of one change: drop a repeated id")
    source: str = Field(pattern=r"^urn:payments:[a-z0-9-]+$", description="urn:payments:<stage>")
    type: EventType
    time: str = Field(description="When the change committed (ISO 8601, UTC, milliseconds)")
    subject: str = Field(min_length=1, description="The resource's id")
    sequence: str = Field(
        pattern=r"^[0-9]{40}\.[0-9]{2}$",
        description="Increasing per subject, compared as strings: drop an event not above the last seen",
    )
    datacontenttype: Literal["application/json"] = DATACONTENTTYPE
    data: dict[str, Any] = Field(description="The resource as the API answers it")

    @classmethod
    def of(
        cls, *, stage: str, type_: EventType, subject: str, sequence: str, time: str, data: dict[str, Any]
    ) -> CloudEvent:
        source = source_of(stage)
        return cls(
            id=event_id(source, subject, type_, sequence),
            source=source,
            type=type_,
            time=time,
            subject=subject,
            sequence=sequence,
            data=data,
        )

    def put_entry(self, bus: str) -> dict[str, Any]:
        """The EventBridge ``PutEvents`` entry carrying this envelope in its ``detail``."""
        return {
            "EventBusName": bus,
            "Source": self.source,
            "DetailType": self.type.value,
            "Detail": json.dumps(self.model_dump(mode="json"), separators=(",", ":"), sort_keys=True),
            "Resources": [],
        }
