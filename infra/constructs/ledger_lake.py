"""The ledger's analytical copy in S3 (``payments.reconciliation.lake``), written by AWS-managed parts.

    ledger table stream (NEW_IMAGE)
      -> EventBridge Pipe: filter INSERT of a ``TXN`` item; input template: the item as one flat JSON row
      -> Amazon Data Firehose: dynamic partitioning (a JQ query: psp, day, ccy), record format
         conversion to Parquet against the Glue table, buffered 128 MiB / 300 s
      -> s3://<lake bucket>/ledger/psp=<psp>/day=<day>/ccy=<CCY>/<object>.parquet

Athena reads the copy through the Glue table (partition projection: no crawler, no partition to add)
in the stage's workgroup, whose results are encrypted and whose queries are cut off above a number of
bytes scanned. docs/ledger-lake.md says why this path, its latency and its cost.

Delivery is at least once (the pipe retries a batch, Firehose retries a put): a reader keeps one row per
``txn_id``. A batch the pipe cannot deliver after its retries goes to an encrypted dead-letter queue.

Pipes, Glue, Athena and the delivery stream's dynamic partitioning have no L2 construct in aws-cdk-lib
(``aws-pipes-alpha`` and ``aws-glue-alpha`` are experimental; the Firehose L2 has no dynamic partitioning):
they are CloudFormation resources here, their roles L2.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.common import alarm_above_zero, dead_letter_queue, stage_log_group, stream_pipe_role
from infra.constructs.function import PaymentsFunction
from infra.nag import acknowledge_wildcard_resource
from infra.stage import Stage
from payments.kernel.iso4217 import MINOR_UNITS
from payments.reconciliation import lake

ERRORS, ATHENA_RESULTS = "errors/", "athena-results/"
#: Firehose buffers per partition until either is reached (with format conversion the size is at least 64 MiB)
BUFFER_MIB, BUFFER_SECONDS = 128, 300
#: Athena stops a query of this workgroup that scans more (USD 5 per TiB: at most about USD 1 a query)
BYTES_SCANNED_CUTOFF = 200 * 1024**3
#: the first day partition projection knows (no query reads a day before the copy existed)
FIRST_DAY = "2026-01-01"
#: the item's attributes the partition is computed from (``lake.partition_of``), passed beside the columns
PARTITION_SOURCES: tuple[str, ...] = ("settlement_day", "modification_settlement_day", "psp")

_GLUE_TYPES = {"VARCHAR": "string", "BIGINT": "bigint"}
_DYNAMODB_TYPES = {"VARCHAR": "S", "BIGINT": "N"}


def pipe_input_template() -> str:
    """The pipe's input template: each column of ``lake.COLUMNS`` (and the partition's sources) taken from
    the stream record's new image by its DynamoDB type, quoted as Pipes requires for a JSON path to a
    value. A number (``N``) arrives as a JSON string, which Firehose's OpenX JSON deserialiser converts to
    the Glue column's ``bigint``."""
    fields = {name: _DYNAMODB_TYPES[kind] for name, kind in lake.COLUMNS}
    fields.update(dict.fromkeys(PARTITION_SOURCES, "S"))
    return json.dumps({name: f"<$.dynamodb.NewImage.{name}.{kind}>" for name, kind in fields.items()})


#: Firehose's JQ 1.6 metadata extraction: ``lake.partition_of`` over the pipe's row. An attribute the item
#: lacks is treated alike whether the template renders it empty or null.
PARTITION_QUERY = (
    'def v: if . == "" then null else . end; '
    '((.settlement_day | v) // (.modification_settlement_day | v) // (((.psp | v) // "platform") + "#" + '
    "(.booked_at[0:10]))) as $key | "
    '{psp: ($key | split("#")[0]), day: ($key | split("#")[1]), ccy: .currency}'
)
#: the S3 prefix of a delivered object: ``lake.Partition.prefix`` with Firehose's partition keys
DELIVERY_PREFIX = lake.PREFIX + "/".join(f"{key}=!{{partitionKeyFromQuery:{key}}}" for key in lake.PARTITIONS) + "/"


def glue_columns() -> list[dict[str, str]]:
    """The Glue table's data columns: ``lake.COLUMNS`` (none of which is a partition key: Hive, and so Athena,
    refuses a column that is also one, which is why the currency's partition key is ``ccy``)."""
    return [{"name": name, "type": _GLUE_TYPES[kind]} for name, kind in lake.COLUMNS if name not in lake.PARTITIONS]


