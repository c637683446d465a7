"""Money as a type (payments.kernel.money.Money): one currency per amount, integer minor units, never a float.

Property tests (hypothesis) over every active ISO 4217 currency and its exponent, plus the
examples that name each rule."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.kernel.iso4217 import MINOR_UNITS
from payments.kernel.money import (
    MAX_ORDER_MINOR_UNITS,
    CurrencyMismatch,
    InvalidAmount,
    Money,
    format_minor,
    parse_amount,
)

currencies = st.sampled_from(sorted(MINOR_UNITS))
minors = st.integers(min_value=-(10**15), max_value=10**15)
order_minors = st.integers(min_value=1, max_value=MAX_ORDER_MINOR_UNITS)


@st.composite
def two_currencies(draw: st.DrawFn) -> tuple[str, str]:
    first = draw(currencies)
    second = draw(currencies.filter(lambda c: c != first))
    return first, second


# --- construction --------------------------------------------------------------------------
@pytest.mark.parametrize("minor", [19.99, 1999.0, Decimal("1999"), "1999", True, None])
def test_money_refuses_anything_but_an_int_of_minor_units(minor: object) -> None:
    # Given a float, a Decimal, a string, a bool or nothing as minor units / When Money is built
    # Then it is refused: amounts are integer minor units, never a float
    with pytest.raises(InvalidAmount):
        Money(minor, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["usd", "XXX", "BGN", "", "US", None])
def test_money_refuses_a_currency_that_is_not_active_iso_4217(currency: object) -> None:
    # Given a lower-case, withdrawn, non-payment or missing code / When Money is built / Then refused
    with pytest.raises(InvalidAmount):
        Money(100, currency)  # type: ignore[arg-type]


def test_money_is_immutable_and_hashable() -> None:
    # Given an amount / When it is changed in place / Then it refuses; equal amounts hash alike
    amount = Money(1999, "USD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        amount.minor = 1  # type: ignore[misc]
    assert {Money(1999, "USD"), Money(1999, "USD"), Money(1999, "EUR")} == {Money(1999, "USD"), Money(1999, "EUR")}


@pytest.mark.parametrize(("currency", "digits"), [("USD", 2), ("JPY", 0), ("KWD", 3), ("CLF", 4)])
def test_exponent_comes_from_iso_4217(currency: str, digits: int) -> None:
    # Given currencies of each exponent / When asked / Then the ISO 4217 minor-unit digits
    assert Money(1, currency).exponent == digits


# --- arithmetic within one currency -----------------------------------------------------------
@given(currencies, st.lists(minors, max_size=20))
def test_sum_of_money_is_the_sum_of_its_minor_units(currency: str, values: list[int]) -> None:
    # Given amounts in one currency / When summed (sum() and +) / Then the minor units add exactly
    amounts = [Money(v, currency) for v in values]
    assert sum(amounts, Money.zero(currency)) == Money(sum(values), currency)
    if amounts:
        assert sum(amounts) == Money(sum(values), currency)


@given(currencies, minors, minors)
def test_subtraction_negation_and_order_within_one_currency(currency: str, a: int, b: int) -> None:
    # Given two amounts in one currency / When subtracted, negated, compared / Then as their integers
    x, y = Money(a, currency), Money(b, currency)
    assert x - y == Money(a - b, currency)
    assert x - y == x + -y
    assert (x < y, x <= y, x > y, x >= y) == (a < b, a <= b, a > b, a >= b)
    assert abs(-x) == Money(abs(a), currency)


@given(two_currencies(), minors, minors)
def test_arithmetic_across_currencies_raises(pair: tuple[str, str], a: int, b: int) -> None:
    # Given amounts in two different currencies
    x, y = Money(a, pair[0]), Money(b, pair[1])
    # When added, subtracted, compared or summed / Then CurrencyMismatch: no implicit exchange rate
    for operation in (lambda: x + y, lambda: x - y, lambda: x < y, lambda: x >= y, lambda: sum([x, y])):
        with pytest.raises(CurrencyMismatch):
            operation()
    # and equality is simply False, never an error
    assert x != y


def test_money_does_not_mix_with_plain_numbers() -> None:
    # Given an amount / When a bare number is added / Then TypeError (0 only starts sum())
    with pytest.raises(TypeError):
        Money(5, "USD") + 5  # type: ignore[operator]
    with pytest.raises(TypeError):
        1 + Money(5, "USD")  # type: ignore[operator]
    assert 0 + Money(5, "USD") == Money(5, "USD")


# --- the decimal string of the API ----------------------------------------------------------------
@given(currencies, order_minors)
def test_format_then_parse_round_trips_for_every_exponent(currency: str, minor: int) -> None:
    # Given any order amount in any currency / When formatted and parsed back / Then the same Money
    amount = Money(minor, currency)
    text = amount.format()
    assert Money.parse(text, currency) == amount
    # the string has exactly the currency's fraction digits, and is the same decimal
    digits = MINOR_UNITS[currency]
    assert (len(text.split(".")[1]) if "." in text else 0) == digits
    assert amount.to_decimal() == Decimal(minor).scaleb(-digits)
    # and Money agrees with the functions the API has always used
    assert (parse_amount(text, currency), format_minor(minor, currency)) == (minor, text)


@pytest.mark.parametrize(
    ("text", "currency", "minor", "canonical"),
    [
        ("19.99", "USD", 1999, "19.99"),
        ("5", "USD", 500, "5.00"),
        ("5", "JPY", 5, "5"),
        ("1.25", "KWD", 1250, "1.250"),
        ("0.0001", "CLF", 1, "0.0001"),
    ],
)
def test_parse_and_format_examples(text: str, currency: str, minor: int, canonical: str) -> None:
    # Given API decimal strings / When parsed / Then minor units; formatted back: the canonical string
    assert Money.parse(text, currency) == Money(minor, currency)
    assert Money(minor, currency).format() == canonical
    assert str(Money(minor, currency)) == f"{canonical} {currency}"


@pytest.mark.parametrize(
    ("text", "currency"), [("19.999", "USD"), ("1.5", "JPY"), ("0", "USD"), ("-1", "USD"), ("1e3", "USD")]
)
def test_parse_refuses_what_the_api_refuses(text: str, currency: str) -> None:
    # Given strings the contract refuses / When parsed as Money / Then InvalidAmount
    with pytest.raises(InvalidAmount):
        Money.parse(text, currency)
