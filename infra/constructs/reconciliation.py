"""Reconciliation: the settlement bucket and the function that matches settlement files to the ledger.

Key layout of the settlement bucket:

* ``incoming/<source>/...``  settlement files (PSP, bank); a new object here invokes the reconcile function
* ``reports/<input key>.json``  the reconciliation report of each input
* ``quarantine/<input key>``  inputs that could not be read at all (moved out of ``incoming/``)

Nothing is lost: S3 invokes the function asynchronously; after the invocation
and two retries fail, the event goes to an encrypted dead-letter queue, whose
depth raises an alarm (see the observability construct).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import PaymentsFunction
from infra.constructs.simulated_psp import PSP_NAME
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge
from infra.stage import Stage

INCOMING, REPORTS, QUARANTINE = "incoming/", "reports/", "quarantine/"
ARCHIVE_AFTER = cdk.Duration.days(90)


class Reconciliation(Construct):
    """The settlement bucket, its access-log bucket, ``functions/reconcile`` and its dead-letter queue."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, code: lambda_.Code, tables: PaymentTables) -> None:
        super().__init__(scope, construct_id)
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption S3 server access logging supports
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(400))],  # 13 months of audit trail
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Settlements",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="settlements/",
            lifecycle_rules=[
                *(
                    s3.LifecycleRule(
                        id=f"archive-{prefix.rstrip('/')}",
                        prefix=prefix,
                        transitions=[s3.Transition(storage_class=s3.StorageClass.GLACIER, transition_after=ARCHIVE_AFTER)],
                    )
                    for prefix in (INCOMING, QUARANTINE)
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=ARCHIVE_AFTER,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,  # settlement files are the evidence of money movements
        )

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=stage.resource_name("reconcile-dlq"),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination of the reconcile function; its depth raises an "
            "alarm and an operator replays its messages.",
        )
        self.function = PaymentsFunction(
            self,
            "Reconcile",
            stage=stage,
            code=code,
            name="reconcile",
            description="Reconciles a settlement file under incoming/ with the ledger; writes reports/",
            timeout=cdk.Duration.minutes(5),
            memory_size=1024,
            environment={"PSP_NAME": PSP_NAME, "SETTLEMENT_BUCKET": self.bucket.bucket_name},
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        fn = self.function
        fn.use_objects(
            self.bucket,
            ["GetObject", "DeleteObject"],  # read an input; delete it when it is moved to quarantine/
            [f"{INCOMING}*"],
            reason="Inputs arrive under incoming/ with names chosen by each PSP or bank.",
        )
        fn.use_objects(
            self.bucket,
            ["PutObject"],
            [f"{REPORTS}*", f"{QUARANTINE}*"],
            reason="Reports and quarantined files are named after their input, unknown in advance.",
        )
        fn.use_table("ledger_table", tables["ledger_table"], ["Query", "GetItem"], indexes=["by_settlement_day"])
        fn.use_table("wallets_table", tables["wallets_table"], ["Query", "GetItem"])
        fn.use_table(
            "reconciliation_table",
            tables["reconciliation_table"],
            ["GetItem", "PutItem", "UpdateItem", "Query", "BatchWriteItem"],
        )
        fn.use_table("payments_table", tables["payments_table"], ["GetItem", "BatchGetItem"])
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(fn.function),
            s3.NotificationKeyFilter(prefix=INCOMING),
        )
        # CDK's singleton custom resource that configures the bucket notification.
        notifications_handler = cdk.Stack.of(self).node.find_child(
            "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
        )
        acknowledge(
            notifications_handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's bucket-notification custom resource (deploy time only) writes its logs through AWS's "
            "basic execution policy; the role cannot be customised through the L2 API.",
        )
