"""The synthesised DynamoDB tables are exactly those of payments/kernel/tables.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments.kernel.tables import TABLES
from tests.infrastructure.conftest import REPO_ROOT
from tests.infrastructure.helpers import PROGRAM_FUNCTIONS, function_named, resources


def _simulated(stage: str) -> bool:
    return (
        json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["stages"][stage].get("psp", "simulated")
        == "simulated"
    )


def _functions(stage: str) -> tuple[str, ...]:
    """The program functions of the stage: the simulated PSP's nightly job only where it is the PSP."""
    functions = PROGRAM_FUNCTIONS if _simulated(stage) else tuple(n for n in PROGRAM_FUNCTIONS if n != "psp")
    # the simulated bank only on a stage that is not production (the default bank of one)
    production = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["stages"][stage].get("production")
    return tuple(n for n in functions if n != "simulated_bank" or not production)


def _specs(stage: str) -> list[Any]:
    """The tables of the stage: the simulated PSP's record of charges only where it is the PSP."""
    return [spec for spec in TABLES if _simulated(stage) or spec.setting != "psp_table"]


def _tables_by_setting(template: dict[str, Any], stage: str) -> dict[str, dict[str, Any]]:
    """Each table as found through the environment variable a function reads it from."""
    found: dict[str, dict[str, Any]] = {}
    for name in _functions(stage):
        _, function = function_named(template, name, stage)
        for key, value in function["Environment"]["Variables"].items():
            if isinstance(value, dict) and "Ref" in value:
                table = template["Resources"][value["Ref"]]
                if table["Type"] == "AWS::DynamoDB::Table":
                    found[key.lower()] = table
    return found


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    return schema + ([{"AttributeName": sort_key, "KeyType": "RANGE"}] if sort_key else [])


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_tables_match_the_shared_description(synthesis, stage):
    # Given the synthesised stack of the stage
    template = synthesis.templates[f"Payments-{stage}"]
    # When the tables are looked up through the functions' environment
    tables = _tables_by_setting(template, stage)
    # Then there is one table per entry of payments/kernel/tables.py and no other (the simulated PSP's
    # record of charges only on a stage whose PSP is the simulator)
    assert set(tables) == {spec.setting for spec in _specs(stage)}
    assert len(resources(template, "AWS::DynamoDB::Table")) == len(_specs(stage))
    assert ("psp_table" in tables) == (stage == "dev")
    for spec in _specs(stage):
        table = tables[spec.setting]
        props = table["Properties"]
        # with the same keys and indexes, every key attribute a string
        assert props["KeySchema"] == _key_schema(spec.partition_key, spec.sort_key), spec.setting
        expected_indexes = {i.name: _key_schema(i.partition_key, i.sort_key) for i in spec.indexes if i.deployed}
        actual_indexes = {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])}
        assert actual_indexes == expected_indexes, spec.setting
        assert all(a["AttributeType"] == "S" for a in props["AttributeDefinitions"])
        # and the same TTL attribute
        ttl = props.get("TimeToLiveSpecification")
        assert (ttl["AttributeName"] if ttl else None) == spec.ttl_attribute, spec.setting
        # on demand, encrypted, recoverable
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        # and money is never deleted with the stack
        if spec.holds_money or stage == "prod":
            assert table["DeletionPolicy"] == "Retain", spec.setting
        if spec.holds_money:
            assert props["DeletionProtectionEnabled"] is True, spec.setting


def test_dev_idempotency_table_goes_with_the_stack(dev):
    # Given the dev stage, whose context does not retain data without money
    tables = _tables_by_setting(dev, "dev")
    # Then the idempotency records (replay window of a key, no money) are deleted with the stack
    assert tables["idempotency_table"]["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_function_that_reads_sharded_money_items_knows_the_stages_shard_count(synthesis, stage):
    # Given the stage's shard counts in cdk.json (a reader that assumes fewer shards misses money)
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["stages"][stage]
    expected = {
        "WALLETS_TABLE": ("WALLET_SHARDS", str(context["walletShards"])),
        "LEDGER_TABLE": ("LEDGER_TOTAL_SHARDS", str(context["ledgerTotalShards"])),
    }
    template = synthesis.templates[f"Payments-{stage}"]
    # When each program function's environment is read
    checked = 0
    for name in _functions(stage):
        env = function_named(template, name, stage)[1]["Environment"]["Variables"]
        # Then every function given a sharded table is given that table's shard count
        for table, (setting, count) in expected.items():
            if table in env:
                checked += 1
                assert env.get(setting) == count, (name, setting)
    assert checked >= 5  # payment (both), wallet, ledger, reconcile (both)
