"""The books: each seller's wallet and the double-entry ledger, written once per money movement.

Used by pay-in (credit, append), refunds (debit, reversing transaction) and notifications
(chargebacks and their reversals).
"""
