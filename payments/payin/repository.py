"""The payments table: payment events and payment orders.

Item layout (``pk``, ``sk``):

* payment  ``CHECKOUT#<checkout_id>`` / ``PAYMENT`` : :class:`PaymentRecord`
* order    ``ORDER#<payment_order_id>`` / ``ORDER`` : :class:`OrderRecord`

A payment not finished yet also carries ``unfinished`` (``U#<shard>``) and
``recovery_due`` (ISO time): the keys of the sparse ``by_recovery_due`` index that
the recovery function (:mod:`payments.payin.recovery`) queries; both are removed when the
payment is done (``is_payment_done``), so the index holds only the live payments.
``recovery_attempts`` counts the recovery's re-drives (a conditional counter).

A payment and all its orders are created in one transaction, each item
conditioned on ``attribute_not_exists(pk)``: a checkout id or payment order id is
used once, system-wide. Statuses move forward only, through condition
expressions built from :mod:`payments.payin.status`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import (
    batch_get,
    cancelled_by_condition,
    conditional_write,
    from_item,
    get_item,
    is_condition_failure,
    put_new,
    query_all,
    shard_of,
    to_values,
    transact_write,
    transient_as_store_unavailable,
)
from payments.kernel.errors import Conflict, InvariantViolation, NotFound, StatusConflict, must_exist
from payments.payin.models import OrderRecord, PaymentRecord
from payments.payin.status import ORDER_TRANSITIONS, PAYMENT_TRANSITIONS, AttentionKind, OrderStatus, PaymentStatus

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


def payment_key(checkout_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CHECKOUT#{checkout_id}"}, "sk": {"S": "PAYMENT"}}


def order_key(payment_order_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"ORDER#{payment_order_id}"}, "sk": {"S": "ORDER"}}


def recovery_shard(checkout_id: str, shards: int) -> str:
    """The ``unfinished`` value of a payment: its partition of the by_recovery_due index (the one
    shard hash, :func:`payments.kernel.dynamo.shard_of`; recovery reads every shard, so a
    payment stored under an earlier hash is found all the same)."""
    return f"U#{shard_of(checkout_id, shards)}"


def recovery_due(seconds: float | None = None) -> str:
    """The ISO time ``seconds`` (default: the recovery delay) from now: when recovery looks again."""
    delay = settings().recovery_delay_seconds if seconds is None else seconds
    return (clock.now() + timedelta(seconds=delay)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CreateOutcome:
    payment: PaymentRecord
    created: bool  # False: the same request had already stored it (a retry)


def _forward_update(target: OrderStatus, fields: dict[str, str | None]) -> tuple[list[str], list[str], dict[str, Any]]:
    """The SET clauses, the placeholders of the statuses allowed to move to ``target`` (the
    transition table) and the values of an order's forward move: its status, the time, the
    history entry and the given ``fields`` that are not None."""
    now = clock.now_iso()
    values: dict[str, Any] = {":target": target.value, ":now": now, ":entry": [{"status": target.value, "at": now}]}
    sets = ["#status = :target", "updated_at = :now", "status_history = list_append(status_history, :entry)"]
    for name, value in fields.items():
        if value is not None:
            values[f":{name}"] = value
            sets.append(f"{name} = :{name}")
    placeholders = []
    for i, status in enumerate(ORDER_TRANSITIONS[target]):
        values[f":from{i}"] = status.value
        placeholders.append(f":from{i}")
    return sets, placeholders, values


class PaymentsRepository:
    def __init__(self, table: str | None = None, client: Any = None):
        self.table = table or settings().payments_table
        self.ddb = client or aws.client("dynamodb")

    # --- create ---------------------------------------------------------------
    def create(self, payment: PaymentRecord, orders: list[OrderRecord]) -> CreateOutcome:
        """Store the payment event and its orders atomically, or find the identical earlier one."""
        now = clock.now_iso()
        payment = payment.model_copy(update={"created_at": now, "updated_at": now})
        # the payment enters the recovery index at once: if nothing finishes it before it is due
        # (a crash before the workflow started, an execution lost), the recovery re-drives it
        recovery = {
            "unfinished": recovery_shard(payment.checkout_id, settings().recovery_shards),
            "recovery_due": recovery_due(),
        }
        items = [
            {"pk": f"CHECKOUT#{payment.checkout_id}", "sk": "PAYMENT", **payment.model_dump(mode="json"), **recovery}
        ]
        for order in orders:
            order = order.model_copy(
                update={
                    "created_at": now,
                    "updated_at": now,
                    "status_history": [{"status": OrderStatus.NOT_STARTED.value, "at": now}],
                }
            )
            items.append({"pk": f"ORDER#{order.payment_order_id}", "sk": "ORDER", **order.model_dump(mode="json")})
        refusal = transact_write(
            self.ddb,
            [put_new(self.table, item) for item in items],
        )
        if refusal is None:
            return CreateOutcome(payment, created=True)
        existing = self.find(payment.checkout_id)
        if existing is not None:
            if existing.request_fingerprint == payment.request_fingerprint:
                return CreateOutcome(existing, created=False)
            raise Conflict(f"checkout '{payment.checkout_id}' already exists", field="checkout_id") from refusal
        for index in range(1, len(items)):
            if cancelled_by_condition(refusal, index):
                raise Conflict(
                    f"payment_order_id '{orders[index - 1].payment_order_id}' is already used by another checkout",
                    field=f"payment_orders[{index - 1}].payment_order_id",
                ) from refusal
        raise refusal

    # --- read -----------------------------------------------------------------
    def find(self, checkout_id: str) -> PaymentRecord | None:
        item = get_item(self.ddb, self.table, payment_key(checkout_id))
        return PaymentRecord.model_validate(_strip_keys(item)) if item else None

    def get(self, checkout_id: str) -> PaymentRecord:
        return must_exist(self.find(checkout_id), f"no payment with checkout_id '{checkout_id}'")

    def find_order(self, payment_order_id: str) -> OrderRecord | None:
        item = get_item(self.ddb, self.table, order_key(payment_order_id))
        return OrderRecord.model_validate(_strip_keys(item)) if item else None

    def get_order(self, payment_order_id: str) -> OrderRecord:
        return must_exist(self.find_order(payment_order_id), f"no payment order '{payment_order_id}'")

    def orders_of(self, payment: PaymentRecord) -> list[OrderRecord]:
        """The payment's orders, in request order.

        One ``batch_get`` (strongly consistent, unprocessed keys asked again with a backoff, all or
        nothing): a throttled read raises StoreUnavailable (503), so only orders that are really
        absent are NotFound (404)."""
        ids = list(payment.payment_order_ids)
        items = batch_get(self.ddb, self.table, [{"pk": f"ORDER#{i}", "sk": "ORDER"} for i in ids])
        found = {
            record.payment_order_id: record for record in (OrderRecord.model_validate(_strip_keys(i)) for i in items)
        }
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"payment '{payment.checkout_id}' lacks stored orders {missing}")
        return [found[i] for i in ids]

    def scan_payments(self) -> Iterator[PaymentRecord]:
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["sk"] == "PAYMENT":
                yield PaymentRecord.model_validate(_strip_keys(item))

    def scan_orders(self) -> Iterator[OrderRecord]:
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["sk"] == "ORDER":
                yield OrderRecord.model_validate(_strip_keys(item))

    # --- payment status ---------------------------------------------------------
    def move_payment(
        self,
        checkout_id: str,
        target: PaymentStatus,
        *,
        is_payment_done: bool = False,
        recheck_at: str | None = None,
        stop_recovery: bool = False,
    ) -> bool:
        """Move the payment status forward; returns False, changing nothing, if it may not.

        Entering the status it already has is allowed (a retried finalize), and
        ``is_payment_done`` only ever goes from false to true. A payment done leaves the
        recovery index; ``recheck_at`` (a payment with parked orders) moves its due time;
        ``stop_recovery`` takes it out of the index undone (a human decides: a refusal, not an outage).
        """
        values: dict[str, Any] = {":target": target.value, ":now": clock.now_iso()}
        sets = ["#status = :target", "updated_at = :now"]
        removes: list[str] = []
        if is_payment_done:
            sets.append("is_payment_done = :done")
            values[":done"] = True
            removes = ["unfinished", "recovery_due"]
        elif stop_recovery:
            removes = ["unfinished", "recovery_due"]
        elif recheck_at is not None:
            sets.append("recovery_due = :due")
            values[":due"] = recheck_at
        if target.is_final:
            sets.append("finalized_at = if_not_exists(finalized_at, :now)")
        placeholders = [":target"]
        for i, status in enumerate(PAYMENT_TRANSITIONS[target]):
            values[f":from{i}"] = status.value
            placeholders.append(f":from{i}")
        return conditional_write(
            self.ddb.update_item,
            TableName=self.table,
            Key=payment_key(checkout_id),
            UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            ConditionExpression=f"attribute_exists(pk) AND #status IN ({', '.join(placeholders)})",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values(values),
        )

    def claim_start(self, checkout_id: str) -> bool:
        """``PENDING -> PROCESSING``, strictly: the conditional "started" marker of a checkout.

        Whoever wins it starts the workflow; a retry that finds the payment PROCESSING (or
        beyond) does not start another execution (Express starts are not deduplicated by
        name). A crash between this write and the start leaves the payment in the recovery
        index, which re-drives it when it is due.
        """
        return conditional_write(
            self.ddb.update_item,
            TableName=self.table,
            Key=payment_key(checkout_id),
            UpdateExpression="SET #status = :processing, updated_at = :now",
            ConditionExpression="#status = :pending",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values(
                {
                    ":processing": PaymentStatus.PROCESSING.value,
                    ":pending": PaymentStatus.PENDING.value,
                    ":now": clock.now_iso(),
                }
            ),
        )

    # --- order status -------------------------------------------------------------
    def move_order(
        self,
        payment_order_id: str,
        target: OrderStatus,
        *,
        psp_reference: str | None = None,
        charged_at: str | None = None,
        failure_reason: str | None = None,
        signal: str | None = None,
    ) -> OrderRecord:
        """Move an order's status forward, conditionally; return the stored order afterwards.

        A repeat of the transition that already happened (same target, same PSP
        reference) changes nothing: our own retries repeat silently, while an
        external ``signal`` (a PSP notification, named by its source) that
        repeats is recorded as an anomaly. Any other move out of a final status
        is refused: it is recorded as an anomaly and :class:`StatusConflict` is raised.
        """
        fields = {"psp_reference": psp_reference, "charged_at": charged_at, "failure_reason": failure_reason}
        sets, placeholders, values = _forward_update(target, fields)
        if not placeholders:  # no status may move to the target (NOT_STARTED): refuse without writing
            current = self.get_order(payment_order_id)
            self.record_anomaly(payment_order_id, f"refused {current.status.value} -> {target.value}")
            raise StatusConflict(
                f"order {payment_order_id} is {current.status.value}; refusing to move it to {target.value}"
            )
        try:
            with transient_as_store_unavailable():
                response = self.ddb.update_item(
                    TableName=self.table,
                    Key=order_key(payment_order_id),
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression=f"attribute_exists(pk) AND #status IN ({', '.join(placeholders)})",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues=to_values(values),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            current = self.get_order(payment_order_id)
            if current.status is target and (psp_reference is None or current.psp_reference == psp_reference):
                if signal is not None:
                    self.record_anomaly(payment_order_id, f"duplicate {signal}: {target.value}")
                return current  # the same transition again: harmless, not applied twice
            self.record_anomaly(
                payment_order_id,
                f"refused {current.status.value} -> {target.value}"
                + (f" (psp_reference {psp_reference})" if psp_reference else "")
                + (f" from {signal}" if signal else ""),
            )
            raise StatusConflict(
                f"order {payment_order_id} is {current.status.value}; refusing to move it to {target.value}"
            ) from err
        return OrderRecord.model_validate(_strip_keys(from_item(response["Attributes"])))

    def record_anomaly(self, payment_order_id: str, what: str) -> None:
        append_anomaly(self.ddb, self.table, order_key(payment_order_id), what)

    def flag_attention(
        self, payment_order_id: str, reason: str, kind: AttentionKind = AttentionKind.PERSON, **facts: int | str
    ) -> bool:
        """Park an order as NEEDS_ATTENTION of ``kind`` (see :func:`set_attention` and the runbook)."""
        return set_attention(self.ddb, self.table, order_key(payment_order_id), reason, kind, **facts)

    def clear_attention(self, payment_order_id: str, resolution: str) -> bool:
        """Clear a re-drivable NEEDS_ATTENTION (``REDRIVE``) on an order that is settled now (FAILED, or
        SUCCESS with its wallet credit and ledger transaction); keep the reason and record when and how.
        False if it is not settled, or if its flag needs a person (``PERSON``, or stored without a kind):
        only :func:`resolve_attention` closes that one."""
        return conditional_write(
            self.ddb.update_item,
            TableName=self.table,
            Key=order_key(payment_order_id),
            UpdateExpression="SET needs_attention = :no, attention_resolved_at = :now, attention_resolution = :how, "
            "updated_at = :now REMOVE attention_resolved_by",
            ConditionExpression="needs_attention = :yes AND attention_kind = :redrive AND "
            "(#status = :failed OR (#status = :success AND wallet_updated = :yes AND ledger_updated = :yes))",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_values(
                {
                    ":no": False,
                    ":yes": True,
                    ":now": clock.now_iso(),
                    ":how": resolution[:500],
                    ":redrive": AttentionKind.REDRIVE.value,
                    ":failed": OrderStatus.FAILED.value,
                    ":success": OrderStatus.SUCCESS.value,
                }
            ),
        )

    def order_flag_update(self, payment_order_id: str, flag: str) -> TransactWriteItemTypeDef:
        """A TransactWriteItems ``Update`` that sets ``wallet_updated``/``ledger_updated``
        on a SUCCESS order, for the wallet and ledger transactions to include."""
        if flag not in ("wallet_updated", "ledger_updated"):
            raise ValueError(f"not an order effect flag: {flag!r}")
        return {
            "Update": {
                "TableName": self.table,
                "Key": order_key(payment_order_id),
                "UpdateExpression": f"SET {flag} = :yes, updated_at = :now",
                "ConditionExpression": "#status = :success",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_values(
                    {":yes": True, ":now": clock.now_iso(), ":success": OrderStatus.SUCCESS.value}
                ),
            }
        }


def append_anomaly(client: Any, table: str, key: dict[str, Any], what: str) -> None:
    """Append ``{what, at}`` to the ``anomalies`` of an existing item of the payments table
    (an order, a refund): what was refused or contradicted, kept for the operator."""
    with transient_as_store_unavailable():
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET anomalies = list_append(if_not_exists(anomalies, :empty), :entry)",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_values({":empty": [], ":entry": [{"what": what, "at": clock.now_iso()}]}),
        )


def set_attention(
    client: Any,
    table: str,
    key: dict[str, Any],
    reason: str,
    kind: AttentionKind = AttentionKind.PERSON,
    **facts: int | str,
) -> bool:
    """Park an existing item of the payments table (an order, a refund) as NEEDS_ATTENTION of ``kind``.

    A flag that needs a person is never turned into a re-drivable one: a ``REDRIVE`` flag meeting an
    open ``PERSON`` flag (or an open flag stored without a kind) leaves it as it is, keeps the new
    reason among the item's anomalies, and answers False. True when the flag is set as asked.
    ``facts``: attributes stored with the flag, in the same write (what the flag was raised for)."""
    now = clock.now_iso()
    values: dict[str, Any] = {":yes": True, ":reason": reason[:1000], ":now": now, ":kind": kind.value}
    values.update({f":fact{n}": value for n, value in enumerate(facts.values())})
    extra = "".join(f", {name} = :fact{n}" for n, name in enumerate(facts))
    condition = "attribute_exists(pk)"
    if kind is AttentionKind.REDRIVE:
        condition += (
            " AND NOT (needs_attention = :yes AND (attribute_not_exists(attention_kind) OR attention_kind <> :kind))"
        )
    if conditional_write(
        client.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="SET needs_attention = :yes, attention_reason = :reason, attention_flagged_at = :now, "
        f"attention_kind = :kind, updated_at = :now{extra}",
        ConditionExpression=condition,
        ExpressionAttributeValues=to_values(values),
    ):
        return True
    if get_item(client, table, key) is None:
        raise NotFound(f"no item {key['pk']['S']} to park")
    append_anomaly(client, table, key, f"parked again ({kind.value}) while a flag for a person is open: {reason[:400]}")
    return False


def resolve_attention(
    client: Any, table: str, key: dict[str, Any], *, flagged_at: str | None, who: str, note: str
) -> bool:
    """A person closes the open NEEDS_ATTENTION of an item (an order, a refund) deliberately, whatever
    its kind: one conditional write that records who, when and why, on the item (``attention_resolved_*``)
    and in its ``attention_log`` (one entry per flag closed, with the flag's kind and reason).

    Conditional on the flag being open and still the one the caller read (``attention_flagged_at``):
    False, changing nothing, when it is closed already or was parked again meanwhile."""
    item = get_item(client, table, key)
    if item is None:
        raise NotFound(f"no item {key['pk']['S']}")
    now = clock.now_iso()
    entry = {
        "kind": AttentionKind.of(item.get("attention_kind")).value,
        "reason": str(item.get("attention_reason") or ""),
        "flagged_at": flagged_at or "",
        "resolved_at": now,
        "resolved_by": who[:200],
        "note": note[:1000],
    }
    values: dict[str, Any] = {
        ":no": False,
        ":yes": True,
        ":now": now,
        ":who": who[:200],
        ":note": note[:1000],
        ":empty": [],
        ":entry": [entry],
    }
    seen = "attribute_not_exists(attention_flagged_at)"
    if flagged_at is not None:
        seen, values[":seen"] = "attention_flagged_at = :seen", flagged_at
    return conditional_write(
        client.update_item,
        TableName=table,
        Key=key,
        UpdateExpression="SET needs_attention = :no, attention_resolved_at = :now, attention_resolved_by = :who, "
        "attention_resolution = :note, updated_at = :now, "
        "attention_log = list_append(if_not_exists(attention_log, :empty), :entry)",
        ConditionExpression=f"needs_attention = :yes AND {seen}",
        ExpressionAttributeValues=to_values(values),
    )


def _strip_keys(item: dict[str, Any] | None) -> dict[str, Any]:
    if item is None:
        raise InvariantViolation("a stored item was expected here and is absent")
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}
