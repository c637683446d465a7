"""Idempotency-Key semantics: replay, reuse with another body, concurrent duplicates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3

from payments.kernel.config import settings
from payments.payin.repository import PaymentsRepository
from payments.psp.simulator import SimulatedPsp
from tests.integration.conftest import assert_problem, checkout, wait_done


def executions_named(runtime, name: str) -> int:
    sfn = boto3.client("stepfunctions", endpoint_url=runtime.aws_url, region_name="us-east-1")
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=settings().state_machine_arn)
    return sum(1 for page in pages for e in page["executions"] if e["name"] == name)


def test_replaying_a_request_returns_the_first_answer_and_starts_nothing_new(api, runtime):
    # Given an accepted checkout
    body = checkout()
    first = api.pay(body, "replay-" + body["checkout_id"])
    assert first.status == 202
    wait_done(api, body["checkout_id"])
    # When the same request is sent again with the same key
    second = api.pay(body, "replay-" + body["checkout_id"])
    # Then the answer is the first one, status and body, and there is still one execution
    assert (second.status, second.body) == (first.status, first.body)
    assert second.headers["Location"] == first.headers["Location"]
    assert executions_named(runtime, body["checkout_id"]) == 1


def test_reusing_a_key_with_another_body_is_a_problem_and_stores_nothing(api):
    # Given a key used for one checkout
    body = checkout()
    key = "reuse-" + body["checkout_id"]
    assert api.pay(body, key).status == 202
    # When the same key comes with a different body
    other = checkout()
    reply = api.pay(other, key)
    # Then the problem's type says the key was reused, and the other checkout does not exist
    assert_problem(reply, 422, ":idempotency-key-reused", "header Idempotency-Key")
    assert PaymentsRepository().find(other["checkout_id"]) is None
    wait_done(api, body["checkout_id"])


def test_concurrent_duplicates_produce_exactly_one_payment(api, runtime):
    # Given one checkout sent 8 times at once with the same key (a nervous shopper, a retrying client)
    body = checkout(orders=[("seller_concurrent", "9.99", "USD")])
    key = "conc-" + body["checkout_id"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: api.pay(body, key), range(8)))
    # Then every answer is the payment (202) or "in progress, retry" (409), never anything else
    statuses = sorted(r.status for r in replies)
    assert set(statuses) <= {202, 409}, [(r.status, r.body) for r in replies]
    assert 202 in statuses
    for reply in replies:
        if reply.status == 409:
            assert reply.body["type"].endswith(":request-in-progress") and reply.headers.get("Retry-After") == "1"
    # And there is one payment, one execution, one charge
    wait_done(api, body["checkout_id"])
    assert executions_named(runtime, body["checkout_id"]) == 1
    order_id = body["payment_orders"][0]["payment_order_id"]
    assert sum(1 for c in SimulatedPsp().all_charges() if c["merchant_reference"] == order_id) == 1
    # And a retry after the race returns the accepted answer
    assert api.pay(body, key).status == 202


def test_the_same_checkout_under_another_key_is_a_conflict(api):
    body = checkout()
    assert api.pay(body, "a-" + body["checkout_id"]).status == 202
    reply = api.pay(body, "b-" + body["checkout_id"])
    assert_problem(reply, 409, ":resource-conflict", "checkout_id")
    wait_done(api, body["checkout_id"])


def test_a_payment_order_id_is_unique_across_the_system(api):
    # Given an accepted checkout
    first = checkout()
    assert api.pay(first, "k-" + first["checkout_id"]).status == 202
    # When another checkout reuses its second payment_order_id
    second = checkout()
    second["payment_orders"][1]["payment_order_id"] = first["payment_orders"][1]["payment_order_id"]
    reply = api.pay(second, "k-" + second["checkout_id"])
    # Then it is a conflict naming that field, and nothing of the second checkout is stored
    assert_problem(reply, 409, ":resource-conflict", "payment_orders[1].payment_order_id")
    repo = PaymentsRepository()
    assert repo.find(second["checkout_id"]) is None
    assert repo.find_order(second["payment_orders"][0]["payment_order_id"]) is None
    wait_done(api, first["checkout_id"])
