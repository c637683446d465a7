"""The installed capacity model: what synthesis and payments preflight size a stage from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payments.ops import capacity

CDK_JSON = Path(__file__).resolve().parents[3] / "cdk.json"


def test_the_models_prod_target_is_cdk_json_prod():
    stages = json.loads(CDK_JSON.read_text())["context"]["stages"]
    assert stages["prod"]["targetCheckoutsPerSecond"] == capacity.PROD_TARGET_CHECKOUTS_PER_S
    # and prod leaves its API throttle to the target (no hand-set value that could fall behind it)
    assert "apiRateLimit" not in stages["prod"] and "apiBurstLimit" not in stages["prod"]


def test_api_limits_are_two_requests_per_checkout_with_headroom_and_a_two_second_burst():
    assert capacity.api_limits(480) == capacity.ApiLimits(rate=1_200, burst=2_400)
    assert capacity.api_limits(483) == capacity.ApiLimits(rate=1_208, burst=2_416)  # rounded up, never down


def test_warm_throughput_is_the_tables_use_at_the_target_never_below_dynamodbs_default():
    # the payments table: 30 WRU per 3-order checkout x 480/s x 1.25 = 18,000
    assert capacity.payments_wru(3) == 30
    assert capacity.warm_throughput("payments_table", 480) == capacity.WarmThroughput(12_000, 18_000)
    # a table off the checkout's path, or no target: DynamoDB's default
    assert capacity.warm_throughput("reconciliation_table", 480) == capacity.WarmThroughput(12_000, 4_000)
    assert capacity.warm_throughput("ledger_table", 0) == capacity.WarmThroughput(12_000, 4_000)
    # at 5,000/s the payments table's reads pass the default too
    assert capacity.warm_throughput("payments_table", 5_000).read_units_per_second == 106_300


def test_per_function_concurrency_adds_up_to_the_checkouts():
    per_function = capacity.function_concurrency_seconds(3)
    assert sum(per_function.values()) == pytest.approx(capacity.lambda_concurrency_seconds(3))
    assert capacity.concurrency_needed(480) == 1_242  # over AWS's default 1,000: preflight asks for a raise
