"""The catalogue of events: a JSON Schema (draft 2020-12) of every type's whole envelope, and a check of one event.

Each schema is generated from the models: the envelope is :class:`~payments.events.envelope.CloudEvent` with its
``type`` fixed to the one type, and ``data`` the type's model (:data:`~payments.events.models.DATA_MODELS`). Every
object in it is closed (``additionalProperties: false``): an event holds the fields its model names and nothing
else, so a field the API does not show (an IBAN, a card number, an internal flag) cannot ride along unnoticed.
Every attribute of the envelope is required: the contract lists them all, and every published event has them.

``docs/events/schemas/<type>.json`` and ``docs/events/asyncapi.yaml`` are these schemas written out
(``make events-catalogue``); a test fails when they differ from what the models make.

:func:`validate_event` checks one event against its type's schema, then checks that no value in it writes a
card number or an IBAN in full. Its errors name the type and the path of each failing field, never the value.
It runs where events are checked (the tests, the local runtime), not in a deployed function: ``jsonschema``
is a development dependency, imported when the first event is checked.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from payments.events.envelope import CloudEvent, EventType
from payments.events.models import DATA_MODELS
from payments.kernel.pan import find_pans, is_iban, walk

if TYPE_CHECKING:
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: the models' schemas as an event carries them: what a dump of the model writes
MODE: JsonSchemaMode = "serialization"

#: when each type is published (the contract's table, per type)
DESCRIPTIONS: dict[EventType, str] = {
    EventType.PAYMENT_SUCCEEDED: "A checkout reached its final status SUCCEEDED: every order succeeded.",
    EventType.PAYMENT_PARTIALLY_FAILED: "A checkout reached its final status PARTIALLY_FAILED: some orders "
    "succeeded, some failed.",
    EventType.PAYMENT_FAILED: "A checkout reached its final status FAILED: every order failed.",
    EventType.PAYMENT_ORDER_SUCCEEDED: "An order reached its final status SUCCESS: the charge was captured and "
    "the seller's wallet and the ledger updated.",
    EventType.PAYMENT_ORDER_FAILED: "An order reached its final status FAILED (declined, or refused before charging).",
    EventType.ATTENTION_RAISED: "An order, a refund or a payout was parked for a person (or for a re-run): "
    "its attention flag opened.",
    EventType.ATTENTION_RESOLVED: "An attention flag of an order, a refund or a payout was closed, by a person "
    "or by the re-run that settled it.",
    EventType.REFUND_SUCCEEDED: "A refund was accepted: its amount is taken from the seller's balance.",
    EventType.REFUND_FAILED: "A refund was refused: nothing moved.",
    EventType.REFUND_RETURNED: "A refund the PSP had accepted came back from the scheme: it is parked for a person.",
    EventType.DISPUTE_CHARGEBACK: "A chargeback was booked against an order: its amount is taken off the seller.",
    EventType.DISPUTE_REVERSED: "A chargeback was reversed (the dispute was won): its amount is given back.",
    EventType.DISPUTE_SECOND_CHARGEBACK: "A second chargeback was booked after a reversal: its amount is taken "
    "off again.",
    EventType.PAYOUT_SUBMITTED: "A payout went to the bank in a SEPA credit-transfer file.",
    EventType.PAYOUT_PAID: "The bank booked a payout.",
    EventType.PAYOUT_FAILED: "The bank rejected a payout: its money is back in the seller's available balance.",
    EventType.PAYOUT_RETURNED: "The seller's bank sent a paid payout back: its money is back in the seller's "
    "available balance and the payout account is marked invalid.",
    EventType.RECONCILIATION_COMPLETED: "A settlement file or a bank statement was reconciled: its counts, "
    "mismatches and where its report is.",
}


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed (``additionalProperties: false``)."""
    if isinstance(schema, dict):
        out = {key: closed(value) for key, value in schema.items()}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


def data_schemas(
    models: list[type[BaseModel]], ref_template: str
) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """A reference to each model's schema (``ref_template`` with its name) and the closed definitions they use."""
    references, definitions = models_json_schema([(m, MODE) for m in models], ref_template=ref_template)
    return {m: references[(m, MODE)] for m in models}, closed(definitions.get("$defs", {}))


def envelope(type_: EventType, data: dict[str, Any]) -> dict[str, Any]:
    """The object schema of ``type_``'s envelope, ``data`` the schema (or reference) of its data."""
    schema = CloudEvent.model_json_schema(mode=MODE)
    properties = dict(schema["properties"])
    properties["type"] = {"const": type_.value, "title": "Type", "description": "The event type"}
    properties["data"] = {**data, "description": properties["data"]["description"]}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def event_schema(type_: EventType) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``type_``'s whole envelope, its definitions kept local."""
    model = DATA_MODELS[type_]
    references, definitions = data_schemas([model], "#/$defs/{model}")
    return {
        "$schema": DIALECT,
        "title": type_.value,
        "description": DESCRIPTIONS[type_],
        **envelope(type_, references[model]),
        "$defs": definitions,
    }


