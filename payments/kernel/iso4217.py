"""Active ISO 4217 currency codes and their minor-unit exponents.

Source: ISO 4217 list one (SIX Financial Information, maintenance agency), as
amended up to 2026. Codes without minor units ("N.A.": precious metals, XDR,
XTS, XXX, ...) are not payment currencies and are left out on purpose. Withdrawn
codes (for example ANG after the introduction of XCG, SLL after SLE, ZWL after
ZWG, BGN after Bulgaria joined the euro on 2026-01-01, HRK, CUC) are rejected.
"""

from types import MappingProxyType

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES "
    "KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR "
    "MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD "
    "RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP "
    "TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)


def _build() -> dict[str, int]:
    table: dict[str, int] = {}
    for exponent, codes in ((0, _ZERO), (2, _TWO), (3, _THREE), (4, _FOUR)):
        for code in codes.split():
            if code in table:
                raise ValueError(f"duplicate ISO 4217 code {code}")
            table[code] = exponent
    return table


#: currency code -> number of minor-unit digits (USD 2, JPY 0, KWD 3)
MINOR_UNITS: MappingProxyType[str, int] = MappingProxyType(_build())
