"""Reconciliation: the settlement bucket, the function that matches settlement files to the ledger,
and the Distributed Map state machine that reconciles files too large for one invocation.

Key layout of the settlement bucket (``payments.reconciliation.service``):

* ``incoming/<source>/...``  settlement files (PSP, bank); a new object here invokes the reconcile function
* ``reports/<input key>.json|.html|.mismatches.csv``  the reconciliation report of each input
  (e.g. ``reports/incoming/simulated-psp/2026-11-30.csv.json``)
* ``quarantine/<path under incoming/>`` (+ ``.reason.json``)  inputs that could not be read at all
  (copied out of ``incoming/``, then deleted there)
* ``work/<sha256[:16]>/chunk-<n>.json|.tsv``  intermediate results of the distributed path, deleted
  by its last step; the Athena workflow's under the same prefix (``settled/``, ``adjusted/``: Parquet)

Nothing is lost: S3 invokes the function asynchronously; after the invocation
and two retries fail, the event goes to an encrypted dead-letter queue, whose
depth raises an alarm (see the observability construct).

Deferred files: a file whose ledger day's copy is not complete yet (before the day's end plus the lake's
lag) is not failed: the function sends it to the "deferred reconciliations" queue (encrypted, TLS only, its
own dead-letter queue), delayed until the copy is complete, and consumes that queue itself
(``payments.reconciliation.deferred``; docs/ledger-lake.md says why a queue and not EventBridge Scheduler).
Alarms: a message older than :data:`DEFERRED_TOO_LONG` (the copy is not arriving) and any dead letter.

Large files: above ``Bounds.max_single_pass_bytes`` (512 MiB) the function starts
``stepfunctions/reconcile.asl.json`` (``payments-<stage>-reconcile``) instead of
reconciling in place; its three Task states run the same function with an
``action``. The state machine has a fixed name so that the function is given its
ARN (``RECONCILE_STATE_MACHINE_ARN``) without a reference: the state machine
invokes the function, so a reference back would be a dependency cycle.

Above ``Bounds.athena_above_bytes`` (2 GiB), where the stage has the ledger's copy, the function starts
the Athena workflow instead (``infra/constructs/reconcile_athena.py``); the Distributed Map keeps the files
between the two bounds, and every large file where there is no Athena workflow.

Why STANDARD and not EXPRESS: a Distributed Map is only allowed in a Standard
parent; an execution may run longer than Express's 5 minutes (one Task alone may
take 15); ``StartExecution`` deduplicates on the execution name, which the
function derives from the key and ETag, so a duplicate S3 event starts nothing
twice. Cost: about 4 transitions per chunk plus 5, i.e. about USD 0.013 for the
largest file (8 GiB, 128 chunks of 64 MiB).
"""

from __future__ import annotations

import math
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions import registry
from infra.bundling import reconcile_code
from infra.constructs.common import (
    alarm_above_zero,
    asl_state_machine,
    consumed_queue,
    dead_letter_queue,
    evidence_bucket,
    fixed_name_state_machine_arns,
    stage_log_group,
)
from infra.constructs.function import PaymentsFunction
from infra.constructs.observability import PERIOD, custom_metric
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge, acknowledge_wildcard_resource
from infra.stage import Stage
from payments.reconciliation.model import Bounds, tmp_peak_bytes

INCOMING, REPORTS, QUARANTINE, WORK = "incoming/", "reports/", "quarantine/", "work/"
ARCHIVE_AFTER = cdk.Duration.days(90)
ASL_PATH = Path(__file__).resolve().parents[2] / "stepfunctions" / "reconcile.asl.json"
# The function's timeout (below the 900 s TimeoutSeconds of every Task in the ASL) and memory (one full
# vCPU) are in its registry entry, functions.registry.RECONCILE, with their reasons.
#: /tmp beyond the need measured on the bench's day (``payments.reconciliation.model.tmp_peak_bytes``: the Distributed
#: Map's merge of a file just below ``Bounds.athena_above_bytes``, 4.6 GiB at the budget): a day of rows half as long
#: as the bench's 168 bytes holds twice the rows per byte of file, and about twice the disk.
TMP_HEADROOM = 2.0
#: Lambda's largest ephemeral storage (MiB)
LAMBDA_MAX_EPHEMERAL_MIB = 10_240


def reconcile_ephemeral_storage(bounds: Bounds) -> cdk.Size:
    """The reconcile function's /tmp: the measured peak of its largest file times :data:`TMP_HEADROOM`, in whole GiB.
    Billed only above 512 MB, per GB-second of a running invocation (docs/capacity.md section 12): cents a year. A
    bound that needs more than Lambda gives fails synthesis, naming the bound."""
    need = tmp_peak_bytes(bounds) * TMP_HEADROOM
    gib = math.ceil(need / 2**30)
    if gib * 1024 > LAMBDA_MAX_EPHEMERAL_MIB:
        raise ValueError(
            f"the reconcile function would need {gib} GiB of /tmp for a file of Bounds.athena_above_bytes "
            f"({bounds.athena_above_bytes} bytes) or Bounds.max_single_pass_bytes ({bounds.max_single_pass_bytes}); "
            f"Lambda gives at most {LAMBDA_MAX_EPHEMERAL_MIB} MiB: lower the bound (larger files go to Athena)"
        )
    return cdk.Size.gibibytes(gib)


