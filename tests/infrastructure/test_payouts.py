"""Payout accounts in the stack (infra/constructs/payouts.py): routes, keys, least privilege."""

from __future__ import annotations

from functions import registry
from tests.infrastructure.helpers import as_list, function_named, policy_statements_of_role, resources
from tests.infrastructure.test_resources import _path, assert_405_methods

ROUTE = "/v1/sellers/{seller_account}/payout-account"


def _keys(dev):
    return {k: v["Properties"] for k, v in resources(dev, "AWS::KMS::Key").items()}


def _payout_keys(dev):
    """(logical id of the IBAN data-key key, logical id of the HMAC key)"""
    keys = _keys(dev)
    (sealing,) = [k for k, p in keys.items() if "data keys of sellers' IBANs" in p["Description"]]
    (hashing,) = [k for k, p in keys.items() if p.get("KeySpec") == "HMAC_256"]
    return sealing, hashing


def test_the_payout_account_routes_are_iam_signed_and_proxied_to_the_payouts_function(dev):
    methods = {
        (m["Properties"]["HttpMethod"], _path(dev, m["Properties"]["ResourceId"])): m["Properties"]
        for m in resources(dev, "AWS::ApiGateway::Method").values()
    }
    payouts_id, _ = function_named(dev, registry.PAYOUTS.name)
    for method in ("PUT", "GET"):
        assert methods[(method, ROUTE)]["AuthorizationType"] == "AWS_IAM"
        assert payouts_id in str(methods[(method, ROUTE)]["Integration"]["Uri"])
    assert_405_methods(dev, [methods[("ANY", ROUTE)]], {ROUTE: "GET, PUT"})


def test_the_keys_are_kept_rotated_and_the_hmac_key_only_makes_macs(dev):
    sealing, hashing = _payout_keys(dev)
    template = dev["Resources"]
    assert template[sealing]["Properties"]["EnableKeyRotation"] is True
    assert template[hashing]["Properties"]["KeyUsage"] == "GENERATE_VERIFY_MAC"
    for key in (sealing, hashing):  # without the keys the stored IBANs are lost: never deleted with the stack
        assert template[key]["DeletionPolicy"] == "Retain" and template[key]["UpdateReplacePolicy"] == "Retain"


def test_the_api_may_seal_and_hash_an_iban_but_never_decrypt_one(dev):
    # Given the payouts function's role
    sealing, hashing = _payout_keys(dev)
    _, props = function_named(dev, registry.PAYOUTS.name)
    statements = policy_statements_of_role(dev, props["Role"]["Fn::GetAtt"][0])
    kms = [s for s in statements if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    # Then it may ask the sealing key for a data key under the payout-account context, the HMAC key for a MAC
    by_action = {a: s for s in kms for a in as_list(s["Action"])}
    assert set(by_action) == {"kms:GenerateDataKey", "kms:GenerateMac"}
    assert by_action["kms:GenerateDataKey"]["Resource"] == {"Fn::GetAtt": [sealing, "Arn"]}
    assert by_action["kms:GenerateDataKey"]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:purpose": "payout-account"}
    }
    assert by_action["kms:GenerateMac"]["Resource"] == {"Fn::GetAtt": [hashing, "Arn"]}
    # And only the payout run's role may decrypt with the sealing key (the bank file's creditor), under the context
    decrypting = {
        str(p["Properties"]["Roles"]): s
        for p in resources(dev, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "kms:Decrypt" in as_list(s["Action"]) and str(sealing) in str(s["Resource"])
    }
    _, run = function_named(dev, registry.PAYOUT_RUN.name)
    assert list(decrypting) == [str([{"Ref": run["Role"]["Fn::GetAtt"][0]}])]
    assert next(iter(decrypting.values()))["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:purpose": "payout-account"}
    }
    # And the function is told the keys by their ARNs
    variables = props["Environment"]["Variables"]
    assert variables["PAYOUT_ACCOUNTS_KEY"] == {"Fn::GetAtt": [sealing, "Arn"]}
    assert variables["PAYOUT_ACCOUNTS_MAC_KEY"] == {"Fn::GetAtt": [hashing, "Arn"]}


def test_the_merchant_may_register_and_read_payout_accounts(dev):
    (policy,) = [
        p["Properties"]
        for p in resources(dev, "AWS::IAM::ManagedPolicy").values()
        if p["Properties"].get("ManagedPolicyName") == "payments-dev-checkout-api-merchant"
    ]
    granted = str(policy["PolicyDocument"])
    assert "/PUT/v1/sellers/*/payout-account" in granted and "/GET/v1/sellers/*/payout-account" in granted


def test_the_payout_routes_are_iam_signed_and_proxied_to_the_payouts_function(dev):
    methods = {
        (m["Properties"]["HttpMethod"], _path(dev, m["Properties"]["ResourceId"])): m["Properties"]
        for m in resources(dev, "AWS::ApiGateway::Method").values()
    }
    payouts_id, _ = function_named(dev, registry.PAYOUTS.name)
    for method, route in (("POST", "/v1/payouts"), ("GET", "/v1/payouts/{payout_id}")):
        assert methods[(method, route)]["AuthorizationType"] == "AWS_IAM"
        assert payouts_id in str(methods[(method, route)]["Integration"]["Uri"])
    assert_405_methods(
        dev,
        [methods[("ANY", "/v1/payouts")], methods[("ANY", "/v1/payouts/{payout_id}")]],
        {"/v1/payouts": "POST", "/v1/payouts/{payout_id}": "GET"},
    )


def test_the_payout_run_is_nightly_and_alarms_on_returns_and_failures(dev):
    run_id, _ = function_named(dev, registry.PAYOUT_RUN.name)
    rules = [
        r["Properties"]
        for r in resources(dev, "AWS::Events::Rule").values()
        if run_id in str(r["Properties"].get("Targets"))
    ]
    assert [r["ScheduleExpression"] for r in rules] == ["cron(0 20 * * ? *)"]
    alarmed = {
        (a["Properties"].get("MetricName"), str(a["Properties"].get("Dimensions")))
        for a in resources(dev, "AWS::CloudWatch::Alarm").values()
    }
    # the run's errors, and the payouts the run itself fails (the bank's answers are the bank rail's alarms)
    assert ("PayoutsFailed", str([{"Name": "service", "Value": registry.PAYOUT_RUN.name}])) in alarmed
    assert any(metric == "Errors" and run_id in dims for metric, dims in alarmed)
