"""One Lambda function of the payment system, with its role, log group and grants.

Every function runs the shared code asset on the same runtime and architecture,
traces with X-Ray, logs JSON through Powertools to its own log group, and has a
role of its own that starts empty: each grant below names the exact actions on
the exact resources, and each table grant also sets the environment variable
through which ``payments.kernel.config.Settings`` finds the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME
from infra.constructs.common import stage_log_group
from infra.nag import acknowledge, acknowledge_wildcard_resource
from infra.stage import Stage

METRICS_NAMESPACE = "Payments"


class PaymentsFunction(Construct):
    """``functions/<name>/handler.py:handler`` deployed as ``payments-<stage>-<name>``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        name: str,
        description: str,
        timeout: cdk.Duration,
        memory_size: int,
        environment: dict[str, str] | None = None,
        **function_options: object,
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name  # also the Powertools service name: the "service" metric dimension
        function_name = stage.resource_name(name)
        self.log_group = stage_log_group(self, "Logs", stage=stage, log_group_name=f"/aws/lambda/{function_name}")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: its own log group, tables and objects only",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            code=code,
            handler=f"functions.{name}.handler.handler",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            timeout=timeout,
            memory_size=memory_size,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel[stage.log_level],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                # no response (payment data) in X-Ray: payments.observability.entry_point says so for
                # every handler; this says it for any method a later change traces
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                "LOG_LEVEL": stage.log_level,
                **(environment or {}),
            },
            **function_options,
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments and xray:PutTelemetryRecords (added by active tracing) support no "
            "resource-level permissions; no other statement of this role uses '*'.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            f"The project targets {RUNTIME.name}: the dependency wheels are built for it and the code is tested "
            "on it; moving to a newer runtime is a deliberate upgrade, not a side effect of a CDK update.",
        )

    def use_table(
        self,
        setting: str,
        table: dynamodb.ITable,
        actions: Sequence[str],
        *,
        indexes: Sequence[str] = (),
    ) -> None:
        """Set ``SETTING`` (a ``Settings`` field upper-cased) to the table name; allow ``actions`` on it.

        ``indexes`` lists the GSIs the function queries: each is granted by its own ARN.
        """
        self.function.add_environment(setting.upper(), table.table_name)
        resources = [table.table_arn, *(f"{table.table_arn}/index/{index}" for index in indexes)]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=[f"dynamodb:{action}" for action in actions], resources=resources)
        )

    def use_objects(self, bucket: s3.IBucket, actions: Sequence[str], key_patterns: Sequence[str], *, reason: str) -> None:
        """Allow ``actions`` on the objects whose keys match ``key_patterns`` (e.g. ``incoming/*``).

        ``reason`` says why a key prefix, not a key, is granted (it becomes the cdk-nag acknowledgment).
        """
        resources = [bucket.arn_for_objects(pattern) for pattern in key_patterns]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=[f"s3:{action}" for action in actions], resources=resources)
        )
        for resource in resources:
            acknowledge_wildcard_resource(self.role, resource, reason)
