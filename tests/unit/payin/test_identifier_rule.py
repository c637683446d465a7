"""One identifier rule end to end: 1-64 characters of ``[A-Za-z0-9_-]`` starting with a letter or a digit.

What the API accepts (bodies and paths, both APIs) is what the PSP's settlement report carries back
and the settlement parser reads, and what the reports show unchanged: an id the API accepts always
reconciles, and one that could not (``-abc``, ``_abc``) is refused at the API with a 422 naming the
field, storing nothing.
"""

from __future__ import annotations

import copy
import io
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from functions import registry
from payments.kernel.ids import IDENTIFIER_PATTERN, IDENTIFIER_RULE, is_identifier
from payments.payin.models import PaymentOrderIn, PaymentRequest
from payments.reconciliation import adyen, report
from payments.refunds.models import RefundRequest
from payments_dev.local.lambdas import LambdaContext
from tests.unit.payin.test_payment_api import BODY as PAYMENT
from tests.unit.payin.test_payment_api import event as payment_event
from tests.unit.refunds.test_refund_api import BODY as REFUND
from tests.unit.refunds.test_refund_api import api, call  # noqa: F401 - api: the refunds API fixture
from tests.unit.refunds.test_refund_api import event as refund_event

#: what no id may be: a leading '-' or '_' (a settlement row or a spreadsheet cannot carry it as it is)
LEADING = ["-abc", "_abc", "-", "_", "--po", "__init__"]
RULE_MESSAGE = "must be " + IDENTIFIER_RULE


def rule_message(field: str) -> str:
    """What a problem says of a field that breaks the rule: the field, then the rule."""
    return f"{field} {RULE_MESSAGE}"


def test_the_rule() -> None:
    for good in ("a", "7", "po_1", "chk-2026-12-02-000123", "A" * 64, "0_-"):
        assert is_identifier(good), good
    for bad in [*LEADING, "", "a" * 65, "a b", "a.b", "a:b", "é", "a\n", 7, None]:
        assert not is_identifier(bad), bad


@pytest.mark.parametrize("value", LEADING)
def test_the_models_refuse_an_id_that_does_not_start_with_a_letter_or_a_digit(value: str) -> None:
    # Given every identifier of a checkout set to the value
    data = copy.deepcopy(PAYMENT)
    data["checkout_id"] = value
    data["buyer_info"]["buyer_id"] = value
    data["payment_orders"][0].update(payment_order_id=value, seller_account=value)
    # When validated / Then each is refused at its own path
    with pytest.raises(ValidationError) as raised:
        PaymentRequest.model_validate(data)
    assert [(e["loc"], e["type"]) for e in raised.value.errors()] == [
        (("checkout_id",), "string_pattern_mismatch"),
        (("buyer_info", "buyer_id"), "string_pattern_mismatch"),
        (("payment_orders", 0, "payment_order_id"), "string_pattern_mismatch"),
        (("payment_orders", 0, "seller_account"), "string_pattern_mismatch"),
    ]
    # and so are a refund's
    with pytest.raises(ValidationError) as raised:
        RefundRequest.model_validate({**REFUND, "refund_id": value, "payment_order_id": value})
    assert [e["loc"] for e in raised.value.errors()] == [("refund_id",), ("payment_order_id",)]


def _payment(body: Any) -> dict[str, Any]:
    from functions.payment import handler

    response = handler.handler(payment_event(body), LambdaContext(registry.PAYMENT.local_name))
    return {"status": response["statusCode"], "body": json.loads(response["body"])}


@pytest.mark.parametrize("value", ["-abc", "_abc"])
def test_the_checkout_api_refuses_it_with_a_422_naming_the_field_and_stores_nothing(ddb: Any, value: str) -> None:
    # Given a checkout whose checkout_id and payment_order_id start with the character
    body = copy.deepcopy(PAYMENT)
    body["checkout_id"] = value
    body["payment_orders"][0]["payment_order_id"] = value + "1"
    # When it is posted
    answer = _payment(body)
    # Then it is a validation problem naming each field with the rule in words, quoting neither value
    assert answer["status"] == 422
    assert answer["body"]["type"] == "urn:payments:problem:validation-error"
    assert answer["body"]["errors"] == [
        {"field": "checkout_id", "message": rule_message("checkout_id")},
        {"field": "payment_orders[0].payment_order_id", "message": rule_message("payment_orders[0].payment_order_id")},
    ]
    assert value not in json.dumps(answer["body"])
    # and nothing was stored in any table
    for table in ddb.list_tables()["TableNames"]:
        assert ddb.scan(TableName=table)["Items"] == [], table


