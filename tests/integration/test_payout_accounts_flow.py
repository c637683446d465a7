"""Payout accounts on the local runtime, as a client: the real HTTP API, the payouts function,
moto's DynamoDB and KMS."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import boto3

from payments.kernel.config import settings
from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import REGION, LocalRuntime
from tests.integration.conftest import assert_problem, unique

IBAN = "DE89370400440532013000"
LEAKS = (IBAN, "DE89 3704 0044 0532 0130 00", "370400440532013000", "0532013000")


def path(seller: str) -> str:
    return f"/v1/sellers/{seller}/payout-account"


def account(**fields: object) -> dict[str, object]:
    return {"iban": IBAN, "bic": "COBADEFFXXX", "account_holder": "Books Ltd", "currency": "EUR", **fields}


def items_of(runtime: LocalRuntime, seller: str) -> list[dict[str, object]]:
    ddb = boto3.client("dynamodb", endpoint_url=runtime.aws_url, region_name=REGION)
    return ddb.query(
        TableName=settings().payout_accounts_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": seller}},
    )["Items"]


def test_put_then_get_answers_the_iban_masked_and_stores_it_encrypted(api: ApiClient, runtime: LocalRuntime):
    seller = unique("seller")
    # When a seller registers its payout account, then reads it
    put = api.request("PUT", path(seller), account())
    got = api.request("GET", path(seller))
    # Then both answer 200 with the IBAN masked, never in full
    assert put.status == 200 and got.status == 200, (put.body, got.body)
    assert put.body == got.body
    assert put.body["iban"] == "DE89 **** **** **** **30 00" and put.body["valid"] is True
    assert not any(leak in json.dumps(put.body) for leak in LEAKS)
    # And the stored item holds no form of it
    (item,) = items_of(runtime, seller)
    assert not any(leak in json.dumps(item) for leak in LEAKS)


def test_a_bad_iban_is_a_422_naming_it_and_nothing_is_stored(api: ApiClient, runtime: LocalRuntime):
    seller = unique("seller")
    for bad in ("DE88370400440532013000", "DE8937040044053201300", "DE65123456780532013000"):
        reply = api.request("PUT", path(seller), account(iban=bad))
        assert_problem(reply, 422, "validation-error", "iban")
        assert bad not in json.dumps(reply.body)
    reply = api.request("PUT", path(seller), account(bic="DEUTDEFFXXX"))
    assert_problem(reply, 422, "validation-error", "bic")
    assert items_of(runtime, seller) == []
    assert_problem(api.request("GET", path(seller)), 404, "not-found")


def test_a_repeated_put_is_idempotent_even_when_concurrent(api: ApiClient):
    seller = unique("seller")
    first = api.request("PUT", path(seller), account())
    # When the same request is sent again, ten times at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: api.request("PUT", path(seller), account()), range(10)))
    # Then every answer is the account as it was first registered: nothing was written again
    assert {r.status for r in replies} == {200}
    assert all(r.body == first.body for r in replies) and first.body["version"] == 1
