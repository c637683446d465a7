"""The DynamoDB tables, their keys and indexes: one description for every runtime.

The local runtime creates exactly these tables; the CDK stack declares them with
the same keys (an infrastructure test compares the two). Item layouts are
documented in the repository modules that own each table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None
    projection: str = "ALL"  # ALL or KEYS_ONLY
    #: False: created by the local runtime and the tests only, never in a deployed stage (see the ledger's)
    deployed: bool = True


@dataclass(frozen=True)
class Table:
    setting: str  # field of payments.kernel.config.Settings holding the table name
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = field(default_factory=tuple)
    ttl_attribute: str | None = None
    holds_money: bool = True  # money or history: point-in-time recovery, retained on delete
    #: the table's stream view (None: no stream): the ledger's new images feed its analytical copy
    #: (payments.reconciliation.lake); the resource tables' old and new images are turned into the events the
    #: marketplace hears (payments.events)
    stream: str | None = None


#: the stream of a table whose changes are events (payments.events): a change is read from both images
EVENTS_STREAM = "NEW_AND_OLD_IMAGES"

TABLES: tuple[Table, ...] = (
    # payment events and payment orders (payments.payin.repository)
    # by_recovery_due: a sparse index of the payments and refunds not finished yet (payments.payin.recovery,
    # payments.refunds.recovery), keys only: only their items carry `unfinished` (a shard, "U#<n>") and
    # `recovery_due` (ISO time)
    Table(
        "payments_table",
        "pk",
        "sk",
        (Index("by_recovery_due", "unfinished", "recovery_due", "KEYS_ONLY"),),
        stream=EVENTS_STREAM,
    ),
    # seller balances: pending (sharded) and credit markers (payments.accounts.wallet), available and in transit
    # (payments.accounts.balances); by_balance_shard (sparse, keys only: only balance items carry `balance_shard`)
    # lists the balance items for the nightly payout run, 16 partitions
    Table("wallets_table", "pk", "sk", (Index("by_balance_shard", "balance_shard", "pk", "KEYS_ONLY"),)),
    # append-only double-entry transactions and trial-balance totals (payments.accounts.ledger); its stream
    # feeds the ledger's copy in S3 (payments.reconciliation.lake), which a deployed stage reconciles from.
    # by_settlement_day (charges) and the sparse by_modification_day (refunds, chargebacks, reversals: only
    # they carry the key) list a day for a reader without that copy (the tests'); they are not deployed: one
    # key per day takes every transaction of the day, 60 times a partition's write limit at 20,000
    # checkouts/s (docs/capacity.md, "Index keys")
    Table(
        "ledger_table",
        "pk",
        "sk",
        (
            Index("by_settlement_day", "settlement_day", "psp_reference", deployed=False),
            Index("by_modification_day", "modification_settlement_day", "txn_id", deployed=False),
        ),
        stream="NEW_IMAGE",
    ),
    # Powertools idempotency records of POST /v1/payments
    Table("idempotency_table", "id", None, ttl_attribute="expiration", holds_money=False),
    # the simulated PSP's own record of charges (payments.psp.simulator); by_modification_day
    # (sparse) lists a day's refunds, chargebacks and reversals for its settlement file
    Table(
        "psp_table",
        "pk",
        "sk",
        (Index("by_charge_day", "charge_day", "pk"), Index("by_modification_day", "modification_day", "pk")),
    ),
    # reconciliation runs and mismatches (payments.reconciliation.store); by_mismatch_day (sparse:
    # only mismatches carry its keys) lists one settlement day's mismatches across files, and finds
    # one by the short id an operator types (which names its day)
    Table(
        "reconciliation_table",
        "pk",
        "sk",
        (Index("by_mismatch_day", "mismatch_day", "mismatch_ref"),),
        stream=EVENTS_STREAM,
    ),
    # sellers' payout accounts, one per (seller, currency) (payments.payouts.accounts): bank details, no money,
    # but kept like money (retained, point-in-time recovery): a payout's destination is its history
    Table("payout_accounts_table", "pk", "sk"),
    # payouts and the nightly runs' files (payments.payouts.repository); by_pending (sparse: only a PENDING
    # payout carries `pending_currency`) lists the payouts still to send, per currency, for the run
    Table("payouts_table", "pk", "sk", (Index("by_pending", "pending_currency", "payout_id"),), stream=EVENTS_STREAM),
)


def create_table_request(table: Table, name: str) -> dict[str, Any]:
    """The DynamoDB ``CreateTable`` request of a table (on-demand, string keys)."""
    attributes = {table.partition_key} | ({table.sort_key} if table.sort_key else set())
    for index in table.indexes:
        attributes |= {index.partition_key} | ({index.sort_key} if index.sort_key else set())
    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "KeySchema": _key_schema(table.partition_key, table.sort_key),
    }
    if table.stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream}
    if table.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": i.name,
                "KeySchema": _key_schema(i.partition_key, i.sort_key),
                "Projection": {"ProjectionType": i.projection},
            }
            for i in table.indexes
        ]
    return request


def create_tables(ddb: Any, settings: Any) -> None:
    """Create every table of :data:`TABLES` under the names ``settings`` gives them (local runtime, tests)."""
    for table in TABLES:
        name = getattr(settings, table.setting)
        ddb.create_table(**create_table_request(table, name))
        if table.ttl_attribute:
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
            )


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    return [{"AttributeName": partition_key, "KeyType": "HASH"}] + (
        [{"AttributeName": sort_key, "KeyType": "RANGE"}] if sort_key else []
    )
