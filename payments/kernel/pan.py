"""Detection of raw card numbers (PANs): the one card-number policy of every request.

Card data may only arrive as a PSP token. The policy refuses what people actually leak, a
card number typed or pasted into some field, and nothing else: ids, dates and phone numbers
that merely hold many digits are never refused for that.

A **card number** is 13 to 19 digits that

1. pass the Luhn check, and
2. fall in a card scheme's issuer range with a length that scheme issues (:data:`ISSUER_RANGES`,
   ISO/IEC 7812-1 issuer identification numbers), and
3. are written in one of the forms cards are printed and typed in: contiguously (one run of
   13-19 digits), or grouped 4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4 or 8-8 (:data:`GROUPINGS`), the
   groups joined by any run of separators (:data:`SEPARATORS`: any Unicode space, one or several,
   no-break spaces included; ``-`` and the other dashes, the minus sign; ``.``; ``/``; ``_``; zero-width
   characters), and
4. stand on their own, or are glued to a word that is not machine-made: a digit run the
   letters of a word touch is a card number unless that word (its maximal run of letters and
   digits) has the shape of a machine-made random identifier (:func:`machine_random`: a ULID, or
   a hexadecimal digest or random id of 64, 96, 128, 160, 192, 224, 256, 384 or 512 bits), and the
   number does not follow a ``+``. A first or last group glued to a word is one group of a printed
   grouping only if the letters glued to it hold one that is no hex digit (:func:`_joins_grouping`).

Digits are any Unicode decimal digit (``str.isdecimal``: ASCII, full-width ``４２４２``,
Arabic-Indic ``٤٢٤٢``, Devanagari...), each normalised to its value before the checks.

The boundaries, decided against what is leaked and what is not a card number:

* ``card 4111111111111111``, ``pan:4111111111111111``, ``po_4111111111111111``,
  ``4111 1111 1111 1111 12/28 123`` (a number followed by its expiry and CVC), ``1 4111111111111111``
  are card numbers: a separator or punctuation sets the number off, and neighbouring digit groups
  (a quantity, an expiry) do not hide it, because every run of consecutive groups is tried.
* ``card4111111111111111``, ``visa4111111111111111exp1226``, ``x4111111111111111y``,
  ``ORD4111111111111111`` are card numbers too: a number typed right after a word (or before one)
  is what people leak, and an id that glues letters to 16 digits in an issuer range that pass
  Luhn cannot be told from one.
* The digit runs of a ULID (26 Crockford base32 characters, the first ``0``-``7``, either case)
  and of a word of only ``[0-9a-fA-F]`` of 16, 24, 32, 40, 48, 56, 64, 96 or 128 characters
  (optionally after ``0x``: span and trace ids, ObjectIds, UUIDs written without dashes, MD5,
  SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512 digests, ``secrets.token_hex``) are not: about one
  such value in 900 (SHA-256) to 6,000 (64-bit ids) holds a 13-19 digit run that passes both
  checks. A card number glued to a hex word whose whole length is one of those
  (``cc30569309025904``, ``deadbeef`` + 16 digits) is let through; other lengths are not exempt,
  so ``cc4111111111111111``, ``abc4111111111111111`` and ``face4111111111111111`` are refused.
* A printed grouping whose first or last group is glued to a word is a card number when the
  letters touching that group hold one outside ``[A-Fa-f]`` (``card4111 1111 1111 1111``,
  ``Visa4111-1111-1111-1111``, ``4111 1111 1111 1111exp``, ``card41111111 11111111``): no hex id
  has such a letter. When the glued letters are all hex digits (``abcd4111-1111-4111-8003-...``,
  ``cc4111 1111 1111 1111``), or the word is ``0x`` hex or a ULID, the glued group takes no part in
  a grouping: a UUID's dashed groups, 8-4-4-4-12 hex characters, would otherwise join a glued run of
  four digits with three groups of four into a 4-4-4-4 card about once in 30,000 (measured).
* Digit groups are taken whole, never split, and only in the printed groupings: ``2026-12-02``,
  ``INV-123456789-12345`` (9-5), ``order-2026-12-02-000123`` (4-2-2-6) and a UUID's groups
  (8-4-4-4-12) are no grouping of a card, and ``:``, ``,``, ``+``, ``(`` or ``)`` end a number, so
  ISO 8601 timestamps and national phone formats never join into one.
* A run that follows ``+`` is an E.164 phone number (``+4915123456789``), not a card number.
* A value that is, as a whole, a valid IBAN (ISO 13616: a country that uses IBANs, its length and
  BBAN format, its mod 97-10 check digits; in capitals, electronic or printed with single spaces) is
  an account number, not a card number: about one honest IBAN in 30 (one in 10 of Slovenia's, and the
  printed form of German ones) holds a digit run or a 4-4-4-4 grouping that passes both checks.
  It is checked only for a value found to hold a card number (``schwifty`` is imported then).

The caller rejects the request and must never store or log it; findings carry field paths,
never digits.

Sources of the issuer ranges: ISO/IEC 7812-1:2017 (structure of the number, issuer identification
number of 6-8 digits, at most 19 digits, Luhn check digit); the table of issuer ranges and lengths
per scheme in Wikipedia, "Payment card number", section "Issuer identification number (IIN)"
(revision of August 2024), itself citing the schemes' documents; Mastercard's 2-series announcement
(2221-2720, in use since 2017); Discover Global Network's IIN ranges (6011, 622126-622925, 644-649,
65; 16-19 digits, which also cover Diners Club International 300-305, 3095, 36, 38-39 and JCB
3528-3589 on its network); NPCI for RuPay; NSPK for Mir (2200-2204). Ranges only ever add card
numbers to the policy: when a scheme is missing, add its range here with its source.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

#: PAN lengths of ISO/IEC 7812
MIN_PAN_DIGITS, MAX_PAN_DIGITS = 13, 19

#: the printed and typed groupings of a card number, besides one run of 13-19 digits
GROUPINGS: tuple[tuple[int, ...], ...] = ((4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4), (8, 8))

#: characters that may join two digit groups of one card number, in runs of any length: every
#: Unicode space (``\s``: space, tab, no-break spaces, ideographic space...), zero-width spaces and
#: joiners, dashes (hyphen-minus, hyphen, en and em dashes, minus sign, full-width and small forms),
#: full stops, slashes, underscores and their full-width forms, the middle dot and katakana middle dot
SEPARATORS = (
    r"\s\u180e\u200b-\u200d\u2060\ufeff"
    r"\-\u2010-\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d"
    r".\u2024\u00b7\u30fb\uff0e\uff61"
    r"/\u2044\u2215\uff0f"
    r"_\uff3f"
)

_L16_19 = frozenset(range(16, 20))
_L13_19 = frozenset(range(13, 20))
_L14_19 = frozenset(range(14, 20))
_L16 = frozenset({16})

#: (first prefix, last prefix, lengths, scheme): a number is in a range when its leading digits, as
#: many as the prefixes have, lie between the two; see the module's sources. Ranges of several
#: schemes overlap (Elo, Verve and RuPay ranges lie inside Visa's, Maestro's or Discover's).
ISSUER_RANGES: tuple[tuple[str, str, frozenset[int], str], ...] = (
    ("1", "1", frozenset({15}), "UATP"),
    ("1946", "1946", frozenset({16, 18, 19}), "GPN"),
    ("2200", "2204", _L16_19, "Mir"),
    ("2205", "2205", _L16, "BORICA"),
    ("2221", "2720", _L16, "Mastercard (2-series)"),
    ("300", "305", _L14_19, "Diners Club International"),
    ("3095", "3095", _L14_19, "Diners Club International"),
    ("31", "31", frozenset({19}), "China T-Union"),
    ("34", "34", frozenset({15}), "American Express"),
    ("36", "36", _L14_19, "Diners Club International"),
    ("37", "37", frozenset({15}), "American Express"),
    ("3528", "3589", _L16_19, "JCB"),
    ("38", "39", _L14_19, "Diners Club International"),
    ("4", "4", frozenset({13, 16, 19}), "Visa (Visa Electron, Elo and Dankort co-brands included)"),
    ("50", "50", _L13_19, "Maestro (Dankort 5019, Verve 5060-5079, Elo 5041-5099, RuPay 508)"),
    ("51", "55", _L16, "Mastercard"),
    ("56", "69", _L13_19, "Maestro"),
    ("60", "60", _L16_19, "RuPay, UkrCard"),
    ("6011", "6011", _L16_19, "Discover"),
    ("622126", "622925", _L16_19, "Discover (UnionPay co-brand)"),
    ("62", "62", _L16_19, "UnionPay"),
    ("636", "636", _L16_19, "InterPayment"),
    ("644", "649", _L16_19, "Discover"),
    ("65", "65", _L16_19, "Discover, RuPay, Troy, Elo, Verve"),
    ("81", "82", _L16_19, "UnionPay, RuPay"),
    ("8600", "8600", _L16, "UzCard"),
    ("9792", "9792", _L16, "Troy"),
    ("9860", "9860", _L16, "Humo"),
)

#: first digit -> (prefix length, first, last, lengths) of the ranges that hold numbers starting with it
_RANGES_BY_DIGIT: dict[str, list[tuple[int, int, int, frozenset[int]]]] = {}
for _low, _high, _lengths, _scheme in ISSUER_RANGES:
    for _first in range(int(_low[0]), int(_high[0]) + 1):  # 56-69 holds numbers starting with 5 and with 6
        _RANGES_BY_DIGIT.setdefault(str(_first), []).append((len(_low), int(_low), int(_high), _lengths))

#: sizes of the first and of the last group of a printed grouping
_FIRST_SIZES = frozenset(grouping[0] for grouping in GROUPINGS)
_LAST_SIZES = frozenset(grouping[-1] for grouping in GROUPINGS)

#: digit groups joined by separator runs: a card number is one or several consecutive groups of one chain
_CHAIN = re.compile(rf"\d+(?:[{SEPARATORS}]+\d+)*")
_GROUP = re.compile(r"\d+")
_NON_DIGITS = re.compile(r"\D+")


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


def in_issuer_range(digits: str) -> bool:
    """True if ASCII ``digits`` start with a scheme's issuer range and have a length that scheme issues."""
    length = len(digits)
    for size, low, high, lengths in _RANGES_BY_DIGIT.get(digits[:1], ()):
        if length in lengths and low <= int(digits[:size]) <= high:
            return True
    return False


