"""The deployed state machine is stepfunctions/payment.asl.json, wired to importable handlers."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from tests.infrastructure.helpers import PROGRAM_FUNCTIONS, function_named, resources

ASL = Path(__file__).resolve().parents[2] / "stepfunctions" / "payment.asl.json"
SUBSTITUTION = re.compile(r"^\$\{(\w+)\}$")


def _task_resources(states: dict) -> list[str]:
    found = []
    for state in states.values():
        if state["Type"] == "Task":
            found.append(state["Resource"])
        if state["Type"] == "Map":
            found += _task_resources(state["ItemProcessor"]["States"])
    return found


def test_state_machine_is_the_asl_file_standard_traced_and_logged(dev):
    # Given the synthesised state machine
    (machine,) = resources(dev, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    # Then its definition is the ASL file, unchanged
    assert json.loads(props["DefinitionString"]) == json.loads(ASL.read_text())
    # a Standard workflow (exactly-once transitions, execution names deduplicate starts)
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == "payments-dev-payment"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def test_every_task_resource_is_a_function_of_the_stack(dev):
    # Given the Task resources of the ASL and the state machine's substitutions
    (machine,) = resources(dev, "AWS::StepFunctions::StateMachine").values()
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    tasks = _task_resources(json.loads(ASL.read_text())["States"])
    functions = resources(dev, "AWS::Lambda::Function")
    # Then every Task names a ${...} placeholder, and every placeholder is a function's ARN
    assert tasks
    for task in tasks:
        match = SUBSTITUTION.match(task)
        assert match, f"{task} is not a ${{...}} substitution"
        target = substitutions[match.group(1)]
        assert target["Fn::GetAtt"][1] == "Arn" and target["Fn::GetAtt"][0] in functions
    assert set(substitutions) == {SUBSTITUTION.match(t).group(1) for t in tasks}
    # and FinalizePayment runs on the payment function
    assert substitutions["PaymentFunctionArn"]["Fn::GetAtt"][0] == function_named(dev, "payment")[0]


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
    _, function = function_named(dev, "payment")
    arn = function["Environment"]["Variables"]["STATE_MACHINE_ARN"]
    # Then its STATE_MACHINE_ARN is built from the fixed name, not a Ref (which would be a cycle)
    assert arn["Fn::Join"][1][-1] == ":stateMachine:payments-dev-payment"
