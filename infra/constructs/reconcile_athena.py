"""The reconciliation of a day too large for one function, on Athena: ``stepfunctions/reconcile_athena.asl.json``.

Above ``Bounds.athena_above_bytes`` (2 GiB, ~7 M rows) the reconcile function starts this state machine
(``payments-<stage>-reconcile-athena``) instead of the Distributed Map's: the same S3 trigger, routed by
size (``payments.reconciliation.service.route``). Its steps run the reconcile function (plan, normalise
each chunk with our reader, prepare the queries, finish) and Athena (the matching, as Trino queries
generated from the function's SQL), in the ledger lake's workgroup: results encrypted, a bytes-scanned
cutoff per query.

What Athena reads is declared here: two Glue tables in the lake's database over the settlement bucket's
``work/<run>/`` prefix (the normalised rows of one run: partition projection with ``run`` injected, so no
partition is ever added and a query names its run), and the lake's ledger table.

The state machine's role (the identity Athena reads and writes with) may: run queries in that workgroup
only; read those three Glue tables and their database; read ``work/*`` of the settlement bucket and the
copy's ``ledger/*``; write the workgroup's results under ``athena-results/*``. The buckets are encrypted
with S3-managed keys: no KMS key to grant. The function gets the state machine's ARN by its fixed name
(the machine invokes the function: a reference back would be a cycle), the workgroup and the database.

Why STANDARD: a Distributed Map runs only in a Standard workflow, and a run may exceed Express's 5 minutes.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct

from functions import registry
from infra.constructs.common import fixed_name_state_machine_arns, stage_log_group
from infra.constructs.ledger_lake import LedgerLake
from infra.constructs.reconciliation import WORK, Reconciliation, distributed_state_machine
from infra.nag import acknowledge_wildcard_resource
from infra.stage import Stage
from payments.reconciliation import athena, columnar, lake

ASL_PATH = Path(__file__).resolve().parents[2] / "stepfunctions" / registry.RECONCILE_ATHENA_ASL
_GLUE_TYPES = {"VARCHAR": "string", "BIGINT": "bigint"}


def reconcile_athena_state_machine_name(stage: Stage) -> str:
    return stage.resource_name("reconcile-athena")


class AthenaReconciliation(Construct):
    """The Glue tables of a run's normalised rows, the state machine, and the grants of both sides."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: Stage, reconciliation: Reconciliation, lake_: LedgerLake
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.settled_table = self._run_table(
            "SettledTable", athena.SETTLED_TABLE, columnar.SETTLED_COLUMNS, athena.SETTLED_PREFIX, reconciliation, lake_
        )
        self.adjusted_table = self._run_table(
            "AdjustedTable",
            athena.ADJUSTED_TABLE,
            columnar.ADJUSTED_COLUMNS,
            athena.ADJUSTED_PREFIX,
            reconciliation,
            lake_,
        )
        name = reconcile_athena_state_machine_name(stage)
        machine_arn, child_executions_arn = fixed_name_state_machine_arns(self, name, executions=f"{name}/*")

        fn = reconciliation.function
        fn.set_setting("reconcile_athena_state_machine_arn", machine_arn)
        fn.set_setting("ledger_lake_workgroup", lake_.workgroup.ref)
        fn.set_setting("ledger_lake_database", lake_.database_name)
        fn.allow(["states:StartExecution"], [machine_arn])
        fn.use_objects(
            lake_.bucket,
            ["GetObject"],
            [f"{athena.RESULTS_PREFIX}*"],
            reason="The queries' unloaded results are named by Athena under the run's prefix.",
        )
        fn.allow(
            ["s3:ListBucket"],
            [lake_.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{athena.RESULTS_PREFIX}*"]}},
        )

        self.log_group = stage_log_group(
            self, "StateMachineLogs", stage=stage, log_group_name=f"/aws/vendedlogs/states/{name}"
        )
        self.state_machine = machine = distributed_state_machine(
            self,
            name=name,
            asl_path=ASL_PATH,
            function=fn,
            log_group=self.log_group,
            machine_arn=machine_arn,
            child_executions_arn=child_executions_arn,
        )
        self.workgroup_arn = stack.format_arn(service="athena", resource="workgroup", resource_name=lake_.workgroup.ref)
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"],
                resources=[self.workgroup_arn],
            )
        )
        database = lake_.database_name
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=database),
                    *(
                        stack.format_arn(service="glue", resource="table", resource_name=f"{database}/{table}")
                        for table in (athena.SETTLED_TABLE, athena.ADJUSTED_TABLE, lake_.table_name)
                    ),
                ],
            )
        )
        reads = {
            reconciliation.bucket.arn_for_objects(f"{WORK}*"): "A run's normalised rows are under work/<run>/, "
            "the run named after the file's sha256, unknown in advance.",
            lake_.bucket.arn_for_objects(f"{lake.PREFIX}*"): "The ledger's copy is named by the delivery stream "
            "under its partition prefixes.",
        }
        results = lake_.bucket.arn_for_objects(f"{athena.RESULTS_PREFIX}*")
        machine.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=list(reads)))
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[results],
            )
        )
        reads[results] = "Athena names each unloaded object itself, under the run's fresh prefix."
        for arn, reason in reads.items():
            acknowledge_wildcard_resource(machine, arn, reason)
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[reconciliation.bucket.bucket_arn, lake_.bucket.bucket_arn],
            )
        )

    def _run_table(
        self,
        construct_id: str,
        name: str,
        columns: tuple[tuple[str, str], ...],
        prefix: str,
        reconciliation: Reconciliation,
        lake_: LedgerLake,
    ) -> glue.CfnTable:
        """A Glue table over ``work/<run>/<prefix>`` of the settlement bucket: ``run`` an injected projection."""
        stack = cdk.Stack.of(self)
        location = f"s3://{reconciliation.bucket.bucket_name}/{WORK}"
        table = glue.CfnTable(
            self,
            construct_id,
            catalog_id=stack.account,
            database_name=lake_.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description="One reconciliation run's normalised settlement rows (payments.reconciliation.athena)",
                table_type="EXTERNAL_TABLE",
                partition_keys=[glue.CfnTable.ColumnProperty(name="run", type="string")],
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    "projection.run.type": "injected",
                    "storage.location.template": f"{location}${{run}}/{prefix}",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[
                        glue.CfnTable.ColumnProperty(name=column, type=_GLUE_TYPES[kind]) for column, kind in columns
                    ],
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        table.add_dependency(lake_.glue_table)  # after the database (the lake's table depends on it)
        return table
