"""Small readers of synthesised CloudFormation templates."""

from __future__ import annotations

from typing import Any

from functions import registry


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def function_named(template: dict[str, Any], short_name: str, stage: str = "dev") -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the Lambda function ``payments-<stage>-<short_name>``."""
    for logical_id, resource in resources(template, "AWS::Lambda::Function").items():
        if resource["Properties"].get("FunctionName") == f"payments-{stage}-{short_name}":
            return logical_id, resource["Properties"]
    raise AssertionError(f"no function {short_name}")


def state_machine_named(template: dict[str, Any], short_name: str, stage: str = "dev") -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the state machine ``payments-<stage>-<short_name>``."""
    for logical_id, resource in resources(template, "AWS::StepFunctions::StateMachine").items():
        if resource["Properties"].get("StateMachineName") == f"payments-{stage}-{short_name}":
            return logical_id, resource["Properties"]
    raise AssertionError(f"no state machine {short_name}")


def policy_statements_of_role(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


#: every function's name, from the registry (the only list of them)
PROGRAM_FUNCTIONS = tuple(f.name for f in registry.FUNCTIONS)


def stage_values(**extra: Any) -> dict[str, Any]:
    """The least a stage's entry of ``cdk.json`` holds (``infra.stage.Stage.from_context``), with ``extra``."""
    return {
        "apiRateLimit": 1,
        "apiBurstLimit": 1,
        "logRetentionDays": 14,
        "logLevel": "INFO",
        "walletShards": 1,
        "ledgerTotalShards": 1,
        "retainAllData": False,
        **extra,
    }
