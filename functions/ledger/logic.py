"""Ledger: append the double-entry transaction of a successful payment order, exactly once."""

from __future__ import annotations

from payments.accounts.ledger import LedgerRepository
from payments.payin.repository import PaymentsRepository


def book_payin(payment_order_id: str, orders: PaymentsRepository, ledger: LedgerRepository) -> dict[str, object]:
    order = orders.get_order(payment_order_id)
    result = ledger.append_payin(order)  # refuses anything but a SUCCESS order with a PSP reference
    return {
        "payment_order_id": payment_order_id,
        "ledger_updated": True,
        "txn_id": result.txn_id,
        "appended_now": result.appended,
    }
