"""Refunds, chargebacks and chargeback reversals, stored in the payments table (issue 18).

Item layout (``pk``, ``sk``), beside the payments and orders of :mod:`payments.payin.repository`:

* refund     ``REFUND#<refund_id>`` / ``REFUND``: :class:`RefundRecord`; until its workflow has done its
  part (decided, or received by the PSP) also ``unfinished`` and ``recovery_due``, the keys of the
  recovery index (:mod:`payments.refunds.recovery`)
* dispute    ``CHARGEBACK#<dispute psp_reference>`` / ``CHARGEBACK``: payment_order_id, amount_minor,
  currency, booked_at; once reversed ``reversed_minor``, ``reversed_at``; once charged back again
  after the reversal ``second_minor``, ``second_at``

and on the order item (:class:`OrderRecord`): ``refund_reserved_minor`` (pending + succeeded
refunds), ``refunded_minor`` (succeeded), ``chargeback_minor``, ``chargeback_reversed_minor``.

**The reservation.** Accepting a refund is one ``TransactWriteItems``: put the refund
(``attribute_not_exists``) and add its amount to the order's ``refund_reserved_minor`` on the
condition that the order is ``SUCCESS`` and that what it gives back stays within the charge:
refunds reserved (pending + succeeded) + chargebacks still standing (booked, second ones
included, minus reversals) + this refund <= charged (:func:`refundable_minor`). DynamoDB cannot
add in a condition, so the limit is computed from the order's immutable charged amount and the
dispute counters as read, and the condition pins those counters to the values read (a dispute
step booked meanwhile fails it, and the reservation is tried again on the order as it is then).
Whatever arrives concurrently, the condition is evaluated on the stored item, so pending +
succeeded refunds never exceed what was charged minus the chargebacks standing.

**The outcome, once.** Deciding a refund is one transaction gated on ``status = PENDING``:
SUCCEEDED adds to ``refunded_minor``, puts the wallet adjustment (marker + balance shard) and
appends the balanced reversing ledger transaction; FAILED releases the reservation. Whichever
signal comes first (the PSP's answer or its REFUND notification) wins; the other fails the
condition and changes nothing (a contradiction is recorded as an anomaly).

**Disputes.** A chargeback is one transaction gated on its dispute item not existing (wallet
and ledger once); a reversal is one gated on the dispute existing and not yet reversed; a second
chargeback (Adyen's ``SECOND_CHARGEBACK``: the defence was rejected after all) one gated on the
reversal booked and no second chargeback yet. All three are keyed by the dispute's PSP reference,
which Adyen keeps for every notification of one dispute. A chargeback that, with the refunds,
gives back more than was charged is booked (it happened at the PSP) and the order is flagged
NEEDS_ATTENTION; the second chargeback adds to the order's ``chargeback_minor`` and is checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from payments.accounts.commission import refund_share
from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import (
    cancellation_codes,
    cancelled_by_condition,
    conditional_write,
    get_item,
    put_new,
    scan_sort_key,
    to_values,
    transact_write,
)
from payments.kernel.errors import Conflict, InvariantViolation, PaymentError, TransientError, must_exist
from payments.kernel.money import Money
from payments.kernel.observability import count, logger
from payments.payin.models import OrderRecord
from payments.payin.repository import (
    PaymentsRepository,
    append_anomaly,
    order_key,
    recovery_due,
    recovery_shard,
    set_attention,
)
from payments.payin.status import AttentionKind, OrderStatus
from payments.refunds.models import RefundRecord, RefundStatus

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


class OrderNotRefundable(PaymentError):
    """Only a SUCCESS order can be refunded (409)."""


class RefundExceedsRemaining(PaymentError):
    """The refund would take the order's refunds over what was charged (422)."""

    def __init__(
        self, message: str, remaining_minor: int, currency: str | None = None, payment_order_id: str | None = None
    ):
        super().__init__(message)
        self.remaining_minor = remaining_minor
        self.currency = currency  # of the order: the API says how much remains refundable in it
        self.payment_order_id = payment_order_id  # ... and on which order


class ChargebackNotBooked(TransientError):
    """A reversal arrived before its chargeback, or a second chargeback before its reversal (out of
    order): retried later, never guessed."""


def refundable_minor(order: OrderRecord) -> int:
    """What can still be refunded on ``order``: the charge minus refunds reserved (pending and
    succeeded) minus chargebacks still standing (a reversed chargeback no longer counts, a second
    chargeback counts again); never below zero."""
    standing = order.chargeback_minor - order.chargeback_reversed_minor
    return max(0, order.amount_minor - order.refund_reserved_minor - standing)


