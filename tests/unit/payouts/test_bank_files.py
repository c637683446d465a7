"""The bank rail's files: the pain.001 writer, the pain.002 and camt readers, the simulated bank.

Given / When / Then; the real samples are read from ../shared/bank-replies/ (skipped, visibly, where absent).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from schwifty import IBAN

from payments.payouts.bank.camt import read_camt
from payments.payouts.bank.pain001 import (
    Debtor,
    NoPayoutRail,
    PaymentFileRefused,
    PayoutInstruction,
    SepaCreditTransferRail,
    rail_for,
    write_payout_file,
)
from payments.payouts.bank.pain001_reader import read_pain001
from payments.payouts.bank.pain002 import read_pain002
from payments.payouts.bank.simulated import (
    TEST_IBAN_PAID,
    TEST_IBAN_REJECTED,
    TEST_IBAN_RETURNED,
    MemoryBankStore,
    SimulatedBank,
    account_fate,
)
from payments.reconciliation.bank import reconcile_statement
from payments.reconciliation.model import Bounds, UnreadableFile

REPLIES = Path(__file__).resolve().parents[3] / ".." / "shared" / "bank-replies"
DEBTOR = Debtor(name="Marketplace Ltd", iban="DE82 3704 0044 0123 4567 89", bic="COBADEFFXXX")
RUN_AT = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
EXEC = date(2026, 12, 7)


def payout(n: int, iban: str = TEST_IBAN_PAID, minor: int = 1000, **kw: object) -> PayoutInstruction:
    values: dict[str, object] = {
        "payout_id": f"pt_{n}",
        "account_holder": "Books Ltd",
        "iban": iban,
        "amount_minor": minor,
        "currency": "EUR",
        "remittance": f"Payout pt_{n}",
    }
    values.update(kw)
    return PayoutInstruction.model_validate(values)


def shared(name: str) -> bytes:
    path = REPLIES / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared bank replies are not laid beside the repository")
    return path.read_bytes()


# --- test IBANs ---------------------------------------------------------------------------


def test_the_test_ibans_are_valid_and_end_as_the_contract_says() -> None:
    for iban, ending, fate in (
        (TEST_IBAN_REJECTED, "0001", "rejected"),
        (TEST_IBAN_RETURNED, "0002", "returned"),
        (TEST_IBAN_PAID, "3000", "paid"),
    ):
        parsed = IBAN(iban)  # raises on a wrong checksum or country format
        assert parsed.account_code.endswith(ending)
        assert account_fate(iban) == fate


# --- pain.001 -----------------------------------------------------------------------------


def test_a_run_is_one_valid_pain001_with_end_to_end_ids_count_and_control_sum() -> None:
    # Given three payouts, one with a BIC
    payouts = [payout(1, minor=1499), payout(2, minor=100001, bic="COBADEFFXXX"), payout(3, minor=1)]
    # When the EUR rail writes the run
    file = write_payout_file("EUR", DEBTOR, "run-1", RUN_AT, EXEC, payouts)
    # Then the file is pain.001.001.09 with each payout_id as EndToEndId and the figures right
    written = read_pain001(file.content)
    assert str(written.message) == "pain.001.001.09"
    assert written.msg_id == file.msg_id and file.key == f"outgoing/pain001/{file.msg_id}.xml"
    assert [t.end_to_end_id for t in written.transactions] == ["pt_1", "pt_2", "pt_3"]
    assert written.number_of_transactions == 3 == file.number_of_transactions
    assert written.control_sum_minor == 1499 + 100001 + 1 == file.control_sum_minor
    assert b"<CtrlSum>1015.01</CtrlSum>" in file.content
    assert written.debtor_iban == "DE82370400440123456789"
    assert written.problems == []
    # and it is valid against the XSD sepaxml ships
    import sepaxml
    import xmlschema

    xsd = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
    xmlschema.XMLSchema(str(xsd)).validate(file.content.decode())


def test_a_retried_run_writes_the_same_bytes_and_other_content_another_msg_id() -> None:
    payouts = [payout(1), payout(2)]
    first = write_payout_file("EUR", DEBTOR, "run-1", RUN_AT, EXEC, payouts)
    again = write_payout_file("EUR", DEBTOR, "run-1", RUN_AT, EXEC, list(reversed(payouts)))
    assert again.content == first.content
    other_amount = write_payout_file("EUR", DEBTOR, "run-1", RUN_AT, EXEC, [payout(1), payout(2, minor=999)])
    other_run = write_payout_file("EUR", DEBTOR, "run-2", RUN_AT, EXEC, payouts)
    assert len({first.msg_id, other_amount.msg_id, other_run.msg_id}) == 3
    assert all(len(f.msg_id) <= 35 for f in (first, other_amount, other_run))


def test_a_file_the_xsd_refuses_is_never_returned() -> None:
    # Given a payout built past its model's checks: an EndToEndId longer than the schema's Max35Text
    broken = payout(1).model_copy(update={"payout_id": "x" * 36})
    # When the rail writes it, Then sepaxml's validation on export refuses the file
    with pytest.raises(PaymentFileRefused, match=r"pain\.001\.001\.09 schema"):
        SepaCreditTransferRail(DEBTOR).write("run-1", RUN_AT, EXEC, [broken])


def test_other_currencies_have_no_rail() -> None:
    assert rail_for("USD", DEBTOR) is None
    assert rail_for("EUR", DEBTOR) is not None
    with pytest.raises(NoPayoutRail, match="no payout rail for USD"):
        write_payout_file("USD", DEBTOR, "run-1", RUN_AT, EXEC, [payout(1, currency="USD")])
    with pytest.raises(NoPayoutRail, match="GBP"):
        SepaCreditTransferRail(DEBTOR).write("run-1", RUN_AT, EXEC, [payout(1), payout(2, currency="GBP")])


def test_a_payout_twice_in_a_run_or_an_empty_run_is_refused() -> None:
    with pytest.raises(PaymentFileRefused, match="twice"):
        SepaCreditTransferRail(DEBTOR).write("run-1", RUN_AT, EXEC, [payout(1), payout(1)])
    with pytest.raises(PaymentFileRefused, match="at least one"):
        SepaCreditTransferRail(DEBTOR).write("run-1", RUN_AT, EXEC, [])


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("iban", "DE89370400440532013001", "must be a valid IBAN"),  # checksum wrong
        ("iban", "XX00123", "must be a valid IBAN"),
        ("bic", "NOTABIC", "must be a valid BIC"),
        ("payout_id", "p" * 36, "at most 35 characters"),
        ("amount_minor", 10.5, "integer"),
        ("amount_minor", 0, "greater than 0"),
    ],
)
def test_bad_payout_input_names_the_field(field: str, value: object, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        payout(1, **{field: value})
    errors = caught.value.errors()
    assert errors[0]["loc"] == (field,)
    assert words in errors[0]["msg"]
    assert str(value) not in errors[0]["msg"] or field == "amount_minor"


def test_an_iban_is_never_shown_in_full() -> None:
    from payments.payouts.bank.pain001 import masked_iban

    assert masked_iban("DE89 3704 0044 0532 0130 00") == "DE89 **** **** **** **30 00"  # the contract's form
    p = payout(1, iban=TEST_IBAN_RETURNED)
    assert masked_iban(TEST_IBAN_RETURNED) in repr(p)
    assert TEST_IBAN_RETURNED not in repr(p) and TEST_IBAN_RETURNED not in str(p)
    written = read_pain001(write_payout_file("EUR", DEBTOR, "r", RUN_AT, EXEC, [p]).content)
    assert TEST_IBAN_RETURNED not in repr(written)


def test_the_debtor_comes_from_the_settings() -> None:
    from payments.kernel.config import Settings

    settings = Settings.from_env(
        {"PAYOUT_DEBTOR_NAME": "Plat", "PAYOUT_DEBTOR_IBAN": TEST_IBAN_PAID, "PAYOUT_DEBTOR_BIC": ""}
    )
    debtor = Debtor.from_settings(settings)
    assert (debtor.name, debtor.iban, debtor.bic) == ("Plat", TEST_IBAN_PAID, None)
    Debtor.from_settings(Settings())  # the local defaults are a valid account


# --- pain.002 -----------------------------------------------------------------------------


def test_the_real_pain002_rejections_are_recognised_with_their_reasons() -> None:
    report = read_pain002(shared("oca-pain002-rejects.xml"))
    assert str(report.message) == "pain.002.001.03"
    assert report.original_msg_id == "MSGID12345678912"
    assert report.original_message_name == "PAIN.008.001.02"
    got = {t.end_to_end_id: (t.status, t.reasons, t.amount.minor if t.amount else None) for t in report.matchable()}
    assert got == {
        "E2EID1": ("RJCT", ("AC01",), 10000),
        "E2EID2": ("RJCT", ("MS02",), 10000),
        "E2EID3": ("RJCT", ("MD06",), 10000),
        "E2EID4": ("RJCT", ("AM04",), 10000),
    }
    assert report.problems == []


PAIN002 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.{version}"><CstmrPmtStsRpt>
<GrpHdr><MsgId>R1</MsgId><CreDtTm>2026-12-07T01:00:00Z</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>PO1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>{group}</OrgnlGrpInfAndSts>
{blocks}</CstmrPmtStsRpt></Document>"""


