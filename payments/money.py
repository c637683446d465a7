"""Money: decimal strings at the edges, integer minor units everywhere inside.

Never a float. ``parse_amount`` is the only way an amount enters the system and
``format_minor`` the only way one leaves it.
"""

from __future__ import annotations

import re
from decimal import Decimal

from payments.iso4217 import MINOR_UNITS

#: Upper bound of one payment order, in minor units of its currency. 10^13 minor
#: units is 100 billion USD: far above any card charge, far below the 38 digits of
#: a DynamoDB number, and small enough that sums of millions of orders stay exact.
MAX_ORDER_MINOR_UNITS = 10**13

_DECIMAL_RE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


class InvalidAmount(ValueError):
    """An amount or currency that the contract does not allow."""


def exponent(currency: str) -> int:
    """Minor-unit digits of an active ISO 4217 currency."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise InvalidAmount("not an active ISO 4217 currency code") from None


def is_currency(code: str) -> bool:
    return code in MINOR_UNITS


def parse_amount(amount: str, currency: str) -> int:
    """Parse a decimal string in major units into integer minor units.

    ``"19.99", "USD" -> 1999``; ``"5", "JPY" -> 5``; ``"1.250", "KWD" -> 1250``.
    Rejects signs, exponents, blanks, zero, more fraction digits than the
    currency has, and amounts above :data:`MAX_ORDER_MINOR_UNITS`.
    """
    if not isinstance(amount, str):
        raise InvalidAmount("amount must be a decimal string such as \"19.99\", not a JSON number")
    digits = exponent(currency)
    match = _DECIMAL_RE.fullmatch(amount)
    if match is None:
        # never quote the input: it may be a card number written with dots or spaces
        raise InvalidAmount("not a plain decimal string such as \"19.99\" (digits, at most one '.', no sign or spaces)")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > digits:
        raise InvalidAmount(
            f"{currency} has {digits} minor-unit digit{'s' if digits != 1 else ''}; "
            f"the amount has {len(fraction)}"
        )
    minor: int = int(whole) * 10**digits + int(fraction.ljust(digits, "0") or "0")
    if minor <= 0:
        raise InvalidAmount("amount must be greater than zero")
    if minor > MAX_ORDER_MINOR_UNITS:
        raise InvalidAmount(f"amount exceeds the bound of {format_minor(MAX_ORDER_MINOR_UNITS, currency)} {currency}")
    return minor


def format_minor(minor: int, currency: str) -> str:
    """Integer minor units to the canonical decimal string (``1999, "USD" -> "19.99"``)."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise TypeError(f"minor units must be an int, got {type(minor).__name__}")
    digits = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(format_minor(minor, currency))
