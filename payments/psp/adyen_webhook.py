"""The JSON types of Adyen's standard notifications, checked exactly (``../shared/specs/adyen/Webhooks-v1.json``).

The HMAC (:mod:`payments.psp.hmac`) signs the text of eight fields, not their JSON types: ``"success": true``
signs like ``"success": "true"``, ``"value": "1000"`` like ``"value": 1000``. A captured signed item re-posted
with a field's type changed would keep its signature while its meaning changed (only the string ``"true"`` is
a success). So every field Adyen signs, and the others our code reads, must have the type Adyen's
Webhooks-v1 schema gives it, and anything else is refused before anything is stored:

* ``live``: the string ``"true"`` or ``"false"``, and the one of the stage (``"true"`` only on a live stage);
* ``eventCode``, ``pspReference``, ``merchantAccountCode``, ``success`` (``"true"`` | ``"false"``): strings,
  required; ``originalReference``, ``merchantReference``, ``eventDate``, ``reason``, ``paymentMethod``:
  strings when present (``null`` is not a string);
* ``amount``: required, an object with ``value`` an integer (int64; ``true``, ``1000.0`` and ``"1000"`` are
  not) and ``currency`` a string;
* ``additionalData``: an object when present (the signature in it is checked by the HMAC).

The signing string joins the fields with ``:`` unescaped (Adyen's format), so a ``:`` moved from one field
to the next would sign the same. Every signed field but ``merchantReference`` (ours, which Adyen's own
examples show holding ``:``) is therefore refused when it holds a ``:``; with the integer ``value`` the
signing string then reads back to exactly one item, so a valid signature fixes every signed field, and
with it the item's identity (:func:`payments.notifications.store.identity`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the item's string fields Adyen always sends (Webhooks-v1 ``required``; ``merchantReference`` is required
#: there too, but real payloads lack it on some events: FACTS.md section 3)
REQUIRED_STRINGS = ("eventCode", "pspReference", "merchantAccountCode", "success")
#: string fields that may be absent
OPTIONAL_STRINGS = ("originalReference", "merchantReference", "eventDate", "reason", "paymentMethod")
#: signed fields that can never hold ":" (the separator of the signing string)
NO_SEPARATOR = ("eventCode", "pspReference", "originalReference", "merchantAccountCode")
BOOLEAN_TEXT = ("true", "false")
INT64 = (-(2**63), 2**63 - 1)


def type_errors(body: Mapping[str, Any], *, live_stage: bool) -> list[dict[str, str]]:
    """Every field of a standard notification body whose JSON type (or value, for ``live`` and
    ``success``) is not the one Adyen sends, as ``{"field": path, "message": ...}``; empty when all
    are. ``body`` has Adyen's shape already (``notificationItems``, each a ``NotificationRequestItem``
    object). Messages name the field and what it must be, never what was sent."""
    errors: list[dict[str, str]] = []
    expected_live = "true" if live_stage else "false"
    live = body.get("live")
    if not isinstance(live, str) or live not in BOOLEAN_TEXT:
        errors.append({"field": "live", "message": 'must be the string "true" or "false"'})
    elif live != expected_live:
        errors.append({"field": "live", "message": f'must be "{expected_live}" on this stage'})
    for index, wrapper in enumerate(body.get("notificationItems") or []):
        item = wrapper["NotificationRequestItem"]
        errors += _item_errors(item, f"notificationItems[{index}].NotificationRequestItem")
    return errors


def _item_errors(item: Mapping[str, Any], path: str) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for name in REQUIRED_STRINGS + OPTIONAL_STRINGS:
        if name not in item:
            if name in REQUIRED_STRINGS:
                errors.append({"field": f"{path}.{name}", "message": "is required (a string)"})
            continue
        value = item[name]
        if not isinstance(value, str):
            errors.append({"field": f"{path}.{name}", "message": "must be a string"})
        elif name == "success" and value not in BOOLEAN_TEXT:
            errors.append({"field": f"{path}.{name}", "message": 'must be the string "true" or "false"'})
        elif name in NO_SEPARATOR and ":" in value:
            errors.append({"field": f"{path}.{name}", "message": "must not contain ':'"})
    amount = item.get("amount")
    if not isinstance(amount, Mapping):
        errors.append({"field": f"{path}.amount", "message": "is required: an object with value and currency"})
        return errors
    value = amount.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or not INT64[0] <= value <= INT64[1]:
        errors.append({"field": f"{path}.amount.value", "message": "must be an integer (minor units)"})
    currency = amount.get("currency")
    if not isinstance(currency, str) or ":" in currency:
        errors.append({"field": f"{path}.amount.currency", "message": "must be a currency code (a string)"})
    if "additionalData" in item and not isinstance(item["additionalData"], Mapping):
        errors.append({"field": f"{path}.additionalData", "message": "must be an object"})
    return errors