def tx(e2e: str, status: str = "", reason: str = "", amount: str = "") -> str:
    out = f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>"
    out += f"<TxSts>{status}</TxSts>" if status else ""
    out += f"<StsRsnInf><Rsn><Cd>{reason}</Cd></Rsn></StsRsnInf>" if reason else ""
    out += f'<OrgnlTxRef><Amt><InstdAmt Ccy="EUR">{amount}</InstdAmt></Amt></OrgnlTxRef>' if amount else ""
    return out + "</TxInfAndSts>"


def block(*txs: str, status: str = "", extra: str = "") -> str:
    head = "<OrgnlPmtInfAndSts><OrgnlPmtInfId>B1</OrgnlPmtInfId>"
    return head + (f"<PmtInfSts>{status}</PmtInfSts>" if status else "") + extra + "".join(txs) + "</OrgnlPmtInfAndSts>"


@pytest.mark.parametrize("version", ["03", "05", "09", "10"])
def test_pain002_statuses_at_each_level_in_each_version(version: str) -> None:
    content = PAIN002.format(
        version=version,
        group="<GrpSts>PART</GrpSts>",
        blocks=block(tx("pt_1", "ACCP"), tx("pt_2", "RJCT", "AC04", "12.30"), tx("pt_3"), status="ACTC")
        + block(tx("pt_4", "ACSC"), tx("pt_5", "PDNG")),
    )
    report = read_pain002(content.encode())
    statuses = {t.end_to_end_id: (t.status, t.reasons) for t in report.transactions}
    assert statuses == {
        "pt_1": ("ACCP", ()),
        "pt_2": ("RJCT", ("AC04",)),
        "pt_3": ("ACTC", ()),  # its block's status
        "pt_4": ("ACSC", ()),
        "pt_5": ("PDNG", ()),
    }
    assert next(t for t in report.transactions if t.end_to_end_id == "pt_2").amount is not None
    assert report.problems == []


