"""payments preflight against recorded AWS answers (botocore's Stubber): met, short, refused."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from payments.ops import capacity, cli, preflight

STAGE = "prod"
TARGET = 450
SERVICES = ("cloudformation", "service-quotas", "apigateway", "dynamodb", "lambda")


class Recorded:
    """One stubbed client per service; answers are queued in the order preflight asks."""

    def __init__(self) -> None:
        self.clients = {
            s: boto3.client(s, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
            for s in SERVICES
        }
        self.stubs = {s: Stubber(c) for s, c in self.clients.items()}

    def answer(
        self, service: str, operation: str, response: dict[str, Any], params: dict[str, Any] | None = None
    ) -> None:
        self.stubs[service].add_response(operation, response, params)

    def refuse(self, service: str, operation: str, code: str) -> None:
        self.stubs[service].add_client_error(
            operation, service_error_code=code, service_message="denied", http_status_code=403
        )

    def __enter__(self) -> Recorded:
        for stub in self.stubs.values():
            stub.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        for stub in self.stubs.values():
            stub.deactivate()

    def assert_all_asked(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def _quota(service: str, code: str, value: float) -> dict[str, Any]:
    return {"Quota": {"ServiceCode": service, "QuotaCode": code, "QuotaName": code, "Value": value}}


def record_account(
    rec: Recorded,
    *,
    lambda_concurrency: float,
    api_rate: float = 10_000,
    api_burst: int = 5_000,
    stage_rate: float,
    stage_burst: int,
    warm_write: int | None,
    reserved_executor: int | None = None,
) -> None:
    rec.answer(
        "cloudformation",
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": f"Payments-{STAGE}",
                    "CreationTime": "2026-11-01T00:00:00Z",
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [{"OutputKey": "TargetCheckoutsPerSecond", "OutputValue": str(TARGET)}],
                }
            ]
        },
        {"StackName": f"Payments-{STAGE}"},
    )
    rec.answer(
        "service-quotas",
        "get_service_quota",
        _quota("lambda", "L-B99A9384", lambda_concurrency),
        {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384"},
    )
    rec.answer(
        "service-quotas",
        "get_service_quota",
        _quota("apigateway", "L-8A5B8E43", api_rate),
        {"ServiceCode": "apigateway", "QuotaCode": "L-8A5B8E43"},
    )
    rec.answer("apigateway", "get_account", {"throttleSettings": {"burstLimit": api_burst, "rateLimit": api_rate}})
    rec.answer(
        "service-quotas",
        "list_service_quotas",
        {
            "Quotas": [
                {
                    "ServiceCode": "states",
                    "QuotaCode": "L-EXAMPLE1",
                    "QuotaName": "Maximum open executions",
                    "Value": 1e6,
                },
                {
                    "ServiceCode": "states",
                    "QuotaCode": "L-EXAMPLE2",
                    "QuotaName": "Express StartExecution throttle token refill rate per second",
                    "Value": 6000,
                },
            ]
        },
        {"ServiceCode": "states"},
    )
    # the DynamoDB write quota was never changed: Service Quotas answers AWS's default
    rec.stubs["service-quotas"].add_client_error(
        "get_service_quota",
        service_error_code="NoSuchResourceException",
        http_status_code=400,
        expected_params={"ServiceCode": "dynamodb", "QuotaCode": "L-AB614373"},
    )
    rec.answer(
        "service-quotas",
        "get_aws_default_service_quota",
        _quota("dynamodb", "L-AB614373", 40_000),
        {"ServiceCode": "dynamodb", "QuotaCode": "L-AB614373"},
    )
    rec.answer(
        "service-quotas",
        "get_service_quota",
        _quota("dynamodb", "L-CF0CBE56", 40_000),
        {"ServiceCode": "dynamodb", "QuotaCode": "L-CF0CBE56"},
    )
    rec.answer(
        "apigateway",
        "get_rest_apis",
        {
            "items": [
                {"id": "other1", "name": "payments-dev-checkout-api"},
                {"id": "abc123", "name": f"payments-{STAGE}-checkout-api"},
            ]
        },
    )
    rec.answer(
        "apigateway",
        "get_stage",
        {"methodSettings": {"*/*": {"throttlingRateLimit": stage_rate, "throttlingBurstLimit": stage_burst}}},
        {"restApiId": "abc123", "stageName": STAGE},
    )
    for setting in preflight.CHECKOUT_TABLES:
        name = f"payments-{STAGE}-{setting.removesuffix('_table').replace('_', '-')}"
        warm = capacity.warm_throughput(setting, TARGET)
        table: dict[str, Any] = {"TableName": name}
        if warm_write is not None:
            table["WarmThroughput"] = {
                "ReadUnitsPerSecond": warm.read_units_per_second,
                "WriteUnitsPerSecond": max(warm_write, 4_000)
                if setting == "payments_table"
                else warm.write_units_per_second,
                "Status": "ACTIVE",
            }
        rec.answer("dynamodb", "describe_table", {"Table": table}, {"TableName": name})
    for name in preflight.CHECKOUT_FUNCTIONS:
        reserved = reserved_executor if name == "executor" else None
        rec.answer(
            "lambda",
            "get_function_concurrency",
            {"ReservedConcurrentExecutions": reserved} if reserved is not None else {},
            {"FunctionName": f"payments-{STAGE}-{name}"},
        )


def _run(rec: Recorded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(preflight, "_boto_clients", lambda region: rec.clients.__getitem__)
    with rec:
        code = cli.main(["preflight", "--stage", STAGE, "--output", "json"])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_account_and_stage_that_carry_the_target_exit_0(monkeypatch, capsys):
    rec = Recorded()
    record_account(rec, lambda_concurrency=2_000, stage_rate=1_125, stage_burst=2_250, warm_write=16_900)
    code, out, err = _run(rec, monkeypatch, capsys)
    rec.assert_all_asked()
    document = json.loads(out)
    assert (code, err) == (0, "")
    assert document["ok"] is True and document["target_checkouts_per_second"] == TARGET
    lines = {line["check"]: line for line in document["lines"]}
    lam = lines["Lambda: concurrent executions (account)"]
    assert (lam["needed"], lam["available"], lam["met"]) == (capacity.concurrency_needed(TARGET), 2_000, True)
    assert lines["Step Functions: Express StartExecution rate"]["available"] == 6_000
    assert lines["DynamoDB: table-level write throughput (account)"]["available"] == 40_000  # AWS's default
    assert lines[f"API stage {STAGE}: rate limit"]["needed"] == 1_125
    # one line per quota or setting: 6 account lines, 2 of the API stage, 2 per table, 1 per function
    assert len(document["lines"]) == 6 + 2 + 2 * len(preflight.CHECKOUT_TABLES) + len(preflight.CHECKOUT_FUNCTIONS)
    assert all(line["request"] is None for line in document["lines"])


def test_a_default_account_and_an_old_stage_exit_1_saying_what_to_request(monkeypatch, capsys):
    # Given AWS's default Lambda concurrency (1,000), the stage's old throttle (500/1,000), cold tables
    # and an executor reserved below its share
    rec = Recorded()
    record_account(
        rec, lambda_concurrency=1_000, stage_rate=500, stage_burst=1_000, warm_write=None, reserved_executor=100
    )
    code, out, _ = _run(rec, monkeypatch, capsys)
    rec.assert_all_asked()
    assert code == 1
    document = json.loads(out)
    short = {line["check"]: line for line in document["lines"] if not line["met"]}
    # Then the Lambda line says which quota code to raise and to what (the model's need, asked rounded up)
    asked = preflight._round_request(capacity.concurrency_needed(TARGET))
    assert asked > 1_000
    assert short["Lambda: concurrent executions (account)"]["request"] == (
        f"Service Quotas lambda L-B99A9384: request {asked:,}"
    )
    assert "apiRateLimit 1,125" in short[f"API stage {STAGE}: rate limit"]["request"]
    assert (
        "WriteUnitsPerSecond=16,900" in short[f"DynamoDB payments-{STAGE}-payments: warm write throughput"]["request"]
    )
    assert short[f"Lambda payments-{STAGE}-executor: reserved concurrency"]["available"] == 100
    # and the account lines that are met stay met
    assert "API Gateway: throttle rate (account)" not in short
    assert document["verdict"].startswith(f"stage {STAGE} cannot carry 450 checkouts/s")


def test_the_table_output_has_one_line_per_check_and_the_verdict(monkeypatch, capsys):
    rec = Recorded()
    record_account(rec, lambda_concurrency=1_000, stage_rate=1_125, stage_burst=2_250, warm_write=16_900)
    monkeypatch.setattr(preflight, "_boto_clients", lambda region: rec.clients.__getitem__)
    with rec:
        code = cli.main(["preflight", "--stage", STAGE, "--output", "table"])
    out = capsys.readouterr().out
    assert code == 1
    (lam,) = [line for line in out.splitlines() if "Lambda: concurrent executions" in line]
    asked = preflight._round_request(capacity.concurrency_needed(TARGET))
    assert lam.startswith("SHORT") and "L-B99A9384" in lam and f"{asked:,}" in lam
    assert out.splitlines()[-1] == f"stage {STAGE} cannot carry 450 checkouts/s: 1 line(s) short"


def test_a_refused_call_exits_2_with_one_line(monkeypatch, capsys):
    # Given an operator's role that may not read Service Quotas
    rec = Recorded()
    rec.answer("cloudformation", "describe_stacks", {"Stacks": []}, None)
    rec.stubs["cloudformation"] = Stubber(rec.clients["cloudformation"])  # the target is given: no stack read
    rec.refuse("service-quotas", "get_service_quota", "AccessDeniedException")
    monkeypatch.setattr(preflight, "_boto_clients", lambda region: rec.clients.__getitem__)
    with rec:
        code = cli.main(["preflight", "--stage", STAGE, "--target", "100", "--output", "json"])
    out, err = capsys.readouterr()
    # Then it exits 2 with one line naming the call, and prints no result
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "payments preflight: AWS refused service-quotas get_service_quota (AccessDeniedException); the operator's "
        "role needs read access to Service Quotas, API Gateway, Lambda, DynamoDB and CloudFormation"
    ]
