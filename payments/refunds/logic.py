"""The refund flow: accept (reserve), execute at the PSP, apply the outcome, park.

``accept_refund`` runs under Powertools idempotency in the API (the ``Idempotency-Key``);
below it the reservation is itself idempotent (conditional transaction, fingerprint compared
on a collision) and the workflow's execution is named after the refund, so a crash anywhere in
between is repaired by a retry: the retry of a stored PENDING refund starts its workflow again
under that name (one that ran or runs is refused by name), and a refund whose client never
retries is re-driven by the recovery sweep (:mod:`payments.refunds.recovery`). The workflow
(``stepfunctions/refund.asl.json``) runs ``execute_refund`` (the PSP, idempotency key
``refund_id``) and ``apply_refund_outcome`` (one conditional transaction), each retried with
backoff and jitter, and parks the refund as NEEDS_ATTENTION if they keep failing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from payments.kernel import money
from payments.kernel.errors import InvalidRequest
from payments.kernel.observability import count, logger
from payments.payin.status import AttentionKind
from payments.refunds import recovery
from payments.refunds.models import RefundRecord, RefundRequest, RefundStatus
from payments.refunds.psp import RefundCall, RefundingPsp
from payments.refunds.repository import RefundExceedsRemaining, RefundsRepository, refundable_minor


def fingerprint(idempotency_key: str, request: dict[str, Any]) -> str:
    canonical = json.dumps({"key": idempotency_key, "request": request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def accept_refund(
    idempotency_key: str, request: RefundRequest, refunds: RefundsRepository, *, start: bool = True
) -> dict[str, Any]:
    """Reserve the amount on the order and start the refund workflow; the refund resource."""
    print_ = fingerprint(idempotency_key, request.model_dump(mode="json"))
    existing = refunds.find(request.refund_id)
    if existing is not None and existing.request_fingerprint == print_:
        # a retry: the same refund, nothing new; but the first attempt may have failed after the reservation
        # committed and before its workflow started (StartExecution failed, the client got a 500): start the
        # latest execution name now (one that ran or runs already is refused by name, which is success)
        if start and recovery.needs_workflow(existing):
            start_workflow(existing.refund_id, attempts=existing.recovery_attempts)
        return existing.to_api().model_dump(mode="json")
    order = refunds.payments.get_order(request.payment_order_id)
    if request.currency != order.currency:
        # both codes are safe to quote: the request's passed the currency rule, the order's is ours
        message = f"currency {request.currency} differs from the order's currency {order.currency}"
        raise InvalidRequest([{"field": "currency", "message": message}])
    if request.amount is not None:
        amount = money.Money.parse(request.amount, request.currency)
    else:
        amount = money.Money(refundable_minor(order), order.currency)
        if not amount.is_positive():
            raise RefundExceedsRemaining(
                f"order {order.payment_order_id} has nothing left to refund", 0, order.currency, order.payment_order_id
            )
    record = RefundRecord(
        refund_id=request.refund_id,
        payment_order_id=order.payment_order_id,
        seller_account=order.seller_account,
        amount_minor=amount.minor,
        currency=amount.currency,
        reason=request.reason,
        idempotency_key=idempotency_key,
        request_fingerprint=print_,
    )
    reserved = refunds.reserve(record, order)
    if start and reserved.refund.status is RefundStatus.PENDING:
        start_workflow(reserved.refund.refund_id)
    if reserved.created:
        count("RefundsAccepted")
    return reserved.refund.to_api().model_dump(mode="json")


def start_workflow(refund_id: str, *, attempts: int = 0) -> None:
    """StartExecution named after the refund (after ``attempts`` re-drives: the latest re-drive's name):
    a second start of the same name is a no-op."""
    if not recovery.start(refund_id, recovery.execution_name(refund_id, attempts)):
        logger.info("refund workflow already started")


def execute_refund(refund_id: str, refunds: RefundsRepository, psp: RefundingPsp) -> dict[str, Any]:
    """Ask the PSP to refund (idempotency key ``refund_id``); returns its answer, not yet applied.
    A refund decided meanwhile (its REFUND notification came first) is not sent again."""
    refund = refunds.get(refund_id)
    if refund.status is not RefundStatus.PENDING:
        return {"refund_id": refund_id, "decided": True, "status": refund.status.value}
    order = refunds.payments.get_order(refund.payment_order_id)
    answer = psp.refund(
        RefundCall(
            idempotency_key=refund_id,
            payment_order_id=order.payment_order_id,
            original_psp_reference=str(order.psp_reference),
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            reason=refund.reason,
        )
    )
    # succeeded None: the PSP received the refund (Adyen), its REFUND notification decides it
    return {
        "refund_id": refund_id,
        "decided": False,
        "succeeded": answer.succeeded,
        "psp_reference": answer.psp_reference,
        "reason": answer.reason,
    }


def apply_refund_outcome(task: dict[str, Any], refunds: RefundsRepository) -> dict[str, Any]:
    """Apply the PSP's answer: first outcome wins (a notification may have decided it already)."""
    refund_id = task["refund_id"]
    execution = task.get("execution") or task
    if execution.get("decided"):
        return {"refund_id": refund_id, "status": refunds.get(refund_id).status.value, "applied": False}
    if execution.get("succeeded") is None:
        # received, not decided (Adyen): the refund stays PENDING, reserved, until its REFUND notification
        refund = refunds.record_psp_reference(refund_id, execution.get("psp_reference"))
        return {"refund_id": refund_id, "status": refund.status.value, "applied": False, "awaiting_notification": True}
    decided = refunds.decide(
        refund_id,
        bool(execution["succeeded"]),
        psp_reference=execution.get("psp_reference"),
        failure_reason=execution.get("reason") or "refused by the PSP",
        source="psp",
    )
    return {"refund_id": refund_id, "status": decided.refund.status.value, "applied": decided.applied}


def park_refund(task: dict[str, Any], refunds: RefundsRepository) -> dict[str, Any]:
    """The workflow gave up: the refund stays PENDING (its reservation held) and is flagged."""
    refund_id = task["refund_id"]
    error = task.get("error") or {}
    reason = f"{task.get('step', 'refund')} step: {error.get('Error', 'error')}: {str(error.get('Cause', ''))[:500]}"
    refund = refunds.get(refund_id)
    if refund.status.is_final:
        return {"refund_id": refund_id, "status": refund.status.value, "parked": False}
    refunds.flag_attention(refund_id, reason, AttentionKind.REDRIVE)
    count("RefundNeedsAttention")
    logger.error("refund needs attention", extra={"refund_id": refund_id, "reason": reason})
    return {"refund_id": refund_id, "status": refund.status.value, "parked": True}
