"""Payouts: the payouts function, its API routes, the nightly payout run, and the keys that protect sellers'
bank accounts.

* ``payouts``: ``PUT`` and ``GET /v1/sellers/{seller_account}/payout-account``, ``POST /v1/payouts`` and
  ``GET /v1/payouts/{payout_id}`` (IAM-authenticated like the rest of the API; a merchant's backend registers
  its sellers' accounts and pays them out).
* ``payout_run``: every night (an EventBridge rule, :data:`RUN_SCHEDULE`) a payout per seller above the stage's
  minimum, then one pain.001 file of every PENDING EUR payout, put in the bank bucket under
  ``outgoing/pain001/`` (its only S3 grant). The only function that may decrypt an IBAN (the file's creditor).
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

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions import registry
from infra.constructs.checkout_api import answer_other_methods_405
from infra.constructs.common import alarm_above_zero
from infra.constructs.function import PaymentsFunction
from infra.constructs.observability import custom_metric
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge_wildcard_resource
from infra.stage import Stage
from payments.kernel.config import Settings
from payments.payouts.bank.pain001 import OUTGOING_PREFIX
from payments.payouts.vault import PURPOSE

#: the encryption context every use of the keys must carry (``payments.payouts.vault.context_of``)
CONTEXT_CONDITION = {"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE}}
ROUTE = "/v1/sellers/*/payout-account"
PAYOUT_ROUTES = ("/v1/payouts", "/v1/payouts/*")
#: the nightly payout run: 20:00 UTC, after the day's settlement files are reconciled and in time for the bank's
#: last SEPA cut-off of the day (a stage's bank may name another hour: change it here)
RUN_SCHEDULE = events.Schedule.cron(minute="0", hour="20")
PERIOD = cdk.Duration.minutes(5)


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
        bank_bucket: s3.IBucket | None = None,
    ) -> None:
        """``bank_bucket``: the stage's bank bucket (the bank rail's construct); without it, the bucket named
        ``<stage>-bank`` is used by name."""
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
            settings={
                "payout_accounts_key": self.key.key_arn,
                "payout_accounts_mac_key": self.mac_key.key_arn,
                "wallet_shards": str(stage.wallet_shards),
                "ledger_total_shards": str(stage.ledger_total_shards),
            },
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
        payouts = v1.add_resource("payouts")
        payouts.add_method("POST", integration)
        answer_other_methods_405(payouts, "POST")
        payout = payouts.add_resource("{payout_id}")
        payout.add_method("GET", integration)
        answer_other_methods_405(payout, "GET")
        self.api = api

        bucket = bank_bucket or s3.Bucket.from_bucket_name(self, "BankBucket", stage.resource_name("bank"))
        defaults = Settings()
        name, iban, bic = stage.payout_debtor or (
            defaults.payout_debtor_name,
            defaults.payout_debtor_iban,
            defaults.payout_debtor_bic,
        )
        self.run = PaymentsFunction(
            self,
            "PayoutRun",
            stage=stage,
            code=code,
            spec=registry.PAYOUT_RUN,
            tables=tables,
            settings={
                "bank_bucket": bucket.bucket_name,
                "wallet_shards": str(stage.wallet_shards),
                "ledger_total_shards": str(stage.ledger_total_shards),
                "payout_minimum_minor": json.dumps(stage.payout_minimum_minor or defaults.payout_minimum_minor),
                "payout_debtor_name": name,
                "payout_debtor_iban": iban,
                "payout_debtor_bic": bic,
            },
        )
        outgoing = bucket.arn_for_objects(f"{OUTGOING_PREFIX}*")
        self.run.allow(["s3:PutObject"], [outgoing])
        acknowledge_wildcard_resource(
            self.run.role,
            outgoing,
            "Each file is named after its MsgId, unknown in advance; the wildcard covers only the outgoing pain.001 "
            "files, which the run writes (a conditional put: never one that is there).",
        )
        self.allow_reading_accounts(self.run)
        self.schedule = events.Rule(
            self,
            "RunSchedule",
            description="Runs the nightly payout: a payout per seller above the minimum, one pain.001 to the bank",
            schedule=RUN_SCHEDULE,
            # a failed run is retried by the next night's, which completes what it left (payments.payouts.run)
            targets=[targets.LambdaFunction(self.run.function, retry_attempts=0)],
        )
        self.functions = [fn, self.run]

    def add_alarms(self, topic: sns.ITopic, alarms: list[cloudwatch.Alarm], dashboard: cloudwatch.Dashboard) -> None:
        """Alarms on the stage's topic: a nightly run that failed (it stopped: the next one completes it, or an
        operator decides), and a payout the run itself failed (its account became unusable before its file).
        What the bank answers (failed and returned payouts) is alarmed by the bank rail's construct. And the
        payouts' dashboard row: reserved (by the API and by the run), sent in files, paid by the bank."""
        metrics: dict[str, tuple[cloudwatch.IMetric, str]] = {
            "PayoutRunErrors": (
                self.run.function.metric_errors(period=PERIOD),
                "The nightly payout run failed: see its logs (a run that needs an operator says why)",
            ),
            "PayoutsFailedByTheRun": (
                custom_metric("PayoutsFailed", registry.PAYOUT_RUN.name),
                "The payout run failed a payout whose payout account became unusable: its money is back in available",
            ),
        }
        for alarm_id, (metric, description) in metrics.items():
            alarms.append(alarm_above_zero(self, alarm_id, metric, description, topic))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Payouts: reserved (API, nightly run), files sent to the bank, paid",
                left=[
                    custom_metric("PayoutsReserved", registry.PAYOUTS.name).with_(label="reserved by the API"),
                    custom_metric("PayoutsReserved", registry.PAYOUT_RUN.name).with_(label="reserved by the run"),
                    custom_metric("PayoutsPaid", registry.BANK_RECONCILE.name).with_(label="paid (bank statement)"),
                ],
                right=[
                    custom_metric("PayoutFilesWritten", registry.PAYOUT_RUN.name).with_(label="pain.001 files"),
                    custom_metric("PayoutRunsCompleted", registry.PAYOUT_RUN.name).with_(label="runs completed"),
                    self.run.function.metric_errors(period=PERIOD, label="run errors"),
                ],
                width=24,
            )
        )

    def allow_reading_accounts(self, function: PaymentsFunction) -> None:
        """Let ``function`` decrypt IBANs (the bank file): ``kms:Decrypt`` on the key, under the payout-account
        context only. Its table access is its registry entry's."""
        function.allow(["kms:Decrypt"], [self.key.key_arn], CONTEXT_CONDITION)

    def grant_merchant(self, policy: iam.ManagedPolicy, stage: Stage) -> None:
        """Let the merchant's backend (the checkout API's merchant policy) register and read payout accounts, and
        create and read payouts."""
        resources = [self.api.arn_for_execute_api(method, ROUTE, stage.name) for method in ("PUT", "GET")]
        resources += [
            self.api.arn_for_execute_api("POST", PAYOUT_ROUTES[0], stage.name),
            self.api.arn_for_execute_api("GET", PAYOUT_ROUTES[1], stage.name),
        ]
        policy.add_statements(iam.PolicyStatement(actions=["execute-api:Invoke"], resources=resources))
        for resource in resources[:2] + resources[3:]:
            acknowledge_wildcard_resource(
                policy, resource, "The route's path parameter (the seller, the payout) is unknown in advance."
            )
