"""Recognise a settlement file's format from its first bytes, never from its name.

=========================== ==================================================================
``adyen_settlement_details`` a CSV whose header names ``Psp Reference``, ``Merchant Reference``
                            and ``Type`` (the Adyen Settlement Details Report; the simulated
                            PSP writes the same report)
``camt053``                 XML in the ISO 20022 ``camt.053`` namespace (BkToCstmrStmt)
``bai2``                    first record ``01,`` (BAI2 file header)
``mt940``                   SWIFT MT940 tags: ``:20:`` and an opening balance ``:60F:``/``:60M:``
=========================== ==================================================================

Anything else is unreadable and quarantined: empty, binary (a NUL byte), not
UTF-8, an XML document type declaration (entity expansion is refused outright),
or an unrecognised layout.
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


def detect(head: bytes) -> str:
    text = decode_head(head)
    stripped = text.lstrip()
    if not stripped:
        raise UnreadableFile("empty file (whitespace only)")
    if stripped.startswith("<"):
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise UnreadableFile("XML with a document type declaration is refused (entity expansion)")
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
    if _ADYEN_MARKERS <= set(header):
        return ADYEN
    raise UnreadableFile("unrecognised format (not an Adyen settlement report, MT940, BAI2 or camt.053)")
