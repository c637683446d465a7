"""End to end through the Lambda handlers: PSP nightly file -> S3 incoming/ -> reconcile -> reports + table."""

from __future__ import annotations

import csv
import html
import io
import json

import pytest

from functions.psp.handler import handler as settle_handler
from functions.reconcile.handler import handler as reconcile_handler
from payments.accounts.wallet import SellerBalance
from payments.reconciliation import adyen
from payments.reconciliation.model import Bounds
from payments.reconciliation.service import Reconciler, three_way
from payments.reconciliation.store import list_mismatches, resolve_mismatch
from tests.reconciliation.conftest import DAY, Aws, Context

KEY = f"incoming/simulated-psp/{DAY}.csv"
ORDERS = [
    # psp_reference, order, seller, amount_minor, currency, charged_at
    ("psp_00000000000000a1", "po_a1", "seller_books", 1999, "USD", f"{DAY}T08:12:44.120Z"),
    ("psp_00000000000000a2", "po_a2", "seller_toys", 500, "USD", f"{DAY}T09:00:01.000Z"),
    ("psp_00000000000000a3", "po_a3", "seller_books", 12900, "USD", f"{DAY}T10:30:00.000Z"),
    ("psp_00000000000000a4", "po_a4", "seller_toys", 4550, "EUR", f"{DAY}T12:05:19.870Z"),
    ("psp_00000000000000a5", "po_a5", "seller_games", 3000, "JPY", f"{DAY}T15:30:00.000Z"),
    ("psp_00000000000000a6", "po_a6", "seller_games", 8999, "USD", f"{DAY}T18:51:37.402Z"),
    ("psp_00000000000000a7", "po_a7", "seller_books", 2500, "USD", f"{DAY}T23:50:00.000Z"),
]


def seed_day(cloud: Aws) -> None:
    for order in ORDERS:
        cloud.book(*order)


def settle(cloud: Aws) -> bytes:
    result = settle_handler({"date": DAY}, Context())
    assert result["key"] == KEY
    return cloud.get(KEY)


def reconcile(cloud: Aws, key: str) -> dict:
    reconcile_handler(cloud.s3_event(key), Context())
    return cloud.report(key)


def test_a_clean_day_reconciles_with_zero_mismatches(cloud: Aws) -> None:
    # Given a day of charges at the PSP, booked in the ledger and credited to the wallets
    seed_day(cloud)
    # When the PSP's nightly job writes its settlement file and reconciliation runs on it
    settle(cloud)
    report = reconcile(cloud, KEY)
    # Then every Settled row matched, the payouts are recorded, nothing is rejected
    assert report["source_key"] == KEY
    assert report["format"] == "adyen_settlement_details"
    assert report["rows"] == len(ORDERS) + 3  # one MerchantPayout row per currency
    assert report["matched"] == len(ORDERS)
    assert report["mismatches"] == [] and report["rejected_rows"] == []
    assert report["clean"] is True
    assert report["summary"]["window_day"] == DAY
    assert report["summary"]["row_outcomes"] == {"matched": 7, "mismatched": 0, "rejected": 0, "recorded": 3}
    usd = report["summary"]["totals"]["USD"]
    assert (
        usd["gross_credit"] == "268.98"
        and usd["net_credit"] == usd["payout"]
        and usd["net_credit"] != usd["gross_credit"]
    )
    # And the three-way check found wallets equal to their ledger projections
    assert report["three_way"] == {"sellers_checked": 3, "sellers_truncated": False, "differences": []}
    # And the HTML and CSV renderings are beside it
    page = cloud.get(f"reports/{KEY}.html").decode()
    assert "<strong>Clean</strong>" in page and "<strong>incoming/simulated-psp/2026-11-30.csv</strong>" in page
    assert cloud.get(f"reports/{KEY}.mismatches.csv").decode().splitlines() == [
        "mismatch_id,kind,psp_reference,payment_order_id,ledger_amount,settlement_amount,currency,classification,rule,line"
    ]


