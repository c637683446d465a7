"""Simulated PSP: the nightly job that writes the simulator's settlement file.

The simulator itself runs in-process inside the executor (see
``payments.psp.simulator``) and keeps its own record of charges in the PSP
table. Like a real PSP it reports what it settled once a day: at 01:00 UTC
(after the ledger's copy in S3 holds the whole day: its end plus the copy's 30-minute delivery lag,
``payments.reconciliation.columnar``) this job writes the previous UTC day's charges as
``incoming/simulated-psp/<YYYY-MM-DD>.csv`` into the settlement bucket, which
triggers reconciliation.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions import registry
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.stage import Stage

PSP_NAME = "simulated-psp"  # Settings.psp_name; also the settlement file prefix under incoming/


class SimulatedPsp(Construct):
    """``functions/psp``, run nightly by an EventBridge schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        settlement_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PaymentsFunction(
            self,
            "Settle",
            stage=stage,
            code=code,
            spec=registry.PSP,
            tables=tables,
            settings={"psp_name": PSP_NAME, "settlement_bucket": settlement_bucket.bucket_name},
        )
        self.function.use_objects(
            settlement_bucket,
            ["PutObject"],
            [f"incoming/{PSP_NAME}/*"],
            reason="One settlement file per day, named by its date: the job writes only under its own prefix.",
        )
        self.schedule = events.Rule(
            self,
            "Nightly",
            description="Settle the previous UTC day of the simulated PSP",
            schedule=events.Schedule.cron(minute="0", hour="1"),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=2)],
        )
