"""Each function's environment is exactly the settings its registry entry requires, named by the models."""

from __future__ import annotations

import pytest

from functions import registry
from payments.kernel.config import STAGE_ENV, env_name, missing_settings
from payments.psp.adyen import AdyenSettings
from tests.infrastructure.conftest import LIVE_PROD
from tests.infrastructure.helpers import function_named, stage_values

#: set on every function for Powertools and the Lambda runtime, not settings of ours
#: Powertools' own variables (the Tracer never records responses: POWERTOOLS_TRACER_CAPTURE_RESPONSE=false)
POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    "LOG_LEVEL",
}
ADYEN_VARIABLES = {AdyenSettings.env_name(field) for field in AdyenSettings.model_fields}
STACKS = (("dev", "dev", "simulated"), ("prod", "prod", "adyen"))
#: the simulated bank is deployed on the stages without a real bank: dev (prod is a production stage)
DEPLOYED = [
    (fixture, stage, psp, f)
    for fixture, stage, psp in STACKS
    for f in registry.deployed_on(psp, simulated_bank=stage == "dev")
]


def _variables(template: dict, name: str, stage: str) -> dict:
    _, function = function_named(template, name, stage=stage)
    return function["Environment"]["Variables"]


@pytest.mark.parametrize(("fixture", "stage", "psp", "spec"), DEPLOYED, ids=[f"{d[1]}-{d[3].name}" for d in DEPLOYED])
def test_a_function_environment_is_exactly_its_required_settings(request, fixture, stage, psp, spec):
    # Given the synthesised environment of the function on a stage of cdk.json
    variables = _variables(request.getfixturevalue(fixture), spec.name, stage)
    required = {env_name(field) for field in spec.required_settings(psp)}
    # When the Adyen adapter's own variables (AdyenSettings, on the functions that charge or refund through it) are set apart
    adapter = {v for v in variables if v in ADYEN_VARIABLES and v not in required}
    # Then the rest is exactly the variables of the settings the registry requires, the stage marker and Powertools'
    assert set(variables) - adapter == required | {STAGE_ENV} | POWERTOOLS
    assert variables[STAGE_ENV] == stage
    # and only the functions that call Adyen on an Adyen stage get the adapter's variables
    calls_adyen = psp == "adyen" and "secretsmanager:GetSecretValue" in dict(spec.psp_actions).get("adyen", ())
    assert bool(adapter) == calls_adyen
    # and the cold-start check of the deployed function finds nothing missing
    assert missing_settings(spec, {k: str(v) for k, v in variables.items()}) == []


def test_the_notification_functions_know_the_merchant_account_of_the_stage(prod, live_prod):
    # Given the webhook and the consumer, which refuse a notification naming another merchant account
    stages = (
        (prod, "SET_ADYEN_MERCHANT_ACCOUNT"),
        (live_prod.templates["Payments-prod"], LIVE_PROD["adyenMerchantAccount"]),
    )
    for template, account in stages:
        for spec in (registry.NOTIFICATIONS, registry.NOTIFICATIONS_CONSUMER):
            # Then their merchant account is the stage's Adyen merchant account (not a local default)
            assert _variables(template, spec.name, "prod")[env_name("payments_psp_merchant_account")] == account


def test_a_grant_or_variable_the_registry_does_not_declare_is_refused_at_synthesis():
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from infra.constructs.function import PaymentsFunction
    from infra.constructs.tables import PaymentTables
    from infra.stage import Stage

    # Given the wallet function built from its registry entry in a bare stack of the dev stage
    context = {"stages": {"dev": stage_values()}}
    app = cdk.App(context=context)
    stage = Stage.from_context(app.node, "dev")
    stack = cdk.Stack(app, "Bare")
    tables = PaymentTables(stack, "Tables", stage=stage)
    wallet = PaymentsFunction(
        stack,
        "Wallet",
        stage=stage,
        code=lambda_.Code.from_inline("x"),
        spec=registry.WALLET,
        tables=tables,
        settings={"wallet_shards": "1"},
    )
    # When it is given an action its entry does not declare, or a variable of a setting it does not use
    # Then synthesis stops, naming the function and the registry
    with pytest.raises(ValueError, match=r"wallet: \['states:StartExecution'\] not declared"):
        wallet.allow(["states:StartExecution"], ["arn:aws:states:us-east-1:123456789012:stateMachine:x"])
    with pytest.raises(ValueError, match="'settlement_bucket' is not a setting of its registry entry"):
        wallet.set_setting("settlement_bucket", "bucket")
