"""The DynamoDB tables, declared from ``payments/kernel/tables.py``.

The tables are shared between capabilities (the payments table alone is used by
five functions), so they are built here, once, from the same description the
local runtime uses, and handed to each capability construct, which grants its
functions exactly the actions they need. Tables that hold money or its history
are retained on stack deletion and protected against deletion; every table has
point-in-time recovery and AWS-managed KMS encryption.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.stage import Stage
from payments.kernel.tables import TABLES
from payments.ops import capacity


def _attribute(name: str | None) -> dynamodb.Attribute | None:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING) if name else None


class PaymentTables(Construct):
    """One table per entry of ``payments.kernel.tables.TABLES``, looked up by its ``Settings`` field."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self._tables: dict[str, dynamodb.Table] = {}
        for spec in TABLES:
            if spec.setting == "psp_table" and stage.psp != "simulated":
                continue  # the simulated PSP's record of charges: deployed with the simulator only
            short_name = spec.setting.removesuffix("_table").replace("_", "-")
            warm = _warm_throughput(stage, spec.setting)
            table = dynamodb.Table(
                self,
                "".join(part.capitalize() for part in spec.setting.split("_")),
                table_name=stage.resource_name(short_name),
                partition_key=_attribute(spec.partition_key),
                sort_key=_attribute(spec.sort_key),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=spec.ttl_attribute,
                deletion_protection=spec.holds_money,
                removal_policy=cdk.RemovalPolicy.RETAIN if spec.holds_money else stage.disposable_removal_policy,
                warm_throughput=warm,
                stream=dynamodb.StreamViewType[spec.stream] if spec.stream else None,
            )
            for index in (i for i in spec.indexes if i.deployed):
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=_attribute(index.partition_key),
                    sort_key=_attribute(index.sort_key),
                    projection_type=dynamodb.ProjectionType[index.projection],
                    # an index entry is written with its item: the table's write rate; its reads are
                    # the recovery's and reconciliation's queries, far below DynamoDB's default
                    warm_throughput=dynamodb.WarmThroughput(
                        read_units_per_second=capacity.DEFAULT_WARM_READ,
                        write_units_per_second=warm.write_units_per_second,
                    ),
                )
            self._tables[spec.setting] = table

    def __getitem__(self, setting: str) -> dynamodb.Table:
        """The table whose name ``Settings.<setting>`` holds, e.g. ``tables["ledger_table"]``."""
        return self._tables[setting]

    def items(self) -> list[tuple[str, dynamodb.Table]]:
        return list(self._tables.items())


def _warm_throughput(stage: Stage, setting: str) -> dynamodb.WarmThroughput:
    """The table's warm throughput for the stage's target (``payments.ops.capacity.warm_throughput``): ready
    for the target from the first second after a deploy or a quiet month; DynamoDB's default without one."""
    warm = capacity.warm_throughput(setting, stage.target_checkouts_per_second or 0)
    return dynamodb.WarmThroughput(
        read_units_per_second=warm.read_units_per_second, write_units_per_second=warm.write_units_per_second
    )
