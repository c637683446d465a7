"""What the marketplace hears, in the templates of every stage: the bus, its archive, a pipe per event table
(its stream, filter, enrichment, target and dead-letter queue), the example rule and its queue, the alarms,
and the pipes' roles, each scoped to its own stream, the events function and the bus."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest

from infra.constructs import events as construct
from infra.stage import Stage
from payments.events.envelope import CloudEvent, EventType, bus_name, sequence_of, source_of
from payments.kernel.tables import TABLES
from tests.infrastructure.conftest import REPO_ROOT, Synthesis
from tests.infrastructure.helpers import as_list, function_named, policy_statements_of_role, resources, stage_values

STAGES = ("dev", "prod")
#: the resource tables whose changes are events, by their short name (the table ``payments-<stage>-<short>``)
EVENT_TABLES = {"payments_table": "payments", "payouts_table": "payouts", "reconciliation_table": "reconciliation"}


def template_of(synthesis: Synthesis, stage: str) -> dict[str, Any]:
    return synthesis.templates[f"Payments-{stage}"]


def by_name(template: dict[str, Any], resource_type: str, key: str, name: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (k, r["Properties"]) for k, r in resources(template, resource_type).items() if r["Properties"].get(key) == name
    ]
    return found


def event_pipes(template: dict[str, Any], stage: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The events pipes by table setting (the ledger copy's pipe is not one: test_ledger_lake.py)."""
    return {
        setting: by_name(template, "AWS::Pipes::Pipe", "Name", f"payments-{stage}-events-{short}")
        for setting, short in EVENT_TABLES.items()
    }


