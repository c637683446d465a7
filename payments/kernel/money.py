"""Money: decimal strings at the edges, integer minor units everywhere inside.

Never a float. ``parse_amount`` is the only way an amount enters the system and
``format_minor`` the only way one leaves it. Between the two, an amount crosses function
boundaries as :class:`Money` (minor units and their currency together, arithmetic within one
currency only); stored items and the API keep ``amount_minor``/``currency`` and decimal strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from payments.kernel.iso4217 import MINOR_UNITS

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
        raise InvalidAmount('amount must be a decimal string such as "19.99", not a JSON number')
    digits = exponent(currency)
    match = _DECIMAL_RE.fullmatch(amount)
    if match is None:
        # never quote the input: it may be a card number written with dots or spaces
        raise InvalidAmount("not a plain decimal string such as \"19.99\" (digits, at most one '.', no sign or spaces)")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > digits:
        raise InvalidAmount(
            f"{currency} has {digits} minor-unit digit{'s' if digits != 1 else ''}; the amount has {len(fraction)}"
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


class CurrencyMismatch(InvalidAmount):
    """Arithmetic or a comparison across two currencies: there is no implicit exchange rate."""


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of one active ISO 4217 currency.

    ``Money(1999, "USD")`` is 19.99 USD. Immutable and hashable; ``+``, ``-``, unary ``-``,
    ``sum`` and the orderings work within one currency and raise :class:`CurrencyMismatch`
    across two; multiplying or dividing money is left out on purpose (no rounding hides here).
    The stored and wire forms do not change: items keep ``amount_minor`` and ``currency``,
    the API keeps the decimal string (:meth:`parse`, :meth:`format`). Never a float.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise InvalidAmount(f"minor units must be an int, got {type(self.minor).__name__}")
        if not isinstance(self.currency, str) or not is_currency(self.currency):
            raise InvalidAmount("not an active ISO 4217 currency code")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """The API's decimal string in major units, validated as :func:`parse_amount` does
        (positive, no more fraction digits than the currency has, at most the order bound)."""
        return cls(parse_amount(amount, currency), currency)

    @property
    def exponent(self) -> int:
        """Minor-unit digits of the currency (ISO 4217): 2 for USD, 0 for JPY, 3 for KWD."""
        return MINOR_UNITS[self.currency]

    def format(self) -> str:
        """The canonical decimal string of the API (``"19.99"``, ``"5"`` for JPY)."""
        return format_minor(self.minor, self.currency)

    def to_decimal(self) -> Decimal:
        return to_decimal(self.minor, self.currency)

    def is_positive(self) -> bool:
        return self.minor > 0

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"

    def _same_currency(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"expected Money, got {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} do not add up: convert explicitly")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._same_currency(other).minor, self.currency)

    def __radd__(self, other: object) -> Money:
        # sum(amounts) starts from the int 0
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return self._same_currency(other) + self

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._same_currency(other).minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.minor), self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same_currency(other).minor

    def __le__(self, other: Money) -> bool:
        return self.minor <= self._same_currency(other).minor

    def __gt__(self, other: Money) -> bool:
        return self.minor > self._same_currency(other).minor

    def __ge__(self, other: Money) -> bool:
        return self.minor >= self._same_currency(other).minor