#: attempts of a reservation whose order's dispute counters moved between the read and the write
RESERVATION_ATTEMPTS = 3


def refund_key(refund_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"REFUND#{refund_id}"}, "sk": {"S": "REFUND"}}


def dispute_key(dispute_reference: str) -> dict[str, Any]:
    return {"pk": {"S": f"CHARGEBACK#{dispute_reference}"}, "sk": {"S": "CHARGEBACK"}}


@dataclass(frozen=True)
class Reserved:
    refund: RefundRecord
    created: bool  # False: the same request had stored it before (a retry)


@dataclass(frozen=True)
class Decided:
    refund: RefundRecord
    applied: bool  # False: it had been decided before (by this signal or the other one)


@dataclass(frozen=True)
class DisputeStep:
    """A later step of a booked dispute: what it records on the dispute item, what it needs there first,
    the order counter it adds to, and which way the money goes."""

    kind: str  # the wallet and ledger ``kind``; lower-cased, the adjustment id's prefix
    attribute: str  # on the dispute item: the amount of this step, set once
    attribute_at: str
    requires: str  # on the dispute item: the amount this step may not exceed, booked before it
    requires_what: str
    order_counter: str
    to_seller: bool
    booked_metric: str
    early_metric: str


#: ``CHARGEBACK_REVERSED``: the defence won, the chargeback comes back to the seller
REVERSAL = DisputeStep(
    kind="CHARGEBACK_REVERSED",
    attribute="reversed_minor",
    attribute_at="reversed_at",
    requires="amount_minor",
    requires_what="its chargeback",
    order_counter="chargeback_reversed_minor",
    to_seller=True,
    booked_metric="ChargebackReversed",
    early_metric="ReversalBeforeChargeback",
)
#: ``SECOND_CHARGEBACK``: the defence was rejected after the reversal, the money goes again
SECOND_CHARGEBACK = DisputeStep(
    kind="SECOND_CHARGEBACK",
    attribute="second_minor",
    attribute_at="second_at",
    requires="reversed_minor",
    requires_what="its reversal",
    order_counter="chargeback_minor",
    to_seller=False,
    booked_metric="SecondChargebackBooked",
    early_metric="SecondChargebackBeforeReversal",
)


@dataclass(frozen=True)
class Booked:
    applied: bool  # False: a duplicate; nothing moved
    needs_attention: bool = False
    anomaly: str | None = None


