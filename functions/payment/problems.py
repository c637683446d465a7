"""RFC 9457 problem details (``application/problem+json``) of the checkout API.

Each ``type`` is a URN naming the problem; the README lists them all.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from functions.merchant_words import detail_of, field_path
from payments.kernel.pan import redacted

__all__ = ["PROBLEM_JSON", "TYPE_PREFIX", "as_proxy", "field_path", "problem", "validation_problem"]

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


def validation_problem(errors: list[dict[str, str]], detail: str | None = None) -> Response[str]:
    """A 422 ``validation-error`` whose ``errors`` say, each in a sentence naming its field, what is
    expected (:mod:`functions.merchant_words`); its ``detail`` repeats them unless given."""
    return problem(422, "validation-error", "Request validation failed", detail or detail_of(errors), errors)


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
