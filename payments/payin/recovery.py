"""Automatic recovery of unfinished payments: the scheduled function ``functions/recovery``.

Every payment enters the sparse ``by_recovery_due`` index of the payments table when it is
stored (``unfinished`` = its shard, ``recovery_due`` = acceptance + the recovery delay) and
leaves it when it is done (``is_payment_done``). What is still in the index when it is due
is unfinished past its deadline, whatever the cause:

* never started: the payment function crashed after storing and before starting the
  workflow, and the client never retried (status PENDING, or PROCESSING with no execution);
* execution gone: an Express execution lost midway, timed out or failed (no history to look at);
* parked for a transient cause: FinalizePayment found an order parked NEEDS_ATTENTION and set
  the due time of the next look.

Each run queries every shard of the index for ``recovery_due <= now`` (a Query per shard,
never a Scan) and, for each payment found:

1. claims it with one conditional update: ``recovery_attempts + 1`` and the next due time,
   on condition that the due time is still the one read (two runs never both re-drive it)
   and that fewer than ``recovery_max_attempts`` re-drives were made;
2. re-drives it: ``StartExecution`` of the same state machine with the same input as the
   first start, named ``<checkout_id>-redrive-<n>``. Every step of the workflow is
   idempotent, so a re-drive does only what is missing and FinalizePayment re-derives the
   status (and clears the flags of parked orders it settled);
3. once the attempts are used up: parks every order not settled yet as NEEDS_ATTENTION (the
   ``RecoveryGaveUp`` and ``NeedsAttention`` metrics, each with its alarm) and takes the payment
   out of the index. An operator takes over (docs/runbook.md).

The delay is longer than an Express execution may live (5 minutes), so in AWS a re-drive
never overtakes the execution it replaces; if one did, both would be harmless.

Refunds share the index: a refund is in it from its reservation until its workflow has done its
part, and the same Query finds it (``pk`` ``REFUND#...``); :mod:`payments.refunds.recovery`
re-drives it, a bounded number of times, then parks it (``RefundRecoveryGaveUp``, alarmed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import error_code, from_item, is_condition_failure, query_all, to_values
from payments.kernel.observability import count, logger
from payments.payin.models import PaymentRecord
from payments.payin.repository import PaymentsRepository, payment_key, recovery_due
from payments.payin.status import AttentionKind, payment_outcome
from payments.refunds import recovery as refund_recovery
from payments.refunds.repository import RefundsRepository

INDEX = "by_recovery_due"
#: payments handled per shard and run: a bound on one run's work (the rest waits a minute)
PER_SHARD_LIMIT = 500


@dataclass
class RecoveryRun:
    examined: int = 0
    redriven: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    #: claimed by another run, or finished between the query and the claim
    skipped: int = 0
    #: the refunds found due (payments.refunds.recovery)
    refunds: refund_recovery.RefundRecovery = field(default_factory=refund_recovery.RefundRecovery)

    def summary(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "redriven": len(self.redriven),
            "gave_up": len(self.gave_up),
            "skipped": self.skipped,
            "refunds_redriven": len(self.refunds.redriven),
            "refunds_gave_up": len(self.refunds.gave_up),
            "refunds_running": self.refunds.running,
        }


def execution_input(payment: PaymentRecord) -> dict[str, Any]:
    """The workflow input, exactly as the payment function builds it for the first start."""
    return {
        "checkout_id": payment.checkout_id,
        "payment_method": {"type": payment.payment_method_type, "token": payment.payment_method_token},
        "payment_orders": [{"payment_order_id": i} for i in payment.payment_order_ids],
    }


def due_payments(now_iso: str, repo: PaymentsRepository) -> list[tuple[str, str]]:
    """(checkout_id, recovery_due) of every payment due at ``now_iso``, shard by shard (Query only)."""
    return [(pk.removeprefix("CHECKOUT#"), due) for pk, due in due_items(now_iso, repo) if pk.startswith("CHECKOUT#")]


def due_items(now_iso: str, repo: PaymentsRepository) -> list[tuple[str, str]]:
    """(pk, recovery_due) of every item due at ``now_iso`` (payments and refunds), shard by shard (Query only)."""
    found: list[tuple[str, str]] = []
    for shard in range(settings().recovery_shards):
        items = query_all(
            repo.ddb,
            TableName=repo.table,
            IndexName=INDEX,
            KeyConditionExpression="unfinished = :shard AND recovery_due <= :now",
            ExpressionAttributeValues=to_values({":shard": f"U#{shard}", ":now": now_iso}),
        )
        for n, item in enumerate(items):
            if n >= PER_SHARD_LIMIT:
                break
            found.append((item["pk"], item["recovery_due"]))
    return found


def run(repo: PaymentsRepository | None = None) -> RecoveryRun:
    """One pass over the payments and the refunds due now."""
    repo = repo or PaymentsRepository()
    refunds: RefundsRepository | None = None
    result = RecoveryRun()
    for pk, seen_due in due_items(clock.now_iso(), repo):
        result.examined += 1
        try:
            if pk.startswith(refund_recovery.REFUND_PREFIX):
                refunds = refunds or RefundsRepository(table=repo.table, client=repo.ddb, payments=repo)
                refund_recovery.recover(
                    pk.removeprefix(refund_recovery.REFUND_PREFIX), seen_due, refunds, result.refunds
                )
            else:
                recover(pk.removeprefix("CHECKOUT#"), seen_due, repo, result)
        except Exception:  # noqa: BLE001 - one item's failure must not stop the others; it stays due
            logger.exception("recovery of a payment or refund failed; it stays due", extra={"key": pk})
    if result.redriven:
        count("PaymentsRedriven", len(result.redriven))
    if result.gave_up:
        count("RecoveryGaveUp", len(result.gave_up))
    if result.refunds.redriven:
        count("RefundsRedriven", len(result.refunds.redriven))
    return result


def recover(checkout_id: str, seen_due: str, repo: PaymentsRepository, result: RecoveryRun) -> None:
    s = settings()
    try:
        response = repo.ddb.update_item(
            TableName=repo.table,
            Key=payment_key(checkout_id),
            UpdateExpression="SET recovery_attempts = if_not_exists(recovery_attempts, :zero) + :one, recovery_due = :next, updated_at = :now",
            ConditionExpression="recovery_due = :seen AND attribute_exists(unfinished) "
            "AND (attribute_not_exists(recovery_attempts) OR recovery_attempts < :max)",
            ExpressionAttributeValues=to_values(
                {
                    ":zero": 0,
                    ":one": 1,
                    ":next": recovery_due(),
                    ":now": clock.now_iso(),
                    ":seen": seen_due,
                    ":max": s.recovery_max_attempts,
                }
            ),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as err:
        if not is_condition_failure(err):
            raise
        old = (
            from_item(cast("dict[str, Any] | None", err.response.get("Item"))) or {}
        )  # ALL_OLD on the condition failure
        exhausted = (
            old.get("recovery_due") == seen_due
            and "unfinished" in old
            and int(old.get("recovery_attempts", 0)) >= s.recovery_max_attempts
        )
        if exhausted:
            give_up(checkout_id, seen_due, int(old["recovery_attempts"]), repo)
            result.gave_up.append(checkout_id)
        else:
            result.skipped += 1  # another run claimed it, or it finished meanwhile
        return
    item = from_item(response["Attributes"]) or {}
    attempt = int(item["recovery_attempts"])
    payment = PaymentRecord.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})
    name = f"{checkout_id}-redrive-{attempt}"
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=s.state_machine_arn, name=name, input=json.dumps(execution_input(payment), sort_keys=True)
        )
    except ClientError as err:
        if error_code(err) != "ExecutionAlreadyExists":  # Standard: this re-drive's name was started already
            raise
    logger.warning(
        "payment re-driven",
        extra={"checkout_id": checkout_id, "execution": name, "status": payment.status.value, "attempt": attempt},
    )
    result.redriven.append(checkout_id)


def give_up(checkout_id: str, seen_due: str, attempts: int, repo: PaymentsRepository) -> None:
    """Park every order not settled yet (NEEDS_ATTENTION, alarm), then take the payment out of the index."""
    payment = repo.get(checkout_id)
    orders = repo.orders_of(payment)
    unsettled = [o for o in orders if not o.is_settled_internally]
    reason = f"recovery: still unfinished after {attempts} automatic re-drives (payment {payment.status.value})"
    for order in unsettled:
        if not order.needs_attention:
            repo.flag_attention(order.payment_order_id, f"{reason}; order {order.status.value}", AttentionKind.REDRIVE)
            count("NeedsAttention")
    if not unsettled:  # settled meanwhile, but never finalized: derive the status as FinalizePayment does
        repo.move_payment(checkout_id, payment_outcome([o.status for o in orders]), is_payment_done=True)
    try:
        repo.ddb.update_item(
            TableName=repo.table,
            Key=payment_key(checkout_id),
            UpdateExpression="SET recovery_gave_up_at = :now, updated_at = :now REMOVE unfinished, recovery_due",
            ConditionExpression="recovery_due = :seen",
            ExpressionAttributeValues=to_values({":now": clock.now_iso(), ":seen": seen_due}),
        )
    except ClientError as err:
        if not is_condition_failure(err):
            raise
    logger.error(
        "recovery gave up: payment orders parked as NEEDS_ATTENTION",
        extra={"checkout_id": checkout_id, "orders": [o.payment_order_id for o in unsettled], "attempts": attempts},
    )
