"""The payouts table: each payout, its reservation and every status it reaches, each one DynamoDB transaction.

Item layout (table ``payouts``, keys ``pk``/``sk``):

* payout ``PAYOUT#<payout_id>`` / ``PAYOUT``: :class:`~payments.payouts.models.PayoutRecord`, plus
  ``pending_currency`` while it is PENDING (the sparse index ``by_pending``, sort key ``payout_id``: the
  nightly run lists the payouts still to send with one Query per currency);
* run ``RUN#<day>#<currency>`` / ``RUN#<n>``: the payouts of one file and its MsgId, fixed before the file is
  written (:mod:`payments.payouts.run`).

Money moves with the status, in the same ``TransactWriteItems`` (invariants 10 and 11):

=============  =======================================  ========================================  ========================
step           the payout                               ledger (``payout:<id>:<step>``)           the seller's balance item
=============  =======================================  ========================================  ========================
reserve        put, on ``attribute_not_exists``          seller_available -> payouts_in_transit    available -= a, in_transit
               (PENDING)                                                                          += a, if available >= a
submitted      PENDING -> SUBMITTED, ``msg_id``          (none: already in transit)                (none)
paid           SUBMITTED -> PAID                         payouts_in_transit -> bank                in_transit -= a
failed         PENDING or SUBMITTED -> FAILED            payouts_in_transit -> seller_available    in_transit -= a,
                                                                                                  available += a
returned       PAID -> RETURNED                          bank -> seller_available                  available += a
=============  =======================================  ========================================  ========================

Each status change is conditional on the status it leaves: told twice, the second telling finds the payout
already there (:attr:`Applied.ALREADY`) and writes nothing; a transaction that ran but whose answer was lost
is the same case. The ledger transaction's own ``attribute_not_exists`` makes a second booking impossible
even for a caller that skipped the status check.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from payments.accounts.balances import balance_key, move_update, reserve_update
from payments.accounts.chart import Account
from payments.accounts.ledger import LedgerRepository, LedgerTransaction
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import (
    cancelled_by_condition,
    get_item,
    put_new,
    query_all,
    query_index,
    to_values,
    transact_write,
)
from payments.kernel.errors import Conflict, InvariantViolation, NotFound, StoreUnavailable
from payments.kernel.money import Money
from payments.kernel.observability import count, logger
from payments.payouts.accounts import PayoutAccountsRepository
from payments.payouts.models import HistoryEntry, PayoutRecord
from payments.payouts.outcomes import NEXT, Applied, Outcome, PayoutStatus

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

#: the sparse index of the payouts still PENDING, per currency
PENDING_INDEX = "by_pending"
#: attempts of a transaction that DynamoDB cancelled for a concurrent one on the same item (not a refusal)
CONFLICT_ATTEMPTS = 6


class PayoutExceedsAvailable(Exception):
    """The payout is more than the seller's ``available`` (which may be zero or below zero)."""

    def __init__(self, seller_account: str, available: Money):
        self.seller_account, self.available = seller_account, available
        super().__init__(f"the payout exceeds what is available ({available})")


class PayoutNotPossible(Exception):
    """No payout can go out: no payout rail for the currency, or no usable payout account."""

    def __init__(self, reason: str, field: str):
        self.reason, self.field = reason, field
        super().__init__(reason)


@dataclass(frozen=True)
class Reserved:
    payout: PayoutRecord
    created: bool  # False: it existed with the same request (a retry): nothing reserved again


def payout_key(payout_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"PAYOUT#{payout_id}"}, "sk": {"S": "PAYOUT"}}


def _txn_id(payout_id: str, step: str) -> str:
    return f"payout:{payout_id}:{step}"


