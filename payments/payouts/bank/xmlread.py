"""Reading ISO 20022 bank files: one guarded, bounded, streaming parse shared by the readers.

Every file goes through ``defusedxml``'s ``iterparse`` (no DTD, entity or external reference is
processed: the file is refused as unreadable) over the reconciliation's :class:`Metered` stream,
which stops at :data:`MAX_BANK_FILE_BYTES`. The readers keep one element of interest at a time
(a payment-information block of a pain.002, an entry of a camt statement) and clear it after use.
Amounts are read as :class:`~decimal.Decimal` and turned into integer minor units; never a float.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET  # the Element type only: XML is read through defusedxml
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import iterparse

from payments.reconciliation.bank import decimal_to_minor, known_currency
from payments.reconciliation.detect import XML_DTD_REFUSED
from payments.reconciliation.lines import Metered
from payments.reconciliation.model import Bounds, UnreadableFile

#: the largest bank file read (the reconciliation's bound for bank statements: a day of one account is KiB)
MAX_BANK_FILE_BYTES = Bounds().max_bank_statement_bytes

_NAMESPACE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:([a-z]{4})\.([0-9]{3})\.([0-9]{3})\.([0-9]{2})$")


@dataclass(frozen=True)
class MessageType:
    """What the document's namespace says it is: ``camt.053`` version ``001.08``."""

    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}.{self.version}"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child(element: ET.Element, *path: str) -> ET.Element | None:
    node: ET.Element | None = element
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if local(c.tag) == name), None)
    return node


def children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if local(c.tag) == name]


def text(element: ET.Element | None, *path: str) -> str:
    if element is None:
        return ""
    node = child(element, *path)
    return (node.text or "").strip() if node is not None else ""


def code(element: ET.Element | None, name: str) -> str:
    """An ISO code written either as text (``<Sts>BOOK</Sts>``, camt v02) or as ``<Sts><Cd>BOOK</Cd></Sts>``."""
    if element is None:
        return ""
    return text(element, name, "Cd") or text(element, name)


def reason(element: ET.Element | None) -> str:
    """The reason of a ``StsRsnInf`` or ``RtrInf``: its ISO code, else its proprietary one."""
    return text(element, "Rsn", "Cd") or text(element, "Rsn", "Prtry")


@dataclass(frozen=True)
class Amount:
    minor: int
    currency: str


def amount(element: ET.Element | None) -> Amount:
    """An ISO amount element (``<Amt Ccy="EUR">100.00</Amt>``) in minor units; ``ValueError`` says why not."""
    if element is None:
        raise ValueError("no amount")
    currency = (element.get("Ccy") or "").strip()
    if not known_currency(currency):
        raise ValueError(f"unknown currency '{currency[:10]}'")
    raw = (element.text or "").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"amount '{raw[:40]}' is not a decimal") from None
    if value < 0:
        raise ValueError(f"amount '{raw[:40]}' is negative")
    return Amount(decimal_to_minor(value, currency), currency)


def as_stream(source: bytes | BinaryIO) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def elements(
    source: bytes | BinaryIO,
    wanted: frozenset[str],
    accept: Callable[[MessageType], str | None] = lambda message: None,
    max_bytes: int = MAX_BANK_FILE_BYTES,
) -> Iterator[tuple[MessageType, ET.Element, str]]:
    """``(message type, element, its parent's local name)`` for each element whose local name is in
    ``wanted``, at its end.

    ``accept`` is asked once what the namespace names: a reason it returns refuses the file. The caller
    clears the element when done with it. The document's namespace must be an ISO 20022
    one; anything unreadable (a DTD, an entity, malformed or truncated XML, too large) is
    :class:`UnreadableFile` with the reason.
    """
    stream = Metered(as_stream(source), max_bytes)
    message: MessageType | None = None
    path: list[str] = []
    try:
        for event, element in iterparse(stream, events=("start", "end"), forbid_dtd=True):
            if message is None:
                found = _NAMESPACE.match(element.tag[1:].split("}", 1)[0]) if element.tag.startswith("{") else None
                if found is None:
                    raise UnreadableFile("not an ISO 20022 document (no urn:iso:std:iso:20022:tech:xsd namespace)")
                message = MessageType(f"{found.group(1)}.{found.group(2)}", f"{found.group(3)}.{found.group(4)}")
                refused = accept(message)
                if refused is not None:
                    raise UnreadableFile(refused)
            if event == "start":
                path.append(local(element.tag))
                continue
            path.pop()
            if path and path[-1] and local(element.tag) in wanted:
                yield message, element, path[-1]
    except DTDForbidden:
        raise UnreadableFile(XML_DTD_REFUSED) from None
    except DefusedXmlException as err:
        raise UnreadableFile(f"XML with {type(err).__name__} is refused: no entity is processed") from None
    except ET.ParseError as err:
        raise UnreadableFile(f"truncated or malformed XML: {err}") from None
    except (LookupError, ValueError) as err:  # an unknown encoding declaration
        raise UnreadableFile(f"XML not readable: {str(err)[:200]}") from None
    if message is None:
        raise UnreadableFile("empty document")
