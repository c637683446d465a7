"""Payment service logic: accept a checkout, start its workflow, finalize it, and read models.

``accept_payment`` runs under Powertools idempotency (see ``api.py``): the
``Idempotency-Key`` selects the record, the request body is the payload that a
reuse of the key must match. Below it, storing is itself idempotent (conditional
transaction, fingerprint compared on a collision), and the workflow is started
only by whoever wins the conditional ``PENDING -> PROCESSING`` move (the
"started" marker): an Express workflow's starts are not deduplicated by name, so
the marker, not the orchestrator, keeps a client retry from starting a second
execution. A crash after storing and before starting (marker won or not, client
retrying or not) leaves the payment in the recovery index: the recovery function
re-drives it when it is due (``payments.payin.recovery``). A duplicate execution, if one
ever starts, is harmless: every task is a conditional write.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from payments.accounts.commission import commission_of, rate_for
from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository
from payments.kernel import aws
from payments.kernel.config import settings
from payments.kernel.dynamo import error_code
from payments.kernel.money import Money
from payments.kernel.observability import count, logger
from payments.payin.models import (
    AccountBalance,
    Balance,
    CurrencyTotals,
    OrderRecord,
    PaymentOut,
    PaymentRecord,
    PaymentRequest,
    TrialBalanceOut,
    WalletOut,
    payment_out,
)
from payments.payin.repository import PaymentsRepository, recovery_due
from payments.payin.status import AttentionKind, PaymentStatus, payment_outcome
from payments.payin.tasks import FinalizePaymentTask


def fingerprint(idempotency_key: str, request: dict[str, Any]) -> str:
    canonical = json.dumps({"key": idempotency_key, "request": request}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def accept_payment(idempotency_key: str, request: PaymentRequest, repo: PaymentsRepository) -> dict[str, Any]:
    """Store the payment event and its orders, start the workflow, return the payment resource."""
    body = request.model_dump(mode="json")
    payment = PaymentRecord(
        checkout_id=request.checkout_id,
        buyer_id=request.buyer_info.buyer_id,
        payment_order_ids=[o.payment_order_id for o in request.payment_orders],
        payment_method_type=request.payment_method.type,
        payment_method_token=request.payment_method.token,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint(idempotency_key, body),
    )
    orders = []
    for o in request.payment_orders:
        amount, bps = o.money, rate_for(o.seller_account)  # the commission is fixed here, once per order
        orders.append(
            OrderRecord(
                payment_order_id=o.payment_order_id,
                checkout_id=request.checkout_id,
                seller_account=o.seller_account,
                amount_minor=amount.minor,
                currency=amount.currency,
                commission_bps=bps,
                commission_minor=commission_of(amount, bps).minor,
            )
        )
    outcome = repo.create(payment, orders)
    if not outcome.created:
        logger.info("payment already stored by an earlier attempt; resuming")
    claimed = repo.claim_start(payment.checkout_id)
    if claimed:
        start_workflow(payment)
    else:
        logger.info("workflow already started for this checkout (or left to the recovery)")
    count("PaymentsAccepted")
    if outcome.created and claimed:
        # just stored and started by this request: the resource as accepted, without reading it back
        return PaymentOut(
            checkout_id=payment.checkout_id,
            status=PaymentStatus.PROCESSING,
            is_payment_done=False,
            payment_orders=[o.to_api() for o in orders],
        ).model_dump(mode="json")
    return payment_view(request.checkout_id, repo).model_dump(mode="json")


def start_workflow(payment: PaymentRecord, name: str | None = None) -> None:
    """StartExecution named after the checkout (or ``name``). A Standard workflow refuses a second
    start of the same name (ExecutionAlreadyExists: already started); an Express one would run it
    again, which is why the callers start only after a conditional marker (see the module doc)."""
    execution_input = {
        "checkout_id": payment.checkout_id,
        "payment_method": {"type": payment.payment_method_type, "token": payment.payment_method_token},
        "payment_orders": [{"payment_order_id": i} for i in payment.payment_order_ids],
    }
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings().state_machine_arn,
            name=name or payment.checkout_id,
            input=json.dumps(execution_input, sort_keys=True),
        )
    except ClientError as err:
        if error_code(err) != "ExecutionAlreadyExists":
            raise
        logger.info("workflow already started for this checkout")


#: errors that park an order because a step *refused* (money would be wrong, the PSP saw the key with
#: another amount, a contradicting signal): a human decides, the recovery does not re-drive them
REFUSALS = ("InvariantViolation", "PspRequestRejected", "StatusConflict")


def finalize_payment(task: FinalizePaymentTask, repo: PaymentsRepository) -> dict[str, Any]:
    """Park unresolved orders, then derive the payment status from the stored orders."""
    refused = any(
        r.outcome == "NEEDS_ATTENTION" and (r.error or {}).get("Error") in REFUSALS for r in task.order_results
    )
    for result in task.order_results:
        if result.outcome == "NEEDS_ATTENTION":
            if repo.get_order(result.payment_order_id).is_settled_internally:
                logger.info(
                    "unresolved in this execution but completed by another",
                    extra={"payment_order_id": result.payment_order_id},
                )
                continue
            error = result.error or {}
            reason = (
                f"{result.step or 'unknown'} step: {error.get('Error', 'error')}: {str(error.get('Cause', ''))[:500]}"
            )
            # a step that ran out of retries is re-drivable; a refusal is a decision for a person
            refusal = error.get("Error") in REFUSALS
            repo.flag_attention(
                result.payment_order_id, reason, AttentionKind.PERSON if refusal else AttentionKind.REDRIVE
            )
            count("NeedsAttention")
            logger.error(
                "payment order needs attention", extra={"payment_order_id": result.payment_order_id, "reason": reason}
            )
    payment = repo.get(task.checkout_id)
    orders = repo.orders_of(payment)
    status = payment_outcome([o.status for o in orders])
    done = all(o.is_settled_internally for o in orders)
    for order in orders:
        if order.needs_attention and order.is_settled_internally:
            # parked by an earlier execution, settled by this one (a re-drive): resolved, with its audit trail
            repo.clear_attention(order.payment_order_id, "settled by a later execution of the workflow")
    # not done (an order parked for a transient cause: retries exhausted): the recovery re-drives it when
    # due, a bounded number of times; parked by a refusal: out of the recovery's hands
    moved = repo.move_payment(
        task.checkout_id,
        status,
        is_payment_done=done,
        recheck_at=None if done else recovery_due(),
        stop_recovery=refused and not done,
    )
    if not moved:
        logger.warning("payment status not moved", extra={"target": status.value})
    return {"checkout_id": task.checkout_id, "status": status.value, "is_payment_done": done}


# --- read models ------------------------------------------------------------------
def payment_view(checkout_id: str, repo: PaymentsRepository) -> PaymentOut:
    payment = repo.get(checkout_id)
    return payment_out(payment, repo.orders_of(payment))


def wallet_view(seller_account: str, wallets: WalletRepository) -> WalletOut:
    return WalletOut(
        seller_account=seller_account,
        balances=[
            Balance(
                currency=c,
                amount=Money(parts.total, c).format(),
                pending=Money(parts.pending, c).format(),
                available=Money(parts.available, c).format(),
                in_transit=Money(parts.in_transit, c).format(),
            )
            for c, parts in wallets.balance_parts(seller_account).items()
        ],
    )


def trial_balance_view(ledger: LedgerRepository) -> TrialBalanceOut:
    trial = ledger.trial_balance()
    return TrialBalanceOut(
        currencies=[
            CurrencyTotals(currency=c, debits=Money(d, c).format(), credits=Money(cr, c).format())
            for c, (d, cr) in trial.items()
        ],
        accounts=[
            AccountBalance(account=str(account), kind=account.kind.value, currency=c, balance=Money(v, c).format())
            for (account, c), v in ledger.platform_balances(set(trial)).items()
        ],
    )
