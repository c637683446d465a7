"""Bank statements: MT940, BAI2 and camt.053 samples parse, balance, and match the PSP's payout."""

from __future__ import annotations

import pytest

from functions.reconcile.handler import handler as reconcile_handler
from tests.reconciliation.conftest import FIXTURES, Aws, Context

SAMPLES = {
    "mt940": ("mt940_2026-11-30.sta", b":62F:C261130USD1227,44", b":62F:C261130USD1337,44"),
    "bai2": ("bai2_2026-11-30.bai", b"015,122744", b"015,133744"),
    "camt053": ("camt053_2026-11-30.xml", b'<Amt Ccy="USD">1227.44</Amt>', b'<Amt Ccy="USD">1337.44</Amt>'),
}


def run(cloud: Aws, key: str, body: bytes) -> dict:
    cloud.put(key, body)
    reconcile_handler(cloud.s3_event(key), Context())
    return cloud.report(key)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_a_statement_balances_and_its_psp_payout_is_matched(cloud: Aws, fmt: str) -> None:
    # Given the PSP's report announcing a USD payout of 239.94 was reconciled
    run(cloud, "incoming/adyen/2026-11-30.csv", (FIXTURES / "adyen_settlement_2026-11-30.csv").read_bytes())
    # When the bank statement crediting that payout arrives
    name, _, _ = SAMPLES[fmt]
    report = run(cloud, f"incoming/bank/{name}", (FIXTURES / name).read_bytes())
    # Then it is recognised, balanced, and its credit is matched to the payout
    assert report["format"] == fmt
    (statement,) = report["statements"]
    assert (statement["opening_balance"], statement["credits"], statement["debits"], statement["closing_balance"]) == (
        "1000.00",
        "239.94",
        "12.50",
        "1227.44",
    )
    assert statement["balanced"] is True and statement["problems"] == []
    assert report["rows"] == 2 and report["matched"] == 1
    payout, fee = statement["entries"]
    assert (
        payout["payout"] == {"source_key": "incoming/adyen/2026-11-30.csv", "currency": "USD"} and fee["payout"] is None
    )
    assert report["clean"] is True


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_a_tampered_closing_balance_is_reported_not_crashed(cloud: Aws, fmt: str) -> None:
    # Given a statement whose closing balance was changed by 110.00
    name, original, tampered = SAMPLES[fmt]
    body = (FIXTURES / name).read_bytes()
    assert original in body
    # When it is reconciled
    report = run(cloud, f"incoming/bank/{name}", body.replace(original, tampered))
    # Then the statement is reported as not balanced, with the arithmetic spelled out
    (statement,) = report["statements"]
    assert statement["balanced"] is False
    assert any("but the closing balance is 1337.44" in p for p in statement["problems"])
    assert report["clean"] is False