class PayoutsRepository:
    """The payouts table, the seller's balance item (wallets table) and the ledger, moved together.

    Implements :class:`payments.payouts.outcomes.PayoutOutcomes` (``mark_failed``, ``mark_paid``,
    ``mark_returned``) for the bank reconciliation, and ``mark_submitted`` for the run."""

    def __init__(
        self,
        table: str | None = None,
        client: Any = None,
        ledger: LedgerRepository | None = None,
        accounts: PayoutAccountsRepository | None = None,
    ):
        self.table = table or settings().payouts_table
        self.wallets_table = settings().wallets_table
        self.ddb = client or aws.client("dynamodb")
        self.ledger = ledger or LedgerRepository(client=self.ddb)
        self._accounts = accounts

    @property
    def accounts(self) -> PayoutAccountsRepository:
        if self._accounts is None:
            self._accounts = PayoutAccountsRepository()
        return self._accounts

    # --- reading ----------------------------------------------------------------------------------------

    def find(self, payout_id: str) -> PayoutRecord | None:
        item = get_item(self.ddb, self.table, payout_key(payout_id))
        return PayoutRecord.model_validate(item) if item else None

    def get(self, payout_id: str) -> PayoutRecord:
        found = self.find(payout_id)
        if found is None:
            raise NotFound(f"no payout {payout_id}")
        return found

    def scan(self) -> Iterator[PayoutRecord]:
        """Every payout of the table (a strongly consistent Scan: for the audit, ``payments verify``)."""
        for item in query_all(self.ddb, _op="scan", TableName=self.table, ConsistentRead=True):
            if item["sk"] == "PAYOUT":
                yield PayoutRecord.model_validate(item)

    def available(self, seller_account: str, currency: str) -> Money:
        """The seller's ``available`` in ``currency`` (zero without a balance item), strongly consistent."""
        item = get_item(self.ddb, self.wallets_table, balance_key(seller_account, currency))
        return Money(int(item.get("available_minor", 0)) if item else 0, currency)

    def pending(self, currency: str) -> Iterator[PayoutRecord]:
        """The payouts still PENDING in ``currency`` (the sparse index: eventually consistent)."""
        for item in query_index(self.ddb, self.table, PENDING_INDEX, "pending_currency", currency):
            yield PayoutRecord.model_validate(item)

    # --- the reservation --------------------------------------------------------------------------------

    def reserve(self, payout: PayoutRecord) -> Reserved:
        """Store a PENDING payout and reserve its amount, in one transaction: the payout put on
        ``attribute_not_exists``, ``available -= amount, in_transit += amount`` on ``available >= amount``
        (:func:`~payments.accounts.balances.reserve_update`), and the ledger's ``payout:<id>:reserve``.

        The same payout again (same ``request_fingerprint``): the stored one, nothing reserved twice; another
        payout under that id: :class:`Conflict`; more than available: :class:`PayoutExceedsAvailable`."""
        amount = payout.money
        if payout.status is not PayoutStatus.PENDING:
            raise InvariantViolation(f"a payout is reserved PENDING, not {payout.status}")
        item = {
            "pk": f"PAYOUT#{payout.payout_id}",
            "sk": "PAYOUT",
            **payout.model_dump(mode="json"),
            "pending_currency": payout.currency,
        }
        seller = payout.seller_account
        txn = LedgerTransaction.transfer(
            debit=Account.seller_available(seller), credit=Account.payouts_in_transit(seller), amount=amount
        )
        items: list[TransactWriteItemTypeDef] = [
            put_new(self.table, item),
            reserve_update(self.wallets_table, seller, amount),
            *self.ledger.booking_items(
                _txn_id(payout.payout_id, "reserve"),
                "PAYOUT_RESERVED",
                txn,
                {"payout_id": payout.payout_id, "seller_account": seller},
            ),
        ]
        refusal = self._transact(items)
        if refusal is None:
            count("PayoutsReserved")
            logger.info(
                "payout reserved",
                extra={"payout_id": payout.payout_id, "seller_account": seller, "amount": str(amount)},
            )
            return Reserved(payout, created=True)
        if cancelled_by_condition(refusal, 0):
            existing = self.get(payout.payout_id)
            if existing.request_fingerprint == payout.request_fingerprint:
                return Reserved(existing, created=False)
            raise Conflict(
                f"payout_id '{payout.payout_id}' is already used by another payout", field="payout_id"
            ) from refusal
        if cancelled_by_condition(refusal, 1):
            raise PayoutExceedsAvailable(seller, self.available(seller, payout.currency)) from refusal
        raise InvariantViolation(
            f"the ledger already holds the reservation of payout {payout.payout_id}, which does not exist"
        ) from refusal

    def _transact(self, items: list[TransactWriteItemTypeDef]) -> Any:
        """:func:`transact_write`, tried again when DynamoDB cancelled it for a concurrent transaction on the
        same item (not a condition: the next attempt decides). The condition refusal, or None."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                return transact_write(self.ddb, items)
            except StoreUnavailable:
                if attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 -- jitter, not a secret
        raise AssertionError("unreachable")

    # --- the statuses -----------------------------------------------------------------------------------

    def mark_submitted(self, payout_id: str, *, msg_id: str, iban_mac: str, source: str) -> Outcome:
        """PENDING -> SUBMITTED, in the file ``msg_id`` to the account whose keyed hash is ``iban_mac``: no money
        moves (it is in transit since the reservation)."""
        return self._move(
            payout_id,
            PayoutStatus.SUBMITTED,
            source=source,
            sets={"msg_id": msg_id, "iban_mac": iban_mac},
            same=lambda record: record.msg_id == msg_id,
        )

    def mark_failed(self, payout_id: str, *, reason: str, source: str) -> Outcome:
        """PENDING or SUBMITTED -> FAILED: in transit back to available (ledger ``payout:<id>:failed``)."""

        def money(record: PayoutRecord) -> list[TransactWriteItemTypeDef]:
            seller, amount = record.seller_account, record.money
            txn = LedgerTransaction.transfer(
                debit=Account.payouts_in_transit(seller),
                credit=Account.seller_available(seller),
                amount=amount,
            )
            return [
                *self._booking(record, "failed", txn),
                move_update(self.wallets_table, seller, available=amount, in_transit=-amount),
            ]

        outcome = self._move(
            payout_id, PayoutStatus.FAILED, source=source, sets={"failure_reason": reason}, money=money
        )
        if outcome.applied is Applied.APPLIED:
            count("PayoutsFailed")
            logger.warning("payout failed", extra={"payout_id": payout_id, "reason": reason, "source": source})
        return outcome

    def mark_paid(self, payout_id: str, *, amount: Money, booked_on: str, source: str) -> Outcome:
        """SUBMITTED -> PAID: in transit to the bank (ledger ``payout:<id>:paid``)."""

        def money(record: PayoutRecord) -> list[TransactWriteItemTypeDef]:
            seller = record.seller_account
            txn = LedgerTransaction.transfer(
                debit=Account.payouts_in_transit(seller), credit=Account.bank(), amount=record.money
            )
            return [
                *self._booking(record, "paid", txn),
                move_update(self.wallets_table, seller, in_transit=-record.money),
            ]

        outcome = self._move(
            payout_id, PayoutStatus.PAID, source=source, sets={"booked_on": booked_on}, money=money, amount=amount
        )
        if outcome.applied is Applied.APPLIED:
            count("PayoutsPaid")
        return outcome

    def mark_returned(self, payout_id: str, *, amount: Money, reason: str, source: str) -> Outcome:
        """PAID -> RETURNED: the bank gives it back to available (ledger ``payout:<id>:returned``), and the
        payout account it went to is marked invalid. Told again, the account is marked again (harmless: once)."""

        def money(record: PayoutRecord) -> list[TransactWriteItemTypeDef]:
            seller = record.seller_account
            txn = LedgerTransaction.transfer(
                debit=Account.bank(), credit=Account.seller_available(seller), amount=record.money
            )
            return [
                *self._booking(record, "returned", txn),
                move_update(self.wallets_table, seller, available=record.money),
            ]

        outcome = self._move(
            payout_id, PayoutStatus.RETURNED, source=source, sets={"return_reason": reason}, money=money, amount=amount
        )
        if outcome.applied in (Applied.APPLIED, Applied.ALREADY):
            # its own conditional write, after the transaction: a crash in between is repaired by the next telling
            record = self.get(payout_id)
            self.accounts.mark_invalid(
                record.seller_account,
                record.currency,
                f"payout {payout_id} returned by the bank ({reason})",
                iban_mac=record.iban_mac,
            )
        if outcome.applied is Applied.APPLIED:
            count("PayoutsReturned")  # the alarm "PayoutsReturned" watches it
            logger.warning(
                "payout returned: payout account marked invalid",
                extra={"payout_id": payout_id, "reason": reason, "source": source},
            )
        return outcome

    def _booking(self, record: PayoutRecord, step: str, txn: LedgerTransaction) -> list[TransactWriteItemTypeDef]:
        attributes = {"payout_id": record.payout_id, "seller_account": record.seller_account}
        return self.ledger.booking_items(_txn_id(record.payout_id, step), f"PAYOUT_{step.upper()}", txn, attributes)

    def _move(
        self,
        payout_id: str,
        target: PayoutStatus,
        *,
        source: str,
        sets: dict[str, Any],
        money: Any = None,
        amount: Money | None = None,
        same: Any = None,
    ) -> Outcome:
        """One status change with its money, conditional on the status it leaves (read first)."""
        for _ in range(CONFLICT_ATTEMPTS):
            record = self.find(payout_id)
            if record is None:
                return Outcome(Applied.UNKNOWN, payout_id, None, "no payout has this id")
            if amount is not None and amount != record.money:
                return Outcome(
                    Applied.AMOUNT_DIFFERS,
                    payout_id,
                    record.status,
                    f"the bank says {amount}, the payout is {record.money}",
                )
            if record.status is target:
                if same is not None and not same(record):
                    return Outcome(Applied.CONFLICT, payout_id, record.status, f"already {target} otherwise")
                return Outcome(Applied.ALREADY, payout_id, record.status)
            if target not in NEXT[record.status]:
                return Outcome(Applied.CONFLICT, payout_id, record.status, f"{record.status} cannot become {target}")
            at = clock.now_iso()
            entry = HistoryEntry(status=target, at=at, source=source).model_dump(mode="json")
            names = {"#status": "status"}
            assignments = ["#status = :to", "updated_at = :at", "history = list_append(history, :entry)"]
            values: dict[str, Any] = {":to": target.value, ":from": record.status.value, ":at": at, ":entry": [entry]}
            for i, (name, value) in enumerate(sorted(sets.items())):
                names[f"#s{i}"] = name
                assignments.append(f"#s{i} = :s{i}")
                values[f":s{i}"] = value
            update: TransactWriteItemTypeDef = {
                "Update": {
                    "TableName": self.table,
                    "Key": payout_key(payout_id),
                    "UpdateExpression": f"SET {', '.join(assignments)} REMOVE pending_currency",
                    "ConditionExpression": "#status = :from",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_values(values),
                }
            }
            refusal = self._transact([update, *(money(record) if money else [])])
            if refusal is None:
                return Outcome(Applied.APPLIED, payout_id, target)
            if not cancelled_by_condition(refusal, 0):
                raise InvariantViolation(
                    f"payout {payout_id}: its {target} booking exists while its status was {record.status}"
                ) from refusal
            # the status moved between the read and the write: decide again on what it is now
        raise Conflict(f"payout {payout_id} kept changing while it was being marked {target}")
