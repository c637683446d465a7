"""Detection of raw card numbers (PANs) anywhere in a request body.

Card data may only arrive as a PSP token. Any run of 13 to 19 digits (spaces or
dashes allowed between them) that passes the Luhn check is treated as a PAN, in
any string or number, in keys as well as values. The caller rejects the request
and must never store or log the body; findings carry field paths, never digits.
"""

from __future__ import annotations

import re
from typing import Any

_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def contains_pan(text: str) -> bool:
    for match in _CANDIDATE.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def find_pans(document: Any, path: str = "") -> list[str]:
    """Field paths (``payment_orders[1].seller_account``) whose key or value holds a PAN."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            child = f"{path}.{key}" if path else str(key)
            if contains_pan(str(key)):
                found.append(child)
            found.extend(find_pans(value, child))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.extend(find_pans(value, f"{path}[{index}]"))
    elif isinstance(document, (str, int)) and not isinstance(document, bool):
        if contains_pan(str(document)):
            found.append(path or "(body)")
    return found
