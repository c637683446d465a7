"""batch_get: 100 keys per request, unprocessed keys asked again, never a partial answer (payments/kernel/dynamo.py)."""

from __future__ import annotations

from typing import Any

import pytest

from payments.kernel import dynamo
from payments.kernel.dynamo import batch_get, to_item
from payments.kernel.errors import StoreUnavailable


class ThrottlingClient:
    """Answers BatchGetItem from ``items``, leaving the last ``unprocessed`` keys of each of the
    first ``throttled_rounds`` requests unprocessed, as DynamoDB does under throttling."""

    def __init__(self, items: dict[str, dict[str, Any]], unprocessed: int, throttled_rounds: int):
        self.items, self.unprocessed, self.throttled_rounds = items, unprocessed, throttled_rounds
        self.requests: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # boto3's parameter name
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        assert request["ConsistentRead"] is True and len(keys) <= 100
        self.requests.append(len(keys))
        cut = len(keys) - self.unprocessed if len(self.requests) <= self.throttled_rounds else len(keys)
        found = [to_item(self.items[k["pk"]["S"]]) for k in keys[:cut] if k["pk"]["S"] in self.items]
        left = keys[cut:]
        return {
            "Responses": {table: found},
            "UnprocessedKeys": {table: {"Keys": left, "ConsistentRead": True}} if left else {},
        }


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff's sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(dynamo.time, "sleep", slept.append)
    return slept


def _keys(n: int) -> list[dict[str, str]]:
    return [{"pk": f"K#{i}", "sk": "V"} for i in range(n)]


def test_every_found_item_comes_back_once_in_requests_of_at_most_100_keys() -> None:
    # Given 250 keys of which the even ones exist
    client = ThrottlingClient(
        {f"K#{i}": {"pk": f"K#{i}", "sk": "V", "n": i} for i in range(0, 250, 2)}, unprocessed=0, throttled_rounds=0
    )
    # When read / Then each existing item once, in three requests
    got = sorted(item["n"] for item in batch_get(client, "t", _keys(250)))
    assert got == list(range(0, 250, 2))
    assert client.requests == [100, 100, 50]


def test_unprocessed_keys_are_asked_again_until_answered(sleeps: list[float]) -> None:
    # Given DynamoDB leaving 30 keys unprocessed on the first three requests
    client = ThrottlingClient(
        {f"K#{i}": {"pk": f"K#{i}", "sk": "V", "n": i} for i in range(100)}, unprocessed=30, throttled_rounds=3
    )
    # When read / Then nothing is missing: the unprocessed keys were asked again
    assert sorted(item["n"] for item in batch_get(client, "t", _keys(100))) == list(range(100))
    assert client.requests == [100, 30, 30, 30]
    assert sleeps == [0.05, 0.1, 0.2]  # a growing backoff before each new request, none before the first


def test_keys_that_stay_unprocessed_raise_store_unavailable_rather_than_a_partial_answer(sleeps: list[float]) -> None:
    # Given DynamoDB that never processes the last 5 keys
    client = ThrottlingClient(
        {f"K#{i}": {"pk": f"K#{i}", "sk": "V", "n": i} for i in range(10)}, unprocessed=5, throttled_rounds=10**6
    )
    # When read to the end / Then StoreUnavailable (transient: the caller's retry asks again)
    with pytest.raises(StoreUnavailable, match="5 keys of t stayed unprocessed"):
        batch_get(client, "t", _keys(10))
    assert len(client.requests) == dynamo.BATCH_GET_ROUNDS
    assert len(sleeps) == dynamo.BATCH_GET_ROUNDS - 1  # no pointless sleep after the last round
