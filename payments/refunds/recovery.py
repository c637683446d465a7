"""Refunds whose workflow is not running: re-driven by the recovery sweep, then parked.

A refund enters the sparse ``by_recovery_due`` index of the payments table when it is reserved
(``unfinished`` = its shard, ``recovery_due`` = reservation + the recovery delay, as a payment
does: :mod:`payments.payin.recovery`) and leaves it when its workflow has done its part: the
refund is decided (SUCCEEDED or FAILED), or the PSP received it and its notification decides it
(Adyen: the PSP's reference is kept on the refund). What is still in the index when it is due is
a PENDING refund that nothing is moving: its StartExecution failed after the reservation
committed (the client got a 500 and never retried), or its execution died.

The scheduled recovery (``functions/recovery``, every minute) finds such a refund in the same
Query per shard as the payments and, for each one:

1. reads it: decided, received by the PSP or parked NEEDS_ATTENTION meanwhile, it leaves the
   index (a parked refund is a person's to decide);
2. asks Step Functions about its latest execution (:func:`execution_name`): still RUNNING, it
   is looked at again one delay later, without counting an attempt;
3. claims it with one conditional update (``recovery_attempts + 1`` and the next due time, on
   condition that the due time is still the one read, the refund is PENDING and fewer than
   ``recovery_max_attempts`` re-drives were made: two runs never both re-drive it), then starts
   the refund workflow as ``<refund_id>-redrive-<n>`` with the input of the first start. Every
   step is idempotent (the PSP's key is the refund, the outcome a conditional transaction), so a
   re-drive that overlaps another execution changes nothing twice;
4. once the attempts are used up: parks the refund NEEDS_ATTENTION (one conditional update that
   also takes it out of the index; the ``RefundRecoveryGaveUp`` metric, alarmed). The amount
   stays reserved until an operator decides (docs/runbook.md).

A client's replay of the request (same ``Idempotency-Key``, same body) starts the latest
execution name too (:func:`payments.refunds.logic.accept_refund`): a Standard state machine
refuses a second start of a name (``ExecutionAlreadyExists``: it ran or runs), so the replay
starts the workflow only when that start never happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import conditional_write, error_code, is_condition_failure, to_values
from payments.kernel.observability import count, logger
from payments.payin.models import AttentionOut
from payments.payin.repository import recovery_due
from payments.payin.status import AttentionKind
from payments.refunds.models import RefundRecord, RefundStatus
from payments.refunds.repository import RefundsRepository, refund_key

#: the refund items' partition key prefix in the payments table (and in the recovery index)
REFUND_PREFIX = "REFUND#"


@dataclass
class RefundRecovery:
    redriven: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    #: its execution is still running: looked at again one delay later
    running: int = 0
    #: decided, received by the PSP or parked meanwhile: out of the index
    left: int = 0
    #: claimed by another run, or moved between the read and the write
    skipped: int = 0


def execution_name(refund_id: str, attempts: int) -> str:
    """The name of a refund's latest workflow execution: the first start's, or its ``attempts``-th re-drive's."""
    return refund_id if attempts <= 0 else f"{refund_id}-redrive-{attempts}"


def execution_input(refund_id: str) -> str:
    """The refund workflow's input, the same for every start of one refund."""
    return json.dumps({"refund_id": refund_id})


def start(refund_id: str, name: str) -> bool:
    """StartExecution of the refund workflow as ``name``; False if that name was started before
    (a Standard state machine refuses it: ``ExecutionAlreadyExists``), which is success."""
    try:
        aws.client("stepfunctions").start_execution(
            stateMachineArn=settings().refund_state_machine_arn, name=name, input=execution_input(refund_id)
        )
    except ClientError as err:
        if error_code(err) != "ExecutionAlreadyExists":
            raise
        return False
    return True


def execution_running(name: str) -> bool:
    """Whether the refund workflow's execution ``name`` is RUNNING (never started: False)."""
    machine = settings().refund_state_machine_arn
    arn = machine.replace(":stateMachine:", ":execution:") + ":" + name
    try:
        status = aws.client("stepfunctions").describe_execution(executionArn=arn)["status"]
    except ClientError as err:
        if error_code(err) != "ExecutionDoesNotExist":
            raise
        return False
    return bool(status == "RUNNING")


def needs_workflow(refund: RefundRecord) -> bool:
    """A refund its workflow still has to move: PENDING, not parked, not yet received by the PSP."""
    return refund.status is RefundStatus.PENDING and not refund.needs_attention and not refund.psp_reference


def recover(refund_id: str, seen_due: str, repo: RefundsRepository, result: RefundRecovery) -> None:
    """One due refund of the recovery index: re-drive it, postpone it, park it, or let it leave."""
    s = settings()
    refund = repo.find(refund_id)
    if refund is None:
        result.skipped += 1
        return
    if not needs_workflow(refund):
        _leave_index(refund_id, seen_due, repo)
        result.left += 1
        return
    attempts = refund.recovery_attempts
    if execution_running(execution_name(refund_id, attempts)):
        if _postpone(refund_id, seen_due, repo):
            result.running += 1
        else:
            result.skipped += 1
        return
    if attempts >= s.recovery_max_attempts:
        if _park(refund_id, seen_due, attempts, repo):
            result.gave_up.append(refund_id)
        else:
            result.skipped += 1
        return
    attempt = _claim(refund_id, seen_due, repo)
    if attempt is None:
        result.skipped += 1
        return
    name = execution_name(refund_id, attempt)
    start(refund_id, name)
    logger.warning("refund re-driven", extra={"refund_id": refund_id, "execution": name, "attempt": attempt})
    result.redriven.append(refund_id)


