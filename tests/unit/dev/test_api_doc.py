"""docs/api.md is the API reference generated from docs/openapi.json, and it is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

from payments_dev import apidoc

ROOT = Path(__file__).resolve().parents[3]


def _document() -> dict:
    return json.loads((ROOT / "docs" / "openapi.json").read_text())


def test_docs_api_md_is_what_the_openapi_document_makes() -> None:
    # Given the committed OpenAPI document (itself checked against the code: tests/unit/payin/test_openapi.py)
    # When the reference is generated from it
    generated = apidoc.render(_document())
    # Then docs/api.md is exactly that (after changing the API: make openapi writes both)
    assert (ROOT / "docs" / "api.md").read_text() == generated, "docs/api.md is stale: run make openapi"


def test_every_operation_and_schema_is_in_the_reference_and_every_link_lands() -> None:
    # Given the reference of the committed document
    document = _document()
    text = apidoc.render(document)
    # Then each operation has its section, each schema its anchor, each field of each schema its row
    for path, item in document["paths"].items():
        for method in item:
            assert f"`{method.upper()} {path}`" in text, (method, path)
    for name, schema in document["components"]["schemas"].items():
        assert f'<a id="schema-{name.lower()}"></a>{name}' in text
        for field in schema.get("properties", {}):
            assert f"| `{field}` |" in text, (name, field)
    # and every in-page link points at an anchor of the page
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, sorted(links - anchors)


def test_a_changed_document_changes_the_reference() -> None:
    # Given the document with one more rule on one field
    document = _document()
    document["components"]["schemas"]["RefundRequest"]["properties"]["reason"]["anyOf"][0]["maxLength"] = 48
    # Then the reference says the new rule: a stale docs/api.md cannot pass the first test
    assert "1 to 48 characters" in apidoc.render(document)
    assert apidoc.render(document) != (ROOT / "docs" / "api.md").read_text()
