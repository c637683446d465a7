"""Validation errors in the merchant's words: the one mapping from a pydantic (or Powertools) error to
what a problem's ``errors[]`` says, used by every API (``functions.api_kit``) and the request guard.

A field error is a ``{"field": path, "message": sentence}`` pair. The path is the contract's
(``payment_orders[2].amount``, ``header Idempotency-Key``, ``(body)``); the sentence names the field
and says in plain words what is expected: ``payment_orders[2].currency must be a three-letter ISO 4217
code such as USD``, ``payment_order_id is required``. Never the validator's own wording (``String
should match pattern ...``, ``Value error, ...``, ``Field required``, links to pydantic's pages) and
never the value that was sent: it may be the very thing that must not be logged or returned (a card
number written as an amount).

How a message is chosen, in order:

1. ``value_error``: a validator of ours raised ``ValueError`` with a phrase written for the merchant
   (``must be greater than zero``); it is used as it is.
2. A rule of the field itself (:data:`FIELD_RULES`, by the field's own name): what the field must be,
   whichever of its constraints was broken (length, pattern, literal value, type). An ``amount`` sent
   as a JSON number is told to be sent as a string.
3. The error's type (:data:`TYPE_RULES`): ``missing``, ``extra_forbidden``, a JSON type...
4. Anything else: a plain sentence pointing at the API reference (a test sweeps every kind of bad
   input through both APIs so that this stays unused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from payments.kernel.config import MAX_ORDERS_PER_CHECKOUT
from payments.kernel.ids import IDENTIFIER_RULE, PAYOUT_ID_RULE
from payments.kernel.pan import redacted

#: what an identifier must be (checkout_id, payment_order_id, seller_account, buyer_id, refund_id...)
IDENTIFIER = "must be " + IDENTIFIER_RULE
#: an amount sent as something else than a string (the JSON number 19.99)
AMOUNT_AS_NUMBER = 'must be sent as a string such as "19.99", not as a JSON number'
AMOUNT = (
    'must be a decimal string in major units such as "19.99": digits with at most one ".", no sign, exponent or spaces'
)
CURRENCY = "must be a three-letter ISO 4217 code such as USD"
#: a card number anywhere in a request (the request guard's card-number-rejected problem)
CARD_NUMBER = "looks like a card number: card data is never accepted, send a PSP token such as tok_visa"

#: what each field of the APIs must be, by the field's own name (the last part of its path): the rule
#: whatever constraint of it was broken. A header is named as it is written (``Idempotency-Key``).
FIELD_RULES: Mapping[str, str] = {
    "checkout_id": IDENTIFIER,
    "payment_order_id": IDENTIFIER,
    "seller_account": IDENTIFIER,
    "buyer_id": IDENTIFIER,
    "refund_id": IDENTIFIER,
    "payout_id": "must be " + PAYOUT_ID_RULE,
    "amount": AMOUNT,
    "currency": CURRENCY,
    "email": "must be an e-mail address such as buyer@example.com (at most 254 characters, no spaces)",
    "token": "must be a PSP token such as tok_visa (5-128 characters: tok_ then letters, digits or '_')",
    "type": 'must be "card", the only payment method type',
    "reason": "must be 1-64 characters of letters, digits, spaces, '_' and '-', such as requested_by_customer",
    "payment_orders": f"must be a list of 1 to {MAX_ORDERS_PER_CHECKOUT} payment orders",
    "buyer_info": 'must be an object such as {"buyer_id": "buyer_42", "email": "a@example.com"}',
    "payment_method": 'must be an object such as {"type": "card", "token": "tok_visa"}',
    "iban": (
        "must be an IBAN in capitals such as DE89370400440532013000 (two letters, two check digits, up to 30 letters "
        "and digits), electronic or printed with single spaces"
    ),
    "bic": "must be a BIC (SWIFT code) of 8 or 11 capital letters and digits such as COBADEFFXXX",
    "account_holder": (
        "must be the account holder's name: 1-70 characters, no tab or line break, not starting or ending with a space"
    ),
    "Idempotency-Key": "must be 1-255 printable ASCII characters, not starting or ending with a space",
}

#: the error types whose message is the field's rule (it says what the field must be)
_BROKEN_RULE = frozenset(
    {
        "string_type",
        "string_too_short",
        "string_too_long",
        "string_pattern_mismatch",
        "literal_error",
        "enum",
        "list_type",
        "too_short",
        "too_long",
        "model_type",
        "model_attributes_type",
        "dict_type",
    }
)


def _length(ctx: Mapping[str, Any], unit: str) -> str:
    low, high = ctx.get("min_length"), ctx.get("max_length")
    if low is not None:
        return "must not be empty" if low == 1 and unit == "characters" else f"must hold at least {low} {unit}"
    return f"must hold at most {high} {unit}"


#: what an error of each type says when the field has no rule of its own (``ctx`` holds only our
#: constraints: lengths, never the value sent)
TYPE_RULES: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda _: "is required",
    "extra_forbidden": lambda _: "is not a field of this request: remove it",
    "string_type": lambda _: "must be a JSON string",
    "string_too_short": lambda ctx: _length(ctx, "characters"),
    "string_too_long": lambda ctx: _length(ctx, "characters"),
    "string_pattern_mismatch": lambda _: "holds characters or a form this field does not accept",
    "literal_error": lambda _: "must be one of the values the API reference lists for it",
    "enum": lambda _: "must be one of the values the API reference lists for it",
    "list_type": lambda _: "must be a JSON array",
    "too_short": lambda ctx: _length(ctx, "items"),
    "too_long": lambda ctx: _length(ctx, "items"),
    "model_type": lambda _: "must be a JSON object",
    "model_attributes_type": lambda _: "must be a JSON object",
    "dict_type": lambda _: "must be a JSON object",
    "bool_type": lambda _: "must be true or false",
    "int_type": lambda _: "must be a whole JSON number",
    "json_invalid": lambda _: "must be valid JSON",
}
UNKNOWN = "is not valid: see this field in the API reference"


def field_path(loc: Sequence[Any]) -> str:
    """Pydantic/Powertools error location -> ``payment_orders[2].amount`` (or ``header Idempotency-Key``)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "path", "query"):
        parts = parts[1:]
    elif parts and parts[0] == "header":
        return "header " + _header_name(parts[1]) if len(parts) > 1 else "header"
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


