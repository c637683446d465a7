"""Issue 15: each quirk of the files Adyen and real banks write, reproduced in a small own fixture.

The fixtures below are written for these tests (the real files stay in ../shared/samples and
are read by test_sample_corpus.py); each one reproduces one quirk the engine failed on.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from payments.kernel.config import reset_settings
from payments.reconciliation import adyen, report
from payments.reconciliation.model import Bounds, RowError, UnreadableFile
from payments.reconciliation.service import reconcile_stream
from payments.reconciliation.sources import LedgerEntry


class EmptyLedger:
    def day_entries(self, day: str) -> Any:
        return iter(())

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        return None

    def day_adjustments(self, day: str) -> Any:
        return iter(())

    def find_adjustment(self, txn_id: str) -> None:
        return None


def reconcile(data: bytes) -> dict[str, Any]:
    result, digest = reconcile_stream(io.BytesIO(data), EmptyLedger(), Bounds(), None, None)  # type: ignore[arg-type]
    return report.build("fixture", digest, result, None)


HEADER = (
    "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,"
    "Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),"
    "Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,"
    "Modification Merchant Reference,Batch Number"
)


def settled(
    psp: str, order: str, created: str, tz: str, gross: str = "10.00", net: str = "9.70", markup: str = ".30"
) -> str:
    return f"Co,Shop,{psp},{order},visa,{created},{tz},Settled,{psp},USD,,{gross},1,USD,,{net},,{markup},,,visa,,7"


def account_row(kind: str, created: str, tz: str, net_debit: str = "", net_credit: str = "") -> str:
    return f"Co,Shop,,,,{created},{tz},{kind},Transaction Fees  March 01,,,,,USD,{net_debit},{net_credit},,,,,,,7"


def csv_file(*rows: str, final_newline: bool = True) -> bytes:
    return ("\n".join((HEADER, *rows)) + ("\n" if final_newline else "")).encode()


# --- 1. TimeZone abbreviations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "zone", "utc"),
    [
        ("2026-01-15 10:00:00", "PST", "2026-01-15T18:00:00Z"),
        ("2026-07-15 10:00:00", "PDT", "2026-07-15T17:00:00Z"),
        ("2026-07-15 10:00:00", "CEST", "2026-07-15T08:00:00Z"),
        ("2026-01-15 10:00:00", "CET", "2026-01-15T09:00:00Z"),
        ("2026-07-15 10:00:00", "BST", "2026-07-15T09:00:00Z"),
        ("2026-07-15 10:00:00", "EDT", "2026-07-15T14:00:00Z"),
        # the repeated hour when Los Angeles falls back: the abbreviation tells the two apart
        ("2026-11-01 01:30:00", "PDT", "2026-11-01T08:30:00Z"),
        ("2026-11-01 01:30:00", "PST", "2026-11-01T09:30:00Z"),
        ("2026-07-15 10:00:00", "UTC", "2026-07-15T10:00:00Z"),
    ],
)
def test_adyen_time_zone_abbreviations_convert_to_utc(local: str, zone: str, utc: str) -> None:
    # Given a Creation Date labelled with the abbreviation Adyen writes / When converted / Then it is exact
    assert adyen.to_utc(local, zone) == utc


@pytest.mark.parametrize("zone", ["XYZ", "CST", "IST", "pst", "Mars/Olympus"])
def test_unknown_or_ambiguous_time_zones_fail_closed(zone: str) -> None:
    # Given an abbreviation that is unknown, or ambiguous without the account's zone
    # When converted / Then the row is rejected, never guessed
    with pytest.raises(RowError, match="TimeZone"):
        adyen.to_utc("2026-01-15 10:00:00", zone)


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings read again from the environment the test sets, and again after it is undone."""
    reset_settings()
    yield
    reset_settings()


