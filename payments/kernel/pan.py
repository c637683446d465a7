"""Detection of raw card numbers (PANs): the one card-number policy of every request.

Card data may only arrive as a PSP token. Any run of 13 to 19 digits that passes
the Luhn check is treated as a PAN, in any string or number of a request: body
values and keys at any depth (duplicate keys included), the headers we store
(``Idempotency-Key``), the path. What counts as a digit and as a separator is
deliberately broad, because a hostile or careless client writes card numbers in
many ways:

* digits are any Unicode decimal digit (``str.isdecimal``): ASCII, full-width
  ``４２４２``, Arabic-Indic ``٤٢٤٢``, Devanagari...; each is normalised to its value
  (``unicodedata.decimal``) before the Luhn check;
* digit groups may be joined by up to :data:`MAX_SEPARATOR_RUN` separator
  characters: any Unicode space, punctuation, symbol or format/control character
  (space, double space, no-break space, ``-``, ``_``, ``.``, ``/``, ``:``...).
  A letter ends a run.

The caller rejects the request and must never store or log it; findings carry
field paths, never digits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

#: PAN lengths of ISO/IEC 7812
MIN_PAN_DIGITS, MAX_PAN_DIGITS = 13, 19
#: separator characters allowed between two digit groups of one number ("4242 / 4242" has 3)
MAX_SEPARATOR_RUN = 3


def luhn_valid(digits: str) -> bool:
    """Luhn check of a string of decimal digits, in any Unicode script."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = unicodedata.decimal(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_separator(char: str) -> bool:
    # Z* spaces, P* punctuation (incl. "_"), S* symbols, C* controls and format characters (ZWSP)
    return unicodedata.category(char)[0] in "ZPSC"


def _digit_chains(text: str) -> Iterator[list[str]]:
    """Chains of digit groups (each group normalised to ASCII) joined by short separator runs."""
    chain: list[str] = []
    group: list[str] = []
    gap = 0  # separator characters seen since the last digit
    for char in text:
        if char.isdecimal():
            if gap:
                chain.append("".join(group))
                group, gap = [], 0
            group.append(str(unicodedata.decimal(char)))
        elif group and _is_separator(char) and gap < MAX_SEPARATOR_RUN:
            gap += 1
        elif group:
            # a letter, or too long a gap: the chain ends here
            chain.append("".join(group))
            yield chain
            chain, group, gap = [], [], 0
    if group:
        chain.append("".join(group))
        yield chain


def contains_pan(text: str) -> bool:
    """True if some consecutive digit groups of ``text`` spell a 13-19 digit Luhn-valid number.

    Groups are tried whole (a solid run of digits is never split), so a PAN written
    next to other numbers (an expiry date, a CVC) is still found.
    """
    for groups in _digit_chains(text):
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > MAX_PAN_DIGITS:
                    break
                if len(digits) >= MIN_PAN_DIGITS and luhn_valid(digits):
                    return True
    return False


def redacted(text: str) -> str:
    """``text`` with its digits replaced by ``#`` if, as a whole, it spells a card number.

    A field path is built from client keys, each checked on its own; joined by dots, two short
    numeric keys ("4242424" and "424242424") could spell a card number that neither holds.
    """
    return "".join("#" if c.isdecimal() else c for c in text) if contains_pan(text) else text


class Pairs(dict):  # type: ignore[type-arg]
    """A JSON object that remembers every (key, value) pair as sent, duplicates included.

    ``json.loads(text, object_pairs_hook=Pairs.from_pairs)``: the dict holds the last value of a
    repeated key (as ``json.loads`` would), ``pairs`` holds them all, so the first of two
    duplicate keys is checked as well.
    """

    pairs: list[tuple[str, Any]]

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> Pairs:
        obj = cls(pairs)
        obj.pairs = pairs
        return obj


def _items(document: dict[Any, Any]) -> list[tuple[Any, Any]]:
    return document.pairs if isinstance(document, Pairs) else list(document.items())


def walk(document: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(field path, text) of every key, string and number of a parsed JSON document, without recursion."""
    stack: list[tuple[Any, str]] = [(document, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            children = []
            for key, value in _items(node):
                key_text = str(key)
                yield (f"{where}.(key)" if where else "(key)"), key_text
                children.append((value, f"{where}.{key_text}" if where else key_text))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(value, f"{where}[{index}]") for index, value in enumerate(node)]))
        elif isinstance(node, (str, int, float)) and not isinstance(node, bool):
            yield where or "(body)", str(node)


def find_pans(document: Any, path: str = "") -> list[str]:
    """Field paths (``payment_orders[1].seller_account``) whose key or value holds a PAN.

    A key holding a PAN is reported as ``<parent>.(key)``: the place, never the digits.
    """
    found: list[str] = []
    skip_under: set[str] = set()
    for where, text in walk(document, path):
        if any(where == s or where.startswith((s + ".", s + "[")) for s in skip_under):
            continue
        if contains_pan(text):
            found.append(where)
            if where.endswith("(key)"):
                # the key is the card number: its value's path would repeat it, so skip below it
                parent = where[: -len(".(key)")] if where != "(key)" else ""
                skip_under.add(f"{parent}.{text}" if parent else text)
    return found


def find_control_characters(document: Any) -> list[str]:
    """Field paths whose key or string value holds a control character (NUL, tab, newline, DEL...)
    or half a UTF-16 surrogate pair (which no store can encode)."""
    found: list[str] = []
    for where, text in walk(document):
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
            found.append(where)
    return found
