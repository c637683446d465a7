"""What the marketplace hears (``payments.events``): the stage's event bus, its archive, and one pipe per
table whose items are resources, from the table's stream to the bus.

    payments / payouts / reconciliation table stream (NEW_AND_OLD_IMAGES)
      -> EventBridge Pipe (one per table): filter INSERT and MODIFY records; batches of 3 records
      -> enrichment: the events function (``functions/events``): the batch's stream records in, the
         CloudEvents envelopes of their changes out (none for a record that changed nothing an event names)
      -> the bus ``payments-<stage>``: each envelope is an event whose ``detail`` is the envelope, whose
         ``detail-type`` is its ``type`` and whose ``source`` is its ``source`` (``urn:payments:<stage>``)
      -> the archive of every event of the stage's source (replay after an incident), and the rules of the
         bus: the example rule delivers payment and refund events to the marketplace's queue

An event is read from the committed write that made its change (the stream record), never sent beside it:
``payments/events/envelope.py`` says how the envelope's ``id`` and ``sequence`` derive from the record, so a
batch the pipe delivers twice carries the same ids. Delivery is at least once: the pipe retries a batch
that failed (enrichment or bus), halves it to isolate a bad record, then sends the batch's stream positions
to the pipe's dead-letter queue (alarmed). The marketplace's queue has its own dead-letter queue, and so has
the rule's delivery to it; every one of them is alarmed on the stage's topic. docs/events.md is the
consumer's side, docs/runbook.md the operator's.

Pipes have no L2 construct in aws-cdk-lib (``aws-pipes-alpha`` is experimental): they are CloudFormation
resources here, as the ledger copy's pipe (``infra/constructs/ledger_lake.py``); their roles, the bus, the
archive, the rule and the queues are L2.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions import registry
from infra.constructs.common import alarm_above_zero, dead_letter_queue, stage_log_group, stream_pipe_role
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.stage import Stage
from payments.events.envelope import bus_name, source_of
from payments.kernel.tables import EVENTS_STREAM, TABLES

#: the pipes' enrichment: ``functions/events/handler.py`` (its registry entry names its tables and settings)
EVENTS_FUNCTION = "events"
#: the tables whose streams carry events: every table streaming both images for them (payments.kernel.tables)
EVENT_TABLES: tuple[str, ...] = tuple(t.setting for t in TABLES if t.stream == EVENTS_STREAM)
#: the pipes' filter: a record of an item written (put or updated); a deletion (TTL) changes no resource
WRITTEN_ITEMS = {"eventName": ["INSERT", "MODIFY"]}
#: EventBridge Pipes puts at most 10 events on a bus at once and does not invoke the target with a longer
#: array; one write shows at most three changes (``payments.events.changes``: a refund reaching its final
#: status as it is marked returned and flagged, or a dispute item written with its three steps), so a batch
#: of 3 records yields at most 9 events
BUS_TARGET_BATCH, EVENTS_PER_RECORD = 10, 3
BATCH_SIZE = BUS_TARGET_BATCH // EVENTS_PER_RECORD
BATCHING_WINDOW_SECONDS = 1
#: a failing batch is retried this many times (halved to isolate a bad record), then dead-lettered
MAXIMUM_RETRY_ATTEMPTS = 10
#: batches of one shard enriched and put at once; every event carries its ``sequence`` for its consumer
PARALLELIZATION_FACTOR = 4
#: the event types the example rule delivers to the marketplace's queue (``payments.payment.`` does not
#: match ``payments.payment_order.``)
MARKETPLACE_TYPE_PREFIXES = ("payments.payment.", "payments.refund.")
#: the marketplace's consumer: how long a message stays hidden while handled, receives before its DLQ
MARKETPLACE_VISIBILITY_SECONDS, MARKETPLACE_MAX_RECEIVES = 60, 5
#: EventBridge retries a delivery to the queue this long and this often, then sends it to the rule's DLQ
RULE_MAX_EVENT_AGE, RULE_RETRY_ATTEMPTS = cdk.Duration.hours(24), 185


def short_name(setting: str) -> str:
    """``payments_table`` -> ``payments``: the table's part of its pipe's and queue's names."""
    return setting.removesuffix("_table").replace("_", "-")