@dataclass(frozen=True)
class StuckRefund:
    """A refund ``payments stuck`` lists: still PENDING after the deadline, or parked."""

    refund_id: str
    payment_order_id: str
    amount_minor: int
    currency: str
    age_seconds: float
    reason: str
    #: its attention flag (kind, reason, since), None when it is not parked
    attention: AttentionOut | None
    recovery_attempts: int


def stuck(
    older_than: timedelta, *, include_parked: bool = True, repo: RefundsRepository | None = None
) -> list[StuckRefund]:
    """The refunds still PENDING ``older_than`` after their reservation, and (``include_parked``) the
    PENDING refunds parked NEEDS_ATTENTION: what ``payments stuck`` adds to the payments. A scan of
    the refunds: an operator's audit, not a hot path (the recovery uses its index)."""
    now = clock.now()
    found = []
    for refund in (repo or RefundsRepository()).scan_refunds():
        if refund.status is not RefundStatus.PENDING or not refund.created_at:
            continue
        age = (now - datetime.fromisoformat(refund.created_at.replace("Z", "+00:00"))).total_seconds()
        overdue, parked = age >= older_than.total_seconds(), refund.needs_attention
        if overdue or (include_parked and parked):
            found.append(
                StuckRefund(
                    refund.refund_id,
                    refund.payment_order_id,
                    refund.amount_minor,
                    refund.currency,
                    age,
                    "parked NEEDS_ATTENTION" if parked else "overdue PENDING",
                    AttentionOut.of(refund),
                    int(refund.recovery_attempts or 0),
                )
            )
    return sorted(found, key=lambda r: -r.age_seconds)


def _values(seen_due: str, **more: Any) -> dict[str, Any]:
    """The values of a conditional write on a due PENDING refund, and ``more``."""
    return to_values({":seen": seen_due, ":pending": RefundStatus.PENDING.value, **more})


def _claim(refund_id: str, seen_due: str, repo: RefundsRepository) -> int | None:
    """Count one re-drive and move the due time, once per due time; the attempt's number, or None."""
    try:
        response = repo.ddb.update_item(
            TableName=repo.table,
            Key=refund_key(refund_id),
            UpdateExpression="SET recovery_attempts = if_not_exists(recovery_attempts, :zero) + :one, "
            "recovery_due = :next, updated_at = :now",
            ConditionExpression="recovery_due = :seen AND #status = :pending "
            "AND (attribute_not_exists(recovery_attempts) OR recovery_attempts < :max)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(
                seen_due,
                **{
                    ":zero": 0,
                    ":one": 1,
                    ":next": recovery_due(),
                    ":now": clock.now_iso(),
                    ":max": settings().recovery_max_attempts,
                },
            ),
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as err:
        if is_condition_failure(err):
            return None
        raise
    return int(response["Attributes"]["recovery_attempts"]["N"])


def _postpone(refund_id: str, seen_due: str, repo: RefundsRepository) -> bool:
    return conditional_write(
        repo.ddb.update_item,
        TableName=repo.table,
        Key=refund_key(refund_id),
        UpdateExpression="SET recovery_due = :next",
        ConditionExpression="recovery_due = :seen AND #status = :pending",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=_values(seen_due, **{":next": recovery_due()}),
    )


def _leave_index(refund_id: str, seen_due: str, repo: RefundsRepository) -> None:
    conditional_write(  # False: moved meanwhile; the next due look decides again
        repo.ddb.update_item,
        TableName=repo.table,
        Key=refund_key(refund_id),
        UpdateExpression="REMOVE unfinished, recovery_due",
        ConditionExpression="recovery_due = :seen",
        ExpressionAttributeValues=to_values({":seen": seen_due}),
    )


def _park(refund_id: str, seen_due: str, attempts: int, repo: RefundsRepository) -> bool:
    """NEEDS_ATTENTION with the reason, out of the index, in one conditional update (the metric once)."""
    reason = (
        f"recovery: refund still PENDING after {attempts} automatic re-drives of its workflow; "
        "its amount stays reserved until it is decided"
    )
    parked = conditional_write(
        repo.ddb.update_item,
        TableName=repo.table,
        Key=refund_key(refund_id),
        UpdateExpression="SET needs_attention = :yes, attention_kind = :kind, attention_reason = :reason, "
        "attention_flagged_at = :now, recovery_gave_up_at = :now, updated_at = :now REMOVE unfinished, recovery_due",
        ConditionExpression="recovery_due = :seen AND #status = :pending AND recovery_attempts >= :max",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=_values(
            seen_due,
            **{
                ":yes": True,
                # its workflow never decided it after the re-drives: whether the PSP has it is a person's finding
                ":kind": AttentionKind.PERSON.value,
                ":reason": reason,
                ":now": clock.now_iso(),
                ":max": settings().recovery_max_attempts,
            },
        ),
    )
    if parked:
        count("RefundRecoveryGaveUp")
        logger.error("recovery gave up: refund parked as NEEDS_ATTENTION", extra={"refund_id": refund_id})
    return parked
