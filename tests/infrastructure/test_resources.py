"""API, functions, bucket, reconciliation trigger, alarms and outputs of the synthesised stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

import infra.bundling as bundling_module
from functions import registry
from infra.bundling import (
    BYTECODE_PYTHON_ENV,
    DEPENDENCIES,
    DEPENDENCIES_WITHOUT_THEIRS,
    REPO_ROOT,
    RUNTIME,
    TASK_ROOT,
    LocalPythonBundling,
    bytecode_python,
    compile_bytecode,
)
from tests.infrastructure.helpers import PROGRAM_FUNCTIONS, function_named, resources, state_machine_named

#: function -> (timeout s, memory MB, /tmp MB); the others are bounded by DEFAULT_SHAPE.
#: reconcile: the 512 MiB single pass and the distributed path's Tasks (900 s each in the ASL) run in it;
#: 1,769 MB is one full vCPU; /tmp holds its sorted-run spill (~80 bytes per row, at most ~512 MiB).
SHAPES = {"reconcile": (840, 1769, 10240)}
DEFAULT_SHAPE = (300, 1024, 512)
#: routes tested elsewhere: the refunds' and the webhook's (test_refunds.py), the operator's (test_operator.py),
#: the payout accounts' and the payouts' (test_payouts.py)
REFUND_ROUTE_PREFIXES = ("/v1/refunds", "/v1/psp/", "/v1/operator", "/v1/sellers/", "/v1/payouts")
ROUTES = {
    ("POST", "/v1/payments"),
    ("GET", "/v1/payments/{checkout_id}"),
    ("GET", "/v1/wallets/{seller_account}"),
    ("GET", "/v1/ledger/trial-balance"),
}


def _path(template, resource_id):
    parts = []
    while isinstance(resource_id, str) or "Ref" in resource_id:
        logical = resource_id if isinstance(resource_id, str) else resource_id["Ref"]
        resource = template["Resources"][logical]
        if resource["Type"] != "AWS::ApiGateway::Resource":
            break
        parts.append(resource["Properties"]["PathPart"])
        resource_id = resource["Properties"]["ParentId"]
    return "/" + "/".join(reversed(parts))


def test_api_routes_require_iam_and_proxy_to_the_payment_function(dev):
    # Given the API methods (but the ANY method of each route, which answers 405, and the refund routes:
    # tests/infrastructure/test_refunds.py)
    methods = [
        m
        for m in resources(dev, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] != "ANY"
        and not _path(dev, m["Properties"]["ResourceId"]).startswith(REFUND_ROUTE_PREFIXES)
    ]
    payment_id, _ = function_named(dev, registry.PAYMENT.name)
    # Then exactly the four routes exist
    assert {(m["Properties"]["HttpMethod"], _path(dev, m["Properties"]["ResourceId"])) for m in methods} == ROUTES
    for method in methods:
        props = method["Properties"]
        # each signed with SigV4 and proxied to the payment function
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert payment_id in str(props["Integration"]["Uri"])


def test_other_methods_of_a_route_are_answered_405_with_allow_without_reaching_a_backend(dev):
    # Given the ANY method of each route (API Gateway prefers a route's explicit methods over it; the refund
    # routes' and the webhook's: tests/infrastructure/test_refunds.py)
    anys = [
        m["Properties"]
        for m in resources(dev, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "ANY"
        and not _path(dev, m["Properties"]["ResourceId"]).startswith(REFUND_ROUTE_PREFIXES)
    ]
    allowed = {path: method for method, path in ROUTES}
    # Then every route has one, answering a 405 problem with the route's own method in Allow
    assert_405_methods(dev, anys, allowed)


def assert_405_methods(dev, anys, allowed):
    assert sorted(_path(dev, m["ResourceId"]) for m in anys) == sorted(allowed)
    for method in anys:
        integration = method["Integration"]
        assert integration["Type"] == "MOCK" and method["AuthorizationType"] == "NONE"
        assert integration["RequestTemplates"] == {"application/json": '{"statusCode": 405}'}
        (response,) = integration["IntegrationResponses"]
        assert response["StatusCode"] == "405"
        allow = allowed[_path(dev, method["ResourceId"])]
        assert response["ResponseParameters"]["method.response.header.Allow"] == f"'{allow}'"
        assert response["ResponseParameters"]["method.response.header.Content-Type"] == "'application/problem+json'"
        body = json.loads(response["ResponseTemplates"]["application/json"])
        assert body["status"] == 405 and body["type"] == "urn:payments:problem:method-not-allowed"


def test_api_stage_is_throttled_logged_and_traced(dev):
    # Given the API stage
    (stage,) = resources(dev, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    # Then it has throttling from context, access logs and tracing, and never logs bodies
    (settings,) = [
        s for s in props["MethodSettings"] if s["ResourcePath"] == "/*"
    ]  # the webhook's own: test_refunds.py
    assert settings["ThrottlingRateLimit"] == 20 and settings["ThrottlingBurstLimit"] == 40
    assert settings["DataTraceEnabled"] is False
    assert "DestinationArn" in props["AccessLogSetting"]
    assert props["TracingEnabled"] is True


def test_api_gateway_errors_are_problem_details(dev):
    # Given API Gateway's own responses (auth, throttling, size)
    responses = resources(dev, "AWS::ApiGateway::GatewayResponse").values()
    # Then each answers application/problem+json
    assert {r["Properties"]["ResponseType"] for r in responses} >= {
        "THROTTLED",
        "REQUEST_TOO_LARGE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    for response in responses:
        headers = response["Properties"]["ResponseParameters"]
        assert headers["gatewayresponse.header.Content-Type"] == "'application/problem+json'"


@pytest.mark.parametrize("name", PROGRAM_FUNCTIONS)
def test_functions_share_one_runtime_shape(dev, name):
    # Given a function
    _, props = function_named(dev, name)
    # Then it runs on Python 3.13, ARM, traced, bounded, with Powertools settings
    assert props["Runtime"] == "python3.13" and props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    timeout, memory, tmp = SHAPES.get(name, DEFAULT_SHAPE)
    if name in SHAPES:
        assert (props["Timeout"], props["MemorySize"], props["EphemeralStorage"]["Size"]) == (timeout, memory, tmp)
    else:
        assert props["Timeout"] <= timeout and props["MemorySize"] <= memory
        assert props.get("EphemeralStorage", {"Size": 512})["Size"] <= tmp
    assert "ReservedConcurrentExecutions" not in props
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == name
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Payments"
    assert env["LOG_LEVEL"] == "DEBUG"


def test_no_function_of_any_stage_records_its_responses_in_traces(synthesis):
    # Given every function of every stage that runs this repository's code (handler in functions/)
    ours = {
        (stack, logical_id): resource["Properties"]
        for stack in synthesis.templates
        for logical_id, resource in synthesis.resources(stack, "AWS::Lambda::Function").items()
        if str(resource["Properties"].get("Handler", "")).startswith("functions.")
    }
    assert len([stack for stack, _ in ours if stack == "Payments-dev"]) >= len(PROGRAM_FUNCTIONS)
    # Then Powertools' tracer is told, by its environment, never to put a response (payment data)
    # into a trace: the entry point's capture_response=False, and likewise any method traced later
    for where, props in ours.items():
        assert props["Environment"]["Variables"].get("POWERTOOLS_TRACER_CAPTURE_RESPONSE") == "false", where


def test_bundle_excludes_the_runtime_sdk():
    # Given the dependencies bundled into the asset
    # Then boto3 is not among them (the Lambda runtime provides it)
    assert not {"boto3", "botocore"} & {*DEPENDENCIES, *DEPENDENCIES_WITHOUT_THEIRS}


def test_settlement_bucket_is_private_versioned_encrypted_and_logged(dev):
    # Given the settlement bucket (the one the reconcile function is given)
    bucket_id = function_named(dev, registry.RECONCILE.name)[1]["Environment"]["Variables"]["SETTLEMENT_BUCKET"]["Ref"]
    bucket = resources(dev, "AWS::S3::Bucket")[bucket_id]
    props = bucket["Properties"]
    # Then it blocks public access, is encrypted, versioned, retained and access-logged
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain"
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    # and archives incoming/ and quarantine/, expiring old versions
    rules = props["LifecycleConfiguration"]["Rules"]
    assert {r.get("Prefix") for r in rules if "Transitions" in r} == {"incoming/", "quarantine/"}
    assert any("NoncurrentVersionExpiration" in r for r in rules)
    # and expires the distributed path's intermediate results under work/ (left behind by a failed run)
    (work,) = (r for r in rules if r.get("Prefix") == "work/")
    assert work["ExpirationInDays"] == 7 and work["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    # and its policy denies every request not made over TLS
    (policy,) = (
        p for p in resources(dev, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )
    (deny,) = (s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_new_settlement_files_trigger_reconciliation(dev):
    # Given the bucket notification configuration
    reconcile_id, reconcile = function_named(dev, registry.RECONCILE.name)
    (notifications,) = (
        n
        for n in resources(dev, "Custom::S3BucketNotifications").values()
        if n["Properties"]["BucketName"] == reconcile["Environment"]["Variables"]["SETTLEMENT_BUCKET"]
    )
    (config,) = notifications["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    # Then objects created under incoming/ invoke the reconcile function
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]
    assert config["LambdaFunctionArn"] == {"Fn::GetAtt": [reconcile_id, "Arn"]}


def test_failed_reconciliation_lands_in_an_encrypted_dead_letter_queue(dev):
    # Given the reconcile function's async invocation config
    (invoke_config,) = (
        c
        for c in resources(dev, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function_named(dev, registry.RECONCILE.name)[0]}
    )
    props = invoke_config["Properties"]
    ((queue_id, queue),) = [
        (k, q)
        for k, q in resources(dev, "AWS::SQS::Queue").items()
        if q["Properties"]["QueueName"] == "payments-dev-reconcile-dlq"
    ]
    # Then it retries twice, then sends the event to the queue
    assert props["MaximumRetryAttempts"] == 2
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    # which is encrypted and TLS-only
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    (policy,) = [
        p for p in resources(dev, "AWS::SQS::QueuePolicy").values() if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    assert policy["Properties"]["PolicyDocument"]["Statement"][0]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }


def test_settlement_job_runs_nightly(dev):
    # Given the EventBridge rule that targets the PSP function (the other one runs the recovery)
    psp_id, _ = function_named(dev, registry.PSP.name)
    (rule,) = [
        r
        for r in resources(dev, "AWS::Events::Rule").values()
        if r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [psp_id, "Arn"]}
    ]
    # Then it runs the PSP settlement job once a day
    assert rule["Properties"]["ScheduleExpression"] == "cron(0 1 * * ? *)"  # after the day's copy is complete
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [psp_id, "Arn"]}


def test_alarms_cover_every_silent_failure(dev):
    # Given the alarms and the topic they notify
    alarms = list(resources(dev, "AWS::CloudWatch::Alarm").values())
    ((topic_id, topic),) = resources(dev, "AWS::SNS::Topic").items()
    metrics = {(a["Properties"].get("Namespace"), a["Properties"].get("MetricName")) for a in alarms}
    # Then the workflow, the custom metrics, the DLQ, functions and tables are all alarmed
    for expected in [
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/States", "ExecutionsAborted"),
        ("Payments", "NeedsAttention"),
        ("Payments", "RecoveryGaveUp"),
        ("Payments", "ReconciliationMismatches"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
    ]:
        assert expected in metrics, expected
    table_alarms = [a for a in alarms if "Metrics" in a["Properties"]]
    assert len(table_alarms) == 2 * len(resources(dev, "AWS::DynamoDB::Table"))
    needs_attention = next(a for a in alarms if a["Properties"].get("MetricName") == "NeedsAttention")
    assert needs_attention["Properties"]["Dimensions"] == [{"Name": "service", "Value": "payment"}]
    assert needs_attention["Properties"]["ComparisonOperator"] == "GreaterThanThreshold"
    assert needs_attention["Properties"]["Threshold"] == 0
    gave_up = next(a for a in alarms if a["Properties"].get("MetricName") == "RecoveryGaveUp")
    assert (
        gave_up["Properties"]["Dimensions"] == [{"Name": "service", "Value": "recovery"}]
        and gave_up["Properties"]["Threshold"] == 0
    )
    # each notifying the encrypted topic
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)
    assert "KmsMasterKeyId" in topic["Properties"]


@pytest.mark.parametrize("name", ["payment", "reconcile"])
def test_every_state_machine_alarms_on_executions_that_do_not_complete(dev, name):
    # Given the state machine and the alarms on its metrics
    machine_id, _ = state_machine_named(dev, name)
    alarms = [
        a["Properties"]
        for a in resources(dev, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions") == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]
    ]
    # Then a failed, timed-out or aborted execution raises an alarm in the period it happens
    assert {a["MetricName"] for a in alarms} == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    for alarm in alarms:
        assert alarm["Namespace"] == "AWS/States"
        assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (
            "GreaterThanThreshold",
            0,
            1,
        )
    # and the dashboard graphs its executions
    (dashboard,) = resources(dev, "AWS::CloudWatch::Dashboard").values()
    assert {"Ref": machine_id} in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]


def test_outputs(dev):
    # Then the stack tells where the API, the bucket and the state machine are
    assert {
        "ApiUrl",
        "SettlementBucketName",
        "StateMachineArn",
        "ReconcileStateMachineArn",
        "MerchantPolicyArn",
    } <= set(dev["Outputs"])
    reconcile_id, _ = state_machine_named(dev, "reconcile")
    assert dev["Outputs"]["ReconcileStateMachineArn"]["Value"] == {"Ref": reconcile_id}


def test_local_bundling_fails_loudly_instead_of_falling_back_to_docker(tmp_path):
    # Given a requirement pip cannot satisfy
    bundling = LocalPythonBundling(("payments-no-such-package==0.0.0",), ())
    # When the asset is bundled
    # Then synthesis stops with pip's error (returning False would make CDK try Docker)
    with pytest.raises(RuntimeError, match="pip failed"):
        bundling.try_bundle(str(tmp_path), None)


@pytest.mark.skipif(bytecode_python() is None, reason="no Python of the Lambda runtime's version on this machine")
def test_asset_bytecode_is_compiled_for_the_runtime_and_loads_without_its_source_mtime(tmp_path):
    # Given a copy of the first-party package, compiled as the asset is
    shutil.copytree(REPO_ROOT / "payments", tmp_path / "payments", ignore=shutil.ignore_patterns("__pycache__"))
    compile_bytecode(bytecode_python(), tmp_path)
    # Then every module has bytecode of the runtime's version, hash-based and unchecked
    # (flags 0b01: the zip does not keep mtimes), recording its path in the Lambda sandbox
    tag = "cpython-" + RUNTIME.name.removeprefix("python").replace(".", "")
    sources = sorted(tmp_path.rglob("*.py"))
    assert sources
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        header = pyc.read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == 0b01, pyc
    probe = (
        "import marshal, sys; data = open(sys.argv[1], 'rb').read(); "
        "import importlib.util as u; assert data[:4] == u.MAGIC_NUMBER; print(marshal.loads(data[16:]).co_filename)"
    )
    money = tmp_path / "payments" / "kernel" / "__pycache__" / f"money.{tag}.pyc"
    printed = subprocess.run(
        [bytecode_python(), "-c", probe, str(money)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert printed == f"{TASK_ROOT}/payments/kernel/money.py"


def test_stack_warns_when_the_asset_can_only_ship_sources(monkeypatch):
    # Given no interpreter of the runtime's version to compile bytecode with
    monkeypatch.setattr(bundling_module, "bytecode_python", lambda: None)
    stack = cdk.Stack(cdk.App(), "Probe")
    # When the code asset is declared
    bundling_module.lambda_code(stack)
    # Then the stack carries a warning naming the fix (cdk synth --strict fails on it)
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("No Python 3.13 interpreter"))
    assert len(warnings) == 1


def test_configured_bytecode_python_must_be_the_runtime_version(monkeypatch):
    # Given $PAYMENTS_BYTECODE_PYTHON pointing at an interpreter of another version (this one, 3.11)
    monkeypatch.setenv(BYTECODE_PYTHON_ENV, sys.executable)
    bundling_module.bytecode_python.cache_clear()
    try:
        # Then the search refuses it rather than shipping bytecode the runtime cannot load
        with pytest.raises(RuntimeError, match=r"the Lambda runtime is 3\.13"):
            bundling_module.bytecode_python()
    finally:
        monkeypatch.delenv(BYTECODE_PYTHON_ENV)
        bundling_module.bytecode_python.cache_clear()
