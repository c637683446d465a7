"""The local runtime's moto patches keep a stream record's old image: an item updated inside a transaction
(a dispute step, a refund decided) is streamed with what it was before, as DynamoDB does; the events are read
from the difference (payments.events.changes)."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from payments_dev.local import moto_patches


def test_an_update_inside_a_transaction_is_streamed_with_its_old_image() -> None:
    moto_patches.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
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
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = ddb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    modify = records[-1]["dynamodb"]
    assert modify["OldImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert modify["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}, "r": {"N": "2"}}
