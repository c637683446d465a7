"""Validation of POST /v1/payments bodies (payments/payin/models.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from payments.kernel.config import MAX_ORDERS_PER_CHECKOUT
from payments.payin.models import OrderRecord, PaymentRequest
from payments.payin.status import OrderStatus

VALID: dict[str, Any] = {
    "checkout_id": "chk_7Hq2",
    "buyer_info": {"buyer_id": "buyer_42", "email": "a@example.com"},
    "payment_method": {"type": "card", "token": "tok_visa"},
    "payment_orders": [
        {"payment_order_id": "po_1", "seller_account": "seller_books", "amount": "19.99", "currency": "USD"},
        {"payment_order_id": "po_2", "seller_account": "seller_toys", "amount": "5.00", "currency": "USD"},
    ],
}


def body(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(VALID)
    result.update(changes)
    return result


def errors_of(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as raised:
        PaymentRequest.model_validate(data)
    return [(e["loc"], e["type"]) for e in raised.value.errors()]


def test_the_contract_example_is_valid_and_parses_amounts_to_minor_units() -> None:
    # Given the contract's example body / When validated
    request = PaymentRequest.model_validate(copy.deepcopy(VALID))
    # Then it is accepted and amounts are exact minor units
    assert [o.amount_minor for o in request.payment_orders] == [1999, 500]
    assert request.duplicate_order_fields() == []


def test_amount_sent_as_a_json_number_is_rejected_at_its_path() -> None:
    # Given an amount sent as a number
    data = body()
    data["payment_orders"][1]["amount"] = 5.0
    # When validated / Then exactly that field fails as "not a string"
    assert errors_of(data) == [(("payment_orders", 1, "amount"), "string_type")]


def test_amount_with_more_digits_than_the_currency_allows_is_rejected() -> None:
    # Given a JPY amount with a fraction
    data = body()
    data["payment_orders"][0].update(amount="1.5", currency="JPY")
    # When validated
    with pytest.raises(ValidationError) as raised:
        PaymentRequest.model_validate(data)
    # Then the amount field fails with a message naming the currency's digits
    [error] = raised.value.errors()
    assert (error["loc"], error["type"]) == (("payment_orders", 0, "amount"), "value_error")
    assert str(error["ctx"]["error"]) == "must be a whole number: JPY has no minor units"


def test_zero_and_malformed_amounts_are_rejected() -> None:
    # Given a zero amount and an exponent amount / When validated / Then both paths fail
    # (the exponent already on the documented decimal pattern, the zero on the value rule)
    data = body()
    data["payment_orders"][0]["amount"] = "0.00"
    data["payment_orders"][1]["amount"] = "1e3"
    assert errors_of(data) == [
        (("payment_orders", 0, "amount"), "value_error"),
        (("payment_orders", 1, "amount"), "string_pattern_mismatch"),
    ]


@pytest.mark.parametrize(
    ("currency", "kind"),
    [("XYZ", "value_error"), ("BGN", "value_error"), ("usd", "string_pattern_mismatch"), ("US", "string_too_short")],
)
def test_invalid_currency_is_reported_on_the_currency_field_only(currency: str, kind: str) -> None:
    # Given an order whose currency is unknown, withdrawn or not canonical, with a well-formed amount
    data = body()
    data["payment_orders"][1]["currency"] = currency
    # When validated / Then only the currency field fails
    assert errors_of(data) == [(("payment_orders", 1, "currency"), kind)]


@pytest.mark.parametrize(
    ("where", "loc"),
    [
        (None, ("card_number",)),
        ("buyer_info", ("buyer_info", "card_number")),
        ("payment_method", ("payment_method", "card_number")),
    ],
)
def test_extra_fields_are_rejected(where: str | None, loc: tuple[str, ...]) -> None:
    # Given an unknown field at the top level or in a nested object
    data = body()
    (data if where is None else data[where])["card_number"] = "x"
    # When validated / Then it is refused as extra, at its path
    assert errors_of(data) == [(loc, "extra_forbidden")]


def test_an_unknown_field_in_an_order_is_rejected() -> None:
    data = body()
    data["payment_orders"][0]["tip"] = "1.00"
    assert errors_of(data) == [(("payment_orders", 0, "tip"), "extra_forbidden")]


def test_more_orders_than_the_bound_are_rejected() -> None:
    # Given MAX_ORDERS_PER_CHECKOUT + 1 orders
    orders = [
        {"payment_order_id": f"po_{i}", "seller_account": "seller_books", "amount": "1.00", "currency": "USD"}
        for i in range(MAX_ORDERS_PER_CHECKOUT + 1)
    ]
    # When validated / Then the list is too long
    assert MAX_ORDERS_PER_CHECKOUT == 50
    assert errors_of(body(payment_orders=orders)) == [(("payment_orders",), "too_long")]
    # and exactly the bound is accepted
    assert len(PaymentRequest.model_validate(body(payment_orders=orders[:50])).payment_orders) == 50


def test_a_checkout_without_orders_is_rejected() -> None:
    assert errors_of(body(payment_orders=[])) == [(("payment_orders",), "too_short")]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("chk 1", "string_pattern_mismatch"),
        ("chk/1", "string_pattern_mismatch"),
        ("", "string_too_short"),
        ("c" * 65, "string_too_long"),
        ("chk_é", "string_pattern_mismatch"),
    ],
)
def test_bad_identifiers_are_rejected(value: str, kind: str) -> None:
    # Given a checkout id, a payment order id and a seller account that are not plain identifiers
    data = body(checkout_id=value)
    data["payment_orders"][0]["payment_order_id"] = value
    data["payment_orders"][1]["seller_account"] = value
    # When validated / Then each is reported at its own path
    assert errors_of(data) == [
        (("checkout_id",), kind),
        (("payment_orders", 0, "payment_order_id"), kind),
        (("payment_orders", 1, "seller_account"), kind),
    ]


def test_an_identifier_of_64_characters_is_accepted() -> None:
    assert PaymentRequest.model_validate(body(checkout_id="c" * 64)).checkout_id == "c" * 64


@pytest.mark.parametrize("token", ["visa_123", "4111111111111111", "tok_", "tok_vi sa", "TOK_visa", "pm_visa"])
def test_payment_token_must_be_a_psp_token(token: str) -> None:
    # Given a payment method token that is not tok_<letters/digits/_>
    data = body(payment_method={"type": "card", "token": token})
    # When validated / Then the token field fails
    locs = [loc for loc, _ in errors_of(data)]
    assert locs == [("payment_method", "token")]


def test_payment_method_type_must_be_card() -> None:
    data = body(payment_method={"type": "bank", "token": "tok_visa"})
    assert errors_of(data) == [(("payment_method", "type"), "literal_error")]


def test_duplicate_order_ids_are_named_by_path_after_the_first() -> None:
    # Given order ids po_1, po_2, po_1, po_1
    orders = [
        {"payment_order_id": i, "seller_account": "seller_books", "amount": "1.00", "currency": "USD"}
        for i in ("po_1", "po_2", "po_1", "po_1")
    ]
    # When duplicates are asked for
    request = PaymentRequest.model_validate(body(payment_orders=orders))
    # Then every repeat after the first occurrence is named
    assert request.duplicate_order_fields() == [
        "payment_orders[2].payment_order_id",
        "payment_orders[3].payment_order_id",
    ]


def test_order_record_settles_internally_only_with_both_effects() -> None:
    # Given SUCCESS orders with and without their wallet/ledger flags, and a FAILED one
    base = OrderRecord(payment_order_id="po_1", checkout_id="chk_1", seller_account="s", amount_minor=1, currency="USD")
    # Then only final orders with their effects recorded are settled
    assert base.is_settled_internally is False
    assert (
        base.model_copy(update={"status": OrderStatus.SUCCESS, "wallet_updated": True}).is_settled_internally is False
    )
    assert (
        base.model_copy(
            update={"status": OrderStatus.SUCCESS, "wallet_updated": True, "ledger_updated": True}
        ).is_settled_internally
        is True
    )
    assert base.model_copy(update={"status": OrderStatus.FAILED}).is_settled_internally is True
    assert base.model_copy(update={"status": OrderStatus.EXECUTING}).is_settled_internally is False
