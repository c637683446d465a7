"""Raw card numbers (PANs) anywhere in a request body are found, by field path (payments/kernel/pan.py),
and values that are not card numbers (UUIDs, ULIDs, timestamps, dated ids, invoice ids, phone numbers) are not."""

from __future__ import annotations

import re

import pytest

from payments.kernel import pan
from payments.kernel.pan import (
    ISSUER_RANGES,
    MACHINE_HEX_LENGTHS,
    contains_pan,
    find_pans,
    in_issuer_range,
    is_card_number,
    is_iban,
    luhn_valid,
    machine_random,
    redacted,
)

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
        f"{VISA} 2345",
        "6011-1111-1111-1117",
    ],
)
def test_contains_pan_finds_card_numbers_with_or_without_separators(text: str) -> None:
    # Given text holding a card number, contiguous or in its printed groups
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


# --- the policy: issuer ranges, printed groupings, any run of separators, any digit script -----------
VISA_19 = "4111111111111111110"  # a 19-digit Visa number (Luhn-valid)
DINERS_14 = "30569309025904"


@pytest.mark.parametrize(
    "text",
    [
        "4111    1111    1111    1111",  # four spaces: the old policy allowed runs of three at most
        "4111          1111 1111\t1111",
        "4111 - 1111 - 1111 - 1111",
        "4111\u00a0\u00a01111\u202f1111\u30001111",  # no-break, narrow no-break and ideographic spaces
        "4111\u200b1111\u200b1111\u200b1111",  # zero-width spaces
        "4111\u20131111\u20141111\u22121111",  # en dash, em dash, minus sign
        "4111__1111__1111__1111",
        "4111 / 1111 / 1111 / 1111",
        "4111.1111.1111.1111",
        "41111111 11111111",  # 8-8
        "4111 1111 1111 1111 110",  # 4-4-4-4-3, a 19-digit Visa
        VISA_19,
        "3782 822463 10005",  # 4-6-5, Amex
        "3056 930902 5904",  # 4-6-4, Diners
        DINERS_14,
        "".join(chr(0x0966 + int(c)) for c in VISA),  # Devanagari
        "".join(chr(0x0E50 + int(c)) for c in "5555 5555 5555 4444" if c != " "),  # Thai
        "".join(chr(0x1D7CE + int(c)) if c.isdigit() else c for c in "4111 1111 1111 1111"),  # mathematical bold
        f"pan:{VISA}",
        f"po_{VISA}",
        f"({VISA})",
        f"card number: {VISA}, exp 12/28",
        "2223 0031 2200 3222",  # Mastercard 2-series
        "6200000000000005",  # UnionPay
        "2200 0000 0000 0004",  # Mir
    ],
)
def test_a_card_number_in_its_printed_groups_with_any_run_of_separators_is_found(text: str) -> None:
    # Given a card number as people type or paste it / When scanned / Then it is found
    assert contains_pan(text) is True


@pytest.mark.parametrize(
    "digits",
    [
        "0000000000000000",  # Luhn-valid, but no scheme issues numbers starting with 0
        "7000000000000005",  # 7: no card scheme (ISO/IEC 7812 petroleum)
        "5105105105102",  # Mastercard's 51-55 are 16 digits long, never 13
        "34123456789015",  # Amex is 15 digits long, never 14
        "411111111111116",  # Visa is 13, 16 or 19 digits long, never 15
        "99999999999999996",  # 9: national assignment, no scheme of the table at this length
    ],
)
def test_a_luhn_valid_run_outside_every_issuer_range_is_not_a_card_number(digits: str) -> None:
    # Given 13-19 digits that pass Luhn but that no scheme issues (prefix or length)
    assert luhn_valid(digits)
    # When checked / Then it is no card number
    assert is_card_number(digits) is False
    assert contains_pan(digits) is False


