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
