"""What a reconciled settlement file does to the books: settled charges become available, PSP fees are booked.

**Pending -> available, once per order.** When a settlement file is reconciled and a charge's
``Settled`` row matched the ledger, the charge's net (its amount minus the commission fixed on the
order) moves from the seller's pending to its available: in the ledger, debit ``seller_pending``,
credit ``seller_available``; in the wallet, the pending shards minus, the balance item's
``available_minor`` plus. Exactly once per order, whatever file reports it again and however often a
file is reconciled again:

* each order settled has a marker ``SETTLED#<payment_order_id>`` in the wallets table, put on
  ``attribute_not_exists``;
* the matched charges of one (seller, currency) are settled in batches (:func:`batch_size`: up to 90
  orders, so that one ``TransactWriteItems`` of at most 100 items holds the batch's markers, ONE
  aggregated ledger transaction ``settlement-batch:<hash of the order ids>`` with its totals, the
  balance item's move and one update per pending shard): all of it, or none;
* a batch cancelled because a marker exists (a retry, or a charge another file reported first) is
  redone order by order, each its own transaction (ledger ``settlement:<payment_order_id>``): the
  orders already settled cancel and change nothing, the others settle.

A crash halfway leaves whole batches done and the rest not: the reconciliation's retry settles the
rest. ``payments verify`` checks it: one marker and one settlement transaction per order settled,
only SUCCESS orders, and each seller's pending and available equal to the ledger's accounts.

**PSP fees.** The file's fees (the ``Commission``, ``Markup``, ``Scheme Fees`` and ``Interchange``
columns of its rows, and its ``Fee`` rows: what the PSP keeps, per net currency) are the platform's
expense: debit ``psp_fees``, credit ``psp_receivable``, one transaction per file and currency
``psp_fees:<sha256 of the file>:<currency>`` put on ``attribute_not_exists``: reconciling the same
bytes again books nothing. (A negative total, fees the PSP gave back, is booked the other way.)
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from payments.accounts.balances import move_update
from payments.accounts.chart import Account
from payments.accounts.ledger import LedgerRepository, LedgerTransaction, Posting, Side
from payments.accounts.wallet import WalletRepository
from payments.kernel import clock
from payments.kernel.dynamo import (
    batch_get,
    cancellation_codes,
    cancelled_by_condition,
    put_new,
    shard_of,
    transact_write,
)
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money
from payments.kernel.observability import count, logger

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

#: at most this many orders per settlement transaction (DynamoDB: 100 items per transaction)
MAX_BATCH = 90
#: the items of a batch besides its markers: the ledger transaction, its totals shard and the two
#: accounts' totals shards, and the balance item (plus one per pending shard, see batch_size)
_FIXED_ITEMS = 5
_TRANSACTION_ITEMS = 100


def batch_size(wallet_shards: int) -> int:
    """Orders per settlement transaction: 90, fewer when many pending shards leave less room."""
    size = min(MAX_BATCH, _TRANSACTION_ITEMS - _FIXED_ITEMS - wallet_shards)
    if size < 1:
        raise InvariantViolation(f"{wallet_shards} wallet shards leave no room for a settlement batch")
    return size


@dataclass(frozen=True, slots=True)
class SettledCharge:
    """A charge whose settlement row matched: its order, seller and net (what its credit put in pending)."""

    payment_order_id: str
    seller_account: str
    net: Money


@dataclass
class SettleResult:
    settled: int = 0  # orders moved to available by this run
    already: int = 0  # orders settled before (by an earlier run or another file)


@dataclass
class Settlement:
    """Collects the matched charges of one file (:meth:`add`, the reconciliation's ``on_match``) and
    settles them per (seller, currency) in batches (:meth:`flush`, also called when a batch is full)."""

    wallets: WalletRepository
    ledger: LedgerRepository
    source_key: str = ""
    result: SettleResult = field(default_factory=SettleResult)
    _pending: dict[tuple[str, str], list[SettledCharge]] = field(default_factory=lambda: defaultdict(list))

    @property
    def size(self) -> int:
        return batch_size(self.wallets.shards)

    def add(self, charge: SettledCharge) -> None:
        key = (charge.seller_account, charge.net.currency)
        group = self._pending[key]
        group.append(charge)
        if len(group) >= self.size:
            self._settle(group)
            del self._pending[key]

    def flush(self) -> SettleResult:
        for key in sorted(self._pending):
            self._settle(self._pending[key])
        self._pending.clear()
        return self.result

    def settle(self, charges: Iterable[SettledCharge]) -> SettleResult:
        for charge in charges:
            self.add(charge)
        return self.flush()

    def _settle(self, charges: list[SettledCharge]) -> None:
        unique = list({c.payment_order_id: c for c in charges}.values())  # a file may name an order twice
        digest = hashlib.sha256("\n".join(sorted(c.payment_order_id for c in unique)).encode()).hexdigest()[:32]
        refusal = transact_write(self.wallets.ddb, self._items(f"settlement-batch:{digest}", unique))
        if refusal is None:
            self.result.settled += len(unique)
            count("ChargesSettled", len(unique))
            return
        if not any(cancelled_by_condition(refusal, i) for i in range(len(unique))):
            raise InvariantViolation(
                f"settlement batch {digest} refused by something other than a marker: {cancellation_codes(refusal)}"
            ) from refusal
        # some were settled before: the markers are read (100 a request) and only the others are settled, order
        # by order. A file reconciled again (a redelivered S3 event, a redriven run) costs a refused batch and a
        # read per batch, not a refused transaction per charge. A marker written after the read (another run)
        # still refuses that order's transaction: counted as settled before, as it is.
        marked = self._marked(unique)
        for charge in unique:
            if charge.payment_order_id in marked:
                self.result.already += 1
                continue
            one = transact_write(self.wallets.ddb, self._items(f"settlement:{charge.payment_order_id}", [charge]))
            if one is None:
                self.result.settled += 1
                count("ChargesSettled", 1)
            elif cancelled_by_condition(one, 0):
                self.result.already += 1
            else:
                raise one

    def _marked(self, charges: list[SettledCharge]) -> set[str]:
        """The orders among ``charges`` whose SETTLED marker exists (a strongly consistent read)."""
        keys = [{"pk": f"SETTLED#{c.payment_order_id}", "sk": "SETTLED"} for c in charges]
        return {str(item["payment_order_id"]) for item in batch_get(self.wallets.ddb, self.wallets.table, keys)}

    def _items(self, txn_id: str, charges: list[SettledCharge]) -> list[TransactWriteItemTypeDef]:
        """The markers first (item i is the marker of ``charges[i]``), then the ledger transaction and the
        wallet's moves: available plus the total, each pending shard minus its orders' nets."""
        seller = charges[0].seller_account
        total = sum((c.net for c in charges), Money.zero(charges[0].net.currency))
        now = clock.now_iso()
        items: list[TransactWriteItemTypeDef] = [
            put_new(
                self.wallets.table,
                {
                    "pk": f"SETTLED#{c.payment_order_id}",
                    "sk": "SETTLED",
                    "payment_order_id": c.payment_order_id,
                    "seller_account": seller,
                    "currency": c.net.currency,
                    "amount_minor": c.net.minor,
                    "txn_id": txn_id,
                    "source_key": self.source_key,
                    "settled_at": now,
                },
            )
            for c in charges
        ]
        if total.is_positive():
            txn = LedgerTransaction.transfer(
                debit=Account.seller_pending(seller), credit=Account.seller_available(seller), amount=total
            )
            attributes: dict[str, Any] = {
                "seller_account": seller,
                "payment_order_ids": [c.payment_order_id for c in charges],
                "source_key": self.source_key,
            }
            items += self.ledger.booking_items(txn_id, "SETTLEMENT", txn, attributes)
            items.append(move_update(self.wallets.table, seller, available=total))
            by_shard: dict[int, Money] = defaultdict(lambda: Money.zero(total.currency))
            for c in charges:
                by_shard[shard_of(c.payment_order_id, self.wallets.shards)] += c.net
            items += [
                self.wallets.pending_update(seller, shard, -amount, counter="settled")
                for shard, amount in sorted(by_shard.items())
                if amount.minor
            ]
        return items


def psp_fees_of(totals: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """currency -> the PSP's fees in a settlement file's totals (``payments.reconciliation.engine``):
    commission + markup + scheme fees + interchange + ``Fee`` rows, in minor units of the net currency."""
    fees = {}
    for currency, sums in totals.items():
        total = sum(sums.get(name, 0) for name in ("commission", "markup", "scheme_fees", "interchange", "fee"))
        if total:
            fees[currency] = total
    return fees


def book_psp_fees(ledger: LedgerRepository, file_sha256: str, source_key: str, fees: Mapping[str, int]) -> int:
    """Book a file's PSP fees (currency -> minor units), once per file and currency; returns how many
    transactions were booked now (0 when the same file was booked before)."""
    booked = 0
    receivable, expense = Account.psp_receivable(ledger.psp), Account.psp_fees(ledger.psp)
    for currency, minor in sorted(fees.items()):
        amount = Money(abs(minor), currency)
        spent = minor > 0
        txn = LedgerTransaction.of(
            [
                Posting(expense, Side.DEBIT if spent else Side.CREDIT, amount),
                Posting(receivable, Side.CREDIT if spent else Side.DEBIT, amount),
            ]
        )
        txn_id = f"psp_fees:{file_sha256}:{currency}"
        refusal = transact_write(
            ledger.ddb, ledger.booking_items(txn_id, "PSP_FEES", txn, {"source_key": source_key, "psp": ledger.psp})
        )
        if refusal is None:
            booked += 1
        elif not cancelled_by_condition(refusal, 0):
            raise refusal
        else:
            logger.info("PSP fees of this file booked before", extra={"txn_id": txn_id})
    return booked
