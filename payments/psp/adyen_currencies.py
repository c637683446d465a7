"""Adyen's table of currency decimals, and the exact conversion of our money to and from it.

Adyen's API amounts are integer minor units **by Adyen's own table of decimals**, which differs
from ISO 4217 for a few currencies (``../shared/specs/adyen/FACTS.md`` section 6). Inside, money
stays :class:`~payments.kernel.money.Money` (ISO 4217 exponent); every amount that crosses the
Adyen boundary (a charge, a refund, a reversal, a notification's ``amount.value``, the settlement
report's decimal columns) is converted here, exactly. A conversion that would lose precision is
an error, never rounded: IDR 10000.50 cannot be sent to Adyen (IDR has no decimals there).

Sources
    * Adyen, "Currency codes and minor units",
      https://docs.adyen.com/development-resources/currency-codes (its table wins over ISO 4217:
      "CLP | Chilean Peso | 2 (differs from standard)", "CVE | Cape Verdi Escudo | 0 (differs from
      standard)"). The stored copy available to us lists the supported codes AED to ETB; they are
      taken from it as written (so AFN, BIF, BOV, BTN, CDF, CHE, CHW, CLF, COU and ERN, which it does
      not list, are not supported).
    * Adyen/adyen-web ``packages/lib/src/utils/constants/currency-decimals.ts`` @ 505761cc: zero
      decimals for IDR, JPY, KRW, VND, BYR, CVE, DJF, GHC, GNF, KMF, ISK, PYG, RWF, UGX, VUV, XAF,
      XOF, XPF; one for MRO; three for BHD, IQD, JOD, KWD, OMR, LYD, TND; everything else two.
      After ETB (EUR on), the supported codes are the active ISO 4217 codes with these decimals, less ISO's
      fund and special codes (MXV, USN, UYI, UYW), which no card scheme settles.
    * Disputed: ISK. ISO 4217 and adyen-web say 0, but the note on Adyen's page quoted in
      adyen/adyen-commercetools#1085 says Adyen expects 2. Until a test account settles it, a
      disputed currency is refused on an Adyen stage, never guessed (:data:`DISPUTED`).

Against ISO 4217 this gives CLP 2 (ISO 0), IDR 0 (ISO 2), CVE 0 (ISO 2).

The simulated PSP writes notifications and settlement reports in Adyen's formats but is ours: it
uses :func:`wire_exponent` (Adyen's decimals where Adyen's table is definite, ISO 4217's for the
disputed currencies and for those Adyen does not list), so that it can settle every currency the
simulator stage accepts.
"""

from __future__ import annotations

from types import MappingProxyType

from payments.kernel.iso4217 import MINOR_UNITS
from payments.kernel.money import InvalidAmount, Money

#: Adyen's currency-codes page, AED to ETB, as listed (code -> decimals)
_PAGE_A_TO_E = (
    "AED 2 ALL 2 AMD 2 AOA 2 ARS 2 AUD 2 AWG 2 AZN 2 BAM 2 BBD 2 BDT 2 BHD 3 BMD 2 BND 2 BOB 2 BRL 2 BSD 2 "
    "BWP 2 BYN 2 BZD 2 CAD 2 CHF 2 CLP 2 CNH 2 CNY 2 COP 2 CRC 2 CUP 2 CVE 0 CZK 2 DJF 0 DKK 2 DOP 2 DZD 2 "
    "EGP 2 ETB 2"
)
#: the last code of the stored copy of the page
_PAGE_LAST = "ETB"
#: adyen-web's exceptions to "two decimals" (currency-decimals.ts); BYR, GHC and MRO are withdrawn codes
_WEB_ZERO = "IDR JPY KRW VND BYR CVE DJF GHC GNF KMF ISK PYG RWF UGX VUV XAF XOF XPF"
_WEB_ONE = "MRO"
_WEB_THREE = "BHD IQD JOD KWD OMR LYD TND"
#: ISO 4217 fund and special codes: not payment currencies at Adyen
_NOT_AT_ADYEN = frozenset(["MXV", "USN", "UYI", "UYW"])

#: currencies whose Adyen exponent is disputed, and why: refused on an Adyen stage
DISPUTED: MappingProxyType[str, str] = MappingProxyType(
    {
        "ISK": "ISO 4217 and adyen-web say 0 decimals, Adyen's currency-codes page note (adyen-commercetools#1085) "
        "says 2: refused until a test account settles it",
    }
)


