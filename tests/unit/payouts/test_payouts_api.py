"""POST and GET /v1/payouts end to end in one process: the payouts API's handler (API Gateway events) against
moto's DynamoDB and KMS; available balances seeded as their own writer leaves them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions import registry
from payments.kernel.config import settings
from payments.payouts.accounts import PayoutAccountRequest, PayoutAccountsRepository
from payments_dev.local.lambdas import LambdaContext
from tests.unit.payouts.test_payout_accounts import event as account_event
from tests.unit.payouts.test_payouts_repository import SELLER, balance, seed_available

IBAN = "DE89370400440532013000"


def event(method: str, path: str, body: Any = None, key: str | None = "key-1") -> dict[str, Any]:
    evt = account_event(method, path, body)
    if key:
        evt["headers"]["Idempotency-Key"] = key
    return evt


def body(**fields: object) -> dict[str, object]:
    values: dict[str, object] = {"payout_id": "pt_1", "seller_account": SELLER, "currency": "EUR", "amount": "14.99"}
    return {k: v for k, v in {**values, **fields}.items() if v is not None}


@pytest.fixture()
def api(kms: Any) -> Any:
    from functions.payouts import handler

    return handler


@pytest.fixture()
def account(kms: Any) -> None:
    from payments.payouts.accounts import register

    register(
        SELLER, PayoutAccountRequest(iban=IBAN, account_holder="Books Ltd", currency="EUR"), PayoutAccountsRepository()
    )


def call(api: Any, evt: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = api.handler(evt, LambdaContext(registry.PAYOUTS.local_name))
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()} or response.get("headers", {})
    return response["statusCode"], json.loads(response["body"]), headers


def payouts_stored(ddb: Any) -> list[dict[str, Any]]:
    items = ddb.scan(TableName=settings().payouts_table)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("PAYOUT#")]


def test_a_payout_is_accepted_with_its_location_and_read_back(api, account, ddb):
    seed_available(ddb, SELLER, 2_499)
    status, resource, headers = call(api, event("POST", "/v1/payouts", body()))
    assert status == 202, resource
    assert headers["Location"] == "/v1/payouts/pt_1"
    assert resource | {"created_at": None} == {
        "payout_id": "pt_1",
        "seller_account": SELLER,
        "amount": "14.99",
        "currency": "EUR",
        "status": "PENDING",
        "failure_reason": None,
        "return_reason": None,
        "created_at": None,
    }
    got_status, got, _ = call(api, event("GET", "/v1/payouts/pt_1", key=None))
    assert got_status == 200 and got == resource
    assert balance(ddb) == (1_000, 1_499)


def test_the_same_key_and_body_again_answer_the_same_and_reserve_nothing_again(api, account, ddb):
    seed_available(ddb, SELLER, 5_000)
    first = call(api, event("POST", "/v1/payouts", body()))
    again = call(api, event("POST", "/v1/payouts", body()))
    assert first[0] == again[0] == 202 and first[1] == again[1]
    assert balance(ddb) == (5_000 - 1_499, 1_499)
    # the same key with another body: refused; the same payout_id under another key for another payout: a conflict
    status, problem, _ = call(api, event("POST", "/v1/payouts", body(amount="1.00")))
    assert status == 422 and problem["type"] == "urn:payments:problem:idempotency-key-reused"
    status, problem, _ = call(api, event("POST", "/v1/payouts", body(amount="1.00"), key="key-2"))
    assert status == 409 and problem["type"] == "urn:payments:problem:resource-conflict"
    assert [e["field"] for e in problem["errors"]] == ["payout_id"]
    assert balance(ddb) == (5_000 - 1_499, 1_499) and len(payouts_stored(ddb)) == 1


def test_amount_left_out_pays_all_that_is_available(api, account, ddb):
    seed_available(ddb, SELLER, 3_210)
    status, resource, _ = call(api, event("POST", "/v1/payouts", body(amount=None)))
    assert status == 202 and resource["amount"] == "32.10"
    assert balance(ddb) == (0, 3_210)


@pytest.mark.parametrize(
    ("available", "amount", "says"),
    [
        (1_000, "10.01", "at most 10.00 EUR is available"),
        (0, None, "nothing is available (0.00 EUR)"),
        (-250, "1.00", "negative (-2.50 EUR)"),
    ],
)
def test_more_than_available_is_a_422_saying_how_much_is(api, account, ddb, available, amount, says):
    if available:
        seed_available(ddb, SELLER, available)
    status, problem, _ = call(api, event("POST", "/v1/payouts", body(amount=amount)))
    assert status == 422 and problem["type"] == "urn:payments:problem:payout-exceeds-available", problem
    assert says in problem["detail"] and problem["errors"][0]["field"] == "amount"
    assert payouts_stored(ddb) == []


def test_no_payout_account_or_no_rail_is_a_409_saying_which(api, kms, ddb):
    seed_available(ddb, SELLER, 5_000)
    status, problem, _ = call(api, event("POST", "/v1/payouts", body()))
    assert status == 409 and problem["type"] == "urn:payments:problem:payout-not-possible", problem
    assert "no payout account for EUR" in problem["detail"]
    seed_available(ddb, SELLER, 5_000, "USD")
    status, problem, _ = call(api, event("POST", "/v1/payouts", body(currency="USD", payout_id="pt_2"), key="k2"))
    assert status == 409 and problem["detail"] == "No payout rail for USD."
    assert [e["field"] for e in problem["errors"]] == ["currency"]
    assert payouts_stored(ddb) == [] and balance(ddb) == (5_000, 0)


def test_an_account_marked_invalid_blocks_payouts(api, account, ddb):
    seed_available(ddb, SELLER, 5_000)
    PayoutAccountsRepository().mark_invalid(SELLER, "EUR", "payout p0 returned by the bank (AC04)")
    status, problem, _ = call(api, event("POST", "/v1/payouts", body()))
    assert status == 409 and "marked invalid" in problem["detail"]


def test_a_payout_id_longer_than_the_end_to_end_id_is_a_422_in_the_merchants_words(api, account, ddb):
    seed_available(ddb, SELLER, 5_000)
    status, problem, _ = call(api, event("POST", "/v1/payouts", body(payout_id="p" * 36)))
    assert status == 422 and problem["type"] == "urn:payments:problem:validation-error"
    (error,) = problem["errors"]
    assert error["field"] == "payout_id" and "1-35" in error["message"] and "EndToEndId" in error["message"]
    assert payouts_stored(ddb) == []


def test_an_unknown_payout_is_404(api, kms):
    status, problem, _ = call(api, event("GET", "/v1/payouts/pt_none", key=None))
    assert status == 404 and problem["detail"] == "No such payout."