def is_card_number(digits: str) -> bool:
    """True if a string of decimal digits (any script) is a card number: 13-19 digits, in a
    scheme's issuer range, passing Luhn."""
    if not MIN_PAN_DIGITS <= len(digits) <= MAX_PAN_DIGITS:
        return False
    if not digits.isascii():
        digits = "".join(str(unicodedata.decimal(c)) for c in digits)
    return in_issuer_range(digits) and luhn_valid(digits)


def _glued(text: str, index: int) -> bool:
    """True if the character at ``index`` (if any) glues a digit run to a word: a letter or a digit."""
    return 0 <= index < len(text) and text[index].isalnum()


#: hexadecimal lengths of machine-made values: 64-bit ids (span ids), 96 (ObjectIds), 128 (UUIDs
#: without dashes, MD5, trace ids), 160 (SHA-1), 192, 224 (SHA-224), 256 (SHA-256), 384, 512 bits
MACHINE_HEX_LENGTHS = frozenset({16, 24, 32, 40, 48, 56, 64, 96, 128})
_HEX_WORD = re.compile(r"(?:0[xX])?([0-9a-fA-F]+)")
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")
_HEX_GLUE = re.compile(r"[a-fA-F]*")


def machine_random(word: str) -> bool:
    """True if ``word`` (letters and digits) has the shape of a machine-made random value: a ULID,
    or hexadecimal digits (optionally after ``0x``) of one of :data:`MACHINE_HEX_LENGTHS`."""
    if _ULID.fullmatch(word):
        return True
    hex_word = _HEX_WORD.fullmatch(word)
    return hex_word is not None and len(hex_word.group(1)) in MACHINE_HEX_LENGTHS