def _header_name(name: object) -> str:
    return "-".join(w.capitalize() for w in str(name).split("-"))


def subject(field: str) -> str:
    """How a sentence names the field: its path, ``the body``, or ``the Idempotency-Key header``."""
    if field == "(body)":
        return "the body"
    if field.startswith("header "):
        return f"the {field.removeprefix('header ')} header"
    return field


def sentence(field: str, rule: str) -> str:
    """``field`` (as :func:`subject` names it, its digits hidden if it spells a card number) and ``rule``."""
    return f"{subject(redacted(field))} {rule}"


def rule_of(error: Mapping[str, Any]) -> str:
    """What the field of a pydantic/Powertools error must be, in the merchant's words (no subject)."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    loc = list(error.get("loc", ()))
    name = _header_name(loc[-1]) if loc[:1] == ["header"] and len(loc) > 1 else (loc[-1] if loc else None)
    if kind == "value_error" and isinstance(ctx.get("error"), ValueError):
        return str(ctx["error"])  # our own validators' phrases (payments.payin.models)
    if name == "amount" and kind == "string_type" and isinstance(error.get("input"), int | float):
        return AMOUNT_AS_NUMBER
    if kind in _BROKEN_RULE and isinstance(name, str) and name in FIELD_RULES:
        return FIELD_RULES[name]
    if kind == "missing" and loc in (["body"], ["body", "request"]):
        return "is required: a JSON object"
    describe = TYPE_RULES.get(kind)
    return describe(ctx) if describe else UNKNOWN


def field_error(error: Mapping[str, Any]) -> dict[str, str]:
    """One pydantic/Powertools error as a problem's ``errors[]`` item: the field and the sentence."""
    field = field_path(error.get("loc", ()))
    return {"field": field, "message": sentence(field, rule_of(error))}


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Every error once (a union's branches can report one field twice), in the order found."""
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, str]] = []
    for error in errors:
        item = field_error(error)
        key = (item["field"], item["message"])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


#: the most field errors a problem's ``detail`` repeats (``errors`` lists them all)
DETAIL_LIMIT = 3


def detail_of(errors: Sequence[Mapping[str, str]]) -> str:
    """A problem's ``detail`` for these field errors: their sentences (the first few), so that the
    one line a client logs says what to fix."""
    messages = [e["message"] for e in errors if e.get("message")]
    if not messages:
        return "The request is not valid."
    if len(messages) == 1:
        return _capitalised(messages[0]) + "."
    shown = "; ".join(messages[:DETAIL_LIMIT])
    more = len(messages) - DETAIL_LIMIT
    tail = f"; and {more} more (see errors)" if more > 0 else ""
    return f"{len(messages)} fields are not valid: {shown}{tail}."


def _capitalised(text: str) -> str:
    # a field path stays as written (payment_orders[0].amount); "the body ..." starts with a capital
    return "T" + text[1:] if text.startswith("the ") else text
