"""The bank rail's infrastructure: the bank bucket, its notifications, the simulated bank on dev stages only,
the nightly close of day, and the alarms on returned and failed payouts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions import registry
from infra.app import build_app
from tests.infrastructure.conftest import REPO_ROOT
from tests.infrastructure.helpers import function_named, resources


def _bank_bucket(template: dict[str, Any], stage: str) -> tuple[str, dict[str, Any]]:
    _, fn = function_named(template, registry.BANK_RECONCILE.name, stage)
    bucket_id = fn["Environment"]["Variables"]["BANK_BUCKET"]["Ref"]
    return bucket_id, resources(template, "AWS::S3::Bucket")[bucket_id]


def _notifications(template: dict[str, Any], bucket_id: str) -> dict[str, str]:
    """prefix -> the function's logical id, of the bucket's S3 notifications."""
    (config,) = (
        n["Properties"]["NotificationConfiguration"]
        for n in resources(template, "Custom::S3BucketNotifications").values()
        if n["Properties"]["BucketName"] == {"Ref": bucket_id}
    )
    return {
        c["Filter"]["Key"]["FilterRules"][0]["Value"]: c["LambdaFunctionArn"]["Fn::GetAtt"][0]
        for c in config["LambdaFunctionConfigurations"]
    }


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_bank_bucket_is_private_versioned_encrypted_logged_and_tls_only(request, stage):
    template = request.getfixturevalue(stage)
    bucket_id, bucket = _bank_bucket(template, stage)
    props = bucket["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain" and "DestinationBucketName" in props["LoggingConfiguration"]
    (policy,) = (
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )
    (deny,) = (s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_dev_answers_payout_files_with_the_simulated_bank_and_reconciles_the_answers(dev):
    bucket_id, _ = _bank_bucket(dev, "dev")
    reconcile_id, _ = function_named(dev, registry.BANK_RECONCILE.name)
    simulated_id, simulated = function_named(dev, registry.SIMULATED_BANK.name)
    assert _notifications(dev, bucket_id) == {"incoming/bank/": reconcile_id, "outgoing/pain001/": simulated_id}
    # and the simulated bank closes each UTC day at 23:55
    (rule,) = (
        r
        for r in resources(dev, "AWS::Events::Rule").values()
        if any(t["Arn"] == {"Fn::GetAtt": [simulated_id, "Arn"]} for t in r["Properties"]["Targets"])
    )
    assert rule["Properties"]["ScheduleExpression"] == "cron(55 23 * * ? *)"
    assert json.loads(rule["Properties"]["Targets"][0]["Input"]) == {"action": "close_day"}
    assert simulated["Environment"]["Variables"]["PAYOUT_DEBTOR_IBAN"]


def test_a_production_stage_has_no_simulated_bank_and_still_reconciles_its_banks_answers(prod):
    bucket_id, _ = _bank_bucket(prod, "prod")
    reconcile_id, _ = function_named(prod, registry.BANK_RECONCILE.name, "prod")
    assert _notifications(prod, bucket_id) == {"incoming/bank/": reconcile_id}
    with pytest.raises(AssertionError, match="no function simulated_bank"):
        function_named(prod, registry.SIMULATED_BANK.name, "prod")


def test_a_production_stage_cannot_be_synthesised_with_the_simulated_bank(tmp_path):
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context.update({"aws:cdk:bundling-stacks": [], "stage": "prod", "bank": "simulated"})
    with pytest.raises(ValueError, match="cannot deploy the simulated bank") as raised:
        build_app(context, outdir=str(tmp_path))
    assert "s3-drop" in str(raised.value) and "docs/payouts-bank.md" in str(raised.value)


@pytest.mark.parametrize("metric", ["PayoutsReturned", "PayoutsFailed"])
def test_returned_and_failed_payouts_raise_an_alarm(dev, metric):
    (alarm,) = (
        a["Properties"]
        for a in resources(dev, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric
        and a["Properties"].get("Dimensions") == [{"Name": "service", "Value": registry.BANK_RECONCILE.name}]
    )
    assert alarm["Namespace"] == "Payments" and alarm["Threshold"] == 0
    assert alarm["Dimensions"] == [{"Name": "service", "Value": registry.BANK_RECONCILE.name}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["AlarmActions"]