def _glued_card_candidate(text: str, start: int, end: int) -> bool:
    """True if the digit group ``text[start:end]``, glued to a word, is to be checked as a card
    number: it has a card number's length and its word is not machine-made."""
    if not MIN_PAN_DIGITS <= end - start <= MAX_PAN_DIGITS:
        return False
    while start and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return not machine_random(text[start:end])


def _word(text: str, start: int, end: int) -> tuple[str, str]:
    """(the word the digit group ``text[start:end]`` is part of: its maximal run of letters and digits,
    the letters that touch the group on either side: its glue)."""
    word_start, word_end = start, end
    while word_start and text[word_start - 1].isalnum():
        word_start -= 1
    while word_end < len(text) and text[word_end].isalnum():
        word_end += 1
    glue_start, glue_end = start, end
    while glue_start and text[glue_start - 1].isalnum() and not text[glue_start - 1].isdecimal():
        glue_start -= 1
    while glue_end < len(text) and text[glue_end].isalnum() and not text[glue_end].isdecimal():
        glue_end += 1
    return text[word_start:word_end], text[glue_start:start] + text[end:glue_end]


def _joins_grouping(text: str, start: int, end: int) -> bool:
    """True if the digit group ``text[start:end]``, glued to a word, may be one group of a printed
    grouping: the letters glued to it hold one that is no hex digit (``card4111``, ``Visa4111``), so
    they cannot be part of a UUID's or another hex id's group, and the word is no ULID or ``0x`` hex."""
    word, glue = _word(text, start, end)
    return _HEX_GLUE.fullmatch(glue) is None and _HEX_WORD.fullmatch(word) is None and not machine_random(word)


