"""No XML document type declaration or entity is processed, wherever it sits in the file.

The format is recognised from the file's first 64 KiB (``Bounds.sniff_bytes``), which refuses a DTD
found there; a DTD placed further in is met by the camt.053 parser (defusedxml), which refuses it
as well: the file is quarantined with that reason, never read, never a crash.
"""

from __future__ import annotations

import json

import pytest

from functions.reconcile.handler import handler as reconcile_handler
from payments.reconciliation.model import Bounds
from tests.reconciliation.conftest import FIXTURES, Aws, Context

CAMT = (FIXTURES / "camt053_2026-11-30.xml").read_bytes()
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: a comment that names the format (so the head is recognised as camt.053) and pushes what follows past the head
PADDING = b"<!-- camt.053 export " + b"." * (Bounds().sniff_bytes + 1024) + b" -->\n"

#: an internal entity that changes an amount of the statement (parsed, it balances to another figure)
INTERNAL = b'<!DOCTYPE Document [<!ENTITY opening "1000.00">]>\n'
#: the billion laughs: nine levels of ten references each
LAUGHS = (
    b'<!DOCTYPE Document [<!ENTITY lol0 "lol">'
    + b"".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">'.encode() for n in range(1, 10))
    + b"]>\n"
)
#: an external entity: a local file the parser would read into the document
EXTERNAL = b'<!DOCTYPE Document [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'


def _camt_after_head(doctype: bytes, reference: bytes) -> bytes:
    """The fixture statement, its DTD past the first 64 KiB, ``reference`` in place of its opening amount."""
    body = CAMT.removeprefix(DECLARATION)
    assert b">1000.00</Amt>" in body
    return DECLARATION + PADDING + doctype + body.replace(b">1000.00</Amt>", b">" + reference + b"</Amt>", 1)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("internal-entity.xml", _camt_after_head(INTERNAL, b"&opening;")),
        ("billion-laughs.xml", _camt_after_head(LAUGHS, b"&lol9;")),
        ("external-entity.xml", _camt_after_head(EXTERNAL, b"&secret;")),
        ("unused-dtd.xml", _camt_after_head(b"<!DOCTYPE Document>\n", b"1000.00")),
    ],
)
def test_a_dtd_past_the_head_is_quarantined_with_its_reason(cloud: Aws, name: str, body: bytes) -> None:
    # Given a camt.053 file whose document type declaration lies after the bytes the format is sniffed from
    assert b"<!DOCTYPE" not in body[: Bounds().sniff_bytes] and b"<!DOCTYPE" in body
    key = f"incoming/bank/{name}"
    cloud.put(key, body)
    # When it is reconciled (the handler does not fail)
    result = reconcile_handler(cloud.s3_event(key), Context())
    # Then it is quarantined, unread, and the reason says a DTD is refused
    assert result["outcomes"][0]["status"] == "QUARANTINED"
    assert not cloud.exists(key)
    assert cloud.get(f"quarantine/bank/{name}") == body
    why = json.loads(cloud.get(f"quarantine/bank/{name}.reason.json"))["reason"]
    assert "document type declaration is refused" in why
    assert cloud.report(key)["quarantined"]["reason"] == why
    assert "root:" not in why  # nothing of the external file was read into the reason


def test_the_same_statement_without_a_dtd_is_still_read(cloud: Aws) -> None:
    # Given the same padded statement with no DTD (the guard refuses the DTD, not the file's size or comments)
    body = _camt_after_head(b"", b"1000.00")
    cloud.put("incoming/bank/plain.xml", body)
    # When it is reconciled / Then it is read and balances, as the fixture does
    result = reconcile_handler(cloud.s3_event("incoming/bank/plain.xml"), Context())
    assert result["outcomes"][0]["status"] != "QUARANTINED"
    report = cloud.report("incoming/bank/plain.xml")
    assert report["format"] == "camt053" and "quarantined" not in report
    assert [s["balanced"] for s in report["statements"]] == [True]
