"""Adyen standard-notification HMAC signatures (``additionalData.hmacSignature``).

Our own verifier rather than ``Adyen.util.is_valid_hmac_notification``, which checks
only the first item, returns ``None`` when ``additionalData`` is missing and raises
``KeyError`` when the signature is absent (see ``../shared/specs/adyen/FACTS.md`` §3).

The signing string is Adyen's, unescaped::

    pspReference:originalReference:merchantAccountCode:merchantReference:amount.value:amount.currency:eventCode:success

A missing field is the empty string; ``value`` is the decimal integer text; ``success``
is the payload's literal string (``"true"``/``"false"``, never Python's ``True``). The key
is the hex string from Adyen's Customer Area; the signature is base64 of HMAC-SHA256 over
the UTF-8 signing string, compared in constant time. Several keys may be accepted at once
(the current and the previous one while a rotation drains Adyen's retry queue).

The one verifier of the system: the Adyen adapter and its fake, the notifications webhook
(``functions/notifications``), the simulated PSP and the chaos harness all use it. Whatever an
item holds (a forged one may hold anything), :func:`is_valid` answers True or False; only a
badly configured key raises.

Rotation (:func:`keys_from_secret`): the deployed stage keeps the key in a Secrets Manager
secret whose value is the hex key, or during a rotation the JSON object
``{"current": "<hex>", "previous": "<hex>", "previous_valid_until": "<ISO 8601 UTC>"}``.
Adyen signs every notification it has not yet delivered with the key configured when it
sends it, and retries a notification it could not deliver (for days): accepting the previous
key until ``previous_valid_until`` lets the queue drain after the webhook's key is changed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac as _hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

SIGNED_FIELDS = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
)


#: the shortest key accepted, in bytes: Adyen's Customer Area generates 32 (64 hex characters)
MIN_KEY_BYTES = 16


class InvalidHmacKey(ValueError):
    """The configured HMAC key is not a hex string of at least :data:`MIN_KEY_BYTES` bytes. Its
    message never quotes the key."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # str(True) is "True": Adyen signs the literal "true"/"false"
        return "true" if value else "false"
    return str(value)


def signing_string(item: Mapping[str, Any]) -> str:
    """The string Adyen signs for one ``NotificationRequestItem``."""
    amount = item.get("amount")
    if not isinstance(amount, Mapping):  # a forged item may carry anything here: it signs as empty, never raises
        amount = {}
    fields = {
        "pspReference": item.get("pspReference"),
        "originalReference": item.get("originalReference"),
        "merchantAccountCode": item.get("merchantAccountCode"),
        "merchantReference": item.get("merchantReference"),
        "value": amount.get("value"),
        "currency": amount.get("currency"),
        "eventCode": item.get("eventCode"),
        "success": item.get("success"),
    }
    return ":".join(_text(fields[name]) for name in SIGNED_FIELDS)


def _key_bytes(hex_key: str) -> bytes:
    """The key's bytes: hex (as Adyen's Customer Area shows it), at least :data:`MIN_KEY_BYTES` bytes."""
    try:
        key = binascii.unhexlify(hex_key.strip())
    except (binascii.Error, ValueError, AttributeError) as err:
        raise InvalidHmacKey("the HMAC key must be the hex string shown in Adyen's Customer Area") from err
    if not key:
        raise InvalidHmacKey("the HMAC key is empty")
    if len(key) < MIN_KEY_BYTES:
        raise InvalidHmacKey(
            f"the HMAC key is {len(key)} bytes, at least {MIN_KEY_BYTES} are needed "
            f"({2 * MIN_KEY_BYTES} hex characters; Adyen's keys are 32 bytes, 64 hex characters)"
        )
    return key


