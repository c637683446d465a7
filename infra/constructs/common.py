"""Pieces shared by the constructs: stage log groups and the state machines deployed from ASL files.

Both state machines (``payment`` and ``reconcile``) follow the same pattern: a
fixed name built from the stage, so that the functions they invoke are given
their ARN without a reference (a reference back would be a dependency cycle);
the ASL file deployed as written, with its ``${...}`` placeholders filled with
function ARNs; logs to a vended log group; X-Ray tracing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions import registry
from infra.nag import acknowledge
from infra.stage import Stage


class TaskFunction(Protocol):
    """A deployed registry function (``infra.constructs.function.PaymentsFunction``)."""

    spec: registry.Function
    function: lambda_.Function
    #: what the state machine invokes: the function or its alias (``PaymentsFunction.invoke_target``)
    invoke_target: lambda_.IFunction


def stage_log_group(
    scope: Construct, construct_id: str, *, stage: Stage, log_group_name: str | None = None
) -> logs.LogGroup:
    """A log group kept for the stage's retention, removed with the stack unless the stage retains data."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=log_group_name,
        retention=stage.log_retention,
        removal_policy=stage.disposable_removal_policy,
    )


def fixed_name_state_machine_arns(scope: Construct, name: str, *, executions: str) -> tuple[str, str]:
    """(ARN of state machine ``name``, ARN pattern of its executions), built from the name, not referenced.

    ``executions`` is the execution resource name pattern, e.g. ``<name>:*`` or ``<name>/*``.
    """
    stack = cdk.Stack.of(scope)
    machine = stack.format_arn(
        service="states", resource="stateMachine", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    execution_arns = stack.format_arn(
        service="states", resource="execution", resource_name=executions, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    return machine, execution_arns


def asl_state_machine(
    scope: Construct,
    construct_id: str,
    *,
    name: str,
    asl_path: Path,
    task_functions: Sequence[TaskFunction],
    log_group: logs.ILogGroup,
    invoked_functions: str,
    state_machine_type: sfn.StateMachineType = sfn.StateMachineType.STANDARD,
    log_level: sfn.LogLevel = sfn.LogLevel.ALL,
) -> sfn.StateMachine:
    """The state machine ``name`` (STANDARD unless told) running ``asl_path`` as written, logged and traced.

    ``task_functions`` are the functions whose ARNs fill the ``${placeholder}``s of the ASL, each the one
    the registry names for it (``functions.registry.Function.asl_placeholders``); the
    state machine may invoke exactly those functions (``invoked_functions`` names them in the cdk-nag
    acknowledgment). Execution data stays out of the logs: payment inputs carry buyer data and PSP
    tokens (a Standard execution's history holds every payload anyway). ``log_level``: a Standard
    workflow logs ``ALL`` (its history is kept by the service too); the Express payment workflow logs
    ``ERROR`` (its only history is the log; see docs/runbook.md, "Express workflow logs").
    """
    placeholders = registry.asl_functions(asl_path.name)
    by_spec = {fn.spec: fn.invoke_target for fn in task_functions}
    if set(by_spec) != set(placeholders.values()):
        raise ValueError(
            f"{asl_path.name}: its placeholders are filled by {sorted(f.name for f in placeholders.values())}"
        )
    substitutions = {placeholder: by_spec[spec] for placeholder, spec in placeholders.items()}
    machine = sfn.StateMachine(
        scope,
        construct_id,
        state_machine_name=name,
        state_machine_type=state_machine_type,
        definition_body=sfn.DefinitionBody.from_string(asl_path.read_text()),  # inline: the states are in the template
        definition_substitutions={key: fn.function_arn for key, fn in substitutions.items()},
        logs=sfn.LogOptions(destination=log_group, level=log_level, include_execution_data=False),
        tracing_enabled=True,
    )
    # The Task states invoke the functions by their unqualified ARNs, or their aliases' where the stage takes the
    # cold start off the wait (SnapStart or provisioned concurrency).
    machine.add_to_role_policy(
        iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[fn.function_arn for fn in substitutions.values()]
        )
    )
    acknowledge(
        machine,
        "AwsSolutions-IAM5[Resource::*]",
        "X-Ray tracing and the CloudWatch Logs vended-log delivery APIs (logs:CreateLogDelivery, ...) that "
        "Step Functions logging needs support no resource-level permissions; lambda:InvokeFunction is "
        f"granted on {invoked_functions} only.",
    )
    return machine


def evidence_bucket(
    scope: Construct,
    construct_id: str,
    *,
    access_logs: s3.IBucket,
    logs_prefix: str,
    lifecycle_rules: Sequence[s3.LifecycleRule],
) -> s3.Bucket:
    """A bucket of files that are the evidence of money movements (settlement files, payout files and the
    bank's answers): private, encrypted, TLS only, versioned, access-logged, kept when the stack goes."""
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=logs_prefix,
        lifecycle_rules=list(lifecycle_rules),
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )


def dead_letter_queue(scope: Construct, construct_id: str, *, stage: Stage, name: str, why: str) -> sqs.Queue:
    """A dead-letter queue: encrypted, TLS only, kept 14 days (what failed is the evidence); it has
    no dead-letter queue of its own (cdk-nag SQS3, acknowledged with ``why``)."""
    queue = sqs.Queue(
        scope,
        construct_id,
        queue_name=stage.resource_name(name),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(14),
    )
    acknowledge(queue, "AwsSolutions-SQS3", why)
    return queue


def consumed_queue(
    scope: Construct,
    construct_id: str,
    *,
    stage: Stage,
    name: str,
    consumer_timeout_s: float,
    dead_letters: sqs.IQueue,
    max_receive_count: int,
) -> sqs.Queue:
    """A queue a function consumes: encrypted, TLS only, kept 14 days; a message is hidden six times the
    consumer's timeout while it is handled (Lambda's advice for SQS event sources), and moves to
    ``dead_letters`` after ``max_receive_count`` receives."""
    return sqs.Queue(
        scope,
        construct_id,
        queue_name=stage.resource_name(name),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=cdk.Duration.seconds(consumer_timeout_s * 6),
        retention_period=cdk.Duration.days(14),
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receive_count, queue=dead_letters),
    )


def stream_pipe_role(scope: Construct, construct_id: str, *, stream_arn: str, description: str) -> iam.Role:
    """The execution role of an EventBridge Pipe of this account that reads the DynamoDB stream ``stream_arn``
    (and nothing else yet: the caller grants its enrichment, target, dead-letter queue and log group)."""
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=iam.ServicePrincipal(
            "pipes.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(scope).account}}
        ),
        description=description,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=[
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
            ],
            resources=[stream_arn],
        )
    )
    return role


def alarm_above_zero(
    scope: Construct, alarm_id: str, metric: cloudwatch.IMetric, description: str, topic: sns.ITopic
) -> cloudwatch.Alarm:
    """Alarm on ``topic`` as soon as one period of ``metric`` holds a value above zero; no data is not a breach."""
    alarm = metric.create_alarm(
        scope,
        alarm_id,
        alarm_description=description,
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(actions.SnsAction(topic))
    return alarm
