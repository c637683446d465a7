"""The ledger's copy in the prod template: the stream, the pipe's mapping (equal to ``lake.COLUMNS``), the
delivery stream's layout (``lake.Partition``), the Glue table, the Athena workgroup, and who reads it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from payments.reconciliation import lake
from tests.infrastructure.helpers import as_list, function_named, policy_statements_of_role, resources


def only(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = resources(template, resource_type).items()
    return found[0], found[1]["Properties"]


def ledger_pipe(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The ledger copy's pipe (the stack's other pipes carry events: test_events.py)."""
    (found,) = [
        (k, p["Properties"])
        for k, p in resources(template, "AWS::Pipes::Pipe").items()
        if p["Properties"]["Name"] == "payments-prod-ledger-lake"
    ]
    return found


def ledger_table(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for logical_id, table in resources(template, "AWS::DynamoDB::Table").items():
        if table["Properties"]["TableName"] == "payments-prod-ledger":
            return logical_id, table["Properties"]
    raise AssertionError("no ledger table")


def test_the_ledger_tables_stream_feeds_the_pipe_with_inserted_transactions_only(prod):
    # Given the prod template's ledger table and pipe
    table_id, table = ledger_table(prod)
    _, pipe = ledger_pipe(prod)
    # Then the table streams new images and the pipe reads that stream from its trim horizon
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert pipe["Source"] == {"Fn::GetAtt": [table_id, "StreamArn"]}
    source = pipe["SourceParameters"]["DynamoDBStreamParameters"]
    assert source["StartingPosition"] == "TRIM_HORIZON"
    assert "DeadLetterConfig" in source  # a batch that cannot be delivered is kept, not dropped
    # And only an inserted TXN item passes its filter
    (pattern,) = [json.loads(f["Pattern"]) for f in pipe["SourceParameters"]["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["TXN"]}}}}
    # And it delivers to the delivery stream
    stream_id, _ = only(prod, "AWS::KinesisFirehose::DeliveryStream")
    assert pipe["Target"] == {"Fn::GetAtt": [stream_id, "Arn"]}


def test_the_pipes_mapping_is_lake_columns_taken_from_the_image_by_their_dynamodb_type(prod):
    # Given the pipe's input template
    _, pipe = ledger_pipe(prod)
    template = json.loads(pipe["TargetParameters"]["InputTemplate"])
    # Then every column of lake.COLUMNS is taken from the attribute of its name: a string (S) for VARCHAR,
    # a number (N) for BIGINT; beside them only the attributes lake.partition_of reads
    for name, kind in lake.COLUMNS:
        assert template[name] == f"<$.dynamodb.NewImage.{name}.{ {'VARCHAR': 'S', 'BIGINT': 'N'}[kind] }>", name
    extra = set(template) - {name for name, _ in lake.COLUMNS}
    assert extra == {"settlement_day", "modification_settlement_day", "psp"}


def test_the_glue_table_is_lake_columns_with_projected_partitions(prod):
    # Given the Glue table of the ledger
    (table,) = [
        t["Properties"]
        for t in resources(prod, "AWS::Glue::Table").values()
        if t["Properties"]["TableInput"]["Name"] == "ledger"
    ]
    table_input = table["TableInput"]
    descriptor = table_input["StorageDescriptor"]
    # Then its columns and partition keys together are lake.COLUMNS and lake.PARTITIONS, with Glue's types
    # (a partition key is not also a column: currency is read from the object's prefix)
    columns = [(c["Name"], c["Type"]) for c in descriptor["Columns"]]
    assert columns == [(name, {"VARCHAR": "string", "BIGINT": "bigint"}[kind]) for name, kind in lake.COLUMNS]
    assert [(k["Name"], k["Type"]) for k in table_input["PartitionKeys"]] == [(k, "string") for k in lake.PARTITIONS]
    assert "Parquet" in descriptor["SerdeInfo"]["SerializationLibrary"]
    # And its partitions are projected (no crawler): a PSP's day of a currency is lake.Partition's prefix
    parameters = table_input["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.day.type"] == "date" and parameters["projection.day.format"] == "yyyy-MM-dd"
    assert "EUR" in parameters["projection.ccy.values"].split(",")
    assert set(parameters["projection.psp.values"].split(",")) == {"adyen", "platform"}
    location = json.dumps(parameters["storage.location.template"])
    partition = lake.Partition(psp="${psp}", day="${day}", ccy="${ccy}").prefix
    assert partition in location


def test_the_delivery_stream_writes_parquet_under_the_lakes_partition_prefix(prod):
    # Given the delivery stream
    _, stream = only(prod, "AWS::KinesisFirehose::DeliveryStream")
    destination = stream["ExtendedS3DestinationConfiguration"]
    # Then it writes lake.Partition's prefix, from the JQ query's keys
    keys = {key: f"!{{partitionKeyFromQuery:{key}}}" for key in lake.PARTITIONS}
    assert destination["Prefix"] == lake.Partition(**keys).prefix
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    # And converts each record to Parquet against the Glue table
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    assert conversion["SchemaConfiguration"]["TableName"] == "ledger"
    assert stream["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] == "AWS_OWNED_CMK"


ITEMS = [
    {  # a charge: its PSP and settlement day from settlement_day
        "pk": "TXN#t1",
        "sk": "TXN",
        "txn_id": "t1",
        "kind": "PAYIN",
        "payment_order_id": "po_1",
        "checkout_id": "chk_1",
        "psp_reference": "psp_1",
        "seller_account": "seller_books",
        "currency": "EUR",
        "amount_minor": 4210,
        "commission_minor": 105,
        "settlement_day": "adyen#2026-11-30",
        "charged_at": "2026-11-30T23:59:59.123456Z",
        "booked_at": "2026-12-01T00:00:01.000000Z",
    },
    {  # a refund: modification_settlement_day, no charged_at
        "pk": "TXN#t2",
        "sk": "TXN",
        "txn_id": "t2",
        "kind": "REFUND",
        "payment_order_id": "po_1",
        "checkout_id": "chk_1",
        "psp_reference": "rf_psp_1",
        "original_psp_reference": "psp_1",
        "seller_account": "seller_books",
        "currency": "EUR",
        "amount_minor": 1000,
        "commission_minor": 0,
        "modification_settlement_day": "adyen#2026-12-02",
        "booked_at": "2026-12-02T10:00:00.000000Z",
    },
    {  # one of the platform's own: neither day, no psp
        "pk": "TXN#t3",
        "sk": "TXN",
        "txn_id": "t3",
        "kind": "PAYOUT",
        "seller_account": "seller_books",
        "currency": "JPY",
        "amount_minor": 5000,
        "booked_at": "2026-12-03T01:02:03.000000Z",
    },
]


def render(template: str, image: dict[str, Any], missing: str) -> dict[str, Any]:
    """The pipe's input transformation of a stream record whose new image is ``image``: each quoted
    ``<$.dynamodb.NewImage.<attribute>.<type>>`` becomes the value (a missing one ``missing``: Pipes does
    not document what a path to nothing gives, so both an empty string and null are tried)."""

    def value(match: re.Match[str]) -> str:
        attribute, kind = match.group(1), match.group(2)
        found = image.get(attribute, {}).get(kind)
        return json.dumps(found) if found is not None else missing

    return dict(json.loads(re.sub(r'"<\$\.dynamodb\.NewImage\.(\w+)\.(S|N)>"', value, template)))


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq (Firehose's JQ 1.6 dialect) is not installed")
@pytest.mark.parametrize("missing", ['""', "null"])
@pytest.mark.parametrize("item", ITEMS, ids=[i["kind"] for i in ITEMS])
def test_a_transaction_through_the_pipe_and_the_jq_query_lands_where_lake_partition_of_says(prod, item, missing):
    # Given a ledger transaction item as the stream carries it, and the pipe's template and Firehose's query
    image = {name: TypeSerializer().serialize(value) for name, value in item.items()}
    _, pipe = ledger_pipe(prod)
    _, stream = only(prod, "AWS::KinesisFirehose::DeliveryStream")
    (processor,) = stream["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"]
    query = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}["MetadataExtractionQuery"]
    # When the pipe renders it and the query extracts its partition keys
    record = render(pipe["TargetParameters"]["InputTemplate"], image, missing)
    jq = shutil.which("jq") or "jq"
    keys = json.loads(
        subprocess.run([jq, "-c", query], input=json.dumps(record), capture_output=True, check=True, text=True).stdout
    )
    # Then the object goes under the partition lake.partition_of gives the item
    expected = lake.partition_of(item)
    assert expected is not None
    assert lake.Partition(**keys) == expected
    # And each column holds row_of's value (a number arrives as its decimal string, the Glue column's bigint)
    row = lake.row_of(item)
    for name, kind in lake.COLUMNS:
        if row[name] is None:
            assert record[name] in ("", None), name
        else:
            assert (int(record[name]) if kind == "BIGINT" else record[name]) == row[name], name


def test_the_athena_workgroup_enforces_encrypted_results_and_a_scan_cutoff(prod):
    _, workgroup = only(prod, "AWS::Athena::WorkGroup")
    configuration = workgroup["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert 0 < configuration["BytesScannedCutoffPerQuery"] <= 1024**4
    assert configuration["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_S3"


def test_the_lake_bucket_is_private_encrypted_tls_only_and_expires_what_is_not_the_copy(prod):
    # Given the bucket the delivery stream writes
    _, stream = only(prod, "AWS::KinesisFirehose::DeliveryStream")
    bucket_id = stream["ExtendedS3DestinationConfiguration"]["BucketARN"]["Fn::GetAtt"][0]
    bucket = prod["Resources"][bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert "LoggingConfiguration" in bucket
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-errors"]["ExpirationInDays"] and rules["expire-athena-results"]["ExpirationInDays"]
    assert "ExpirationInDays" not in rules["ledger-infrequent-access"]  # the copy itself is kept
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources(prod, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_the_reconcile_function_is_given_the_lake_and_may_only_read_its_copy(prod):
    # Given the reconcile function and the lake bucket
    _, stream = only(prod, "AWS::KinesisFirehose::DeliveryStream")
    bucket_id = stream["ExtendedS3DestinationConfiguration"]["BucketARN"]["Fn::GetAtt"][0]
    _, function = function_named(prod, "reconcile", "prod")
    # Then LEDGER_LAKE_BUCKET names it
    assert function["Environment"]["Variables"]["LEDGER_LAKE_BUCKET"] == {"Ref": bucket_id}
    # And its role reads objects under ledger/ (and the Athena workflow's results) only, lists under those
    # prefixes only, and writes nothing there
    statements = policy_statements_of_role(prod, function["Role"]["Fn::GetAtt"][0])
    on_lake = [s for s in statements if bucket_id in json.dumps(s["Resource"])]
    assert {a for s in on_lake for a in as_list(s["Action"])} == {"s3:GetObject", "s3:ListBucket"}
    prefixes = ["athena-results/reconcile/*", "ledger/*"]
    for statement in on_lake:
        if "s3:GetObject" in as_list(statement["Action"]):
            granted = sorted(json.dumps(r).split('"/')[-1].split('"')[0] for r in as_list(statement["Resource"]))
            assert granted == prefixes, statement["Resource"]
        else:
            assert statement["Condition"]["StringLike"]["s3:prefix"][0] in prefixes


def test_a_dead_lettered_batch_and_a_copy_behind_raise_alarms_on_the_stages_topic(prod):
    # Given the pipe's dead-letter queue, the delivery stream and the stage's alarm topic
    source = ledger_pipe(prod)[1]["SourceParameters"]["DynamoDBStreamParameters"]
    queue_id = source["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    stream_id, _ = only(prod, "AWS::KinesisFirehose::DeliveryStream")
    topic_id, _ = only(prod, "AWS::SNS::Topic")
    alarms = [a["Properties"] for a in resources(prod, "AWS::CloudWatch::Alarm").values()]

    def on(metric: str, dimension: dict[str, Any]) -> dict[str, Any]:
        (alarm,) = [a for a in alarms if a.get("MetricName") == metric and dimension in a.get("Dimensions", [])]
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        return alarm

    # Then a message in the dead-letter queue alarms at once
    assert (
        on(
            "ApproximateNumberOfMessagesVisible",
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}},
        )["Threshold"]
        == 0
    )
    # And a copy more than three buffer intervals behind alarms
    assert (
        on("DeliveryToS3.DataFreshness", {"Name": "DeliveryStreamName", "Value": {"Ref": stream_id}})["Threshold"]
        == 900
    )
