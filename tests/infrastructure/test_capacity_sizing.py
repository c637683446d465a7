"""Tables' warm throughput and the API throttle come from the stage's target (payments.ops.capacity)."""

from __future__ import annotations

import json

import pytest

from infra.app import build_app
from payments.kernel.tables import TABLES
from payments.ops import capacity
from tests.infrastructure.conftest import REPO_ROOT
from tests.infrastructure.helpers import resources

PROD_TARGET = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["stages"]["prod"]["targetCheckoutsPerSecond"]


def _table(template: dict, setting: str, stage: str = "prod") -> dict:
    short = setting.removesuffix("_table").replace("_", "-")
    (found,) = [
        t["Properties"]
        for t in resources(template, "AWS::DynamoDB::Table").values()
        if t["Properties"]["TableName"] == f"payments-{stage}-{short}"
    ]
    return found


def test_prod_is_sized_for_what_the_model_sustains_at_default_quotas():
    # Given the capacity model's ceiling for three-order checkouts at AWS's default quotas
    ceiling, _, _ = capacity.sustainable(capacity.ORDERS_PER_CHECKOUT)
    # Then prod's target is at most that ceiling and within 20 % of it: the ceiling comes from the cost bench's
    # measured durations, which moved between 478 and 555 checkouts/s in four runs on the shared development machine
    assert ceiling * 0.80 <= PROD_TARGET <= ceiling


def test_every_prod_table_and_index_carries_warm_throughput_for_the_target(prod):
    tables = resources(prod, "AWS::DynamoDB::Table")
    assert len(tables) == len([t for t in TABLES if t.setting != "psp_table"])  # prod charges Adyen
    for spec in TABLES:
        if spec.setting == "psp_table":
            continue
        properties = _table(prod, spec.setting)
        # Then every table is warm for the target from its first second, never below DynamoDB's default
        warm = properties["WarmThroughput"]
        expected = capacity.warm_throughput(spec.setting, PROD_TARGET)
        assert warm == {
            "ReadUnitsPerSecond": expected.read_units_per_second,
            "WriteUnitsPerSecond": expected.write_units_per_second,
        }
        assert warm["ReadUnitsPerSecond"] >= 12_000 and warm["WriteUnitsPerSecond"] >= 4_000
        # and every index takes its table's write rate
        for index in properties.get("GlobalSecondaryIndexes", []):
            assert index["WarmThroughput"]["WriteUnitsPerSecond"] == expected.write_units_per_second
    # and the busiest table (payments: 30 WRU per 3-order checkout) is warmed above DynamoDB's 4,000 WRU/s
    payments = _table(prod, "payments_table")["WarmThroughput"]["WriteUnitsPerSecond"]
    assert payments >= PROD_TARGET * 30 > 4_000


def test_the_prod_api_throttle_carries_the_target(prod):
    (stage,) = resources(prod, "AWS::ApiGateway::Stage").values()
    (api,) = [s for s in stage["Properties"]["MethodSettings"] if s["ResourcePath"] == "/*"]
    # Then the stage takes a POST and a GET poll per checkout at the target, with headroom
    assert api["ThrottlingRateLimit"] >= PROD_TARGET * 2 * 1.2
    assert api["ThrottlingBurstLimit"] >= api["ThrottlingRateLimit"]
    assert api["ThrottlingRateLimit"] == capacity.api_limits(PROD_TARGET).rate


def test_the_prod_stack_says_its_target(prod):
    assert prod["Outputs"]["TargetCheckoutsPerSecond"]["Value"] == f"{PROD_TARGET:g}"


def _context(**prod_overrides: object) -> dict:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context["stage"] = "prod"
    context["stages"]["prod"].update(prod_overrides)
    return context


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"apiRateLimit": 500}, r"apiRateLimit 500 < needed 1,125 for 450 checkouts/s"),
        ({"apiBurstLimit": 1000}, r"apiBurstLimit 1,000 < needed 2,250 for 450 checkouts/s"),
        ({"ledgerTotalShards": 2}, r"ledgerTotalShards 2 < needed 3 for 450 checkouts/s"),
    ],
)
def test_a_stage_whose_settings_cannot_carry_its_target_fails_synthesis_naming_the_setting(
    tmp_path, overrides, message
):
    # Given prod (target 450 checkouts/s) with one setting below what the target needs
    assert PROD_TARGET == 450
    # When the app is built, Then synthesis stops with a message naming the setting and the target
    with pytest.raises(ValueError, match=message):
        build_app(_context(**overrides), outdir=str(tmp_path))


def test_a_setting_above_the_target_is_kept(tmp_path):
    # Given prod with an explicit API rate above what its target needs
    _, (stack,) = build_app(_context(apiRateLimit=5_000), outdir=str(tmp_path))
    # Then the stage keeps it (a guard rail set by hand) and computes the burst
    assert stack.node.try_get_context("stage") == "prod"
    from infra.stage import Stage

    stage = Stage.from_context(stack.node, "prod")
    assert (stage.api_rate_limit, stage.api_burst_limit) == (5_000, capacity.api_limits(PROD_TARGET).burst)
    assert stage.api_burst_limit == 2_250  # 2 s of the 1,125 requests/s the target of 450 checkouts/s needs


def test_a_simulated_psp_stage_sized_beyond_its_day_index_fails_synthesis(tmp_path):
    # Given the dev stage (the simulated PSP) sized for more than one day key of its charges takes
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context["stage"] = "dev"
    context["stages"]["dev"]["targetCheckoutsPerSecond"] = 267
    # When the app is built, Then synthesis stops, naming the limit
    with pytest.raises(ValueError, match=r"one index key, which takes 266 checkouts/s: targetCheckoutsPerSecond 267"):
        build_app(context, outdir=str(tmp_path))