def queue_named(template: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    return by_name(template, "AWS::SQS::Queue", "QueueName", name)


def path(document: dict[str, Any], json_path: str) -> Any:
    """A Pipes dynamic path parameter (``$.a.b``, dot notation only) read from ``document``."""
    assert re.fullmatch(r"\$(\.[\w-]+)+", json_path), json_path
    value: Any = document
    for key in json_path[2:].split("."):
        value = value[key]
    return value


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's matching for the pattern forms the stack uses: exact strings and ``prefix``."""
    for field, allowed in pattern.items():
        value = event.get(field)
        if isinstance(allowed, dict):
            if not isinstance(value, dict) or not matches(allowed, value):
                return False
            continue
        ok = any(
            value == a if isinstance(a, str) else isinstance(value, str) and value.startswith(a["prefix"])
            for a in allowed
        )
        if not ok:
            return False
    return True


def envelope(stage: str, type_: EventType) -> dict[str, Any]:
    """An envelope as the events function returns it (``model_dump(mode="json")``)."""
    event = CloudEvent.of(
        stage=stage,
        type_=type_,
        subject="chk_1",
        sequence=sequence_of("4000000000000012345678"),
        time="2026-12-06T10:40:00.000Z",
        data={"id": "chk_1"},
    )
    return event.model_dump(mode="json")


def put_by_pipe(pipe: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
    """The event the pipe puts on the bus for one envelope: its dynamic path parameters read from the
    envelope, the envelope itself as the detail (the pipe has no input template)."""
    parameters = pipe["TargetParameters"]["EventBridgeEventBusParameters"]
    return {
        "source": path(detail, parameters["Source"]),
        "detail-type": path(detail, parameters["DetailType"]),
        "detail": detail,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_has_its_bus_and_archives_every_event_of_its_source(synthesis, stage):
    # Given the stage's template and its retention in cdk.json
    template = template_of(synthesis, stage)
    retention = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["stages"][stage][
        "eventArchiveRetentionDays"
    ]
    # Then its bus is payments-<stage>
    bus_id, _ = by_name(template, "AWS::Events::EventBus", "Name", bus_name(stage))
    assert bus_name(stage) == f"payments-{stage}"
    # And one archive of that bus keeps every event of the stage's source for the stage's retention
    ((_, archive),) = resources(template, "AWS::Events::Archive").items()
    archive = archive["Properties"]
    assert archive["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert archive["EventPattern"] == {"source": [source_of(stage)]}
    assert archive["RetentionDays"] == retention > 0
    # And the outputs name the bus, the archive (to replay it) and the marketplace's queue
    outputs = template["Outputs"]
    assert outputs["EventBusName"]["Value"] == {"Ref": bus_id}
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert "EventArchiveArn" in outputs and "MarketplaceEventsQueueUrl" in outputs


@pytest.mark.parametrize("stage", STAGES)
def test_a_pipe_per_event_table_reads_its_stream_of_both_images_from_the_trim_horizon(synthesis, stage):
    # Given the stage's template
    template = template_of(synthesis, stage)
    # Then the tables whose changes are events are those streaming both images, and only those
    assert set(construct.EVENT_TABLES) == set(EVENT_TABLES)
    assert {t.setting for t in TABLES if t.stream == "NEW_AND_OLD_IMAGES"} == set(EVENT_TABLES)
    for setting, (_, pipe) in event_pipes(template, stage).items():
        table_id, table = by_name(
            template, "AWS::DynamoDB::Table", "TableName", f"payments-{stage}-{EVENT_TABLES[setting]}"
        )
        assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        # each pipe reads its own table's stream from its trim horizon (nothing written before the pipe is lost)
        assert pipe["Source"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
        source = pipe["SourceParameters"]["DynamoDBStreamParameters"]
        assert source["StartingPosition"] == "TRIM_HORIZON"
        # in batches whose events fit one PutEvents of the bus target (10), within a second
        assert source["BatchSize"] * construct.EVENTS_PER_RECORD <= 10
        assert source["MaximumBatchingWindowInSeconds"] == 1
        # retrying a failing batch a bounded number of times, halving it to isolate a bad record
        assert 0 < source["MaximumRetryAttempts"] <= 10
        assert source["OnPartialBatchItemFailure"] == "AUTOMATIC_BISECT"
        # then keeping its stream positions in its own encrypted dead-letter queue
        queue_id, queue = queue_named(template, f"payments-{stage}-events-{EVENT_TABLES[setting]}-dlq")
        assert source["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
        assert queue["SqsManagedSseEnabled"] is True


@pytest.mark.parametrize("stage", STAGES)
def test_the_pipes_filter_keeps_inserted_and_modified_items_only(synthesis, stage):
    # Given each events pipe's filter
    for _, pipe in event_pipes(template_of(synthesis, stage), stage).values():
        (pattern,) = [json.loads(f["Pattern"]) for f in pipe["SourceParameters"]["FilterCriteria"]["Filters"]]
        # Then a put or an update passes; a deletion (a TTL expiry) does not
        assert pattern == {"eventName": ["INSERT", "MODIFY"]}
        assert matches(pattern, {"eventName": "INSERT"}) and matches(pattern, {"eventName": "MODIFY"})
        assert not matches(pattern, {"eventName": "REMOVE"})


@pytest.mark.parametrize("stage", STAGES)
def test_the_events_function_enriches_and_the_bus_receives_each_envelope_as_its_detail(synthesis, stage):
    # Given the stage's template, its bus and its events function
    template = template_of(synthesis, stage)
    bus_id, _ = by_name(template, "AWS::Events::EventBus", "Name", bus_name(stage))
    function_id, function = function_named(template, construct.EVENTS_FUNCTION, stage)
    assert function["Handler"] == "functions.events.handler.handler"
    for _, pipe in event_pipes(template, stage).values():
        # Then every pipe's records go through the events function to the bus, with no input template
        assert pipe["Enrichment"] == {"Fn::GetAtt": [function_id, "Arn"]}
        assert pipe["Target"] == {"Fn::GetAtt": [bus_id, "Arn"]}
        assert "InputTemplate" not in pipe["TargetParameters"]
        assert pipe["TargetParameters"]["EventBridgeEventBusParameters"] == {
            "DetailType": "$.type",
            "Source": "$.source",
        }
        # And an envelope is put as the local runtime puts it (CloudEvent.put_entry): its type as detail-type,
        # its source as source, itself as the detail
        detail = envelope(stage, EventType.PAYMENT_SUCCEEDED)
        put = put_by_pipe(pipe, detail)
        entry = CloudEvent.model_validate(detail).put_entry(bus_name(stage))
        assert (put["source"], put["detail-type"], put["detail"]) == (
            entry["Source"],
            entry["DetailType"],
            json.loads(entry["Detail"]),
        )
        # And the pipe logs its errors without the records
        assert pipe["LogConfiguration"]["Level"] == "ERROR" and "IncludeExecutionData" not in pipe["LogConfiguration"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_event_type_is_archived_and_the_example_rule_takes_payments_and_refunds_only(synthesis, stage):
    # Given the archive's pattern, the example rule and an events pipe
    template = template_of(synthesis, stage)
    ((_, archive),) = resources(template, "AWS::Events::Archive").items()
    _, rule = by_name(template, "AWS::Events::Rule", "Name", f"payments-{stage}-marketplace-payments-refunds")
    _, pipe = event_pipes(template, stage)["payments_table"]
    for type_ in EventType:
        # When the pipe puts an envelope of the type on the bus
        event = put_by_pipe(pipe, envelope(stage, type_))
        # Then the archive keeps it, and the rule delivers it if it is about a payment or a refund
        assert matches(archive["Properties"]["EventPattern"], event), type_
        wanted = type_.value.startswith(("payments.payment.", "payments.refund."))
        assert matches(rule["EventPattern"], event) is wanted, type_
    # And an event of another stage's source reaches neither
    other = put_by_pipe(pipe, envelope("other", EventType.PAYMENT_SUCCEEDED))
    assert not matches(archive["Properties"]["EventPattern"], other) and not matches(rule["EventPattern"], other)


@pytest.mark.parametrize("stage", STAGES)
def test_the_example_rule_delivers_to_an_encrypted_queue_with_dead_letter_queues_on_both_sides(synthesis, stage):
    # Given the example rule on the stage's bus and the marketplace's queue
    template = template_of(synthesis, stage)
    bus_id, _ = by_name(template, "AWS::Events::EventBus", "Name", bus_name(stage))
    rule_id, rule = by_name(template, "AWS::Events::Rule", "Name", f"payments-{stage}-marketplace-payments-refunds")
    queue_id, queue = queue_named(template, f"payments-{stage}-marketplace-events")
    consumer_dlq_id, consumer_dlq = queue_named(template, f"payments-{stage}-marketplace-events-dlq")
    rule_dlq_id, rule_dlq = queue_named(template, f"payments-{stage}-marketplace-rule-dlq")
    # Then the rule is on the bus and targets the queue, retrying within a day, then its own dead-letter queue
    assert rule["EventBusName"] == {"Ref": bus_id}
    ((target),) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [rule_dlq_id, "Arn"]}}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    # And every queue is encrypted; the consumer's failures move to its own dead-letter queue
    assert all(q["SqsManagedSseEnabled"] is True for q in (queue, consumer_dlq, rule_dlq))
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [consumer_dlq_id, "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == construct.MARKETPLACE_MAX_RECEIVES
    # And only this rule may send to the queue and to the rule's dead-letter queue; TLS only
    for queue_ref in (queue_id, rule_dlq_id):
        (policy,) = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in resources(template, "AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_ref} in p["Properties"]["Queues"]
        ]
        deny, *allows = policy
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        (allow,) = allows
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}


@pytest.mark.parametrize("stage", STAGES)
def test_every_dead_letter_queue_of_the_events_alarms_on_the_stages_topic(synthesis, stage):
    # Given the alarms and the stage's topic
    template = template_of(synthesis, stage)
    ((topic_id, _),) = resources(template, "AWS::SNS::Topic").items()
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    names = [f"events-{short}-dlq" for short in EVENT_TABLES.values()]
    names += ["marketplace-rule-dlq", "marketplace-events-dlq"]
    for name in names:
        queue_id, _ = queue_named(template, f"payments-{stage}-{name}")
        dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
        # Then one message in it raises an alarm on the topic, within five minutes
        (alarm,) = [
            a
            for a in alarms
            if a.get("MetricName") == "ApproximateNumberOfMessagesVisible" and dimension in a.get("Dimensions", [])
        ]
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Period"]) == (0, "GreaterThanThreshold", 300)
        assert "docs/runbook.md" in alarm["AlarmDescription"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_pipe_role_reads_only_its_stream_invokes_only_the_events_function_and_puts_only_on_the_bus(
    synthesis, stage
):
    # Given each events pipe's role
    template = template_of(synthesis, stage)
    bus_id, _ = by_name(template, "AWS::Events::EventBus", "Name", bus_name(stage))
    function_id, _ = function_named(template, construct.EVENTS_FUNCTION, stage)
    (log_group,) = {
        json.dumps(p["LogConfiguration"]["CloudwatchLogsLogDestination"]["LogGroupArn"])
        for _, p in event_pipes(template, stage).values()
    }
    for setting, (_, pipe) in event_pipes(template, stage).items():
        role_id = pipe["RoleArn"]["Fn::GetAtt"][0]
        role = resources(template, "AWS::IAM::Role")[role_id]["Properties"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "pipes.amazonaws.com"}
        assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
        dlq = pipe["SourceParameters"]["DynamoDBStreamParameters"]["DeadLetterConfig"]["Arn"]
        granted = {
            (tuple(sorted(as_list(s["Action"]))), json.dumps(r))
            for s in policy_statements_of_role(template, role_id)
            for r in as_list(s["Resource"])
        }
        assert all(
            s["Effect"] == "Allow" and "Condition" not in s for s in policy_statements_of_role(template, role_id)
        )
        # Then it may read its table's stream, invoke the events function (its unqualified ARN), put on the
        # stage's bus, send to its dead-letter queue and write its log group: nothing else, nothing with '*'
        stream_actions = (
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        )
        assert granted == {
            (stream_actions, json.dumps(pipe["Source"])),
            (("lambda:InvokeFunction",), json.dumps({"Fn::GetAtt": [function_id, "Arn"]})),
            (("events:PutEvents",), json.dumps({"Fn::GetAtt": [bus_id, "Arn"]})),
            (("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"), json.dumps(dlq)),
            (("logs:CreateLogStream", "logs:PutLogEvents"), log_group),
        }, setting
        assert '"*"' not in {r for _, r in granted}


def test_the_archives_retention_is_read_from_the_stage_and_checked():
    # Given a stage whose cdk.json entry sets eventArchiveRetentionDays, and one that does not
    def stage(**extra: Any) -> Stage:
        return Stage.from_context(cdk.App(context={"stages": {"dev": stage_values(**extra)}}).node, "dev")

    # Then the days are the stage's, 0 keeps events for ever, and a stage without it keeps them 30 days
    assert stage(eventArchiveRetentionDays=90).event_archive_retention_days == 90
    assert stage(eventArchiveRetentionDays=0).event_archive_retention_days == 0
    assert stage().event_archive_retention_days == 30
    # And anything but a whole number of days stops synthesis, naming the key
    for bad in (-1, 1.5, "7", True):
        with pytest.raises(ValueError, match="eventArchiveRetentionDays"):
            stage(eventArchiveRetentionDays=bad)
