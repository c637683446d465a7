"""The HMAC key secret's value during a rotation: current + previous key, the previous one for a while."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from payments.psp import hmac as adyen_hmac
from tests.unit.psp.test_adyen_hmac import LIB_ITEM, LIB_KEY, LIB_SIGNATURE

NEW_KEY = "AB" * 32
SIGNED_WITH_OLD = {**LIB_ITEM, "additionalData": {"hmacSignature": LIB_SIGNATURE}}
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _rotation(until: str | None = "2026-12-09T12:00:00Z") -> str:
    document = {"current": NEW_KEY, "previous": LIB_KEY}
    if until is not None:
        document["previous_valid_until"] = until
    return json.dumps(document)


def test_a_plain_hex_value_is_the_one_key():
    # Given the secret holding the hex key from the Customer Area (with a trailing newline)
    # Then it is the only key
    assert adyen_hmac.keys_from_secret(LIB_KEY + "\n") == [LIB_KEY]
    # and the comma-separated form names each key
    assert adyen_hmac.keys_from_secret(f"{NEW_KEY}, {LIB_KEY}") == [NEW_KEY, LIB_KEY]


def test_a_notification_queued_before_the_rotation_verifies_until_the_previous_key_expires():
    # Given the secret during a rotation: the new key, and the previous one valid one week more
    value = _rotation("2026-12-09T12:00:00Z")
    # When a notification signed with the previous key (queued at Adyen before the change) arrives
    during = adyen_hmac.keys_from_secret(value, now=NOON)
    after = adyen_hmac.keys_from_secret(value, now=datetime(2026, 12, 9, 12, 0, tzinfo=UTC))
    # Then it verifies during the week, and not once the previous key has expired
    assert during == [NEW_KEY, LIB_KEY] and adyen_hmac.is_valid(SIGNED_WITH_OLD, during) is True
    assert after == [NEW_KEY] and adyen_hmac.is_valid(SIGNED_WITH_OLD, after) is False
    # and one signed with the new key verifies throughout
    signed_new = adyen_hmac.signed(LIB_ITEM, NEW_KEY)
    assert adyen_hmac.is_valid(signed_new, during) and adyen_hmac.is_valid(signed_new, after)


def test_an_offset_less_limit_is_utc_and_no_limit_keeps_the_previous_key():
    # Given a limit without an offset, and a rotation without a limit
    # Then the first is read as UTC, and the second accepts the previous key until an operator removes it
    assert adyen_hmac.keys_from_secret(_rotation("2026-12-02T12:00:01"), now=NOON) == [NEW_KEY, LIB_KEY]
    assert adyen_hmac.keys_from_secret(_rotation("2026-12-02T12:00:00"), now=NOON) == [NEW_KEY]
    assert adyen_hmac.keys_from_secret(_rotation(None), now=NOON) == [NEW_KEY, LIB_KEY]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not-hex",
        "{",
        json.dumps({"previous": LIB_KEY}),
        json.dumps({"current": ""}),
        json.dumps({"current": NEW_KEY, "previous": "zz"}),
        json.dumps({"current": NEW_KEY, "previous": LIB_KEY, "previous_valid_until": "next week"}),
        json.dumps({"current": NEW_KEY, "previous": LIB_KEY, "previous_valid_until": 1765000000}),
        json.dumps({"current": NEW_KEY, "previuos": LIB_KEY}),
        json.dumps([NEW_KEY]),
    ],
)
def test_a_badly_put_secret_is_an_operator_error_never_an_empty_key_list(value):
    # Given a secret value put wrongly, then reading it raises (every notification would otherwise fail silently)
    with pytest.raises(adyen_hmac.InvalidHmacKey):
        adyen_hmac.keys_from_secret(value, now=NOON)


def test_the_deployed_function_reads_the_keys_from_the_secret_and_keeps_them_per_container(monkeypatch):
    # Given the stage's HMAC key secret in Secrets Manager, named in the function's environment
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    parameters.clear_caches()
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="payments-test-adyen-hmac-key", SecretString=LIB_KEY)["ARN"]
        environ = {"PAYMENTS_PSP_HMAC_KEY_SECRET": arn, "ADYEN_SECRET_MAX_AGE": "300"}
        # When the keys are read, the secret is rotated, and they are read again within the max age
        first = adyen_hmac.configured_keys(environ, now=NOON)
        client.put_secret_value(SecretId=arn, SecretString=_rotation())
        cached = adyen_hmac.configured_keys(environ, now=NOON)
        parameters.clear_caches()  # a new container, or the max age passed
        fresh = adyen_hmac.configured_keys(environ, now=NOON)
    parameters.clear_caches()
    # Then the first reads are the cached key, and the next read sees the rotation
    assert first == cached == [LIB_KEY]
    assert fresh == [NEW_KEY, LIB_KEY]


def test_a_local_key_wins_and_no_key_at_all_is_an_error():
    # Given the local runtime's key in the environment, then it is used without Secrets Manager
    assert adyen_hmac.configured_keys({"PAYMENTS_PSP_HMAC_KEY": LIB_KEY, "PAYMENTS_PSP_HMAC_KEY_SECRET": "unused"}) == [
        LIB_KEY
    ]
    # and with neither, reading the keys raises
    with pytest.raises(adyen_hmac.InvalidHmacKey, match="no HMAC key configured"):
        adyen_hmac.configured_keys({})
