"""The committed OpenAPI description (docs/openapi.json) is the one the code generates."""

import json
from pathlib import Path

from payments.kernel.ids import IDENTIFIER_PATTERN
from payments.ops.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_docs_openapi_json_is_up_to_date(capsys, monkeypatch):
    # Given the API as the code declares it
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # When its OpenAPI description is generated
    assert main(["openapi"]) == 0
    generated = json.loads(capsys.readouterr().out)
    # Then it is what docs/openapi.json holds (run `make openapi` after changing the API)
    assert generated == json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert set(generated["paths"]) == {
        "/v1/payments",
        "/v1/payments/{checkout_id}",
        "/v1/wallets/{seller_account}",
        "/v1/ledger/trial-balance",
        "/v1/refunds",
        "/v1/refunds/{refund_id}",
        "/v1/psp/notifications",
        "/v1/operator/attention",
        "/v1/operator/attention/{id}",
        "/v1/operator/attention/{id}/resolve",
        "/v1/operator/mismatches",
        "/v1/operator/mismatches/{id}",
        "/v1/operator/mismatches/{id}/resolve",
        "/v1/sellers/{seller_account}/payout-account",
        "/v1/payouts",
        "/v1/payouts/{payout_id}",
    }
    header = next(p for p in generated["paths"]["/v1/payments"]["post"]["parameters"] if p["in"] == "header")
    assert (
        header["name"].lower() == "idempotency-key" and header["required"] is True
    )  # header names are case-insensitive


def _document() -> dict:
    return json.loads((ROOT / "docs" / "openapi.json").read_text())


def test_every_error_the_api_answers_is_documented_as_a_problem():
    # Given the committed OpenAPI document
    doc = _document()
    expected = {
        ("post", "/v1/payments"): {"202", "400", "409", "413", "415", "422", "500", "503"},
        ("get", "/v1/payments/{checkout_id}"): {"200", "404", "422", "500", "503"},
        ("get", "/v1/wallets/{seller_account}"): {"200", "422", "500", "503"},
        ("get", "/v1/ledger/trial-balance"): {"200", "422", "500", "503"},
        ("post", "/v1/refunds"): {"202", "400", "404", "409", "413", "415", "422", "500", "503"},
        ("get", "/v1/refunds/{refund_id}"): {"200", "404", "422", "500", "503"},
        ("post", "/v1/psp/notifications"): {"200", "400", "401", "413", "415", "500", "503"},
        ("get", "/v1/operator/attention"): {"200", "422", "500", "503"},
        ("get", "/v1/operator/attention/{id}"): {"200", "404", "422", "500", "503"},
        ("post", "/v1/operator/attention/{id}/resolve"): {"200", "400", "403", "404", "409", "422", "500", "503"},
        ("get", "/v1/operator/mismatches"): {"200", "422", "500", "503"},
        ("get", "/v1/operator/mismatches/{id}"): {"200", "404", "422", "500", "503"},
        ("post", "/v1/operator/mismatches/{id}/resolve"): {"200", "400", "403", "404", "409", "422", "500", "503"},
        ("put", "/v1/sellers/{seller_account}/payout-account"): {
            "200",
            "400",
            "409",
            "413",
            "415",
            "422",
            "500",
            "503",
        },
        ("get", "/v1/sellers/{seller_account}/payout-account"): {"200", "404", "422", "500", "503"},
        ("post", "/v1/payouts"): {"202", "400", "409", "413", "415", "422", "500", "503"},
        ("get", "/v1/payouts/{payout_id}"): {"200", "404", "422", "500", "503"},
    }
    for (method, path), statuses in expected.items():
        responses = doc["paths"][path][method]["responses"]
        # Then each operation lists exactly the statuses it can answer
        assert set(responses) == statuses, (method, path)
        for status, response in responses.items():
            # and every error is application/problem+json with the Problem schema, nothing else
            if int(status) >= 400:
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
            elif path == "/v1/psp/notifications":
                # the webhook answers Adyen's literal text
                assert response["content"] == {"text/plain": {"schema": {"type": "string", "enum": ["[accepted]"]}}}
            else:
                assert list(response["content"]) == ["application/json"]
    # and no operation is left undocumented by the table above
    assert {(m, p) for p, ops in doc["paths"].items() for m in ops} == set(expected)
    # and Powertools' own validation-error schemas, which the API never answers, are gone
    assert not {"HTTPValidationError", "ValidationError"} & set(doc["components"]["schemas"])


