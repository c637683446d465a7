"""The simulated PSP: an external payment service provider in miniature.

It keeps its own record of charges in its own DynamoDB table (it is "their"
system, not ours: nothing of ours reads that table except through this class and
its settlement file) and behaves by test token as the contract says:

========================= ===============================================================
``tok_chargeDeclined``     declined, final (``card_declined``)
``tok_insufficientFunds``  declined, final (``insufficient_funds``)
``tok_pspUnavailable``     the first two calls for a key fail transiently, then it charges
``tok_pspTimeout``         the first call charges, but its answer is lost
``tok_refundFails``        approved; every refund of the charge fails at the PSP
any other ``tok_`` token   approved
========================= ===============================================================

Item layout of the PSP table (``pk``, ``sk``):

* ``KEY#<idempotency key>`` / ``OUTCOME``   the outcome recorded for a key (approved or declined)
* ``CHARGE#<psp_reference>`` / ``CHARGE``   one captured charge; index ``by_charge_day`` lists a day
* ``ATTEMPTS#<idempotency key>`` / ``ATTEMPTS``  how many calls the key has seen (drives the flaky tokens)
* ``REFUND#<refund_id>`` / ``REFUND``       one refund (succeeded or failed), keyed by our refund_id
* ``DISPUTE#<dispute reference>`` / ``DISPUTE``  a chargeback raised by the cardholder's bank,
  and once reversed (once charged back again) the times of its later steps
* ``REVERSAL#<dispute reference>`` / ``REVERSAL``  the reversal of a chargeback, on its own day
* ``SECOND#<dispute reference>`` / ``SECOND``  the second chargeback after a reversal, on its own day

Refunds (succeeded or not), disputes, reversals and second chargebacks carry ``modification_day``: the sparse index
``by_modification_day`` lists a day's modifications for its settlement file (no Scan).

Refunds, chargebacks, reversals and second chargebacks are announced by signed notifications in Adyen's standard
format (:meth:`SimulatedPsp.notification`); the caller delivers them.

The key item and the charge item are written in one transaction conditioned on
the key item not existing: two racing calls with one key produce one charge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import (
    cancelled_by_condition,
    from_item,
    is_condition_failure,
    put_new,
    query_all,
    query_index,
    to_item,
    to_values,
)
from payments.kernel.errors import InvariantViolation, PspOutcomeUnknown, PspUnavailable
from payments.kernel.money import Money
from payments.kernel.pan import contains_pan
from payments.psp import Approved, ChargeOutcome, ChargeRequest, Declined
from payments.psp.adyen_currencies import to_adyen_minor

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import PutTypeDef, TransactWriteItemTypeDef

DECLINING_TOKENS = {
    "tok_chargeDeclined": "card_declined",
    "tok_insufficientFunds": "insufficient_funds",
}
UNAVAILABLE_TOKEN = "tok_pspUnavailable"
UNAVAILABLE_CALLS = 2
TIMEOUT_TOKEN = "tok_pspTimeout"
REFUND_FAILS_TOKEN = "tok_refundFails"
MERCHANT_ACCOUNT = "PaymentsMarketplaceECOM"
#: the order of a day's modifications made in one millisecond (a reversal never precedes its chargeback)
_RANK = {"Refunded": 0, "Chargeback": 1, "ChargebackReversed": 2, "SecondChargeback": 3}


@dataclass(frozen=True)
class _DisputeStep:
    """A later step of a dispute at the PSP: its notification, its item and the times it keeps."""

    event_code: str
    record_type: str  # the settlement row it becomes
    sk: str  # its own item: ``<sk>#<dispute>`` / ``<sk>``
    at: str  # when it happened (on the dispute item and its own)
    day: str  # its UTC day, on the dispute item (the index lists its own item on it)
    after: str | None  # the dispute's attribute it needs first (None: the chargeback is enough)
    requires: str  # what is missing when ``after`` is (for the refusal's message)


_REVERSAL = _DisputeStep(
    "CHARGEBACK_REVERSED", "ChargebackReversed", "REVERSAL", "reversed_at", "reversal_day", None, "chargeback"
)
_SECOND = _DisputeStep(
    "SECOND_CHARGEBACK", "SecondChargeback", "SECOND", "second_at", "second_day", "reversed_at", "reversal"
)


def new_psp_reference() -> str:
    """``psp_`` and 16 hex digits, drawn again in the rare case (about 1 in 10,000) that they hold a
    run of 13+ decimal digits passing Luhn: a reference must never look like a card number."""
    while True:
        reference = "psp_" + secrets.token_hex(8)
        if not contains_pan(reference):
            return reference


class PspRequestRejected(Exception):
    """The PSP refused the request itself (for example a reused key with another amount). Final."""


class SimulatedPsp:
    def __init__(
        self, table: str | None = None, client: Any = None, calendar: Callable[[ChargeRequest], str] | None = None
    ):
        self.table = table or settings().psp_table
        self.ddb = client or aws.client("dynamodb")
        #: when a capture happens (ISO UTC; its day is the settlement day): the wall clock, or a
        #: simulated calendar (the chaos harness spreads a run's charges over many PSP days)
        self.calendar: Callable[[ChargeRequest], str] = calendar or (lambda request: clock.now_iso())

    # --- the PSP's API ------------------------------------------------------------
    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        try:
            attempt = self._count_attempt(request.idempotency_key)
            existing = self.lookup(request.idempotency_key)
        except ClientError as err:
            raise PspUnavailable(f"simulated PSP storage: {err}") from err
        if existing is not None:
            self._check_same_request(request)
            return existing
        if request.token == UNAVAILABLE_TOKEN and attempt <= UNAVAILABLE_CALLS:
            raise PspUnavailable(f"PSP unavailable (call {attempt} of {UNAVAILABLE_CALLS} failing)")
        if request.token in DECLINING_TOKENS:
            return self._record_decline(request, DECLINING_TOKENS[request.token])
        outcome = self._capture(request)
        if request.token == TIMEOUT_TOKEN and attempt == 1:
            raise PspOutcomeUnknown("PSP charged the card but the answer was lost (read timeout)")
        return outcome

    def lookup(self, idempotency_key: str) -> ChargeOutcome | None:
        try:
            response = self.ddb.get_item(
                TableName=self.table, Key=_key(f"KEY#{idempotency_key}", "OUTCOME"), ConsistentRead=True
            )
        except ClientError as err:
            raise PspUnavailable(f"simulated PSP storage: {err}") from err
        item = from_item(response.get("Item"))
        if item is None:
            return None
        if item["outcome"] == "APPROVED":
            return Approved(psp_reference=item["psp_reference"], charged_at=item["charged_at"])
        return Declined(reason=item["reason"])

    # --- refunds and disputes (issue 18) ---------------------------------------------
    def refund(self, call: Any) -> Any:
        """Refund (part of) a charge, once per ``call.idempotency_key`` (our refund_id).

        The refund and the charge's refunded total are written in one transaction, the total
        conditioned on staying within the captured amount: the PSP never refunds more than it
        charged, nor twice for one key. ``tok_refundFails`` charges refuse every refund."""
        from payments.refunds.psp import RefundAnswer

        try:
            self._count_attempt(f"refund:{call.idempotency_key}")
            existing = self._get(f"REFUND#{call.idempotency_key}", "REFUND")
            if existing is not None:
                if (existing["amount_minor"], existing["currency"]) != (call.amount_minor, call.currency):
                    raise PspRequestRejected(
                        f"idempotency key {call.idempotency_key} was used for {existing['amount_minor']} {existing['currency']}"
                    )
                return RefundAnswer(existing["succeeded"], existing.get("psp_reference"), existing.get("reason"))
            charge = self._get(f"CHARGE#{call.original_psp_reference}", "CHARGE")
        except ClientError as err:
            raise PspUnavailable(f"simulated PSP storage: {err}") from err
        item, items = self._refund_items(call, charge)
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as err:
            if cancelled_by_condition(err, 0):
                return self.refund(call)  # a concurrent call with the same key won: its answer is the answer
            if not cancelled_by_condition(err, 1):
                raise PspUnavailable(f"simulated PSP storage: {err}") from err
            item.update(succeeded=False, reason="exceeds_captured_amount", psp_reference=None)
            try:
                self.ddb.put_item(
                    TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
                )
            except ClientError:
                return self.refund(call)
        return RefundAnswer(item["succeeded"], item.get("psp_reference"), item.get("reason"))

    def _refund_items(
        self, call: Any, charge: dict[str, Any] | None
    ) -> tuple[dict[str, Any], list[TransactWriteItemTypeDef]]:
        """The refund's record (succeeded, or refused with its reason) and the transaction that
        writes it once: with the charge's refunded total kept within the captured amount."""
        now = clock.now_iso()
        item = {
            "pk": f"REFUND#{call.idempotency_key}",
            "sk": "REFUND",
            "merchant_reference": call.idempotency_key,
            "payment_order_id": call.payment_order_id,
            "original_reference": call.original_psp_reference,
            "amount_minor": call.amount_minor,
            "currency": call.currency,
            "refunded_at": now,
            "modification_day": clock.day_of(now),
        }
        items: list[TransactWriteItemTypeDef] = []
        if charge is None or charge["currency"] != call.currency:
            item.update(succeeded=False, reason="unknown_charge")
        elif charge.get("refund_fails"):
            item.update(succeeded=False, reason="refund_declined")
        else:
            item.update(
                succeeded=True, psp_reference=new_psp_reference(), payment_method=charge.get("payment_method", "visa")
            )
            limits = {":zero": 0, ":amount": call.amount_minor, ":limit": charge["amount_minor"] - call.amount_minor}
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _key(f"CHARGE#{call.original_psp_reference}", "CHARGE"),
                        "UpdateExpression": "SET refunded_minor = if_not_exists(refunded_minor, :zero) + :amount",
                        "ConditionExpression": "attribute_not_exists(refunded_minor) OR refunded_minor <= :limit",
                        "ExpressionAttributeValues": to_values(limits),
                    }
                }
            )
        put: PutTypeDef = {
            "TableName": self.table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        return item, [{"Put": put}, *items]

    def lookup_refund(self, refund_id: str) -> dict[str, Any] | None:
        item = self._get(f"REFUND#{refund_id}", "REFUND")
        return {k: v for k, v in item.items() if k not in ("pk", "sk")} if item else None

    def all_refunds(self) -> Iterator[dict[str, Any]]:
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["sk"] == "REFUND":
                yield {k: v for k, v in item.items() if k not in ("pk", "sk")}

    def raise_chargeback(self, payment_order_id: str, amount_minor: int | None = None) -> dict[str, Any]:
        """The cardholder's bank disputes a charge: record the dispute (funds deducted) and
        return its CHARGEBACK notification item. ``amount_minor`` omitted: the whole charge."""
        key = self.webhook_key()  # before anything is recorded: a dispute is never left unannounced
        outcome = self._get(f"KEY#{payment_order_id}", "OUTCOME")
        if outcome is None or outcome.get("outcome") != "APPROVED":
            raise PspRequestRejected(f"no captured charge for {payment_order_id}")
        charge = self._get(f"CHARGE#{outcome['psp_reference']}", "CHARGE")
        if charge is None:
            raise InvariantViolation(f"the approved charge of {payment_order_id} has no charge record")
        amount = charge["amount_minor"] if amount_minor is None else amount_minor
        if not 0 < amount <= charge["amount_minor"]:
            raise PspRequestRejected(f"a chargeback of {amount} does not fit the charge of {charge['amount_minor']}")
        now = clock.now_iso()
        dispute = {
            "pk": f"DISPUTE#{'dsp_' + secrets.token_hex(8)}",
            "sk": "DISPUTE",
            "payment_order_id": payment_order_id,
            "original_reference": charge["psp_reference"],
            "amount_minor": amount,
            "currency": charge["currency"],
            "charged_back_at": now,
            "modification_day": clock.day_of(now),
            "payment_method": charge.get("payment_method", "visa"),
        }
        dispute["dispute_reference"] = dispute["pk"].split("#", 1)[1]
        self.ddb.put_item(TableName=self.table, Item=to_item(dispute), ConditionExpression="attribute_not_exists(pk)")
        return self.notification(
            "CHARGEBACK",
            dispute["dispute_reference"],
            charge["psp_reference"],
            payment_order_id,
            amount,
            charge["currency"],
            key=key,
        )

    def reverse_chargeback(self, dispute_reference: str) -> dict[str, Any]:
        """The merchant's defence won: the dispute's funds come back (CHARGEBACK_REVERSED)."""
        return self._dispute_step(dispute_reference, _REVERSAL)

    def second_chargeback(self, dispute_reference: str) -> dict[str, Any]:
        """The defence was rejected after the reversal: the funds are deducted again (SECOND_CHARGEBACK,
        for the amount reversed). Refused for a dispute that was not reversed."""
        return self._dispute_step(dispute_reference, _SECOND)

    def _dispute_step(self, dispute_reference: str, step: _DisputeStep) -> dict[str, Any]:
        """Record a later step of a dispute once (its time kept on the dispute item, the step on an
        item of its own) and return its notification item; keyed by the dispute, as Adyen keeps one
        pspReference for a dispute's notifications."""
        key = self.webhook_key()
        now = clock.now_iso()
        try:
            response = self.ddb.update_item(
                TableName=self.table,
                Key=_key(f"DISPUTE#{dispute_reference}", "DISPUTE"),
                UpdateExpression=f"SET {step.at} = if_not_exists({step.at}, :now), {step.day} = if_not_exists({step.day}, :day)",
                ConditionExpression="attribute_exists(pk)"
                + (f" AND attribute_exists({step.after})" if step.after else ""),
                ExpressionAttributeValues=to_values({":now": now, ":day": clock.day_of(now)}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if not is_condition_failure(err):
                raise
            raise PspRequestRejected(f"no {step.requires} for dispute {dispute_reference}") from err
        d = from_item(response.get("Attributes"))
        if d is None:
            raise InvariantViolation(f"dispute {dispute_reference} was updated but not returned")
        # the step on its own item, so that the index lists it on its own day (the dispute item is
        # listed on the chargeback's): the same content whenever it is written again
        record = {
            "pk": f"{step.sk}#{dispute_reference}",
            "sk": step.sk,
            **{
                k: d[k]
                for k in ("dispute_reference", "payment_order_id", "original_reference", "amount_minor", "currency")
                if k in d
            },
            "payment_method": d.get("payment_method", "visa"),
            step.at: d[step.at],
            "modification_day": d[step.day],
        }
        self.ddb.put_item(TableName=self.table, Item=to_item(record))
        return self.notification(
            step.event_code,
            dispute_reference,
            d["original_reference"],
            d["payment_order_id"],
            d["amount_minor"],
            d["currency"],
            key=key,
        )

    def refund_notification(self, refund_id: str) -> dict[str, Any] | None:
        """The REFUND notification of a refund the PSP decided (None: it never saw the key)."""
        r = self.lookup_refund(refund_id)
        if r is None:
            return None
        return self.notification(
            "REFUND",
            r.get("psp_reference") or f"psp_refund_{refund_id}",
            r["original_reference"],
            refund_id,
            r["amount_minor"],
            r["currency"],
            success=bool(r["succeeded"]),
            reason=r.get("reason"),
        )

    def notification(
        self,
        event_code: str,
        psp_reference: str,
        original_reference: str | None,
        merchant_reference: str,
        amount_minor: int,
        currency: str,
        *,
        success: bool = True,
        reason: str | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        """One ``NotificationRequestItem`` in Adyen's standard format, HMAC-signed with the stage's key.
        ``amount_minor`` is ours (ISO 4217); ``amount.value`` is in Adyen's minor units, as Adyen sends it
        (:func:`payments.psp.adyen_currencies.wire_exponent`: CLP 5000 is 500000)."""
        from payments.psp.hmac import signed

        item: dict[str, Any] = {
            "eventCode": event_code,
            "success": "true" if success else "false",
            "pspReference": psp_reference,
            "merchantReference": merchant_reference,
            "merchantAccountCode": settings().payments_psp_merchant_account,
            "amount": {"value": to_adyen_minor(Money(amount_minor, currency), strict=False), "currency": currency},
            "eventDate": clock.now_iso(),
            "additionalData": {},
        }
        if original_reference:
            item["originalReference"] = original_reference
        if reason:
            item["reason"] = reason
        return signed(item, key or self.webhook_key())

    def webhook_key(self) -> str:
        """The HMAC key (hex) the PSP signs its notifications with: the stage's key, or the one
        the local runtime generated for its run and left in the PSP's table (``payments psp`` commands)."""
        key = settings().payments_psp_hmac_key or (self._get("CONFIG#webhook", "CONFIG") or {}).get("hmac_key", "")
        if not key:
            raise PspRequestRejected("no notification HMAC key: set PAYMENTS_PSP_HMAC_KEY")
        return key

    def configure_webhook_key(self, hex_key: str) -> None:
        self.ddb.put_item(
            TableName=self.table, Item=to_item({"pk": "CONFIG#webhook", "sk": "CONFIG", "hmac_key": hex_key})
        )

    def disputes(self) -> Iterator[dict[str, Any]]:
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["sk"] == "DISPUTE":
                yield {k: v for k, v in item.items() if k not in ("pk", "sk")}

    def modifications_for_day(self, day: str) -> Iterator[dict[str, Any]]:
        """The day's refunds, chargebacks, reversals and second chargebacks as the settlement file's rows
        carry them (Adyen: ``Refunded``, ``Chargeback``, ``ChargebackReversed``, ``SecondChargeback``; ``Psp Reference`` is the
        payment's, ``Modification Reference`` the modification's own, ``Modification Merchant
        Reference`` a refund's reference: our refund_id), in a stable order.

        One Query of the sparse index ``by_modification_day`` (failed refunds are listed too,
        and left out here: no money moved)."""
        rows = []
        for item in query_index(self.ddb, self.table, "by_modification_day", "modification_day", day):
            if item["sk"] == "REFUND" and item.get("succeeded"):
                rows.append(("Refunded", item["refunded_at"], item["psp_reference"], item["merchant_reference"], item))
            elif item["sk"] == "DISPUTE":
                rows.append(("Chargeback", item["charged_back_at"], item["dispute_reference"], "", item))
            else:
                step = {s.sk: s for s in (_REVERSAL, _SECOND)}.get(item["sk"])
                if step is not None:
                    rows.append((step.record_type, item[step.at], item["dispute_reference"], "", item))
        for record_type, at, modification_reference, modification_merchant_reference, item in sorted(
            rows, key=lambda r: (r[1], _RANK[r[0]], r[2])
        ):
            yield {
                "record_type": record_type,
                "psp_reference": item["original_reference"],
                "modification_reference": modification_reference,
                "merchant_reference": item["payment_order_id"],
                "modification_merchant_reference": modification_merchant_reference,
                "merchant_account": MERCHANT_ACCOUNT,
                "payment_method": item.get("payment_method", "visa"),
                "amount_minor": item["amount_minor"],
                "currency": item["currency"],
                "at": at,
            }

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return from_item(self.ddb.get_item(TableName=self.table, Key=_key(pk, sk), ConsistentRead=True).get("Item"))

    # --- what the PSP tells its merchants later (settlement) ------------------------
    def charges_for_day(self, day: str) -> Iterator[dict[str, Any]]:
        """Every capture of a UTC day: psp_reference, merchant_reference, amount_minor, currency, charged_at."""
        for item in query_index(self.ddb, self.table, "by_charge_day", "charge_day", day):
            yield {k: v for k, v in item.items() if k not in ("pk", "sk")}

    def all_charges(self) -> Iterator[dict[str, Any]]:
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["sk"] == "CHARGE":
                yield {k: v for k, v in item.items() if k not in ("pk", "sk")}

    # --- internals -------------------------------------------------------------------
    def _count_attempt(self, key: str) -> int:
        response = self.ddb.update_item(
            TableName=self.table,
            Key=_key(f"ATTEMPTS#{key}", "ATTEMPTS"),
            UpdateExpression="ADD calls :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["calls"]["N"])

    def _check_same_request(self, request: ChargeRequest) -> None:
        item = from_item(
            self.ddb.get_item(
                TableName=self.table, Key=_key(f"KEY#{request.idempotency_key}", "OUTCOME"), ConsistentRead=True
            ).get("Item")
        )
        if item and (item["amount_minor"], item["currency"]) != (request.amount_minor, request.currency):
            raise PspRequestRejected(
                f"idempotency key {request.idempotency_key} was used for {item['amount_minor']} {item['currency']}"
            )

    def _record_decline(self, request: ChargeRequest, reason: str) -> ChargeOutcome:
        now = clock.now_iso()
        outcome_item = {
            "pk": f"KEY#{request.idempotency_key}",
            "sk": "OUTCOME",
            "outcome": "DECLINED",
            "reason": reason,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "decided_at": now,
        }
        try:
            self.ddb.put_item(
                TableName=self.table, Item=to_item(outcome_item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise PspUnavailable(f"simulated PSP storage: {err}") from err
            return self.lookup(request.idempotency_key) or Declined(reason)
        return Declined(reason)

    def _capture(self, request: ChargeRequest) -> ChargeOutcome:
        now = self.calendar(request)
        psp_reference = new_psp_reference()
        outcome_item = {
            "pk": f"KEY#{request.idempotency_key}",
            "sk": "OUTCOME",
            "outcome": "APPROVED",
            "psp_reference": psp_reference,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "charged_at": now,
        }
        charge_item = {
            "pk": f"CHARGE#{psp_reference}",
            "sk": "CHARGE",
            "psp_reference": psp_reference,
            "merchant_reference": request.idempotency_key,
            "merchant_account": MERCHANT_ACCOUNT,
            "amount_minor": request.amount_minor,
            "currency": request.currency,
            "charged_at": now,
            "charge_day": clock.day_of(now),
            "payment_method": _brand(request.token),
            "refund_fails": request.token == REFUND_FAILS_TOKEN,
        }
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    put_new(self.table, outcome_item),
                    put_new(self.table, charge_item),
                ]
            )
        except ClientError as err:
            if cancelled_by_condition(err, 0):
                # a concurrent call with the same key won the race: its charge is the charge
                winner = self.lookup(request.idempotency_key)
                if winner is not None:
                    return winner
            raise PspUnavailable(f"simulated PSP storage: {err}") from err
        return Approved(psp_reference=psp_reference, charged_at=now)


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _brand(token: str) -> str:
    for brand in ("visa", "mastercard", "amex"):
        if brand in token.lower():
            return brand
    return "visa"
