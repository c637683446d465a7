"""Refunds and the PSP's notifications (issue 18): functions, the refund workflow, the queue, routes, alarms.

* ``refunds``: ``POST /v1/refunds`` and ``GET /v1/refunds/{refund_id}`` (IAM-authenticated like the
  rest of the API) and the tasks of the refund workflow (``stepfunctions/refund.asl.json``, a
  STANDARD state machine with a fixed name: executions are named after refund ids, started once).
* ``notifications``: ``POST /v1/psp/notifications``. **Not IAM-authenticated**: a PSP cannot sign
  SigV4; the HMAC of every item is its authentication (the key is a Secrets Manager secret of the
  stage), and the route has its own, lower throttle. It only verifies, stores and enqueues.
* ``notifications_consumer``: applies the stored notifications from an encrypted SQS queue (partial
  batch failures); a message that keeps failing moves to a dead-letter queue, which raises an alarm.

Every role is granted the exact table actions its code uses and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from functions import registry
from infra.constructs.adyen_psp import AdyenPsp
from infra.constructs.checkout_api import answer_other_methods_405
from infra.constructs.common import (
    alarm_above_zero,
    asl_state_machine,
    consumed_queue,
    dead_letter_queue,
    fixed_name_state_machine_arns,
    stage_log_group,
)
from infra.constructs.function import PaymentsFunction
from infra.constructs.observability import custom_metric
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge, acknowledge_wildcard_resource
from infra.stage import Stage
from payments.kernel.config import Settings

ASL_PATH = Path(__file__).resolve().parents[2] / "stepfunctions" / "refund.asl.json"
PERIOD = cdk.Duration.minutes(5)
#: the webhook route's own throttle, as a share of the stage's: an unauthenticated route must not be a
#: way to exhaust the API's limit (a PSP retries what was throttled: delivery is at least once)
NOTIFICATIONS_SHARE = 2  # at most half of the stage's rate and burst
CONSUMER_TIMEOUT = cdk.Duration.seconds(registry.NOTIFICATIONS_CONSUMER.timeout_s)
#: the refund state machine's name in a stage (``stage.resource_name``): fixed, so its ARN is known in advance
STATE_MACHINE = "refund"


def state_machine_arns(scope: Construct, stage: Stage) -> tuple[str, str]:
    """(ARN of the stage's refund state machine, ARN pattern of its executions): for the refunds function
    and the recovery (which re-drives refunds whose workflow is not running)."""
    name = stage.resource_name(STATE_MACHINE)
    return fixed_name_state_machine_arns(scope, name, executions=f"{name}:*")


class Refunds(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        api: apigw.RestApi,
        adyen: AdyenPsp | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        shards = {
            "wallet_shards": str(stage.wallet_shards),
            "ledger_total_shards": str(stage.ledger_total_shards),
            "psp_name": stage.psp_name,
        }
        #: the merchant account the PSP's notifications must name: Adyen's, or (simulated PSP, whose
        #: notifications carry the same setting) the settings' own value
        merchant_account = (
            adyen.config.merchant_account
            if adyen is not None
            else str(Settings.model_fields["payments_psp_merchant_account"].default)
        )
        name = stage.resource_name(STATE_MACHINE)
        machine_arn, executions_arn = state_machine_arns(self, stage)

        # --- the refunds API and the refund workflow's tasks ------------------------------
        self.function = PaymentsFunction(
            self,
            "Refunds",
            stage=stage,
            code=code,
            spec=registry.REFUNDS,
            tables=tables,
            settings={"refund_state_machine_arn": machine_arn, "payments_psp": stage.payments_psp, **shards},
        )
        fn = self.function
        if adyen is not None:
            # refunds go to Adyen (/payments/{pspReference}/refunds): its settings and its API key only
            # (with the simulator, the PSP table: the registry's access)
            adyen.use_api_key(fn)
        fn.allow(["states:StartExecution"], [machine_arn])

        self.log_group = stage_log_group(
            self, "WorkflowLogs", stage=stage, log_group_name=f"/aws/vendedlogs/states/{name}"
        )
        self.state_machine = asl_state_machine(
            self,
            "StateMachine",
            name=name,
            asl_path=ASL_PATH,
            task_functions=[fn],
            log_group=self.log_group,
            invoked_functions="the refunds function",
        )
        del executions_arn  # the function starts executions; it never reads them

        # --- notifications: webhook -> store -> queue -> consumer --------------------------
        #: the notification HMAC key: Adyen's stages keep it with the Adyen construct (imported or created
        #: empty, rotation with a previous key: docs/deploy.md); the simulated PSP's stages generate one here
        self.hmac_key: secretsmanager.ISecret | None = None
        if adyen is None:
            self.hmac_key = secretsmanager.Secret(
                self,
                "NotificationHmacKey",
                secret_name=stage.resource_name("psp-notification-hmac-key"),
                description="HMAC key (hex) of the PSP's notifications; set it to the key of the PSP's webhook configuration",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=64,
                    exclude_punctuation=True,
                    exclude_uppercase=True,
                    exclude_characters="ghijklmnopqrstuvwxyz",
                ),
                removal_policy=stage.disposable_removal_policy,
            )
            acknowledge(
                self.hmac_key,
                "AwsSolutions-SMG4",
                "The key is generated by the PSP (Adyen Customer Area) and rotated there; the new one is pasted here, "
                "comma-separated with the old one while queued notifications are still signed with it.",
            )
        self.dead_letters = dead_letter_queue(
            self,
            "NotificationDeadLetters",
            stage=stage,
            name="notifications-dlq",
            why="This queue is itself the dead-letter queue of the notifications queue; its depth raises an alarm.",
        )
        self.queue = consumed_queue(
            self,
            "Notifications",
            stage=stage,
            name="notifications",
            consumer_timeout_s=CONSUMER_TIMEOUT.to_seconds(),
            dead_letters=self.dead_letters,
            max_receive_count=8,
        )
        self.webhook = PaymentsFunction(
            self,
            "Webhook",
            stage=stage,
            code=code,
            spec=registry.NOTIFICATIONS,
            tables=tables,
            settings={
                "notifications_queue_url": self.queue.queue_url,
                "payments_psp_merchant_account": merchant_account,
                # the notifications' live must be "true" on a live Adyen stage, "false" on any other
                "adyen_environment": adyen.config.environment if adyen is not None else "test",
            },
        )
        self.webhook.grant(self.queue.grant_send_messages)
        if adyen is not None:
            adyen.grant_hmac_keys(self.webhook)
        elif self.hmac_key is not None:
            self.webhook.set_setting("payments_psp_hmac_key_secret", self.hmac_key.secret_arn)
            self.webhook.set_setting("adyen_secret_max_age", str(Settings.model_fields["adyen_secret_max_age"].default))
            # GetSecretValue only (Powertools needs nothing else; grant_read would add DescribeSecret)
            self.webhook.allow(["secretsmanager:GetSecretValue"], [self.hmac_key.secret_arn])

        self.consumer = PaymentsFunction(
            self,
            "Consumer",
            stage=stage,
            code=code,
            spec=registry.NOTIFICATIONS_CONSUMER,
            tables=tables,
            settings={**shards, "payments_psp_merchant_account": merchant_account, "payments_psp": stage.payments_psp},
        )
        consumer = self.consumer
        consumer.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True, max_concurrency=5)
        )

        # --- routes ------------------------------------------------------------------------
        v1 = api.root.get_resource("v1") or api.root.add_resource("v1")
        refunds = v1.add_resource("refunds")
        integration = apigw.LambdaIntegration(fn.function, proxy=True, allow_test_invoke=False)
        refunds.add_method("POST", integration, request_parameters={"method.request.header.Idempotency-Key": True})
        refund = refunds.add_resource("{refund_id}")
        refund.add_method("GET", integration)
        notifications = v1.add_resource("psp").add_resource("notifications")
        # every other method: 405 problem with Allow, as the functions answer locally (issue 14)
        for resource, allow in ((refunds, "POST"), (refund, "GET"), (notifications, "POST")):
            answer_other_methods_405(resource, allow)
        webhook_method = notifications.add_method(
            "POST",
            apigw.LambdaIntegration(self.webhook.function, proxy=True, allow_test_invoke=False),
            authorization_type=apigw.AuthorizationType.NONE,
        )
        for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                webhook_method,
                rule,
                "The PSP's webhook cannot sign SigV4 nor hold Cognito tokens: the HMAC signature of every "
                "notification item (verified in constant time, 401 otherwise) authenticates it, and the route is throttled.",
            )
        stage_resource = api.deployment_stage.node.default_child
        if not isinstance(stage_resource, apigw.CfnStage):
            raise TypeError(f"expected the deployment stage's CfnStage, found {type(stage_resource).__name__}")
        stage_resource.add_property_override(
            "MethodSettings",
            [
                *[_method_setting(s) for s in (stage_resource.method_settings or [])],
                {
                    "HttpMethod": "POST",
                    "ResourcePath": "/~1v1~1psp~1notifications",
                    "ThrottlingRateLimit": max(1, stage.api_rate_limit // NOTIFICATIONS_SHARE),
                    "ThrottlingBurstLimit": max(1, stage.api_burst_limit // NOTIFICATIONS_SHARE),
                    "LoggingLevel": "ERROR",
                    "MetricsEnabled": True,
                    "DataTraceEnabled": False,
                },
            ],
        )
        self.api = api
        self.functions = [self.function, self.webhook, self.consumer]

    def grant_merchant(self, policy: iam.ManagedPolicy, stage: Stage) -> None:
        """Let the merchant's backend (the checkout API's merchant policy) refund and read refunds."""
        read = self.api.arn_for_execute_api("GET", "/v1/refunds/*", stage.name)
        policy.add_statements(
            iam.PolicyStatement(
                actions=["execute-api:Invoke"],
                resources=[self.api.arn_for_execute_api("POST", "/v1/refunds", stage.name), read],
            )
        )
        acknowledge_wildcard_resource(policy, read, "The route's path parameter is the refund id, unknown in advance.")

    def add_alarms(self, topic: object, alarms: list[cloudwatch.Alarm], dashboard: cloudwatch.Dashboard) -> None:
        """The alarms of money flowing back, on the stage's alarm topic, and their dashboard row."""
        metrics = {
            "RefundExecutionsFailed": (
                self.state_machine.metric_failed(period=PERIOD),
                "A refund workflow execution failed",
            ),
            "RefundNeedsAttention": (
                _metric("RefundNeedsAttention", registry.REFUNDS.name),
                "A refund is parked as NEEDS_ATTENTION: resolve it",
            ),
            "ChargebackOnRefundedOrder": (
                _metric("ChargebackOnRefundedOrder", registry.NOTIFICATIONS_CONSUMER.name),
                "A chargeback hit an order already refunded: the platform has a claim to pursue (order NEEDS_ATTENTION)",
            ),
            "RefundReturnedByScheme": (
                _metric("RefundReturnedByScheme", registry.NOTIFICATIONS_CONSUMER.name),
                "A refund came back (REFUND_FAILED / REFUNDED_REVERSED): the refund is NEEDS_ATTENTION, decide what the money does",
            ),
            "DisputeOnUnknownCharge": (
                _metric("DisputeOnUnknownCharge", registry.NOTIFICATIONS_CONSUMER.name),
                "A chargeback names a charge that is not ours (or contradicts ours): recorded, never booked; check with the PSP",
            ),
            "RefundRecoveryGaveUp": (
                _metric("RefundRecoveryGaveUp", registry.RECOVERY.name),
                "A refund is still PENDING after the recovery's re-drives of its workflow: it is NEEDS_ATTENTION, its "
                "amount still reserved (docs/runbook.md, 'Automatic recovery')",
            ),
            "NotificationDeadLettersVisible": (
                self.dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                "A PSP notification could not be applied after retries: it is in the dead-letter queue",
            ),
        }
        for alarm_id, (metric, description) in metrics.items():
            alarms.append(alarm_above_zero(self, alarm_id, metric, description, topic))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Refunds, chargebacks and PSP notifications",
                left=[
                    self.state_machine.metric_started(period=PERIOD),
                    self.state_machine.metric_succeeded(period=PERIOD),
                    _metric("RefundSucceeded", registry.REFUNDS.name),
                    _metric("RefundFailed", registry.REFUNDS.name),
                    _metric("RefundsRedriven", registry.RECOVERY.name),
                    _metric("ChargebackBooked", registry.NOTIFICATIONS_CONSUMER.name),
                    _metric("ChargebackReversed", registry.NOTIFICATIONS_CONSUMER.name),
                    _metric("SecondChargebackBooked", registry.NOTIFICATIONS_CONSUMER.name),
                    _metric("NotificationReceived", registry.NOTIFICATIONS.name),
                    _metric("NotificationSignatureRejected", registry.NOTIFICATIONS.name),
                ],
                right=[m for m, _ in metrics.values()],
                width=24,
            )
        )


def _metric(name: str, service: str) -> cloudwatch.Metric:
    return custom_metric(name, service)


def _method_setting(setting: object) -> object:
    """A stage's existing MethodSetting (CDK property object) in CloudFormation's casing."""
    if isinstance(setting, dict):
        return setting
    return cdk.Stack.of(setting).resolve(setting) if hasattr(setting, "node") else _to_cfn(setting)


def _to_cfn(setting: object) -> dict[str, object]:
    fields = {
        "http_method": "HttpMethod",
        "resource_path": "ResourcePath",
        "logging_level": "LoggingLevel",
        "metrics_enabled": "MetricsEnabled",
        "data_trace_enabled": "DataTraceEnabled",
        "throttling_rate_limit": "ThrottlingRateLimit",
        "throttling_burst_limit": "ThrottlingBurstLimit",
        "caching_enabled": "CachingEnabled",
        "cache_ttl_in_seconds": "CacheTtlInSeconds",
        "cache_data_encrypted": "CacheDataEncrypted",
    }
    return {cfn: getattr(setting, py) for py, cfn in fields.items() if getattr(setting, py, None) is not None}
