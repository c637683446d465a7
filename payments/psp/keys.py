"""The PSP's idempotency keys, namespaced by kind.

A PSP keeps one idempotency-key space per account (Adyen: per company account, FACTS.md section 2),
and our identifiers share one alphabet: a refund whose ``refund_id`` equals a ``payment_order_id``
(its own order's or another's) must not be sent under the key of that charge, or the PSP answers
it with the charge's first answer (Adyen: 422/704, "used for another request") for ever.

=========== ====================================================================================
kind        key
=========== ====================================================================================
charge      the ``payment_order_id`` itself. Unchanged on purpose: a charge whose outcome is unknown
            is resent with its key, and a new key for a charge already sent would charge twice.
refund      ``refund:<refund_id>``
reversal    ``reversal:<payment_order_id>`` (the reversal of a partial authorisation)
=========== ====================================================================================

Our identifiers are ``[A-Za-z0-9_-]`` (no ``:``), so a charge key never equals a key of another
kind, and two kinds never share a key. Every key is derived from its id alone (the same key on
every resend, traceable from the id). Adyen takes at most :data:`MAX_KEY` characters: a prefixed
key that would be longer keeps the prefix, the id's first characters and a digest of the whole id
(``refund:<first 40 characters>~<16 hex digits of its SHA-256>``, exactly 64 characters).
"""

from __future__ import annotations

import hashlib
from typing import Literal

#: Adyen's ``Idempotency-Key``: at most 64 characters (FACTS.md section 2)
MAX_KEY = 64
_DIGEST = 16

Kind = Literal["charge", "refund", "reversal"]


def psp_key(kind: Kind, reference: str) -> str:
    """The PSP idempotency key of ``kind`` for our id ``reference`` (see the module docstring)."""
    if not reference:
        raise ValueError("an idempotency key is derived from a non-empty id")
    if kind == "charge":
        return reference
    key = f"{kind}:{reference}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(reference.encode()).hexdigest()[:_DIGEST]
    keep = MAX_KEY - len(kind) - 2 - _DIGEST
    return f"{kind}:{reference[:keep]}~{digest}"
