"""Raw card numbers (PANs) anywhere in a request body are found, by field path (payments/kernel/pan.py)."""

from __future__ import annotations

import re

import pytest

from payments.kernel.pan import contains_pan, find_pans, luhn_valid

VISA, MASTERCARD, AMEX, DISCOVER = "4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"


def _checkout(**order_overrides: object) -> dict[str, object]:
    return {
        "checkout_id": "chk_7Hq2",
        "buyer_info": {"buyer_id": "buyer_42", "email": "a@example.com"},
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": [
            {"payment_order_id": "po_1", "seller_account": "seller_books", "amount": "19.99", "currency": "USD"},
            {
                "payment_order_id": "po_2",
                "seller_account": "seller_toys",
                "amount": "5.00",
                "currency": "USD",
                **order_overrides,
            },
        ],
    }


# --- Luhn ---------------------------------------------------------------------------------
@pytest.mark.parametrize("pan", [VISA, MASTERCARD, AMEX, DISCOVER, "4012888888881881", "4222222222222", "79927398713"])
def test_luhn_accepts_known_valid_numbers(pan: str) -> None:
    # Given a number with a correct Luhn check digit / When checked / Then it is valid
    assert luhn_valid(pan) is True


@pytest.mark.parametrize(
    "number",
    ["4111111111111112", "5555555555554445", "378282246310006", "6011111111111118", "1234567890123", "79927398710"],
)
def test_luhn_rejects_a_wrong_check_digit(number: str) -> None:
    # Given a number whose last digit is off / When checked / Then it is invalid
    assert luhn_valid(number) is False


# --- what is flagged ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        VISA,
        MASTERCARD,
        AMEX,
        DISCOVER,
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        f"card {VISA} please",
        f"x{VISA}y",
        f"{VISA} 2345",
        "6011-1111-1111-1117",
    ],
)
def test_contains_pan_finds_card_numbers_with_or_without_separators(text: str) -> None:
    # Given text holding a Luhn-valid 13-19 digit run (single spaces or dashes allowed)
    # When scanned / Then a PAN is found
    assert contains_pan(text) is True


def test_find_pans_names_the_field_path_in_nested_lists_and_dicts() -> None:
    # Given a checkout body with PANs in a seller account of the second order and in the buyer's email
    body = _checkout(seller_account="4111 1111 1111 1111")
    body["buyer_info"]["email"] = f"{MASTERCARD}@example.com"  # type: ignore[index]
    # When scanned
    found = find_pans(body)
    # Then exactly those field paths are reported, in document order
    assert found == ["buyer_info.email", "payment_orders[1].seller_account"]


def test_find_pans_finds_a_card_number_sent_as_a_json_integer() -> None:
    # Given a PAN sent as a JSON number
    body = _checkout(amount=int(VISA))
    # When scanned / Then the amount field is reported
    assert find_pans(body) == ["payment_orders[1].amount"]


def test_find_pans_finds_a_card_number_sent_as_a_json_float() -> None:
    # Given a PAN sent as a JSON number with a fraction (json.loads makes it a float);
    # the module promises "in any string or number"
    body = {"payment_method": {"type": "card", "number": 4111111111111111.0}}
    # When scanned / Then it is reported like the integer form
    assert find_pans(body) == ["payment_method.number"]


def test_find_pans_finds_a_card_number_in_a_top_level_string_and_a_bare_list() -> None:
    # Given a body that is a bare string / a bare list / When scanned / Then the path says where
    assert find_pans(VISA) == ["(body)"]
    assert find_pans(["tok_visa", AMEX]) == ["[1]"]


def test_find_pans_flags_a_card_number_used_as_a_key() -> None:
    # Given a PAN used as a key inside buyer_info
    body = _checkout()
    body["buyer_info"][VISA] = "x"  # type: ignore[index]
    # When scanned
    found = find_pans(body)
    # Then one finding is reported, under buyer_info
    assert len(found) == 1
    assert found[0].startswith("buyer_info")


def test_find_pans_findings_never_carry_the_card_digits() -> None:
    # Given PANs used as keys (the findings are logged and returned in the 422 problem)
    body = {"buyer_info": {VISA: "x"}, MASTERCARD: {"note": AMEX}}
    # When scanned
    found = find_pans(body)
    # Then there are findings, and none of them repeats a card number (the module says:
    # "findings carry field paths, never digits")
    assert len(found) >= 2
    for path in found:
        assert not contains_pan(path), path
        assert not re.search(r"\d{13}", path), path


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111 12/28",  # card number followed by its expiry date
        "4111 1111 1111 1111 12/28 123",  # ... and its CVC
        "4111111111111111 1",  # followed by a lone digit
        "1 4111111111111111",  # preceded by a quantity
        "378282246310005 1234",  # Amex followed by a four-digit code
    ],
)
def test_contains_pan_finds_a_card_number_next_to_other_digit_groups(text: str) -> None:
    # Given a Luhn-valid PAN separated by a space from neighbouring digits (the 13-19 digit run
    # the module describes is there, but a longer, Luhn-invalid run also starts or ends at it)
    # When scanned
    # Then the PAN is still found
    assert contains_pan(text) is True


def test_find_pans_finds_a_card_number_written_with_its_expiry_in_a_field() -> None:
    # Given a seller account holding "number expiry" as a shopper might type it
    body = _checkout(seller_account="4111 1111 1111 1111 12/28")
    # When scanned / Then the field is reported
    assert find_pans(body) == ["payment_orders[1].seller_account"]


# --- what is not flagged --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "tok_visa",
        "tok_mastercard",
        "tok_pspTimeout",
        "po_1234567890123",  # 13 digits, Luhn-invalid
        "chk_4111111111111112",  # 16 digits, Luhn-invalid
        "1234567890123456789",  # 19 digits, Luhn-invalid
        "41111111111111110",  # 17 digits, Luhn-invalid (a PAN with one digit appended)
        "411111111111",  # 12 digits: too short, whatever Luhn says
        "41111111111111111111",  # 20 digits: too long to be a PAN
        "19.99",
        "100000000000.00",
        "5.00",
        "2026-11-30T12:34:56.789Z",
        "2026-11-30",
        "+1 555 0100",
        "a@example.com",
        "seller_books",
        "",
    ],
)
def test_contains_pan_ignores_tokens_ids_amounts_and_timestamps(text: str) -> None:
    # Given text with no Luhn-valid 13-19 digit run / When scanned / Then nothing is found
    assert contains_pan(text) is False


def test_find_pans_reports_nothing_for_a_clean_checkout() -> None:
    # Given the contract's example checkout, with a Luhn-invalid long id and a booleans/None/numbers
    body = _checkout(payment_order_id="po_1234567890123")
    body["flags"] = [True, False, None, 19.99, 1999]
    # When scanned / Then nothing is found
    assert find_pans(body) == []


def test_find_pans_ignores_booleans() -> None:
    # Given booleans (True is the int 1) / When scanned / Then nothing is found and nothing breaks
    assert find_pans({"a": True, "b": [False]}) == []
