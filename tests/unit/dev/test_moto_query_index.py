"""The local runtime's query index over moto's DynamoDB (payments_dev/local/moto_patches.py, part 4).

moto answers a Query by testing every item of the table; the patch hands its query only the
items of one partition (table queries) or of one hash-key value of a GSI (index queries, from an
index kept up to date by every write path). A missing index entry would silently lose an item, so
these tests drive every write path the runtime uses (put, conditional put, update that sets or
removes the index key, delete, transactions that commit or are cancelled, batch writes, PartiQL)
with random operations and, after each, compare every query with the same question answered by a
full scan.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from payments.kernel.tables import Index, Table, create_table_request
from payments_dev.local import moto_patches

GSI_VALUES = ("day#1", "day#2", "day#3")
PKS = tuple(f"P{i}" for i in range(6))
RANGED = Table("unused", "pk", "sk", (Index("by_gk", "gk", "gr"),))  # as the ledger: the index has a sort key
FLAT = Table("unused", "pk", None, (Index("by_gk", "gk"),))


@pytest.fixture
def ddb() -> Iterator[Any]:
    moto_patches.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name, table in (("ranged", RANGED), ("flat", FLAT)):
            client.create_table(**create_table_request(table, name))
        yield client


def _item(rng: random.Random, table: str) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": rng.choice(PKS)}, "n": {"N": str(rng.randrange(100))}}
    if table == "ranged":
        item["sk"] = {"S": f"S{rng.randrange(8)}"}
        item["gr"] = {"S": f"R{rng.randrange(5)}"}
    if rng.random() < 0.8:  # some items stay out of the index
        item["gk"] = {"S": rng.choice(GSI_VALUES)}
    return item


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in ("pk", "sk")}


def _random_write(client: Any, rng: random.Random) -> None:
    table = rng.choice(("ranged", "flat"))
    item = _item(rng, table)
    op = rng.randrange(7)
    try:
        if op == 0:
            client.put_item(TableName=table, Item=item)
        elif op == 1:  # conditional put: refused when the item exists
            client.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        elif op == 2:  # update in place: moves the item to another index bucket
            client.update_item(
                TableName=table,
                Key=_key(item),
                UpdateExpression="SET gk = :g, n = :n",
                ExpressionAttributeValues={":g": {"S": rng.choice(GSI_VALUES)}, ":n": {"N": "1"}},
            )
        elif op == 3:  # update in place: takes the item out of the index
            client.update_item(TableName=table, Key=_key(item), UpdateExpression="REMOVE gk")
        elif op == 4:
            client.delete_item(TableName=table, Key=_key(item))
        elif op == 5:  # a transaction that writes two items, cancelled when its condition fails
            other = _item(rng, table)
            while _key(other) == _key(item):  # one transaction may not write an item twice
                other = _item(rng, table)
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": other}},
                    {
                        "Update": {
                            "TableName": table,
                            "Key": _key(item),
                            "UpdateExpression": "SET gk = :g",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeValues": {":g": {"S": rng.choice(GSI_VALUES)}},
                        }
                    },
                ]
            )
        else:
            requests = {
                _key_tuple(i): i for i in (_item(rng, table) for _ in range(3))
            }  # no duplicate keys in one batch
            client.batch_write_item(
                RequestItems={
                    table: [
                        {"PutRequest": {"Item": i}} if rng.random() < 0.7 else {"DeleteRequest": {"Key": _key(i)}}
                        for i in requests.values()
                    ]
                }
            )
    except ClientError as error:
        assert error.response["Error"]["Code"] in ("ConditionalCheckFailedException", "TransactionCanceledException")


def _key_tuple(item: dict[str, Any]) -> tuple[str, ...]:
    return tuple(v["S"] for k, v in sorted(_key(item).items()))


def _scan(client: Any, table: str) -> list[dict[str, Any]]:
    return client.scan(TableName=table, ConsistentRead=True)["Items"]


def _query_all(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items, start = [], None
    while True:
        page = client.query(**kwargs, Limit=2, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _assert_queries_match_scans(client: Any) -> None:
    for table in ("ranged", "flat"):
        everything = _scan(client, table)
        for value in GSI_VALUES:
            got = _query_all(
                client,
                TableName=table,
                IndexName="by_gk",
                KeyConditionExpression="gk = :g",
                ExpressionAttributeValues={":g": {"S": value}},
            )
            # DynamoDB leaves out of an index the items that lack one of its key attributes
            expected = [i for i in everything if i.get("gk") == {"S": value} and (table == "flat" or "gr" in i)]
            assert sorted(map(_key_tuple, got)) == sorted(map(_key_tuple, expected)), (table, value)
            if table == "ranged":  # the index's sort key orders the answer
                assert [i["gr"]["S"] for i in got] == sorted(i["gr"]["S"] for i in expected)
        for pk in PKS:
            for forward in (True, False):
                got = _query_all(
                    client,
                    TableName=table,
                    KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": pk}},
                    ScanIndexForward=forward,
                )
                expected = sorted((i for i in everything if i["pk"]["S"] == pk), key=_key_tuple, reverse=not forward)
                assert got == expected, (table, pk, forward)


def test_queries_answer_what_a_scan_answers_after_every_kind_of_write(ddb: Any) -> None:
    rng = random.Random(20261201)
    for step in range(300):
        _random_write(ddb, rng)
        if step % 10 == 0:
            _assert_queries_match_scans(ddb)
    _assert_queries_match_scans(ddb)


def test_a_partiql_update_moves_the_item_between_index_buckets(ddb: Any) -> None:
    ddb.put_item(TableName="flat", Item={"pk": {"S": "P1"}, "gk": {"S": "day#1"}})
    _assert_queries_match_scans(ddb)  # builds the index
    ddb.execute_statement(Statement="UPDATE flat SET gk='day#2' WHERE pk='P1'")
    assert (
        ddb.query(
            TableName="flat",
            IndexName="by_gk",
            KeyConditionExpression="gk = :g",
            ExpressionAttributeValues={":g": {"S": "day#1"}},
        )["Items"]
        == []
    )
    assert [
        i["pk"]["S"]
        for i in ddb.query(
            TableName="flat",
            IndexName="by_gk",
            KeyConditionExpression="gk = :g",
            ExpressionAttributeValues={":g": {"S": "day#2"}},
        )["Items"]
    ] == ["P1"]


def test_range_conditions_and_filters_still_apply_to_the_candidates(ddb: Any) -> None:
    for sk, gr, n in (("S1", "R1", "1"), ("S2", "R2", "2"), ("S3", "R3", "3")):
        ddb.put_item(
            TableName="ranged",
            Item={"pk": {"S": "P1"}, "sk": {"S": sk}, "gk": {"S": "day#1"}, "gr": {"S": gr}, "n": {"N": n}},
        )
    page = ddb.query(
        TableName="ranged",
        IndexName="by_gk",
        KeyConditionExpression="gk = :g AND gr > :r",
        FilterExpression="n < :n",
        ExpressionAttributeValues={":g": {"S": "day#1"}, ":r": {"S": "R1"}, ":n": {"N": "3"}},
    )
    assert [i["sk"]["S"] for i in page["Items"]] == ["S2"]
    assert page["ScannedCount"] == 2  # what DynamoDB reports too: the key condition's items, before the filter
    page = ddb.query(
        TableName="ranged",
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": "P1"}, ":s": {"S": "S3"}},
    )
    assert [i["sk"]["S"] for i in page["Items"]] == ["S3"]


def test_queries_take_the_indexed_path(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, the tests above would also pass with the patch switched off."""
    calls: list[str] = []
    for name in ("_gsi_candidates", "_table_candidates"):
        real = getattr(moto_patches, name)
        monkeypatch.setattr(moto_patches, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    ddb.put_item(TableName="flat", Item={"pk": {"S": "P1"}, "gk": {"S": "day#1"}})
    ddb.query(
        TableName="flat",
        IndexName="by_gk",
        KeyConditionExpression="gk = :g",
        ExpressionAttributeValues={":g": {"S": "day#1"}},
    )
    ddb.query(TableName="flat", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "P1"}})
    assert calls == ["_gsi_candidates", "_table_candidates"]