def _candidates(text: str) -> Iterator[str]:
    """Every digit string ``text`` writes in a card number's form (contiguous or in a printed grouping)."""
    for chain in _CHAIN.finditer(text):
        groups = _GROUP.findall(chain.group())
        start, end = chain.start(), chain.end()
        # an edge group glued to a word is a card number on its own (unless the word is machine-made),
        # and one group of a grouping only if its glued letters cannot be part of a hex id (_joins_grouping);
        # a first group after "+" is a phone number
        if _glued(text, start - 1) and not (
            len(groups) > 1 and len(groups[0]) in _FIRST_SIZES and _joins_grouping(text, start, start + len(groups[0]))
        ):
            if _glued_card_candidate(text, start, start + len(groups[0])):
                yield groups[0]
            groups = groups[1:]
        elif start and text[start - 1] == "+":
            groups = groups[1:]
        if (
            groups
            and _glued(text, end)
            and not (
                len(groups) > 1 and len(groups[-1]) in _LAST_SIZES and _joins_grouping(text, end - len(groups[-1]), end)
            )
        ):
            if _glued_card_candidate(text, end - len(groups[-1]), end):
                yield groups[-1]
            groups = groups[:-1]
        sizes = [len(g) for g in groups]
        for first, size in enumerate(sizes):
            if MIN_PAN_DIGITS <= size <= MAX_PAN_DIGITS:
                yield groups[first]
            for grouping in GROUPINGS:
                if tuple(sizes[first : first + len(grouping)]) == grouping:
                    yield "".join(groups[first : first + len(grouping)])


def contains_pan(text: str) -> bool:
    """True if ``text`` writes a card number anywhere (see the module's policy)."""
    if len(text) < MIN_PAN_DIGITS or len(_NON_DIGITS.sub("", text)) < MIN_PAN_DIGITS:
        return False  # the common case, decided at C speed: fewer than 13 digits in all
    return any(is_card_number(digits) for digits in _candidates(text)) and not is_iban(text)


#: an IBAN's shape: two capitals, two check digits, 11-30 capitals or digits, single spaces allowed between
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")


def is_iban(text: str) -> bool:
    """True if ``text`` as a whole is a valid IBAN (its country's length and format, its check digits)."""
    if _IBAN_SHAPE.fullmatch(text) is None:
        return False
    from schwifty import IBAN  # imported on this rare path only: a cold start never pays for it
    from schwifty.exceptions import SchwiftyException

    try:
        IBAN(text.replace(" ", ""))
    except SchwiftyException:
        return False
    return True


def redacted(text: str) -> str:
    """``text`` with its digits replaced by ``#`` if, as a whole, it spells a card number.

    A field path is built from client keys, each checked on its own; joined by dots, four keys of
    four digits ("4242", "4242", "4242", "4242") spell a card number that none of them holds.
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


def digest_id(prefix: str, text: str, hex_digits: int) -> str:
    """``prefix`` + the first ``hex_digits`` of SHA-256 over ``text``: an id the same for the same text, that never
    reads as a card number.

    A run of hex digits can hold 13 to 19 decimal digits in a row that pass the Luhn check in an issuer's range
    (about one id of 20 hex digits in ten thousand): the API would refuse it as an id, the logs would redact it,
    an event carrying it would be refused. Such a digest is drawn again over the same text and a counter, so the
    id stays deterministic; every other id is the plain digest's prefix."""
    import hashlib
    import itertools

    for attempt in itertools.count():
        salt = f"|{attempt}" if attempt else ""
        candidate = prefix + hashlib.sha256(f"{text}{salt}".encode()).hexdigest()[:hex_digits]
        if not contains_pan(candidate):
            return candidate
    raise AssertionError("unreachable")  # itertools.count() never ends
