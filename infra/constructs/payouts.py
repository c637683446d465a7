"""Payouts: the payouts function, its API routes, and the keys that protect sellers' bank accounts.

* ``payouts``: ``PUT`` and ``GET /v1/sellers/{seller_account}/payout-account`` (IAM-authenticated like
  the rest of the API; a merchant's backend registers its sellers' accounts).
* Two customer-managed KMS keys, kept when the stack is deleted (without them the stored IBANs are
  lost): a symmetric key whose data keys encrypt each IBAN (envelope encryption, yearly rotation),
  and an HMAC key (HMAC_256) for the IBANs' keyed hash. The API may ask the first for a data key and
  the second for a MAC, both only under the payout-account encryption context; it may never decrypt.
  :meth:`Payouts.allow_reading_accounts` is the one way to let a function decrypt (the bank file).

Where the accounts live: their own table (``payout_accounts``, in ``payments/kernel/tables.py``), not
items of an existing one: bank details are read by the functions that pay sellers and by nothing
else, so a table of their own lets IAM grant exactly that (the payments and wallets tables are read
by half the functions), and lets a stage restore or audit them on their own.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions import registry
from infra.constructs.checkout_api import answer_other_methods_405
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge_wildcard_resource
from infra.stage import Stage
from payments.payouts.vault import PURPOSE

#: the encryption context every use of the keys must carry (``payments.payouts.vault.context_of``)
CONTEXT_CONDITION = {"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE}}
ROUTE = "/v1/sellers/*/payout-account"


class Payouts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "PayoutAccountsKey",
            alias=stage.resource_name("payout-accounts"),
            description=f"{stage.name}: encrypts the data keys of sellers' IBANs (payout accounts)",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.mac_key = kms.Key(
            self,
            "PayoutAccountsMacKey",
            alias=stage.resource_name("payout-accounts-mac"),
            description=f"{stage.name}: keyed hash (HMAC-SHA-256) of sellers' IBANs, to compare them undecrypted",
            key_spec=kms.KeySpec.HMAC_256,
            key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.function = PaymentsFunction(
            self,
            "Payouts",
            stage=stage,
            code=code,
            spec=registry.PAYOUTS,
            tables=tables,
            settings={"payout_accounts_key": self.key.key_arn, "payout_accounts_mac_key": self.mac_key.key_arn},
        )
        fn = self.function
        fn.allow(["kms:GenerateDataKey"], [self.key.key_arn], CONTEXT_CONDITION)
        fn.allow(["kms:GenerateMac"], [self.mac_key.key_arn])  # a MAC request carries no encryption context

        v1 = api.root.get_resource("v1") or api.root.add_resource("v1")
        sellers = v1.get_resource("sellers") or v1.add_resource("sellers")
        seller = sellers.get_resource("{seller_account}") or sellers.add_resource("{seller_account}")
        resource = seller.add_resource("payout-account")
        integration = apigw.LambdaIntegration(fn.function, proxy=True, allow_test_invoke=False)
        resource.add_method("PUT", integration)
        resource.add_method("GET", integration)
        answer_other_methods_405(resource, "GET, PUT")
        self.api = api
        self.functions = [fn]

    def allow_reading_accounts(self, function: PaymentsFunction) -> None:
        """Let ``function`` decrypt IBANs (the bank file): ``kms:Decrypt`` on the key, under the payout-account
        context only. Its table access is its registry entry's."""
        function.allow(["kms:Decrypt"], [self.key.key_arn], CONTEXT_CONDITION)

    def grant_merchant(self, policy: iam.ManagedPolicy, stage: Stage) -> None:
        """Let the merchant's backend (the checkout API's merchant policy) register and read payout accounts."""
        resources = [self.api.arn_for_execute_api(method, ROUTE, stage.name) for method in ("PUT", "GET")]
        policy.add_statements(iam.PolicyStatement(actions=["execute-api:Invoke"], resources=resources))
        for resource in resources:
            acknowledge_wildcard_resource(
                policy, resource, "The route's path parameter is the seller, unknown in advance."
            )
