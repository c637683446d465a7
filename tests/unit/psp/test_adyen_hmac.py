"""Adyen standard-notification HMAC (payments/psp/hmac.py), against Adyen's worked examples."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest
from Adyen import util as adyen_util

from payments.psp import hmac as adyen_hmac

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "adyen"

# Adyen's Python library test UtilTest.test_notification_request_item_hmac (FACTS.md §3)
LIB_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
LIB_ITEM = {
    "pspReference": "7914073381342284",
    "merchantAccountCode": "TestMerchant",
    "merchantReference": "TestPayment-1407325143704",
    "amount": {"value": 1130, "currency": "EUR"},
    "eventCode": "AUTHORISATION",
    "success": "true",
    "eventDate": "2019-05-06T17:15:34.121+02:00",
    "merchantAccount": "TestMerchant",
    "paymentMethod": "visa",
    "reason": "087330:0110:10/2020",
}
LIB_SIGNATURE = "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="
MIXED_KEY = "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174"


def test_the_signing_string_is_adyens_with_an_empty_original_reference() -> None:
    # Given Adyen's worked example item (no originalReference)
    # When its signing string is built
    text = adyen_hmac.signing_string(LIB_ITEM)
    # Then it is exactly Adyen's, with '::' for the missing field
    assert text == "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true"


def test_adyens_worked_example_signs_and_verifies() -> None:
    # Given Adyen's worked example and its key
    # When it is signed, and verified with the signature Adyen published
    # Then the signature is Adyen's and it verifies
    assert adyen_hmac.sign(LIB_ITEM, LIB_KEY) == LIB_SIGNATURE
    item = {**LIB_ITEM, "additionalData": {"hmacSignature": LIB_SIGNATURE}}
    assert adyen_hmac.is_valid(item, LIB_KEY) is True
    assert (
        adyen_hmac.all_valid({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}, LIB_KEY)
        is True
    )


def test_the_mixed_sample_with_backslashes_and_colons_verifies_unescaped() -> None:
    # Given Adyen's library sample whose merchantReference holds '\', ':' and '/' (read in place)
    sample = SHARED / "samples" / "py-webhook-item-authorisation-hmac-mixed.json"
    if not sample.is_file():
        pytest.skip(f"Adyen samples not present at {sample}")
    item = json.loads(sample.read_text())
    # When it is verified with the sample's key
    # Then it is valid; the signing string is unescaped, and the escaped variant would not match
    assert (
        adyen_hmac.signing_string(item)
        == "ZVWN7D3WSMK2WN82::AntoniStroinski:\\:/\\/slashes are fun:1000:EUR:AUTHORISATION:true"
    )
    assert adyen_hmac.is_valid(item, MIXED_KEY) is True
    assert item["additionalData"]["hmacSignature"] == "CZErGCNQaSsxbaQfZaJlakqo7KPP+mIa8a+wx3yNs9A="
    escaped = {**item, "merchantReference": item["merchantReference"].replace("\\", "\\\\").replace(":", "\\:")}
    assert adyen_hmac.sign(escaped, MIXED_KEY) != item["additionalData"]["hmacSignature"]


@pytest.mark.parametrize(
    "change",
    [
        {"amount": {"value": 1131, "currency": "EUR"}},
        {"success": "false"},
        {"merchantReference": "TestPayment-1407325143705"},
        {"eventCode": "REFUND"},
        {"originalReference": "8835511210681465"},
    ],
)
def test_any_signed_field_changed_fails_verification(change: dict) -> None:
    # Given Adyen's signed example with one signed field altered
    item = {**LIB_ITEM, **change, "additionalData": {"hmacSignature": LIB_SIGNATURE}}
    # When it is verified
    # Then it is invalid
    assert adyen_hmac.is_valid(item, LIB_KEY) is False


@pytest.mark.parametrize(
    "additional",
    [
        None,
        {},
        {"hmacSignature": ""},
        {"hmacSignature": None},
        "not a map",
        {"hmacSignature": "not base64 at all é"},
        {"hmacSignature": "\udfff"},
    ],
)
def test_a_missing_or_empty_signature_is_false_never_none_or_an_exception(additional: object) -> None:
    # Given an item without a usable signature (the library returns None or raises KeyError here)
    item = dict(LIB_ITEM)
    if additional is not None:
        item["additionalData"] = additional
    # When it is verified
    # Then the answer is False
    assert adyen_hmac.is_valid(item, LIB_KEY) is False


@pytest.mark.parametrize(
    "forged",
    [
        {"amount": ["EUR", 1130]},
        {"amount": "1130 EUR"},
        {"amount": 1130},
        {"pspReference": "\ud800"},
        {"merchantReference": {"nested": [1]}},
    ],
)
def test_a_forged_item_holding_anything_is_false_never_an_exception(forged: dict) -> None:
    # Given an item whose signed fields hold what Adyen never sends (not a map, a lone surrogate, an object)
    item = {**LIB_ITEM, **forged, "additionalData": {"hmacSignature": LIB_SIGNATURE}}
    # When it is verified (the webhook verifies before anything else)
    # Then the answer is False, not an exception the webhook would turn into a 5xx
    assert adyen_hmac.is_valid(item, LIB_KEY) is False


def test_a_boolean_success_is_signed_as_adyens_lowercase_text() -> None:
    # Given the example with success parsed into a Python bool
    item = {**LIB_ITEM, "success": True}
    # When it is signed
    # Then the signature is the one over "true" (str(True) would be "True")
    assert adyen_hmac.sign(item, LIB_KEY) == LIB_SIGNATURE


def test_the_previous_key_is_accepted_during_a_rotation() -> None:
    # Given an item signed with the old key
    new_key = "AA" * 32
    item = {**LIB_ITEM, "additionalData": {"hmacSignature": LIB_SIGNATURE}}
    # When verified with the new key alone, and with the new and the previous key
    # Then only the pair accepts it
    assert adyen_hmac.is_valid(item, new_key) is False
    assert adyen_hmac.is_valid(item, [new_key, LIB_KEY]) is True


def test_every_item_of_a_batch_must_be_signed() -> None:
    # Given a notification with a good item and a forged one (the library checks only the first)
    good = {**LIB_ITEM, "additionalData": {"hmacSignature": LIB_SIGNATURE}}
    forged = {**LIB_ITEM, "pspReference": "FORGED0000000000", "additionalData": {"hmacSignature": LIB_SIGNATURE}}
    body = {
        "live": "false",
        "notificationItems": [{"NotificationRequestItem": good}, {"NotificationRequestItem": forged}],
    }
    # When the whole body is verified
    # Then it is rejected, while Adyen's own helper accepts it
    assert adyen_hmac.all_valid(body, LIB_KEY) is False
    assert adyen_util.is_valid_hmac_notification(body, LIB_KEY) is True
    assert adyen_hmac.all_valid({"live": "false", "notificationItems": []}, LIB_KEY) is False


def test_a_key_that_is_not_hex_is_an_operator_error() -> None:
    # Given a key pasted wrongly
    # When an item is verified with it
    # Then it raises rather than silently rejecting every notification
    with pytest.raises(adyen_hmac.InvalidHmacKey):
        adyen_hmac.is_valid({**LIB_ITEM, "additionalData": {"hmacSignature": LIB_SIGNATURE}}, "not-hex")


def test_signatures_agree_with_adyens_library_on_random_items() -> None:
    # Given random items (references with ':' and '\\', some without originalReference)
    rng = random.Random(19)
    alphabet = string.ascii_letters + string.digits + ":\\/-_ "
    for _ in range(200):
        key = "".join(rng.choice("0123456789ABCDEF") for _ in range(64))
        item = {
            "pspReference": "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            "merchantAccountCode": "LocalMerchant",
            "merchantReference": "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))),
            "amount": {"value": rng.randint(1, 10**9), "currency": rng.choice(["EUR", "JPY", "KWD"])},
            "eventCode": rng.choice(["AUTHORISATION", "REFUND", "CHARGEBACK"]),
            "success": rng.choice(["true", "false"]),
        }
        if rng.random() < 0.5:
            item["originalReference"] = "8835511210681465"
        # When both sign it
        # Then the signatures are equal, and ours verifies through the library's verifier
        assert adyen_hmac.sign(item, key) == adyen_util.generate_notification_sig(item, key).decode()
        assert adyen_util.is_valid_hmac_notification(adyen_hmac.signed(item, key), key) is True
