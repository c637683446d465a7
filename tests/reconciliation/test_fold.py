"""The batched fast path of the engine (lines cut a block at a time, plainly valid ``Settled``
rows folded without ``parse_row``) gives exactly what the row-by-row path gives, on every
kind of row the fast path must hand over, and on seeded mutations of them."""

from __future__ import annotations

import io
import random

import pytest

from payments.reconciliation import adyen, engine, lines
from payments.reconciliation.lines import LineReader
from payments.reconciliation.model import Bounds, UnreadableFile
from payments.reconciliation.sources import InMemoryLedgerSource, LedgerEntry

DAY = "2026-11-30"
HEADER = ",".join(adyen.COLUMNS)


def row(**changes: str) -> str:
    """One Adyen row of the simulated PSP's shape, with some columns replaced."""
    values = dict(
        zip(
            adyen.COLUMNS,
            ["PaymentsMarketplace", "MarketplaceECOM", "psp_0001", "po_0001", "visa", f"{DAY} 10:00:00", "UTC",
             "Settled", "", "USD", "", "12.34", "1", "USD", "", "11.90", "0.10", "0.07", "0.01", "0.09", "visa", "", "2"],
            strict=True,
        )
    )  # fmt: skip
    values.update({adyen_name(k): v for k, v in changes.items()})
    return ",".join(values[c] for c in adyen.COLUMNS)


def adyen_name(key: str) -> str:
    return {
        "psp": "Psp Reference", "order": "Merchant Reference", "created": "Creation Date", "zone": "TimeZone",
        "type": "Type", "gross_ccy": "Gross Currency", "gross_debit": "Gross Debit (GC)", "gross_credit": "Gross Credit (GC)",
        "net_ccy": "Net Currency", "net_debit": "Net Debit (NC)", "net_credit": "Net Credit (NC)",
        "commission": "Commission (NC)", "account": "Merchant Account", "method": "Payment Method",
    }[key]  # fmt: skip


#: every reason the fast path must hand a row over, next to rows it takes
QUIRKS = [
    row(),
    row(psp="psp_0002", order="po_0002", gross_credit="7.00", net_credit="6.50"),  # an amount not seen yet
    row(psp="psp_0003", order="po_0003", gross_credit=" 12.34 "),  # padding
    row(psp="psp_0004", order="po_0004", method='"visa, debit"'),  # a quoted field
    row(psp="psp_0005", order="po_0005", account="=cmd()"),  # a formula
    row(psp="psp_0006", order="po_0006", account="-MarketplaceECOM"),  # a dash, not a formula
    row(psp="psp_0007", order="po_0007", account="-1+2"),  # a dash formula
    row(psp="psp_0008", order="po_0008", zone="PST"),
    row(psp="psp_0009", order="po_0009", zone=""),
    row(psp="psp_0010", order="po_0010", zone="XYZ"),
    row(psp="psp_0011", order="po_0011", account="Marktplatz Köln"),  # not ASCII
    row(psp="psp_0012", order="po_0012", gross_credit="1.2.3"),
    row(psp="psp_0013", order="po_0013", gross_debit="1.00"),
    row(psp="psp_0014", order="po_0014", gross_credit="0.00"),
    row(psp="", order="po_0015"),
    row(psp="psp_0016", order="po 0016"),
    row(psp="psp_0017", order="po_0017", gross_ccy="usd"),
    row(psp="psp_0018", order="po_0018", net_ccy="EUR", net_credit="10.00"),
    row(psp="psp_0019", order="po_0019", net_ccy=""),
    row(psp="psp_0020", order="po_0020", type="SettledBulk"),
    row(
        psp="psp_0021",
        order="po_0021",
        type="Refunded",
        gross_credit="",
        gross_debit="5.00",
        net_credit="",
        net_debit="5.00",
    ),
    row(psp="", order="", type="MerchantPayout", gross_ccy="", gross_credit="", net_credit="", net_debit="100.00"),
    row(psp="", order="", type="Fee", gross_ccy="", gross_credit="", net_credit="", net_debit="1.50"),
    row(psp="psp_0022", order="po_0022", type="Mystery"),
    row(psp="psp_0001", order="po_0001"),  # a duplicate
    row(psp="psp_0023", order="po_0023", created="2026-11-30T10:00:00"),
    row(psp="psp_0024", order="po_0024", gross_credit="12.345"),
    row(psp="psp_0025", order="po_0025", commission="x"),
    row(psp="psp_0026", order="po_0026", gross_credit=".91", net_credit=".80"),
    row(psp="psp_0027", order="po_0027") + ",extra",
    "broken,row",
    "",
    "   ",
    "x" * 500,  # longer than the bound below
    row(psp="psp_0028", order="po_0028", created="2026-11-29 23:30:00", zone="CET"),
]
LEDGER = [
    LedgerEntry("psp_0001", "po_0001", "seller_1", "USD", 1234, f"{DAY}T10:00:00.000Z"),
    LedgerEntry("psp_0002", "po_0002", "seller_1", "USD", 701, f"{DAY}T10:00:00.000Z"),
    LedgerEntry("psp_0003", "po_0003", "seller_2", "EUR", 1234, f"{DAY}T10:00:00.000Z"),
    LedgerEntry("psp_0006", "po_9999", "seller_2", "USD", 1234, f"{DAY}T10:00:00.000Z"),
    LedgerEntry("psp_0099", "po_0099", "seller_3", "USD", 500, f"{DAY}T11:00:00.000Z"),
]
BOUNDS = Bounds(max_line_bytes=400)


