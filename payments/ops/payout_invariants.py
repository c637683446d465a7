"""Invariants 10 and 11 of ARCHITECTURE.md (payouts), checked over the stored data.

10. **Never pay out what is not there**: each payout's reservation is booked exactly once, on the seller's
    ``seller_available`` account for the payout's amount; per seller and currency, the payouts not FAILED or
    RETURNED sum to at most the settled net credits (settlements) minus money back (refunds, chargebacks and
    second chargebacks, less reversals) booked before the last of them was reserved (money back after it
    takes available below zero: it blocks the next payout, it cannot undo one made); and no reservation took more than ``seller_available`` could have
    held when it was booked (replayed from the ledger in booking order, see :data:`CLOCK_SKEW`).
11. **Each payout moves money once**: exactly one ledger booking per status the payout reached (reserve;
    paid or failed; returned), none for a status it did not reach, each moving the payout's amount between
    the chart's accounts for that step; its history moved forward only and ends at its status; each seller's
    ``in_transit`` equals its PENDING and SUBMITTED payouts; each PAID or RETURNED payout was moved there by a
    bank file's entry (its history's source).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from payments.accounts.chart import Account, AccountKind
from payments.accounts.ledger import CREDIT, DEBIT
from payments.kernel.errors import InvariantViolation
from payments.ops.clikit import money
from payments.payouts.models import PayoutRecord
from payments.payouts.outcomes import NEXT, PayoutStatus

if TYPE_CHECKING:
    from payments.ops.invariants import Report

#: where a bank file's reconciliation names the payouts it moved (``incoming/bank/<kind>/<key>#<line>``)
BANK_SOURCE = "incoming/bank/"
#: a booking's ``booked_at`` is the writer's clock before its transaction commits: the replay of
#: ``seller_available`` counts every credit booked up to this much later and no debit booked this much earlier,
#: so that it can only under-report (two writers' clocks and a transaction's latency stay within it)
CLOCK_SKEW = timedelta(seconds=5)

#: the ledger ``kind`` of each step's booking (``payout:<id>:<step>``) and its debit and credit
STEP_KIND = {
    "reserve": "PAYOUT_RESERVED",
    "paid": "PAYOUT_PAID",
    "failed": "PAYOUT_FAILED",
    "returned": "PAYOUT_RETURNED",
}
KIND_STEP = {kind: step for step, kind in STEP_KIND.items()}
STEP_ACCOUNTS = {
    "reserve": (AccountKind.SELLER_AVAILABLE, AccountKind.PAYOUTS_IN_TRANSIT),
    "paid": (AccountKind.PAYOUTS_IN_TRANSIT, AccountKind.BANK),
    "failed": (AccountKind.PAYOUTS_IN_TRANSIT, AccountKind.SELLER_AVAILABLE),
    "returned": (AccountKind.BANK, AccountKind.SELLER_AVAILABLE),
}
#: the bookings each status has: one per status reached on the way
STEPS_OF = {
    PayoutStatus.PENDING: {"reserve"},
    PayoutStatus.SUBMITTED: {"reserve"},
    PayoutStatus.PAID: {"reserve", "paid"},
    PayoutStatus.FAILED: {"reserve", "failed"},
    PayoutStatus.RETURNED: {"reserve", "paid", "returned"},
}
#: money back, as it moves ``seller_available``: refunds, chargebacks and second chargebacks debit it, reversals
#: credit it back
MONEY_BACK_KINDS = frozenset({"REFUND", "CHARGEBACK", "SECOND_CHARGEBACK", "CHARGEBACK_REVERSED"})
IN_TRANSIT = frozenset({PayoutStatus.PENDING, PayoutStatus.SUBMITTED})
NOT_PAID_OUT = frozenset({PayoutStatus.FAILED, PayoutStatus.RETURNED})


def _signed_on(txn: dict[str, Any], kind: AccountKind, seller: str | None = None) -> dict[tuple[str, str], int]:
    """The transaction's net credit to each seller's account of ``kind`` (per seller and currency)."""
    moved: dict[tuple[str, str], int] = defaultdict(int)
    for posting in txn.get("postings", []):
        try:
            account = Account.parse(str(posting["account"]))
        except InvariantViolation:
            continue  # invariant 3 reports a posting outside the chart
        if account.kind is not kind or (seller is not None and account.owner != seller):
            continue
        sign = 1 if posting["side"] == CREDIT.value else -1 if posting["side"] == DEBIT.value else 0
        moved[(account.owner, str(posting["currency"]))] += sign * int(posting["amount_minor"])
    return moved


def _moves(txn: dict[str, Any], payout: PayoutRecord, step: str) -> bool:
    """Whether the booking moves the payout's amount from the step's debit account to its credit account."""
    debit, credit = STEP_ACCOUNTS[step]
    expected = sorted(
        [
            (_account(debit, payout.seller_account), DEBIT.value, payout.amount_minor, payout.currency),
            (_account(credit, payout.seller_account), CREDIT.value, payout.amount_minor, payout.currency),
        ]
    )
    booked = sorted(
        (str(p["account"]), str(p["side"]), int(p["amount_minor"]), str(p["currency"])) for p in txn.get("postings", [])
    )
    return booked == expected


def _account(kind: AccountKind, seller: str) -> str:
    return str(Account.bank() if kind is AccountKind.BANK else Account(kind, seller))


def _at(txn: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(txn["booked_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


def check_payouts(
    report: Report,
    payouts: Iterable[PayoutRecord],
    ledger_transactions: list[dict[str, Any]],
    in_transit: dict[tuple[str, str], int],
) -> None:
    """Invariants 10 and 11 over the payouts, the ledger's transactions and each seller's ``in_transit``
    (the wallets' balance items, per seller and currency)."""
    records = {p.payout_id: p for p in payouts}
    bookings: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    settled: dict[tuple[str, str], int] = defaultdict(int)
    money_back_at: dict[tuple[str, str], list[tuple[datetime | None, int]]] = defaultdict(list)
    available_moves: list[tuple[datetime, dict[tuple[str, str], int], dict[str, Any]]] = []
    unordered: list[str] = []
    for txn in ledger_transactions:
        kind = str(txn.get("kind", "PAYIN"))
        if kind in KIND_STEP:
            bookings[str(txn.get("payout_id", "?"))][KIND_STEP[kind]].append(txn)
        elif kind == "SETTLEMENT":
            for key, amount in _signed_on(txn, AccountKind.SELLER_AVAILABLE).items():
                settled[key] += amount
        elif kind in MONEY_BACK_KINDS:
            for key, amount in _signed_on(txn, AccountKind.SELLER_AVAILABLE).items():
                money_back_at[key].append((_at(txn), -amount))
        moved = _signed_on(txn, AccountKind.SELLER_AVAILABLE)
        if moved:
            at = _at(txn)
            if at is None:
                unordered.append(str(txn.get("txn_id")))
            else:
                available_moves.append((at, moved, txn))

    # 10. the reservation, once, of the payout's amount from available
    for payout_id, payout in sorted(records.items()):
        report.checks[10] += 1
        reserved = bookings.get(payout_id, {}).get("reserve", [])
        if len(reserved) != 1:
            report.fail(10, f"{payout.status} payout has {len(reserved)} reservation bookings", payout_id)
        elif not _moves(reserved[0], payout, "reserve"):
            report.fail(10, "its reservation booking does not move the payout's amount from available", payout_id)
    # 10. per seller and currency: paid out (not failed or returned) <= settled - money back, counting the money
    # back booked before the last of those payouts was reserved: money back after it takes available below
    # zero, which blocks payouts (the replay below) but cannot undo one already made
    paid_out: dict[tuple[str, str], int] = defaultdict(int)
    last_reserved: dict[tuple[str, str], datetime | None] = {}
    for payout in records.values():
        if payout.status not in NOT_PAID_OUT:
            key = (payout.seller_account, payout.currency)
            paid_out[key] += payout.amount_minor
            reserve = bookings.get(payout.payout_id, {}).get("reserve", [])
            at = _at(reserve[0]) if reserve else None
            seen = last_reserved.get(key, at)
            last_reserved[key] = None if at is None or seen is None else max(at, seen)
    money_back: dict[tuple[str, str], int] = defaultdict(int)
    for key, entries in money_back_at.items():
        until = last_reserved.get(key)
        money_back[key] = sum(a for at, a in entries if until is None or at is None or at < until - CLOCK_SKEW)
    for seller, currency in sorted(paid_out):  # no payout: nothing paid out (money back alone is invariant 8's)
        report.checks[10] += 1
        out, basis = paid_out[(seller, currency)], settled[(seller, currency)] - money_back[(seller, currency)]
        if out > basis:
            report.fail(
                10,
                f"payouts not failed or returned {money(out, currency)} > settled {money(settled[(seller, currency)], currency)}"
                f" - money back {money(money_back[(seller, currency)], currency)}",
                seller,
            )
    # 10. no reservation above what seller_available could hold when it was booked
    if unordered:
        report.skip(10, f"the replay of available: {len(unordered)} bookings have no booked_at ({unordered[0]})")
    else:
        _replay_available(report, available_moves)

    # 11. one booking per status reached, and none other
    for payout_id in sorted(set(records) | set(bookings)):
        report.checks[11] += 1
        found = records.get(payout_id)
        steps = bookings.get(payout_id, {})
        if found is None:
            report.fail(11, f"ledger bookings {sorted(steps)} for a payout that does not exist", payout_id)
            continue
        expected = STEPS_OF[found.status]
        for step in sorted(set(expected) | set(steps)):
            booked = steps.get(step, [])
            if len(booked) != (1 if step in expected else 0):
                report.fail(11, f"{found.status} payout has {len(booked)} '{step}' bookings", payout_id)
            elif booked and not _moves(booked[0], found, step):
                report.fail(11, f"its '{step}' booking does not move the payout's amount as the chart says", payout_id)
        _check_history(report, found)
    # 11. in transit = the payouts not yet booked by the bank
    transit: dict[tuple[str, str], int] = defaultdict(int)
    for payout in records.values():
        if payout.status in IN_TRANSIT:
            transit[(payout.seller_account, payout.currency)] += payout.amount_minor
    for seller, currency in sorted(set(transit) | {k for k, v in in_transit.items() if v}):
        report.checks[11] += 1
        kept, owed = in_transit.get((seller, currency), 0), transit[(seller, currency)]
        if kept != owed:
            report.fail(
                11,
                f"in transit {money(kept, currency)} != its PENDING and SUBMITTED payouts {money(owed, currency)}",
                seller,
            )


def _check_history(report: Report, payout: PayoutRecord) -> None:
    history = [entry.status for entry in payout.history]
    if not history or history[0] is not PayoutStatus.PENDING:
        report.fail(11, "history does not start at PENDING", payout.payout_id)
        return
    for before, after in pairwise(history):
        if after not in NEXT[before]:
            report.fail(11, f"moved {before} -> {after}", payout.payout_id)
    if history[-1] is not payout.status:
        report.fail(11, f"status {payout.status} is not the last of its history", payout.payout_id)
    for entry in payout.history:
        if entry.status in (PayoutStatus.PAID, PayoutStatus.RETURNED) and not entry.source.startswith(BANK_SOURCE):
            report.fail(11, f"{entry.status} by '{entry.source[:80]}', not by a bank file's entry", payout.payout_id)


def _replay_available(
    report: Report,
    moves: list[tuple[datetime, dict[tuple[str, str], int], dict[str, Any]]],
) -> None:
    """Each reservation against the most ``seller_available`` could have held when it committed: every credit
    booked before it (or within :data:`CLOCK_SKEW` after), minus every debit booked more than CLOCK_SKEW
    before it. The reservation's condition (available >= amount) is what makes this hold; a reservation above
    even this bound was booked without it."""
    by_account: dict[tuple[str, str], list[tuple[datetime, int, dict[str, Any]]]] = defaultdict(list)
    for at, moved, txn in moves:
        for key, amount in moved.items():
            by_account[key].append((at, amount, txn))
    for key, entries in sorted(by_account.items()):
        seller, currency = key
        for at, amount, txn in entries:
            if txn.get("kind") != STEP_KIND["reserve"] or amount >= 0:
                continue
            report.checks[10] += 1
            payout_id = str(txn.get("payout_id", "?"))
            at_most = sum(
                moved
                for when, moved, other in entries
                if other is not txn
                and ((moved > 0 and when <= at + CLOCK_SKEW) or (moved < 0 and when < at - CLOCK_SKEW))
            )
            if -amount > at_most:
                report.fail(
                    10,
                    f"reserved {money(-amount, currency)} when available held at most {money(at_most, currency)}",
                    payout_id,
                    seller,
                )
