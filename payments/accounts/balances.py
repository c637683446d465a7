"""A seller's settled balance: one item per (seller, currency) that a payout reserves from.

The wallets table holds, besides the sharded pending balance (``WALLET#<seller>#<shard>``, every
charge adds to one shard: the hot path), one **balance item** per seller and currency:

* ``BALANCE#<seller_account>`` / ``CCY#<currency>``: ``available_minor`` (settled, not paid out; may
  be below zero after money went back), ``in_transit_minor`` (in payouts the bank has not booked),
  ``seller_account``, ``currency``.

It is one item, not shards, because a payout's reservation must read and change the whole of
``available`` in one conditional write (:func:`reserve_update`: ``available_minor >= :amount``):
20 concurrent payouts of 60.00 on 100.00 available cannot both pass the condition. Its writers are
not the charge path: reconciliation moves settled charges in (aggregated per file and seller), money
back (refunds, chargebacks) takes out, payouts reserve and give back; far below one partition's
1,000 writes per second for any seller.

Every function here returns one ``TransactWriteItems`` item; the caller puts it in the transaction
that also writes the idempotency marker (or the status change) and the ledger transaction of the same
movement: the balance moves exactly when the movement is stored, once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from payments.kernel.dynamo import shard_of, to_values
from payments.kernel.errors import InvariantViolation
from payments.kernel.money import Money

if TYPE_CHECKING:  # boto3-stubs (dev extra), for mypy only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

__all__ = ["BALANCE_INDEX", "BALANCE_SHARDS", "balance_key", "balance_shard", "move_update", "reserve_update"]

#: the sparse index of balance items (keys only: only balance items carry ``balance_shard``), which the
#: nightly payout run reads shard by shard instead of scanning every wallet shard of the table. Keys only,
#: and the key never changes after the item's first write, so the many balance updates cost the index nothing.
BALANCE_INDEX = "by_balance_shard"
#: partitions of that index: a seller's balance items go to ``B#<crc32(seller) % 16>``
BALANCE_SHARDS = 16


def balance_key(seller_account: str, currency: str) -> dict[str, Any]:
    return {"pk": {"S": f"BALANCE#{seller_account}"}, "sk": {"S": f"CCY#{currency}"}}


def balance_shard(seller_account: str) -> str:
    """The ``balance_shard`` (index partition) of a seller's balance items: every currency of one seller in one."""
    return f"B#{shard_of(seller_account, BALANCE_SHARDS)}"


def move_update(
    table: str, seller_account: str, *, available: Money | None = None, in_transit: Money | None = None
) -> TransactWriteItemTypeDef:
    """Add signed amounts to ``available_minor`` and/or ``in_transit_minor``, unconditionally (money in,
    money back, a payout settled or given back). Creates the item at zero if it does not exist."""
    deltas = {"available_minor": available, "in_transit_minor": in_transit}
    moves = {name: delta for name, delta in deltas.items() if delta is not None}
    if not moves:
        raise InvariantViolation("a balance move needs an amount")
    currencies = {delta.currency for delta in moves.values()}
    if len(currencies) != 1:
        raise InvariantViolation(f"a balance move is in one currency: {sorted(currencies)}")
    (currency,) = currencies
    values: dict[str, Any] = {":seller": seller_account, ":ccy": currency, ":shard": balance_shard(seller_account)}
    adds = []
    for i, (name, delta) in enumerate(sorted(moves.items())):
        adds.append(f"{name} :d{i}")
        values[f":d{i}"] = delta.minor
    return {
        "Update": {
            "TableName": table,
            "Key": balance_key(seller_account, currency),
            "UpdateExpression": f"ADD {', '.join(adds)} SET seller_account = :seller, currency = :ccy, balance_shard = :shard",
            "ExpressionAttributeValues": to_values(values),
        }
    }


def reserve_update(table: str, seller_account: str, amount: Money) -> TransactWriteItemTypeDef:
    """Move ``amount`` from available to in transit, only if at least ``amount`` is available (invariant
    10: the condition is the reservation). A transaction cancelled on this item's condition means the
    payout exceeds what is available (or the seller has no settled balance at all)."""
    if not amount.is_positive():
        raise InvariantViolation(f"a payout reserves a positive amount, not {amount}")
    return {
        "Update": {
            "TableName": table,
            "Key": balance_key(seller_account, amount.currency),
            "UpdateExpression": "ADD available_minor :minus, in_transit_minor :amount",
            "ConditionExpression": "attribute_exists(pk) AND available_minor >= :amount",
            "ExpressionAttributeValues": to_values({":amount": amount.minor, ":minus": -amount.minor}),
        }
    }
