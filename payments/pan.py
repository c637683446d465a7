"""Detection of raw card numbers (PANs) anywhere in a request body.

Card data may only arrive as a PSP token. Any run of 13 to 19 digits (spaces or
dashes allowed between them) that passes the Luhn check is treated as a PAN, in
any string or number, in keys as well as values. The caller rejects the request
and must never store or log the body; findings carry field paths, never digits.
"""

from __future__ import annotations

import re
from typing import Any

#: digit groups joined by single spaces or dashes ("4111 1111 1111 1111 12/28" has two such runs)
_DIGIT_GROUPS = re.compile(r"\d+(?:[ -]\d+)*")


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
    """True if some consecutive digit groups of ``text`` spell a 13-19 digit Luhn-valid number.

    Groups are tried whole (a solid run of digits is never split), so a PAN written
    next to other numbers (an expiry date, a CVC) is still found.
    """
    for match in _DIGIT_GROUPS.finditer(text):
        groups = re.split(r"[ -]", match.group(0))
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    return True
    return False


def find_pans(document: Any, path: str = "") -> list[str]:
    """Field paths (``payment_orders[1].seller_account``) whose key or value holds a PAN."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if contains_pan(str(key)):
                # the key itself is the card number: name the place, never the digits
                found.append(f"{path}.(key)" if path else "(key)")
                continue
            child = f"{path}.{key}" if path else str(key)
            found.extend(find_pans(value, child))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.extend(find_pans(value, f"{path}[{index}]"))
    elif isinstance(document, (str, int, float)) and not isinstance(document, bool):
        if contains_pan(str(document)):
            found.append(path or "(body)")
    return found