class LedgerLake(Construct):
    """The lake bucket, the Glue database and ledger table, the Athena workgroup, and the stream-to-S3 path."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        ledger_table: dynamodb.ITable,
        access_log_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        if ledger_table.table_stream_arn is None:
            raise ValueError("the ledger table has no stream (payments.kernel.tables: stream=True)")
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix="ledger-lake/",
            lifecycle_rules=[
                # the copy is read on its day and when a late file arrives; rebuilt from the table if ever needed
                s3.LifecycleRule(
                    id="ledger-infrequent-access",
                    prefix=lake.PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=cdk.Duration.days(90)
                        )
                    ],
                ),
                s3.LifecycleRule(id="expire-errors", prefix=ERRORS, expiration=cdk.Duration.days(30)),
                s3.LifecycleRule(id="expire-athena-results", prefix=ATHENA_RESULTS, expiration=cdk.Duration.days(7)),
                s3.LifecycleRule(id="abort-uploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(1)),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        # The Glue database and the ledger table (partition projection: psp, day, ccy)
        self.database_name = stage.resource_name("lake").replace("-", "_")
        self.table_name = "ledger"
        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="The ledger's analytical copy (reconciliation)"
            ),
        )
        location = f"s3://{self.bucket.bucket_name}/{lake.PREFIX}"
        self.glue_table = glue.CfnTable(
            self,
            "LedgerTable",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                description="One row per ledger transaction (payments.reconciliation.lake); at least once: "
                "keep one row per txn_id",
                table_type="EXTERNAL_TABLE",
                partition_keys=[glue.CfnTable.ColumnProperty(name=key, type="string") for key in lake.PARTITIONS],
                parameters={
                    "classification": "parquet",
                    "projection.enabled": "true",
                    "projection.psp.type": "enum",
                    "projection.psp.values": f"{stage.psp_name},platform",
                    "projection.day.type": "date",
                    "projection.day.format": "yyyy-MM-dd",
                    "projection.day.range": f"{FIRST_DAY},NOW",
                    "projection.day.interval": "1",
                    "projection.day.interval.unit": "DAYS",
                    "projection.ccy.type": "enum",
                    "projection.ccy.values": ",".join(sorted(MINOR_UNITS)),
                    "storage.location.template": location
                    + "/".join(f"{key}=${{{key}}}" for key in lake.PARTITIONS)
                    + "/",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(**column) for column in glue_columns()],
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        self.glue_table.add_resource_dependency(database)

        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=stage.resource_name("lake"),
            description="Queries of the ledger's copy: results encrypted, a bytes-scanned cutoff per query",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.bucket.bucket_name}/{ATHENA_RESULTS}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )

        self.delivery_stream = self._delivery_stream(stage, stack)
        self.pipe = self._pipe(stage, ledger_table)

    def _delivery_stream(self, stage: Stage, stack: cdk.Stack) -> firehose.CfnDeliveryStream:
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="The ledger copy's delivery stream: writes ledger/ and errors/, reads the Glue table",
        )
        objects = [self.bucket.arn_for_objects(f"{prefix}*") for prefix in (lake.PREFIX, ERRORS)]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=objects,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self.bucket.bucket_arn],
            )
        )
        for resource in objects:
            acknowledge_wildcard_resource(
                role, resource, "Firehose names each object it delivers (partition prefix, time, a random suffix)."
            )
        glue_arns = [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=self.database_name),
            stack.format_arn(service="glue", resource="table", resource_name=f"{self.database_name}/{self.table_name}"),
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"], resources=glue_arns
            )
        )
        self.delivery_log_group = stage_log_group(self, "DeliveryLogs", stage=stage)
        log_stream = logs.LogStream(self, "DeliveryErrors", log_group=self.delivery_log_group)
        self.delivery_log_group.grant_write(role)
        stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=stage.resource_name("ledger-lake"),
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=role.role_arn,
                prefix=DELIVERY_PREFIX,
                error_output_prefix=ERRORS + "!{firehose:error-output-type}/!{timestamp:yyyy-MM-dd}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    size_in_m_bs=BUFFER_MIB, interval_in_seconds=BUFFER_SECONDS
                ),
                compression_format="UNCOMPRESSED",  # the Parquet serialiser compresses (Snappy)
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.delivery_log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True,
                    retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(duration_in_seconds=300),
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="MetadataExtraction",
                            parameters=[
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="MetadataExtractionQuery", parameter_value=PARTITION_QUERY
                                ),
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"
                                ),
                            ],
                        )
                    ],
                ),
                data_format_conversion_configuration=firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                    enabled=True,
                    input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                        deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                            open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty()
                        )
                    ),
                    output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                        serializer=firehose.CfnDeliveryStream.SerializerProperty(
                            parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(compression="SNAPPY")
                        )
                    ),
                    schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                        catalog_id=stack.account,
                        database_name=self.database_name,
                        table_name=self.table_name,
                        region=stack.region,
                        role_arn=role.role_arn,
                        version_id="LATEST",
                    ),
                ),
            ),
        )
        stream.node.add_dependency(role)
        stream.add_resource_dependency(self.glue_table)
        return stream

    def _pipe(self, stage: Stage, ledger_table: dynamodb.ITable) -> pipes.CfnPipe:
        stream_arn = ledger_table.table_stream_arn
        if stream_arn is None:
            raise ValueError("the ledger table has no stream (payments.kernel.tables: stream=True)")
        self.dead_letters = dead_letter_queue(
            self,
            "DeadLetters",
            stage=stage,
            name="ledger-lake-dlq",
            why="This queue is itself the dead-letter destination of the ledger copy's pipe: it holds the stream "
            "positions of batches not delivered (the items are re-read from the table by their keys).",
        )
        role = stream_pipe_role(
            self,
            "PipeRole",
            stream_arn=stream_arn,
            description="The ledger copy's pipe: reads the ledger table's stream, puts to the delivery stream",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resources=[self.delivery_stream.attr_arn],
            )
        )
        self.dead_letters.grant_send_messages(role)
        self.pipe_log_group = stage_log_group(self, "PipeLogs", stage=stage)
        self.pipe_log_group.grant_write(role)  # the pipe delivers its log records with its execution role
        pipe = pipes.CfnPipe(
            self,
            "Pipe",
            name=stage.resource_name("ledger-lake"),
            description="Ledger transactions, as inserted, to the ledger copy's delivery stream",
            role_arn=role.role_arn,
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position="TRIM_HORIZON",
                    batch_size=100,
                    maximum_batching_window_in_seconds=1,
                    maximum_retry_attempts=10,  # then halves the batch (bisection), then the dead-letter queue
                    on_partial_batch_item_failure="AUTOMATIC_BISECT",
                    dead_letter_config=pipes.CfnPipe.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
                ),
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[pipes.CfnPipe.FilterProperty(pattern=json.dumps(INSERTED_TRANSACTIONS))]
                ),
            ),
            target=self.delivery_stream.attr_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(input_template=pipe_input_template()),
            # errors only, without the records (payment references, seller accounts)
            log_configuration=pipes.CfnPipe.PipeLogConfigurationProperty(
                level="ERROR",
                cloudwatch_logs_log_destination=pipes.CfnPipe.CloudwatchLogsLogDestinationProperty(
                    log_group_arn=self.pipe_log_group.log_group_arn
                ),
            ),
        )
        pipe.node.add_dependency(role)
        return pipe

    def add_alarms(self, topic: sns.ITopic, alarms: list[cloudwatch.Alarm]) -> None:
        """Alarms on the stage's topic: a batch the pipe dead-lettered (the copy misses its transactions until
        an operator rewrites them), and a copy that fell behind (the oldest record not yet in S3 is older than
        three buffer intervals: S3 or the Glue table refused the delivery, or its retries ran out into errors/)."""
        alarms.append(
            alarm_above_zero(
                self,
                "LedgerLakeDeadLetters",
                self.dead_letters.metric_approximate_number_of_messages_visible(period=cdk.Duration.minutes(5)),
                "The ledger copy's pipe dead-lettered a batch: those transactions are missing from the copy "
                "(docs/ledger-lake.md)",
                topic,
            )
        )
        freshness = cloudwatch.Metric(
            namespace="AWS/Firehose",
            metric_name="DeliveryToS3.DataFreshness",
            dimensions_map={"DeliveryStreamName": self.delivery_stream.ref},
            statistic="Maximum",
            period=cdk.Duration.minutes(5),
        )
        alarm = freshness.create_alarm(
            self,
            "LedgerLakeBehind",
            alarm_description="The ledger copy is behind: the oldest record not yet in S3 is older than 15 minutes "
            "(docs/ledger-lake.md)",
            threshold=3 * BUFFER_SECONDS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
        alarms.append(alarm)

    def grant_read(self, function: PaymentsFunction) -> None:
        """Give ``function`` the bucket's name (``LEDGER_LAKE_BUCKET``) and read access to the copy only."""
        function.set_setting("ledger_lake_bucket", self.bucket.bucket_name)
        function.use_objects(
            self.bucket,
            ["GetObject"],
            [f"{lake.PREFIX}*"],
            reason="The copy's objects are named by the delivery stream under partition prefixes.",
        )
        function.allow(
            ["s3:ListBucket"], [self.bucket.bucket_arn], conditions={"StringLike": {"s3:prefix": [f"{lake.PREFIX}*"]}}
        )


#: the pipe's filter: an inserted ledger transaction (``lake.partition_of``: ``sk`` is ``TXN``); a
#: transaction item is put once and never changed, so its INSERT is its only record
INSERTED_TRANSACTIONS = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["TXN"]}}}}
