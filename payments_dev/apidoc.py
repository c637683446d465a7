"""docs/api.md: the HTTP API reference, generated from the OpenAPI document (docs/openapi.json).

    .venv/bin/python -m payments_dev.apidoc            # print the reference
    .venv/bin/python -m payments_dev.apidoc --write    # write docs/api.md (make openapi does both files)

Every operation with its parameters, body and answers, then every schema with its fields and their
rules, in the document's own order: what a client needs without reading JSON. What the OpenAPI
document cannot say (idempotency, the PSP's test tokens, settlement files and their reports) is
written by hand in docs/contract.md. tests/unit/dev/test_api_doc.py fails when docs/api.md is not
what this module makes of docs/openapi.json.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "docs" / "openapi.json"
API_DOC = ROOT / "docs" / "api.md"
METHODS = ("get", "put", "post", "patch", "delete")
#: an enum longer than this is summarised (the ISO 4217 list: docs/openapi.json has it in full)
ENUM_SHOWN = 12

HEAD = """# HTTP API reference

Generated from [openapi.json](openapi.json) by `python -m payments_dev.apidoc --write` (`make openapi`
writes both from the code): do not edit by hand. The rules that the OpenAPI document cannot say
(idempotency, the PSP's test tokens, settlement files and their reports, the error types) are in
[contract.md](contract.md).
"""


def _cell(text: Any) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: Any) -> str:
    value = str(text)
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def _anchor(name: str) -> str:
    return f"schema-{name.lower()}"


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def type_of(schema: dict[str, Any]) -> str:
    """A schema's type in words: ``string``, ``array of [PaymentOrderIn](#...)``, ``string or null``."""
    name = _ref_name(schema)
    if name is not None:
        return f"[{name}](#{_anchor(name)})"
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema and "properties" not in schema:
            return " or ".join(type_of(option) for option in schema[combinator])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    return str(kind)


def rules_of(schema: dict[str, Any], enum_shown: int | None = ENUM_SHOWN) -> str:
    """The constraints of a schema (and of its non-null alternatives) in words; an enum longer than
    ``enum_shown`` is cut there (None: every value)."""
    parts: list[str] = []
    options = [schema] + [o for o in schema.get("anyOf", []) if o.get("type") != "null" and "$ref" not in o]
    for option in options:
        if "const" in option:
            parts.append(f"exactly {_code(json.dumps(option['const']))}")
        if "enum" in option:
            values = option["enum"]
            cut = len(values) if enum_shown is None else enum_shown
            shown = " ".join(_code(v) for v in values[:cut])
            more = f" and {len(values) - cut} more (openapi.json)" if len(values) > cut else ""
            parts.append(f"one of {shown}{more}")
        if "minLength" in option or "maxLength" in option:
            parts.append(_range(option.get("minLength"), option.get("maxLength"), " characters"))
        if "pattern" in option:
            parts.append(f"pattern {_code(option['pattern'])}")
        if "minItems" in option or "maxItems" in option:
            parts.append(_range(option.get("minItems"), option.get("maxItems"), " items"))
        if "minimum" in option or "maximum" in option:
            parts.append(_range(option.get("minimum"), option.get("maximum"), ""))
        if "default" in option:
            parts.append(f"default {_code(json.dumps(option['default']))}")
    return "; ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and low == high:
        return f"exactly {_number(low)}{unit}"
    if low is not None and high is not None:
        return f"{_number(low)} to {_number(high)}{unit}"
    return f"at least {_number(low)}{unit}" if low is not None else f"at most {_number(high or 0)}{unit}"


def _op_anchor(method: str, path: str) -> str:
    return "op-" + re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def _description(schema: dict[str, Any]) -> str:
    if schema.get("description"):
        return str(schema["description"])
    for option in schema.get("anyOf", []):
        if option.get("description"):
            return str(option["description"])
    return ""


def _media(content: dict[str, Any]) -> str:
    return ", ".join(f"{_code(media)} {type_of(body.get('schema', {}))}" for media, body in content.items())


def operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f'### <a id="{_op_anchor(method, path)}"></a>`{method.upper()} {path}`', ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}.**" if not op["summary"].endswith(".") else f"**{op['summary']}**", ""]
    if op.get("description"):
        lines += [op["description"], ""]
    parameters = op.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | required | type | rules | description |", "| --- | --- | --- | --- | --- | --- |"]
        for p in parameters:
            schema = p.get("schema", {})
            lines.append(
                f"| {_code(p['name'])} | {p['in']} | {'yes' if p.get('required') else 'no'} | {type_of(schema)} "
                f"| {_cell(rules_of(schema))} | {_cell(p.get('description') or _description(schema))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        required = "required" if body.get("required") else "optional"
        lines += [f"Request body ({required}): {_media(body.get('content', {}))}", ""]
    lines += ["| status | body | meaning |", "| --- | --- | --- |"]
    for status, answer in op.get("responses", {}).items():
        meaning = answer.get("description", "")
        headers = answer.get("headers", {})
        if headers:
            meaning += " Headers: " + ", ".join(
                f"{_code(name)} ({header.get('description', '')})" for name, header in headers.items()
            )
        lines.append(f"| {status} | {_media(answer.get('content', {})) or 'none'} | {_cell(meaning)} |")
    return [*lines, ""]


def schema_section(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f'### <a id="{_anchor(name)}"></a>{name}', ""]
    if schema.get("description"):
        lines += [schema["description"], ""]
    properties = schema.get("properties")
    if properties:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | rules | description |", "| --- | --- | --- | --- | --- |"]
        for field, field_schema in properties.items():
            lines.append(
                f"| {_code(field)} | {type_of(field_schema)} | {'yes' if field in required else 'no'} "
                f"| {_cell(rules_of(field_schema))} | {_cell(_description(field_schema))} |"
            )
        lines.append("")
        if schema.get("additionalProperties") is False:
            lines += ["No other field is accepted.", ""]
    elif "enum" in schema or "const" in schema:
        lines += [f"A {schema.get('type', 'value')}: {rules_of(schema)}.", ""]
    for combinator, said in (("oneOf", "exactly one of"), ("anyOf", "at least one of")):
        if combinator in schema and properties:
            lines += [f"It also matches {said} these, field by field:", ""]
            for i, option in enumerate(schema[combinator], 1):
                fields = "; ".join(
                    f"{_code(field)}: {rules_of(rule, enum_shown=None) or type_of(rule)}"
                    for field, rule in option.get("properties", {}).items()
                )
                lines.append(f"{i}. {fields}")
            lines.append("")
    return lines


def render(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    lines = [HEAD, f"## {info.get('title', 'API')} {info.get('version', '')}".rstrip(), ""]
    if info.get("summary"):
        lines += [f"{info['summary']}.", ""]
    if info.get("description"):
        lines += [info["description"], ""]
    operations = [
        (method, path, op)
        for path, item in document.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]
    lines += ["| operation | what it does |", "| --- | --- |"]
    for method, path, op in operations:
        lines.append(f"| [`{method.upper()} {path}`](#{_op_anchor(method, path)}) | {_cell(op.get('summary', ''))} |")
    lines += ["", "## Operations", ""]
    for method, path, op in operations:
        lines += operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        lines += schema_section(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="docs/api.md from docs/openapi.json")
    parser.add_argument(
        "--openapi", type=Path, default=OPENAPI, help="the OpenAPI document (default: docs/openapi.json)"
    )
    parser.add_argument("--write", action="store_true", help="write docs/api.md instead of printing it")
    args = parser.parse_args(argv)
    text = render(json.loads(args.openapi.read_text()))
    if args.write:
        API_DOC.write_text(text)
        print(f"written: {API_DOC.relative_to(ROOT)}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