def tamper(original: bytes) -> tuple[bytes, dict[str, int]]:
    """Change an amount, drop two rows, add an unknown row, duplicate a row, change a currency,
    add a malformed row, a formula row and a row of an unknown record type."""
    lines = original.decode().splitlines()
    header, rows = lines[0], [next(csv.reader([line])) for line in lines[1:]]
    by_ref = {row[2]: row for row in rows}
    by_ref["psp_00000000000000a1"][11] = "19.90"  # amount
    by_ref["psp_00000000000000a4"][9] = "USD"  # currency (gross)
    by_ref["psp_00000000000000a4"][13] = "USD"
    kept = [
        r for r in rows if r[2] not in ("psp_00000000000000a3", "psp_00000000000000a7")
    ]  # missing (a7: late charge)
    unknown = list(by_ref["psp_00000000000000a2"])
    unknown[2], unknown[3] = "psp_00000000000000ff", "po_unknown"
    oddtype = list(by_ref["psp_00000000000000a2"])
    oddtype[2], oddtype[7] = "psp_00000000000000ee", "Frobnicated"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(header + "\n")
    writer.writerows(kept[:2])
    writer.writerow(by_ref["psp_00000000000000a2"])  # duplicate of a2
    writer.writerow(unknown)
    lines_at = {"duplicate": 4}
    out.write(
        "PaymentsMarketplace,PaymentsMarketplaceECOM,psp_bad,po_bad,visa,2026-11-30 10:00:00,UTC,Settled,,USD,,12.5.0,1,USD,,12.00,0.10,0.01,0.01,0.01,visa,,2526\n"
    )
    lines_at["malformed"] = 6
    formula = list(by_ref["psp_00000000000000a5"])
    formula[3] = '=HYPERLINK("http://evil.example","x")'
    formula[2] = "psp_00000000000000dd"
    writer.writerow(formula)
    lines_at["formula"] = 7
    writer.writerow(oddtype)
    lines_at["oddtype"] = 8
    writer.writerows(kept[2:])
    return out.getvalue().encode(), lines_at


def test_a_tampered_file_yields_exactly_its_mismatches_and_rejected_rows(cloud: Aws) -> None:
    # Given a clean day, and a tampered copy of the PSP's file uploaded under another name
    seed_day(cloud)
    tampered, lines_at = tamper(settle(cloud))
    key = "incoming/adyen/tampered settlement.csv"  # a space: S3 events carry it URL-encoded
    cloud.put(key, tampered)
    # And one seller's wallet drifted from the ledger
    cloud.credit_wallet("seller_toys", "po_drift", 100, "USD")
    # When it is reconciled
    report = reconcile(cloud, key)
    # Then each tampering is exactly one mismatch, classified with its rule
    found = {
        (m["kind"], m["psp_reference"]): (m["classification"], m["rule"].split(":")[0]) for m in report["mismatches"]
    }
    assert found == {
        ("AMOUNT_MISMATCH", "psp_00000000000000a1"): ("MANUAL", "amount"),
        ("CURRENCY_MISMATCH", "psp_00000000000000a4"): ("MANUAL", "currency"),
        ("MISSING_IN_SETTLEMENT", "psp_00000000000000a3"): ("MANUAL", "missing"),
        ("MISSING_IN_SETTLEMENT", "psp_00000000000000a7"): ("AUTO_RESOLVABLE", "timing"),
        ("MISSING_IN_LEDGER", "psp_00000000000000ff"): ("MANUAL", "unknown"),
        ("DUPLICATE_IN_SETTLEMENT", "psp_00000000000000a2"): ("AUTO_RESOLVABLE", "duplicate"),
        ("MISSING_IN_LEDGER", "psp_00000000000000ee"): ("UNCLASSIFIED", "record type"),
    }
    amount = next(m for m in report["mismatches"] if m["kind"] == "AMOUNT_MISMATCH")
    assert (amount["ledger_amount"], amount["settlement_amount"], amount["currency"], amount["payment_order_id"]) == (
        "19.99",
        "19.90",
        "USD",
        "po_a1",
    )
    assert (
        next(m for m in report["mismatches"] if m["kind"] == "DUPLICATE_IN_SETTLEMENT")["line"] == lines_at["duplicate"]
    )
    # And the malformed and the formula rows are rejected with their line numbers
    assert [r["line"] for r in report["rejected_rows"]] == [lines_at["malformed"], lines_at["formula"]]
    assert "Gross Credit" in report["rejected_rows"][0]["reason"] and "formula" in report["rejected_rows"][1]["reason"]
    # And every row has exactly one outcome
    outcomes = report["summary"]["row_outcomes"]
    assert sum(outcomes.values()) == report["rows"]
    # And the wallet drift shows in the three-way check (the matched 5.00 moved from pending to available)
    assert report["three_way"]["differences"] == [
        {
            "seller_account": "seller_toys",
            "currency": "USD",
            "part": "pending",
            "wallet_amount": "1.00",
            "ledger_amount": "0.00",
            "difference": "1.00",
        }
    ]
    assert report["clean"] is False
    # And the CSV neutralises nothing it should not, the HTML escapes everything
    assert "<script" not in cloud.get(f"reports/{key}.html").decode()