def test_the_path_refuses_it_too(ddb: Any) -> None:
    from functions.payment import handler

    evt = payment_event(None)
    evt.update(httpMethod="GET", path="/v1/payments/_abc", resource="/v1/payments/{checkout_id}", body=None)
    response = handler.handler(evt, LambdaContext(registry.PAYMENT.local_name))
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["errors"] == [{"field": "checkout_id", "message": rule_message("checkout_id")}]


@pytest.mark.parametrize("value", ["-rf_1", "_rf_1"])
def test_the_refunds_api_refuses_it_and_stores_nothing(api: Any, value: str) -> None:
    # Given a refund of a paid order whose refund_id starts with the character
    # When it is posted
    status, body, _ = call(api, refund_event("POST", "/v1/refunds", {**REFUND, "refund_id": value}))
    # Then it is a 422 naming refund_id, no workflow started, nothing stored
    assert status == 422 and body["errors"] == [{"field": "refund_id", "message": rule_message("refund_id")}]
    assert api.started == []
    assert call(api, refund_event("GET", "/v1/refunds/rf_1"))[0] == 404


def test_the_openapi_document_shows_the_rule() -> None:
    # Given the models' schemas, as `make openapi` writes them
    order = PaymentOrderIn.model_json_schema()["properties"]
    refund = RefundRequest.model_json_schema()["properties"]
    # Then every identifier carries the one pattern and its length
    for prop in (order["payment_order_id"], order["seller_account"], refund["refund_id"], refund["payment_order_id"]):
        assert (prop["pattern"], prop["minLength"], prop["maxLength"]) == (IDENTIFIER_PATTERN, 1, 64)
        assert "starting with a letter or a digit" in prop["description"]


def _documented_pattern() -> str:
    return str(PaymentOrderIn.model_json_schema()["properties"]["payment_order_id"]["pattern"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order_id=st.from_regex(_documented_pattern(), fullmatch=True),
    refund_id=st.from_regex(_documented_pattern(), fullmatch=True),
)
def test_every_id_the_api_accepts_is_read_back_from_the_settlement_report_and_shown_unchanged(
    order_id: str, refund_id: str
) -> None:
    # Given ids the API accepts (drawn from the pattern its OpenAPI document shows, within its length)
    if len(order_id) > 64 or len(refund_id) > 64:
        return
    PaymentOrderIn.model_validate(
        {"payment_order_id": order_id, "seller_account": order_id, "currency": "USD", "amount": "1.00"}
    )
    # When the PSP's Settlement Details Report carries them back: a charge and its refund
    out = io.StringIO()
    charge = {
        "psp_reference": "psp_0001",
        "merchant_reference": order_id,
        "currency": "USD",
        "amount_minor": 1000,
        "charged_at": "2026-11-30T10:00:00",
    }
    refunded = {
        "record_type": "Refunded",
        "psp_reference": "psp_0001",
        "merchant_reference": order_id,
        "modification_reference": "psp_0002",
        "modification_merchant_reference": refund_id,
        "currency": "USD",
        "amount_minor": 400,
        "at": "2026-11-30T11:00:00",
    }
    adyen.write_report([charge], "2026-11-30", out, [refunded])
    header, settled, refund_row = out.getvalue().splitlines()[:3]
    layout = adyen.column_index(adyen.split_line(header))
    # Then the parser reads each row (none is rejected) with the ids as they were
    row = adyen.parse_row(adyen.split_line(settled), layout, 2)
    assert row.merchant_reference == order_id
    row = adyen.parse_row(adyen.split_line(refund_row), layout, 3)
    assert (row.merchant_reference, row.modification_merchant_reference) == (order_id, refund_id)
    # and the spreadsheet rendering of a report shows them unchanged (no formula escaping needed)
    assert report.safe_cell(order_id) == order_id and report.safe_cell(refund_id) == refund_id
    assert re.fullmatch(IDENTIFIER_PATTERN, order_id)