def test_every_issuer_range_is_documented_consistently() -> None:
    # Given the table of issuer ranges / Then each range is ordered, of one prefix length, of PAN lengths
    for low, high, lengths, scheme in ISSUER_RANGES:
        assert scheme and low.isdigit() and high.isdigit() and len(low) == len(high) and low <= high, scheme
        assert lengths and all(13 <= length <= 19 for length in lengths), scheme
    # And a range spanning two first digits holds numbers of both
    assert in_issuer_range("5" + "6" * 15) and in_issuer_range("6" + "9" * 15)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 11111111",  # 4-4-8: no grouping of a card
        "41 11 11 11 11 11 11 11",
        "4111-1111-1111",  # 12 digits
    ],
)
def test_digit_groups_in_no_printed_grouping_are_not_a_card_number(text: str) -> None:
    # Given a Luhn-valid card number cut into groups no card is printed or typed in
    # When scanned / Then it is not taken for a card number
    assert contains_pan(text) is False


@pytest.mark.parametrize(
    "text",
    [
        # UUIDs the old policy refused (their digit groups joined into a Luhn-valid run)
        "ef72c853-7278-4150-808e-32c1afec042d",
        "41bbe15a-90e5-4906-8732-2774b438f361",
        "0214c162-3354-7261-9422-279a3cc36304",  # v7
        "01526237-1309-7348-9081-1daf220782c8",  # v7
        "ef72c85372784150808e32c1afec042d",  # a UUID written without dashes
        # ISO 8601 timestamps
        "2012-09-08 16:39:22.364056224",
        "20340308T152510.152+0000",
        "2083-10-26T15:16:30.742278758+06:45",
        # date-stamped and invoice-like ids
        "order-2026-12-02-000123",
        "batch/2015/03/02/857106",
        "ord_20391021380240",
        "order-2095.10.14-571624",
        "20440612-262869",
        "INV-123456789-12345",
        "INV-203325033-61340",
        "inv_695666266_38785",
        # phone numbers, E.164 and national formats
        "+2349282357416",
        "+436826980134110",
        "+8808652237601",
        "+62618531344491",
        "+234 474 855 4565",
        "00353 7457 7996448",
        "0043 0860 3541700",
        "(415) 555-2671",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ],
)
def test_ids_timestamps_and_phone_numbers_are_not_card_numbers(text: str) -> None:
    # Given an honest value, many of which the old policy refused / When scanned / Then nothing is found
    assert contains_pan(text) is False


def test_a_field_path_of_four_short_numeric_keys_is_redacted() -> None:
    # Given a field path whose keys, each four digits, spell a card number once joined by dots
    # When redacted / Then its digits are masked; an honest path is left as it is
    assert redacted("4111.1111.1111.1111") == "####.####.####.####"
    assert redacted("payment_orders[1].amount") == "payment_orders[1].amount"


# --- a card number glued to a word, and the machine-made words whose digit runs are not ----------
@pytest.mark.parametrize(
    "text",
    [
        f"card{VISA}",
        f"Card{VISA}please",
        f"visa{VISA}exp1226",
        f"x{VISA}y",
        f"abc{VISA}",  # hex letters, but 19 characters: no machine-made length
        f"cc{VISA}",
        f"face{VISA}",
        f"{VISA}exp",
        f"pan{AMEX}",
        f"ORD{MASTERCARD}",  # an id that glues letters to a card number cannot be told from a leak
        f"order_ref=x{DISCOVER}",
        "visa" + "".join(chr(0xFF10 + int(c)) for c in VISA),  # full-width digits
        "\u30ab\u30fc\u30c9" + VISA,  # after a katakana word
        f"cardnumber{VISA_19}cvv123",
        f"DINERS{DINERS_14}",
        f"01ARZ3NDEKTSV4RRFFQ69G5FA{VISA}",  # a ULID's 26 characters are not the whole word
        f"deadbeef{VISA}cafe",  # hex, 28 characters: no machine-made length
    ],
)
def test_a_card_number_glued_to_a_word_is_found(text: str) -> None:
    # Given a card number typed right after (or before) a word, as people leak it
    # When scanned / Then it is found
    assert contains_pan(text) is True