def outcome(reader_lines: object, reader: LineReader) -> object:
    ledger = InMemoryLedgerSource(LEDGER)
    try:
        return engine.reconcile_adyen(reader_lines, lambda: reader.ended_with_newline, ledger, BOUNDS)  # type: ignore[arg-type]
    except UnreadableFile as err:
        return f"unreadable: {err}"


def both_paths(body: bytes) -> tuple[object, object]:
    """(the batched fast path, the row-by-row path over the same lines)."""
    reader = LineReader(io.BytesIO(body), BOUNDS.max_line_bytes)
    fast = outcome(iter(reader), reader)
    plain = LineReader(io.BytesIO(body), BOUNDS.max_line_bytes)
    slow = outcome((line for line in plain), plain)  # a generator: no batches, one line at a time
    return fast, slow


def naive_lines(body: bytes, max_line: int) -> list[tuple[int, str | None]]:
    """What LineReader documents, the simple way (whole file in memory)."""
    parts = body.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    out: list[tuple[int, str | None]] = []
    for number, raw in enumerate(parts, 1):
        if len(raw) > max_line:
            out.append((number, None))
            continue
        if b"\x00" in raw:
            raise UnreadableFile(f"binary content (NUL byte) at line {number}")
        text = raw.removesuffix(b"\r").decode("utf-8")
        out.append((number, text.removeprefix("\ufeff") if number == 1 else text))
    return out


@pytest.mark.parametrize("block", [5, 64, 1000, lines.BLOCK_BYTES])
def test_batched_lines_are_the_documented_lines(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    # Given a file with CRLF and LF lines, a BOM, blank lines, overlong lines and no final newline
    body = ("\ufeff" + HEADER + "\r\n" + "\n".join(QUIRKS) + "\r\n" + "y" * 700 + "\n" + QUIRKS[0]).encode()
    monkeypatch.setattr(lines, "BLOCK_BYTES", block)
    # When it is read in blocks of that size, line by line and in batches
    reader = LineReader(io.BytesIO(body), BOUNDS.max_line_bytes)
    one_by_one = list(reader)
    batched = [
        (first + i, text)
        for first, texts in LineReader(io.BytesIO(body), BOUNDS.max_line_bytes).batches()
        for i, text in enumerate(texts)
    ]
    # Then both are exactly the documented lines
    expected = naive_lines(body, BOUNDS.max_line_bytes)
    assert one_by_one == expected and batched == expected
    assert reader.ended_with_newline is False


def test_every_quirk_ends_as_the_row_by_row_path_ends_it() -> None:
    # Given a file holding every kind of row the fast path must hand over
    body = (HEADER + "\n" + "\n".join(QUIRKS) + "\n").encode()
    # When it is reconciled batched and row by row
    fast, slow = both_paths(body)
    # Then the results are equal, and the quirks really were exercised
    assert isinstance(fast, engine.Result) and fast == slow
    assert fast.matched >= 1 and len(fast.rejected) >= 10 and fast.recorded == 2
    assert {"Settled", "SettledBulk", "Refunded", "Fee", "MerchantPayout", "Mystery"} <= set(fast.record_types)


def test_a_file_without_the_optional_fee_columns_folds_the_same() -> None:
    # Given a file without the fee columns
    keep = [i for i, c in enumerate(adyen.COLUMNS) if c not in adyen.FEE_COLUMNS]
    cut = [
        ",".join(line.split(",")[i] for i in keep) if line.count(",") == len(adyen.COLUMNS) - 1 else line
        for line in QUIRKS
    ]
    body = (",".join(adyen.COLUMNS[i] for i in keep) + "\n" + "\n".join(cut) + "\n").encode()
    # When / Then
    fast, slow = both_paths(body)
    assert isinstance(fast, engine.Result) and fast == slow


@pytest.mark.parametrize("seed", range(150))
def test_mutated_files_end_as_the_row_by_row_path_ends_them(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    # Given a seeded mutation of the quirks file: lines shuffled, duplicated, cut, bytes replaced
    rng = random.Random(seed)
    monkeypatch.setattr(lines, "BLOCK_BYTES", rng.choice([16, 300, 4096]))
    picked = [rng.choice(QUIRKS[:2] * 8 + QUIRKS) for _ in range(rng.randint(0, 40))]
    text = HEADER + "\n" + "\n".join(picked) + rng.choice(["\n", "", "\r\n"])
    data = bytearray(text.encode())
    for _ in range(rng.randint(0, 6)):
        if not data:
            break
        at = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.5:
            data[at] = rng.choice(b',"\n\r =+-@ .0123456789aZ\x00\xc3\t')
        elif choice < 0.8:
            del data[at : at + rng.randint(1, 30)]
        else:
            data[at:at] = data[at : at + rng.randint(1, 200)]
    # When it is reconciled batched and row by row
    fast, slow = both_paths(bytes(data))
    # Then both end the same (the same result, or the same reason to quarantine)
    assert fast == slow