def schemas() -> dict[EventType, dict[str, Any]]:
    """Every type's schema (:func:`event_schema`), in the order of :class:`EventType`."""
    return {type_: copy.deepcopy(_schema(type_)) for type_ in EventType}


@functools.cache
def _schema(type_: EventType) -> dict[str, Any]:
    return event_schema(type_)


class InvalidEvent(ValueError):
    """An event that its type's schema refuses, or that writes a card number or an IBAN in full.

    ``type`` is the event's type as it says it (``None`` when it names none); ``errors`` lists
    ``(path, reason)`` of each failing field (``data.payment_orders[0].amount``), without its value.
    """

    def __init__(self, type_: str | None, errors: list[tuple[str, str]]) -> None:
        self.type = type_
        self.errors = errors
        details = "; ".join(f"{path}: {reason}" for path, reason in errors)
        super().__init__(f"invalid event of type {type_ or '(none)'}: {details}")


@functools.cache
def _validator(type_: EventType) -> Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema(type_))


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (a float is a number, a dict an object)."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else "boolean"
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _failures(error: ValidationError) -> list[tuple[str, str]]:
    """(path, reason) of one schema error, phrased without the instance's value."""
    if error.validator in ("anyOf", "oneOf") and isinstance(error.schema, dict):
        branches = error.schema[error.validator]
        others = [index for index, branch in enumerate(branches) if branch != {"type": "null"}]
        if error.instance is not None and len(others) == 1 and len(others) < len(branches):
            # a nullable field that holds something: what is wrong with it is what its one other branch says
            inner = [
                failure
                for context in error.context or []
                if context.relative_schema_path and context.relative_schema_path[0] == others[0]
                for failure in _failures(context)
            ]
            path = _path(error.absolute_path)
            if len(inner) == 1 and inner[0][0] == path and inner[0][1].startswith("must be of type "):
                return [(path, inner[0][1].replace(", not ", " or null, not ", 1))]
            if inner:
                return inner
    path = _path(error.absolute_path)
    instance, schema, kind = error.instance, error.schema, error.validator
    if kind == "required" and isinstance(instance, dict):
        names = error.validator_value if isinstance(error.validator_value, list) else []
        return [(_join(path, str(name)), "is missing") for name in names if name not in instance]
    if kind == "additionalProperties" and isinstance(instance, dict) and isinstance(schema, dict):
        known = set(schema.get("properties", {}))
        where = f"a field of {schema.get('title', 'its object')}" if path else "an attribute of the envelope"
        return [(_join(path, str(name)), f"is not {where}") for name in instance if name not in known]
    if kind == "type":
        return [(path, f"must be of type {error.validator_value}, not {_json_type(instance)}")]
    if kind == "const":
        return [(path, f"must be {error.validator_value!r}")]
    if kind == "enum":
        return [(path, f"must be one of {error.validator_value}")]
    if kind == "pattern":
        return [(path, f"does not match the pattern {error.validator_value}")]
    if kind in ("anyOf", "oneOf") and isinstance(schema, dict):
        allowed = [branch.get("type") or branch.get("$ref", "?").rsplit("/", 1)[-1] for branch in schema[kind]]
        return [(path, f"must be one of: {', '.join(map(str, allowed))}")]
    return [(path, f"fails the rule {kind}: {error.validator_value!r}")]


def _sensitive(event: Any) -> list[tuple[str, str]]:
    """Paths whose key or value writes a card number, or an IBAN in full (the whole value or one word of it)."""
    found = [(path, "writes a card number") for path in find_pans(event)]
    for path, text in walk(event):
        if is_iban(text) or any(is_iban(word) for word in text.split()):
            found.append((path, "writes an IBAN in full (an event shows an IBAN only masked)"))
    return found


_TYPE_NAME = re.compile(r"[a-z_.]{1,100}")


def validate_event(event: dict[str, Any]) -> None:
    """Raise :class:`InvalidEvent` unless ``event`` (a CloudEvent as published, parsed from JSON) validates
    against its type's schema and writes no card number and no full IBAN."""
    if not isinstance(event, dict):
        raise InvalidEvent(None, [("(event)", f"must be an object, not {_json_type(event)}")])
    declared = event.get("type")
    known = {type_.value: type_ for type_ in EventType}
    if not isinstance(declared, str) or declared not in known:
        reason = "is missing" if declared is None else "is not an event type of the catalogue"
        # named back only if it reads as a type name (letters, dots, underscores): never a number someone sent
        named = declared if isinstance(declared, str) and _TYPE_NAME.fullmatch(declared) else None
        raise InvalidEvent(named, [("type", reason)])
    type_ = known[declared]
    errors = sorted(
        {failure for error in _validator(type_).iter_errors(event) for failure in _failures(error)}
        | set(_sensitive(event))
    )
    if errors:
        raise InvalidEvent(type_.value, errors)
