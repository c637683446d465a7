"""Our own verifier of Adyen's notification HMAC (payments/notifications/signature.py),
checked against the worked examples of Adyen's libraries (FACTS.md section 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payments.notifications import signature

LIB_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
MIXED_KEY = "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174"
SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs" / "adyen" / "samples" / "py-webhook-item-authorisation-hmac-mixed.json"


def lib_item() -> dict:
    """Adyen python library test UtilTest.test_notification_request_item_hmac, as an item."""
    return {
        "pspReference": "7914073381342284",
        "merchantAccountCode": "TestMerchant",
        "merchantReference": "TestPayment-1407325143704",
        "amount": {"value": 1130, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "success": "true",
        "additionalData": {"hmacSignature": "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},
    }


def test_signing_string_leaves_missing_fields_empty() -> None:
    # Given the library's item without originalReference / When the signing string is built
    # Then the missing field is an empty segment (hence "::")
    assert signature.signing_string(lib_item()) == "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true"


def test_worked_example_of_the_python_library() -> None:
    # Given the worked example's key / Then our signature is Adyen's and the item verifies
    assert signature.sign(lib_item(), LIB_KEY) == "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="
    assert signature.is_valid(lib_item(), LIB_KEY) is True


def test_colons_and_backslashes_are_not_escaped() -> None:
    # Given a merchantReference with \ : / (own fixture reproducing the library's mixed sample)
    item = {
        "pspReference": "ZVWN7D3WSMK2WN82",
        "merchantAccountCode": "AntoniStroinski",
        "merchantReference": "\\:/\\/slashes are fun",
        "amount": {"currency": "EUR", "value": 1000},
        "eventCode": "AUTHORISATION",
        "success": "true",
        "additionalData": {"hmacSignature": "CZErGCNQaSsxbaQfZaJlakqo7KPP+mIa8a+wx3yNs9A=", "retry.attempt1.rawResponse": "AUTHORISED"},
    }
    # Then the unescaped signing string verifies
    assert signature.is_valid(item, MIXED_KEY) is True


@pytest.mark.skipif(not SAMPLE.exists(), reason="../shared/specs/adyen/samples is absent in this checkout")
def test_the_real_sample_verifies() -> None:
    item = json.loads(SAMPLE.read_text())
    assert signature.is_valid(item, MIXED_KEY) is True


@pytest.mark.parametrize(
    "tamper",
    [
        lambda i: i["amount"].update(value=1131),
        lambda i: i.update(success="false"),
        lambda i: i.update(success=True),  # a boolean is not the literal "true" Adyen signed... but renders the same text
        lambda i: i.update(eventCode="REFUND"),
        lambda i: i.update(merchantReference="TestPayment-1407325143705"),
        lambda i: i["additionalData"].pop("hmacSignature"),
        lambda i: i.pop("additionalData"),
        lambda i: i["additionalData"].update(hmacSignature=""),
        lambda i: i["additionalData"].update(hmacSignature="not base64 at all é"),
    ],
)
def test_a_changed_or_missing_signature_is_refused(tamper) -> None:
    # Given the worked example / When one signed field or the signature changes
    item = json.loads(json.dumps(lib_item()))
    tamper(item)
    valid = signature.is_valid(item, LIB_KEY)
    # Then it is refused (False, never None or an exception) -- except a boolean success,
    # whose text we render as Adyen's literal, so the signature still holds
    assert valid is (item.get("success") is True)


def test_wrong_key_is_refused_and_rotation_accepts_either() -> None:
    assert signature.is_valid(lib_item(), MIXED_KEY) is False
    assert signature.is_valid(lib_item(), [MIXED_KEY, LIB_KEY]) is True


def test_a_key_that_is_not_hex_is_a_configuration_error() -> None:
    with pytest.raises(signature.BadKey):
        signature.sign(lib_item(), "not-hex")


def test_signed_sets_a_verifiable_signature() -> None:
    item = {k: v for k, v in lib_item().items() if k != "additionalData"}
    assert signature.signed(item, LIB_KEY)["additionalData"]["hmacSignature"] == "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="
