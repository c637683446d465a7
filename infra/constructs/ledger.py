"""Ledger: the function that appends the double-entry transaction of a successful payment order."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions import registry
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.stage import Stage


class Ledger(Construct):
    """``functions/ledger``: the AppendLedger task of the payment workflow.

    The transaction id derives from the payment order id (a conditional put), and
    the same ``TransactWriteItems`` adds to a trial-balance totals shard (an
    update). ``PSP_NAME`` prefixes the ``settlement_day`` that reconciliation
    queries by.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: Stage, code: lambda_.Code, tables: PaymentTables
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PaymentsFunction(
            self,
            "Ledger",
            stage=stage,
            code=code,
            spec=registry.LEDGER,
            tables=tables,
            settings={"ledger_total_shards": str(stage.ledger_total_shards), "psp_name": stage.psp_name},
        )