RECONCILE_EPHEMERAL_STORAGE = reconcile_ephemeral_storage(Bounds())
#: A deferred file waits at most until its day's end plus the lake's lag (30 minutes): one delivered at 00:10
#: waits 20 minutes. A message older than this means the day is far from complete (a file of a future day, a
#: clock or lag misconfigured): someone looks.
DEFERRED_TOO_LONG = cdk.Duration.hours(2)
#: receives of one deferred message before its dead-letter queue: a re-deferral counts one (at most 11 hours
#: each), so this covers a day more than two days away plus retries of real failures
DEFERRED_MAX_RECEIVES = 8


def reconcile_state_machine_name(stage: Stage) -> str:
    return stage.resource_name("reconcile")


def reconcile_state_machine_arns(scope: Construct, stage: Stage) -> tuple[str, str]:
    """(state machine ARN, ARN pattern of its Distributed Map child executions), built from the fixed name.

    Child workflow executions are named ``execution:<state machine>/<map run label>:<id>``.
    """
    name = reconcile_state_machine_name(stage)
    return fixed_name_state_machine_arns(scope, name, executions=f"{name}/*")


class Reconciliation(Construct):
    """The settlement bucket, its access-log bucket, ``functions/reconcile``, its dead-letter queue and
    the large-file state machine."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: Stage, code: lambda_.Code, tables: PaymentTables
    ) -> None:
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
        self.bucket = evidence_bucket(  # settlement files are the evidence of money movements
            self,
            "Settlements",
            access_logs=self.access_log_bucket,
            logs_prefix="settlements/",
            lifecycle_rules=[
                *(
                    s3.LifecycleRule(
                        id=f"archive-{prefix.rstrip('/')}",
                        prefix=prefix,
                        transitions=[
                            s3.Transition(storage_class=s3.StorageClass.GLACIER, transition_after=ARCHIVE_AFTER)
                        ],
                    )
                    for prefix in (INCOMING, QUARANTINE)
                ),
                # Intermediate results: deleted by MergeChunks; a failed execution leaves them behind, and in this
                # versioned bucket a deletion keeps the old version: neither is evidence, so neither is kept long.
                s3.LifecycleRule(
                    id="expire-work",
                    prefix=WORK,
                    expiration=cdk.Duration.days(7),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=ARCHIVE_AFTER,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
            ],
        )

        self.dead_letters = dead_letter_queue(
            self,
            "DeadLetters",
            stage=stage,
            name="reconcile-dlq",
            why=(
                "This queue is itself the dead-letter destination of the reconcile function; its depth raises an "
                "alarm and an operator replays its messages."
            ),
        )
        self.deferred_dead_letters = dead_letter_queue(
            self,
            "DeferredDeadLetters",
            stage=stage,
            name="reconcile-deferred-dlq",
            why="This queue is itself the dead-letter queue of the deferred reconciliations; its depth raises an "
            "alarm and an operator redrives its messages.",
        )
        self.deferred = consumed_queue(
            self,
            "Deferred",
            stage=stage,
            name="reconcile-deferred",
            consumer_timeout_s=registry.RECONCILE.timeout_s,
            dead_letters=self.deferred_dead_letters,
            max_receive_count=DEFERRED_MAX_RECEIVES,
        )
        machine_arn, child_executions_arn = reconcile_state_machine_arns(self, stage)
        self.function = PaymentsFunction(
            self,
            "Reconcile",
            stage=stage,
            code=reconcile_code(self),  # its own asset: the shared one plus duckdb (infra/bundling.py)
            spec=registry.RECONCILE,
            tables=tables,
            ephemeral_storage_size=RECONCILE_EPHEMERAL_STORAGE,
            settings={
                "psp_name": stage.psp_name,
                "settlement_bucket": self.bucket.bucket_name,
                # Built from the fixed name, not referenced (the state machine invokes this function).
                "reconcile_state_machine_arn": machine_arn,
                "deferred_reconciliations_queue_url": self.deferred.queue_url,
                # the three-way check reads every shard of a seller's wallet and ledger account totals
                "wallet_shards": str(stage.wallet_shards),
                "ledger_total_shards": str(stage.ledger_total_shards),
            },
            retry_attempts=2,
            max_event_age=cdk.Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letters),
        )
        fn = self.function
        # HeadObject, GetObject (also ranged) and the source of CopyObject need s3:GetObject.
        fn.use_objects(
            self.bucket,
            ["GetObject", "DeleteObject"],  # read an input; delete it when it is moved to quarantine/
            [f"{INCOMING}*"],
            reason="Inputs arrive under incoming/ with names chosen by each PSP or bank.",
        )
        fn.use_objects(
            self.bucket,
            ["PutObject"],  # reports; the destination of CopyObject and the .reason.json of quarantine
            [f"{REPORTS}*", f"{QUARANTINE}*"],
            reason="Reports and quarantined files are named after their input, unknown in advance.",
        )
        fn.use_objects(
            self.bucket,
            ["GetObject", "PutObject", "DeleteObject"],  # chunk partials and sorted runs: written, merged, deleted
            [f"{WORK}*"],
            reason="Intermediate results of the distributed path are named after the input's sha256, unknown "
            "in advance; the last step deletes them (DeleteObjects authorises s3:DeleteObject per key).",
        )
        # Without s3:ListBucket, HeadObject on a key already moved to quarantine/ answers 403, not 404, and
        # the service could not tell "already handled" (a duplicate S3 event) from a real failure.
        fn.allow(["s3:ListBucket"], [self.bucket.bucket_arn])
        fn.allow(["states:StartExecution"], [machine_arn])
        # the deferred queue: sent to, and consumed (one file per invocation: each has the function's whole timeout)
        fn.grant(self.deferred.grant_send_messages)
        fn.function.add_event_source(
            sources.SqsEventSource(self.deferred, batch_size=1, report_batch_item_failures=True, max_concurrency=2)
        )
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

        self.state_machine = self._state_machine(stage, machine_arn, child_executions_arn)

    def add_alarms(self, topic: sns.ITopic, alarms: list[cloudwatch.Alarm], dashboard: cloudwatch.Dashboard) -> None:
        """The deferred reconciliations' alarms on the stage's topic, and their dashboard row."""
        oldest = self.deferred.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")
        waiting = oldest.create_alarm(
            self,
            "ReconciliationDeferredTooLong",
            alarm_description=f"A settlement file has waited more than {DEFERRED_TOO_LONG.to_hours()} hours for its "
            "ledger day's copy: the copy is not arriving (the ledger lake's pipeline), or the file names a day far "
            "ahead (docs/ledger-lake.md, 'Files that arrive before their day is complete')",
            threshold=DEFERRED_TOO_LONG.to_seconds(),
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        waiting.add_alarm_action(actions.SnsAction(topic))
        alarms.append(waiting)
        dead = self.deferred_dead_letters.metric_approximate_number_of_messages_visible(
            period=PERIOD, statistic="Maximum"
        )
        alarms.append(
            alarm_above_zero(
                self,
                "ReconcileDeferredDeadLetters",
                dead,
                "A deferred settlement file could not be reconciled after retries: its message is in the deferred "
                "queue's dead-letter queue; fix the cause, then redrive it",
                topic,
            )
        )
        deferred = custom_metric("ReconciliationsDeferred", registry.RECONCILE.name)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Deferred reconciliations (settlement files waiting for their ledger day)",
                left=[deferred, self.deferred.metric_approximate_number_of_messages_not_visible(period=PERIOD)],
                right=[oldest],
                width=12,
            )
        )

    def _state_machine(self, stage: Stage, machine_arn: str, child_executions_arn: str) -> sfn.StateMachine:
        """``stepfunctions/reconcile.asl.json`` as written, its three Tasks on the reconcile function."""
        name = reconcile_state_machine_name(stage)
        self.log_group = stage_log_group(
            self, "StateMachineLogs", stage=stage, log_group_name=f"/aws/vendedlogs/states/{name}"
        )
        # STANDARD: see the module docstring. Payloads are keys, byte ranges and the CSV header: no settlement
        # rows. Kept out of the logs anyway (the execution history holds them for 90 days), like the payment workflow's.
        machine = distributed_state_machine(
            self,
            name=name,
            asl_path=ASL_PATH,
            function=self.function,
            log_group=self.log_group,
            machine_arn=machine_arn,
            child_executions_arn=child_executions_arn,
        )
        return machine


def distributed_state_machine(
    scope: Construct,
    *,
    name: str,
    asl_path: Path,
    function: PaymentsFunction,
    log_group: logs.ILogGroup,
    machine_arn: str,
    child_executions_arn: str,
) -> sfn.StateMachine:
    """The Standard state machine ``name`` whose Tasks run the reconcile function and whose Distributed Map
    (items from the state input: no ItemReader, no ResultWriter, hence no S3 access for it) runs each chunk
    as a child execution of this same state machine under its role."""
    machine = asl_state_machine(
        scope,
        "StateMachine",
        name=name,
        asl_path=asl_path,
        task_functions=[function],
        log_group=log_group,
        invoked_functions="the reconcile function",
    )
    machine.add_to_role_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[machine_arn]))
    machine.add_to_role_policy(
        iam.PolicyStatement(
            actions=["states:DescribeExecution", "states:StopExecution"], resources=[child_executions_arn]
        )
    )
    acknowledge_wildcard_resource(
        machine,
        child_executions_arn,
        "The Distributed Map's child executions are named by Step Functions (<map run label>:<id>), unknown "
        "in advance; the wildcard covers only the child executions of this state machine.",
    )
    return machine
