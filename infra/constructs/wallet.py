"""Wallet: the function that credits a seller's balance once per successful payment order."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions import registry
from infra.constructs.function import PaymentsFunction
from infra.constructs.tables import PaymentTables
from infra.stage import Stage


class Wallet(Construct):
    """``functions/wallet``: the UpdateWallet task of the payment workflow.

    One ``TransactWriteItems`` puts the credit marker (``attribute_not_exists``)
    and adds to a balance shard, hence PutItem and UpdateItem on the wallets
    table; it reads the order from, and marks it on, the payments table.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, stage: Stage, code: lambda_.Code, tables: PaymentTables
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = PaymentsFunction(
            self,
            "Wallet",
            stage=stage,
            code=code,
            spec=registry.WALLET,
            tables=tables,
            settings={"wallet_shards": str(stage.wallet_shards)},
        )
