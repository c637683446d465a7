"""The deployed state machines are stepfunctions/*.asl.json, wired to importable handlers."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from functions import registry
from payments.kernel.config import env_name
from payments.reconciliation.service import STATE_MACHINE_ENV
from tests.infrastructure.helpers import PROGRAM_FUNCTIONS, function_named, resources, stage_values, state_machine_named

STEPFUNCTIONS = Path(__file__).resolve().parents[2] / "stepfunctions"
ASL = STEPFUNCTIONS / registry.PAYMENT_ASL
RECONCILE_ASL = STEPFUNCTIONS / registry.RECONCILE_ASL
#: state machine short name -> (its ASL file, the placeholders and the function each one must be: the registry's)
MACHINES = {
    machine: (STEPFUNCTIONS / asl, {p: f.name for p, f in registry.asl_functions(asl).items()})
    for machine, asl in (
        ("payment", registry.PAYMENT_ASL),
        ("reconcile", registry.RECONCILE_ASL),
        ("reconcile-athena", registry.RECONCILE_ATHENA_ASL),
        ("refund", registry.REFUND_ASL),
    )
}
SUBSTITUTION = re.compile(r"^\$\{(\w+)\}$")


def _states(states: dict) -> list[dict]:
    """Every state, those inside Map item processors included."""
    found = []
    for state in states.values():
        found.append(state)
        if state["Type"] == "Map":
            found += _states(state["ItemProcessor"]["States"])
    return found


def _task_resources(states: dict) -> list[str]:
    return [state["Resource"] for state in _states(states) if state["Type"] == "Task"]


def test_the_stack_has_exactly_its_state_machines(dev):
    names = {m["Properties"]["StateMachineName"] for m in resources(dev, "AWS::StepFunctions::StateMachine").values()}
    assert names == {
        "payments-dev-payment",
        "payments-dev-reconcile",
        "payments-dev-reconcile-athena",
        "payments-dev-refund",
    }


#: state machine -> (type, log level) as the dev stage deploys them (cdk.json: dev has no workflowType override)
DEV_TYPES = {
    "payment": ("EXPRESS", "ERROR"),
    "reconcile": ("STANDARD", "ALL"),
    "reconcile-athena": ("STANDARD", "ALL"),
    "refund": ("STANDARD", "ALL"),
}
#: the Tasks of an AWS service integration rather than a function of the stack (their grants: the construct's)
SERVICE_TASKS = {"arn:aws:states:::athena:startQueryExecution.sync"}


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_state_machine_is_the_asl_file_of_its_type_traced_and_logged(dev, name):
    # Given the synthesised state machine
    asl, _ = MACHINES[name]
    _, props = state_machine_named(dev, name)
    # Then its definition is the ASL file, unchanged
    assert json.loads(props["DefinitionString"]) == json.loads(asl.read_text())
    # the payment workflow is EXPRESS by default (exactly-once effects come from the conditional writes;
    # the recovery function re-drives what an execution left unfinished); reconcile stays STANDARD (a
    # Distributed Map needs a Standard parent, and its execution names deduplicate starts); the refund
    # workflow is STANDARD too (a refund's execution name is its refund_id: a duplicate start is refused)
    machine_type, level = DEV_TYPES[name]
    assert props["StateMachineType"] == machine_type
    assert props["TracingConfiguration"] == {"Enabled": True}
    # logging to its own vended-logs group, without execution data (Express: failures only)
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == level and logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = dev["Resources"][log_group_id]["Properties"]
    assert log_group["LogGroupName"] == f"/aws/vendedlogs/states/payments-dev-{name}"
    assert log_group["RetentionInDays"] == 14


def test_every_stage_of_cdk_json_runs_the_payment_workflow_as_express(synthesis):
    # Given every stage that cdk.json defines
    for stack, template in synthesis.templates.items():
        stage = stack.removeprefix("Payments-")
        _, props = state_machine_named(template, "payment", stage=stage)
        # Then its payment workflow is EXPRESS, logged at ERROR
        assert (props["StateMachineType"], props["LoggingConfiguration"]["Level"]) == ("EXPRESS", "ERROR"), stack


def test_a_stage_can_select_the_standard_payment_workflow(standard_dev):
    # Given the dev stage synthesised with workflowType STANDARD (cdk.json key, here a context override)
    _, props = state_machine_named(standard_dev, "payment")
    # Then the payment workflow is the same ASL as a STANDARD state machine logging every event
    assert json.loads(props["DefinitionString"]) == json.loads(ASL.read_text())
    assert props["StateMachineType"] == "STANDARD"
    assert (
        props["LoggingConfiguration"]["Level"] == "ALL"
        and props["LoggingConfiguration"]["IncludeExecutionData"] is False
    )


def test_an_unknown_workflow_type_is_refused():
    import aws_cdk as cdk

    from infra.stage import Stage

    # Given a stage whose workflowType is neither EXPRESS nor STANDARD
    app = cdk.App(context={"stages": {"dev": stage_values(workflowType="EXPRESSO")}})
    # Then the stage cannot be read
    with pytest.raises(ValueError, match="workflowType"):
        Stage.from_context(app.node, "dev")


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_task_resource_is_a_function_of_the_stack(dev, name):
    # Given the Task resources of the ASL and the state machine's substitutions
    asl, expected = MACHINES[name]
    _, props = state_machine_named(dev, name)
    substitutions = props["DefinitionSubstitutions"]
    tasks = [t for t in _task_resources(json.loads(asl.read_text())["States"]) if t not in SERVICE_TASKS]
    functions = resources(dev, "AWS::Lambda::Function")
    # Then every Task names a ${...} placeholder, and every placeholder is a function's ARN
    assert tasks
    for task in tasks:
        match = SUBSTITUTION.match(task)
        assert match, f"{task} is not a ${{...}} substitution"
        target = substitutions[match.group(1)]
        assert target["Fn::GetAtt"][1] == "Arn" and target["Fn::GetAtt"][0] in functions
    assert set(substitutions) == {SUBSTITUTION.match(t).group(1) for t in tasks}
    # and each placeholder is exactly the expected function (FinalizePayment: payment; all of reconcile's: reconcile)
    assert {k: v["Fn::GetAtt"][0] for k, v in substitutions.items()} == {
        k: function_named(dev, fn)[0] for k, fn in expected.items()
    }


def test_reconcile_map_is_distributed_over_its_input_without_s3_items():
    # Given the Map states of the reconcile ASL
    maps = [s for s in _states(json.loads(RECONCILE_ASL.read_text())["States"]) if s["Type"] == "Map"]
    # Then there is one Distributed Map, whose child workflows are Standard
    (the_map,) = maps
    assert the_map["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    # reading its items from the state input and keeping its results there: the state machine's role
    # needs no S3 access (an ItemReader or ResultWriter would need it)
    assert "ItemsPath" in the_map
    assert "ItemReader" not in the_map and "ResultWriter" not in the_map


def test_reconcile_function_times_out_before_the_tasks_that_run_it(dev):
    # Given the reconcile function and the Tasks of the reconcile ASL
    _, function = function_named(dev, registry.RECONCILE.name)
    tasks = [s for s in _states(json.loads(RECONCILE_ASL.read_text())["States"]) if s["Type"] == "Task"]
    # Then the function's own timeout fires first (and is within Lambda's 15 minutes)
    assert function["Timeout"] <= 900
    assert all(function["Timeout"] < task["TimeoutSeconds"] for task in tasks)


@pytest.mark.parametrize("name", PROGRAM_FUNCTIONS)
def test_function_handler_is_importable(dev, name, monkeypatch):
    # Given the function's handler string
    _, function = function_named(dev, name)
    module_name, _, attribute = function["Handler"].rpartition(".")
    # When its module is imported as the Lambda runtime would (which always sets the region)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    module = importlib.import_module(module_name)
    # Then it is functions/<name>/handler.py with a callable handler
    assert module_name == f"functions.{name}.handler"
    assert callable(getattr(module, attribute))


def test_payment_function_knows_the_state_machine_without_a_reference(dev):
    # Given the payment function (which the state machine invokes)
    _, function = function_named(dev, registry.PAYMENT.name)
    arn = function["Environment"]["Variables"]["STATE_MACHINE_ARN"]
    # Then its STATE_MACHINE_ARN is built from the fixed name, not a Ref (which would be a cycle)
    assert arn["Fn::Join"][1][-1] == ":stateMachine:payments-dev-payment"


def test_reconcile_function_knows_its_state_machine_without_a_reference(dev):
    # Given the reconcile function (which the reconcile state machine invokes)
    _, function = function_named(dev, registry.RECONCILE.name)
    arn = function["Environment"]["Variables"][STATE_MACHINE_ENV]
    assert env_name("reconcile_state_machine_arn") == STATE_MACHINE_ENV  # the settings model's variable
    # Then RECONCILE_STATE_MACHINE_ARN (the variable the service reads) is built from the fixed name, not a Ref (which would be a cycle)
    assert arn["Fn::Join"][1][-1] == ":stateMachine:payments-dev-reconcile"
    assert "Ref" not in json.dumps(arn).replace('"Ref": "AWS::', "")
