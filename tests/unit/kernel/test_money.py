"""Money: decimal strings at the edge, integer minor units inside (payments/kernel/money.py, payments/kernel/iso4217.py)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from payments.kernel.iso4217 import MINOR_UNITS
from payments.kernel.money import (
    MAX_ORDER_MINOR_UNITS,
    InvalidAmount,
    exponent,
    format_minor,
    is_currency,
    parse_amount,
    to_decimal,
)

CURRENCIES = {"USD": 2, "JPY": 0, "KWD": 3, "CLF": 4}


# --- parse_amount: accepted ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("19.99", "USD", 1999),
        ("5", "USD", 500),
        ("5.5", "USD", 550),
        ("0.01", "USD", 1),
        ("1000000", "USD", 100000000),
        ("5", "JPY", 5),
        ("1500", "JPY", 1500),
        ("1.250", "KWD", 1250),
        ("1.25", "KWD", 1250),
        ("0.001", "KWD", 1),
        ("2", "KWD", 2000),
        ("1.2345", "CLF", 12345),
        ("0.0001", "CLF", 1),
        ("3.1", "CLF", 31000),
    ],
)
def test_parse_amount_converts_major_units_to_exact_minor_units(amount: str, currency: str, minor: int) -> None:
    # Given a decimal string in major units that fits the currency
    # When it is parsed
    result = parse_amount(amount, currency)
    # Then it is the exact integer number of minor units
    assert result == minor
    assert type(result) is int


@pytest.mark.parametrize(
    ("currency", "largest"),
    [("USD", "100000000000.00"), ("JPY", "10000000000000"), ("KWD", "10000000000.000"), ("CLF", "1000000000.0000")],
)
def test_parse_amount_accepts_exactly_the_upper_bound(currency: str, largest: str) -> None:
    # Given the largest allowed amount written in the currency's units
    # When it is parsed
    # Then it equals MAX_ORDER_MINOR_UNITS
    assert parse_amount(largest, currency) == MAX_ORDER_MINOR_UNITS


# --- parse_amount: rejected ---------------------------------------------------------------
@pytest.mark.parametrize("amount", [19.99, 1999, 0, 1.0, Decimal("19.99"), None, b"19.99", True])
def test_parse_amount_rejects_anything_but_a_string(amount: object) -> None:
    # Given an amount that is a JSON number (or other non-string)
    # When it is parsed
    # Then it is refused, naming the string requirement
    with pytest.raises(InvalidAmount, match="decimal string"):
        parse_amount(amount, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "amount",
    [
        "-1.00",
        "+1.00",
        "-0.01",
        "1e3",
        "1E3",
        " 1.00",
        "1.00 ",
        "1.",
        ".5",
        "01.00",
        "00",
        "007",
        "",
        " ",
        "1,00",
        "1,000.00",
        "1.0.0",
        "0x10",
        "NaN",
        "Infinity",
        "١٢",
        "１２",
        "1_000",
        "1.00\n",
        "\n1.00",
    ],
)
def test_parse_amount_rejects_strings_that_are_not_plain_decimals(amount: str) -> None:
    # Given a string that is not a plain, canonical-shaped decimal in major units
    # When it is parsed
    # Then it is refused
    with pytest.raises(InvalidAmount):
        parse_amount(amount, "USD")


@pytest.mark.parametrize(
    ("amount", "currency"), [("0", "USD"), ("0.00", "USD"), ("0", "JPY"), ("0.000", "KWD"), ("0.0000", "CLF")]
)
def test_parse_amount_rejects_zero(amount: str, currency: str) -> None:
    # Given a zero amount
    # When it is parsed
    # Then it is refused: an order charges something
    with pytest.raises(InvalidAmount, match="greater than zero"):
        parse_amount(amount, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("1.999", "USD", "USD has 2 minor-unit digits; the amount has 3"),
        ("1.5", "JPY", "JPY has 0 minor-unit digits; the amount has 1"),
        ("1.0", "JPY", "JPY has 0 minor-unit digits; the amount has 1"),
        ("1.2345", "KWD", "KWD has 3 minor-unit digits; the amount has 4"),
        ("1.23456", "CLF", "CLF has 4 minor-unit digits; the amount has 5"),
        ("0.000", "USD", "USD has 2 minor-unit digits; the amount has 3"),
    ],
)
def test_parse_amount_rejects_more_fraction_digits_than_the_currency_has(
    amount: str, currency: str, message: str
) -> None:
    # Given an amount with more fraction digits than the currency's ISO 4217 exponent (even trailing zeros)
    # When it is parsed
    # Then it is refused with a message naming both digit counts, never quoting the amount
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(amount, currency)
    assert str(raised.value) == message
    assert amount not in str(raised.value)


@pytest.mark.parametrize(
    "amount",
    ["4242.4242.4242.4242", "4242/4242/4242/4242", "4242  4242  4242  4242", "4242\u00a04242\u00a04242\u00a04242"],
)
def test_a_malformed_amount_is_refused_without_quoting_it(amount: str) -> None:
    # Given an amount field holding a card number written with dots, slashes, double or no-break spaces
    # When it is parsed
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(amount, "USD")
    # Then the message states the rule and carries none of the digits
    assert "4242" not in str(raised.value)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("100000000000.01", "USD"),
        ("10000000000001", "JPY"),
        ("10000000000.001", "KWD"),
        ("1000000000.0001", "CLF"),
        ("99999999999999999999999", "USD"),
    ],
)
def test_parse_amount_rejects_amounts_above_the_order_bound(amount: str, currency: str) -> None:
    # Given an amount one minor unit (or far) above MAX_ORDER_MINOR_UNITS
    # When it is parsed
    # Then it is refused
    with pytest.raises(InvalidAmount, match="exceeds the bound"):
        parse_amount(amount, currency)


@pytest.mark.parametrize(
    "currency",
    [
        "BGN",
        "HRK",
        "ANG",
        "SLL",
        "ZWL",
        "CUC",
        "VEF",
        "MRO",
        "STD",
        "LTL",
        "BYR",
        "XXX",
        "XTS",
        "XAU",
        "XDR",
        "ABC",
        "usd",
        "Usd",
        "US",
        "USDD",
        "",
        " USD",
    ],
)
def test_parse_amount_rejects_unknown_withdrawn_and_non_canonical_currency_codes(currency: str) -> None:
    # Given a currency code that is not an active ISO 4217 payment currency written in upper case
    # When an otherwise valid amount is parsed in it
    # Then it is refused, naming the code
    with pytest.raises(InvalidAmount, match="not an active ISO 4217 currency code"):
        parse_amount("1", currency)
    assert is_currency(currency) is False


def test_invalid_amount_is_a_value_error_so_pydantic_reports_it_as_a_field_error() -> None:
    # Given / When / Then: InvalidAmount subclasses ValueError (pydantic turns ValueErrors into field errors)
    assert issubclass(InvalidAmount, ValueError)


# --- format_minor -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1999, "USD", "19.99"),
        (1, "USD", "0.01"),
        (0, "USD", "0.00"),
        (100, "USD", "1.00"),
        (5, "JPY", "5"),
        (0, "JPY", "0"),
        (1250, "KWD", "1.250"),
        (1, "KWD", "0.001"),
        (12345, "CLF", "1.2345"),
        (1, "CLF", "0.0001"),
        (MAX_ORDER_MINOR_UNITS, "USD", "100000000000.00"),
    ],
)
def test_format_minor_writes_the_canonical_decimal_string(minor: int, currency: str, text: str) -> None:
    # Given integer minor units
    # When they are formatted
    # Then the result has exactly the currency's number of fraction digits
    assert format_minor(minor, currency) == text


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (-1999, "USD", "-19.99"),
        (-5, "USD", "-0.05"),
        (-1, "USD", "-0.01"),
        (-5, "JPY", "-5"),
        (-1, "KWD", "-0.001"),
        (-12345, "CLF", "-1.2345"),
    ],
)
def test_format_minor_puts_the_sign_before_the_whole_amount_for_negative_values(
    minor: int, currency: str, text: str
) -> None:
    # Given a negative number of minor units (a reversal, a balance delta)
    # When it is formatted
    # Then the sign applies to the whole amount, not to the integer part only
    assert format_minor(minor, currency) == text


@pytest.mark.parametrize("minor", [19.99, 1999.0, Decimal(1999), "1999", True, False, None])
def test_format_minor_accepts_only_integers(minor: object) -> None:
    # Given minor units that are not an int (or are a bool)
    # When they are formatted
    # Then a TypeError says so
    with pytest.raises(TypeError):
        format_minor(minor, "USD")  # type: ignore[arg-type]


def test_format_minor_rejects_an_unknown_currency() -> None:
    # Given a withdrawn currency
    # When minor units are formatted in it
    # Then it is refused
    with pytest.raises(InvalidAmount):
        format_minor(100, "BGN")


def test_to_decimal_is_exact() -> None:
    # Given minor units / When converted to Decimal / Then the value is exact, with the currency's scale
    assert to_decimal(1999, "USD") == Decimal("19.99")
    assert str(to_decimal(1250, "KWD")) == "1.250"


# --- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("currency", sorted(CURRENCIES))
def test_format_then_parse_returns_the_same_minor_units(currency: str) -> None:
    # Given a few hundred random positive amounts in minor units, up to the bound
    rng = random.Random(f"minor-{currency}")
    values = [1, MAX_ORDER_MINOR_UNITS] + [rng.randint(1, MAX_ORDER_MINOR_UNITS) for _ in range(200)]
    values += [rng.randint(1, 10 ** rng.randint(1, 6)) for _ in range(200)]
    for minor in values:
        # When formatted and parsed back
        text = format_minor(minor, currency)
        # Then the original value returns and the text is canonical
        assert parse_amount(text, currency) == minor, text
        assert text == format(Decimal(minor).scaleb(-CURRENCIES[currency]), f".{CURRENCIES[currency]}f")


@pytest.mark.parametrize("currency", sorted(CURRENCIES))
def test_parse_then_format_gives_the_canonical_form_of_the_input(currency: str) -> None:
    # Given a few hundred random decimal strings with 0..exponent fraction digits
    digits = CURRENCIES[currency]
    rng = random.Random(f"text-{currency}")
    checked = 0
    for _ in range(400):
        whole = str(rng.randint(0, 10 ** rng.randint(0, 9)))
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, digits)))
        text = f"{whole}.{fraction}" if fraction else whole
        if Decimal(text) == 0:
            continue
        # When parsed and formatted again
        result = format_minor(parse_amount(text, currency), currency)
        # Then the result is the input written with exactly the currency's fraction digits (Decimal as oracle)
        assert result == format(Decimal(text), f".{digits}f"), text
        checked += 1
    assert checked > 350


# --- the ISO 4217 table ---------------------------------------------------------------------
def test_iso4217_table_has_only_the_exponents_iso_uses() -> None:
    # Given the table / Then every exponent is 0, 2, 3 or 4 and each occurs
    assert set(MINOR_UNITS.values()) == {0, 2, 3, 4}


@pytest.mark.parametrize(
    ("code", "digits"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("VND", 0),
        ("CLP", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("OMR", 3),
        ("JOD", 3),
        ("TND", 3),
        ("CLF", 4),
        ("UYW", 4),
        ("XCG", 2),
        ("SLE", 2),
        ("ZWG", 2),
        ("VES", 2),
        ("MRU", 2),
    ],
)
def test_iso4217_table_knows_the_exponent_of_well_known_currencies(code: str, digits: int) -> None:
    # Given an active currency / When its exponent is read / Then it is the ISO 4217 one
    assert MINOR_UNITS[code] == digits
    assert exponent(code) == digits


def test_iso4217_table_has_the_size_of_list_one_without_non_payment_codes() -> None:
    # Given the table / Then it holds roughly the ~160 active payment currencies of ISO 4217 list one,
    # all of them three upper-case letters
    assert 150 <= len(MINOR_UNITS) <= 170
    assert all(len(c) == 3 and c.isascii() and c.isalpha() and c.isupper() for c in MINOR_UNITS)


def test_iso4217_table_is_read_only() -> None:
    # Given the table / When code tries to change it / Then it cannot
    with pytest.raises(TypeError):
        MINOR_UNITS["BGN"] = 2  # type: ignore[index]
