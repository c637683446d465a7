"""The bank rail: the bank bucket, the bank reconciliation and, on a stage without a real bank, the simulated bank.

Key layout of the bank bucket (``Settings.bank_bucket``):

* ``outgoing/pain001/<MsgId>.xml``  our SEPA payout files (the payout run writes them); on a stage whose
  ``bank`` is ``simulated`` a new one invokes the simulated bank, which answers at once
* ``incoming/bank/...``  what the bank sends back (pain.002, camt.053, camt.054); a new object here invokes
  ``functions/bank_reconcile``
* ``reports/incoming/bank/...json``  the report of each bank file; ``quarantine/bank/...`` (+ ``.reason.json``)
  the files that could not be read
* ``bank/...``  the simulated bank's own records (what it received, the days it closed)

How files reach a real bank (``bank`` ``s3-drop`` or ``sftp``): docs/payouts-bank.md. Nothing is lost: S3
invokes the reconciliation asynchronously; after two retries the event goes to an encrypted dead-letter
queue, whose depth raises an alarm. Returned and failed payouts raise alarms of their own (metrics
``PayoutsReturned`` and ``PayoutsFailed`` of the bank reconciliation).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions import registry
from infra.constructs.common import alarm_above_zero, dead_letter_queue, evidence_bucket
from infra.constructs.function import PaymentsFunction
from infra.constructs.observability import PERIOD, custom_metric
from infra.constructs.tables import PaymentTables
from infra.stage import Stage
from payments.kernel.config import Settings

OUTGOING, INCOMING, REPORTS, QUARANTINE, SIMULATOR = (
    "outgoing/pain001/",
    "incoming/bank/",
    "reports/",
    "quarantine/",
    "bank/",
)
#: the simulated bank closes the UTC day at 23:55 (the evening's payout run comes before)
CLOSE_DAY = events.Schedule.cron(minute="55", hour="23")


class Bank(Construct):
    """The bank bucket, ``functions/bank_reconcile`` with its dead-letter queue, the simulated bank (if any)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        access_log_bucket: s3.IBucket,
        settlement_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        # payout files and the bank's answers are the evidence of money movements
        self.bucket = evidence_bucket(
            self,
            "Bank",
            access_logs=access_log_bucket,
            logs_prefix="bank/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=cdk.Duration.days(90),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                )
            ],
        )
        self.dead_letters = dead_letter_queue(
            self,
            "DeadLetters",
            stage=stage,
            name="bank-reconcile-dlq",
            why=(
                "This queue is itself the dead-letter destination of the bank reconciliation; its depth raises an "
                "alarm and an operator replays its messages."
            ),
        )
        self.reconcile = PaymentsFunction(
            self,
            "BankReconcile",
            stage=stage,
            code=code,
            spec=registry.BANK_RECONCILE,
            tables=tables,
            settings={
                "bank_bucket": self.bucket.bucket_name,
                "psp_name": stage.psp_name,  # the PSP whose receivable the PSP's payout to the platform credits
                "wallet_shards": str(stage.wallet_shards),
                "ledger_total_shards": str(stage.ledger_total_shards),
            },
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        fn = self.reconcile
        fn.use_objects(
            self.bucket,
            ["GetObject", "DeleteObject"],  # read a bank file; delete it when it is moved to quarantine/
            [f"{INCOMING}*"],
            reason="The bank names its files; they arrive under incoming/bank/.",
        )
        fn.use_objects(
            self.bucket,
            ["GetObject"],  # the original pain.001 a whole-file rejection names
            [f"{OUTGOING}*"],
            reason="Payout files are named by their MsgId, unknown in advance.",
        )
        fn.use_objects(
            self.bucket,
            ["PutObject"],
            [f"{REPORTS}{INCOMING}*", f"{QUARANTINE}bank/*"],
            reason="Reports and quarantined files are named after the bank's file, unknown in advance.",
        )
        # without s3:ListBucket a key already moved to quarantine/ answers 403, not 404 (a repeated event)
        fn.allow(["s3:ListBucket"], [self.bucket.bucket_arn])
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(fn.function), s3.NotificationKeyFilter(prefix=INCOMING)
        )
        self.functions = [fn]
        self.simulated: PaymentsFunction | None = None
        if stage.bank == "simulated":
            self.simulated = self._simulated_bank(stage, code, tables, settlement_bucket)
            self.functions.append(self.simulated)

    def _simulated_bank(
        self, stage: Stage, code: lambda_.Code, tables: PaymentTables, settlement_bucket: s3.IBucket
    ) -> PaymentsFunction:
        defaults = Settings.model_fields
        fn = PaymentsFunction(
            self,
            "SimulatedBank",
            stage=stage,
            code=code,
            spec=registry.SIMULATED_BANK,
            tables=tables,
            settings={
                "bank_bucket": self.bucket.bucket_name,
                "settlement_bucket": settlement_bucket.bucket_name,
                "psp_name": stage.psp_name,
                # the platform's account the simulated bank holds: the payout debtor of the stage
                **{
                    name: str(defaults[name].default)
                    for name in ("payout_debtor_name", "payout_debtor_iban", "payout_debtor_bic")
                },
            },
        )
        fn.use_objects(
            self.bucket,
            ["GetObject"],
            [f"{OUTGOING}*"],
            reason="Payout files are named by their MsgId, unknown in advance.",
        )
        fn.use_objects(
            self.bucket,
            ["PutObject"],  # conditional puts (If-None-Match): its answers, statements and records are written once
            [f"{INCOMING}pain002/*"],
            reason="The bank's answers are named by their report id, unknown in advance.",
        )
        fn.use_objects(
            self.bucket,
            ["GetObject", "PutObject"],  # a day closed again answers the statement already written
            [f"{INCOMING}camt053/*"],
            reason="The statements are named by their day.",
        )
        fn.use_objects(
            self.bucket,
            ["GetObject", "PutObject"],
            [f"{SIMULATOR}*"],
            reason="The simulated bank's records are named by MsgId and day, unknown in advance.",
        )
        fn.allow(["s3:ListBucket"], [self.bucket.bucket_arn])  # the days it closed, the files of a day
        fn.use_objects(
            settlement_bucket,
            ["GetObject"],
            [f"incoming/{stage.psp_name}/*"],
            reason="The PSP's settlement file of the day (its MerchantPayout row), named by its date.",
        )
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(fn.function), s3.NotificationKeyFilter(prefix=OUTGOING)
        )
        events.Rule(
            self,
            "CloseDay",
            description="The simulated bank books the UTC day: its camt.053 statement",
            schedule=CLOSE_DAY,
            targets=[
                targets.LambdaFunction(fn.function, event=events.RuleTargetInput.from_object({"action": "close_day"}))
            ],
        )
        return fn

    def add_alarms(self, topic: sns.ITopic, alarms: list[cloudwatch.Alarm], dashboard: cloudwatch.Dashboard) -> None:
        """Returned and failed payouts, the dead letters: alarms on the stage's topic, and their dashboard row."""
        metrics = {
            "PayoutsReturned": (
                _metric("PayoutsReturned"),
                "A payout came back from the seller's bank (RETURNED): its money is back in available, the payout "
                "account is marked invalid; ask the seller for a new account",
            ),
            "PayoutsFailed": (
                _metric("PayoutsFailed"),
                "The bank rejected a payout (FAILED): its money is back in available; see its failure reason",
            ),
            "BankReconcileDeadLetters": (
                self.dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                "A bank file could not be reconciled after retries: the event is in the dead-letter queue",
            ),
        }
        for alarm_id, (metric, description) in metrics.items():
            alarms.append(alarm_above_zero(self, alarm_id, metric, description, topic))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Bank answers: payouts failed and returned, mismatches, quarantined files",
                left=[m for m, _ in metrics.values()],
                right=[_metric("BankMismatches"), _metric("BankFilesQuarantined")],
                width=24,
            )
        )


def _metric(name: str) -> cloudwatch.Metric:
    return custom_metric(name, registry.BANK_RECONCILE.name)
