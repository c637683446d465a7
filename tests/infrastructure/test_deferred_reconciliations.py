"""The deferred reconciliations' queue in the template: encrypted, TLS only, its own dead-letter queue, consumed by
the reconcile function with partial batch responses, reachable by that function only, and alarmed."""

from __future__ import annotations

from typing import Any

from functions import registry
from payments.kernel.config import env_name
from tests.infrastructure.helpers import as_list, function_named, policy_statements_of_role, resources

QUEUE, DLQ = "payments-dev-reconcile-deferred", "payments-dev-reconcile-deferred-dlq"
QUEUE_ACTIONS = {
    "sqs:SendMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
}


def queues(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        q["Properties"]["QueueName"]: (k, q["Properties"]) for k, q in resources(template, "AWS::SQS::Queue").items()
    }


def tls_only(template: dict[str, Any], queue_id: str) -> bool:
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    return any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for statements in policies
        for s in statements
    )


def test_the_queue_is_encrypted_tls_only_and_has_its_own_dead_letter_queue(dev):
    # Given the deferred queue and its dead-letter queue
    found = queues(dev)
    queue_id, queue = found[QUEUE]
    dlq_id, dlq = found[DLQ]
    # Then both are encrypted and refuse plain HTTP
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    assert tls_only(dev, queue_id) and tls_only(dev, dlq_id)
    # And a message that keeps failing moves to the dead-letter queue, which is no other queue's
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 8}
    others = [q for name, (_, q) in found.items() if name != QUEUE and "RedrivePolicy" in q]
    assert all(q["RedrivePolicy"]["deadLetterTargetArn"] != {"Fn::GetAtt": [dlq_id, "Arn"]} for q in others)
    # And a message is hidden longer than one reconciliation takes while it is being reconciled
    assert queue["VisibilityTimeout"] >= registry.RECONCILE.timeout_s
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_reconcile_function_consumes_the_queue_and_knows_its_url(dev):
    # Given the reconcile function and the queue
    function_id, function = function_named(dev, registry.RECONCILE.name)
    queue_id, _ = queues(dev)[QUEUE]
    # Then the function is given the queue's URL
    variables = function["Environment"]["Variables"]
    assert variables[env_name("deferred_reconciliations_queue_url")] == {"Ref": queue_id}
    # And its only consumer is the reconcile function, one file per invocation, with partial batch responses
    (mapping,) = [
        m["Properties"]
        for m in resources(dev, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert mapping["FunctionName"] == {"Ref": function_id}
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_only_the_reconcile_function_may_use_the_queue_and_only_to_send_and_consume(dev):
    # Given every role's statements on the deferred queue
    queue_id, _ = queues(dev)[QUEUE]
    _, function = function_named(dev, registry.RECONCILE.name)
    reconcile_role = function["Role"]["Fn::GetAtt"][0]
    arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    granted: dict[str, set[str]] = {}
    for role_id in resources(dev, "AWS::IAM::Role"):
        for statement in policy_statements_of_role(dev, role_id):
            if arn in as_list(statement["Resource"]):
                assert statement["Effect"] == "Allow"
                granted.setdefault(role_id, set()).update(as_list(statement["Action"]))
    # Then only the reconcile function's role has any, and exactly those that send and consume
    assert granted == {reconcile_role: QUEUE_ACTIONS}
    assert set(registry.RECONCILE.actions) >= QUEUE_ACTIONS


def test_a_file_deferred_too_long_and_a_dead_letter_raise_alarms_on_the_stages_topic(dev):
    # Given the alarms, the stage's topic and the two queues
    ((topic_id, _),) = resources(dev, "AWS::SNS::Topic").items()
    found = queues(dev)
    queue_id, dlq_id = found[QUEUE][0], found[DLQ][0]
    alarms = [a["Properties"] for a in resources(dev, "AWS::CloudWatch::Alarm").values()]

    def on(queue: str, metric: str) -> dict[str, Any]:
        (alarm,) = [
            a
            for a in alarms
            if a.get("MetricName") == metric
            and a.get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
        ]
        return alarm

    # Then the queue's oldest message older than 2 hours notifies the topic
    waiting = on(queue_id, "ApproximateAgeOfOldestMessage")
    assert waiting["Threshold"] == 2 * 3600 and waiting["ComparisonOperator"] == "GreaterThanThreshold"
    assert waiting["Statistic"] == "Maximum" and waiting["AlarmActions"] == [{"Ref": topic_id}]
    # And so does any message in its dead-letter queue
    dead = on(dlq_id, "ApproximateNumberOfMessagesVisible")
    assert dead["Threshold"] == 0 and dead["AlarmActions"] == [{"Ref": topic_id}]
    # And the files deferred are counted, not alarmed (a PSP delivering after midnight defers every night)
    assert not [a for a in alarms if a.get("MetricName") == "ReconciliationsDeferred"]


def test_prod_has_the_queue_too(prod):
    assert "payments-prod-reconcile-deferred" in queues(prod)
    assert "payments-prod-reconcile-deferred-dlq" in queues(prod)
