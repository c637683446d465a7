"""The events' catalogue: a JSON Schema of every type's envelope, and validate_event naming what fails where."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from payments.events.envelope import CloudEvent, EventType, sequence_of
from payments.events.models import DATA_MODELS
from payments.payin.models import PaymentOrderOut
from payments.payin.status import OrderStatus
from payments.payouts.bank_account import mask
from payments_dev.events_catalogue import example_events
from payments_dev.events_schemas import DESCRIPTIONS, InvalidEvent, event_schema, schemas, validate_event

IBAN = "DE89370400440532013000"  # the IBAN of every textbook (valid check digits)
CARD = "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def events() -> dict[EventType, dict[str, Any]]:
    return example_events(stage="dev")


def _event(events: dict[EventType, dict[str, Any]], type_: EventType) -> dict[str, Any]:
    return copy.deepcopy(events[type_])


def _errors(event: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event)
    return raised.value.errors


def test_every_type_has_a_schema_of_its_whole_envelope() -> None:
    # Given the catalogue
    catalogue = schemas()
    # Then it has one schema per type of the contract, and nothing else
    assert list(catalogue) == list(EventType)
    for type_, schema in catalogue.items():
        # each a valid draft 2020-12 schema, its definitions local
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["title"] == type_.value and schema["description"] == DESCRIPTIONS[type_]
        # of the whole envelope: every attribute the contract lists, required, none other allowed
        assert schema["required"] == list(CloudEvent.model_fields) == list(schema["properties"])
        assert schema["additionalProperties"] is False
        # the type fixed, the data the type's model, closed like every object in it
        assert schema["properties"]["type"]["const"] == type_.value
        model = DATA_MODELS[type_].__name__
        assert schema["properties"]["data"]["$ref"] == f"#/$defs/{model}"
        objects = [d for d in schema["$defs"].values() if d.get("type") == "object"]
        assert model in schema["$defs"] and objects
        assert all(d["additionalProperties"] is False for d in objects)


def test_a_schema_is_a_copy_that_a_caller_may_change() -> None:
    first = schemas()[EventType.PAYOUT_PAID]
    first["properties"].clear()
    assert schemas()[EventType.PAYOUT_PAID] == event_schema(EventType.PAYOUT_PAID)


@pytest.mark.parametrize("type_", list(EventType), ids=str)
def test_a_realistic_event_of_every_type_validates(events: dict[EventType, dict[str, Any]], type_: EventType) -> None:
    # Given an event as published, its data built from the type's model
    event = _event(events, type_)
    assert DATA_MODELS[type_].model_validate(event["data"]).model_dump(mode="json") == event["data"]
    # Then it validates against its type's schema, with the standalone schema too
    validate_event(event)
    assert not list(Draft202012Validator(event_schema(type_)).iter_errors(event))


def test_an_event_published_with_another_types_data_fails_on_each_field(
    events: dict[EventType, dict[str, Any]],
) -> None:
    # Given a refund's event relabelled as a payment's
    event = _event(events, EventType.REFUND_SUCCEEDED)
    event["type"] = EventType.PAYMENT_SUCCEEDED.value
    # Then the error names the type it claims and each field of the data that fails
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event)
    error = raised.value
    assert error.type == "payments.payment.succeeded"
    assert ("data.checkout_id", "is missing") in error.errors
    assert ("data.refund_id", "is not a field of PaymentOut") in error.errors
    assert "payments.payment.succeeded" in str(error) and "data.checkout_id: is missing" in str(error)


def test_a_type_outside_the_catalogue_fails_on_its_type(events: dict[EventType, dict[str, Any]]) -> None:
    event = _event(events, EventType.PAYOUT_PAID)
    event["type"] = "payments.payout.cancelled"
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event)
    assert raised.value.type == "payments.payout.cancelled"
    assert raised.value.errors == [("type", "is not an event type of the catalogue")]
    # a type that is no name is not repeated in the error
    event["type"] = "payments.4111111111111111"
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event)
    assert raised.value.type is None and "4111" not in str(raised.value)
    del event["type"]
    assert _errors(event) == [("type", "is missing")]
    assert _errors([event]) == [("(event)", "must be an object, not array")]


def test_a_missing_or_malformed_sequence_fails_on_sequence(events: dict[EventType, dict[str, Any]]) -> None:
    event = _event(events, EventType.PAYMENT_ORDER_SUCCEEDED)
    del event["sequence"]
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event)
    assert raised.value.errors == [("sequence", "is missing")]
    assert str(raised.value) == "invalid event of type payments.payment_order.succeeded: sequence: is missing"
    # a sequence that does not compare as the stream's numbers do (unpadded)
    event["sequence"] = "49600000000000000000000.00"
    assert _errors(event) == [("sequence", r"does not match the pattern ^[0-9]{40}\.[0-9]{2}$")]
    event["sequence"] = sequence_of("49600000000000000000000")
    validate_event(event)


def test_an_amount_written_as_a_number_fails_on_its_path(events: dict[EventType, dict[str, Any]]) -> None:
    # Given amounts as floats (a number is never money in an event: decimal strings only)
    payout = _event(events, EventType.PAYOUT_PAID)
    payout["data"]["amount"] = 1250.0
    payment = _event(events, EventType.PAYMENT_SUCCEEDED)
    payment["data"]["payment_orders"][1]["amount"] = 12.0
    dispute = _event(events, EventType.DISPUTE_REVERSED)
    dispute["data"]["reversed_amount"] = 49.9
    # Then each fails with the field's path, an optional one too
    assert _errors(payout) == [("data.amount", "must be of type string, not number")]
    assert _errors(payment) == [("data.payment_orders[1].amount", "must be of type string, not number")]
    assert _errors(dispute) == [("data.reversed_amount", "must be of type string or null, not number")]


def test_an_iban_in_full_fails_where_the_model_has_no_such_field(events: dict[EventType, dict[str, Any]]) -> None:
    # Given a payout's event carrying the seller's IBAN, which its model does not show
    event = _event(events, EventType.PAYOUT_RETURNED)
    event["data"]["iban"] = IBAN
    # Then the field is refused twice over: not in the model, and an IBAN in full
    with pytest.raises(InvalidEvent) as raised:
        validate_event(event)
    assert raised.value.errors == [
        ("data.iban", "is not a field of PayoutOut"),
        ("data.iban", "writes an IBAN in full (an event shows an IBAN only masked)"),
    ]
    # and the error never repeats the IBAN
    assert IBAN not in str(raised.value) and IBAN[-4:] not in str(raised.value)


def test_an_iban_or_a_card_number_in_a_field_of_the_model_fails(events: dict[EventType, dict[str, Any]]) -> None:
    event = _event(events, EventType.PAYOUT_FAILED)
    event["data"]["failure_reason"] = f"AC01 {IBAN}"
    assert _errors(event) == [("data.failure_reason", "writes an IBAN in full (an event shows an IBAN only masked)")]
    refund = _event(events, EventType.REFUND_FAILED)
    refund["data"]["reason"] = f"the shopper paid with {CARD}"
    assert _errors(refund) == [("data.reason", "writes a card number")]
    # an IBAN masked as the API shows it is not refused
    event["data"]["failure_reason"] = f"AC01 {mask(IBAN)}"
    validate_event(event)


def test_extra_envelope_attributes_fail_each_by_name(events: dict[EventType, dict[str, Any]]) -> None:
    event = _event(events, EventType.RECONCILIATION_COMPLETED)
    event["partitionkey"] = "seller_lisbon_ceramics"
    event["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert _errors(event) == [
        ("partitionkey", "is not an attribute of the envelope"),
        ("traceparent", "is not an attribute of the envelope"),
    ]


def test_nested_objects_are_closed_and_enums_checked(events: dict[EventType, dict[str, Any]]) -> None:
    # Given an order event whose data is an order with an internal field and an unknown status
    order = PaymentOrderOut(
        payment_order_id="po_1", seller_account="s_1", amount="1.00", currency="EUR", status=OrderStatus.SUCCESS
    ).model_dump(mode="json")
    event = _event(events, EventType.PAYMENT_ORDER_SUCCEEDED)
    event["data"] = {**order, "status": "CAPTURED", "idempotency_key": "k"}
    errors = _errors(event)
    assert ("data.idempotency_key", "is not a field of PaymentOrderOut") in errors
    assert ("data.status", "must be one of ['NOT_STARTED', 'EXECUTING', 'SUCCESS', 'FAILED']") in errors
    # an attention flag inside a refund is closed too, and its nullable fields take a string or null only
    refund = _event(events, EventType.REFUND_RETURNED)
    refund["data"]["attention"]["since"] = 1
    refund["data"]["attention"]["owner"] = "ops"
    assert _errors(refund) == [
        ("data.attention.owner", "is not a field of AttentionOut"),
        ("data.attention.since", "must be of type string or null, not integer"),
    ]
