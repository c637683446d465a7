"""Payment workflow: the executor function and the Step Functions state machine.

The state machine is ``stepfunctions/payment.asl.json``, deployed as written
(the same file runs in the local runtime); its ``${...}`` placeholders are
filled with the ARNs of the task functions.

Why STANDARD and not EXPRESS: a Standard workflow runs each state transition
exactly once and ``StartExecution`` is idempotent on the execution name. The
payment function names the execution after the ``checkout_id``, so a duplicate
start (a client retry, a Lambda retry) is harmless and one checkout never runs
two workflows. Express workflows are at-least-once and have no name dedup. The
cost trade-off is in docs/deploy.md.

The state machine has a fixed name built from the stage, so that the payment
function (which starts it, and which it invokes for FinalizePayment) can be
given its ARN without a reference, i.e. without a dependency cycle.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.common import asl_state_machine, fixed_name_state_machine_arns, stage_log_group
from infra.constructs.function import PaymentsFunction
from infra.constructs.simulated_psp import PSP_NAME
from infra.constructs.tables import PaymentTables
from infra.stage import Stage

ASL_PATH = Path(__file__).resolve().parents[2] / "stepfunctions" / "payment.asl.json"


def state_machine_name(stage: Stage) -> str:
    return stage.resource_name("payment")


def state_machine_arns(scope: Construct, stage: Stage) -> tuple[str, str]:
    """(state machine ARN, ARN pattern of its executions), built from the fixed name."""
    name = state_machine_name(stage)
    return fixed_name_state_machine_arns(scope, name, executions=f"{name}:*")


class PaymentWorkflow(Construct):
    """Map over the payment orders: execute (PSP charge) -> wallet -> ledger; then finalize."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        code: lambda_.Code,
        tables: PaymentTables,
        payment_function: PaymentsFunction,
        wallet_function: PaymentsFunction,
        ledger_function: PaymentsFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.executor = PaymentsFunction(
            self,
            "Executor",
            stage=stage,
            code=code,
            name="executor",
            description="Executes one payment order: charges the PSP with the order id as idempotency key",
            timeout=cdk.Duration.seconds(20),  # below the task's TimeoutSeconds (30) in the ASL
            memory_size=256,
            environment={"PSP_NAME": PSP_NAME},
        )
        self.executor.use_table("payments_table", tables["payments_table"], ["GetItem", "UpdateItem"])
        # The simulated PSP runs in-process and keeps its own record of charges.
        self.executor.use_table("psp_table", tables["psp_table"], ["GetItem", "PutItem", "UpdateItem", "Query"])

        name = state_machine_name(stage)
        self.log_group = stage_log_group(self, "Logs", stage=stage, log_group_name=f"/aws/vendedlogs/states/{name}")
        self.state_machine = asl_state_machine(
            self,
            "StateMachine",
            name=name,
            asl_path=ASL_PATH,
            task_functions={
                "ExecutorFunctionArn": self.executor.function,
                "WalletFunctionArn": wallet_function.function,
                "LedgerFunctionArn": ledger_function.function,
                "PaymentFunctionArn": payment_function.function,
            },
            log_group=self.log_group,
            invoked_functions="the four task functions",
        )
