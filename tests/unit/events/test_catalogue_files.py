"""docs/events/: the committed schemas and AsyncAPI document are what the models make, and the AsyncAPI
document is valid AsyncAPI 3.0.

The AsyncAPI 3.0.0 JSON Schema is the official one (tests/fixtures/asyncapi/, copied unchanged from the
AsyncAPI Initiative's @asyncapi/specs package, Apache-2.0: see the NOTICE beside it): no network at test time.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from payments.events.envelope import EventType
from payments.events.models import DATA_MODELS
from payments_dev import events_catalogue
from payments_dev.events_schemas import schemas, validate_event

ROOT = Path(__file__).resolve().parents[3]
ASYNCAPI_SCHEMA = ROOT / "tests" / "fixtures" / "asyncapi" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docs" / "events" / "asyncapi.yaml").read_text())


@pytest.fixture(scope="module")
def asyncapi_validator() -> Draft7Validator:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def test_the_committed_catalogue_is_what_the_models_make() -> None:
    # Given the events' models, when the catalogue is generated
    files = events_catalogue.rendered()
    # Then docs/events holds exactly those files (after changing a model: make events-catalogue)
    assert sorted(files) == sorted([*(ROOT / "docs/events/schemas").glob("*"), ROOT / "docs/events/asyncapi.yaml"])
    assert events_catalogue.stale() == [], "docs/events is stale: run make events-catalogue"
    assert events_catalogue.main([]) == 0
    # and each schema file is the type's schema
    for type_ in EventType:
        schema = json.loads((ROOT / f"docs/events/schemas/{type_.value}.json").read_text())
        assert schema["properties"]["type"]["const"] == type_.value


def test_a_changed_missing_or_left_over_file_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of docs/events that a person edited
    copy_root = tmp_path / "repo"
    shutil.copytree(ROOT / "docs" / "events", copy_root / "docs" / "events")
    schemas_dir, asyncapi = copy_root / "docs/events/schemas", copy_root / "docs/events/asyncapi.yaml"
    monkeypatch.setattr(events_catalogue, "ROOT", copy_root)
    monkeypatch.setattr(events_catalogue, "EVENTS_DOCS", copy_root / "docs/events")
    monkeypatch.setattr(events_catalogue, "SCHEMAS_DIR", schemas_dir)
    monkeypatch.setattr(events_catalogue, "ASYNCAPI", asyncapi)
    assert events_catalogue.stale() == []
    paid = schemas_dir / "payments.payout.paid.json"
    paid.write_text(paid.read_text().replace('"additionalProperties": false', '"additionalProperties": true', 1))
    (schemas_dir / "payments.payout.cancelled.json").write_text("{}\n")
    (schemas_dir / "payments.refund.failed.json").unlink()
    asyncapi.write_text(asyncapi.read_text() + "\n")
    # Then each is reported, and the check fails
    assert sorted(events_catalogue.stale()) == sorted(
        [paid, schemas_dir / "payments.payout.cancelled.json", schemas_dir / "payments.refund.failed.json", asyncapi]
    )
    assert events_catalogue.main([]) == 1
    assert "docs/events/schemas/payments.payout.paid.json" in capsys.readouterr().out
    # and --write puts the catalogue back as the models make it
    assert events_catalogue.main(["--write"]) == 0
    assert events_catalogue.stale() == []
    assert not (schemas_dir / "payments.payout.cancelled.json").exists()


def test_the_asyncapi_document_is_valid_asyncapi_3(
    document: dict[str, Any], asyncapi_validator: Draft7Validator
) -> None:
    # Given the committed document, read as any YAML reader reads it
    # Then the official AsyncAPI 3.0.0 schema accepts it
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in asyncapi_validator.iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["operations"]["receive_payout_paid"].update(action="listen"),
        lambda d: d["channels"]["bus"]["parameters"]["stage"].update(pattern="[a-z]+"),
        lambda d: d["components"]["messages"]["payout_paid"].update(eventbridge={"detailType": "x"}),
        lambda d: d["info"].pop("version"),
    ],
    ids=["an unknown action", "a parameter field 3.0 does not have", "an unknown message field", "no version"],
)
def test_the_asyncapi_schema_refuses_what_asyncapi_3_does_not_allow(
    document: dict[str, Any], asyncapi_validator: Draft7Validator, break_it: Any
) -> None:
    broken = copy.deepcopy(document)
    break_it(broken)
    assert not asyncapi_validator.is_valid(broken)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"a reference out of the document: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            *([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
            *(r for v in node.values() for r in _refs(v)),
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_asyncapi_document_holds_together(document: dict[str, Any]) -> None:
    # What the JSON Schema cannot check (the AsyncAPI parser's own rules): every reference resolves inside the
    # document, each operation receives messages of its own channel, the address's parameters are declared
    for ref in _refs(document):
        _resolve(document, ref)
    channel = document["channels"]["bus"]
    assert channel["address"] == "payments-{stage}"
    assert set(re.findall(r"\{(\w+)\}", channel["address"])) == set(channel["parameters"])
    received = []
    for operation in document["operations"].values():
        assert operation["action"] == "receive" and operation["channel"] == {"$ref": "#/channels/bus"}
        for message in operation["messages"]:
            assert message["$ref"].startswith("#/channels/bus/messages/")
            received.append(_resolve(document, _resolve(document, message["$ref"])["$ref"])["name"])
    # and every type is one message, received by one operation
    assert received == [type_.value for type_ in EventType]
    assert {m["name"] for m in document["components"]["messages"].values()} == set(EventType)


@pytest.mark.parametrize("type_", list(EventType), ids=str)
def test_each_message_describes_its_type_and_its_example_is_a_valid_event(
    document: dict[str, Any], type_: EventType
) -> None:
    message = next(m for m in document["components"]["messages"].values() if m["name"] == type_.value)
    payload = message["payload"]
    assert payload["properties"]["type"]["const"] == type_.value
    assert payload["properties"]["data"]["$ref"] == f"#/components/schemas/{DATA_MODELS[type_].__name__}"
    assert message["headers"]["properties"]["detail-type"]["const"] == type_.value
    assert message["correlationId"]["location"] == "$message.payload#/subject"
    # the payload schema (its references into the document's components) accepts the example...
    with_components = {**payload, "components": document["components"]}
    headers = Draft7Validator(message["headers"])
    [example] = message["examples"]
    assert not list(Draft7Validator(with_components).iter_errors(example["payload"]))
    assert not list(headers.iter_errors(example["headers"]))
    # ...which is a valid event of its type by the published JSON Schema
    validate_event(example["payload"])
    assert not list(Draft202012Validator(schemas()[type_]).iter_errors(example["payload"]))
    # and refuses the same event with an amount as a number or a field the model does not have
    broken = copy.deepcopy(example["payload"])
    broken["data"]["iban"] = "DE89370400440532013000"
    assert not Draft7Validator(with_components).is_valid(broken)
    assert not headers.is_valid({**example["headers"], "detail-type": "payments.other"})
