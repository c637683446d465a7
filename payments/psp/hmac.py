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
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac as _hmac
from collections.abc import Iterable, Mapping
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


class InvalidHmacKey(ValueError):
    """The configured HMAC key is not a non-empty even-length hex string."""


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
    try:
        key = binascii.unhexlify(hex_key.strip())
    except (binascii.Error, ValueError, AttributeError) as err:
        raise InvalidHmacKey("the HMAC key must be the hex string shown in Adyen's Customer Area") from err
    if not key:
        raise InvalidHmacKey("the HMAC key is empty")
    return key


def sign(item: Mapping[str, Any], hex_key: str) -> str:
    """The base64 signature of one item (what Adyen puts in ``additionalData.hmacSignature``)."""
    # surrogatepass: a lone surrogate (JSON "\ud800") cannot be in Adyen's payload; it must fail verification, not raise
    digest = _hmac.new(_key_bytes(hex_key), signing_string(item).encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
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
    return [entry.get("NotificationRequestItem") for entry in items if isinstance(entry, Mapping) and isinstance(entry.get("NotificationRequestItem"), Mapping)]


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
