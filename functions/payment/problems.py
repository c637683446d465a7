"""RFC 9457 problem details (``application/problem+json``) of the checkout API.

Each ``type`` is a URN naming the problem; the README lists them all.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from payments.kernel.pan import redacted

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:payments:problem:"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    body: dict[str, Any] = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail}
    if errors:
        # field paths are made of client keys: never let them spell a card number
        body["errors"] = [{**e, "field": redacted(e["field"])} if "field" in e else e for e in errors]
    return Response(status_code=status, content_type=PROBLEM_JSON, body=json.dumps(body), headers=headers or {})


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """Pydantic/Powertools error location -> ``payment_orders[2].amount`` (or the header's name)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query"):
        parts = parts[1:]
    elif parts and parts[0] == "header":
        return "header " + "-".join(w.capitalize() for w in str(parts[1]).split("-")) if len(parts) > 1 else "header"
    # Powertools wraps a single un-embedded body model under its parameter name
    if parts and parts[0] == "request":
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(body)"


def validation_problem(
    errors: list[dict[str, str]], detail: str = "The request is not a valid checkout."
) -> Response[str]:
    return problem(422, "validation-error", "Request validation failed", detail, errors)


def as_proxy(response: Any) -> dict[str, Any]:
    """A resolver ``Response`` answered before the resolver runs, as an API Gateway proxy result."""
    return {
        "statusCode": response.status_code,
        "headers": {
            "Content-Type": response.headers.get("Content-Type", "application/problem+json"),
            **{k: v for k, v in response.headers.items() if isinstance(v, str)},
        },
        "body": response.body,
        "isBase64Encoded": False,
    }
