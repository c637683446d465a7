"""IBAN and BIC validation (schwifty) and the masked form, in the merchant's words."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from functions.merchant_words import field_errors
from payments.payouts.accounts import PayoutAccountRequest
from payments.payouts.bank_account import checked_iban, mask

GOOD = "DE89370400440532013000"  # ISO 13616's German example: Commerzbank Köln, BIC COBADEFFXXX


def body(**fields: object) -> dict[str, object]:
    return {"iban": GOOD, "account_holder": "Books Ltd", "currency": "EUR", **fields}


@pytest.mark.parametrize(
    "iban",
    [
        GOOD,
        "DE89 3704 0044 0532 0130 00",  # printed form
        "FR1420041010050500013M02606",  # letters in the BBAN, a French RIB key
        "NL91ABNA0417164300",
        "GB29NWBK60161331926819",
        "NO9386011117947",  # the shortest SEPA IBAN (15)
    ],
)
def test_a_valid_iban_of_a_known_bank_is_accepted_in_its_electronic_form(iban):
    # When a valid IBAN is sent (electronic or printed)
    request = PayoutAccountRequest.model_validate(body(iban=iban))
    # Then it is kept in its electronic form
    assert request.iban == iban.replace(" ", "")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("iban", "DE88370400440532013000", "iban has wrong check digits: check the IBAN for a typing error"),
        (
            "iban",
            "DE8937040044053201300",
            "iban must have 22 characters for an IBAN of DE (spaces not counted): check the IBAN for a typing error",
        ),
        (
            "iban",
            "DE65123456780532013000",  # right check digits, bank code 12345678 in no registry
            "iban names a bank that is not in the bank registry of its country: check the IBAN, or ask us to add the bank",
        ),
        (
            "iban",
            "DE67370400440532010001",  # right IBAN check digits, wrong German account check digit (method 13)
            "iban is not a valid account number of its country: check the IBAN for a typing error",
        ),
        (
            "iban",
            "XX89370400440532013000",
            "iban must start with the code of a country that uses IBANs, such as DE or FR",
        ),
        ("iban", "de89370400440532013000", None),  # lower case: the field's rule
        ("iban", "DE89-3704-0044-0532-0130-00", None),
        ("bic", "DEUTDEFFXXX", "bic is not a BIC of the IBAN's bank: send the bank's BIC, or leave bic out"),
        ("bic", "ABCDEF", None),
        ("account_holder", "", None),
        ("account_holder", " Books Ltd", None),
        ("account_holder", "B" * 71, None),
        ("currency", "EURO", None),
        ("currency", "XXY", None),
    ],
)
def test_a_bad_field_is_named_in_the_merchants_words_never_quoting_it(field, value, expected):
    # When the body holds one bad field
    with pytest.raises(ValidationError) as raised:
        PayoutAccountRequest.model_validate(body(**{field: value}))
    # Then exactly that field is named, with a sentence saying what it must be
    errors = field_errors(raised.value.errors())
    assert [e["field"] for e in errors] == [field]
    message = errors[0]["message"]
    assert message.startswith(field + " ")
    if expected is not None:
        assert message == expected
    assert "should" not in message and "Value error" not in message  # never pydantic's own wording
    if len(value) > 3:
        assert value not in message and value not in str(raised.value)  # never the value sent


@pytest.mark.parametrize("bic", ["COBADEFFXXX", "COBADEFF", "COBADEFF370"])
def test_a_bic_of_the_ibans_bank_is_accepted_whatever_its_branch(bic):
    assert PayoutAccountRequest.model_validate(body(bic=bic)).bic == bic


def test_a_bic_is_not_checked_against_an_iban_that_is_itself_refused():
    # Given a bad IBAN and a BIC of some bank
    with pytest.raises(ValidationError) as raised:
        PayoutAccountRequest.model_validate(body(iban="DE88370400440532013000", bic="DEUTDEFFXXX"))
    # Then only the IBAN is named
    assert [e["field"] for e in field_errors(raised.value.errors())] == ["iban"]


@pytest.mark.parametrize(
    ("iban", "masked"),
    [
        (GOOD, "DE89 **** **** **** **30 00"),
        ("DE89 3704 0044 0532 0130 00", "DE89 **** **** **** **30 00"),
        ("NO9386011117947", "NO93 **** ***7 947"),
        ("FR1420041010050500013M02606", "FR14 **** **** **** **** ***2 606"),
    ],
)
def test_the_masked_form_shows_country_check_digits_and_last_four(iban, masked):
    assert mask(iban) == masked


def test_the_request_never_shows_the_iban_in_its_repr():
    request = PayoutAccountRequest.model_validate(body())
    assert "0532013000" not in repr(request) and "0532013000" not in str(request)


def test_the_simulated_banks_test_ibans_are_accepted_as_payout_accounts() -> None:
    # Given the simulated bank's test IBANs (rejected, returned, paid)
    from payments.payouts.bank.simulated import TEST_IBAN_REJECTED, TEST_IBAN_RETURNED

    # Then each passes the payout-account API's own checks, so a seller can register it
    for iban in (TEST_IBAN_REJECTED, TEST_IBAN_RETURNED, "DE89370400440532013000"):
        assert str(checked_iban(iban)) == iban
