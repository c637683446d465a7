"""One model: the cost model's counts per checkout are the capacity model's, within 5 %.

Both read the cost bench's record (payments/ops/checkout_counts.json); the cost model prices the 3-order
checkout it holds (payments_dev.bench.cost.price), the capacity model sizes quotas, warm throughput and
throttles from the same record for any number of orders (payments.ops.capacity). Both count the client's GET
poll and the executor's wait on the PSP.
"""

from __future__ import annotations

import copy

import pytest

from payments.ops import capacity, measured
from payments_dev.bench import cost

LIMIT = 0.05


def test_the_cost_model_counts_what_the_capacity_model_counts_within_5_percent() -> None:
    # Given the cost model's priced counts and the capacity model's use per 3-order checkout
    differences = cost.agreement(cost.price())
    # Then every count is compared, and none differs by more than 5 %
    assert set(differences) == {
        "api_requests",
        "lambda_invocations",
        "lambda_seconds",
        "stepfunctions_starts",
        "stepfunctions_transitions",
        "dynamodb_wru",
        "dynamodb_rru",
    }
    assert {k: d for k, d in differences.items() if abs(d) > LIMIT} == {}


def test_a_cost_model_without_the_get_poll_is_caught() -> None:
    # Given a record whose checkout has no GET poll (as the cost model had before)
    record = copy.deepcopy(measured.record())
    three = record["checkouts"]["3"]
    del three["api_requests"]["GET"]
    del three["invocations"]["payment GET"]
    # Then the comparison fails on the API requests (1 against 2) and the invocations
    differences = cost.agreement(cost.price(record))
    assert differences["api_requests"] == pytest.approx(-0.5)
    assert differences["lambda_invocations"] < -LIMIT


def test_a_cost_model_without_the_psp_wait_is_caught() -> None:
    # Given the same record priced as if the executor did not wait on the PSP
    record = copy.deepcopy(measured.record())
    record["assumptions"]["psp_latency_ms"] = 0.0
    # Then the Lambda seconds it prices fall far below the capacity model's concurrency-seconds
    assert cost.agreement(cost.price(record))["lambda_seconds"] < -LIMIT


def test_both_models_count_the_get_poll_and_the_psp_wait() -> None:
    priced = cost.price()
    # the POST and the assumed GET poll, in the cost model's API Gateway line and the capacity model's throttle
    assert priced["priced"]["api_requests"] == 1 + capacity.GET_POLLS == capacity.api_requests(3)
    assert capacity.api_limits(480).rate == 480 * (1 + capacity.GET_POLLS) * capacity.HEADROOM
    # the executor's billed duration carries the PSP's answer time, in both
    assert priced["modelled_billed_ms"]["executor"] == capacity.DURATION_MS["executor"]
    assert capacity.DURATION_MS["executor"] >= capacity.PSP_LATENCY_MS == 300
    # and the cost model prices the GET's API request (USD 3.50 per million REST requests, recalled)
    assert priced["express/arm64"]["items_per_million"]["api_gateway_rest"] == pytest.approx(2 * 3.5)


def test_the_capacity_model_passes_through_both_measured_checkouts() -> None:
    # Given the record's 1- and 3-order checkouts, the model's line through them gives each back
    for n in measured.MEASURED_ORDERS:
        counts = measured.checkout(n)
        assert capacity.api_requests(n) == sum(counts["api_requests"].values())
        assert capacity.lambda_invocations(n) == sum(counts["invocations"].values())
        assert capacity.stepfunctions(n, "transitions") == counts["stepfunctions"]["transitions"]
        for table, use in capacity.TABLE_USE.items():
            assert use.write(n) == measured.table_units(counts, table, "wru")
            assert use.read(n) == measured.table_units(counts, table, "rru")
