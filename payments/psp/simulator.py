"""The simulated PSP: an external payment service provider in miniature.

It keeps its own record of charges in its own DynamoDB table (it is "their"
system, not ours: nothing of ours reads that table except through this class and
its settlement file) and behaves by test token as the contract says:

========================= ===============================================================
``tok_chargeDeclined``     declined, final (``card_declined``)
``tok_insufficientFunds``  declined, final (``insufficient_funds``)
``tok_pspUnavailable``     the first two calls for a key fail transiently, then it charges
``tok_pspTimeout``         the first call charges, but its answer is lost
any other ``tok_`` token   approved
========================= ===============================================================

Item layout of the PSP table (``pk``, ``sk``):

* ``KEY#<idempotency key>`` / ``OUTCOME``   the outcome recorded for a key (approved or declined)
* ``CHARGE#<psp_reference>`` / ``CHARGE``   one captured charge; index ``by_charge_day`` lists a day
* ``ATTEMPTS#<idempotency key>`` / ``ATTEMPTS``  how many calls the key has seen (drives the flaky tokens)

The key item and the charge item are written in one transaction conditioned on
the key item not existing: two racing calls with one key produce one charge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from payments import aws, clock
from payments.config import settings
from payments.errors import PspOutcomeUnknown, PspUnavailable
from payments.pan import contains_pan
from payments.psp import Approved, ChargeOutcome, ChargeRequest, Declined
from payments.repositories.dynamo import cancelled_by_condition, from_item, query_all, to_item, to_values

DECLINING_TOKENS = {
    "tok_chargeDeclined": "card_declined",
    "tok_insufficientFunds": "insufficient_funds",
}
UNAVAILABLE_TOKEN = "tok_pspUnavailable"
UNAVAILABLE_CALLS = 2
TIMEOUT_TOKEN = "tok_pspTimeout"
MERCHANT_ACCOUNT = "PaymentsMarketplaceECOM"



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
    def __init__(self, table: str | None = None, client: Any = None, calendar: Callable[[ChargeRequest], str] | None = None):
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
            response = self.ddb.get_item(TableName=self.table, Key=_key(f"KEY#{idempotency_key}", "OUTCOME"), ConsistentRead=True)
        except ClientError as err:
            raise PspUnavailable(f"simulated PSP storage: {err}") from err
        item = from_item(response.get("Item"))
        if item is None:
            return None
        if item["outcome"] == "APPROVED":
            return Approved(psp_reference=item["psp_reference"], charged_at=item["charged_at"])
        return Declined(reason=item["reason"])

    # --- what the PSP tells its merchants later (settlement) ------------------------
    def charges_for_day(self, day: str) -> Iterator[dict[str, Any]]:
        """Every capture of a UTC day: psp_reference, merchant_reference, amount_minor, currency, charged_at."""
        for item in query_all(
            self.ddb,
            TableName=self.table,
            IndexName="by_charge_day",
            KeyConditionExpression="charge_day = :day",
            ExpressionAttributeValues=to_values({":day": day}),
        ):
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
            self.ddb.get_item(TableName=self.table, Key=_key(f"KEY#{request.idempotency_key}", "OUTCOME"), ConsistentRead=True).get("Item")
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
            self.ddb.put_item(TableName=self.table, Item=to_item(outcome_item), ConditionExpression="attribute_not_exists(pk)")
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
        }
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self.table, "Item": to_item(outcome_item), "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": self.table, "Item": to_item(charge_item), "ConditionExpression": "attribute_not_exists(pk)"}},
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
