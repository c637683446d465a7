"""Payment workflow: the executor function and the Step Functions state machine.

The state machine is ``stepfunctions/payment.asl.json``, deployed as written
(the same file runs in the local runtime); its ``${...}`` placeholders are
filled with the ARNs of the task functions.

EXPRESS by default, STANDARD per stage (``workflowType`` in ``cdk.json``).
Exactly-once effects come from the conditional writes of every task, not from
the orchestrator: an Express execution that runs a task twice, runs twice, or
is lost midway changes nothing that a re-run would not repair. What Standard
adds is name-deduplicated starts and a durable history; instead, the payment
function starts a checkout's workflow only after winning the conditional
``PENDING -> PROCESSING`` move (the "started" marker), and the recovery
function (``functions/recovery``) re-drives any checkout still unfinished past
its deadline. An Express execution lives at most 5 minutes: the whole retry
budget of the ASL fits in it (``tests/infrastructure/test_retry_budget.py``).
Express executions log at level ERROR (no execution data): see docs/runbook.md.
The cost and quota trade-off is in docs/capacity.md.

The state machine has a fixed name built from the stage, so that the payment
function (which starts it, and which it invokes for FinalizePayment) can be
given its ARN without a reference, i.e. without a dependency cycle.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions import registry
from infra.constructs.common import asl_state_machine, fixed_name_state_machine_arns, stage_log_group
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge
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
            spec=registry.EXECUTOR,
            tables=tables,
            # With Adyen, the stack gives the executor its ADYEN_* settings and the API key secret
            # (infra/constructs/adyen_psp.py); with the simulator, the PSP table (the registry's access).
            settings={"psp_name": stage.psp_name, "payments_psp": stage.payments_psp},
        )

        name = state_machine_name(stage)
        self.log_group = stage_log_group(self, "Logs", stage=stage, log_group_name=f"/aws/vendedlogs/states/{name}")
        self.state_machine = asl_state_machine(
            self,
            "StateMachine",
            name=name,
            asl_path=ASL_PATH,
            task_functions=[self.executor, wallet_function, ledger_function, payment_function],
            log_group=self.log_group,
            invoked_functions="the four task functions",
            state_machine_type=sfn.StateMachineType[stage.workflow_type],
            # Express keeps no history but its log: failures (ERROR) are logged, the happy path is not
            log_level=sfn.LogLevel.ERROR if stage.workflow_type == "EXPRESS" else sfn.LogLevel.ALL,
        )
        if stage.workflow_type == "EXPRESS":
            acknowledge(
                self.state_machine,
                "AwsSolutions-SF1",
                "The Express payment workflow logs ERROR events (failed tasks, failed or timed-out executions): "
                "ALL would log ~75 events of every successful checkout. What an operator needs for a NEEDS_ATTENTION "
                "order is stored on the order itself (attention_reason: step, error, cause) and in the functions' "
                "logs keyed by payment_order_id; see docs/runbook.md, 'Express workflow logs'.",
            )
