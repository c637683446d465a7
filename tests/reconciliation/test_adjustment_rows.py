"""Refunded, Chargeback, ChargebackReversed and SecondChargeback rows (issue 18): written as Adyen
writes them and matched against the ledger's refunds, chargebacks, reversals and second chargebacks
like charges."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from payments.reconciliation import adyen, report
from payments.reconciliation.engine import Partial
from payments.reconciliation.model import Bounds
from payments.reconciliation.service import reconcile_stream
from payments.reconciliation.sources import InMemoryLedgerSource, LedgerAdjustment, LedgerEntry

DAY = "2026-11-30"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "adyen"

CHARGES = [
    {
        "psp_reference": "psp_00000000000000c1",
        "merchant_reference": "po_1",
        "merchant_account": "M",
        "amount_minor": 7000,
        "currency": "USD",
        "charged_at": f"{DAY}T09:00:00.000Z",
    },
    {
        "psp_reference": "psp_00000000000000c2",
        "merchant_reference": "po_2",
        "merchant_account": "M",
        "amount_minor": 4000,
        "currency": "EUR",
        "charged_at": f"{DAY}T10:00:00.000Z",
    },
]


def modification(
    record_type: str,
    reference: str,
    order: str,
    payment: str,
    amount: int,
    currency: str = "USD",
    refund_id: str = "",
    at: str = "11:00:00",
) -> dict[str, Any]:
    return {
        "record_type": record_type, "psp_reference": payment, "modification_reference": reference, "merchant_reference": order,
        "modification_merchant_reference": refund_id, "merchant_account": "M", "payment_method": "visa",
        "amount_minor": amount, "currency": currency, "at": f"{DAY}T{at}.000Z",
    }  # fmt: skip


MODIFICATIONS = [
    modification("Refunded", "psp_00000000000000r1", "po_1", "psp_00000000000000c1", 1000, refund_id="rf_1"),
    modification("Chargeback", "dsp_00000000000000d1", "po_1", "psp_00000000000000c1", 2000, at="12:00:00"),
    modification("ChargebackReversed", "dsp_00000000000000d1", "po_1", "psp_00000000000000c1", 2000, at="13:00:00"),
    modification(
        "Refunded", "psp_00000000000000r2", "po_2", "psp_00000000000000c2", 500, currency="EUR", refund_id="rf_2"
    ),
]


def ledger_adjustment(
    txn_id: str,
    record_type: str,
    reference: str,
    order: str,
    payment: str,
    amount: int,
    currency: str = "USD",
    day: str = DAY,
) -> LedgerAdjustment:
    return LedgerAdjustment(
        txn_id, record_type, reference, payment, order, "seller_books", currency, amount, f"{day}T11:00:01.000Z"
    )


ADJUSTMENTS = [
    ledger_adjustment("refund:rf_1", "Refunded", "psp_00000000000000r1", "po_1", "psp_00000000000000c1", 1000),
    ledger_adjustment(
        "chargeback:dsp_00000000000000d1", "Chargeback", "dsp_00000000000000d1", "po_1", "psp_00000000000000c1", 2000
    ),
    ledger_adjustment(
        "chargeback_reversed:dsp_00000000000000d1",
        "ChargebackReversed",
        "dsp_00000000000000d1",
        "po_1",
        "psp_00000000000000c1",
        2000,
    ),
    ledger_adjustment(
        "refund:rf_2", "Refunded", "psp_00000000000000r2", "po_2", "psp_00000000000000c2", 500, currency="EUR"
    ),
]


def ledger(adjustments: list[LedgerAdjustment]) -> InMemoryLedgerSource:
    entries = [
        LedgerEntry(
            c["psp_reference"],
            c["merchant_reference"],
            "seller_books",
            c["currency"],
            c["amount_minor"],
            c["charged_at"],
        )
        for c in CHARGES
    ]
    return InMemoryLedgerSource(entries, adjustments)


def settlement_file(modifications: list[dict[str, Any]] = MODIFICATIONS) -> str:
    out = io.StringIO()
    adyen.write_report(CHARGES, DAY, out, modifications)
    return out.getvalue()


def reconcile(text: str, adjustments: list[LedgerAdjustment], bounds: Bounds | None = None) -> dict[str, Any]:
    result, digest = reconcile_stream(io.BytesIO(text.encode()), ledger(adjustments), bounds or Bounds(), None, DAY)
    return report.build("incoming/simulated-psp/2026-11-30.csv", digest, result, None)


def outcomes(built: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(m["kind"], m.get("record_type"), m["psp_reference"]) for m in built["mismatches"]]


def test_the_report_writes_each_modification_on_adyens_sides_with_its_references() -> None:
    # Given a day's charges and modifications / When the report is written
    rows = list(csv.DictReader(io.StringIO(settlement_file())))
    # Then the modifications follow the Settled rows, one row each, before the payouts
    assert [r["Type"] for r in rows] == [
        "Settled",
        "Settled",
        "Refunded",
        "Chargeback",
        "ChargebackReversed",
        "Refunded",
        "MerchantPayout",
        "MerchantPayout",
    ]
    refund, chargeback, reversal = rows[2], rows[3], rows[4]
    # And each names the payment and the modification as Adyen does
    assert (refund["Psp Reference"], refund["Merchant Reference"], refund["Modification Reference"], refund["Modification Merchant Reference"]) == (
        "psp_00000000000000c1", "po_1", "psp_00000000000000r1", "rf_1"
    )  # fmt: skip
    assert (chargeback["Modification Reference"], chargeback["Modification Merchant Reference"]) == (
        "dsp_00000000000000d1",
        "",
    )
    assert refund["Creation Date"] == "2026-11-30 11:00:00" and refund["TimeZone"] == "UTC"
    # And the amounts: refund and chargeback debits (the chargeback's fee on top, in Markup), the reversal a credit
    columns = (
        "Gross Debit (GC)",
        "Gross Credit (GC)",
        "Net Debit (NC)",
        "Net Credit (NC)",
        "Commission (NC)",
        "Markup (NC)",
    )
    assert [refund[c] for c in columns] == ["10.00", "", "10.00", "", "", ""]
    assert [chargeback[c] for c in columns] == ["20.00", "", "30.00", "", "", "10.00"]
    assert [reversal[c] for c in columns] == ["", "20.00", "", "20.00", "", ""]


SECOND = modification("SecondChargeback", "dsp_00000000000000d1", "po_1", "psp_00000000000000c1", 2000, at="14:00:00")
SECOND_BOOKED = ledger_adjustment(
    "second_chargeback:dsp_00000000000000d1",
    "SecondChargeback",
    "dsp_00000000000000d1",
    "po_1",
    "psp_00000000000000c1",
    2000,
)


def test_a_second_chargeback_row_is_a_debit_without_a_fee_and_matches_the_ledgers_second_chargeback() -> None:
    # Given the day's dispute lost after its reversal: a SecondChargeback row, and the ledger's second chargeback
    text = settlement_file([*MODIFICATIONS, SECOND])
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["Type"] == "SecondChargeback")
    # Then the row is a gross and net debit (the dispute's fee came with its first chargeback), under the dispute's reference
    columns = ("Gross Debit (GC)", "Gross Credit (GC)", "Net Debit (NC)", "Net Credit (NC)", "Markup (NC)")
    assert [row[c] for c in columns] == ["20.00", "", "20.00", "", ""]
    assert row["Modification Reference"] == "dsp_00000000000000d1"
    # And it matches the ledger's second chargeback, told apart from the chargeback and the reversal of the same dispute
    built = reconcile(text, [*ADJUSTMENTS, SECOND_BOOKED])
    assert built["mismatches"] == [] and built["matched"] == 7
    assert built["summary"]["adjustments"]["SecondChargeback"] == {
        "rows": 1,
        "matched": 1,
        "mismatched": 0,
        "missing_in_settlement": 0,
    }
    # And the totals net it as a debit
    assert built["summary"]["totals"]["USD"]["second_chargeback"] == "20.00"
    # And without the ledger's, the row is MISSING_IN_LEDGER; without the row, the ledger's is MISSING_IN_SETTLEMENT
    assert outcomes(reconcile(text, ADJUSTMENTS)) == [("MISSING_IN_LEDGER", "SecondChargeback", "dsp_00000000000000d1")]
    assert outcomes(reconcile(settlement_file(), [*ADJUSTMENTS, SECOND_BOOKED])) == [
        ("MISSING_IN_SETTLEMENT", "SecondChargeback", "dsp_00000000000000d1")
    ]


def test_a_negative_batch_net_writes_no_payout() -> None:
    # Given a day whose chargeback exceeds its charges' net
    text = settlement_file(
        [modification("Chargeback", "dsp_00000000000000d9", "po_9", "psp_00000000000000c9", 9000, currency="EUR")]
    )
    # When it is written / Then the EUR balance carries over: no EUR payout, the USD one stays
    payouts = [r["Net Currency"] for r in csv.DictReader(io.StringIO(text)) if r["Type"] == "MerchantPayout"]
    assert payouts == ["USD"]


@pytest.mark.parametrize(
    "name", ["wmf-smashpig-refund.csv", "wmf-smashpig-chargeback.csv", "wmf-smashpig-chargeback_reversed.csv"]
)
def test_written_rows_fill_the_amount_columns_the_real_reports_fill(name: str) -> None:
    sample = SAMPLES / name
    if not sample.is_file():
        pytest.skip(f"the real samples are not here: {sample} is absent")
    # Given a real Adyen report's adjustment row and ours of the same type
    real = next(r for r in csv.DictReader(io.StringIO(sample.read_text())) if r["Type"] in adyen.MATCHED_ADJUSTMENTS)
    ours = next(r for r in csv.DictReader(io.StringIO(settlement_file())) if r["Type"] == real["Type"])
    # Then the same gross and net columns hold the amount, and both carry a Modification Reference
    columns = ("Gross Debit (GC)", "Gross Credit (GC)", "Net Debit (NC)", "Net Credit (NC)")
    assert [bool(real[c].strip('"')) for c in columns] == [bool(ours[c]) for c in columns]
    assert real["Modification Reference"] and ours["Modification Reference"]


def test_a_real_refund_row_matches_the_ledgers_refund() -> None:
    sample = SAMPLES / "wmf-smashpig-refund.csv"
    if not sample.is_file():
        pytest.skip(f"the real samples are not here: {sample} is absent")
    # Given Adyen's real Refunded row and the ledger's refund of it (booked that day)
    refund = LedgerAdjustment(
        "refund:92598312.0",
        "Refunded",
        "4522268869855336",
        "4522268860022701",
        "92598312.0",
        "s",
        "USD",
        100,
        "2016-02-10T18:25:40.000Z",
    )
    result, _ = reconcile_stream(
        io.BytesIO(sample.read_bytes()), InMemoryLedgerSource([], [refund]), Bounds(), None, "2016-02-10"
    )
    # Then it matched: found by its Modification Reference, amount in the Gross Debit
    assert result.adjustments["Refunded"] == {"rows": 1, "matched": 1, "mismatched": 0, "missing_in_settlement": 0}
    assert result.mismatches == []


def test_refund_and_chargeback_rows_match_the_ledgers_adjustments_with_zero_mismatches() -> None:
    # Given a file with charges, refunds, a chargeback and its reversal, all booked in the ledger
    built = reconcile(settlement_file(), ADJUSTMENTS)
    # Then every row matched, and the summary counts them per record type
    assert built["mismatches"] == [] and built["clean"] is True
    assert built["matched"] == 6 and built["summary"]["row_outcomes"]["matched"] == 6
    assert built["summary"]["adjustments"] == {
        "Refunded": {"rows": 2, "matched": 2, "mismatched": 0, "missing_in_settlement": 0},
        "Chargeback": {"rows": 1, "matched": 1, "mismatched": 0, "missing_in_settlement": 0},
        "ChargebackReversed": {"rows": 1, "matched": 1, "mismatched": 0, "missing_in_settlement": 0},
        "SecondChargeback": {"rows": 0, "matched": 0, "mismatched": 0, "missing_in_settlement": 0},
    }
    assert built["summary"]["record_types"] == {
        "ChargebackReversed": 1,
        "Chargeback": 1,
        "MerchantPayout": 2,
        "Refunded": 2,
        "Settled": 2,
    }


def test_a_ledger_refund_missing_from_the_file_is_missing_in_settlement() -> None:
    # Given a file without the refund rf_2 that the ledger booked that day
    built = reconcile(settlement_file(MODIFICATIONS[:3]), ADJUSTMENTS)
    # Then that refund alone is MISSING_IN_SETTLEMENT, named by its record type and reference
    assert outcomes(built) == [("MISSING_IN_SETTLEMENT", "Refunded", "psp_00000000000000r2")]
    mismatch = built["mismatches"][0]
    assert (mismatch["ledger_amount"], mismatch["currency"], mismatch["classification"]) == ("5.00", "EUR", "MANUAL")
    assert mismatch["mismatch_id"] == "MISSING_IN_SETTLEMENT#Refunded:psp_00000000000000r2#0"
    assert built["summary"]["adjustments"]["Refunded"]["missing_in_settlement"] == 1


def test_file_rows_unknown_to_the_ledger_are_missing_in_ledger() -> None:
    # Given a ledger that booked neither the chargeback nor its reversal
    built = reconcile(settlement_file(), [a for a in ADJUSTMENTS if a.record_type == "Refunded"])
    # Then both rows are MISSING_IN_LEDGER, told apart by record type though they share a reference
    assert outcomes(built) == [
        ("MISSING_IN_LEDGER", "Chargeback", "dsp_00000000000000d1"),
        ("MISSING_IN_LEDGER", "ChargebackReversed", "dsp_00000000000000d1"),
    ]
    assert len({m["mismatch_id"] for m in built["mismatches"]}) == 2
    assert built["summary"]["row_outcomes"] == {"matched": 4, "mismatched": 2, "rejected": 0, "recorded": 2}


def test_amount_and_currency_differences_and_duplicates_are_reported_per_record_type() -> None:
    # Given a ledger whose refund rf_1 says 9.00 and whose reversal is in EUR, and a file repeating the chargeback row
    adjustments = [
        replace(ADJUSTMENTS[0], amount_minor=900),
        ADJUSTMENTS[1],
        replace(ADJUSTMENTS[2], currency="EUR"),
        ADJUSTMENTS[3],
    ]
    built = reconcile(settlement_file([*MODIFICATIONS, MODIFICATIONS[1]]), adjustments)
    # Then each difference is one mismatch of its kind, with both sides' amounts
    assert outcomes(built) == [
        ("AMOUNT_MISMATCH", "Refunded", "psp_00000000000000r1"),
        ("CURRENCY_MISMATCH", "ChargebackReversed", "dsp_00000000000000d1"),
        ("DUPLICATE_IN_SETTLEMENT", "Chargeback", "dsp_00000000000000d1"),
    ]
    amount, currency, duplicate = built["mismatches"]
    assert (amount["ledger_amount"], amount["settlement_amount"]) == ("9.00", "10.00")
    assert (currency["currency"], currency["ledger_currency"]) == ("USD", "EUR")
    assert duplicate["classification"] == "AUTO_RESOLVABLE"
    assert built["summary"]["adjustments"]["Chargeback"] == {
        "rows": 2,
        "matched": 1,
        "mismatched": 1,
        "missing_in_settlement": 0,
    }


def test_a_refund_the_ledger_booked_on_another_day_is_found_by_its_transaction_id() -> None:
    # Given the ledger booked refund rf_1 just after midnight (the next day), the PSP on the day
    adjustments = [replace(ADJUSTMENTS[0], booked_at="2026-12-01T00:00:02.000Z"), *ADJUSTMENTS[1:]]
    # When the day's file is reconciled
    built = reconcile(settlement_file(), adjustments)
    # Then the row matched by one point lookup of refund:rf_1
    assert built["mismatches"] == [] and built["summary"]["adjustments"]["Refunded"]["matched"] == 2
    # And with no point lookups left, it is reported instead of guessed
    bounded = reconcile(settlement_file(), adjustments, Bounds(max_point_lookups=0))
    assert [(m["kind"], m["classification"]) for m in bounded["mismatches"]] == [("MISSING_IN_LEDGER", "UNCLASSIFIED")]


def test_a_refund_booked_against_another_order_is_not_matched() -> None:
    # Given the ledger's refund rf_1 belongs to po_2
    adjustments = [replace(ADJUSTMENTS[0], payment_order_id="po_2"), *ADJUSTMENTS[1:]]
    # Then its row is MISSING_IN_LEDGER with the reference rule, not matched
    built = reconcile(settlement_file(), adjustments)
    assert [(m["kind"], m["rule"].split(":")[0]) for m in built["mismatches"]] == [("MISSING_IN_LEDGER", "reference")]


def test_partials_carry_the_adjustment_rows_through_json() -> None:
    # Given the Partial of a file with adjustment rows (the distributed path stores it as JSON)
    layout = adyen.column_index(list(adyen.COLUMNS))
    partial = Partial()
    for line, fields in enumerate(csv.reader(io.StringIO(settlement_file())), start=1):
        if line > 1:
            partial.add(adyen.parse_row(fields, layout, line), Bounds())
    # When it goes through JSON / Then the rows to match come back the same
    assert Partial.from_json(partial.to_json()).adjustments == partial.adjustments
    assert [a.record_type for a in partial.adjustments] == ["Refunded", "Chargeback", "ChargebackReversed", "Refunded"]


def test_too_many_adjustment_rows_quarantine_the_file() -> None:
    from payments.reconciliation.model import UnreadableFile

    # Given a bound of 3 adjustment rows / When a file with 4 is reconciled / Then it is unreadable
    with pytest.raises(UnreadableFile, match="refund and chargeback rows"):
        reconcile(settlement_file(), ADJUSTMENTS, Bounds(max_adjustment_rows=3))


def test_mismatch_kinds_and_classes_are_str_enums_written_as_their_strings() -> None:
    import json

    from payments.reconciliation.model import Classification, Mismatch, MismatchKind

    # Given a report with mismatches of several kinds (the enums' members inside)
    built = reconcile(settlement_file(MODIFICATIONS[:3]), ADJUSTMENTS[1:])
    # When it is rendered as JSON / Then kinds and classes are their plain strings, unchanged
    rendered = json.loads(report.to_json(built))
    assert [(m["kind"], m["classification"]) for m in rendered["mismatches"]] == [
        ("MISSING_IN_LEDGER", "MANUAL"),
        ("MISSING_IN_SETTLEMENT", "MANUAL"),
    ]
    assert set(MismatchKind) == {
        "MISSING_IN_LEDGER",
        "MISSING_IN_SETTLEMENT",
        "AMOUNT_MISMATCH",
        "CURRENCY_MISMATCH",
        "DUPLICATE_IN_SETTLEMENT",
    }
    assert set(Classification) == {"AUTO_RESOLVABLE", "MANUAL", "UNCLASSIFIED"}
    # And a mismatch read back from its JSON (the distributed path) has its enum members again
    mismatch = Mismatch(
        MismatchKind.AMOUNT_MISMATCH, "psp_1", "po_1", "USD", 1, 2, Classification.MANUAL, "amount", line=3
    )
    again = Mismatch.from_json(json.loads(json.dumps(mismatch.to_json())))
    assert (
        again == mismatch
        and again.kind is MismatchKind.AMOUNT_MISMATCH
        and again.classification is Classification.MANUAL
    )
    assert again.mismatch_id == "AMOUNT_MISMATCH#psp_1#3"
