"""Lambda entry point of the payment executor (Task ``ExecutePaymentOrder``)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from functions.executor.logic import execute_order
from payments.kernel import config
from payments.kernel.observability import count, entry_point, logger
from payments.payin.repository import PaymentsRepository
from payments.payin.tasks import ExecuteOrderTask
from payments.psp import default_psp, import_adapter

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.EXECUTOR)
#: the stage's PSP adapter and its library, imported now rather than by the first charge
import_adapter()


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # the model itself, not Powertools' parser: the same validation without the parser's imports at cold start
    task = ExecuteOrderTask.model_validate(event)
    logger.append_keys(checkout_id=task.checkout_id, payment_order_id=task.payment_order_id)
    result = execute_order(task, PaymentsRepository(), default_psp())
    count(f"Order{result.status.value.title()}")
    logger.info("payment order executed", extra={"status": result.status.value})
    return result.model_dump(mode="json")
