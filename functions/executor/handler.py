"""Lambda entry point of the payment executor (Task ``ExecutePaymentOrder``)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from functions.executor.logic import execute_order
from payments.kernel import config
from payments.kernel.observability import count, entry_point, logger
from payments.payin.repository import PaymentsRepository
from payments.payin.tasks import ExecuteOrderTask
from payments.psp import default_psp

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.EXECUTOR)


@entry_point
@event_parser(model=ExecuteOrderTask)
def handler(event: ExecuteOrderTask, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(checkout_id=event.checkout_id, payment_order_id=event.payment_order_id)
    result = execute_order(event, PaymentsRepository(), default_psp())
    count(f"Order{result.status.value.title()}")
    logger.info("payment order executed", extra={"status": result.status.value})
    return result.model_dump(mode="json")
