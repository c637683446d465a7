"""Each function may do exactly what it needs, on exactly its own tables, objects and state machine."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from functions import registry
from payments.reconciliation.service import INCOMING, QUARANTINE, REPORTS, WORK
from tests.infrastructure.helpers import (
    PROGRAM_FUNCTIONS,
    as_list,
    function_named,
    policy_statements_of_role,
    resources,
    state_machine_named,
)

#: the stacks of cdk.json: (fixture, stage name, its PSP)
STACKS = (("dev", "dev", "simulated"), ("prod", "prod", "adyen"))
#: the functions of each stack, as the registry declares them
#: the simulated bank is deployed on the stages without a real bank: dev (prod is a production stage)
DEPLOYED = [
    (fixture, stage, psp, f)
    for fixture, stage, psp in STACKS
    for f in registry.deployed_on(psp, simulated_bank=stage == "dev")
]


def _expected_table_actions(spec: registry.Function, psp: registry.Psp) -> dict[str, set[str]]:
    """Settings field of a table -> the DynamoDB actions the registry declares for ``spec`` on ``psp``."""
    return {access.setting: set(access.actions) for access in spec.tables_for(psp)}


#: function -> S3 action -> key patterns of the settlement bucket ("<bucket>": the bucket itself).
#: The prefixes are the ones payments.reconciliation.service uses:
#: * GetObject covers HeadObject, ranged GETs and the source of CopyObject (incoming/ -> quarantine/);
#: * DeleteObject covers DeleteObjects (work/ clean-up) and the move out of incoming/;
#: * ListBucket makes HeadObject of a key already moved away answer 404 (handled as "already handled"), not 403.
EXPECTED_OBJECT_ACTIONS: dict[str, dict[str, set[str]]] = {
    registry.RECONCILE.name: {
        # and the ledger's copy in the lake bucket, and the Athena workflow's results there: read only
        "s3:GetObject": {f"/{INCOMING}*", f"/{WORK}*", "/ledger/*", "/athena-results/reconcile/*"},
        "s3:DeleteObject": {f"/{INCOMING}*", f"/{WORK}*"},
        "s3:PutObject": {f"/{REPORTS}*", f"/{QUARANTINE}*", f"/{WORK}*"},
        "s3:ListBucket": {"<bucket>"},
    },
    registry.PSP.name: {"s3:PutObject": {"/incoming/simulated-psp/*"}},
    # a resolved mismatch's HTML report, written again from its JSON report
    registry.OPERATOR.name: {"s3:GetObject": {f"/{REPORTS}*"}, "s3:PutObject": {f"/{REPORTS}*"}},
    # the bank bucket: the bank's answers read (and moved to quarantine when unreadable), our payout file a
    # whole-file rejection names, reports and quarantine written
    registry.BANK_RECONCILE.name: {
        "s3:GetObject": {"/incoming/bank/*", "/outgoing/pain001/*"},
        "s3:DeleteObject": {"/incoming/bank/*"},
        "s3:PutObject": {"/reports/incoming/bank/*", "/quarantine/bank/*"},
        "s3:ListBucket": {"<bucket>"},
    },
    # the simulated bank: our payout files in, its answers and statements out, its own records; the PSP's
    # settlement file of the day (its MerchantPayout row)
    registry.SIMULATED_BANK.name: {
        "s3:GetObject": {"/outgoing/pain001/*", "/bank/*", "/incoming/bank/camt053/*", "/incoming/simulated-psp/*"},
        "s3:PutObject": {"/incoming/bank/pain002/*", "/incoming/bank/camt053/*", "/bank/*"},
        "s3:ListBucket": {"<bucket>"},
    },
    # the nightly payout run writes its pain.001 files, and nothing else, in the bank bucket
    registry.PAYOUT_RUN.name: {"s3:PutObject": {"/outgoing/pain001/*"}},
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


def _object_pattern(resource: Any) -> str:
    """``/<key pattern>`` of an object ARN (bucket ARN + pattern), ``<bucket>`` for the bucket's own ARN."""
    if "Fn::GetAtt" in resource:
        return "<bucket>"
    parts = resource["Fn::Join"][1]
    if isinstance(parts[-1], str) and ":s3:::" in parts[-1]:  # a bucket imported by its name: the ARN spelt out
        return "/" + parts[-1].split(":s3:::", 1)[1].split("/", 1)[1]
    return parts[1]


