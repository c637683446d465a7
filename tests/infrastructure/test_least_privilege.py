"""Each function may do exactly what it needs, on exactly its own tables, objects and state machine."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.infrastructure.helpers import as_list, function_named, policy_statements_of_role, resources

#: function -> Settings field of a table -> the DynamoDB actions it may perform there
EXPECTED_TABLE_ACTIONS: dict[str, dict[str, set[str]]] = {
    "payment": {
        "idempotency_table": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"},
        "payments_table": {"GetItem", "PutItem", "UpdateItem", "BatchGetItem", "Query", "ConditionCheckItem"},
        "wallets_table": {"Query", "GetItem", "BatchGetItem"},
        "ledger_table": {"Query", "GetItem", "BatchGetItem"},
    },
    "executor": {
        "payments_table": {"GetItem", "UpdateItem"},
        "psp_table": {"GetItem", "PutItem", "UpdateItem", "Query"},
    },
    "wallet": {
        "wallets_table": {"GetItem", "PutItem", "UpdateItem", "Query"},
        "payments_table": {"GetItem", "UpdateItem"},
    },
    "ledger": {
        "ledger_table": {"GetItem", "PutItem", "UpdateItem", "Query"},
        "payments_table": {"GetItem", "UpdateItem"},
    },
    "reconcile": {
        "ledger_table": {"Query", "GetItem"},
        "wallets_table": {"Query", "GetItem"},
        "reconciliation_table": {"GetItem", "PutItem", "UpdateItem", "Query", "BatchWriteItem"},
        "payments_table": {"GetItem", "BatchGetItem"},
    },
    "psp": {"psp_table": {"Query", "GetItem"}},
}
#: function -> S3 action -> key patterns of the settlement bucket
EXPECTED_OBJECT_ACTIONS: dict[str, dict[str, set[str]]] = {
    "reconcile": {
        "s3:GetObject": {"/incoming/*"},
        "s3:DeleteObject": {"/incoming/*"},
        "s3:PutObject": {"/reports/*", "/quarantine/*"},
    },
    "psp": {"s3:PutObject": {"/incoming/simulated-psp/*"}},
}
#: Actions whose services support no resource-level permissions
RESOURCE_STAR_ALLOWED = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def _table_settings(function: dict[str, Any]) -> dict[str, str]:
    """table logical id -> Settings field, from the function's environment."""
    return {
        value["Ref"]: key.lower()
        for key, value in function["Environment"]["Variables"].items()
        if isinstance(value, dict) and "Ref" in value
    }


def _role_statements(template: dict[str, Any], name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    _, function = function_named(template, name)
    return function, policy_statements_of_role(template, function["Role"]["Fn::GetAtt"][0])


def test_no_policy_grants_a_wildcard_action(dev):
    # Given every identity policy of the stack (functions, state machine, CDK's own custom resource)
    documents = [p["Properties"]["PolicyDocument"] for p in resources(dev, "AWS::IAM::Policy").values()]
    documents += [p["Properties"]["PolicyDocument"] for p in resources(dev, "AWS::IAM::ManagedPolicy").values()]
    for role in resources(dev, "AWS::IAM::Role").values():
        documents += [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    # Then no statement allows an action with a wildcard
    actions = [a for d in documents for s in d["Statement"] for a in as_list(s["Action"])]
    assert actions
    assert [a for a in actions if "*" in a] == []


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLE_ACTIONS))
def test_function_touches_only_its_own_tables(dev, name):
    # Given the function's role policy
    function, statements = _role_statements(dev, name)
    settings = _table_settings(function)
    # When its DynamoDB statements are grouped by table
    granted: dict[str, set[str]] = defaultdict(set)
    for statement in statements:
        dynamodb_actions = {a.removeprefix("dynamodb:") for a in as_list(statement["Action"]) if a.startswith("dynamodb:")}
        if not dynamodb_actions:
            continue
        for resource in as_list(statement["Resource"]):
            if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                granted[settings[resource["Fn::GetAtt"][0]]] |= dynamodb_actions
            else:  # an index: arn + "/index/<name>", of a table it also holds
                table_id = resource["Fn::Join"][1][0]["Fn::GetAtt"][0]
                assert table_id in settings
    # Then they are exactly the actions it needs, on exactly the tables it uses
    assert dict(granted) == EXPECTED_TABLE_ACTIONS[name]


def test_reconciliation_reads_the_settlement_index_by_its_arn(dev):
    # Given the reconcile function's role policy
    _, statements = _role_statements(dev, "reconcile")
    # Then the ledger index it queries is granted by name, not by index/*
    joined = [r["Fn::Join"][1][1] for s in statements for r in as_list(s["Resource"]) if "Fn::Join" in r]
    assert "/index/by_settlement_day" in joined
    assert not any(part.endswith("/index/*") for part in joined)


@pytest.mark.parametrize("name", ["payment", "executor", "wallet", "ledger", "reconcile", "psp"])
def test_function_objects_and_wildcards(dev, name):
    # Given the function's role policy
    _, statements = _role_statements(dev, name)
    # When its S3 statements are read
    granted: dict[str, set[str]] = defaultdict(set)
    for statement in statements:
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                for resource in as_list(statement["Resource"]):
                    granted[action].add(resource["Fn::Join"][1][1])
    # Then it may touch only the key prefixes it owns
    assert dict(granted) == EXPECTED_OBJECT_ACTIONS.get(name, {})
    # and "*" is a resource only for X-Ray, which has no resource ARNs
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(as_list(statement["Action"])) <= RESOURCE_STAR_ALLOWED


def test_payment_function_starts_and_reads_only_its_state_machine(dev):
    # Given the payment function's role policy
    _, statements = _role_statements(dev, "payment")
    states = {a: s["Resource"] for s in statements for a in as_list(s["Action"]) if a.startswith("states:")}
    # Then it may start the stage's payment state machine and describe its executions, nothing else
    assert set(states) == {"states:StartExecution", "states:DescribeExecution"}
    assert states["states:StartExecution"]["Fn::Join"][1][-1] == ":stateMachine:payments-dev-payment"
    assert states["states:DescribeExecution"]["Fn::Join"][1][-1] == ":execution:payments-dev-payment:*"


def test_state_machine_invokes_exactly_the_four_task_functions(dev):
    # Given the state machine's role
    (machine,) = resources(dev, "AWS::StepFunctions::StateMachine").values()
    statements = policy_statements_of_role(dev, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
    # Then lambda:InvokeFunction is granted on the four task functions and nothing else
    invoked = {r["Fn::GetAtt"][0] for s in statements if s["Action"] == "lambda:InvokeFunction" for r in as_list(s["Resource"])}
    expected = {function_named(dev, n)[0] for n in ("payment", "executor", "wallet", "ledger")}
    assert invoked == expected