def test_pain002_inconsistencies_are_problems_never_matched() -> None:
    content = PAIN002.format(
        version="10",
        group="",
        blocks=block(
            tx("pt_1", "ACCP"),
            tx("pt_1", "RJCT", "AC01"),
            tx("pt_2"),
            tx("pt_3", "ZZZZ"),
            tx("pt_4", "ACCP", amount="1.2.3"),
            extra="<NbOfTxsPerSts><DtldNbOfTxs>5</DtldNbOfTxs><DtldSts>ACCP</DtldSts></NbOfTxsPerSts>",
        ),
    )
    report = read_pain002(content.encode())
    text = " | ".join(report.problems)
    assert "pt_1 is reported 2 times" in text
    assert "pt_2 has no status" in text
    assert "unknown status code 'ZZZZ'" in text
    assert "'1.2.3' is not a decimal" in text
    assert "5 transactions with status ACCP declared, 2 listed" in text
    assert {t.end_to_end_id for t in report.matchable()} == {"pt_3"}


def test_a_whole_file_rejection_and_a_duplicate_are_told_apart() -> None:
    whole = read_pain002(
        PAIN002.format(
            version="10", group="<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf>", blocks=""
        ).encode()
    )
    assert whole.whole_file_rejected and not whole.duplicate_refused
    duplicate = read_pain002(
        PAIN002.format(
            version="10", group="<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>DU01</Cd></Rsn></StsRsnInf>", blocks=""
        ).encode()
    )
    assert duplicate.duplicate_refused and not duplicate.whole_file_rejected


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><d/>', "document type declaration is refused"),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.10'><CstmrPmtStsRpt>", "malformed"),
        (
            b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.02'/>",
            "not a pain.002 status report of a version read here",
        ),
        (b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'/>", "not a pain.002"),
        (b"<html/>", "not an ISO 20022 document"),
    ],
)
def test_unreadable_pain002_is_refused_with_its_reason(content: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFile) as caught:
        read_pain002(content)
    assert reason in caught.value.reason


