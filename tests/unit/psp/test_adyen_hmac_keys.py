"""The webhook's HMAC key is checked when it is read and at the notifications function's cold start:
hex, at least 16 bytes (Adyen's Customer Area generates 32: 64 hex characters). A refusal names the
setting that holds the key, never the key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from payments.psp import hmac as adyen_hmac
from tests.unit.psp.test_adyen_hmac import LIB_ITEM, LIB_KEY, LIB_SIGNATURE

REPO = Path(__file__).resolve().parents[3]
#: a short key that is easy to look for in a message
SHORT = "c0ffee"


@pytest.mark.parametrize(
    "value",
    [
        "00",  # one byte
        ",",  # no key at all between the commas
        " , ",
        f"{LIB_KEY},",  # an empty key after a good one
        SHORT,
        "ab" * 15,  # 15 bytes
        f"{LIB_KEY},{SHORT}",  # a good key and a short one
        json.dumps({"current": SHORT}),
        json.dumps({"current": LIB_KEY, "previous": "00"}),
    ],
)
def test_a_short_or_empty_key_is_refused(value: str) -> None:
    # Given a secret value whose key (or one of whose keys) is not hex of at least 16 bytes
    # When it is read / Then it raises, never answering a short or empty key list
    with pytest.raises(adyen_hmac.InvalidHmacKey):
        adyen_hmac.keys_from_secret(value)


def test_keys_of_16_bytes_and_more_are_accepted() -> None:
    assert adyen_hmac.keys_from_secret("ab" * 16) == ["ab" * 16]
    assert adyen_hmac.keys_from_secret(f"{LIB_KEY}, {'AB' * 32}") == [LIB_KEY, "AB" * 32]
    assert adyen_hmac.MIN_KEY_BYTES == 16


def test_a_short_key_signs_nothing() -> None:
    # Given a one-byte key handed to the verifier directly / Then it is an operator's error, not a verdict
    with pytest.raises(adyen_hmac.InvalidHmacKey):
        adyen_hmac.is_valid({**LIB_ITEM, "additionalData": {"hmacSignature": LIB_SIGNATURE}}, "00")


@pytest.mark.parametrize("value", [SHORT, ",", "zz" * 32])
def test_the_refusal_names_the_setting_never_the_key(value: str) -> None:
    # Given the local setting holding a bad key
    # When the deployment's keys are read
    with pytest.raises(adyen_hmac.InvalidHmacKey) as raised:
        adyen_hmac.configured_keys({"PAYMENTS_PSP_HMAC_KEY": value})
    # Then the message names the setting and does not quote the key
    message = str(raised.value)
    assert "PAYMENTS_PSP_HMAC_KEY" in message
    assert value.strip(",") == "" or value not in message


def _cold_start(key: str) -> subprocess.CompletedProcess[str]:
    """Import the notifications function in a fresh interpreter, as Lambda's init does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENTS_", "AWS_"))}
    env.update({"PAYMENTS_PSP_HMAC_KEY": key, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(REPO)})
    return subprocess.run(
        [sys.executable, "-c", "import functions.notifications.handler"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_invalid_key_fails_the_notifications_functions_cold_start() -> None:
    # Given the function configured with a 3-byte key / When it starts
    bad = _cold_start(SHORT)
    # Then its init fails, saying which setting is wrong and never what it holds
    assert bad.returncode != 0
    assert "InvalidHmacKey" in bad.stderr and "PAYMENTS_PSP_HMAC_KEY" in bad.stderr
    assert SHORT not in bad.stderr
    # and with Adyen's kind of key it starts
    good = _cold_start(LIB_KEY)
    assert good.returncode == 0, good.stderr[-2000:]


def test_payments_serve_refuses_an_invalid_key_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    # Given PAYMENTS_PSP_HMAC_KEY holding a key of 3 bytes
    monkeypatch.setenv("PAYMENTS_PSP_HMAC_KEY", SHORT)
    from payments.ops.cli import main
    from payments_dev.local.runtime import LocalRuntime

    def started(self: LocalRuntime) -> None:
        raise AssertionError("the local runtime started with an invalid HMAC key")

    monkeypatch.setattr(LocalRuntime, "start", started)

    # When `payments serve` is started / Then it stops before serving: exit 2, one line naming the setting
    assert main(["serve", "--port", "18999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PAYMENTS_PSP_HMAC_KEY" in err and SHORT not in err
