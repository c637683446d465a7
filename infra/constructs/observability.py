"""Observability: the alarms that make every failure loud, their SNS topic, and a dashboard.

Alarms (all to one encrypted SNS topic, optionally subscribed by e-mail):

* the payment workflow: failed, timed-out or aborted executions;
* the reconcile state machine (large settlement files): failed, timed-out or aborted executions
  (any of them leaves a file without its report);
* ``Payments/NeedsAttention`` (service ``payment``): an order parked as NEEDS_ATTENTION;
* ``Payments/RecoveryGaveUp`` (service ``recovery``): a payment still unfinished after its automatic
  re-drives, its orders parked NEEDS_ATTENTION;
* ``Payments/ReconciliationMismatches`` (service ``reconcile``): a settlement mismatch;
* every function: Errors and Throttles;
* every table: ThrottledRequests and SystemErrors;
* the reconcile dead-letter queue: any message in it.

The custom metrics are emitted by Powertools Metrics, which always adds the
``service`` dimension (``POWERTOOLS_SERVICE_NAME``, the function's short name).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions import registry
from infra.constructs.common import alarm_above_zero
from infra.constructs.function import METRICS_NAMESPACE, PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.stage import Stage

#: the synthesis warning of a production stage whose alarm topic nobody hears
NO_ALARM_SUBSCRIBER = "payments:no-alarm-subscriber"

PERIOD = cdk.Duration.minutes(5)
#: The table operations our functions use (an alarm's metric math holds at most 10 metrics).
TABLE_OPERATIONS = (
    dynamodb.Operation.GET_ITEM,
    dynamodb.Operation.BATCH_GET_ITEM,
    dynamodb.Operation.QUERY,
    dynamodb.Operation.PUT_ITEM,
    dynamodb.Operation.UPDATE_ITEM,
    dynamodb.Operation.DELETE_ITEM,
    dynamodb.Operation.BATCH_WRITE_ITEM,
    dynamodb.Operation.TRANSACT_WRITE_ITEMS,
)


class Observability(Construct):
    """Alarms on everything that must never fail silently, and the payment-flow dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        api: apigw.RestApi,
        state_machine: sfn.StateMachine,
        reconcile_state_machine: sfn.StateMachine,
        functions: Sequence[PaymentsFunction],
        tables: PaymentTables,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the {stage.name} payments alarm topic",
            enable_key_rotation=True,
            removal_policy=stage.disposable_removal_policy,
        )
        # CloudWatch alarms publish to an encrypted topic only if the key lets CloudWatch use it.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic = sns.Topic(
            self,
            "Alarms",
            topic_name=stage.resource_name("alarms"),
            display_name=f"Payments {stage.name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if stage.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(stage.alarm_email))
        elif stage.production and not stage.alarm_subscribed_elsewhere:
            cdk.Annotations.of(cdk.Stack.of(self)).add_warning_v2(
                NO_ALARM_SUBSCRIBER,
                f"production stage {stage.name}: nobody is subscribed to the alarm topic, so every alarm of the "
                "stage (parked payments, mismatches, dead letters) goes unheard: set alarmEmail, or subscribe "
                "PagerDuty or AWS Chatbot to the AlarmTopicArn output and set alarmSubscribedElsewhere "
                "(docs/deploy.md, 'Alarms: who hears them')",
            )
        self.alarms: list[cloudwatch.Alarm] = []

        workflow_metrics = {
            "ExecutionsFailed": state_machine.metric_failed(period=PERIOD),
            "ExecutionsTimedOut": state_machine.metric_timed_out(period=PERIOD),
            "ExecutionsAborted": state_machine.metric_aborted(period=PERIOD),
        }
        for alarm_id, metric in workflow_metrics.items():
            self._alarm(alarm_id, metric, "A payment workflow execution did not complete: find it in the console")
        reconcile_metrics = {
            "ReconcileExecutionsFailed": reconcile_state_machine.metric_failed(period=PERIOD),
            "ReconcileExecutionsTimedOut": reconcile_state_machine.metric_timed_out(period=PERIOD),
            "ReconcileExecutionsAborted": reconcile_state_machine.metric_aborted(period=PERIOD),
        }
        for alarm_id, metric in reconcile_metrics.items():
            self._alarm(
                alarm_id,
                metric,
                "A large settlement file was not reconciled (reconcile state machine): find the execution in the "
                "console, fix the cause, then start a new execution (see docs/deploy.md)",
            )
        needs_attention = self._custom_metric("NeedsAttention", service=registry.PAYMENT.name)
        self._alarm("NeedsAttention", needs_attention, "A payment order is parked as NEEDS_ATTENTION: resolve it")
        gave_up = self._custom_metric("RecoveryGaveUp", service=registry.RECOVERY.name)
        self._alarm(
            "RecoveryGaveUp",
            gave_up,
            "A payment is still unfinished after its automatic re-drives: its orders are parked NEEDS_ATTENTION "
            "(docs/runbook.md, 'Automatic recovery')",
        )
        redriven = self._custom_metric("PaymentsRedriven", service=registry.RECOVERY.name)
        mismatches = self._custom_metric("ReconciliationMismatches", service=registry.RECONCILE.name)
        self._alarm("ReconciliationMismatches", mismatches, "A settlement file does not match the ledger: see reports/")
        for fn in functions:
            self._alarm(f"{fn.name}Errors", fn.function.metric_errors(period=PERIOD), f"{fn.name} function errors")
            self._alarm(f"{fn.name}Throttles", fn.function.metric_throttles(period=PERIOD), f"{fn.name} throttled")
        for setting, table in tables.items():
            throttled = table.metric_throttled_requests_for_operations(operations=list(TABLE_OPERATIONS), period=PERIOD)
            errors = table.metric_system_errors_for_operations(operations=list(TABLE_OPERATIONS), period=PERIOD)
            self._alarm(f"{setting}Throttled", throttled, f"{setting}: throttled requests")
            self._alarm(f"{setting}SystemErrors", errors, f"{setting}: DynamoDB system errors")
        self._alarm(
            "ReconcileDeadLetters",
            dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            "A settlement file could not be reconciled after retries: the event is in the dead-letter queue",
        )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=stage.resource_name("flow"),
            default_interval=cdk.Duration.hours(24),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(period=PERIOD),
                    api.metric_client_error(period=PERIOD),
                    api.metric_server_error(period=PERIOD),
                ],
                right=[api.metric_latency(period=PERIOD, statistic="p99")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Payment workflow executions",
                left=[
                    state_machine.metric_started(period=PERIOD),
                    state_machine.metric_succeeded(period=PERIOD),
                    *workflow_metrics.values(),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Reconciliation of large files (state machine executions)",
                left=[
                    reconcile_state_machine.metric_started(period=PERIOD),
                    reconcile_state_machine.metric_succeeded(period=PERIOD),
                    *reconcile_metrics.values(),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Needs attention, recovery and reconciliation",
                left=[needs_attention, redriven, gave_up, mismatches],
                right=[dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[fn.function.metric_errors(period=PERIOD, label=fn.name) for fn in functions],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function duration p99",
                left=[fn.function.metric_duration(period=PERIOD, statistic="p99", label=fn.name) for fn in functions],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=12),
        )

    @staticmethod
    def _custom_metric(name: str, *, service: str) -> cloudwatch.Metric:
        return custom_metric(name, service)

    def _alarm(self, alarm_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        self.alarms.append(alarm_above_zero(self, alarm_id, metric, description, self.topic))


def custom_metric(name: str, service: str) -> cloudwatch.Metric:
    """A metric the functions emit (namespace Payments, dimension ``service``: the function's name), summed."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic="Sum",
        period=PERIOD,
    )
