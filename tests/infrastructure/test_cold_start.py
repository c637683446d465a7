"""The cold start of the functions on a shopper's wait: SnapStart or provisioned concurrency per stage (``coldStart``)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest

from infra.app import build_app
from infra.stage import COLD_START_FUNCTIONS, Stage
from tests.infrastructure.conftest import REPO_ROOT
from tests.infrastructure.helpers import (
    as_list,
    function_named,
    policy_statements_of_role,
    resources,
    state_machine_named,
)


def _alias_of(template: dict[str, Any], function_id: str) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the one alias of the function ``function_id``."""
    aliases = [
        (logical_id, alias["Properties"])
        for logical_id, alias in resources(template, "AWS::Lambda::Alias").items()
        if alias["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert len(aliases) == 1, f"{function_id}: {len(aliases)} aliases"
    return aliases[0]


def _version_of(template: dict[str, Any], alias: dict[str, Any]) -> dict[str, Any]:
    version_id = alias["FunctionVersion"]["Fn::GetAtt"][0]
    version = template["Resources"][version_id]
    assert version["Type"] == "AWS::Lambda::Version"
    # the version a deployment replaces is deleted (its snapshot would be billed for as long as it is active)
    assert version["DeletionPolicy"] == version["UpdateReplacePolicy"] == "Delete"
    return dict(version["Properties"])


def _integration_targets(template: dict[str, Any]) -> set[str]:
    """What the Lambda proxy integrations of the stack's REST APIs invoke: the function (or alias) references in
    their URIs, as JSON."""
    targets = set()
    for method in resources(template, "AWS::ApiGateway::Method").values():
        integration = method["Properties"]["Integration"]
        if integration.get("Type") == "AWS_PROXY":
            for part in integration["Uri"]["Fn::Join"][1]:
                if isinstance(part, dict) and not str(part.get("Ref", "")).startswith("AWS::"):
                    targets.add(json.dumps(part))
    return targets


def test_prod_runs_the_functions_on_the_shoppers_wait_with_snapstart_behind_their_live_alias(prod):
    # Given prod as cdk.json sets it (coldStart: SnapStart on the four functions of a checkout)
    _, machine = state_machine_named(prod, "payment", stage="prod")
    substitutions = machine["DefinitionSubstitutions"]
    invoked = {
        json.dumps(r, sort_keys=True)
        for s in policy_statements_of_role(prod, machine["RoleArn"]["Fn::GetAtt"][0])
        if "lambda:InvokeFunction" in as_list(s["Action"])
        for r in as_list(s["Resource"])
    }
    for name in COLD_START_FUNCTIONS:
        function_id, function = function_named(prod, name, stage="prod")
        # Then each applies SnapStart to its published versions
        assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
        # and has a "live" alias on the version this deployment publishes, with nothing provisioned
        alias_id, alias = _alias_of(prod, function_id)
        assert alias["Name"] == "live"
        assert _version_of(prod, alias)["FunctionName"] == {"Ref": function_id}
        assert "ProvisionedConcurrencyConfig" not in alias
        # and the payment workflow invokes that alias (never $LATEST, which SnapStart does not apply to)
        assert {"Ref": alias_id} in substitutions.values(), name
        assert json.dumps({"Ref": alias_id}, sort_keys=True) in invoked, name
        assert json.dumps({"Fn::GetAtt": [function_id, "Arn"]}, sort_keys=True) not in invoked, name
    # and API Gateway invokes the payment function's alias, never the function itself
    payment_id, _ = function_named(prod, "payment", stage="prod")
    payment_alias, _ = _alias_of(prod, payment_id)
    assert json.dumps({"Ref": payment_alias}) in _integration_targets(prod)
    assert json.dumps({"Fn::GetAtt": [payment_id, "Arn"]}) not in _integration_targets(prod)


def test_dev_starts_every_function_cold_and_invokes_it_unqualified(dev):
    # Given dev as cdk.json sets it (no coldStart: it deploys often, and nobody waits on it)
    # Then no function has SnapStart, an alias or provisioned environments
    assert all("SnapStart" not in f["Properties"] for f in resources(dev, "AWS::Lambda::Function").values())
    assert resources(dev, "AWS::Lambda::Alias") == {}
    assert resources(dev, "AWS::Lambda::Version") == {}
    # and API Gateway invokes the payment function itself
    payment_id, _ = function_named(dev, "payment")
    assert json.dumps({"Fn::GetAtt": [payment_id, "Arn"]}) in _integration_targets(dev)


@pytest.fixture(scope="module")
def provisioned_dev(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """dev synthesised with provisioned environments for the payment function and SnapStart for the executor."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context["stage"] = "dev"
    context["coldStart"] = json.dumps({"payment": 3, "executor": "snapstart"})  # as -c coldStart='{...}' gives it
    outdir = tmp_path_factory.mktemp("cdk.out.provisioned")
    app, stacks = build_app(context, outdir=str(outdir))
    app.synth()
    (stack,) = stacks
    return dict(json.loads((outdir / f"{stack.stack_name}.template.json").read_text()))


def test_a_stage_can_keep_environments_provisioned_for_a_function_instead(provisioned_dev):
    # Given dev with coldStart {"payment": 3, "executor": "snapstart"}
    payment_id, payment = function_named(provisioned_dev, "payment")
    executor_id, executor = function_named(provisioned_dev, "executor")
    # Then the payment function's live alias keeps 3 environments initialised, without SnapStart (Lambda has
    # no SnapStart on a version with provisioned concurrency)
    payment_alias_id, payment_alias = _alias_of(provisioned_dev, payment_id)
    assert payment_alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 3}
    assert _version_of(provisioned_dev, payment_alias)["FunctionName"] == {"Ref": payment_id}
    assert "SnapStart" not in payment
    # the executor restores a snapshot, nothing provisioned
    _, executor_alias = _alias_of(provisioned_dev, executor_id)
    assert executor["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "ProvisionedConcurrencyConfig" not in executor_alias
    # and the functions coldStart does not name get neither
    for name in ("wallet", "ledger", "reconcile"):
        function_id, function = function_named(provisioned_dev, name)
        assert "SnapStart" not in function, name
        assert not [
            a for a in resources(provisioned_dev, "AWS::Lambda::Alias").values()
            if a["Properties"]["FunctionName"] == {"Ref": function_id}
        ], name  # fmt: skip
    # and both API Gateway and the workflow's FinalizePayment reach the provisioned environments
    assert json.dumps({"Ref": payment_alias_id}) in _integration_targets(provisioned_dev)
    assert json.dumps({"Fn::GetAtt": [payment_id, "Arn"]}) not in _integration_targets(provisioned_dev)
    _, machine = state_machine_named(provisioned_dev, "payment")
    assert machine["DefinitionSubstitutions"]["PaymentFunctionArn"] == {"Ref": payment_alias_id}


def _stage(cold_start: Any) -> Stage:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["coldStart"] = cold_start
    return Stage.from_context(cdk.App(context=context).node, "dev")


@pytest.mark.parametrize(
    ("cold_start", "named"),
    [
        ({"reconcile": "snapstart"}, "'reconcile', which is not a function on a shopper's wait"),
        ({"payment": 0}, "coldStart.payment must be 'snapstart' or a number"),
        ({"payment": "provisioned"}, "coldStart.payment must be 'snapstart' or a number"),
        ({"payment": True}, "coldStart.payment must be 'snapstart' or a number"),
        ('["payment"]', "coldStart must be an object"),
        ("{payment: snapstart}", "coldStart must be a JSON object"),
    ],
)
def test_a_cold_start_setting_lambda_cannot_apply_fails_synthesis_naming_it(cold_start, named):
    # Given a stage whose coldStart names another function, or a mode that is neither SnapStart nor a count
    # Then the stage cannot be read, and the message names the setting
    with pytest.raises(ValueError, match=named):
        _stage(cold_start)


def test_the_setting_reads_as_cdk_json_and_the_command_line_give_it():
    # Given coldStart as a JSON object (cdk.json) and as a JSON string (-c coldStart=...)
    # Then both read the same
    expected = {"payment": "snapstart", "ledger": 2}
    assert _stage(expected).cold_start == expected
    assert _stage(json.dumps(expected)).cold_start == expected
    assert _stage(None).cold_start == {}
