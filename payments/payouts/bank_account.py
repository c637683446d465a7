"""A seller's bank account: the IBAN and the BIC checked with ``schwifty``, the IBAN masked.

An IBAN (ISO 13616) is accepted when ``schwifty`` finds it valid and knows its bank:

* its country uses IBANs, and it has that country's length and BBAN format (the SWIFT IBAN registry);
* its ISO 7064 mod 97-10 check digits are right, and so are the national check digits of countries
  whose algorithm ``schwifty`` implements (German account numbers, French RIB keys, ...);
* its bank code is in ``schwifty``'s bank registry of the country: an unknown bank is refused, even
  where a country's registry is incomplete (the seller is asked to check the IBAN or to contact us).

A BIC, when given, must be a valid BIC (ISO 9362) and, where the registry knows the BICs of the
IBAN's bank, one of them: the same institution, country and location (its first 8 characters; the
branch may differ, ``XXX`` or none being the head office).

Every refusal is a phrase in the merchant's words (``functions.merchant_words``): what is wrong and
what to do, never the value sent.
"""

from __future__ import annotations

import warnings

from schwifty import BIC, IBAN, registry
from schwifty import exceptions as schwifty_errors

#: an IBAN in its electronic form, or printed with single spaces between groups; capitals only
IBAN_PATTERN = r"^[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}$"
#: a BIC (ISO 9362:2014): 4 letters or digits (institution), 2 (country), 2 letters or digits (location), 3 (branch) or none
BIC_PATTERN = r"^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?$"

CHECK_IT = "check the IBAN for a typing error"
UNKNOWN_COUNTRY = "must start with the code of a country that uses IBANs, such as DE or FR"
WRONG_CHECK_DIGITS = f"has wrong check digits: {CHECK_IT}"
NOT_AN_ACCOUNT = f"is not a valid account number of its country: {CHECK_IT}"
UNKNOWN_BANK = "names a bank that is not in the bank registry of its country: check the IBAN, or ask us to add the bank"
BIC_FORM = "must be a BIC (SWIFT code) of 8 or 11 capital letters and digits such as COBADEFFXXX"
BIC_DISAGREES = "is not a BIC of the IBAN's bank: send the bank's BIC, or leave bic out"


def compact(text: str) -> str:
    """The electronic form of an IBAN (no spaces)."""
    return text.replace(" ", "")


def checked_iban(text: str) -> IBAN:
    """The IBAN ``text`` if it is valid and its bank known, else ``ValueError`` with the merchant's phrase."""
    value = compact(text)
    try:
        with warnings.catch_warnings():
            # a country whose national check digits schwifty cannot verify (SE...): the IBAN's own are checked
            warnings.simplefilter("ignore", schwifty_errors.NationalChecksumNotVerified)
            iban = IBAN(value, validate_bban=True)
    except schwifty_errors.InvalidCountryCode:
        raise ValueError(UNKNOWN_COUNTRY) from None
    except schwifty_errors.InvalidLength:
        raise ValueError(_length_rule(value[:2])) from None
    except schwifty_errors.InvalidChecksumDigits:
        raise ValueError(WRONG_CHECK_DIGITS) from None
    except schwifty_errors.SchwiftyException:  # structure, bank, branch or account code, national check digits
        raise ValueError(NOT_AN_ACCOUNT) from None
    if iban.bank is None:
        raise ValueError(UNKNOWN_BANK)
    return iban


def _length_rule(country: str) -> str:
    # the country code passed the pattern (two capitals) and schwifty knows it: safe to name
    length = registry.get_iban_spec(country).iban_length
    return f"must have {length} characters for an IBAN of {country} (spaces not counted): {CHECK_IT}"


def checked_bic(text: str, iban: IBAN | None) -> str:
    """The BIC ``text`` (as sent) if it is valid and agrees with ``iban``'s bank where the registry can tell."""
    try:
        bic = BIC(text)
    except schwifty_errors.SchwiftyException:
        raise ValueError(BIC_FORM) from None
    if iban is not None:
        known = {b.bic[:8] for b in registry.get_banks_by_code(iban.country_code, iban.bank_code) if b.bic}
        if known and str(bic)[:8] not in known:
            raise ValueError(BIC_DISAGREES)
    return text


def mask(iban: str) -> str:
    """``DE89 **** **** **** **30 00``: the country, the check digits and the last four characters;
    every other character a ``*``; in groups of four, as IBANs are printed."""
    value = compact(iban)
    hidden = value[:4] + "*" * (len(value) - 8) + value[-4:]
    return " ".join(hidden[i : i + 4] for i in range(0, len(hidden), 4))
