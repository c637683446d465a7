"""The local runtime's moto patches keep a stream record's old image: an item updated inside a transaction
(a dispute step, a refund decided) is streamed with what it was before, as DynamoDB does; the events are read
from the difference (payments.events.changes). And a transaction that fails streams nothing, as in DynamoDB
(moto streams each item as it writes it, then rolls the items back)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from payments_dev.local import moto_patches


def _table(ddb: Any, name: str = "t") -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _records(name: str = "t") -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records: list[dict[str, Any]] = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    return records


def test_an_update_inside_a_transaction_is_streamed_with_its_old_image() -> None:
    moto_patches.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _table(ddb)
        put: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}
        ddb.transact_write_items(TransactItems=[{"Put": put}])
        update = {
            "TableName": "t",
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "SET r = :r",
            "ConditionExpression": "attribute_not_exists(r)",
            "ExpressionAttributeValues": {":r": {"N": "2"}},
        }
        ddb.transact_write_items(TransactItems=[{"Update": update}])
        records = _records()
    modify = records[-1]["dynamodb"]
    assert modify["OldImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert modify["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}, "r": {"N": "2"}}


def test_a_transaction_that_fails_streams_none_of_its_writes() -> None:
    moto_patches.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _table(ddb, "refunds")
        _table(ddb, "orders")
        ddb.put_item(TableName="refunds", Item={"pk": {"S": "rf_1"}, "status": {"S": "PENDING"}})
        ddb.put_item(TableName="orders", Item={"pk": {"S": "po_1"}, "reserved": {"N": "5"}})
        before = {name: len(_records(name)) for name in ("refunds", "orders")}
        # Given a transaction whose first write (the refund decided) succeeds in moto and whose second fails
        decide = {
            "TableName": "refunds",
            "Key": {"pk": {"S": "rf_1"}},
            "UpdateExpression": "SET #s = :done",
            "ConditionExpression": "#s = :pending",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":done": {"S": "SUCCEEDED"}, ":pending": {"S": "PENDING"}},
        }
        release = {
            "TableName": "orders",
            "Key": {"pk": {"S": "po_1"}},
            "UpdateExpression": "SET reserved = reserved - :n",
            "ConditionExpression": "reserved >= :n",
            "ExpressionAttributeValues": {":n": {"N": "9"}},
        }
        with pytest.raises(ClientError, match="TransactionCanceled"):
            ddb.transact_write_items(TransactItems=[{"Update": decide}, {"Update": release}])
        # Then neither item changed, and neither stream holds a record of it
        assert ddb.get_item(TableName="refunds", Key={"pk": {"S": "rf_1"}})["Item"]["status"] == {"S": "PENDING"}
        assert {name: len(_records(name)) for name in ("refunds", "orders")} == before
        # And the next write that commits is streamed, once, from the item as it was
        ddb.transact_write_items(TransactItems=[{"Update": decide}])
        (record,) = _records("refunds")[before["refunds"] :]
    assert record["dynamodb"]["OldImage"]["status"] == {"S": "PENDING"}
    assert record["dynamodb"]["NewImage"]["status"] == {"S": "SUCCEEDED"}


def _read_all(name: str) -> list[dict[str, Any]]:
    """Every record of the table's stream, page by page (a small ``Limit``, so that several pages are read)."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    following, records = iterator["ShardIterator"], []
    while True:
        page = streams.get_records(ShardIterator=following, Limit=3)
        if not page["Records"]:
            return records
        records += page["Records"]
        following = page["NextShardIterator"]


def test_stream_records_written_without_motos_serializer_read_back_as_motos_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """Part 3 for GetRecords: the same records, field by field, as moto's own serializer gives them, the
    creation time (a datetime, the one value that is not JSON) and a binary attribute included."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    moto_patches.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        _table(ddb)
        for n in range(5):
            item = {
                "pk": {"S": f"k{n}"},
                "amount": {"N": f"{n}.10"},
                "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": True}]}}},
            }
            ddb.put_item(TableName="t", Item=item)
        ddb.update_item(
            TableName="t",
            Key={"pk": {"S": "k1"}},
            UpdateExpression="SET s = :s",
            ExpressionAttributeValues={":s": {"SS": ["a", "b"]}},
        )
        ddb.delete_item(TableName="t", Key={"pk": {"S": "k2"}})
        put: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": "k9"}, "nul": {"NULL": True}}}
        ddb.transact_write_items(TransactItems=[{"Put": put}])
        ddb.put_item(TableName="t", Item={"pk": {"S": "bin"}, "b": {"B": b"\x00\xffbytes"}})  # not JSON: moto's path
        fast = _read_all("t")
        monkeypatch.setattr(DynamoDBStreamsHandler, "get_records", DynamoDBStreamsHandler._payments_moto_get_records)
        baseline = _read_all("t")
    assert len(fast) == 9
    assert [r["dynamodb"]["SequenceNumber"] for r in fast] == [r["dynamodb"]["SequenceNumber"] for r in baseline]
    for ours, motos in zip(fast, baseline, strict=True):
        assert ours == motos
    assert fast[-1]["dynamodb"]["NewImage"]["b"] == {"B": b"\x00\xffbytes"}
