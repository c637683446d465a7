"""HMAC signature of an Adyen standard notification item (our own verifier).

Adyen signs each ``NotificationRequestItem`` separately: HMAC-SHA256 over the UTF-8 string

    pspReference:originalReference:merchantAccountCode:merchantReference:amount.value:amount.currency:eventCode:success

with the hex key (decoded to bytes) of the webhook configuration, base64-encoded (standard
alphabet) into ``additionalData.hmacSignature``. A missing field is the empty string, nothing
is escaped, ``amount.value`` is its decimal integer text and ``success`` the payload's literal
string (``"true"``/``"false"``). See ``../shared/specs/adyen/FACTS.md`` section 3.

Unlike ``Adyen.util.is_valid_hmac_notification`` this checks the item it is given (callers
check every item), returns False (never None, never KeyError) on a missing signature, and
compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any


class BadKey(ValueError):
    """The configured HMAC key is not a hex string."""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # str(True) is "True": Adyen's payloads carry "true"
        return "true" if value else "false"
    return str(value)


def signing_string(item: Mapping[str, Any]) -> str:
    amount = item.get("amount") or {}
    return ":".join(
        _text(v)
        for v in (
            item.get("pspReference"),
            item.get("originalReference"),
            item.get("merchantAccountCode"),
            item.get("merchantReference"),
            amount.get("value") if isinstance(amount, Mapping) else None,
            amount.get("currency") if isinstance(amount, Mapping) else None,
            item.get("eventCode"),
            item.get("success"),
        )
    )


def key_bytes(hex_key: str) -> bytes:
    try:
        key = binascii.unhexlify(hex_key.strip())
    except (binascii.Error, ValueError) as err:
        raise BadKey("the notification HMAC key must be a hex string") from err
    if not key:
        raise BadKey("the notification HMAC key is empty")
    return key


def sign(item: Mapping[str, Any], hex_key: str) -> str:
    digest = hmac.new(key_bytes(hex_key), signing_string(item).encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed(item: dict[str, Any], hex_key: str) -> dict[str, Any]:
    """A copy of ``item`` with its ``additionalData.hmacSignature`` set (the simulated PSP, tests)."""
    out = dict(item)
    out["additionalData"] = {**(item.get("additionalData") or {}), "hmacSignature": sign(item, hex_key)}
    return out


def is_valid(item: Mapping[str, Any], hex_keys: str | Iterable[str]) -> bool:
    """True if the item's signature matches one of the keys (several during a key rotation)."""
    additional = item.get("additionalData")
    given = additional.get("hmacSignature") if isinstance(additional, Mapping) else None
    if not isinstance(given, str) or not given:
        return False
    keys = [hex_keys] if isinstance(hex_keys, str) else list(hex_keys)
    ok = False
    for hex_key in keys:
        # compare every key (no early exit): the time taken does not depend on which one matched
        ok |= hmac.compare_digest(sign(item, hex_key).encode("ascii"), given.encode("utf-8", "replace"))
    return ok
