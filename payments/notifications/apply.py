"""What each notification does, forward only (issue 18; CONTRACT.md, POST /v1/psp/notifications).

* ``AUTHORISATION`` settles an order whose outcome was unknown (success: SUCCESS, then the
  idempotent wallet credit and ledger append; otherwise FAILED);
* ``REFUND`` decides a pending refund by ``success`` (first outcome wins);
* ``CHARGEBACK`` takes ``amount`` off the seller (wallet and ledger, once per dispute; before its
  charge is settled here: retried later, see :class:`ChargeNotSettled`);
* ``CHARGEBACK_REVERSED`` gives it back (once; before its chargeback: retried later);
* ``SECOND_CHARGEBACK`` takes it off again (once; before its reversal: retried later);
* ``REFUND_FAILED`` and ``REFUNDED_REVERSED`` (a refund that did not reach the shopper after all)
  park the refund NEEDS_ATTENTION with an alarm and mark it returned (``returned_reference``,
  ``returned_at``): nothing moves by itself.

Anything else is stored and IGNORED. An item for another merchant account, for an unknown
order or refund, or contradicting what is stored is an ANOMALY: recorded, never applied, and
never a backwards move. ``merchantReference`` is our payment_order_id (a refund's: our
refund_id); ``originalReference`` the charge's psp_reference (absent on some dispute events:
see :func:`_dispute`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from payments.kernel import clock
from payments.kernel.config import settings
from payments.kernel.errors import StatusConflict, TransientError
from payments.kernel.money import InvalidAmount, Money
from payments.kernel.observability import count, logger
from payments.notifications.store import NotificationStore
from payments.payin.status import AttentionKind, OrderStatus
from payments.psp.adyen_currencies import from_adyen_minor
from payments.refunds.models import REFUND_DECLINED, RefundRecord, RefundStatus
from payments.refunds.repository import ChargebackNotBooked, RefundsRepository


def process(notification_id: str, store: NotificationStore, refunds: RefundsRepository) -> str:
    """Apply a stored notification once; returns its outcome. Raises on a transient failure
    (the queue redelivers it; every effect below is idempotent, so a redelivery is harmless)."""
    stored = store.get(notification_id)
    if "outcome" in stored:
        return "DUPLICATE"
    outcome, detail = apply_item(json.loads(stored["raw"]), refunds)
    if outcome == "ANOMALY":
        count("NotificationAnomaly")
        logger.warning("notification anomaly", extra={"notification_id": notification_id, "detail": detail})
    store.mark(notification_id, outcome, detail)
    count(f"Notification{outcome.capitalize()}")
    return outcome


def apply_item(item: dict[str, Any], refunds: RefundsRepository) -> tuple[str, str]:
    code = item.get("eventCode")
    if item.get("merchantAccountCode") != settings().payments_psp_merchant_account:
        return "ANOMALY", f"for merchant account {item.get('merchantAccountCode')!r}, not ours"
    success = item.get("success") == "true"
    amount = item.get("amount") or {}
    value, currency = amount.get("value"), amount.get("currency")
    if code == "AUTHORISATION":
        return _authorisation(item, success, value, currency, refunds)
    if code == "REFUND":
        return _refund(item, success, value, currency, refunds)
    if code in REFUND_RETURNED:
        return _refund_returned(item, code, value, currency, refunds)
    if code in DISPUTE_EVENTS:
        if not success:
            return "IGNORED", f"{code} with success=false"
        return _dispute(item, code, value, currency, refunds)
    return "IGNORED", f"event code {code!r} is not handled"


#: the dispute events that move money, and what books each (all keyed by the dispute's pspReference)
DISPUTE_EVENTS = ("CHARGEBACK", "CHARGEBACK_REVERSED", "SECOND_CHARGEBACK")


class ChargeNotSettled(TransientError):
    """A dispute event on an order whose charge is not settled here yet (its outcome unknown: the
    AUTHORISATION or the PSP's answer still to come): retried later, like a reversal before its
    chargeback; after the queue's retries it lands in the dead-letter queue (alarmed)."""


def _dispute(item: dict[str, Any], code: str, value: Any, currency: Any, refunds: RefundsRepository) -> tuple[str, str]:
    """Book a dispute event on the charge it names. Adyen keeps one ``pspReference`` for every
    notification of a dispute, and sends ``originalReference`` (the payment's) on the CHARGEBACK
    but not always on what follows (its CHARGEBACK_REVERSED and SECOND_CHARGEBACK examples have
    none): a later step without it is tied to its charge by the booked dispute instead."""
    dispute_reference = str(item.get("pspReference") or "")
    original = item.get("originalReference")
    order = refunds.payments.find_order(str(item.get("merchantReference") or ""))
    if order is None and not original and code != "CHARGEBACK":
        known = refunds.find_dispute(dispute_reference)
        if known is None:  # nothing names the charge yet: its CHARGEBACK may still be on its way
            count("DisputeStepBeforeChargeback")
            raise ChargebackNotBooked(f"{code} of dispute {dispute_reference} names no charge, and none is booked yet")
        order = refunds.payments.find_order(known["payment_order_id"])
    if order is not None and not order.status.is_final:
        # the charge's outcome is not known here yet (its AUTHORISATION, or the PSP's answer, is still to
        # come): wait for it like a reversal waits for its chargeback; the queue retries, then dead-letters
        count("DisputeBeforeItsCharge")
        raise ChargeNotSettled(
            f"{code} of dispute {dispute_reference} on order {order.payment_order_id}, which is "
            f"{order.status.value}: retried once its charge is settled here"
        )
    if order is None or ((original or code == "CHARGEBACK") and order.psp_reference != original):
        count("DisputeOnUnknownCharge")
        logger.error("dispute on an unknown charge", extra={"event_code": code, "dispute": dispute_reference})
        return "ANOMALY", f"{code} for an unknown charge {original} / {item.get('merchantReference')}"
    if not isinstance(value, int):
        return "ANOMALY", f"{code} without an integer amount"
    notified = _money(value, currency)
    if notified is None:
        return "ANOMALY", f"{code} of {value} {currency} on an order in {order.currency}"
    book = {
        "CHARGEBACK": refunds.book_chargeback,
        "CHARGEBACK_REVERSED": refunds.reverse_chargeback,
        "SECOND_CHARGEBACK": refunds.book_second_chargeback,
    }[code]
    booked = book(order, dispute_reference, notified)
    if booked.anomaly:
        return "ANOMALY", booked.anomaly
    detail = "booked" if booked.applied else "already booked"
    if booked.needs_attention:
        detail += "; order flagged NEEDS_ATTENTION (refunds and chargebacks exceed the charge)"
    return ("APPLIED" if booked.applied else "DUPLICATE"), detail


def _authorisation(
    item: dict[str, Any], success: bool, value: Any, currency: Any, refunds: RefundsRepository
) -> tuple[str, str]:
    payments = refunds.payments
    order_id = str(item.get("merchantReference") or "")
    order = payments.find_order(order_id)
    if order is None:
        return "ANOMALY", f"AUTHORISATION for an unknown order {order_id!r}"
    if _money(value, currency) != order.money:
        payments.record_anomaly(
            order_id, f"AUTHORISATION of {value} {currency} for an order of {order.amount_minor} {order.currency}"
        )
        return "ANOMALY", "amount differs from the order"
    try:
        if success:
            order = payments.move_order(
                order_id,
                OrderStatus.SUCCESS,
                psp_reference=str(item.get("pspReference")),
                charged_at=_utc(item.get("eventDate")) or clock.now_iso(),
                signal="AUTHORISATION notification",
            )
        else:
            before = order.status
            order = payments.move_order(
                order_id,
                OrderStatus.FAILED,
                failure_reason=str(item.get("reason") or "refused"),
                signal="AUTHORISATION notification",
            )
            return ("DUPLICATE" if before is OrderStatus.FAILED else "APPLIED"), "order FAILED"
    except StatusConflict as err:
        return "ANOMALY", str(err)
    credited = refunds.wallets.credit(order).applied
    appended = refunds.ledger.append_payin(order).appended
    return ("APPLIED" if credited or appended else "DUPLICATE"), "order SUCCESS; wallet and ledger booked once"


def _refund(
    item: dict[str, Any], success: bool, value: Any, currency: Any, refunds: RefundsRepository
) -> tuple[str, str]:
    refund, refused = _matching_refund(item, "REFUND", value, currency, refunds)
    if refund is None:
        return refused
    refund_id = refund.refund_id
    if not success:  # the PSP's own words (Adyen: free text) stay in the stored notification and the log
        logger.info(
            "refund refused by the PSP",
            extra={"refund_id": refund_id, "psp_reason": str(item.get("reason") or "no reason given")[:200]},
        )
    decided = refunds.decide(
        refund_id,
        success,
        psp_reference=str(item.get("pspReference") or "") or None,
        failure_reason=REFUND_DECLINED,  # one code whichever PSP said no, as the simulator's answer has it
        source="notification",
    )
    if decided.applied:
        return "APPLIED", f"refund {decided.refund.status.value}"
    target = RefundStatus.SUCCEEDED if success else RefundStatus.FAILED
    if decided.refund.status is target:
        return "DUPLICATE", f"refund already {target.value}"
    return "ANOMALY", f"refund is {decided.refund.status.value}; the notification said {target.value}"


def _matching_refund(
    item: dict[str, Any], code: str, value: Any, currency: Any, refunds: RefundsRepository
) -> tuple[RefundRecord | None, tuple[str, str]]:
    """The refund a refund event names (``merchantReference`` is our refund_id), or None and the
    ANOMALY to record: an unknown refund, or one whose amount, currency or payment differ."""
    refund_id = str(item.get("merchantReference") or "")
    refund = refunds.find(refund_id)
    if refund is None:
        return None, ("ANOMALY", f"{code} for an unknown refund {refund_id!r}")
    order = refunds.payments.get_order(refund.payment_order_id)
    if _money(value, currency) != refund.money or item.get("originalReference") != order.psp_reference:
        refunds.record_anomaly(
            refund_id, f"{code} notification of {value} {currency} on {item.get('originalReference')} does not match"
        )
        return None, ("ANOMALY", f"{code}: amount, currency or original reference differ from the refund")
    return refund, ("", "")


#: the scheme rejected a refund after the PSP accepted it (REFUND_FAILED), or the refund came back
#: (REFUNDED_REVERSED): the money is back with the platform (Adyen's events; FACTS.md section 3)
REFUND_RETURNED = ("REFUND_FAILED", "REFUNDED_REVERSED")


def _refund_returned(
    item: dict[str, Any], code: str, value: Any, currency: Any, refunds: RefundsRepository
) -> tuple[str, str]:
    """A refund that did not reach the shopper after all. Nothing moves by itself: a SUCCEEDED refund
    debited the seller and is in the ledger, and whether the platform credits the seller back or
    refunds the shopper another way is a decision for a person. So the refund is parked
    NEEDS_ATTENTION with the event in its reason (metric ``RefundReturnedByScheme``, alarmed), marked
    returned in the same write (``returned_reference``, ``returned_at``; the API shows ``returned_at``), and the
    item is recorded as an ANOMALY: never applied, never silent. A refund FAILED here already agrees."""
    refund, refused = _matching_refund(item, code, value, currency, refunds)
    if refund is None:
        return refused
    refund_id = refund.refund_id
    if refund.status is RefundStatus.FAILED:
        return "DUPLICATE", f"{code} for a refund already FAILED here: nothing moved, nothing to do"
    reason = (
        f"{code} from the PSP ({str(item.get('reason') or 'no reason given')[:200]}): the refund of "
        f"{refund.money.format()} {refund.currency} did not reach the shopper and is back with the platform, while "
        f"the refund is {refund.status.value} here; credit the seller back or refund the shopper again"
    )
    # the return is marked on the refund in the same write as its flag (the refund's returned event is read
    # from it): the notification's reference, and when it was recorded here
    refunds.flag_attention(
        refund_id,
        reason,
        AttentionKind.PERSON,
        returned_reference=str(item.get("pspReference") or code),
        returned_at=clock.now_iso(),
    )
    count("RefundReturnedByScheme")
    logger.error("refund returned by the scheme", extra={"refund_id": refund_id, "event_code": code})
    return "ANOMALY", reason


def _money(value: Any, currency: Any) -> Money | None:
    """A notification's ``amount`` (``value`` in Adyen's minor units, ``currency``) as our Money,
    converted exactly by Adyen's table of decimals (CLP 500000 is 5000 CLP); None when it is not an
    integer in an active ISO 4217 currency, or cannot be read exactly: on an Adyen stage a currency
    Adyen does not support or whose decimals are disputed (what the notification says is not trusted).
    The simulated PSP's notifications use :func:`~payments.psp.adyen_currencies.wire_exponent`."""
    try:
        return from_adyen_minor(value, currency, strict=settings().payments_psp == "adyen")
    except InvalidAmount:
        return None


def _utc(event_date: Any) -> str | None:
    if not isinstance(event_date, str):
        return None
    try:
        moment = datetime.fromisoformat(event_date.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
