"""Lambda entry point of the wallet (Task ``UpdateWallet``)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from functions.wallet.logic import credit_seller
from payments.accounts.wallet import WalletRepository
from payments.kernel import config
from payments.kernel.observability import count, entry_point, logger
from payments.payin.repository import PaymentsRepository
from payments.payin.tasks import OrderTask

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.WALLET)


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # the model itself, not Powertools' parser: the same validation without the parser's imports at cold start
    task = OrderTask.model_validate(event)
    logger.append_keys(payment_order_id=task.payment_order_id)
    orders = PaymentsRepository()
    result = credit_seller(task.payment_order_id, orders, WalletRepository(payments=orders))
    if not result["applied_now"]:
        count("WalletCreditReplayed")
    return result
