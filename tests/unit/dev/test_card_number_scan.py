"""The storage scan (tests/card_numbers.py) finds card numbers in any form, and only them."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from payments.kernel.config import settings
from tests.card_numbers import holds_card_number, scan_runtime

PAN = "4242424242424242"
FULL_WIDTH = "".join(chr(0xFF10 + int(c)) for c in "5555555555554444")


@pytest.mark.parametrize(
    "text",
    [
        PAN,
        "4242_4242_4242_4242",
        "4242.4242.4242.4242",
        "4242 / 4242 / 4242 / 4242",
        f"chk_{FULL_WIDTH}",
        "psp_4242424242424242",
        "card4242424242424242",  # glued to a word
        "visa4242424242424242exp1226",
    ],
)
def test_a_card_number_in_any_form_is_found(text: str) -> None:
    assert holds_card_number(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-02T04:39:13.123456+00:00",  # 16 digits joined by ':', '.', '+': the system's own timestamps
        "2026-12-02 04:39:13",
        "a3f1c0d2e4b5968778695a4b3c2d1e0f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",  # a sha256 fingerprint
        "123e4567-e89b-12d3-a456-426614174000",
        "payments-payment.functions.payment.api._accept_once#0f0e0d0c0b0a09080706050403020100",
        "cm2026r1764035000_po_00001_2",
    ],
)
def test_the_systems_own_timestamps_digests_and_ids_are_not_card_numbers(text: str) -> None:
    assert holds_card_number(text) is False


def test_the_scan_names_every_table_item_attribute_and_object_holding_one(ddb: Any) -> None:
    # Given a clean item, and card numbers in a nested attribute, a list, a map key and an S3 CSV cell
    table = settings().payments_table
    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": "PAYMENT#ok"}, "sk": {"S": "META"}, "updated_at": {"S": "2026-12-02T04:39:13.123456+00:00"}},
    )
    ddb.put_item(
        TableName=table,
        Item={
            "pk": {"S": "PAYMENT#bad"},
            "sk": {"S": "META"},
            "buyer": {"M": {"id": {"S": "4242_4242_4242_4242"}}},
            "notes": {"L": [{"S": "fine"}, {"S": f"card {FULL_WIDTH}"}]},
            "extra": {"M": {PAN: {"S": "x"}}},
            "amount_minor": {"N": "4242424242424242"},  # a money sum: not a card number
        },
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="scan-test")
    s3.put_object(
        Bucket="scan-test", Key="incoming/x.csv", Body=f"a,b\n19.99,42424242\n2026-12-02 04:39:13,{PAN}\n".encode()
    )
    s3.put_object(Bucket="scan-test", Key="reports/x.json", Body=b'{"rows": 1, "amounts": ["19.99", "5.00"]}')
    # When every table and bucket is scanned
    found = scan_runtime()
    # Then exactly the four places are named (items in scan order: their number is left out here),
    # and no digit of a card number is in the findings
    places = sorted(re.sub(r"item #\d+", "item", place) for place in found)
    assert places == sorted(
        [
            f"{table}: item: buyer.id",
            f"{table}: item: notes[1]",
            f"{table}: item: extra.(key)",
            "scan-test/incoming/x.csv: line 3 column 2",
        ]
    ), found
    assert not any(holds_card_number(place) for place in found)


def test_a_parquet_object_is_scanned_cell_by_cell_through_a_parquet_reader(ddb: Any, tmp_path: Any) -> None:
    # Given the ledger's copy as Parquet: a card number in one string cell, a money column holding a Luhn-valid
    # sum, and honest ids side by side (the file's bytes, read as text, are not what the scan judges)
    import duckdb

    path = tmp_path / "copy.parquet"
    with duckdb.connect(":memory:") as con:
        con.execute(
            "CREATE TABLE t AS SELECT * FROM (VALUES "  # noqa: S608 - the test's own constants
            "('payin:po_1', 4242424242424242, 'fine'), "
            f"('payin:po_2', 100, 'card {PAN}'), "
            "('payin:po_3', 5, '2026-12-02T04:39:13.123Z')) AS v(txn_id, amount_minor, note)"
        )
        con.execute(f"COPY t TO '{path}' (FORMAT PARQUET)")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lake-test")
    s3.put_object(Bucket="lake-test", Key="ledger/psp=adyen/day=2026-12-02/part-0.parquet", Body=path.read_bytes())
    # When every bucket is scanned
    found = scan_runtime()
    # Then exactly the cell with the card number is named, by row and column
    assert found == ["lake-test/ledger/psp=adyen/day=2026-12-02/part-0.parquet: row 2 column note"], found
