"""Payment executor: execute one payment order against the PSP, exactly once.

The order moves ``NOT_STARTED -> EXECUTING -> SUCCESS | FAILED`` by conditional
writes. The PSP is called with the idempotency key ``payment_order_id``. If this
task runs again for an order already ``EXECUTING`` (a crash, a timeout, a lost
PSP answer, a duplicate delivery), it first asks the PSP what happened to that
key and only charges if the PSP never saw it; the PSP deduplicates on the key in
any case. So a retry never charges twice. (A PSP without a lookup, Adyen, answers
None and the charge resends the same request with the same key, which it answers
from its idempotency store; it refuses to resend a key older than it keeps keys.)
"""

from __future__ import annotations

from payments.kernel.errors import StatusConflict
from payments.payin.models import OrderRecord
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus
from payments.payin.tasks import ExecuteOrderTask, ExecutionResult
from payments.psp import Approved, ChargeRequest, PaymentServiceProvider


def execute_order(task: ExecuteOrderTask, orders: PaymentsRepository, psp: PaymentServiceProvider) -> ExecutionResult:
    order = orders.get_order(task.payment_order_id)
    if order.checkout_id != task.checkout_id:
        raise StatusConflict(
            f"order {order.payment_order_id} belongs to checkout {order.checkout_id}, not {task.checkout_id}"
        )
    if order.status.is_final:
        return _result(order)  # a duplicate delivery: report what happened, do nothing

    resumed = order.status is OrderStatus.EXECUTING
    if not resumed:
        try:
            order = orders.move_order(order.payment_order_id, OrderStatus.EXECUTING)
        except StatusConflict:
            order = orders.get_order(task.payment_order_id)
            if order.status.is_final:
                return _result(order)  # a racing execution finished it
            raise
        # (a racing attempt that is EXECUTING right now makes the move a no-op; both then
        # charge with the same idempotency key and the PSP holds one charge for it)

    # an earlier attempt may have charged before it crashed: ask the PSP before charging
    outcome = psp.lookup(order.payment_order_id) if resumed else None
    if outcome is None:
        amount = order.money  # a valid ISO 4217 amount in integer minor units, or no PSP call at all
        outcome = psp.charge(
            ChargeRequest(
                idempotency_key=order.payment_order_id,
                amount_minor=amount.minor,
                currency=amount.currency,
                token=task.payment_method.token,
                # a PSP that charges stored tokens per shopper (Adyen) names the buyer; others skip the read
                shopper_reference=orders.get(order.checkout_id).buyer_id
                if getattr(psp, "needs_shopper_reference", False)
                else None,
                # a resend names when the key was first sent: a PSP whose keys expire refuses an old one
                first_attempt_at=_executing_since(order) if resumed else None,
            )
        )

    if isinstance(outcome, Approved):
        order = orders.move_order(
            order.payment_order_id,
            OrderStatus.SUCCESS,
            psp_reference=outcome.psp_reference,
            charged_at=outcome.charged_at,
        )
    else:
        order = orders.move_order(order.payment_order_id, OrderStatus.FAILED, failure_reason=outcome.reason)
    return _result(order)


def _executing_since(order: OrderRecord) -> str | None:
    """When the order first went EXECUTING (its first PSP call with this key), from its history."""
    return next(
        (entry["at"] for entry in order.status_history if entry.get("status") == OrderStatus.EXECUTING.value),
        order.created_at or None,
    )


def _result(order: OrderRecord) -> ExecutionResult:
    return ExecutionResult(
        payment_order_id=order.payment_order_id,
        status=order.status,
        psp_reference=order.psp_reference,
        failure_reason=order.failure_reason,
    )