def test_an_oversized_bank_file_is_refused_while_read() -> None:
    big = b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.002.001.10'>" + b" " * 2048 + b"</Document>"
    from payments.payouts.bank.xmlread import elements

    with pytest.raises(UnreadableFile, match="exceeds the bound"):
        list(elements(io.BytesIO(big), frozenset({"GrpHdr"}), max_bytes=1024))


# --- camt.053 / camt.054 ------------------------------------------------------------------


def test_the_real_camt054_return_is_recognised() -> None:
    message = read_camt(shared("oca-camt054-return.xml"))
    assert str(message.message) == "camt.054.001.02" and message.problems == []
    (ret,) = message.returns()
    assert (ret.end_to_end_id, ret.reason, ret.amount.minor, ret.amount.currency) == ("E2EID1", "AC06", 10000, "EUR")
    assert ret.direction == "DBIT"  # a returned direct debit; a returned payout comes back as a credit
    assert message.booked_payouts() == []  # a return is never a payout paid


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("genkgo-camt054.v2.xml", ["3 of its 3 transactions carry no amount", "MUELL/FINP/RA12345 appears 3 times"]),
        (
            "genkgo-camt054.v4.xml",
            [
                "batch declares 2 transactions, 3 are listed",
                "batch totals 6.30 CHF, the transactions listed sum to 9.50 CHF",
                "transactions in CHF, the entry is in SEK",
                "is a CRDT inside a DBIT entry",
                "UXC06170000006PI00001EE00002 appears 2 times",
            ],
        ),
        (
            "genkgo-camt054.v8.xml",
            ["batch declares 2 transactions, 3 are listed", "UXC06170000006PI00001EE00002 appears 2 times"],
        ),
    ],
)
def test_the_inconsistent_library_fixtures_are_reported_never_matched(name: str, expected: list[str]) -> None:
    message = read_camt(shared(name))
    text = " | ".join(message.problems)
    for phrase in expected:
        assert phrase in text
    assert all(not e.matchable for e in message.entries) and message.entries
    assert message.booked_payouts() == [] and message.returns() == []


CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{kind}.001.{version}"><{root}>
<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-12-07T23:59:59Z</CreDtTm></GrpHdr>
<{stmt}><Id>S1</Id><Acct><Id><IBAN>DE82370400440123456789</IBAN></Id></Acct>{summary}{entries}</{stmt}>
</{root}></Document>"""


def entry(amount: str, direction: str, *txs: str, status: str = "<Sts><Cd>BOOK</Cd></Sts>") -> str:
    details = f"<NtryDtls>{''.join(txs)}</NtryDtls>" if txs else ""
    return f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{direction}</CdtDbtInd>{status}<BookgDt><Dt>2026-12-07</Dt></BookgDt>{details}</Ntry>'


def txd(e2e: str, amount: str = "", rtr: str = "", amt_dtls: bool = False) -> str:
    out = f"<TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs>"
    if amount and amt_dtls:
        out += f'<AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>'
    elif amount:
        out += f'<Amt Ccy="EUR">{amount}</Amt>'
    out += f"<RtrInf><Rsn><Cd>{rtr}</Cd></Rsn></RtrInf>" if rtr else ""
    return out + "</TxDtls>"


def camt(entries: str, kind: str = "camt.053", version: str = "08", summary: str = "") -> bytes:
    root, stmt = ("BkToCstmrStmt", "Stmt") if kind == "camt.053" else ("BkToCstmrDbtCdtNtfctn", "Ntfctn")
    return CAMT.format(kind=kind, version=version, root=root, stmt=stmt, summary=summary, entries=entries).encode()


@pytest.mark.parametrize(("kind", "version"), [("camt.053", "02"), ("camt.053", "08"), ("camt.054", "04")])
def test_booked_debits_and_returns_in_camt_files(kind: str, version: str) -> None:
    status = "<Sts>BOOK</Sts>" if version == "02" else "<Sts><Cd>BOOK</Cd></Sts>"
    content = camt(
        entry(
            "30.00",
            "DBIT",
            txd("pt_1", "10.00", amt_dtls=version == "02"),
            txd("pt_2", "20.00", amt_dtls=version == "02"),
            status=status,
        )
        + entry("5.00", "DBIT", txd("pt_3"), status=status)
        + entry("7.00", "CRDT", txd("pt_9", rtr="AC04"), status=status)
        + entry("8.00", "DBIT", txd("pt_8"), status="<Sts><Cd>PDNG</Cd></Sts>"),
        kind,
        version,
    )
    message = read_camt(content)
    assert message.problems == []
    paid = {(p.end_to_end_id, p.amount.minor) for p in message.booked_payouts()}
    assert paid == {("pt_1", 1000), ("pt_2", 2000), ("pt_3", 500)}  # pt_8 is pending: not paid
    (ret,) = message.payout_returns()
    assert (ret.end_to_end_id, ret.reason, ret.amount.minor) == ("pt_9", "AC04", 700)


def test_an_entry_whose_transactions_do_not_add_up_is_reported() -> None:
    content = camt(
        entry("30.00", "DBIT", txd("pt_1", "10.00"), txd("pt_2", "25.00")) + entry("1.00", "DBIT", txd("pt_3", "1.00")),
        summary="<TxsSummry><TtlDbtNtries><NbOfNtries>3</NbOfNtries></TtlDbtNtries></TxsSummry>",
    )
    message = read_camt(content)
    text = " | ".join(message.problems)
    assert "the entry is 30.00 EUR, its transactions sum to 35.00 EUR" in text
    assert "TtlDbtNtries declares 3 entries, 2 are listed" in text
    assert {p.end_to_end_id for p in message.booked_payouts()} == {"pt_3"}


def test_amounts_are_never_floats() -> None:
    message = read_camt(camt(entry("0.30", "DBIT", txd("pt_1", "0.10"), txd("pt_2", "0.20"))))
    assert message.problems == []  # 0.1 + 0.2 == 0.3 exactly in minor units
    assert all(isinstance(p.amount.minor, int) for p in message.booked_payouts())


# --- the simulated bank -------------------------------------------------------------------


def run_file(*payouts: PayoutInstruction, run: str = "run-1") -> bytes:
    return write_payout_file("EUR", DEBTOR, run, RUN_AT, EXEC, list(payouts)).content


def test_the_bank_answers_each_file_at_once_by_the_test_ibans() -> None:
    bank = SimulatedBank(MemoryBankStore(), DEBTOR, opening_minor=100_000)
    reply = bank.receive(run_file(payout(1), payout(2, TEST_IBAN_REJECTED), payout(3, TEST_IBAN_RETURNED)), RUN_AT)
    report = read_pain002(reply.content)
    assert reply.key.startswith("incoming/bank/pain002/") and bank.store.get(reply.key) == reply.content
    assert report.group_status == "PART" and report.problems == []
    assert {t.end_to_end_id: (t.status, t.reasons) for t in report.transactions} == {
        "pt_1": ("ACCP", ()),
        "pt_2": ("RJCT", ("AC01",)),
        "pt_3": ("ACCP", ()),
    }
    assert (
        report.original_msg_id
        == read_pain001(run_file(payout(1), payout(2, TEST_IBAN_REJECTED), payout(3, TEST_IBAN_RETURNED))).msg_id
    )


def test_a_repeated_msg_id_is_refused_whole_and_booked_once() -> None:
    bank = SimulatedBank(MemoryBankStore(), DEBTOR, opening_minor=100_000)
    content = run_file(payout(1, minor=4000))
    first = bank.receive(content, RUN_AT)
    again = read_pain002(bank.receive(content, datetime(2026, 12, 7, 9, tzinfo=UTC)).content)
    assert read_pain002(first.content).group_status == "ACCP"
    assert again.duplicate_refused and again.group_reasons == ("DU01",) and again.transactions == []
    _, statement = bank.close_day(RUN_AT.date())
    assert [p.end_to_end_id for p in read_camt(statement).booked_payouts()] == ["pt_1"]


def test_a_file_that_breaks_its_schema_is_refused_whole() -> None:
    bank = SimulatedBank(MemoryBankStore(), DEBTOR)
    broken = run_file(payout(1)).replace(b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>NOPE</ChrgBr>")
    report = read_pain002(bank.receive(broken, RUN_AT).content)
    assert report.whole_file_rejected and report.group_reasons == ("FF01",)


def test_close_day_books_debits_and_returns_0002_the_next_day() -> None:
    store = MemoryBankStore()
    bank = SimulatedBank(store, DEBTOR, opening_minor=100_000)
    bank.receive(
        run_file(payout(1, minor=1000), payout(2, TEST_IBAN_REJECTED, 2000), payout(3, TEST_IBAN_RETURNED, 3000)),
        RUN_AT,
    )
    key, day1 = bank.close_day(date(2026, 12, 6))
    assert key == "incoming/bank/camt053/2026-12-06.xml"
    first = read_camt(day1)
    assert str(first.message) == "camt.053.001.08" and first.problems == []
    assert {(p.end_to_end_id, p.amount.minor) for p in first.booked_payouts()} == {("pt_1", 1000), ("pt_3", 3000)}
    assert first.returns() == []
    _, day2 = bank.close_day(date(2026, 12, 7))
    second = read_camt(day2)
    assert second.booked_payouts() == []
    assert [(r.end_to_end_id, r.reason, r.amount.minor) for r in second.payout_returns()] == [("pt_3", "AC04", 3000)]
    _, day3 = bank.close_day(date(2026, 12, 8))
    assert read_camt(day3).entries == []  # returned once, not again
    # the statements balance as the existing camt.053 reconciliation reads them
    for content, opening, closing in ((day1, "1000.00", "960.00"), (day2, "960.00", "990.00")):
        (stmt,) = reconcile_statement("camt053", io.BytesIO(content), Bounds(), None).statements
        assert (stmt["opening_balance"], stmt["closing_balance"], stmt["balanced"]) == (opening, closing, True)
    # closing a day again writes nothing new; a day before a closed one is refused
    assert bank.close_day(date(2026, 12, 6))[1] == day1
    with pytest.raises(ValueError, match="before a day already closed"):
        bank.close_day(date(2026, 12, 5))


def test_a_file_received_for_a_closed_day_is_booked_on_the_next() -> None:
    bank = SimulatedBank(MemoryBankStore(), DEBTOR, opening_minor=100_000)
    bank.close_day(RUN_AT.date())
    bank.receive(run_file(payout(7)), RUN_AT)
    _, next_day = bank.close_day(date(2026, 12, 7))
    assert [p.end_to_end_id for p in read_camt(next_day).booked_payouts()] == ["pt_7"]


def test_the_bank_files_hold_no_iban_of_a_seller() -> None:
    bank = SimulatedBank(MemoryBankStore(), DEBTOR, opening_minor=100_000)
    reply = bank.receive(run_file(payout(1, TEST_IBAN_RETURNED)), RUN_AT)
    _, day1 = bank.close_day(RUN_AT.date())
    _, day2 = bank.close_day(date(2026, 12, 7))
    for content in (reply.content, day1, day2):
        assert TEST_IBAN_RETURNED.encode() not in content
    assert all(TEST_IBAN_RETURNED.encode() not in body for body in bank.store.objects.values())


class CrashOnFirstReply(MemoryBankStore):
    """A store whose first write of a pain.002 fails, as a crash between two writes would."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed = False

    def put_new(self, key: str, body: bytes) -> bool:
        if key.startswith("incoming/bank/pain002/") and not self.crashed:
            self.crashed = True
            raise ConnectionError("crash before the reply is written")
        return super().put_new(key, body)


