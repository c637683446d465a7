"""Wallet: credit the seller of a successful payment order, exactly once."""

from __future__ import annotations

from payments.accounts.wallet import WalletRepository
from payments.payin.repository import PaymentsRepository


def credit_seller(payment_order_id: str, orders: PaymentsRepository, wallets: WalletRepository) -> dict[str, object]:
    order = orders.get_order(payment_order_id)
    result = wallets.credit(order)  # refuses anything but a SUCCESS order
    return {"payment_order_id": payment_order_id, "wallet_updated": True, "applied_now": result.applied}
