"""The installed capacity model: what synthesis and payments preflight size a stage from."""

from __future__ import annotations

import json
import math
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
    # the POST and the GET poll the cost bench sends per checkout
    assert capacity.api_requests() == 2
    assert capacity.api_limits(500) == capacity.ApiLimits(rate=1_250, burst=2_500)
    assert capacity.api_limits(483) == capacity.ApiLimits(rate=1_208, burst=2_416)  # rounded up, never down


def test_warm_throughput_is_the_tables_use_at_the_target_never_below_dynamodbs_default():
    # the payments table: 30 WRU per 3-order checkout (as measured) x 500/s x 1.25 = 18,750, rounded up to 18,800
    assert capacity.payments_wru(3) == 30
    assert capacity.warm_throughput("payments_table", 500) == capacity.WarmThroughput(12_000, 18_800)
    # the ledger: 8 WRU per order (the transaction and three totals shards, transactional)
    assert capacity.ledger_wru(3) == 24
    assert capacity.warm_throughput("ledger_table", 500) == capacity.WarmThroughput(12_000, 15_000)
    # a table off the checkout's path, or no target: DynamoDB's default
    assert capacity.warm_throughput("reconciliation_table", 500) == capacity.WarmThroughput(12_000, 4_000)
    assert capacity.warm_throughput("ledger_table", 0) == capacity.WarmThroughput(12_000, 4_000)
    # at 5,000/s the payments table's reads pass the default too: 17 RRU (with the GET poll's) x 5,000 x 1.25
    assert capacity.payments_rru(3) == 17
    assert capacity.warm_throughput("payments_table", 5_000).read_units_per_second == 106_300


def test_per_function_concurrency_adds_up_to_the_checkouts():
    per_function = capacity.function_concurrency_seconds(3)
    assert sum(per_function.values()) == pytest.approx(capacity.lambda_concurrency_seconds(3))
    # the executor holds most of it: it waits on the PSP for every order
    assert max(per_function, key=per_function.__getitem__) == "executor"
    needed = capacity.concurrency_needed(500)
    assert needed == math.ceil(500 * capacity.lambda_concurrency_seconds(3) * capacity.HEADROOM)
    assert needed > 1_000  # over AWS's default 1,000: preflight asks for a raise
