"""Refunds and PSP notifications in the stack (infra/constructs/refunds.py, issue 18)."""

from __future__ import annotations

import json

from functions import registry
from tests.infrastructure.helpers import function_named, policy_statements_of_role, resources, state_machine_named
from tests.infrastructure.test_resources import _path, assert_405_methods


def _methods(dev):
    return {
        (m["Properties"]["HttpMethod"], _path(dev, m["Properties"]["ResourceId"])): m["Properties"]
        for m in resources(dev, "AWS::ApiGateway::Method").values()
    }


def test_refund_routes_are_iam_signed_and_proxied_to_the_refunds_function(dev):
    methods = _methods(dev)
    refunds_id, _ = function_named(dev, registry.REFUNDS.name)
    for route in (("POST", "/v1/refunds"), ("GET", "/v1/refunds/{refund_id}")):
        assert methods[route]["AuthorizationType"] == "AWS_IAM"
        assert refunds_id in str(methods[route]["Integration"]["Uri"])


def test_other_methods_of_the_refund_routes_and_the_webhook_are_answered_405_with_allow(dev):
    # Given the ANY methods under /v1/refunds and /v1/psp (mock integrations: no backend reached)
    anys = [
        p
        for (method, path), p in _methods(dev).items()
        if method == "ANY" and path.startswith(("/v1/refunds", "/v1/psp"))
    ]
    # Then each route has one, answering a 405 problem naming the route's own method in Allow
    assert_405_methods(
        dev, anys, {"/v1/refunds": "POST", "/v1/refunds/{refund_id}": "GET", "/v1/psp/notifications": "POST"}
    )


def test_the_webhook_is_unauthenticated_but_throttled_on_its_own(dev):
    # Given the PSP's webhook route
    webhook = _methods(dev)[("POST", "/v1/psp/notifications")]
    notifications_id, _ = function_named(dev, registry.NOTIFICATIONS.name)
    # Then it needs no SigV4 (the HMAC authenticates it) and goes to the notifications function
    assert webhook["AuthorizationType"] == "NONE"
    assert notifications_id in str(webhook["Integration"]["Uri"])
    # and the stage throttles it below the API's own limit
    (stage,) = resources(dev, "AWS::ApiGateway::Stage").values()
    (own,) = [s for s in stage["Properties"]["MethodSettings"] if s["ResourcePath"] == "/~1v1~1psp~1notifications"]
    (api,) = [s for s in stage["Properties"]["MethodSettings"] if s["ResourcePath"] == "/*"]
    assert own["HttpMethod"] == "POST" and own["DataTraceEnabled"] is False
    assert (
        0 < own["ThrottlingRateLimit"] < api["ThrottlingRateLimit"]
        and 0 < own["ThrottlingBurstLimit"] < api["ThrottlingBurstLimit"]
    )
    assert api["ThrottlingRateLimit"] == 20  # the API's own setting is kept


def test_notifications_queue_has_an_encrypted_dead_letter_queue_with_an_alarm(dev):
    queues = {q["Properties"]["QueueName"]: (k, q) for k, q in resources(dev, "AWS::SQS::Queue").items()}
    dlq_id, dlq = queues["payments-dev-notifications-dlq"]
    _, queue = queues["payments-dev-notifications"]
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    assert queue["Properties"]["SqsManagedSseEnabled"] is True and dlq["Properties"]["SqsManagedSseEnabled"] is True
    alarms = [a["Properties"] for a in resources(dev, "AWS::CloudWatch::Alarm").values()]
    assert any(
        a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}} in a.get("Dimensions", [])
        for a in alarms
    )
    # and the consumer reports partial batch failures
    queue_id = queues["payments-dev-notifications"][0]
    (mapping,) = [
        m
        for m in resources(dev, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_refund_and_chargeback_alarms_exist(dev):
    names = {a["Properties"].get("MetricName") for a in resources(dev, "AWS::CloudWatch::Alarm").values()}
    assert {"RefundNeedsAttention", "ChargebackOnRefundedOrder", "RefundReturnedByScheme"} <= names


def test_a_refund_the_recovery_gave_up_on_raises_an_alarm(dev):
    # Given the alarm on the recovery's RefundRecoveryGaveUp metric
    (alarm,) = [
        a["Properties"]
        for a in resources(dev, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "RefundRecoveryGaveUp"
    ]
    # Then it fires on the first refund parked by the recovery (the metric is the recovery function's)
    assert alarm["Namespace"] == "Payments" and alarm["Threshold"] == 0
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "recovery"}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["AlarmActions"]


def test_webhook_reads_only_its_secret_and_sends_only_to_its_queue(dev):
    function_id, props = function_named(dev, registry.NOTIFICATIONS.name)
    role = props["Role"]["Fn::GetAtt"][0]
    statements = policy_statements_of_role(dev, role)
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {"secretsmanager:GetSecretValue", "sqs:SendMessage"} <= actions
    assert not {a for a in actions if a.startswith(("states:", "s3:", "lambda:"))}
    assert "PAYMENTS_PSP_HMAC_KEY" not in props["Environment"]["Variables"]  # the key is never in the template
    del function_id


def test_refund_state_machine_is_the_asl_file(dev):
    from pathlib import Path

    _, props = state_machine_named(dev, "refund")
    asl = Path(__file__).resolve().parents[2] / "stepfunctions" / "refund.asl.json"
    assert json.loads(props["DefinitionString"]) == json.loads(asl.read_text())