def _camel(setting: str) -> str:
    return "".join(part.capitalize() for part in short_name(setting).split("-"))


class Events(Construct):
    """The bus, its archive, the events function, a pipe per event table, the example rule and its queue."""

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: Stage, code: lambda_.Code, tables: PaymentTables
    ) -> None:
        super().__init__(scope, construct_id)
        self.source = source_of(stage.name)
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=bus_name(stage.name),
            description="Every state change of the payment system, once, as a CloudEvents envelope (docs/events.md)",
        )
        retention = stage.event_archive_retention_days
        self.archive = self.bus.archive(
            "Archive",
            archive_name=stage.resource_name("events"),
            description=f"Every event of {self.source}, kept "
            + (f"{retention} days" if retention else "for ever")
            + ", to replay after an incident (docs/runbook.md)",
            event_pattern=events.EventPattern(source=[self.source]),
            retention=cdk.Duration.days(retention),
        )
        self.function = PaymentsFunction(
            self, "Function", stage=stage, code=code, spec=registry.BY_NAME[EVENTS_FUNCTION], tables=tables
        )
        self.pipe_log_group = stage_log_group(self, "PipeLogs", stage=stage)
        #: by the table's ``Settings`` field: its pipe and the pipe's dead-letter queue
        self.pipes: dict[str, pipes.CfnPipe] = {}
        self.dead_letters: dict[str, sqs.Queue] = {}
        for setting in EVENT_TABLES:
            self._pipe(stage, setting, tables[setting])
        self._marketplace(stage)

    def _pipe(self, stage: Stage, setting: str, table: dynamodb.ITable) -> None:
        stream_arn = table.table_stream_arn
        if stream_arn is None:
            raise ValueError(f"the {setting} has no stream (payments.kernel.tables: stream={EVENTS_STREAM!r})")
        name, camel = short_name(setting), _camel(setting)
        dead_letters = dead_letter_queue(
            self,
            f"{camel}DeadLetters",
            stage=stage,
            name=f"events-{name}-dlq",
            why=f"This queue is itself the dead-letter destination of the {name} table's events pipe: it holds "
            "the stream positions of batches not delivered (the records stay in the stream for 24 hours).",
        )
        role = stream_pipe_role(
            self,
            f"{camel}PipeRole",
            stream_arn=stream_arn,
            description=f"The {name} table's events pipe: reads its stream, invokes the events function, puts "
            "on the stage's bus",
        )
        # the unqualified ARN only (no version, no alias): what the pipe's enrichment names
        role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function.function_arn])
        )
        role.add_to_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[self.bus.event_bus_arn]))
        dead_letters.grant_send_messages(role)
        self.pipe_log_group.grant_write(role)  # the pipe delivers its log records with its execution role
        pipe = pipes.CfnPipe(
            self,
            f"{camel}Pipe",
            name=stage.resource_name(f"events-{name}"),
            description=f"The {name} table's changes, as CloudEvents, to the stage's event bus",
            role_arn=role.role_arn,
            source=stream_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                dynamo_db_stream_parameters=pipes.CfnPipe.PipeSourceDynamoDBStreamParametersProperty(
                    starting_position="TRIM_HORIZON",
                    batch_size=BATCH_SIZE,
                    maximum_batching_window_in_seconds=BATCHING_WINDOW_SECONDS,
                    maximum_retry_attempts=MAXIMUM_RETRY_ATTEMPTS,
                    on_partial_batch_item_failure="AUTOMATIC_BISECT",
                    parallelization_factor=PARALLELIZATION_FACTOR,
                    dead_letter_config=pipes.CfnPipe.DeadLetterConfigProperty(arn=dead_letters.queue_arn),
                ),
                filter_criteria=pipes.CfnPipe.FilterCriteriaProperty(
                    filters=[pipes.CfnPipe.FilterProperty(pattern=json.dumps(WRITTEN_ITEMS))]
                ),
            ),
            enrichment=self.function.function.function_arn,
            target=self.bus.event_bus_arn,
            # dynamic path parameters: read from each envelope the enrichment returns, which is the detail
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                event_bridge_event_bus_parameters=pipes.CfnPipe.PipeTargetEventBridgeEventBusParametersProperty(
                    detail_type="$.type", source="$.source"
                )
            ),
            # errors only, without the records (buyers' and sellers' data)
            log_configuration=pipes.CfnPipe.PipeLogConfigurationProperty(
                level="ERROR",
                cloudwatch_logs_log_destination=pipes.CfnPipe.CloudwatchLogsLogDestinationProperty(
                    log_group_arn=self.pipe_log_group.log_group_arn
                ),
            ),
        )
        pipe.node.add_dependency(role)
        self.pipes[setting] = pipe
        self.dead_letters[setting] = dead_letters

    def _marketplace(self, stage: Stage) -> None:
        """The example rule: payment and refund events to an encrypted queue the marketplace consumes."""
        self.marketplace_dead_letters = dead_letter_queue(
            self,
            "MarketplaceDeadLetters",
            stage=stage,
            name="marketplace-events-dlq",
            why="This queue is itself the dead-letter queue of the marketplace's events queue: it keeps the "
            "events its consumer could not handle.",
        )
        self.marketplace_queue = sqs.Queue(
            self,
            "MarketplaceQueue",
            queue_name=stage.resource_name("marketplace-events"),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(MARKETPLACE_VISIBILITY_SECONDS),
            retention_period=cdk.Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MARKETPLACE_MAX_RECEIVES, queue=self.marketplace_dead_letters
            ),
        )
        self.rule_dead_letters = dead_letter_queue(
            self,
            "MarketplaceRuleDeadLetters",
            stage=stage,
            name="marketplace-rule-dlq",
            why="This queue is itself the dead-letter destination of the example rule's target: it keeps the "
            "events EventBridge could not deliver to the marketplace's queue.",
        )
        self.marketplace_rule = events.Rule(
            self,
            "MarketplaceRule",
            rule_name=stage.resource_name("marketplace-payments-refunds"),
            description="Example: payment and refund events to the marketplace's queue (docs/events.md)",
            event_bus=self.bus,
            event_pattern=events.EventPattern(
                source=[self.source],
                detail_type=events.Match.any_of(*(events.Match.prefix(p) for p in MARKETPLACE_TYPE_PREFIXES)),
            ),
            targets=[
                targets.SqsQueue(
                    self.marketplace_queue,
                    dead_letter_queue=self.rule_dead_letters,
                    max_event_age=RULE_MAX_EVENT_AGE,
                    retry_attempts=RULE_RETRY_ATTEMPTS,
                )
            ],
        )

    def add_alarms(self, topic: sns.ITopic, alarms: list[cloudwatch.Alarm]) -> None:
        """An alarm on the stage's topic for every dead-letter queue: a pipe's (events of a change are not on
        the bus until re-driven), the rule's (events not delivered to the marketplace's queue) and the
        marketplace queue's (events its consumer gave up on)."""
        period = cdk.Duration.minutes(5)
        for setting, queue in self.dead_letters.items():
            name = short_name(setting)
            alarms.append(
                alarm_above_zero(
                    self,
                    f"{_camel(setting)}EventsPipeDeadLetters",
                    queue.metric_approximate_number_of_messages_visible(period=period),
                    f"The {name} table's events pipe dead-lettered a batch: those changes have no event on the bus "
                    "until it is re-driven (docs/runbook.md, 'Events')",
                    topic,
                )
            )
        alarms.append(
            alarm_above_zero(
                self,
                "MarketplaceRuleDeadLettersVisible",
                self.rule_dead_letters.metric_approximate_number_of_messages_visible(period=period),
                "EventBridge could not deliver events to the marketplace's queue (docs/runbook.md, 'Events')",
                topic,
            )
        )
        alarms.append(
            alarm_above_zero(
                self,
                "MarketplaceQueueDeadLettersVisible",
                self.marketplace_dead_letters.metric_approximate_number_of_messages_visible(period=period),
                "The marketplace's consumer gave up on events of its queue (docs/runbook.md, 'Events')",
                topic,
            )
        )
