"""The request guard: what runs on an API Gateway event before anything is parsed further, logged or stored.

In order, each step answering a 4xx RFC 9457 problem that names the field and the
rule, never the value:

1. the card-number policy (:mod:`payments.kernel.pan`) over the path (its parameters), the
   query string (every name, and every value of a repeated parameter) and the
   ``Idempotency-Key`` header (the one header we store):
   422 ``card-number-rejected``;
2. an unknown method on a known path: 405 ``method-not-allowed`` with ``Allow``;
3. for a route that takes a body: the media type (only ``application/json``, with an
   optional ``charset=utf-8``; else 415), the size (413), UTF-8 (400), the nesting
   depth counted over the text without recursion (400), the JSON syntax (400), then
   the card-number policy over every key and value (duplicate keys included: 422),
   control characters (422), and duplicate keys (422).

A route that takes no body never sees one: a GET's body is dropped unread.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response

from functions.merchant_words import CARD_NUMBER, IDENTIFIER, sentence
from functions.payment.problems import problem, validation_problem
from payments.kernel.config import MAX_BODY_BYTES, MAX_JSON_DEPTH
from payments.kernel.observability import count, logger
from payments.kernel.pan import Pairs, contains_pan, find_control_characters, find_pans, redacted

#: a JSON string (escapes included) or one bracket: strings are skipped, brackets counted
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)
_CHARSETS = {"utf-8", "utf8"}


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if arrays/objects nest deeper than ``limit`` (brackets inside strings do not count).

    A scan, not a parse: ``"[" * 30000`` is answered in linear time, with no recursion.
    """
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group(0)
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def card_number_problem(fields: list[str], where: str) -> Response[str]:
    count("CardNumberRejected")
    logger.warning(f"request rejected: card number in {where}", extra={"fields": [redacted(f) for f in fields]})
    return problem(
        422,
        "card-number-rejected",
        "Card number not accepted",
        "Raw card numbers are never accepted; send a PSP token in payment_method.token. Nothing was stored.",
        [{"field": f, "message": sentence(f, CARD_NUMBER)} for f in fields],
    )


def malformed(detail: str) -> Response[str]:
    return problem(400, "malformed-request", "Malformed request", detail, [{"field": "(body)", "message": detail}])


def header(event: dict[str, Any], name: str) -> str | None:
    lower = name.lower()
    headers: dict[str, str] = event.get("headers") or {}  # API Gateway's proxy event: names and values are strings
    multi_value_headers: dict[str, list[str]] = event.get("multiValueHeaders") or {}
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    for key, values in multi_value_headers.items():
        if key.lower() == lower and values:
            return values[0]
    return None


def _headers_named(event: dict[str, Any], name: str) -> list[str]:
    lower = name.lower()
    found = [v for k, v in (event.get("headers") or {}).items() if k.lower() == lower and isinstance(v, str)]
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == lower:
            found.extend(v for v in values or [] if isinstance(v, str))
    return found


def _path_fields(path: str, routes: list[Any]) -> list[str]:
    """The path parameters (or "path") holding a card number."""
    for route in routes:
        match = route.rule.match(path)
        if match and match.groupdict():
            named = [name for name, value in match.groupdict().items() if contains_pan(unquote(value or ""))]
            if named:
                return named
    return ["path"]


def _unroutable_parameters(path: str, routes: list[Any]) -> list[str]:
    for route in routes:
        if "{" not in route.openapi_path:
            continue
        shape = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(route.openapi_path))
        match = re.fullmatch(shape, path)
        if match:
            return sorted(match.groupdict())
    return []


def guard_request(event: dict[str, Any], routes: list[Any]) -> tuple[dict[str, Any], Response[str] | None]:
    """Check an API Gateway proxy event; returns the event to resolve (body decoded) or the rejection."""
    path = event.get("path") or "/"
    method = str(event.get("httpMethod") or "").upper()
    # 1. the card-number policy outside the body, 2. the route and the method
    rejection = _card_number_outside_body(event, path, routes)
    matching: list[Any] = []
    if rejection is None:
        matching, rejection = _route(path, method, routes)
    if rejection is not None:
        return event, rejection
    takes_body = any(route.method == method and route.body_field is not None for route in matching)
    if not takes_body:
        return {**event, "body": None, "isBase64Encoded": False}, None
    # 3. the body
    raw = event.get("body")
    if not raw:
        return event, None
    text, rejection = _body_text(event, raw)
    if rejection is None:
        rejection = _document_problem(text)
    if rejection is not None:
        return event, rejection
    return {**event, "body": text, "isBase64Encoded": False}, None


