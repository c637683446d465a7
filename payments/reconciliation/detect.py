"""Recognise a settlement file's format from its first bytes, never from its name.

=========================== ==================================================================
``adyen_settlement_details`` a CSV whose header names ``Psp Reference``, ``Merchant Reference``
                            and ``Type`` (the Adyen Settlement Details Report; the simulated
                            PSP writes the same report)
``camt053``                 XML in the ISO 20022 ``camt.053`` namespace (BkToCstmrStmt)
``bai2``                    first record ``01,`` (BAI2 file header)
``mt940``                   SWIFT MT940 tags: ``:20:`` and an opening balance ``:60F:``/``:60M:``
=========================== ==================================================================

Anything else is unreadable and quarantined: empty, binary (a NUL byte), an XML
document type declaration in the head (entity expansion is refused outright; the
camt.053 parser, ``defusedxml``, refuses one found further in), or an unrecognised layout.

Encodings: UTF-8 (a BOM allowed). Banks also export MT940 and BAI2 in legacy
single-byte code pages (a Hungarian bank's MT940 in CP852); for those two formats
a file that is not UTF-8 is decoded with the code page :func:`legacy_encoding`
picks, deterministically, from :data:`LEGACY_ENCODINGS`, and the report names it.
An Adyen report or a camt.053 document that is not UTF-8 is refused (both are
specified as UTF-8).
"""

from __future__ import annotations

import csv
import re

from payments.reconciliation.model import UnreadableFile

ADYEN = "adyen_settlement_details"
CAMT053 = "camt053"
BAI2 = "bai2"
MT940 = "mt940"
BANK_FORMATS = frozenset({CAMT053, BAI2, MT940})

#: why an XML file with a document type declaration is quarantined (here, or by the parser past the head)
XML_DTD_REFUSED = "XML with a document type declaration is refused (entity expansion)"
_ADYEN_MARKERS = {"Psp Reference", "Merchant Reference", "Type"}
_MT940_TAGS = re.compile(r"^:20:.*?^:6[02][FM]:", re.MULTILINE | re.DOTALL)


def decode_head(head: bytes) -> str:
    """Strict UTF-8 of a file's head, tolerating only a multi-byte character cut at its end."""
    if not head:
        raise UnreadableFile("empty file")
    if b"\x00" in head:
        raise UnreadableFile("binary content (NUL byte) in the first bytes")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3 or err.reason != "unexpected end of data":
            raise UnreadableFile(f"not UTF-8 text (invalid byte at offset {err.start})") from None
        text = head[: err.start].decode("utf-8")
    return text.removeprefix("\ufeff")


#: candidate legacy code pages, in order of preference when two read a file equally well:
#: Central European DOS and Windows, ISO Latin-2, Western Windows, Cyrillic Windows and DOS
LEGACY_ENCODINGS = ("cp852", "cp1250", "iso8859_2", "cp1252", "cp1251", "cp866")


def _plausibility(text: str) -> int:
    """How much a decoding of a statement reads like words: a non-ASCII letter scores,
    more so in lower case (statement text is mostly lower case); an upper-case letter
    after a lower-case one, a symbol, box drawing or a control character costs."""
    score, previous = 0, " "
    for char in text:
        if ord(char) >= 128:
            if char.isalpha():
                score += 2 if char.islower() else (-1 if previous.islower() else 1)
            else:
                score -= 3
        previous = char
    return score


def legacy_encoding(data: bytes) -> str:
    """The legacy code page that reads ``data`` best (ties: :data:`LEGACY_ENCODINGS` order)."""
    best, best_score = "", None
    for encoding in LEGACY_ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        score = _plausibility(text)
        if best_score is None or score > best_score:
            best, best_score = encoding, score
    if not best:
        raise UnreadableFile("not UTF-8 text, nor a legacy single-byte encoding")
    return best


def sniff(head: bytes) -> tuple[str, str]:
    """(format, encoding) of a file from its head."""
    try:
        return _detect_text(decode_head(head)), "utf-8"
    except UnreadableFile as err:
        if not head or b"\x00" in head or not err.reason.startswith("not UTF-8"):
            raise
        encoding = legacy_encoding(head)
        fmt = _detect_text(head.decode(encoding))
        if fmt not in (MT940, BAI2):
            raise
        return fmt, encoding


def detect(head: bytes) -> str:
    return sniff(head)[0]


def _detect_text(text: str) -> str:
    stripped = text.lstrip()
    if not stripped:
        raise UnreadableFile("empty file (whitespace only)")
    if stripped.startswith("<"):
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise UnreadableFile(XML_DTD_REFUSED)  # cheap, in the head; the parser refuses one anywhere
        if "camt.053" in text:
            return CAMT053
        raise UnreadableFile("XML that is not an ISO 20022 camt.053 statement")
    first_line = stripped.split("\n", 1)[0].rstrip("\r")
    if first_line.startswith("01,"):
        return BAI2
    if stripped.startswith("{1:") or _MT940_TAGS.search(stripped):
        return MT940
    try:
        header = next(csv.reader([first_line]))
    except csv.Error:
        header = []
    if set(header) >= _ADYEN_MARKERS:
        return ADYEN
    raise UnreadableFile("unrecognised format (not an Adyen settlement report, MT940, BAI2 or camt.053)")


_DAY_IN_KEY = re.compile(r"(\d{4}-\d{2}-\d{2})[^/]*$")


def day_hint(key: str) -> str | None:
    """The day a key names (``incoming/simulated-psp/2026-11-30.csv``), used only when the
    file itself has no ``Settled`` row to tell its day."""
    match = _DAY_IN_KEY.search(key)
    return match.group(1) if match else None
