"""One Lambda function of the payment system, with its role, log group and grants.

Every function is an entry of ``functions.registry`` (its name, handler, memory, timeout, reserved
concurrency, tables and actions): this construct builds it from that entry. Every function runs
the shared code asset on the same runtime and architecture, traces with X-Ray, logs JSON through
Powertools to its own log group, and has a role of its own that starts empty: the table grants are
the registry's table accesses (each also sets the variable through which ``payments.kernel.config.Settings``
finds the table), every other grant names exact resources and may only use actions the registry
declares for the function. ``PAYMENTS_STAGE`` marks the deployed stage: the handler's cold start
then requires every setting of the registry entry (``payments.kernel.config.load``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions import registry
from infra.bundling import ARCHITECTURE, RUNTIME
from infra.constructs.common import stage_log_group
from infra.nag import acknowledge, acknowledge_wildcard_resource
from infra.stage import SNAPSTART, Stage
from payments.kernel.config import STAGE_ENV, env_name

METRICS_NAMESPACE = "Payments"


class PaymentsFunction(Construct):
    """The registry entry ``spec``: ``functions/<name>/handler.py:handler`` as ``payments-<stage>-<name>``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        spec: registry.Function,
        tables: Mapping[str, dynamodb.ITable],
        settings: Mapping[str, str] | None = None,
        **function_options: object,
    ) -> None:
        """``tables``: the stage's tables by ``Settings`` field; ``settings``: the values of the entry's other
        required settings, by ``Settings`` field (set as their variables)."""
        super().__init__(scope, construct_id)
        self.spec = spec
        self.name = spec.name  # also the Powertools service name: the "service" metric dimension
        self.psp: registry.Psp = stage.psp  # type: ignore[assignment]
        function_name = stage.resource_name(spec.name)
        self.log_group = stage_log_group(self, "Logs", stage=stage, log_group_name=f"/aws/lambda/{function_name}")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: its own log group, tables and objects only",
        )
        self.log_group.grant_write(self.role)
        if spec.reserved_concurrency is not None:
            function_options["reserved_concurrent_executions"] = spec.reserved_concurrency
        cold_start = stage.cold_start.get(spec.name)
        if cold_start == SNAPSTART:
            function_options["snap_start"] = lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
        if cold_start is not None:
            # the version a deployment replaces is deleted with it: a SnapStart version's snapshot is billed for
            # as long as the version is active, and provisioned environments belong to the alias's version only
            function_options["current_version_options"] = lambda_.VersionOptions(
                removal_policy=cdk.RemovalPolicy.DESTROY
            )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=spec.description,
            code=code,
            handler=spec.handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            timeout=cdk.Duration.seconds(spec.timeout_s),
            memory_size=spec.memory_mb,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel[stage.log_level],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": spec.name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                # no response (payment data) in X-Ray: payments.kernel.observability.entry_point says so for
                # every handler; this says it for any method a later change traces
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                "LOG_LEVEL": stage.log_level,
                STAGE_ENV: stage.name,
            },
            **function_options,
        )
        #: what API Gateway and Step Functions invoke: the function, or its ``live`` alias (the version published
        #: at each deployment) where the stage takes its cold start off the wait (``Stage.cold_start``): SnapStart
        #: and provisioned concurrency apply to published versions only, never to $LATEST
        self.invoke_target: lambda_.IFunction = self.function
        if cold_start is not None:
            self.invoke_target = lambda_.Alias(
                self,
                "Live",
                alias_name="live",
                version=self.function.current_version,
                provisioned_concurrent_executions=cold_start if isinstance(cold_start, int) else None,
            )
        if cold_start == SNAPSTART:
            cdk.Annotations.of(self.function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "each deployment publishes the version its live alias names",
            )
        for setting, value in (settings or {}).items():
            self.set_setting(setting, value)
        for access in spec.tables_for(self.psp):
            self._use_table(access, tables[access.setting])
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

    def set_setting(self, setting: str, value: str) -> None:
        """Set the variable of ``Settings.<setting>``, which must be one the registry entry requires."""
        if setting not in self.spec.required_settings(self.psp):
            raise ValueError(f"{self.name}: {setting!r} is not a setting of its registry entry (functions/registry.py)")
        self.function.add_environment(env_name(setting), value)

    def _use_table(self, access: registry.TableAccess, table: dynamodb.ITable) -> None:
        """Set the table's variable to its name; allow the access's actions on it and on its indexes."""
        self.function.add_environment(env_name(access.setting), table.table_name)
        resources = [table.table_arn, *(f"{table.table_arn}/index/{index}" for index in access.indexes)]
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=[f"dynamodb:{action}" for action in access.actions], resources=resources)
        )

    def _check_actions(self, actions: Sequence[str]) -> None:
        undeclared = sorted(set(actions) - self.spec.actions_for(self.psp))
        if undeclared:
            raise ValueError(f"{self.name}: {undeclared} not declared in its registry entry (functions/registry.py)")

    def allow(
        self, actions: Sequence[str], resources: Sequence[str], conditions: Mapping[str, object] | None = None
    ) -> None:
        """Allow ``actions`` (each declared by the registry entry) on exactly ``resources`` (under ``conditions``)."""
        self._check_actions(actions)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(actions), resources=list(resources), conditions=dict(conditions) if conditions else None
            )
        )

    def grant(self, grant: Callable[[iam.IGrantable], iam.Grant]) -> iam.Grant:
        """Run a CDK ``grant_*`` method for this role; the actions it grants must be declared in the registry."""
        result = grant(self.role)
        if result.principal_statement is not None:
            self._check_actions(result.principal_statement.actions)
        return result

    def use_objects(
        self, bucket: s3.IBucket, actions: Sequence[str], key_patterns: Sequence[str], *, reason: str
    ) -> None:
        """Allow ``actions`` on the objects whose keys match ``key_patterns`` (e.g. ``incoming/*``).

        ``reason`` says why a key prefix, not a key, is granted (it becomes the cdk-nag acknowledgment).
        """
        resources = [bucket.arn_for_objects(pattern) for pattern in key_patterns]
        self.allow([f"s3:{action}" for action in actions], resources)
        for resource in resources:
            acknowledge_wildcard_resource(self.role, resource, reason)