def _card_number_outside_body(event: dict[str, Any], path: str, routes: list[Any]) -> Response[str] | None:
    """A card number in the path, the query string (names or values) or the Idempotency-Key."""
    if contains_pan(path) or contains_pan(unquote(path)):
        return card_number_problem(_path_fields(path, routes), "path")
    # every value of a repeated parameter: API Gateway's single-value map holds only one of them
    query: dict[str, list[Any]] = {}
    for name, values in (event.get("multiValueQueryStringParameters") or {}).items():
        query.setdefault(name, []).extend(values or [])
    for name, value in (event.get("queryStringParameters") or {}).items():
        query.setdefault(name, []).append(value)
    query_fields: list[str] = []
    for name, values in query.items():
        if contains_pan(str(name)):
            query_fields.append("query (key)")  # the name is the card number: never repeat it
        elif any(contains_pan(str(v)) for v in values or []):
            query_fields.append(f"query {name}")
    if query_fields:
        return card_number_problem(sorted(set(query_fields)), "query string")
    if any(contains_pan(value) for value in _headers_named(event, "Idempotency-Key")):
        return card_number_problem(["header Idempotency-Key"], "Idempotency-Key")
    return None


def _route(path: str, method: str, routes: list[Any]) -> tuple[list[Any], Response[str] | None]:
    """The routes matching the path, or why none can answer: a parameter no identifier has (422)
    or a method the path does not answer (405)."""
    matching = [route for route in routes if route.rule.match(path)]
    if not matching:
        unroutable = _unroutable_parameters(path, routes)
        if unroutable:
            # the path has a route's shape, but a parameter holds characters no identifier has
            return matching, validation_problem([{"field": n, "message": sentence(n, IDENTIFIER)} for n in unroutable])
    allowed = sorted({route.method for route in matching})
    if matching and method not in allowed:
        return matching, problem(
            405,
            "method-not-allowed",
            "Method not allowed",
            f"This path answers {', '.join(allowed)} only.",
            headers={"Allow": ", ".join(allowed)},
        )
    return matching, None


def body_bytes(raw: str, *, base64_encoded: bool) -> bytes:
    """The body's bytes as API Gateway hands them over: base64 when ``isBase64Encoded``, else text
    (a lone surrogate kept, to be refused by the UTF-8 check). ValueError: not valid base64."""
    return base64.b64decode(raw, validate=True) if base64_encoded else raw.encode("utf-8", "surrogatepass")


def _body_text(event: dict[str, Any], raw: str) -> tuple[str, Response[str] | None]:
    """The body as UTF-8 JSON text within the size bound, or why not (415, 400, 413)."""
    media_type = header(event, "Content-Type")
    if not is_json(media_type):
        return "", problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "The body must be application/json (charset utf-8, if given).",
            [{"field": "header Content-Type", "message": "must be application/json"}],
        )
    try:
        data = body_bytes(raw, base64_encoded=bool(event.get("isBase64Encoded")))
    except ValueError:  # binascii.Error included
        return "", malformed("The body is not valid base64.")
    if len(data) > MAX_BODY_BYTES:
        return "", problem(413, "payload-too-large", "Payload too large", f"The body exceeds {MAX_BODY_BYTES} bytes.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "", malformed("The body is not UTF-8 text.")
    if json_too_deep(text):
        return "", malformed(f"The body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels.")
    return text, None


def _document_problem(text: str) -> Response[str] | None:
    """Why the JSON body is refused before validation: not JSON, a card number anywhere in it,
    a control character, or a key repeated in one object."""
    try:
        document = json.loads(text, object_pairs_hook=Pairs.from_pairs)
    except (ValueError, RecursionError):
        # not JSON: still never answer (or log) a card number as something else
        if contains_pan(text):
            return card_number_problem(["(body)"], "body")
        return malformed("The body is not valid JSON.")
    pans = find_pans(document)
    if pans:
        return card_number_problem(pans, "body")
    controls = find_control_characters(document)
    if controls:
        rule = "contains a control character (U+0000-U+001F or U+007F), which no field accepts"
        return validation_problem([{"field": f, "message": sentence(f, rule)} for f in controls])
    repeated = _duplicate_keys(document)
    if repeated:
        rule = "is written twice in the same object: send each field once"
        return validation_problem([{"field": f, "message": sentence(f, rule)} for f in repeated])
    return None


def is_json(content_type: str | None) -> bool:
    """``application/json``, with at most a UTF-8 charset parameter."""
    if not content_type:
        return False
    media, *params = content_type.split(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _CHARSETS:
            return False
    return True


def _duplicate_keys(document: Any) -> list[str]:
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            pairs = node.pairs if isinstance(node, Pairs) else list(node.items())
            seen: set[str] = set()
            for key, value in pairs:
                child = f"{where}.{key}" if where else str(key)
                if key in seen and child not in found:
                    found.append(child)
                seen.add(key)
                stack.append((value, child))
        elif isinstance(node, list):
            stack.extend((value, f"{where}[{index}]") for index, value in enumerate(node))
    return found
