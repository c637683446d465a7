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
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.function import PaymentsFunction
from infra.constructs.simulated_psp import PSP_NAME
from infra.constructs.tables import PaymentTables
from infra.nag import acknowledge
from infra.stage import Stage

ASL_PATH = Path(__file__).resolve().parents[2] / "stepfunctions" / "payment.asl.json"


def state_machine_name(stage: Stage) -> str:
    return stage.resource_name("payment")


def state_machine_arns(scope: Construct, stage: Stage) -> tuple[str, str]:
    """(state machine ARN, ARN pattern of its executions), built from the fixed name."""
    stack = cdk.Stack.of(scope)
    name = state_machine_name(stage)
    machine = stack.format_arn(
        service="states", resource="stateMachine", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    executions = stack.format_arn(
        service="states", resource="execution", resource_name=f"{name}:*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
    )
    return machine, executions


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

        tasks = {
            "ExecutorFunctionArn": self.executor,
            "WalletFunctionArn": wallet_function,
            "LedgerFunctionArn": ledger_function,
            "PaymentFunctionArn": payment_function,
        }
        name = state_machine_name(stage)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=stage.log_retention,
            removal_policy=stage.disposable_removal_policy,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(ASL_PATH.read_text()),  # inline: the states are in the template
            definition_substitutions={key: fn.function.function_arn for key, fn in tasks.items()},
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # inputs carry buyer data and PSP tokens
            ),
            tracing_enabled=True,
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[fn.function.function_arn for fn in tasks.values()],
            )
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing and the CloudWatch Logs vended-log delivery APIs (logs:CreateLogDelivery, ...) that "
            "Step Functions logging needs support no resource-level permissions; lambda:InvokeFunction is "
            "granted on the four task functions only.",
        )
