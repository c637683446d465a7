"""The committed OpenAPI description (docs/openapi.json) is the one the code generates."""

import json
from pathlib import Path

from payments.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_docs_openapi_json_is_up_to_date(capsys, monkeypatch):
    # Given the API as the code declares it
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # When its OpenAPI description is generated
    assert main(["openapi"]) == 0
    generated = json.loads(capsys.readouterr().out)
    # Then it is what docs/openapi.json holds (run `make openapi` after changing the API)
    assert generated == json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert set(generated["paths"]) == {"/v1/payments", "/v1/payments/{checkout_id}", "/v1/wallets/{seller_account}", "/v1/ledger/trial-balance",
                                      "/v1/refunds", "/v1/refunds/{refund_id}", "/v1/psp/notifications"}
    header = next(p for p in generated["paths"]["/v1/payments"]["post"]["parameters"] if p["in"] == "header")
    assert header["name"].lower() == "idempotency-key" and header["required"] is True  # header names are case-insensitive
