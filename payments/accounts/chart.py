"""The chart of accounts: every ledger posting names a typed :class:`Account`, never a bare string.

An account is a kind and an owner (a seller, a PSP, or the platform). Its stored name is
``<kind>:<owner>`` (``seller_available:seller_books``, ``psp_receivable:adyen``,
``commission_revenue:platform``); :meth:`Account.parse` reads a stored name back, taking the kind
up to the first ``:`` only, so an owner may itself hold ``:``. Each kind knows its normal side: an
asset or an expense grows by its debits, a liability or a revenue by its credits.

What the platform owes a seller (its wallet, per currency) is the sum of its three payable accounts:

* ``seller_pending``: its net credits from charges the PSP has not yet settled (the charge booked,
  its settlement file not yet reconciled);
* ``seller_available``: settled and not paid out: what a payout may take. Refunds, chargebacks and
  second chargebacks are debited here (it may go below zero); reversals are credited back;
* ``payouts_in_transit``: in a payout the bank has not yet booked (TigerBeetle's pending transfer:
  posted to ``bank`` when the bank books it, voided back to ``seller_available`` when it fails).

The platform's own accounts: ``psp_receivable`` (what the PSP holds for us), ``bank`` (the platform's
bank account), ``commission_revenue``, ``psp_fees`` (an expense) and ``dispute_losses`` (an expense).
Its result is commission revenue minus PSP fees minus dispute losses.

The movements, each one balanced :class:`~payments.accounts.ledger.LedgerTransaction`:

================================  =========================================  ====================================
movement                          debit                                      credit
================================  =========================================  ====================================
charge succeeded                  psp_receivable (gross)                     seller_pending (net), commission_revenue
charge settled (file reconciled)  seller_pending                             seller_available
refund                            seller_available (net share),              psp_receivable (refunded)
                                  commission_revenue (its share)
chargeback, second chargeback     seller_available                           psp_receivable
chargeback reversal               psp_receivable                             seller_available
PSP fee (settlement file)         psp_fees                                   psp_receivable
PSP pays the platform             bank                                       psp_receivable
payout reserved                   seller_available                           payouts_in_transit
payout paid (bank booked it)      payouts_in_transit                         bank
payout failed (bank rejected it)  payouts_in_transit                         seller_available
payout returned (after paid)      bank                                       seller_available
================================  =========================================  ====================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from payments.kernel.errors import InvariantViolation

#: the owner of the platform's own accounts
PLATFORM = "platform"


class NormalSide(StrEnum):
    DEBIT = "DEBIT"  # assets and expenses grow by their debits
    CREDIT = "CREDIT"  # liabilities and revenue grow by their credits


class AccountKind(StrEnum):
    """The kinds of the chart; the value is the stored prefix."""

    PSP_RECEIVABLE = "psp_receivable"
    SELLER_PENDING = "seller_pending"
    SELLER_AVAILABLE = "seller_available"
    PAYOUTS_IN_TRANSIT = "payouts_in_transit"
    BANK = "bank"
    COMMISSION_REVENUE = "commission_revenue"
    PSP_FEES = "psp_fees"
    DISPUTE_LOSSES = "dispute_losses"

    @property
    def normal_side(self) -> NormalSide:
        return _NORMAL[self]

    @property
    def is_seller_payable(self) -> bool:
        """Whether the account is one of a seller's three payable accounts (its wallet's projection)."""
        return self in SELLER_PAYABLE


_NORMAL = {
    AccountKind.PSP_RECEIVABLE: NormalSide.DEBIT,
    AccountKind.SELLER_PENDING: NormalSide.CREDIT,
    AccountKind.SELLER_AVAILABLE: NormalSide.CREDIT,
    AccountKind.PAYOUTS_IN_TRANSIT: NormalSide.CREDIT,
    AccountKind.BANK: NormalSide.DEBIT,
    AccountKind.COMMISSION_REVENUE: NormalSide.CREDIT,
    AccountKind.PSP_FEES: NormalSide.DEBIT,
    AccountKind.DISPUTE_LOSSES: NormalSide.DEBIT,
}
SELLER_PAYABLE = frozenset({AccountKind.SELLER_PENDING, AccountKind.SELLER_AVAILABLE, AccountKind.PAYOUTS_IN_TRANSIT})


@dataclass(frozen=True, slots=True, order=True)
class Account:
    """One account of the chart: ``str(account)`` is its stored name."""

    kind: AccountKind
    owner: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, AccountKind):
            raise InvariantViolation(f"not an account kind of the chart: {self.kind!r}")
        if not self.owner:
            raise InvariantViolation(f"a {self.kind.value} account needs an owner")

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.owner}"

    @classmethod
    def parse(cls, name: str) -> Account:
        """A stored account name read back; a name outside the chart raises InvariantViolation."""
        kind, sep, owner = name.partition(":")
        try:
            return cls(AccountKind(kind), owner) if sep else cls._unknown(name)
        except ValueError:
            return cls._unknown(name)

    @staticmethod
    def _unknown(name: str) -> Account:
        raise InvariantViolation(f"not an account of the chart: {name!r}")

    @property
    def seller(self) -> str | None:
        """The seller whose payable account this is (None for the platform's and PSPs' accounts)."""
        return self.owner if self.kind.is_seller_payable else None

    # the chart's accounts, by name -------------------------------------------------------------------------

    @classmethod
    def psp_receivable(cls, psp: str) -> Account:
        return cls(AccountKind.PSP_RECEIVABLE, psp)

    @classmethod
    def seller_pending(cls, seller: str) -> Account:
        return cls(AccountKind.SELLER_PENDING, seller)

    @classmethod
    def seller_available(cls, seller: str) -> Account:
        return cls(AccountKind.SELLER_AVAILABLE, seller)

    @classmethod
    def payouts_in_transit(cls, seller: str) -> Account:
        return cls(AccountKind.PAYOUTS_IN_TRANSIT, seller)

    @classmethod
    def bank(cls) -> Account:
        return cls(AccountKind.BANK, PLATFORM)

    @classmethod
    def commission_revenue(cls) -> Account:
        return cls(AccountKind.COMMISSION_REVENUE, PLATFORM)

    @classmethod
    def psp_fees(cls, psp: str) -> Account:
        return cls(AccountKind.PSP_FEES, psp)

    @classmethod
    def dispute_losses(cls) -> Account:
        return cls(AccountKind.DISPUTE_LOSSES, PLATFORM)