def test_a_card_number_glued_to_a_word_is_reported_by_field_path() -> None:
    # Given a checkout whose seller account glues a card number to letters
    body = _checkout(seller_account=f"card{VISA}")
    # When scanned / Then the field is reported
    assert find_pans(body) == ["payment_orders[1].seller_account"]


def _hex_words_with_a_card_run() -> list[str]:
    """Hex words of machine-made lengths whose glued digit run is a card number (what the exemption is for)."""
    words = []
    for length in sorted(MACHINE_HEX_LENGTHS):
        card = AMEX if length == 16 else VISA
        for head in ("a", "f", "0x" + "b"):
            word = (head + card).ljust(length + (2 if head.startswith("0x") else 0), "e")
            assert len(word) == length + (2 if head.startswith("0x") else 0)
            words.append(word.upper() if length == 40 else word)
    return words


@pytest.mark.parametrize(
    "text",
    [
        # hex digests and random ids whose glued digit run of 16 is Luhn-valid and in an issuer range
        *_hex_words_with_a_card_run(),
        f"sha256:e{VISA}" + "0" * 47,
        f"idempotency-key-{'c' + VISA + 'c' * 15}",  # a 32-hex token (a UUID written without dashes)
        # ULIDs, either case, whose digit run is a card number
        f"01{VISA}ABCDEFGH",
        f"po_01{VISA}abcdefgh",
        f"7Z{VISA}HJKMNPQR",
        # honest machine-made values with digit runs glued to letters, none of them a card number
        "a3f1c0d2e4b5968778695a4b3c2d1e0f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
        "cm2026r1764035000_po_00001_2",
        "20340308T152510.152+0000",
        "ORD20261202000123",  # a date and a sequence number glued to letters: in no issuer range
    ],
)
def test_machine_made_words_whose_digit_runs_look_like_card_numbers_are_not_refused(text: str) -> None:
    # Given a ULID, a hex digest or a random hex id (or a plain id) whose digit run passes Luhn and the
    # issuer range / When scanned / Then it is not taken for a card number
    assert contains_pan(text) is False


@pytest.mark.parametrize(
    ("word", "machine_made"),
    [
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", True),
        ("01arz3ndektsv4rrffq69g5fav", True),
        ("81ARZ3NDEKTSV4RRFFQ69G5FAV", False),  # a ULID's first character is 0-7 (its 48-bit time)
        ("01ARZ3NDEKTSV4RRFFQ69G5FAI", False),  # I is no Crockford base32 character
        ("01ARZ3NDEKTSV4RRFFQ69G5FA", False),  # 25 characters
        ("ef72c85372784150808e32c1afec042d", True),
        ("EF72C85372784150808E32C1AFEC042D", True),
        ("0xef72c85372784150808e32c1afec042d", True),
        ("ef72c85372784150808e32c1afec042", False),  # 31 hex characters
        ("ef72c85372784150808e32c1afec042g", False),  # g is no hex digit
        ("0123456789abcdef", True),
        ("0123456789abcdef0", False),
        ("card4111111111111111", False),
    ],
)
def test_machine_random_words_are_ulids_and_hex_of_digest_and_id_lengths(word: str, machine_made: bool) -> None:
    # Given a word of letters and digits / When its shape is checked / Then only ULIDs and hex of the listed lengths pass
    assert machine_random(word) is machine_made