def sign(item: Mapping[str, Any], hex_key: str) -> str:
    """The base64 signature of one item (what Adyen puts in ``additionalData.hmacSignature``)."""
    # surrogatepass: a lone surrogate (JSON "\ud800") cannot be in Adyen's payload; it must fail verification, not raise
    digest = _hmac.new(
        _key_bytes(hex_key), signing_string(item).encode("utf-8", "surrogatepass"), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid(item: Mapping[str, Any], hex_keys: str | Iterable[str]) -> bool:
    """True when the item's ``additionalData.hmacSignature`` matches one of the keys.

    False (never None, never an exception) for a missing, empty or non-string signature.
    A badly configured key is an operator error and raises :class:`InvalidHmacKey`.
    """
    keys = [hex_keys] if isinstance(hex_keys, str) else [k for k in hex_keys if k]
    if not keys:
        raise InvalidHmacKey("no HMAC key configured")
    additional = item.get("additionalData")
    received = additional.get("hmacSignature") if isinstance(additional, Mapping) else None
    if not isinstance(received, str) or not received:
        return False
    received_bytes = received.encode("utf-8", "surrogatepass")
    valid = False
    for key in keys:  # every key is tried (no early exit), each comparison in constant time
        valid |= _hmac.compare_digest(sign(item, key).encode("ascii"), received_bytes)
    return valid


def items_of(notification: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every ``NotificationRequestItem`` of a standard notification body (JSON carries one, but loop)."""
    items = notification.get("notificationItems")
    if not isinstance(items, list):
        return []
    return [
        item
        for entry in items
        if isinstance(entry, Mapping) and isinstance(item := entry.get("NotificationRequestItem"), Mapping)
    ]


def all_valid(notification: Mapping[str, Any], hex_keys: str | Iterable[str]) -> bool:
    """True only if the body has at least one item and every item is validly signed."""
    items = items_of(notification)
    raw = notification.get("notificationItems")
    if not items or not isinstance(raw, list) or len(items) != len(raw):
        return False
    keys = [hex_keys] if isinstance(hex_keys, str) else list(hex_keys)
    return all(is_valid(item, keys) for item in items)


def signed(item: Mapping[str, Any], hex_key: str) -> dict[str, Any]:
    """A copy of the item with ``additionalData.hmacSignature`` set (for fakes and tests)."""
    copy = dict(item)
    additional = dict(copy.get("additionalData") or {})
    additional.pop("hmacSignature", None)
    copy["additionalData"] = {**additional, "hmacSignature": sign(copy, hex_key)}
    return copy


def keys_from_secret(value: str, now: datetime | None = None) -> list[str]:
    """The HMAC keys a notification may be signed with, from the secret's value.

    * ``"<hex>"``: one key; ``"<hex>,<hex>"``: each of them (the local runtime's form);
    * ``{"current": "<hex>", "previous": "<hex>", "previous_valid_until": "<ISO 8601>"}``: the current
      key, and the previous one while ``now`` is before ``previous_valid_until`` (an offset-less time
      is UTC; without ``previous_valid_until`` the previous key is accepted until it is removed).

    Every key is checked to be hex of at least :data:`MIN_KEY_BYTES` bytes (:class:`InvalidHmacKey`
    otherwise, as for a missing current key or an empty key between commas): a badly put secret is an
    operator's error that must surface, never a silently empty key list.
    """
    text = (value or "").strip()
    if not text:
        raise InvalidHmacKey("the HMAC key secret is empty")
    if not text.startswith("{"):
        keys = [part.strip() for part in text.split(",")]
        if not all(keys):
            raise InvalidHmacKey("the HMAC key secret has an empty key between its commas")
    else:
        try:
            document = json.loads(text)
        except ValueError as err:
            raise InvalidHmacKey("the HMAC key secret is not valid JSON") from err
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("current"), str)
            or not document["current"].strip()
        ):
            raise InvalidHmacKey('the HMAC key secret needs {"current": "<hex key>"}')
        unknown = set(document) - {"current", "previous", "previous_valid_until"}
        if unknown:
            raise InvalidHmacKey(f"the HMAC key secret has unknown fields {sorted(unknown)}")
        keys = [document["current"].strip()]
        previous = document.get("previous")
        if previous is not None:
            if not isinstance(previous, str) or not previous.strip():
                raise InvalidHmacKey("previous must be the previous hex key")
            if _previous_valid(document.get("previous_valid_until"), now or datetime.now(UTC)):
                keys.append(previous.strip())
    for key in keys:
        _key_bytes(key)  # hex and non-empty, or InvalidHmacKey
    return keys


def _previous_valid(until: Any, now: datetime) -> bool:
    if until is None:
        return True
    if not isinstance(until, str):
        raise InvalidHmacKey("previous_valid_until must be an ISO 8601 date-time")
    try:
        limit = datetime.fromisoformat(until.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidHmacKey(f"previous_valid_until {until!r} is not an ISO 8601 date-time") from err
    if limit.tzinfo is None:
        limit = limit.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now < limit


def configured_keys(environ: Mapping[str, str] | None = None, now: datetime | None = None) -> list[str]:
    """The keys of this deployment: ``PAYMENTS_PSP_HMAC_KEY`` (local runs, tests), else the secret
    ``PAYMENTS_PSP_HMAC_KEY_SECRET`` (name or ARN) read through Powertools parameters and kept
    ``ADYEN_SECRET_MAX_AGE`` seconds (default 300) per container, so a rotated value is picked up
    without a deployment. Both hold a value :func:`keys_from_secret` reads. The three are fields of
    ``payments.kernel.config.Settings`` (read from ``environ`` when given, else the process's settings)."""
    from payments.kernel.config import Settings, env_name, settings

    config = settings() if environ is None else Settings.from_env(environ)
    direct = config.payments_psp_hmac_key
    if direct.strip():
        return _named(env_name("payments_psp_hmac_key"), direct, now)
    secret = config.payments_psp_hmac_key_secret
    if not secret.strip():
        raise InvalidHmacKey(
            f"no HMAC key configured: set {env_name('payments_psp_hmac_key')} or {env_name('payments_psp_hmac_key_secret')}"
        )
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret.strip(), max_age=config.adyen_secret_max_age)
    setting = f"the secret named by {env_name('payments_psp_hmac_key_secret')}"
    if not isinstance(value, str):
        raise InvalidHmacKey(f"{setting}: the HMAC key secret must be a string, not binary")
    return _named(setting, value, now)


def _named(setting: str, value: str, now: datetime | None) -> list[str]:
    """:func:`keys_from_secret`, its refusal naming the setting that holds the value (never the value)."""
    try:
        return keys_from_secret(value, now)
    except InvalidHmacKey as err:
        raise InvalidHmacKey(f"{setting}: {err}") from None
