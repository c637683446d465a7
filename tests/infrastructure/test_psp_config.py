"""The PSP of a stage (cdk.json ``psp``): the simulator or Adyen, and what each one deploys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.app import build_app
from tests.infrastructure.conftest import LIVE_PROD, REPO_ROOT
from tests.infrastructure.helpers import function_named, resources


def _context(**overrides: Any) -> dict[str, Any]:
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context.update(overrides)
    return context


def _secrets(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(template, "AWS::SecretsManager::Secret")


def _secret_id(template: dict[str, Any], short: str, stage: str = "prod") -> str:
    (logical_id,) = [k for k, v in _secrets(template).items() if v["Properties"]["Name"] == f"payments-{stage}-{short}"]
    return logical_id


def test_a_production_stage_cannot_be_synthesised_with_the_simulated_psp(tmp_path):
    # Given prod (production: true) with the simulated PSP
    context = _context(stage="prod", psp="simulated")
    # When the app is built
    with pytest.raises(ValueError) as raised:
        build_app(context, outdir=str(tmp_path))
    # Then synthesis stops with a message saying what to configure
    message = str(raised.value)
    assert "production stage" in message and "simulated PSP" in message
    for key in ("psp", "adyenMerchantAccount", "adyenReturnUrl", "adyenEnvironment", "adyenLiveUrlPrefix", "docs/deploy.md"):
        assert key in message


def test_production_is_read_from_the_command_line_as_a_boolean(tmp_path):
    # Given dev declared a production stage from the command line (-c production=true: a string)
    context = _context(stage="dev", production="true")
    # Then the simulated PSP of dev is refused as for prod
    with pytest.raises(ValueError, match="cannot deploy the simulated PSP"):
        build_app(context, outdir=str(tmp_path))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"adyenMerchantAccount": ""}, "adyenMerchantAccount"),
        ({"adyenReturnUrl": ""}, "adyenReturnUrl"),
        ({"adyenReturnUrl": "http://shop.example.com/return"}, "https://"),
        ({"adyenEnvironment": "live"}, "adyenLiveUrlPrefix"),
        ({"adyenEnvironment": "production"}, "adyenEnvironment"),
        ({"psp": "stripe"}, "psp must be one of"),
    ],
)
def test_an_incomplete_adyen_configuration_names_the_missing_key(tmp_path, overrides, named):
    # Given dev switched to Adyen with one setting missing or wrong
    context = _context(stage="dev", psp="adyen", adyenMerchantAccount="AcmeECOM", adyenReturnUrl="https://shop.example.com/r")
    context.update(overrides)
    # When the app is built, then it fails naming what to set
    with pytest.raises(ValueError, match=named):
        build_app(context, outdir=str(tmp_path))


def test_the_simulated_psp_deploys_only_where_it_is_the_psp(dev, prod):
    # Given dev (simulated) and prod (Adyen) of cdk.json
    # Then dev has the simulator's nightly job and its table, and no Adyen secret
    function_named(dev, "psp")
    assert "payments-dev-psp" in {t["Properties"]["TableName"] for t in resources(dev, "AWS::DynamoDB::Table").values()}
    assert _secrets(dev) == {}
    # and prod has neither the job, nor its schedule, nor its table
    with pytest.raises(AssertionError):
        function_named(prod, "psp", stage="prod")
    assert "payments-prod-psp" not in {t["Properties"]["TableName"] for t in resources(prod, "AWS::DynamoDB::Table").values()}
    targets = {t["Arn"]["Fn::GetAtt"][0] for r in resources(prod, "AWS::Events::Rule").values() for t in r["Properties"]["Targets"]}
    assert targets == {function_named(prod, "recovery", stage="prod")[0]}


def test_prod_creates_the_two_adyen_secrets_empty(prod):
    # Given prod's secrets
    secrets = _secrets(prod)
    # Then there are the API key and the HMAC key, created without a value (an operator puts Adyen's)
    assert {s["Properties"]["Name"] for s in secrets.values()} == {"payments-prod-adyen-api-key", "payments-prod-adyen-hmac-key"}
    for secret in secrets.values():
        assert "GenerateSecretString" not in secret["Properties"]
        assert "SecretString" not in secret["Properties"]
        assert secret["DeletionPolicy"] == "Retain"  # prod retains all data


def test_prod_executor_charges_adyen_with_the_key_from_its_secret(dev, prod):
    # Given prod's executor
    _, executor = function_named(prod, "executor", stage="prod")
    variables = executor["Environment"]["Variables"]
    # Then it charges through Adyen, reading the API key from the secret (cached 300 s per container)
    assert variables["PAYMENTS_PSP"] == "adyen"
    assert variables["ADYEN_API_KEY_SECRET_ARN"] == {"Ref": _secret_id(prod, "adyen-api-key")}
    assert variables["ADYEN_SECRET_MAX_AGE"] == "300"
    assert variables["ADYEN_MERCHANT_ACCOUNT"] == "SET_ADYEN_MERCHANT_ACCOUNT"
    assert variables["ADYEN_ENVIRONMENT"] == "test"
    assert variables["ADYEN_RETURN_URL"].startswith("https://")
    assert "ADYEN_API_KEY" not in variables and "ADYEN_LIVE_URL_PREFIX" not in variables
    # and without the simulator's table
    assert "PSP_TABLE" not in variables
    # and the executor, the ledger and the reconciliation all name the PSP "adyen"
    for name in ("executor", "ledger", "reconcile"):
        assert function_named(prod, name, stage="prod")[1]["Environment"]["Variables"]["PSP_NAME"] == "adyen"
    # (dev's name them "simulated-psp", as its settlement files under incoming/simulated-psp/)
    for name in ("executor", "ledger", "reconcile"):
        assert function_named(dev, name)[1]["Environment"]["Variables"]["PSP_NAME"] == "simulated-psp"


def test_live_prod_uses_the_live_prefix_and_the_imported_api_key(live_prod):
    # Given prod configured for live Adyen with its API key secret imported by name
    template = live_prod.templates["Payments-prod"]
    _, executor = function_named(template, "executor", stage="prod")
    variables = executor["Environment"]["Variables"]
    # Then the executor charges live, through the company's prefix, and names the imported secret
    assert variables["ADYEN_ENVIRONMENT"] == "live"
    assert variables["ADYEN_LIVE_URL_PREFIX"] == LIVE_PROD["adyenLiveUrlPrefix"]
    assert variables["ADYEN_MERCHANT_ACCOUNT"] == LIVE_PROD["adyenMerchantAccount"]
    assert variables["ADYEN_API_KEY_SECRET_ARN"] == LIVE_PROD["adyenApiKeySecret"]
    # and only the HMAC key secret is created by the stack
    assert {s["Properties"]["Name"] for s in _secrets(template).values()} == {"payments-prod-adyen-hmac-key"}