def test_a_crash_before_the_reply_loses_neither_the_reply_nor_the_booking() -> None:
    # Given a bank whose store fails while writing the first reply
    store = CrashOnFirstReply()
    bank = SimulatedBank(store, DEBTOR, opening_minor=100_000)
    content = run_file(payout(1, minor=2500))
    with pytest.raises(ConnectionError):
        bank.receive(content, RUN_AT)
    # When the file is delivered again
    again = read_pain002(bank.receive(content, RUN_AT).content)
    # Then the repeat is refused as a duplicate, the original reply is in the store, and the payout is booked once
    assert again.duplicate_refused
    replies = [read_pain002(store.objects[k]) for k in store.keys("incoming/bank/pain002/")]
    assert sorted(r.group_status for r in replies) == ["ACCP", "RJCT"]
    _, statement = bank.close_day(RUN_AT.date())
    assert [(p.end_to_end_id, p.amount.minor) for p in read_camt(statement).booked_payouts()] == [("pt_1", 2500)]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iban", "DE89370400440532013001", "iban must be a valid IBAN such as DE89370400440532013000"),
        ("bic", "NOPE", "bic must be a valid BIC such as COBADEFFXXX"),
        ("payout_id", "p" * 40, "payout_id must be at most 35 characters: it is the SEPA EndToEndId"),
    ],
)
def test_bad_payout_input_reads_in_the_merchants_words(field: str, value: str, message: str) -> None:
    from functions.merchant_words import field_errors

    with pytest.raises(ValidationError) as caught:
        payout(1, **{field: value})
    (error,) = field_errors(caught.value.errors())
    assert error["field"] == field and error["message"].startswith(message)
    assert value not in error["message"]