class RefundsRepository:
    def __init__(
        self,
        table: str | None = None,
        client: Any = None,
        payments: PaymentsRepository | None = None,
        wallets: WalletRepository | None = None,
        ledger: LedgerRepository | None = None,
    ):
        self.table = table or settings().payments_table
        self.ddb = client or aws.client("dynamodb")
        self.payments = payments or PaymentsRepository(table=self.table, client=self.ddb)
        self.wallets = wallets or WalletRepository(client=self.ddb, payments=self.payments)
        self.ledger = ledger or LedgerRepository(client=self.ddb, payments=self.payments)

    # --- reservation --------------------------------------------------------------------
    def reservation_condition(self) -> str:
        """The condition on the order that makes the reservation safe under concurrency: SUCCESS, the
        dispute counters as read (``:chargeback``, ``:reversed``: absent is 0), and the refunds
        reserved at most ``:limit`` = charged - standing chargebacks - this refund."""
        return (
            "attribute_exists(pk) AND #status = :success"
            " AND (attribute_not_exists(chargeback_minor) OR chargeback_minor = :chargeback)"
            " AND (attribute_not_exists(chargeback_reversed_minor) OR chargeback_reversed_minor = :reversed)"
            " AND (attribute_not_exists(refund_reserved_minor) OR refund_reserved_minor <= :limit)"
        )

    def reserve(self, refund: RefundRecord, order: OrderRecord) -> Reserved:
        """Store a PENDING refund and reserve its amount on the order, or find the identical one."""
        if refund.amount_minor <= 0:
            raise RefundExceedsRemaining(
                "a refund moves a positive amount", refundable_minor(order), order.currency, order.payment_order_id
            )
        now = clock.now_iso()
        refund = refund.model_copy(update={"status": RefundStatus.PENDING, "created_at": now, "updated_at": now})
        # the refund enters the recovery index at once: if its workflow does not start or dies before it
        # decides the refund, the recovery sweep re-drives it when it is due (payments.refunds.recovery)
        recovery = {
            "unfinished": recovery_shard(refund.refund_id, settings().recovery_shards),
            "recovery_due": recovery_due(),
        }
        item = {"pk": f"REFUND#{refund.refund_id}", "sk": "REFUND", **refund.model_dump(mode="json"), **recovery}
        for _ in range(RESERVATION_ATTEMPTS):
            standing = order.chargeback_minor - order.chargeback_reversed_minor
            limit = order.amount_minor - standing - refund.amount_minor
            if limit < 0:  # it exceeds what the order can give back whatever it holds: refused without writing
                break
            update = (
                "SET refund_reserved_minor = if_not_exists(refund_reserved_minor, :zero) + :amount, updated_at = :now"
            )
            condition = self.reservation_condition()
            values = {
                ":zero": 0,
                ":amount": refund.amount_minor,
                ":now": now,
                ":success": OrderStatus.SUCCESS.value,
                ":limit": limit,
                ":chargeback": order.chargeback_minor,
                ":reversed": order.chargeback_reversed_minor,
            }
            refusal = transact_write(
                self.ddb,
                [
                    put_new(self.table, item),
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": order_key(order.payment_order_id),
                            "UpdateExpression": update,
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": {"#status": "status"},
                            # only the values the expressions use (DynamoDB refuses unused ones)
                            "ExpressionAttributeValues": to_values(
                                {k: v for k, v in values.items() if k in update or k in condition}
                            ),
                        }
                    },
                ],
            )
            if refusal is None:
                return Reserved(refund, created=True)
            if cancelled_by_condition(refusal, 0):
                existing = self.get(refund.refund_id)
                if existing.request_fingerprint == refund.request_fingerprint:
                    return Reserved(existing, created=False)
                raise Conflict(
                    f"refund_id '{refund.refund_id}' is already used by another refund", field="refund_id"
                ) from refusal
            if not cancelled_by_condition(refusal, 1):
                raise refusal
            current = self.payments.get_order(order.payment_order_id)
            if (current.chargeback_minor, current.chargeback_reversed_minor) == (
                order.chargeback_minor,
                order.chargeback_reversed_minor,
            ):
                break  # refused by the status or the bound, not by a dispute step booked meanwhile
            order = current  # a dispute step was booked between the read and the write: try on the order as it is
        # the order refused the reservation: say why, from the order as it is now
        found = self.find(refund.refund_id)
        if found is not None and found.request_fingerprint == refund.request_fingerprint:
            return Reserved(found, created=False)
        current = self.payments.get_order(order.payment_order_id)
        if current.status is not OrderStatus.SUCCESS:
            raise OrderNotRefundable(
                f"order {current.payment_order_id} is {current.status.value}; only a SUCCESS order can be refunded"
            )
        remaining = refundable_minor(current)
        raise RefundExceedsRemaining(
            f"order {current.payment_order_id} has {remaining} minor units left to refund; {refund.amount_minor} asked",
            remaining,
            current.currency,
            current.payment_order_id,
        )

    # --- read ---------------------------------------------------------------------------
    def find(self, refund_id: str) -> RefundRecord | None:
        item = get_item(self.ddb, self.table, refund_key(refund_id))
        return RefundRecord.model_validate(_strip(item)) if item else None

    def get(self, refund_id: str) -> RefundRecord:
        return must_exist(self.find(refund_id), f"no refund '{refund_id}'")

    def find_dispute(self, dispute_reference: str) -> dict[str, Any] | None:
        item = get_item(self.ddb, self.table, dispute_key(dispute_reference))
        return _strip(item) if item else None

    def scan_refunds(self) -> list[RefundRecord]:
        return [RefundRecord.model_validate(_strip(i)) for i in scan_sort_key(self.ddb, self.table, "REFUND")]

    def scan_disputes(self) -> list[dict[str, Any]]:
        return [_strip(i) for i in scan_sort_key(self.ddb, self.table, "CHARGEBACK")]

    # --- the outcome, exactly once ------------------------------------------------------------
    def decision_condition(self) -> str:
        """The condition on the refund that makes its outcome happen once: the first signal (the
        PSP's answer or its REFUND notification) wins, and with it the one wallet debit and ledger
        reversal (or the one release of the reservation); any later signal changes nothing."""
        return "#status = :pending"

    def decide(
        self,
        refund_id: str,
        succeeded: bool,
        *,
        psp_reference: str | None = None,
        failure_reason: str | None = None,
        source: str = "psp",
    ) -> Decided:
        """PENDING -> SUCCEEDED (wallet, ledger, refunded amount) or FAILED (reservation released)."""
        refund = self.get(refund_id)
        target = RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED
        now = clock.now_iso()
        values: dict[str, Any] = {
            ":target": target.value,
            ":pending": RefundStatus.PENDING.value,
            ":now": now,
            ":source": source,
        }
        sets = ["#status = :target", "updated_at = :now", "decided_by = :source"]
        if psp_reference:
            values[":ref"] = psp_reference
            sets.append("psp_reference = :ref")
        if failure_reason and not succeeded:
            values[":reason"] = failure_reason[:500]
            sets.append("failure_reason = :reason")
        items: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": refund_key(refund_id),
                    # decided: out of the recovery index (nothing left for its workflow to do)
                    "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE unfinished, recovery_due",
                    "ConditionExpression": self.decision_condition(),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": to_values(values),
                }
            }
        ]
        if succeeded:
            order = self.payments.get_order(refund.payment_order_id)
            # the commission it gives back is cumulative over the order's refunds (no rounding drift):
            # computed from the refunded amount read here, which the order's update requires unchanged
            share = refund_share(order.money, order.commission, order.refunded, refund.money)
            items.append(self._refunded_add(order, refund.amount_minor))
            adjustment = f"refund:{refund_id}"
            if refund.money != share:  # the seller's part (all of it when no commission is given back)
                items += self.wallets.adjustment_items(
                    adjustment,
                    "REFUND",
                    refund.payment_order_id,
                    refund.seller_account,
                    -(refund.money - share),
                    commission=share,
                )
            items += self.ledger.adjustment_items(
                adjustment, "REFUND", order, refund.money, psp_reference, to_seller=False, commission_share=share
            )
        else:
            items.append(self._order_add(refund.payment_order_id, "refund_reserved_minor", -refund.amount_minor))
        refusal = transact_write(self.ddb, items)
        if (
            refusal is not None
            and succeeded
            and not cancelled_by_condition(refusal, 0)
            and cancelled_by_condition(refusal, 1)  # another refund of the order was decided meanwhile
        ):
            return self.decide(
                refund_id, succeeded, psp_reference=psp_reference, failure_reason=failure_reason, source=source
            )
        if refusal is not None:
            if not cancelled_by_condition(refusal, 0):
                raise InvariantViolation(
                    f"refund {refund_id} is PENDING but its effects exist: {cancellation_codes(refusal)}"
                ) from refusal
            current = self.get(refund_id)
            if current.status is not target or (
                psp_reference and current.psp_reference and current.psp_reference != psp_reference
            ):
                self.record_anomaly(
                    refund_id,
                    f"{source} said {target.value}"
                    + (f" ({psp_reference})" if psp_reference else "")
                    + f" after {current.status.value} by {current.decided_by}",
                )
            return Decided(current, applied=False)
        count("RefundSucceeded" if succeeded else "RefundFailed")
        return Decided(self.get(refund_id), applied=True)

    def record_anomaly(self, refund_id: str, what: str) -> None:
        count("NotificationAnomaly")
        logger.warning("refund anomaly", extra={"refund_id": refund_id, "what": what})
        append_anomaly(self.ddb, self.table, refund_key(refund_id), what[:500])

    def record_psp_reference(self, refund_id: str, psp_reference: str | None) -> RefundRecord:
        """The PSP's reference of a refund it received but has not decided yet (Adyen): kept on the
        PENDING refund, conditionally (a decided refund, or one that has a reference, is left as it is)."""
        if psp_reference:
            conditional_write(  # False: decided already, or it has its reference; left as it is
                self.ddb.update_item,
                TableName=self.table,
                Key=refund_key(refund_id),
                # received by the PSP, which decides it (its REFUND notification): the workflow's part is
                # done, so the refund leaves the recovery index
                UpdateExpression="SET psp_reference = :ref, updated_at = :now REMOVE unfinished, recovery_due",
                ConditionExpression="#status = :pending AND attribute_not_exists(psp_reference)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_values(
                    {":ref": psp_reference, ":pending": RefundStatus.PENDING.value, ":now": clock.now_iso()}
                ),
            )
        return self.get(refund_id)

    def flag_attention(
        self, refund_id: str, reason: str, kind: AttentionKind = AttentionKind.PERSON, **facts: int | str
    ) -> bool:
        """Park a refund as NEEDS_ATTENTION of ``kind`` (see ``payments.payin.repository.set_attention``);
        ``facts`` are stored in the same write."""
        return set_attention(self.ddb, self.table, refund_key(refund_id), reason, kind, **facts)

    # --- disputes -----------------------------------------------------------------------------
    def book_chargeback(self, order: OrderRecord, dispute_reference: str, amount: Money) -> Booked:
        """Take a chargeback off the seller (wallet and ledger), once per dispute reference."""
        amount_minor, currency = amount.minor, amount.currency
        adjustment = f"chargeback:{dispute_reference}"
        if currency != order.currency or amount_minor <= 0:
            return Booked(
                applied=False, anomaly=f"chargeback of {amount_minor} {currency} on an order in {order.currency}"
            )
        now = clock.now_iso()
        dispute = {
            "pk": f"CHARGEBACK#{dispute_reference}",
            "sk": "CHARGEBACK",
            "dispute_reference": dispute_reference,
            "payment_order_id": order.payment_order_id,
            "seller_account": order.seller_account,
            "amount_minor": amount_minor,
            "currency": currency,
            "booked_at": now,
        }
        items: list[TransactWriteItemTypeDef] = [
            put_new(self.table, dispute),
            {
                "Update": {
                    "TableName": self.table,
                    "Key": order_key(order.payment_order_id),
                    "UpdateExpression": "SET chargeback_minor = if_not_exists(chargeback_minor, :zero) + :amount, updated_at = :now",
                    "ConditionExpression": "#status = :success",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": to_values(
                        {":zero": 0, ":amount": amount_minor, ":now": now, ":success": OrderStatus.SUCCESS.value}
                    ),
                }
            },
            *self.wallets.adjustment_items(
                adjustment, "CHARGEBACK", order.payment_order_id, order.seller_account, -amount
            ),
            *self.ledger.adjustment_items(adjustment, "CHARGEBACK", order, amount, dispute_reference, to_seller=False),
        ]
        refusal = transact_write(self.ddb, items)
        applied = refusal is None
        if refusal is not None:
            if cancelled_by_condition(refusal, 0):
                existing = self.find_dispute(dispute_reference)
                if existing is None or (
                    existing["payment_order_id"],
                    existing["amount_minor"],
                    existing["currency"],
                ) != (order.payment_order_id, amount_minor, currency):
                    return Booked(
                        applied=False, anomaly=f"chargeback {dispute_reference} contradicts the one booked: {existing}"
                    )
            elif cancelled_by_condition(refusal, 1):
                return Booked(applied=False, anomaly=f"chargeback {dispute_reference} on an order that is not SUCCESS")
            else:
                raise refusal
        if applied:
            count("ChargebackBooked")
        # checked on a duplicate too: a crash between the booking and the flag is repaired by the redelivery
        return Booked(applied=applied, needs_attention=self._flag_if_overpaid(order.payment_order_id))

    def _flag_if_overpaid(self, payment_order_id: str) -> bool:
        order = self.payments.get_order(payment_order_id)
        given_back = order.refund_reserved_minor + order.chargeback_minor - order.chargeback_reversed_minor
        if given_back <= order.amount_minor:
            return False
        # a redelivery does not reopen what a person closed; more money back does
        if not order.person_told_of_money_back(given_back):
            reason = (
                f"chargeback on a refunded order: refunds {order.refund_reserved_minor} + chargebacks "
                f"{order.chargeback_minor - order.chargeback_reversed_minor} > charged {order.amount_minor}; claim to pursue"
            )
            self.payments.flag_attention(
                payment_order_id, reason, AttentionKind.PERSON, overpaid_flagged_minor=given_back
            )
            count("NeedsAttention")
            count("ChargebackOnRefundedOrder")
            logger.error("chargeback on a refunded order", extra={"payment_order_id": payment_order_id})
        return True

    def reverse_chargeback(self, order: OrderRecord, dispute_reference: str, amount: Money) -> Booked:
        """Give a chargeback back to the seller, once; before its chargeback it raises (retried later)."""
        return self._dispute_step(order, dispute_reference, amount, REVERSAL)

    def book_second_chargeback(self, order: OrderRecord, dispute_reference: str, amount: Money) -> Booked:
        """The defence was rejected after the reversal (``SECOND_CHARGEBACK``): take the money off the
        seller again, once per dispute; before its reversal it raises (retried later). Like a first
        chargeback it is booked whatever the refunds, and flags the order when they exceed the charge."""
        booked = self._dispute_step(order, dispute_reference, amount, SECOND_CHARGEBACK)
        if booked.anomaly:
            return booked
        return Booked(applied=booked.applied, needs_attention=self._flag_if_overpaid(order.payment_order_id))

    def _dispute_step(self, order: OrderRecord, dispute_reference: str, amount: Money, step: DisputeStep) -> Booked:
        """One later step of a booked dispute (:data:`REVERSAL`, :data:`SECOND_CHARGEBACK`), once: the
        dispute item records it (``attribute_not_exists``), the order's counter, the wallet and the
        ledger move in the same transaction. A step whose prerequisite is not booked yet raises
        :class:`ChargebackNotBooked` (out-of-order delivery: the queue retries it later)."""
        amount_minor, currency = amount.minor, amount.currency
        dispute = self.find_dispute(dispute_reference)
        if dispute is None or dispute.get(step.requires) is None:
            count(step.early_metric)
            raise ChargebackNotBooked(f"{step.kind} of dispute {dispute_reference} arrived before {step.requires_what}")
        if dispute.get(step.attribute) is not None:
            if dispute[step.attribute] == amount_minor:
                return Booked(applied=False)
            return Booked(
                applied=False,
                anomaly=f"{step.kind} of {amount_minor} contradicts the one booked ({dispute[step.attribute]})",
            )
        if (
            dispute["payment_order_id"] != order.payment_order_id
            or currency != dispute["currency"]
            or not 0 < amount_minor <= dispute[step.requires]
        ):
            return Booked(
                applied=False,
                anomaly=f"{step.kind} of {amount_minor} {currency} does not fit dispute {dispute_reference}",
            )
        adjustment = f"{step.kind.lower()}:{dispute_reference}"
        items: list[TransactWriteItemTypeDef] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": dispute_key(dispute_reference),
                    "UpdateExpression": f"SET {step.attribute} = :amount, {step.attribute_at} = :now",
                    "ConditionExpression": f"attribute_exists({step.requires}) AND attribute_not_exists({step.attribute})",
                    "ExpressionAttributeValues": to_values({":amount": amount_minor, ":now": clock.now_iso()}),
                }
            },
            self._order_add(order.payment_order_id, step.order_counter, amount_minor),
            *self.wallets.adjustment_items(
                adjustment,
                step.kind,
                order.payment_order_id,
                order.seller_account,
                amount if step.to_seller else -amount,
            ),
            *self.ledger.adjustment_items(
                adjustment, step.kind, order, amount, dispute_reference, to_seller=step.to_seller
            ),
        ]
        refusal = transact_write(self.ddb, items)
        if refusal is not None:
            if cancelled_by_condition(refusal, 0):
                return self._dispute_step(order, dispute_reference, amount, step)  # decided concurrently
            raise refusal
        count(step.booked_metric)
        return Booked(applied=True)

    def _refunded_add(self, order: OrderRecord, amount_minor: int) -> TransactWriteItemTypeDef:
        """Add a succeeded refund to the order's ``refunded_minor``, on the condition that it is still
        what was read (the commission share was computed from it); a concurrent decision cancels the
        transaction and the refund is decided again from the new amount."""
        before = order.refunded_minor
        unchanged = "refunded_minor = :before" + (" OR attribute_not_exists(refunded_minor)" if before == 0 else "")
        return {
            "Update": {
                "TableName": self.table,
                "Key": order_key(order.payment_order_id),
                "UpdateExpression": "SET refunded_minor = :after, updated_at = :now",
                "ConditionExpression": f"attribute_exists(pk) AND ({unchanged})",
                "ExpressionAttributeValues": to_values(
                    {":before": before, ":after": before + amount_minor, ":now": clock.now_iso()}
                ),
            }
        }

    def _order_add(self, payment_order_id: str, attribute: str, delta: int) -> TransactWriteItemTypeDef:
        return {
            "Update": {
                "TableName": self.table,
                "Key": order_key(payment_order_id),
                "UpdateExpression": f"SET {attribute} = if_not_exists({attribute}, :zero) + :delta, updated_at = :now",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": to_values({":zero": 0, ":delta": delta, ":now": clock.now_iso()}),
            }
        }


def _strip(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk")}
