"""functions/events: the pipes' enrichment, on the records moto's DynamoDB stream holds after the repositories'
own writes (a JSON array in, the envelopes out), and the same batch again gives the same envelopes."""

from __future__ import annotations

import json
from typing import Any

import boto3

from payments.events.envelope import CloudEvent
from payments.events.models import DATA_MODELS
from payments.kernel.config import settings
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus, PaymentStatus
from tests.unit.conftest import REGION, Repos, store_checkout, succeed


def stream_records(table: str) -> list[dict[str, Any]]:
    """Every record of the table's stream, as a pipe passes them (JSON: the timestamps as epoch seconds)."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        page = streams.get_records(ShardIterator=iterator["ShardIterator"])
        records += page["Records"]
    for record in records:
        moment = record["dynamodb"]["ApproximateCreationDateTime"]
        record["dynamodb"]["ApproximateCreationDateTime"] = int(moment.timestamp())
    return json.loads(json.dumps(records))


def test_a_checkouts_writes_become_its_events_and_a_redelivered_batch_the_same(repos: Repos) -> None:
    from functions.events.handler import envelopes

    # Given a checkout of two orders stored, both charged, the payment finalized
    repo: PaymentsRepository = repos.payments
    store_checkout(repo, "co_ev", [("po_ev1", "seller_a", 1000, "USD"), ("po_ev2", "seller_b", 250, "USD")])
    succeed(repo, "po_ev1")
    repo.move_order("po_ev2", OrderStatus.FAILED, failure_reason="card_declined")
    repo.move_payment("co_ev", PaymentStatus.PARTIALLY_FAILED, is_payment_done=True)
    batch = stream_records(settings().payments_table)
    assert len(batch) >= 6  # three inserts, three order moves, the payment's move

    # When the pipe passes the batch to the enrichment
    out = envelopes(batch, repo)

    # Then one event per final status, in the records' order, each with the resource as the API answers it
    assert [(e["type"], e["subject"]) for e in out] == [
        ("payments.payment_order.succeeded", "po_ev1"),
        ("payments.payment_order.failed", "po_ev2"),
        ("payments.payment.partially_failed", "co_ev"),
    ]
    payment = out[-1]
    assert [o["status"] for o in payment["data"]["payment_orders"]] == ["SUCCESS", "FAILED"]
    for envelope in out:
        CloudEvent.model_validate(envelope)
        DATA_MODELS[CloudEvent.model_validate(envelope).type].model_validate(envelope["data"])
        assert envelope["source"] == "urn:payments:local"
    # and the same batch again (the pipe's retry) answers the same envelopes: same ids, same sequences
    assert envelopes(batch, repo) == out
