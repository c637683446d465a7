"""Recovery: the scheduled function that re-drives payments and refunds unfinished past their deadline.

``functions/recovery`` runs every minute (an EventBridge rule). It finds the due payments and
refunds through the sparse ``by_recovery_due`` index of the payments table (one Query per shard,
never a Scan), re-drives each through its workflow with the input of its first start (a refund
only when its execution is not running: DescribeExecution on the refund workflow's executions),
and after ``recovery_max_attempts`` re-drives parks what is still unsettled as NEEDS_ATTENTION
(``RecoveryGaveUp`` metric and alarm, in Observability; ``RefundRecoveryGaveUp``, with the refunds'
alarms). See ``payments/payin/recovery.py`` and ``payments/refunds/recovery.py`` for the protocol
and docs/runbook.md for the operator's side.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions import registry
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge_wildcard_resource
from infra.stage import Stage

SCHEDULE = cdk.Duration.minutes(1)


class Recovery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        state_machine_arn: str,
        refund_state_machine_arn: str,
        refund_executions_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PaymentsFunction(
            self,
            "Recovery",
            stage=stage,
            code=code,
            spec=registry.RECOVERY,
            tables=tables,
            settings={"state_machine_arn": state_machine_arn, "refund_state_machine_arn": refund_state_machine_arn},
        )
        fn = self.function
        fn.allow(["states:StartExecution"], [state_machine_arn, refund_state_machine_arn])
        fn.allow(["states:DescribeExecution"], [refund_executions_arn])
        acknowledge_wildcard_resource(
            fn.role,
            refund_executions_arn,
            "Refund executions are named after refund ids, unknown in advance; the wildcard covers only the "
            "executions of this stage's refund state machine, which the recovery reads before re-driving a refund.",
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Runs the payments recovery every minute",
            schedule=events.Schedule.rate(SCHEDULE),
            targets=[targets.LambdaFunction(fn.function, retry_attempts=0)],  # the next minute is the retry
        )