def test_the_configured_account_zone_resolves_ambiguous_abbreviations_and_checks_dst(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    # Given the account's report zone is configured as US Central time
    monkeypatch.setenv(adyen.ZONE_ENV, "America/Chicago")
    reset_settings()
    # When CST (ambiguous on its own) and CDT are read / Then they are US Central
    assert adyen.to_utc("2026-01-15 10:00:00", "CST") == "2026-01-15T16:00:00Z"
    assert adyen.to_utc("2026-07-15 10:00:00", "CDT") == "2026-07-15T15:00:00Z"
    # And a summer abbreviation in winter is refused (not in force then)
    with pytest.raises(RowError, match="not in force"):
        adyen.to_utc("2026-01-15 10:00:00", "CDT")


def test_a_file_with_pst_and_pdt_rows_is_read_without_rejections() -> None:
    # Given a report whose rows carry PST and PDT (the zone changed with daylight saving)
    data = csv_file(
        settled("1111111111111111", "o1", "2026-03-07 10:00:00", "PST"),
        settled("2222222222222222", "o2", "2026-03-09 10:00:00", "PDT"),
    )
    # When reconciled / Then no row is rejected
    rendered = reconcile(data)
    assert rendered["rejected_rows"] == [] and rendered["rows"] == 2


# --- 2. account-level rows with an empty Gross Currency ----------------------------------------


def test_account_level_rows_with_empty_gross_currency_are_recorded_in_the_totals() -> None:
    # Given a batch: one payment, a Fee and a MerchantPayout whose Gross Currency is empty
    data = csv_file(
        settled("1111111111111111", "o1", "2026-03-02 10:00:00", "CET"),
        account_row("Fee", "2026-03-02 11:00:00", "CET", net_debit="0.09"),
        account_row("MerchantPayout", "2026-03-02 12:00:00", "CET", net_debit="9.61"),
        account_row("Balancetransfer", "2026-03-02 12:00:00", "CET", net_credit="454331.99"),
    )
    # When reconciled
    rendered = reconcile(data)
    # Then nothing is rejected, and the payout and fee totals come from the Net columns
    assert rendered["rejected_rows"] == []
    usd = rendered["summary"]["totals"]["USD"]
    assert (usd["payout"], usd["fee"], usd["markup"]) == ("9.61", "0.09", "0.30")
    assert rendered["summary"]["row_outcomes"]["recorded"] == 3


# --- 3. amounts without a leading zero ------------------------------------------------------


@pytest.mark.parametrize(("text", "minor"), [(".91", 91), (".1", 10), ("0.04", 4), ("12", 1200)])
def test_amounts_without_a_leading_zero(text: str, minor: int) -> None:
    assert adyen.parse_minor(text, "USD", "Markup (NC)") == minor


@pytest.mark.parametrize("text", [".", "-1", "1.2.3", "1e3", " .5", "..5"])
def test_malformed_amounts_are_still_rejected(text: str) -> None:
    with pytest.raises(RowError):
        adyen.parse_minor(text, "USD", "Markup (NC)")


# --- 4. a complete file without a final newline ---------------------------------------------


def test_a_complete_last_row_without_final_newline_is_not_truncation_even_when_rejected() -> None:
    # Given a file whose last row is complete (all columns) but rejected, and no final newline
    data = csv_file(
        settled("1111111111111111", "o1", "2026-03-02 10:00:00", "PST"),
        settled("2222222222222222", "o2", "2026-03-02 10:00:00", "XYZ"),
        final_newline=False,
    )
    # When reconciled / Then the file is reconciled and that row rejected with its line
    rendered = reconcile(data)
    assert [r["line"] for r in rendered["rejected_rows"]] == [3]


def test_a_last_row_cut_short_without_final_newline_is_truncation() -> None:
    # Given a file cut in transit: the last row has fewer fields than the header
    data = csv_file(
        settled("1111111111111111", "o1", "2026-03-02 10:00:00", "PST"), "Co,Shop,2222", final_newline=False
    )
    # When reconciled / Then the file is quarantined as truncated
    with pytest.raises(UnreadableFile, match="truncated"):
        reconcile(data)


# --- refunds and chargebacks, first-class --------------------------------------------------------


def test_refunds_and_chargebacks_have_their_own_totals() -> None:
    # Given a batch with each adjustment type
    rows = [
        f"Co,Shop,3333333333333333,o3,visa,2026-03-02 10:00:00,PST,{kind},4444444444444444,USD,{gd},{gc},1,USD,{nd},{nc},,,,,visa,,7"
        for kind, gd, gc, nd, nc in (
            ("Refunded", "1.00", "", "1.00", ""),
            ("Chargeback", "1.00", "", "3.00", ""),
            ("ChargebackReversed", "", "52", "", "51.89"),
            ("RefundedReversed", "", "2.00", "", "2.00"),
        )
    ]
    # When reconciled
    rendered = reconcile(csv_file(*rows))
    # Then each type is counted and totalled on its own, and none is rejected
    usd = rendered["summary"]["totals"]["USD"]
    assert (usd["refunded"], usd["chargeback"], usd["chargeback_reversed"], usd["refunded_reversed"]) == (
        "1.00",
        "3.00",
        "51.89",
        "2.00",
    )
    assert rendered["summary"]["record_types"] == {
        "Chargeback": 1,
        "ChargebackReversed": 1,
        "Refunded": 1,
        "RefundedReversed": 1,
    }
    assert rendered["rejected_rows"] == []


# --- MT940 ------------------------------------------------------------------------------------

MT940_REVERSALS = b"""{1:F01ABNANL2AXXXX0000000000}{2:O9401200261201ABNANL2AXXXXN}{4:
:20:REV1
:25:NL91ABNA0417164300
:28C:1/1
:60F:C261129EUR100,00
:61:2611301130RC10,00NTRFNONREF
:86:REVERSAL OF A CREDIT
:61:2611301130RD5,00NTRFNONREF
:86:REVERSAL OF A DEBIT
:62F:C261130EUR95,00
-}
"""


def test_mt940_reversal_marks_are_signed_by_their_meaning() -> None:
    # Given a statement with a reversal of a credit (money out) and of a debit (money in)
    rendered = reconcile(MT940_REVERSALS)
    # Then RC is a debit, RD a credit, and the statement balances (100 - 10 + 5 = 95)
    statement = rendered["statements"][0]
    assert [e["amount"] for e in statement["entries"]] == ["-10.00", "5.00"]
    assert statement["balanced"] is True


MT940_ASN = b"""{1:F01ASNBNL21XXXX0000000000}{2:O940ASNBNL21XXXXN}{3:}{4:
:20:0000000000
:25:NL81ASNB9999999999
:28C:1/1
:60F:C200101EUR444,29
:61:2001010101D65,00NOVBNL47INGB9999999999
hr jansen
:86:NL47INGB9999999999 hr jansen
:62F:C200101EUR379,29
-}{5:}
"""


def test_mt940_of_asn_sns_regiobank_with_an_iban_as_customer_reference() -> None:
    # Given an ASN Bank statement: an 18-character IBAN as the :61: customer reference
    rendered = reconcile(MT940_ASN)
    # Then its entry is read (the library's ASN statement tag) and the statement balances
    assert rendered["rejected_rows"] == [] and rendered["rows"] == 1
    assert rendered["statements"][0]["balanced"] is True


def body(opening: str, closing: str) -> bytes:
    return (
        f":25:NL91ABNA0417164300\n:28C:1/1\n:60F:C261129EUR{opening}\n:61:2611301130C10,00NTRFNONREF\n"
        f":86:PAYMENT\n:62F:C261130EUR{closing}\n"
    ).encode()


BODY = body("100,00", "110,00")


@pytest.mark.parametrize(
    ("name", "before", "after"),
    [
        ("ABN AMRO", b"ABNANL2A\n940\nABNANL2A\n", b"-\n"),
        ("ING", b"0000 01INGBNL2AXXXX00001\n0000 01INGBNL2AXXXX00001\n940 00\n", b"-XXX\n"),
        ("Rabobank", b":940:\n", b"\n"),
        ("mBank", b"\x01\n", b"-\x03\n"),
    ],
)
def test_bank_headers_before_each_statement_are_not_rows(name: str, before: bytes, after: bytes) -> None:
    # Given two statements, each wrapped in the bank's own header and trailer lines
    data = before + b":20:S1\n" + BODY + after + before + b":20:S2\n" + body("110,00", "120,00") + after
    # When reconciled
    rendered = reconcile(data)
    # Then no header line is a rejected row, none is glued onto a statement, both balance
    assert rendered["rejected_rows"] == [], name
    assert [s["statement_id"] for s in rendered["statements"]] == ["S1", "S2"]
    assert [s["balanced"] for s in rendered["statements"]] == [True, True]


def test_text_outside_statements_that_is_no_known_header_is_rejected_with_its_line() -> None:
    rendered = reconcile(b"hello there\n:20:S1\n" + BODY)
    assert rendered["rejected_rows"] == [
        {"line": 1, "reason": "text outside a statement (before its :20: or after its end)"}
    ]


def test_mt940_reasons_are_deterministic_and_the_library_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    # Given a file with one unparseable statement beside a good one
    bad = b":20:BAD\n:25:X\n:28C:1/1\n:60F:C261129EUR100,00\n:61:NOT A STATEMENT LINE\n:62F:C261130EUR100,00\n-\n"
    data = bad + b":20:S1\n" + BODY
    # When reconciled twice
    first, second = report.to_json(reconcile(data)), report.to_json(reconcile(data))
    # Then the two reports are byte-identical, name no object address, and nothing reached stderr
    assert first == second
    assert "object at 0x" not in first and "tag :61:" in first
    assert capfd.readouterr().err == ""


def test_a_cp852_statement_is_read_and_its_encoding_named() -> None:
    # Given a Hungarian statement in CP852 (not UTF-8)
    data = (
        ":20:STARTUMS\n:25:UBRTHUHB/1234/HUF\n:28C:0072\n:60F:C180417HUF100,00\n"
        ":61:180417CF10,00N527\nCsoportos átutalás jóváírása\n:86:Díj, jutalék, összevont utánvét\n:62F:C180417HUF110,00\n"
    ).encode("cp852")
    # When reconciled
    rendered = reconcile(data)
    # Then it is read, its text decoded, and the report names the encoding
    assert rendered["encoding"] == "cp852"
    assert rendered["statements"][0]["balanced"] is True
    assert "jutalék" in rendered["statements"][0]["entries"][0]["text"]


# --- BAI2 -------------------------------------------------------------------------------------

BAI2_EMPTY_FIRST_SUMMARY = b"""01,GSBI,cont001,210706,1249,1,,,2/
02,cont001,026015079,1,230906,2000,,/
03,107049932,USD,,,,,060,6865898,,,100,1912,1,,400,000,0,/
16,165,1912,,SPB1,1111,ACH Credit Payment
88,EREF: 1111
49,6869722,3/
98,6869722,1,5/
99,6869722,1,7/
"""


def test_bai2_account_with_an_empty_first_summary_is_read() -> None:
    # Given an 03 record whose first summary is empty (no type code)
    rendered = reconcile(BAI2_EMPTY_FIRST_SUMMARY)
    # Then it is read, and checked by its 100/400 totals (no 010/015 balances)
    statement = rendered["statements"][0]
    assert rendered["rows"] == 1 and statement["balanced"] is True
    assert statement["balance_check"].startswith("entries = control totals")


BAI2_SPLIT_AND_PACKED = b"""01,122099999,123456789,040621,0200,1,65,,2/   02,031001234,122099999,1,040620,2359,,2/
03,9876543210,,010,-500000,,,100,1000000,,,400,2000000,,,190/
88,500000,,,040/
88,-1500000,,/
16,115,1000000,S,,200000,800000,,,LOCK BOX/  16,495,2000000,,,,TRANSFER/
49,4500000,6/
98,4500000,1,8/
99,4500000,1,10/
"""


def test_bai2_summary_split_by_a_continuation_and_records_packed_on_one_line() -> None:
    # Given a summary split across ``190/`` + ``88,500000`` and records packed on one line
    rendered = reconcile(BAI2_SPLIT_AND_PACKED)
    # Then the file is read: two entries, the control total holds, the 100/400 totals check it
    statement = rendered["statements"][0]
    assert rendered["rows"] == 2 and statement["problems"] == []
    assert statement["balanced"] is True


def test_bai2_account_without_balances_or_totals_cannot_be_checked_which_is_not_unbalanced() -> None:
    data = b"01,A,B,040621,0200,1,65,,2/\n02,A,B,1,040620,2359,USD,2/\n03,1,USD/\n49,,2/\n98,,1,4/\n99,,1,6/\n"
    rendered = reconcile(data)
    statement = rendered["statements"][0]
    assert statement["balanced"] is None and statement["balance_check"].startswith("not possible")
    assert rendered["clean"] is True  # nothing wrong was found


# --- camt.053 ---------------------------------------------------------------------------------

CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>S1</Id>
<Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="{closing}">15.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>
<Ntry><Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts></Ntry>
</Stmt></BkToCstmrStmt></Document>
"""


def test_camt053_amount_currency_is_checked_against_the_statement_currency() -> None:
    # Given a EUR statement whose closing balance is in SEK / When reconciled
    wrong = reconcile(CAMT.replace("{closing}", "SEK").encode())["statements"][0]
    right = reconcile(CAMT.replace("{closing}", "EUR").encode())["statements"][0]
    # Then the SEK balance is not read as EUR: the statement is flagged, the EUR one balances
    assert wrong["balanced"] is False and "CLBD is in SEK" in wrong["problems"][0]
    assert right["balanced"] is True


def test_a_bai2_file_that_ends_before_its_trailers_is_quarantined_not_parsed_forever() -> None:
    # Given a BAI2 file cut short after a 16 record (found by the fuzzer: the parser looped)
    data = BAI2_EMPTY_FIRST_SUMMARY.split(b"\n49,")[0]
    # When reconciled / Then it is quarantined with a reason
    with pytest.raises(UnreadableFile, match="99 trailer"):
        reconcile(data)


def test_camt053_with_an_unknown_encoding_declaration_is_quarantined() -> None:
    data = CAMT.replace("{closing}", "EUR").replace('encoding="UTF-8"', 'encoding="UTF-9"').encode()
    with pytest.raises(UnreadableFile, match="XML"):
        reconcile(data)