def test_reuploading_gives_the_same_report_and_no_duplicate_records(cloud: Aws) -> None:
    # Given a tampered file reconciled once, with one mismatch resolved by an operator
    seed_day(cloud)
    tampered, _ = tamper(settle(cloud))
    key = "incoming/adyen/tampered.csv"
    cloud.put(key, tampered)
    first = reconcile(cloud, key)
    first_bytes = cloud.get(f"reports/{key}.json")
    items_before = len(cloud.items("reconciliation_table"))
    target = first["mismatches"][0]["mismatch_id"]
    assert resolve_mismatch(key, target, "booked a correction", "ops@example.com") is True
    # When the same file is put again
    cloud.put(key, tampered)
    second = reconcile(cloud, key)
    # Then the report is byte for byte the same and no record was added or reopened
    assert cloud.get(f"reports/{key}.json") == first_bytes and second == first
    assert len(cloud.items("reconciliation_table")) == items_before
    resolved = [m for m in list_mismatches(key) if m["status"] == "RESOLVED"]
    assert [m["mismatch_id"] for m in resolved] == [target]
    assert len(list_mismatches(key, status="OPEN")) == len(first["mismatches"]) - 1
    # And a resolution is recorded once: resolving again changes nothing
    assert resolve_mismatch(key, target, "something else", "someone") is False
    assert resolved[0]["resolution"] == "booked a correction"


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("empty.csv", b"", "empty"),
        ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
        (
            "latin1.csv",
            "Company Account,Psp Reference,Merchant Reference,Type\nM\u00fcller,x,y,Settled\n".encode("latin-1"),
            "UTF-8",
        ),
        ("random.txt", b"hello world\nthis is not a settlement file\n", "unrecognised"),
        (
            "truncated.xml",
            (
                b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt><Id>1'
            ),
            "XML",
        ),
        (
            "bomb.xml",
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><Document>camt.053 &lol;</Document>',
            "document type",
        ),
    ],
)
def test_unreadable_files_are_quarantined_with_a_reason(cloud: Aws, name: str, body: bytes, reason: str) -> None:
    # Given a file that is not a readable settlement file
    key = f"incoming/adyen/{name}"
    cloud.put(key, body)
    # When it is reconciled (the handler does not fail)
    result = reconcile_handler(cloud.s3_event(key), Context())
    # Then it was moved to quarantine/ with a reason, and a report says so
    assert result["outcomes"][0]["status"] == "QUARANTINED"
    assert not cloud.exists(key)
    assert cloud.get(f"quarantine/adyen/{name}") == body
    why = json.loads(cloud.get(f"quarantine/adyen/{name}.reason.json"))["reason"]
    report = cloud.report(key)
    assert report["quarantined"]["reason"] == why and reason in why
    assert report["quarantined"]["quarantine_key"] == f"quarantine/adyen/{name}"
    # And a page for people says so at its top, the reason escaped
    page = cloud.get(f"reports/{key}.html").decode()
    assert f"<strong>File quarantined: {html.escape(why)}</strong>" in page


