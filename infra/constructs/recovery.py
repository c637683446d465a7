"""Recovery: the scheduled function that re-drives payments unfinished past their deadline.

``functions/recovery`` runs every minute (an EventBridge rule). It finds the due payments
through the sparse ``by_recovery_due`` index of the payments table (one Query per shard,
never a Scan), re-drives each through the payment workflow with the input of its first
start, and after ``recovery_max_attempts`` re-drives parks what is still unsettled as
NEEDS_ATTENTION (``RecoveryGaveUp`` metric and alarm, in Observability). See
``payments/payin/recovery.py`` for the protocol and docs/runbook.md for the operator's side.
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PaymentsFunction(
            self,
            "Recovery",
            stage=stage,
            code=code,
            spec=registry.RECOVERY,
            tables=tables,
            settings={"state_machine_arn": state_machine_arn},
        )
        fn = self.function
        fn.allow(["states:StartExecution"], [state_machine_arn])
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Runs the payments recovery every minute",
            schedule=events.Schedule.rate(SCHEDULE),
            targets=[targets.LambdaFunction(fn.function, retry_attempts=0)],  # the next minute is the retry
        )
