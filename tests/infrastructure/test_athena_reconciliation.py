"""The Athena workflow of a day too large for one function: its ASL's shape (no synthesis), and in the prod
template its state machine, the Glue tables of a run's rows, and the least privilege of its role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions import registry
from payments.kernel.config import env_name
from payments.reconciliation import athena, columnar
from tests.infrastructure.helpers import (
    as_list,
    function_named,
    policy_statements_of_role,
    resources,
    state_machine_named,
)

ASL = Path(__file__).resolve().parents[2] / "stepfunctions" / registry.RECONCILE_ATHENA_ASL


def _states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in states.items():
        found[name] = state
        if state["Type"] == "Map":
            found.update(_states(state["ItemProcessor"]["States"]))
    return found


def test_the_workflow_normalises_in_a_distributed_map_then_runs_each_query_as_an_unload_on_athena() -> None:
    definition = json.loads(ASL.read_text())
    states = _states(definition["States"])
    # the chunks: a Distributed Map of our reader (Standard children) over the plan in the state, results dropped
    normalise = states["NormaliseChunks"]
    assert normalise["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert normalise["ItemsPath"] == "$.plan.chunks" and normalise["ResultPath"] is None
    assert states["PlanChunks"]["Parameters"]["athena"] is True
    # the queries: Athena's optimised integration, waiting for each (.sync), in the workgroup the function names
    query = states["Query"]
    assert query["Resource"] == "arn:aws:states:::athena:startQueryExecution.sync"
    assert query["Parameters"]["WorkGroup.$"] == "$.workgroup"
    assert query["Parameters"]["QueryString.$"].startswith("States.Format('UNLOAD ({}) TO")
    assert "format = \\'PARQUET\\'" in query["Parameters"]["QueryString.$"]
    # an UNLOAD needs an empty prefix: each attempt of a query gets a fresh one; only throttling is retried
    assert "States.UUID()" in states["Locate"]["Parameters"]["location.$"]
    assert {e for r in query["Retry"] for e in r["ErrorEquals"]} <= {
        "Athena.TooManyRequestsException",
        "Athena.ThrottlingException",
    }
    # and the function's steps in order, the unreadable file quarantined on either side of the normalisation
    tasks = [s for s in states.values() if s.get("Resource") == "${ReconcileFunctionArn}"]
    actions = [s["Parameters"]["action"] for s in tasks if "Parameters" in s]  # a Map item's: its ItemSelector
    assert actions == ["plan_chunks", "athena_prepare", "athena_finish"] and len(tasks) == 4
    assert states["NormaliseChunks"]["ItemSelector"]["action"] == "normalise_chunk"
    assert states["WasQuarantined"]["Choices"][0]["Next"] == states["WasUnreadable"]["Choices"][0]["Next"]
    # every Task that runs the function gives up before the function's own timeout would be cut short
    assert all(
        s["TimeoutSeconds"] > registry.RECONCILE.timeout_s
        for s in states.values()
        if s.get("Resource") == "${ReconcileFunctionArn}"
    )


def test_the_run_tables_read_work_run_prefixes_with_the_run_injected(prod: dict[str, Any]) -> None:
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in resources(prod, "AWS::Glue::Table").values()
    }
    for name, columns, prefix in (
        (athena.SETTLED_TABLE, columnar.SETTLED_COLUMNS, athena.SETTLED_PREFIX),
        (athena.ADJUSTED_TABLE, columnar.ADJUSTED_COLUMNS, athena.ADJUSTED_PREFIX),
    ):
        table = tables[name]
        assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [c for c, _ in columns]
        assert table["PartitionKeys"] == [{"Name": "run", "Type": "string"}]
        assert table["Parameters"]["projection.run.type"] == "injected"  # a query must name its run
        template = json.dumps(table["Parameters"]["storage.location.template"])
        assert f"/work/${{run}}/{prefix}" in template


def test_the_reconcile_function_starts_the_workflow_by_its_fixed_name(prod: dict[str, Any]) -> None:
    _, function = function_named(prod, registry.RECONCILE.name, stage="prod")
    variables = function["Environment"]["Variables"]
    arn = variables[env_name("reconcile_athena_state_machine_arn")]
    assert arn["Fn::Join"][1][-1] == ":stateMachine:payments-prod-reconcile-athena"
    assert variables[env_name("ledger_lake_database")] == "payments_prod_lake"
    assert env_name("ledger_lake_workgroup") in variables


def test_the_workflows_role_has_athena_on_its_workgroup_glue_on_its_tables_s3_on_its_prefixes(
    prod: dict[str, Any],
) -> None:
    _, machine = state_machine_named(prod, "reconcile-athena", stage="prod")
    role_id = machine["RoleArn"]["Fn::GetAtt"][0]
    statements = policy_statements_of_role(prod, role_id)
    by_action: dict[str, list[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, []).extend(json.dumps(r) for r in as_list(statement["Resource"]))
    athena_actions = {a for a in by_action if a.startswith("athena:")}
    assert athena_actions == {"athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"}
    for action in athena_actions:
        (workgroup,) = by_action[action]
        assert ":workgroup/" in workgroup
    glue_actions = {a for a in by_action if a.startswith("glue:")}
    assert glue_actions == {"glue:GetDatabase", "glue:GetTable"}  # read only: no table is created or changed
    tables = [r for r in by_action["glue:GetTable"] if ":table/" in r]
    assert len(tables) == 3 and all(
        any(f"/{name}" in r for r in tables) for name in (athena.SETTLED_TABLE, athena.ADJUSTED_TABLE, "ledger")
    )
    objects = by_action["s3:GetObject"]
    prefixes = ("/work/*", "/ledger/*", "/athena-results/reconcile/*")
    assert sorted(p for o in objects for p in prefixes if p in o) == sorted(prefixes)  # those three, each once
    assert len(objects) == len(prefixes)
    assert all("/athena-results/reconcile/*" in r for r in by_action["s3:PutObject"])
    assert not any(a in by_action for a in ("s3:DeleteObject", "glue:CreateTable", "glue:DeleteTable"))
    # nothing but the logging and tracing APIs (no resource-level permissions) on "*"
    assert {a for a, rs in by_action.items() if '"*"' in rs} <= {
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups", "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }  # fmt: skip