@pytest.mark.parametrize(
    "text",
    [
        "card4111 1111 1111 1111",
        "Card:4111-1111-1111-1111",
        "4111 1111 1111 1111exp",
        "card4111 1111 1111 1111exp1228",
        "Visa4111-1111-1111-1111",
        "pan4111.1111.1111.1111",
        "karte4111 / 1111 / 1111 / 1111",
        "card41111111 11111111",  # 8-8
        "card4111 1111 1111 1111 110",  # 4-4-4-4-3
        f"amex{AMEX[:4]} {AMEX[4:10]} {AMEX[10:]}",  # 4-6-5
        f"diners{DINERS_14[:4]}-{DINERS_14[4:10]}-{DINERS_14[10:]}",  # 4-6-4
        "\u30ab\u30fc\u30c9"
        + "\uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11",
        "cardabc4111 1111 1111 1111",  # hex letters, but glued after "r"
    ],
)
def test_a_printed_grouping_glued_to_a_word_is_found(text: str) -> None:
    # Given a card number in its printed groups whose first or last group is glued to a word holding a
    # letter that is no hex digit / When scanned / Then it is found
    assert contains_pan(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "abcd4111-1111-4111-8003-0123456789ab",  # a UUID whose 4-4-4-4 inside is a Visa number (4111111141118003)
        "ABCD4111-1111-4111-8003-0123456789AB",
        "chk_abcd4111-1111-4111-8003-0123456789ab",
        "0123456789ab-4111-1111-4111-8003fedc",  # the card's last group glued to hex letters
        "cc4111 1111 1111 1111",  # only hex letters glued: could be a hex id's group
        "deadbeef4111 1111 1111 1111",
        "0x4111 1111 1111 1111",  # a hex literal
        "01ARZ3NDEKTSV4RRFFQ6914111-1111-1111-1111",  # a ULID's digit run
    ],
)
def test_a_grouping_glued_to_hex_letters_is_not_a_card_number(text: str) -> None:
    # Given groups that form a card number's printed grouping, the first or last glued to letters that can
    # all be hex digits (a UUID's 8-4-4-4-12 groups, a hex id, a ULID)
    assert is_card_number("4111111141118003")
    # When scanned / Then it is not refused
    assert contains_pan(text) is False


# --- every disguise the policy of commit 7374d8a refused in its tests, refused still ------------------
_FULL_WIDTH_MC = "".join(chr(0xFF10 + int(c)) for c in "5555555555554444")
_ARABIC_INDIC_MC = "".join(chr(0x0660 + int(c)) for c in "5555555555554444")

#: every text the tests of commit 7374d8a (tests/unit/kernel/test_pan.py, tests/unit/dev/test_card_number_scan.py,
#: tests/unit/payin/test_request_guard.py, tests/integration/test_bad_input.py, tests/unit/payin/test_payment_api.py,
#: tests/unit/refunds/test_refund_api.py, tests/unit/kernel/test_money.py) expected to be refused as a card
#: number, copied as data; and the grouping glued to a word, which that policy refused too (a letter ended a
#: digit run there, the groups after it were joined)
DISGUISES_REFUSED_AT_7374D8A = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "3782 822463 10005",
    "card 4111111111111111 please",
    "x4111111111111111y",
    "4111111111111111 2345",
    "6011-1111-1111-1117",
    "4111 1111 1111 1111 12/28",
    "4111 1111 1111 1111 12/28 123",
    "4111111111111111 1",
    "1 4111111111111111",
    "378282246310005 1234",
    "5555555555554444@example.com",
    "4111111111111111.0",  # a JSON float, as str() writes it
    "4242424242424242",
    "4242_4242_4242_4242",
    "4242.4242.4242.4242",
    "4242 / 4242 / 4242 / 4242",
    f"chk_{_FULL_WIDTH_MC}",
    "psp_4242424242424242",
    f"card {_FULL_WIDTH_MC}",
    f"{_FULL_WIDTH_MC}@example.com",
    f"{_ARABIC_INDIC_MC}@example.com",
    "4242/4242/4242/4242",
    "4242  4242  4242  4242",
    "4242\u00a04242\u00a04242\u00a04242",
    "4242-4242-4242-4242",
    "4242 4242 4242 4242",
    "/v1/payments/4242424242424242",
    "/v1/payments/4242_4242_4242_4242",
    "/v1/wallets/4242-4242-4242-4242",
    "/v1/refunds/4111111111111111",
    # groupings glued to a word
    "card4111 1111 1111 1111",
    "Card:4111-1111-1111-1111",
    "card4111-1111-1111-1111",
    "4111 1111 1111 1111exp",
]