def _web_decimals(code: str) -> int:
    if code in _WEB_ZERO.split():
        return 0
    if code in _WEB_ONE.split():
        return 1
    if code in _WEB_THREE.split():
        return 3
    return 2


def _build() -> dict[str, int]:
    words = _PAGE_A_TO_E.split()
    table = {code: int(digits) for code, digits in zip(words[::2], words[1::2], strict=True)}
    for code in MINOR_UNITS:
        if code > _PAGE_LAST and code not in _NOT_AT_ADYEN and code not in DISPUTED:
            table[code] = _web_decimals(code)
    for code in table:
        if code != "CNH" and code not in MINOR_UNITS:
            raise ValueError(f"{code} is in Adyen's table but not an active ISO 4217 code")
    return table


#: currency -> decimals of Adyen's minor units, for the currencies Adyen supports with a definite
#: exponent (CNH, offshore yuan, is Adyen's only; it is not an ISO code and our API never takes it)
ADYEN_DECIMALS: MappingProxyType[str, int] = MappingProxyType(_build())


class UnsupportedAtAdyen(InvalidAmount):
    """A currency Adyen does not support, whose exponent is disputed, or an amount that Adyen's
    minor units cannot express exactly."""


def adyen_exponent(currency: str) -> int:
    """Adyen's decimals for ``currency``; raises :class:`UnsupportedAtAdyen` for a currency Adyen does
    not support or whose exponent is disputed (never a guess)."""
    if currency in DISPUTED:
        raise UnsupportedAtAdyen(f"{currency}: Adyen's minor units are disputed ({DISPUTED[currency]})")
    try:
        return ADYEN_DECIMALS[currency]
    except KeyError:
        raise UnsupportedAtAdyen(f"{currency} is not a currency Adyen supports") from None


def wire_exponent(currency: str) -> int:
    """Decimals of an amount in Adyen's formats as the simulated PSP writes and we read them: Adyen's
    where its table is definite, else ISO 4217's (the disputed ISK, the codes Adyen does not list).
    Raises InvalidAmount for a code that is neither."""
    digits = ADYEN_DECIMALS.get(currency)
    if digits is not None:
        return digits
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise InvalidAmount("not an active ISO 4217 currency code") from None


def _rescale(value: int, currency: str, source: int, target: int) -> int:
    factor: int = 10 ** abs(target - source)  # int ** int is typed Any (a negative power is a float)
    if target >= source:
        return value * factor
    whole, rest = divmod(value, factor)
    if rest:
        raise UnsupportedAtAdyen(
            f"{value} in {source} decimals of {currency} cannot be written exactly with {target} decimals"
        )
    return whole


def to_adyen_minor(money: Money, *, strict: bool = True) -> int:
    """``money`` as Adyen's minor units (IDR 10000.00 -> 10000, CLP 5000 -> 500000), exactly.

    ``strict`` (an Adyen stage, the adapter): the currency must be in Adyen's table with a definite
    exponent; otherwise (the simulated PSP) :func:`wire_exponent`. Raises :class:`UnsupportedAtAdyen`
    when the amount cannot be expressed exactly (IDR 10000.50)."""
    digits = adyen_exponent(money.currency) if strict else wire_exponent(money.currency)
    return _rescale(money.minor, money.currency, money.exponent, digits)


def from_adyen_minor(value: int, currency: str, *, strict: bool = True) -> Money:
    """Adyen's minor units ``value`` of ``currency`` as our Money (CLP 500000 -> 5000 CLP), exactly.

    Raises InvalidAmount for a value that is not an integer or a code that is not an active ISO 4217
    currency, and :class:`UnsupportedAtAdyen` as :func:`to_adyen_minor` does (a CLP value of
    500050 is 5000.50 CLP, which our ISO 4217 money cannot hold)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidAmount(f"an Adyen amount value is an integer, got {type(value).__name__}")
    if not isinstance(currency, str) or currency not in MINOR_UNITS:
        raise InvalidAmount("not an active ISO 4217 currency code")
    digits = adyen_exponent(currency) if strict else wire_exponent(currency)
    return Money(_rescale(value, currency, digits, MINOR_UNITS[currency]), currency)


def check_chargeable(money: Money) -> None:
    """Raise :class:`UnsupportedAtAdyen` unless Adyen can take ``money`` exactly (an Adyen stage's API
    refuses such a currency or amount with 422 before anything is stored)."""
    to_adyen_minor(money)
