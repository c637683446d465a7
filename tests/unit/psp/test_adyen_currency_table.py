"""Adyen's table of currency decimals (payments/psp/adyen_currencies.py): the data and the exact
conversions the Adyen boundary uses."""

from __future__ import annotations

import pytest

from payments.kernel.iso4217 import MINOR_UNITS
from payments.kernel.money import Money
from payments.psp.adyen_currencies import (
    ADYEN_DECIMALS,
    UnsupportedAtAdyen,
    adyen_exponent,
    from_adyen_minor,
    to_adyen_minor,
)


# --- the table --------------------------------------------------------------------------------------
def test_adyens_table_differs_from_iso_exactly_where_adyen_says_and_isk_is_refused() -> None:
    # Given Adyen's table and ISO 4217's
    differs = {c: (d, MINOR_UNITS[c]) for c, d in ADYEN_DECIMALS.items() if c in MINOR_UNITS and d != MINOR_UNITS[c]}
    # Then they differ for CLP, IDR and CVE only, and the disputed ISK has no exponent at Adyen
    assert differs == {"CLP": (2, 0), "IDR": (0, 2), "CVE": (0, 2)}
    with pytest.raises(UnsupportedAtAdyen, match="disputed"):
        adyen_exponent("ISK")
    with pytest.raises(UnsupportedAtAdyen, match="not a currency Adyen supports"):
        adyen_exponent("BOV")


def test_conversions_are_exact_both_ways_or_refused() -> None:
    assert to_adyen_minor(Money(1_000_000, "IDR")) == 10_000  # IDR 10000.00
    assert to_adyen_minor(Money(5_000, "CLP")) == 500_000  # CLP 5000
    assert to_adyen_minor(Money(1_999, "USD")) == 1_999
    assert from_adyen_minor(500_000, "CLP") == Money(5_000, "CLP")
    assert from_adyen_minor(10_000, "IDR") == Money(1_000_000, "IDR")
    with pytest.raises(UnsupportedAtAdyen):  # IDR 10000.50: no rupiah cents at Adyen
        to_adyen_minor(Money(1_000_050, "IDR"))
    with pytest.raises(UnsupportedAtAdyen):  # CLP 5000.50: our CLP has no decimals
        from_adyen_minor(500_050, "CLP")
    # the simulated PSP's convention for a disputed currency: ISO 4217's decimals, never on an Adyen stage
    assert to_adyen_minor(Money(1_000, "ISK"), strict=False) == 1_000
    with pytest.raises(UnsupportedAtAdyen):
        to_adyen_minor(Money(1_000, "ISK"))