#: what 7374d8a refused that is no card number under the contract (13-19 digits, Luhn, issuer range,
#: contiguous or grouped 4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, 8-8): two numeric keys of a field path
#: joined by a dot, 7 and 9 digits (its Luhn-valid 16 digits are in Visa's range, but 7-9 is no printed grouping)
REFUSED_AT_7374D8A_BUT_NO_CARD_NUMBER = ["4242424.424240002"]


@pytest.mark.parametrize("text", DISGUISES_REFUSED_AT_7374D8A)
def test_every_disguise_refused_before_is_refused(text: str) -> None:
    # Given a card number in a form the policy of commit 7374d8a refused / When scanned / Then it is refused
    assert contains_pan(text) is True


@pytest.mark.parametrize("text", REFUSED_AT_7374D8A_BUT_NO_CARD_NUMBER)
def test_what_was_refused_before_but_is_no_card_number_is_let_through(text: str) -> None:
    # Given digit groups in no printed grouping whose digits together pass Luhn in an issuer range
    assert is_card_number(re.sub(r"\D", "", text))
    # When scanned / Then it is not refused
    assert contains_pan(text) is False


#: valid IBANs of known banks (drawn with schwifty's IBAN.random) that hold a digit run or a printed
#: 4-4-4-4 grouping passing Luhn in an issuer range: honest account numbers, sent to the payout accounts
HONEST_IBANS_THAT_HOLD_A_CARD_SHAPE = [
    "SI56012393160285232",
    "DE73 5505 0120 1432 2170 89",
    "DK6492886055544575",
    "HU11 3058 2339 6149 7267 3537 0248",
    "GB41HAND39318923053202",
    "FI6721785886636910",
]


@pytest.mark.parametrize("iban", HONEST_IBANS_THAT_HOLD_A_CARD_SHAPE)
def test_a_valid_iban_is_an_account_number_not_a_card_number(iban: str) -> None:
    # Given a valid IBAN whose digits, read as the policy reads them, include a card number's shape
    candidates = [d for d in pan._candidates(iban) if is_card_number(d)]
    assert candidates, "the sample no longer holds a card shape: pick another"
    # When scanned / Then it is not refused: the value as a whole is an IBAN
    assert contains_pan(iban) is False and is_iban(iban)
    # But the same characters inside a longer text are still refused: only a value that is an IBAN is exempt
    assert contains_pan(f"iban {iban}") is True
    assert is_iban(iban[:-1] + ("1" if iban[-1] != "1" else "2")) is False  # a wrong last digit: no IBAN


def test_a_digest_id_never_reads_as_a_card_number_and_is_the_same_every_time() -> None:
    import hashlib

    from payments.kernel.pan import contains_pan, digest_id

    # Given a text whose plain digest, after its prefix, holds a card number (found by search)
    text = "PO20261210-00000000000000000019\nsha25"
    plain = "ST" + hashlib.sha256(text.encode()).hexdigest()[:20]
    assert contains_pan(plain)
    # When an id is drawn from it, Then it is another, with no card number, of the same length, every time
    drawn = digest_id("ST", text, 20)
    assert drawn != plain and not contains_pan(drawn) and len(drawn) == len(plain)
    assert drawn == digest_id("ST", text, 20)
    # and an id that never read as one is the plain digest's prefix
    assert digest_id("ST", "another", 20) == "ST" + hashlib.sha256(b"another").hexdigest()[:20]


def test_the_ids_of_payment_files_and_bank_reports_never_read_as_card_numbers() -> None:
    import hashlib
    from datetime import date

    from payments.kernel.pan import contains_pan
    from payments.payouts.bank import simulated
    from payments.payouts.bank.pain001 import message_id

    # Given a run whose plain MsgId would hold a card number (found by search), and a bank report likewise
    assert contains_pan("PO20261210-" + hashlib.sha256(b"run-12256").hexdigest()[:20])
    # Then neither id the system or its simulated bank names a file with does (CI40: an event carried one)
    assert not contains_pan(message_id("run-12256", date(2026, 12, 10), []))
    assert not contains_pan(simulated._report_id("ST", "PO20261210-00000000000000000019", "sha25"))