def test_amounts_currencies_and_identifiers_are_described_exactly():
    import re

    from payments.kernel.iso4217 import MINOR_UNITS

    schemas = _document()["components"]["schemas"]
    order = schemas["PaymentOrderIn"]
    # the currency is an enum of the active ISO 4217 list
    assert order["properties"]["currency"]["enum"] == sorted(MINOR_UNITS)
    # one branch per exponent pairs currencies with the amounts they allow
    branches = {b["properties"]["amount"]["pattern"]: b["properties"]["currency"]["enum"] for b in order["oneOf"]}
    assert sorted(c for codes in branches.values() for c in codes) == sorted(MINOR_UNITS)
    for pattern, codes in branches.items():
        digits = MINOR_UNITS[codes[0]]
        assert all(MINOR_UNITS[c] == digits for c in codes)
        assert re.fullmatch(pattern, "1" + ("." + "9" * digits if digits else ""))
        assert not re.fullmatch(pattern, "1." + "9" * (digits + 1))
        assert not re.fullmatch(pattern, "0") and not re.fullmatch(pattern, "-1") and not re.fullmatch(pattern, "1e3")
    # identifiers: the pattern, the card-number rule and the uniqueness across the system
    # a refund's currency and amount follow the same rule, one branch per exponent
    refund = schemas["RefundRequest"]
    assert refund["properties"]["currency"]["enum"] == sorted(MINOR_UNITS)
    assert {
        b["properties"]["amount"]["pattern"]: b["properties"]["currency"]["enum"] for b in refund["oneOf"]
    } == branches
    assert (
        "refund" not in refund["required"] and "amount" not in refund["required"]
    )  # omitted: everything still refundable
    for field in ("refund_id", "payment_order_id"):
        prop = refund["properties"][field]
        assert (
            prop["pattern"] == IDENTIFIER_PATTERN
            and prop["maxLength"] == 64
            and "card number" in prop["description"].lower()
        )
    assert (
        "unique" in refund["properties"]["refund_id"]["description"]
        and "409" in refund["properties"]["refund_id"]["description"]
    )
    for path, name in (("/v1/refunds/{refund_id}", "refund_id"), ("/v1/payments/{checkout_id}", "checkout_id")):
        parameter = next(p for p in _document()["paths"][path]["get"]["parameters"] if p["in"] == "path")
        assert parameter["name"] == name and parameter["schema"]["pattern"] == IDENTIFIER_PATTERN
    refund_key = next(p for p in _document()["paths"]["/v1/refunds"]["post"]["parameters"] if p["in"] == "header")
    assert (
        refund_key["name"].lower() == "idempotency-key"
        and refund_key["required"] is True
        and "card number" in refund_key["description"].lower()
    )
    for schema, field in (("PaymentRequest", "checkout_id"), ("PaymentOrderIn", "payment_order_id")):
        prop = schemas[schema]["properties"][field]
        assert prop["pattern"] == IDENTIFIER_PATTERN
        description = prop["description"].lower()
        assert "card number" in description and "unique" in description and "409" in description
    assert "\\x00-\\x1f" in schemas["BuyerInfo"]["properties"]["email"]["anyOf"][0]["pattern"]


def test_the_attention_reason_of_orders_and_refunds_is_documented():
    schemas = _document()["components"]["schemas"]
    # an order (in GET /v1/payments/{checkout_id}) and a refund carry their open flag, or null
    for view in ("PaymentOrderOut", "RefundOut"):
        assert schemas[view]["properties"]["attention"] == {
            "anyOf": [{"$ref": "#/components/schemas/AttentionOut"}, {"type": "null"}]
        }
    attention = schemas["AttentionOut"]
    assert set(attention["properties"]) == {"kind", "reason", "since"} and attention["required"] == ["kind", "reason"]
    assert schemas["AttentionKind"]["enum"] == ["REDRIVE", "PERSON"]