def _states_grants(statements: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """states:* action -> the resources it is granted on."""
    grants: dict[str, list[Any]] = defaultdict(list)
    for statement in statements:
        for action in as_list(statement["Action"]):
            if action.startswith("states:"):
                grants[action] += as_list(statement["Resource"])
    return dict(grants)


def _arn_tail(resource: Any) -> str:
    """The literal end of a ``format_arn`` ARN (``:stateMachine:payments-dev-payment``)."""
    return resource["Fn::Join"][1][-1]


def _role_statements(
    template: dict[str, Any], name: str, stage: str = "dev"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    _, function = function_named(template, name, stage=stage)
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


@pytest.mark.parametrize(("fixture", "stage", "psp", "spec"), DEPLOYED, ids=[f"{d[1]}-{d[3].name}" for d in DEPLOYED])
def test_function_touches_only_its_own_tables(request, fixture, stage, psp, spec):
    # Given the function's role policy on a stage of cdk.json
    function, statements = _role_statements(request.getfixturevalue(fixture), spec.name, stage)
    settings = _table_settings(function)
    # When its DynamoDB statements are grouped by table
    granted: dict[str, set[str]] = defaultdict(set)
    for statement in statements:
        dynamodb_actions = {
            a.removeprefix("dynamodb:") for a in as_list(statement["Action"]) if a.startswith("dynamodb:")
        }
        if not dynamodb_actions:
            continue
        for resource in as_list(statement["Resource"]):
            if isinstance(resource, dict) and "Fn::GetAtt" in resource:
                granted[settings[resource["Fn::GetAtt"][0]]] |= dynamodb_actions
            else:  # an index: arn + "/index/<name>", of a table it also holds
                table_id = resource["Fn::Join"][1][0]["Fn::GetAtt"][0]
                assert table_id in settings
    # Then they are exactly the actions its registry entry declares, on exactly the tables it declares
    assert dict(granted) == _expected_table_actions(spec, psp)


@pytest.mark.parametrize(("fixture", "stage", "psp", "spec"), DEPLOYED, ids=[f"{d[1]}-{d[3].name}" for d in DEPLOYED])
def test_every_other_action_of_a_function_is_declared_in_the_registry(request, fixture, stage, psp, spec):
    # Given the function's role policy on a stage of cdk.json
    _, statements = _role_statements(request.getfixturevalue(fixture), spec.name, stage)
    # When its actions other than DynamoDB (checked per table above), its log group and X-Ray are listed
    actions = {
        a for s in statements for a in as_list(s["Action"]) if a.split(":")[0] not in ("dynamodb", "logs", "xray")
    }
    # Then they are exactly the ones its registry entry declares for the stage's PSP
    assert actions == spec.actions_for(psp)
    # and its index grants are exactly the registry's indexes
    indexes = {
        part.removeprefix("/index/")
        for s in statements
        if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
        if "Fn::Join" in r
        for part in r["Fn::Join"][1]
        if isinstance(part, str) and part.startswith("/index/")
    }
    assert indexes == {i for t in spec.tables_for(psp) for i in t.indexes}


def test_reconciliation_reads_the_mismatch_index_by_its_arn(dev):
    # Given the reconcile function's role policy
    _, statements = _role_statements(dev, "reconcile")
    # Then the ledger index it queries is granted by name, not by index/*
    joined = [
        part
        for s in statements
        for r in as_list(s["Resource"])
        if "Fn::Join" in r
        for part in r["Fn::Join"][1]
        if isinstance(part, str)
    ]
    # (the ledger's day comes from its copy in S3: the ledger's day indexes are not deployed, nor granted)
    assert not any(part.endswith(("/index/by_settlement_day", "/index/by_modification_day")) for part in joined)
    assert "/index/by_mismatch_day" in joined  # a day's open mismatches, which a late settlement resolves
    assert not any(part.endswith("/index/*") for part in joined)


@pytest.mark.parametrize("name", PROGRAM_FUNCTIONS)
def test_function_objects_and_wildcards(dev, name):
    # Given the function's role policy
    _, statements = _role_statements(dev, name)
    # When its S3 statements are read
    granted: dict[str, set[str]] = defaultdict(set)
    for statement in statements:
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                for resource in as_list(statement["Resource"]):
                    granted[action].add(_object_pattern(resource))
    # Then it may touch only the key prefixes it owns
    assert dict(granted) == EXPECTED_OBJECT_ACTIONS.get(name, {})
    # and "*" is a resource only for X-Ray, which has no resource ARNs
    for statement in statements:
        if statement["Resource"] == "*":
            assert set(as_list(statement["Action"])) <= RESOURCE_STAR_ALLOWED


def test_payment_function_starts_and_reads_only_its_state_machine(dev):
    # Given the payment function's role policy
    _, statements = _role_statements(dev, "payment")
    states = _states_grants(statements)
    # Then it may start the stage's payment state machine and describe its executions, nothing else
    assert {a: [_arn_tail(r) for r in rs] for a, rs in states.items()} == {
        "states:StartExecution": [":stateMachine:payments-dev-payment"],
        "states:DescribeExecution": [":execution:payments-dev-payment:*"],
    }


def test_recovery_queries_only_its_index_and_starts_only_the_payment_and_refund_state_machines(dev):
    # Given the recovery function's role policy
    function, statements = _role_statements(dev, "recovery")
    # Then it starts the stage's payment and refund state machines, reads the refund workflow's executions
    # (is a refund's execution still running?), and does nothing else with Step Functions
    assert {a: sorted(_arn_tail(r) for r in rs) for a, rs in _states_grants(statements).items()} == {
        "states:StartExecution": [":stateMachine:payments-dev-payment", ":stateMachine:payments-dev-refund"],
        "states:DescribeExecution": [":execution:payments-dev-refund:*"],
    }
    # and it is told the refund state machine it re-drives
    assert _arn_tail(function["Environment"]["Variables"]["REFUND_STATE_MACHINE_ARN"]) == (
        ":stateMachine:payments-dev-refund"
    )
    # and the index it queries is granted by its own ARN, no Scan anywhere
    joined = [
        part
        for s in statements
        for r in as_list(s["Resource"])
        if "Fn::Join" in r
        for part in r["Fn::Join"][1]
        if isinstance(part, str)
    ]
    assert "/index/by_recovery_due" in joined
    assert not any("Scan" in a for s in statements for a in as_list(s["Action"]))


def test_recovery_runs_every_minute(dev):
    # Given the EventBridge rules of the stack
    rules = [r["Properties"] for r in resources(dev, "AWS::Events::Rule").values()]
    recovery_id, _ = function_named(dev, registry.RECOVERY.name)
    # Then one runs the recovery function every minute
    (rule,) = [r for r in rules if any(t["Arn"] == {"Fn::GetAtt": [recovery_id, "Arn"]} for t in r["Targets"])]
    assert rule["ScheduleExpression"] == "rate(1 minute)" and rule["State"] == "ENABLED"


def test_reconcile_function_starts_only_the_reconcile_state_machine(dev):
    # Given the reconcile function's role policy
    _, statements = _role_statements(dev, "reconcile")
    states = _states_grants(statements)
    # Then its only Step Functions permission is starting the stage's two reconcile state machines
    assert {a: sorted(_arn_tail(r) for r in rs) for a, rs in states.items()} == {
        "states:StartExecution": [
            ":stateMachine:payments-dev-reconcile",
            ":stateMachine:payments-dev-reconcile-athena",
        ],
    }


def _state_machine_statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    _, machine = state_machine_named(template, name)
    return policy_statements_of_role(template, machine["RoleArn"]["Fn::GetAtt"][0])


def _invoked(statements: list[dict[str, Any]]) -> set[str]:
    return {
        r["Fn::GetAtt"][0]
        for s in statements
        if "lambda:InvokeFunction" in as_list(s["Action"])
        for r in as_list(s["Resource"])
    }


def test_state_machine_invokes_exactly_the_four_task_functions(dev):
    # Given the payment state machine's role
    statements = _state_machine_statements(dev, "payment")
    # Then lambda:InvokeFunction is granted on the four task functions and nothing else
    expected = {function_named(dev, f.name)[0] for f in registry.asl_functions(registry.PAYMENT_ASL).values()}
    assert len(expected) == 4
    assert _invoked(statements) == expected
    # and it has no Step Functions permission (it has no nested workflow)
    assert _states_grants(statements) == {}


def test_reconcile_state_machine_invokes_only_the_reconcile_function_and_runs_its_own_map(dev):
    # Given the reconcile state machine's role
    statements = _state_machine_statements(dev, "reconcile")
    # Then it may invoke the reconcile function and no other
    assert _invoked(statements) == {function_named(dev, registry.RECONCILE.name)[0]}
    # start its own Distributed Map child executions, and describe or stop only those
    assert {a: [_arn_tail(r) for r in rs] for a, rs in _states_grants(statements).items()} == {
        "states:StartExecution": [":stateMachine:payments-dev-reconcile"],
        "states:DescribeExecution": [":execution:payments-dev-reconcile/*"],
        "states:StopExecution": [":execution:payments-dev-reconcile/*"],
    }
    # and nothing else but logs delivery and X-Ray (whose APIs have no resource ARNs)
    services = {a.split(":")[0] for s in statements for a in as_list(s["Action"])}
    assert services == {"lambda", "states", "logs", "xray"}
    for statement in statements:
        if statement["Resource"] == "*":
            assert {a.split(":")[0] for a in as_list(statement["Action"])} <= {"logs", "xray"}


def _secret_grants(template: dict[str, Any]) -> dict[str, list[tuple[set[str], list[Any]]]]:
    """role logical id -> [(secretsmanager actions, resources)] of every identity policy of the stack."""
    grants: dict[str, list[tuple[set[str], list[Any]]]] = defaultdict(list)
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = {a for a in as_list(statement["Action"]) if a.startswith("secretsmanager:")}
            if actions:
                for role in policy["Properties"]["Roles"]:
                    grants[role["Ref"]].append((actions, as_list(statement["Resource"])))
    return dict(grants)


def _secret_logical_id(template: dict[str, Any], name: str) -> str:
    (logical_id,) = [
        k for k, v in resources(template, "AWS::SecretsManager::Secret").items() if v["Properties"]["Name"] == name
    ]
    return logical_id


def test_the_adyen_api_key_is_read_by_the_executor_and_refunds_and_the_hmac_key_by_the_webhook_alone(prod):
    # Given prod (Adyen) and every secretsmanager permission of its roles
    grants = _secret_grants(prod)
    _, executor = function_named(prod, "executor", stage="prod")
    _, refunds = function_named(prod, "refunds", stage="prod")
    _, webhook = function_named(prod, "notifications", stage="prod")
    api_key = _secret_logical_id(prod, "payments-prod-adyen-api-key")
    hmac_key = _secret_logical_id(prod, "payments-prod-adyen-hmac-key")
    # Then the functions that call Adyen read the API key secret and nothing else, the webhook reads the
    # HMAC key secret (named in its environment) and nothing else, and no other role reads any secret
    read = {"secretsmanager:GetSecretValue"}
    assert grants == {
        executor["Role"]["Fn::GetAtt"][0]: [(read, [{"Ref": api_key}])],
        refunds["Role"]["Fn::GetAtt"][0]: [(read, [{"Ref": api_key}])],
        webhook["Role"]["Fn::GetAtt"][0]: [(read, [{"Ref": hmac_key}])],
    }
    assert webhook["Environment"]["Variables"]["PAYMENTS_PSP_HMAC_KEY_SECRET"] == {"Ref": hmac_key}
    # and the simulator's own generated key does not exist on an Adyen stage
    assert "payments-prod-psp-notification-hmac-key" not in {
        v["Properties"]["Name"] for v in resources(prod, "AWS::SecretsManager::Secret").values()
    }
    # and no secret has a resource policy opening it to someone else
    assert resources(prod, "AWS::SecretsManager::ResourcePolicy") == {}


def _template(stack: Any) -> dict[str, Any]:
    import aws_cdk as cdk

    return cdk.assertions.Template.from_stack(stack).to_json()


def test_dev_with_the_simulator_reads_only_its_notification_hmac_key(dev):
    # Given dev (the simulated PSP), then the notifications webhook alone reads a secret: the stage's
    # generated notification HMAC key (there is no API key to read)
    _, webhook = function_named(dev, "notifications", stage="dev")
    hmac_key = _secret_logical_id(dev, "payments-dev-psp-notification-hmac-key")
    # (GetSecretValue only, as on Adyen's stages: Powertools needs nothing else; CDK's grant_read added DescribeSecret)
    assert _secret_grants(dev) == {
        webhook["Role"]["Fn::GetAtt"][0]: [({"secretsmanager:GetSecretValue"}, [{"Ref": hmac_key}])]
    }


def test_an_api_key_secret_imported_by_name_is_granted_with_its_suffix_only(live_prod):
    # Given prod configured live with the API key secret imported by name
    template = live_prod.templates["Payments-prod"]
    grants = _secret_grants(template)
    # Then the functions that call Adyen (executor, refunds) read it, matched by name and Secrets
    # Manager's 6-character suffix, and the webhook reads the HMAC key only
    for name in ("executor", "refunds"):
        _, function = function_named(template, name, stage="prod")
        ((actions, (resource,)),) = grants.pop(function["Role"]["Fn::GetAtt"][0])
        assert actions == {"secretsmanager:GetSecretValue"}
        assert resource["Fn::Join"][1][-1].endswith(":secret:acme/adyen/live-api-key-??????")
    _, webhook = function_named(template, "notifications", stage="prod")
    ((actions, resources_),) = grants.pop(webhook["Role"]["Fn::GetAtt"][0])
    assert actions == {"secretsmanager:GetSecretValue"} and "api-key" not in json.dumps(resources_)
    assert grants == {}