def test_oversized_and_truncated_files_are_quarantined(cloud: Aws) -> None:
    # Given a file larger than the bound, and a CSV cut off in the middle of its last row
    seed_day(cloud)
    original = settle(cloud)
    cloud.put("incoming/adyen/big.csv", original)
    cloud.put("incoming/adyen/cut.csv", original[:-25])
    # When they are reconciled with a 1 KiB file bound, and with the default bounds
    big = Reconciler(bounds=Bounds(max_file_bytes=1024)).reconcile_object("incoming/adyen/big.csv")
    cut = Reconciler().reconcile_object("incoming/adyen/cut.csv")
    # Then both are quarantined, each with its reason
    assert big.status == "QUARANTINED" and "oversized" in big.detail
    assert cut.status == "QUARANTINED" and "truncated" in cut.detail
    assert cloud.report("incoming/adyen/cut.csv")["quarantined"]["reason"].startswith("truncated")


def test_too_many_malformed_rows_quarantine_the_file(cloud: Aws) -> None:
    # Given a file with the Adyen header whose rows are all garbage
    header = ",".join(adyen.COLUMNS).encode()
    cloud.put("incoming/adyen/garbage-rows.csv", header + b"\n" + b"a,b\n" * 20)
    # And a file whose header lacks the report's required columns
    cloud.put("incoming/adyen/bad-header.csv", b"Psp Reference,Merchant Reference,Type\na,b,Settled\n")
    # When they are reconciled with a bound of 5 rejected rows
    reconciler = Reconciler(bounds=Bounds(max_rejected_rows=5))
    garbage = reconciler.reconcile_object("incoming/adyen/garbage-rows.csv")
    bad_header = reconciler.reconcile_object("incoming/adyen/bad-header.csv")
    # Then both are quarantined, each with its reason
    assert garbage.status == "QUARANTINED" and "more than 5 malformed rows" in garbage.detail
    assert bad_header.status == "QUARANTINED" and "required columns" in bad_header.detail


class FixedBalances:
    """A BalanceSource over fixed figures, recording which accounts were asked for."""

    def __init__(self, wallets: dict[tuple[str, str], int], ledger: dict[tuple[str, str], int]):
        self.wallets, self.ledger = wallets, ledger
        self.asked: list[set[tuple[str, str]]] = []

    def wallet_balances(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        self.asked.append(set(accounts))
        return {a: SellerBalance(available=self.wallets.get(a, 0)) for a in accounts}

    def ledger_projection(self, accounts: set[tuple[str, str]]) -> dict[tuple[str, str], SellerBalance]:
        return {a: SellerBalance(available=self.ledger.get(a, 0)) for a in accounts}


def test_the_three_way_check_compares_exactly_the_seller_currency_accounts_a_file_touched() -> None:
    # Given a seller with two currencies, of which only EUR drifted, and a drift in an account the file did not touch
    balances = FixedBalances(
        wallets={("s1", "USD"): 500, ("s1", "EUR"): 1001, ("s2", "JPY"): 7, ("s3", "USD"): 99},
        ledger={("s1", "USD"): 500, ("s1", "EUR"): 1000, ("s2", "JPY"): 7, ("s3", "USD"): 1},
    )
    # When the file touched s1 in USD and EUR, and s2 in JPY
    checked = three_way({("s1", "USD"), ("s1", "EUR"), ("s2", "JPY")}, False, balances)
    # Then two sellers were checked, only those accounts were read, and the EUR drift is the one difference
    assert balances.asked == [{("s1", "USD"), ("s1", "EUR"), ("s2", "JPY")}]
    assert checked == {
        "sellers_checked": 2,
        "sellers_truncated": False,
        "differences": [
            {
                "seller_account": "s1",
                "currency": "EUR",
                "part": "available",
                "wallet_amount": "10.01",
                "ledger_amount": "10.00",
                "difference": "0.01",
            }
        ],
    }
    # and a file that touched no seller reads nothing
    assert three_way(set(), False, balances) == {"sellers_checked": 0, "sellers_truncated": False, "differences": []}
    assert len(balances.asked) == 1
