"""Close the day on the local runtime: the PSP's file lands in S3, the S3 trigger reconciles it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.ops.reconcile import psp_settle
from payments_dev.local.runtime import wait_until
from tests.integration.conftest import checkout, wait_done

REPORT_TIMEOUT_S = 60.0


def s3_get(key: str) -> bytes | None:
    s3 = aws.client("s3")
    try:
        return s3.get_object(Bucket=settings().settlement_bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


def wait_report(key: str) -> dict[str, Any]:
    """The JSON report of an uploaded file, as written by the reconcile function (S3-triggered)."""
    found: dict[str, Any] = {}

    def written() -> bool:
        body = s3_get(f"reports/{key}.json")
        if body is not None:
            found["report"] = json.loads(body)
        return body is not None

    if not wait_until(written, REPORT_TIMEOUT_S, interval=0.2):
        raise AssertionError(f"no report for {key} within {REPORT_TIMEOUT_S}s")
    return found["report"]


def put(key: str, body: bytes) -> None:
    aws.client("s3").put_object(Bucket=settings().settlement_bucket, Key=key, Body=body)


def test_the_psps_file_reconciles_clean_and_a_tampered_copy_shows_each_difference(api):
    # Given a day with successful and declined checkouts
    paid = [checkout(orders=[("seller_recon", "11.00", "USD"), ("seller_recon2", "2.50", "EUR")]) for _ in range(2)]
    declined = checkout(token="tok_chargeDeclined", orders=[("seller_recon", "9.00", "USD")])
    for body in [*paid, declined]:
        assert api.pay(body, "recon-" + body["checkout_id"]).status == 202
    for body in [*paid, declined]:
        wait_done(api, body["checkout_id"])

    # When the PSP writes its settlement file for the day (the S3 trigger reconciles it)
    key = psp_settle(clock.now().date().isoformat(), None)
    report = wait_report(key)

    # Then every settled row matches the ledger: zero mismatches, nothing rejected
    assert report["source_key"] == key and report["format"] == "adyen_settlement_details"
    assert report["mismatches"] == [] and report["rejected_rows"] == [], report["mismatches"][:3]
    assert report["clean"] is True and report["matched"] >= 4

    # When a tampered copy is uploaded: one amount changed, one row dropped, one row duplicated
    lines = s3_get(key).decode().splitlines()
    header, rows = lines[0], [next(csv.reader([line])) for line in lines[1:]]
    ours = {o["payment_order_id"] for b in paid for o in b["payment_orders"]}
    settled = [r for r in rows if r[7] == "Settled" and r[3] in ours]
    changed, dropped, doubled = settled[0], settled[1], settled[2]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(header + "\n")
    for row in rows:
        if row is dropped:
            continue
        if row is changed:
            row = list(row)
            row[11] = "999.99"
        writer.writerow(row)
        if row is doubled:
            writer.writerow(row)
    tampered_key = key.replace(".csv", "-tampered.csv")
    put(tampered_key, out.getvalue().encode())
    tampered = wait_report(tampered_key)

    # Then exactly those three differences are reported, each classified with its rule
    found = {(m["kind"], m["psp_reference"]) for m in tampered["mismatches"]}
    assert found == {
        ("AMOUNT_MISMATCH", changed[2]),
        ("MISSING_IN_SETTLEMENT", dropped[2]),
        ("DUPLICATE_IN_SETTLEMENT", doubled[2]),
    }
    assert all(
        m["classification"] in ("AUTO_RESOLVABLE", "MANUAL", "UNCLASSIFIED") and m["rule"]
        for m in tampered["mismatches"]
    )

    # When the same tampered file is delivered again (its old report removed first, to see the new one)
    aws.client("s3").delete_object(Bucket=settings().settlement_bucket, Key=f"reports/{tampered_key}.json")
    put(tampered_key, out.getvalue().encode())
    again = wait_report(tampered_key)
    # Then the report is the same
    assert again["mismatches"] == tampered["mismatches"] and again["sha256"] == tampered["sha256"]


def test_a_file_that_cannot_be_read_is_quarantined_with_a_reason(api):
    # Given garbage uploaded as a settlement file
    key = "incoming/simulated-psp/garbage.csv"
    put(key, b"\x00\x01\x02 not a settlement file \xff\xfe")
    # When the trigger runs, then the file is moved to quarantine/ with a report saying why
    report = wait_report(key)
    assert report["quarantined"]["reason"], report
    assert wait_until(lambda: s3_get(key) is None, REPORT_TIMEOUT_S, interval=0.2)
    assert s3_get("quarantine/simulated-psp/garbage.csv") is not None
