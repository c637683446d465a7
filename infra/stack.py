"""The payments stack: a thin composition of one construct per capability."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from functions import registry
from infra.bundling import lambda_code
from infra.constructs.adyen_psp import AdyenPsp
from infra.constructs.bank import Bank
from infra.constructs.checkout_api import CheckoutApi
from infra.constructs.events import Events
from infra.constructs.ledger import Ledger
from infra.constructs.ledger_lake import LedgerLake
from infra.constructs.observability import Observability
from infra.constructs.operator import OperatorApi
from infra.constructs.payment_workflow import PaymentWorkflow, state_machine_arns
from infra.constructs.payouts import Payouts
from infra.constructs.reconcile_athena import AthenaReconciliation
from infra.constructs.reconciliation import Reconciliation
from infra.constructs.recovery import Recovery
from infra.constructs.refunds import Refunds
from infra.constructs.refunds import state_machine_arns as refund_state_machine_arns
from infra.constructs.simulated_psp import SimulatedPsp
from infra.constructs.tables import PaymentTables
from infra.constructs.wallet import Wallet
from infra.stage import Stage


class PaymentsStack(cdk.Stack):
    """Checkout API -> payment workflow (executor, wallet, ledger) -> reconciliation, with observability."""

    def __init__(self, scope: Construct, stage: Stage) -> None:
        super().__init__(
            scope,
            stage.stack_name,
            env=stage.env,
            description=f"Serverless payment system ({stage.name})",
            tags={"project": "serverless-payments", "stage": stage.name},
        )
        code = lambda_code(self)
        tables = PaymentTables(self, "Tables", stage=stage)
        wallet = Wallet(self, "Wallet", stage=stage, code=code, tables=tables)
        ledger = Ledger(self, "Ledger", stage=stage, code=code, tables=tables)
        state_machine_arn, executions_arn = state_machine_arns(self, stage)
        checkout = CheckoutApi(
            self,
            "CheckoutApi",
            stage=stage,
            code=code,
            tables=tables,
            state_machine_arn=state_machine_arn,
            state_machine_executions_arn=executions_arn,
        )
        workflow = PaymentWorkflow(
            self,
            "PaymentWorkflow",
            stage=stage,
            code=code,
            tables=tables,
            payment_function=checkout.function,
            wallet_function=wallet.function,
            ledger_function=ledger.function,
        )
        refund_machine_arn, refund_executions_arn = refund_state_machine_arns(self, stage)
        recovery = Recovery(
            self,
            "Recovery",
            stage=stage,
            code=code,
            tables=tables,
            state_machine_arn=state_machine_arn,
            refund_state_machine_arn=refund_machine_arn,
            refund_executions_arn=refund_executions_arn,
        )
        reconciliation = Reconciliation(self, "Reconciliation", stage=stage, code=code, tables=tables)
        ledger_lake = LedgerLake(
            self,
            "LedgerLake",
            stage=stage,
            ledger_table=tables["ledger_table"],
            access_log_bucket=reconciliation.access_log_bucket,
        )
        ledger_lake.grant_read(reconciliation.function)
        # a day too large for one function: the same trigger, routed by size to the Athena workflow
        self.athena_reconciliation = AthenaReconciliation(
            self, "AthenaReconciliation", stage=stage, reconciliation=reconciliation, lake_=ledger_lake
        )
        psp_functions = []
        #: the Adyen construct (its secrets) when the stage charges through Adyen, else None
        self.adyen: AdyenPsp | None = None
        if stage.psp == "adyen":
            self.adyen = AdyenPsp(self, "Adyen", stage=stage)
            self.adyen.use_api_key(workflow.executor)
            if stage.adyen is not None and stage.adyen.placeholder:
                cdk.Annotations.of(self).add_warning_v2(
                    "payments:adyen-merchant-account",
                    f"stage {stage.name}: adyenMerchantAccount is the placeholder {stage.adyen.merchant_account!r}; "
                    "set it before deploying (docs/deploy.md, 'Connecting Adyen')",
                )
            if stage.production and stage.adyen is not None and stage.adyen.environment == "test":
                cdk.Annotations.of(self).add_warning_v2(
                    "payments:adyen-test-environment",
                    f"production stage {stage.name} charges Adyen's TEST environment: no real money moves until "
                    "adyenEnvironment is 'live' with adyenLiveUrlPrefix (docs/deploy.md, 'Going live')",
                )
        else:
            simulated = SimulatedPsp(
                self, "SimulatedPsp", stage=stage, code=code, tables=tables, settlement_bucket=reconciliation.bucket
            )
            psp_functions.append(simulated.function)
        refunds = Refunds(self, "Refunds", stage=stage, code=code, tables=tables, api=checkout.api, adyen=self.adyen)
        operator = OperatorApi(
            self,
            "Operator",
            stage=stage,
            code=code,
            tables=tables,
            api=checkout.api,
            settlement_bucket=reconciliation.bucket,
        )
        bank = Bank(
            self,
            "Bank",
            stage=stage,
            code=code,
            tables=tables,
            access_log_bucket=reconciliation.access_log_bucket,
            settlement_bucket=reconciliation.bucket,
        )
        payouts = Payouts(
            self, "Payouts", stage=stage, code=code, tables=tables, api=checkout.api, bank_bucket=bank.bucket
        )
        # every state change, once, on the stage's bus: read from the tables' streams (docs/events.md)
        events = Events(self, "Events", stage=stage, code=code, tables=tables)
        functions = [
            checkout.function,
            workflow.executor,
            wallet.function,
            ledger.function,
            recovery.function,
            reconciliation.function,
            *psp_functions,
            *refunds.functions,
            operator.function,
            *payouts.functions,
            *bank.functions,
            events.function,
        ]
        # every function of the registry that the stage's PSP needs is deployed, once
        deployed = sorted(f.spec.name for f in functions)
        expected = registry.deployed_on(stage.psp, simulated_bank=stage.bank == "simulated")  # type: ignore[arg-type]
        if deployed != sorted(f.name for f in expected):
            raise ValueError(f"stage {stage.name}: the stack builds {deployed}, not the registry's functions")
        observability = Observability(
            self,
            "Observability",
            stage=stage,
            api=checkout.api,
            state_machine=workflow.state_machine,
            reconcile_state_machine=reconciliation.state_machine,
            functions=functions,
            tables=tables,
            dead_letters=reconciliation.dead_letters,
        )
        refunds.add_alarms(observability.topic, observability.alarms, observability.dashboard)
        reconciliation.add_alarms(observability.topic, observability.alarms, observability.dashboard)
        bank.add_alarms(observability.topic, observability.alarms, observability.dashboard)
        payouts.add_alarms(observability.topic, observability.alarms, observability.dashboard)
        ledger_lake.add_alarms(observability.topic, observability.alarms)
        events.add_alarms(observability.topic, observability.alarms)
        refunds.grant_merchant(checkout.merchant_policy, stage)
        payouts.grant_merchant(checkout.merchant_policy, stage)

        cdk.CfnOutput(self, "ApiUrl", value=checkout.api.url, description="Base URL; routes are under v1/")
        cdk.CfnOutput(self, "SettlementBucketName", value=reconciliation.bucket.bucket_name)
        cdk.CfnOutput(self, "BankBucketName", value=bank.bucket.bucket_name)
        cdk.CfnOutput(
            self,
            "LedgerLakeBucketName",
            value=ledger_lake.bucket.bucket_name,
            description="The ledger's copy (ledger/psp=/day=/currency=/*.parquet), as the ledger is written",
        )
        cdk.CfnOutput(
            self,
            "LedgerLakeWorkgroup",
            value=ledger_lake.workgroup.ref,
            description="The Athena workgroup of the ledger's copy (Glue database and table: see docs/ledger-lake.md)",
        )
        cdk.CfnOutput(
            self,
            "EventBusName",
            value=events.bus.event_bus_name,
            description="The stage's event bus: every state change as a CloudEvents envelope (docs/events.md)",
        )
        cdk.CfnOutput(self, "EventBusArn", value=events.bus.event_bus_arn)
        cdk.CfnOutput(
            self,
            "EventArchiveArn",
            value=events.archive.archive_arn,
            description="The bus's archive: replay a time range to the bus after an incident (docs/runbook.md)",
        )
        cdk.CfnOutput(
            self,
            "MarketplaceEventsQueueUrl",
            value=events.marketplace_queue.queue_url,
            description="The example rule's queue: payments.payment.* and payments.refund.* events",
        )
        cdk.CfnOutput(self, "StateMachineArn", value=workflow.state_machine.state_machine_arn)
        cdk.CfnOutput(
            self,
            "ReconcileStateMachineArn",
            value=reconciliation.state_machine.state_machine_arn,
            description="Reconciles settlement files above 512 MiB (Distributed Map); started by the reconcile function",
        )
        cdk.CfnOutput(
            self,
            "MerchantPolicyArn",
            value=checkout.merchant_policy.managed_policy_arn,
            description="Attach to a merchant's role to let it call POST/GET /v1/payments",
        )
        cdk.CfnOutput(
            self,
            "OperatorPolicyArn",
            value=operator.policy.managed_policy_arn,
            description="Attach to an operator's role to let it list and resolve /v1/operator/attention and mismatches",
        )
        cdk.CfnOutput(
            self,
            "AlarmTopicArn",
            value=observability.topic.topic_arn,
            description="Every alarm of the stage publishes here: subscribe email, PagerDuty or AWS Chatbot to it",
        )
        if stage.target_checkouts_per_second is not None:
            cdk.CfnOutput(
                self,
                "TargetCheckoutsPerSecond",
                value=f"{stage.target_checkouts_per_second:g}",
                description="The checkouts/s the stage is sized for (warm throughput, API throttle): payments preflight reads it",
            )
        cdk.CfnOutput(
            self,
            "DashboardName",
            value=observability.dashboard.dashboard_name,
            description="The stage's CloudWatch dashboard: the API, the workflows, parked payments, mismatches",
        )
