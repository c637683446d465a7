"""The money invariants of ARCHITECTURE.md, checked over the stored data.

Used after every test scenario, by ``payments demo`` and by ``payments verify``
(locally, or against a deployed stack after an incident). Each violation names
the invariant and the ids involved. The checks read whole tables: they are an
audit, not a hot path.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from botocore.exceptions import ClientError

from payments.accounts.chart import Account, AccountKind
from payments.accounts.ledger import CREDIT, DEBIT, LedgerRepository, assert_balanced
from payments.accounts.wallet import SellerBalance, WalletRepository
from payments.kernel.dynamo import error_code
from payments.kernel.errors import InvariantViolation
from payments.ops.clikit import money
from payments.ops.payout_invariants import check_payouts
from payments.ops.psp_record import PspRecord
from payments.payin.models import OrderRecord
from payments.payin.repository import PaymentsRepository
from payments.payin.status import ORDER_TRANSITIONS, OrderStatus, PaymentStatus, payment_outcome
from payments.payouts.repository import PayoutsRepository

INVARIANTS = {
    1: "at most one PSP charge per payment_order_id",
    2: "exactly-once effects: a successful order has one wallet credit and one ledger transaction; others none",
    3: "the ledger balances: every transaction, the trial balance and the seller account totals",
    4: "each wallet equals its ledger projection (pending, available, in transit), and each charge settled once",
    5: "statuses only moved forward",
    6: "nothing is lost: every checkout is final or explicitly NEEDS_ATTENTION",
    8: "money back at most once: per order succeeded refunds + chargebacks - reversals <= charged; "
    "at most one PSP refund per refund_id, and none decided there still PENDING here unparked; "
    "each refund, chargeback, reversal and second chargeback moved wallet and ledger once",
    10: "never pay out what is not there: each payout reserved once from available; per seller, payouts not "
    "failed or returned <= settled net credits - money back; no reservation above what available held",
    11: "each payout moves money once: one ledger booking per status it reached and none other, history forward "
    "only, in transit = its PENDING and SUBMITTED payouts, PAID and RETURNED by a bank file's entry",
}


@dataclass
class Violation:
    invariant: int
    detail: str
    ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"[{self.invariant}] {INVARIANTS[self.invariant]}: {self.detail} ({', '.join(self.ids)})"


@dataclass
class Report:
    checks: Counter[int] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    orders_by_status: Counter[str] = field(default_factory=Counter)
    needs_attention: list[str] = field(default_factory=list)
    #: invariant -> why it (or a part of it) could not be checked: printed SKIPPED, never as a pass
    skipped: dict[int, str] = field(default_factory=dict)
    #: the skips the caller asked for (``--in-flight``): printed, but they do not make the run incomplete
    waived: set[int] = field(default_factory=set)
    #: invariant -> where its data came from (the PSP's record), printed with its line
    sources: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No violation found (see :attr:`passed` for "and everything was checked")."""
        return not self.violations

    @property
    def complete(self) -> bool:
        """Every check ran, but those the caller asked to skip."""
        return not set(self.skipped) - self.waived

    @property
    def passed(self) -> bool:
        return self.ok and self.complete

    def fail(self, invariant: int, detail: str, *ids: str) -> None:
        self.violations.append(Violation(invariant, detail, list(ids)))

    def skip(self, invariant: int, reason: str, *, asked: bool = False) -> None:
        previous = self.skipped.get(invariant)
        self.skipped[invariant] = f"{previous}; {reason}" if previous else reason
        if asked:
            self.waived.add(invariant)

    def results(self) -> list[dict[str, Any]]:
        """One row per invariant: its result (``ok``, ``FAIL``, ``SKIP``), checks, violations and a note."""
        rows = []
        for number, text in INVARIANTS.items():
            broken = sum(1 for v in self.violations if v.invariant == number)
            skipped = self.skipped.get(number, "")
            notes = [f"SKIPPED: {skipped}"] if skipped else []
            if number in self.sources and (self.checks[number] or broken):
                notes.append(f"PSP: {self.sources[number]}")
            result = "FAIL" if broken else "SKIP" if skipped else "ok"
            rows.append(
                {
                    "invariant": number,
                    "text": text,
                    "result": result,
                    "checks": self.checks[number],
                    "violations": broken,
                    "note": "; ".join(notes),
                }
            )
        return rows

    def summary_lines(self) -> list[str]:
        lines = []
        for number, text in INVARIANTS.items():
            broken = sum(1 for v in self.violations if v.invariant == number)
            skipped = self.skipped.get(number)
            mark = "FAIL" if broken else "SKIP" if skipped else "ok  "
            if skipped and not broken and not self.checks[number]:
                line = f"  {mark} {number}. {text}: SKIPPED: {skipped}"
            else:
                line = f"  {mark} {number}. {text}: {self.checks[number]} checks, {broken} violations"
                if skipped:
                    line += f"; SKIPPED: {skipped}"
            if number in self.sources and (self.checks[number] or broken):
                line += f" [PSP: {self.sources[number]}]"
            lines.append(line)
        return lines


def check(
    payments: PaymentsRepository,
    wallets: WalletRepository,
    ledger: LedgerRepository,
    psp_charges: list[dict[str, Any]] | None,
    *,
    expect_settled: bool = True,
    refunds: Any = None,
    psp_refunds: list[dict[str, Any]] | None = None,
    psp: PspRecord | None = None,
    payouts: Any = None,
) -> Report:
    """Check every invariant. ``expect_settled``: all accepted checkouts should have finished.

    ``psp_charges`` / ``psp_refunds``: the PSP's record (None: not available, so invariant 1, or the
    PSP's side of invariant 8, is SKIPPED); ``psp``: where they came from and whether they list every
    refund the PSP decided (a settlement report lists only what it settled so far); ``payouts``: the payouts'
    book (anything with ``scan()``; None: the payouts table of the settings, over the ledger's client)."""
    report = Report()
    if psp is not None:
        report.sources[1] = psp.source
    if psp_charges is None:
        report.skip(
            1, psp.unavailable if psp is not None and psp.unavailable else "the PSP's record of charges was not given"
        )
        psp_charges = []
    orders = {o.payment_order_id: o for o in payments.scan_orders()}
    order: OrderRecord | None  # an order of the scan, or the one a reference names (None: unknown)
    for order in orders.values():
        report.orders_by_status[order.status.value] += 1
        if order.needs_attention:
            report.needs_attention.append(order.payment_order_id)

    # 1. at most one PSP charge per order, and every charge known to us
    charges_per_order = Counter(c["merchant_reference"] for c in psp_charges)
    for charge in psp_charges:
        report.checks[1] += 1
        ref = charge["merchant_reference"]
        order = orders.get(ref)
        if charges_per_order[ref] > 1:
            report.fail(1, f"{charges_per_order[ref]} charges at the PSP", ref)
        elif order is None:
            report.fail(1, "PSP charge for an order we never stored", ref, charge["psp_reference"])
        elif order.status is OrderStatus.SUCCESS and order.psp_reference != charge["psp_reference"]:
            report.fail(1, f"order records {order.psp_reference}, PSP charged {charge['psp_reference']}", ref)
        elif order.status is not OrderStatus.SUCCESS and not order.needs_attention:
            report.fail(1, f"charged at the PSP but the order is {order.status.value}", ref)

    # 2. exactly-once wallet and ledger effects
    credits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    balances: dict[tuple[str, str], SellerBalance] = defaultdict(SellerBalance)
    wallet_adjustments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    settled_markers: dict[str, dict[str, Any]] = {}
    for item in wallets.scan():
        if item["pk"].startswith("CREDIT#"):
            credits[item["payment_order_id"]].append(item)
        elif item["pk"].startswith("WALLET#"):
            key = (item["seller_account"], item["currency"])
            balances[key] = balances[key].add(pending=item["balance_minor"])
        elif item["pk"].startswith("BALANCE#"):
            key = (item["seller_account"], item["currency"])
            balances[key] = balances[key].add(
                available=item.get("available_minor", 0), in_transit=item.get("in_transit_minor", 0)
            )
        elif item["pk"].startswith("ADJUST#"):
            wallet_adjustments[item["adjustment_id"]].append(item)
        elif item["pk"].startswith("SETTLED#"):
            settled_markers[item["payment_order_id"]] = item
    transactions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # refunds, chargebacks and reversals: checked by 3, 4 and 8, not by 2
    ledger_adjustments: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # every other transaction of the chart (settlements, PSP fees, payouts): checked by 3 and 4
    other_transactions: list[dict[str, Any]] = []
    settled_by: dict[str, list[str]] = defaultdict(list)  # order -> the settlement transactions naming it
    every_transaction = list(ledger.transactions())
    for txn in every_transaction:
        kind = txn.get("kind", "PAYIN")
        if kind == "PAYIN":
            transactions[txn["payment_order_id"]].append(txn)
        elif kind in ("REFUND", "CHARGEBACK", "CHARGEBACK_REVERSED", "SECOND_CHARGEBACK"):
            ledger_adjustments[txn["txn_id"]].append(txn)
        else:
            other_transactions.append(txn)
            if kind == "SETTLEMENT":
                for order_id in txn.get("payment_order_ids", []):
                    settled_by[order_id].append(txn["txn_id"])
    for ref in set(credits) | set(transactions) | set(orders):
        report.checks[2] += 1
        order = orders.get(ref)
        n_credit, n_txn = len(credits.get(ref, [])), len(transactions.get(ref, []))
        if order is None:
            report.fail(2, f"{n_credit} credits and {n_txn} ledger transactions for an unknown order", ref)
            continue
        if order.status is OrderStatus.SUCCESS:
            settled = order.wallet_updated and order.ledger_updated
            if (n_credit, n_txn) != (1, 1) and (settled or not order.needs_attention):
                report.fail(2, f"SUCCESS order has {n_credit} wallet credits and {n_txn} ledger transactions", ref)
            if order.wallet_updated != (n_credit == 1) or order.ledger_updated != (n_txn == 1):
                report.fail(2, "wallet_updated/ledger_updated flags disagree with the stored effects", ref)
            for credit in credits.get(ref, []):
                if (credit["amount_minor"], credit["currency"], credit["seller_account"]) != (
                    order.net.minor,
                    order.currency,
                    order.seller_account,
                ):
                    report.fail(2, "wallet credit differs from the order", ref)
            for txn in transactions.get(ref, []):
                if (txn["amount_minor"], txn["currency"], txn["psp_reference"]) != (
                    order.amount_minor,
                    order.currency,
                    order.psp_reference,
                ):
                    report.fail(2, "ledger transaction differs from the order", ref)
        elif n_credit or n_txn:
            report.fail(
                2, f"{order.status.value} order has {n_credit} wallet credits and {n_txn} ledger transactions", ref
            )

    # 3. the ledger balances
    projection: dict[tuple[Account, str], int] = defaultdict(int)
    txn_totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for group in [*transactions.values(), *ledger_adjustments.values(), other_transactions]:
        for txn in group:
            report.checks[3] += 1
            try:
                assert_balanced(txn["postings"])
            except InvariantViolation as err:
                report.fail(3, str(err), txn["txn_id"])
            for posting in txn["postings"]:
                side = 0 if posting["side"] == DEBIT else 1
                txn_totals[posting["currency"]][side] += posting["amount_minor"]
                sign = 1 if posting["side"] == CREDIT else -1
                try:
                    account = Account.parse(posting["account"])
                except InvariantViolation:
                    continue  # reported above: not an account of the chart
                projection[(account, posting["currency"])] += sign * posting["amount_minor"]
    trial = ledger.trial_balance()
    for currency in set(trial) | set(txn_totals):
        report.checks[3] += 1
        debits, credits_ = trial.get(currency, (0, 0))
        if debits != credits_:
            report.fail(
                3,
                f"trial balance {currency}: debits {money(debits, currency)} != credits {money(credits_, currency)}",
                currency,
            )
        if [debits, credits_] != txn_totals.get(currency, [0, 0]):
            report.fail(
                3,
                f"trial balance {currency} {debits}/{credits_} != sum of transactions {txn_totals.get(currency)}",
                currency,
            )
    # the accounts' running totals (what reconciliation's three-way check and the trial balance's
    # accounts read) = their postings
    account_totals = ledger.all_account_totals()
    for account, currency in sorted(set(account_totals) | set(projection)):
        report.checks[3] += 1
        kept, summed = account_totals.get((account, currency), 0), projection.get((account, currency), 0)
        if kept != summed:
            report.fail(
                3,
                f"account totals of {account}: {money(kept, currency)} != sum of its postings {money(summed, currency)}",
                str(account),
            )

    # 4. wallet = ledger projection, per part: pending = seller_pending, available = seller_available,
    # in transit = payouts_in_transit (an order parked after its wallet credit but before its ledger
    # append is a known, surfaced gap: its credit counts as in flight, not as a violation)
    ledger_parts: dict[tuple[str, str], dict[AccountKind, int]] = defaultdict(dict)
    for (account, currency), net in projection.items():
        if account.seller is not None:
            parts = ledger_parts[(account.seller, currency)]
            parts[account.kind] = parts.get(account.kind, 0) + net
    for ref, order in orders.items():
        if order.needs_attention and len(credits.get(ref, [])) == 1 and not transactions.get(ref):
            parts = ledger_parts[(order.seller_account, order.currency)]
            parts[AccountKind.SELLER_PENDING] = parts.get(AccountKind.SELLER_PENDING, 0) + order.net.minor
    for seller, currency in sorted(set(balances) | set(ledger_parts)):
        report.checks[4] += 1
        wallet = balances.get((seller, currency), SellerBalance())
        expected = SellerBalance.of_kinds(ledger_parts.get((seller, currency), {}))
        for part, kept, booked in zip(SellerBalance._fields, wallet, expected, strict=True):
            if kept != booked:
                report.fail(4, f"wallet {part} {money(kept, currency)} != ledger {money(booked, currency)}", seller)
    # settled once: a SETTLED marker per order settled, each order in one settlement transaction, SUCCESS
    for order_id in sorted(set(settled_markers) | set(settled_by)):
        report.checks[4] += 1
        order = orders.get(order_id)
        booked_in = settled_by.get(order_id, [])
        marker = settled_markers.get(order_id)
        # a charge whose net is zero (all of it commission) moves nothing: its marker has no transaction
        if marker is None or len(booked_in) != (1 if marker["amount_minor"] else 0):
            report.fail(
                4,
                f"settled {len(booked_in)} times in the ledger, marker {'present' if order_id in settled_markers else 'absent'}",
                order_id,
            )
        elif order is None or order.status is not OrderStatus.SUCCESS:
            report.fail(4, f"settled but the order is {order.status.value if order else 'unknown'}", order_id)
        elif settled_markers[order_id]["amount_minor"] != order.net.minor:
            report.fail(4, "settled an amount other than the order's net credit", order_id)

    # 5. statuses only moved forward
    for order in orders.values():
        report.checks[5] += 1
        _check_history(order, report)

    # 6. nothing is lost
    if not expect_settled:
        report.skip(6, "checkouts may still be running (--in-flight)", asked=True)
    else:
        for payment in payments.scan_payments():
            report.checks[6] += 1
            mine = [orders[i] for i in payment.payment_order_ids if i in orders]
            if len(mine) != len(payment.payment_order_ids):
                report.fail(6, "payment lacks stored orders", payment.checkout_id)
                continue
            attention = any(o.needs_attention for o in mine)
            outcome = payment_outcome([o.status for o in mine])
            if not payment.status.is_final and not attention:
                report.fail(
                    6, f"payment is {payment.status.value} with no order needing attention", payment.checkout_id
                )
            elif payment.status.is_final and payment.status is not outcome:
                report.fail(
                    6, f"payment is {payment.status.value} but its orders say {outcome.value}", payment.checkout_id
                )
            done = all(o.is_settled_internally for o in mine)
            if payment.is_payment_done != done and not attention:
                report.fail(6, f"is_payment_done is {payment.is_payment_done}, orders say {done}", payment.checkout_id)
            if payment.status is PaymentStatus.PENDING:
                report.fail(6, "payment accepted but its workflow never started", payment.checkout_id)
    if refunds is None:
        report.skip(8, "refunds and disputes were not read")
    else:
        if psp_refunds is None:
            report.skip(
                8,
                "the PSP's side (one PSP refund per refund_id, agreeing with ours): "
                + (
                    psp.unavailable
                    if psp is not None and psp.unavailable
                    else "the PSP's record of refunds was not given"
                ),
            )
        elif psp is not None:
            report.sources[8] = psp.source
        _check_money_back(
            report,
            orders,
            refunds,
            wallet_adjustments,
            ledger_adjustments,
            psp_refunds,
            expect_settled=expect_settled,
            psp_complete=psp is None or psp.complete,
        )
    in_transit = {key: balance.in_transit for key, balance in balances.items()}
    try:
        stored = list((payouts or PayoutsRepository(client=ledger.ddb, ledger=ledger)).scan())
    except ClientError as err:
        if error_code(err) != "ResourceNotFoundException":
            raise
        for number in (10, 11):
            report.skip(number, "the stage has no payouts table")
    else:
        check_payouts(report, stored, every_transaction, in_transit)
    return report


def _check_money_back(
    report: Report,
    orders: dict[str, OrderRecord],
    refunds: Any,
    wallet_adjustments: dict[str, list[dict[str, Any]]],
    ledger_adjustments: dict[str, list[dict[str, Any]]],
    psp_refunds: list[dict[str, Any]] | None,
    *,
    expect_settled: bool = True,
    psp_complete: bool = True,
) -> None:
    """Invariant 8: refunds, chargebacks and reversals. ``expect_settled``: no refund is in flight, so
    one the PSP decided must be decided here too, or parked for an operator. ``psp_complete``: the
    PSP's record lists every refund it decided (its own record; not a settlement report, which lists
    what it settled so far: a refund SUCCEEDED here and in no report yet is reconciliation's to find)."""
    reserved: dict[str, int] = defaultdict(int)
    refunded: dict[str, int] = defaultdict(int)
    charged_back: dict[str, int] = defaultdict(int)
    reversed_: dict[str, int] = defaultdict(int)
    expected: dict[str, tuple[int, str]] = {}  # adjustment id -> (signed amount, payment_order_id)
    records = refunds.scan_refunds()
    for refund in records:
        report.checks[8] += 1
        if refund.status.value != "FAILED":
            reserved[refund.payment_order_id] += refund.amount_minor
        if refund.status.value == "SUCCEEDED":
            refunded[refund.payment_order_id] += refund.amount_minor
            expected[f"refund:{refund.refund_id}"] = (-refund.amount_minor, refund.payment_order_id)
    for dispute in refunds.scan_disputes():
        report.checks[8] += 1
        ref, order_id = dispute["dispute_reference"], dispute["payment_order_id"]
        charged_back[order_id] += dispute["amount_minor"]
        expected[f"chargeback:{ref}"] = (-dispute["amount_minor"], order_id)
        if dispute.get("reversed_minor") is not None:
            reversed_[order_id] += dispute["reversed_minor"]
            expected[f"chargeback_reversed:{ref}"] = (dispute["reversed_minor"], order_id)
        if dispute.get("second_minor") is not None:  # charged back again after the reversal
            charged_back[order_id] += dispute["second_minor"]
            expected[f"second_chargeback:{ref}"] = (-dispute["second_minor"], order_id)
    for adjustment_id in set(expected) | set(wallet_adjustments) | set(ledger_adjustments):
        report.checks[8] += 1
        amount, order_id = expected.get(adjustment_id, (0, "?"))
        wallet, txns = wallet_adjustments.get(adjustment_id, []), ledger_adjustments.get(adjustment_id, [])
        if adjustment_id not in expected:
            report.fail(
                8,
                f"{len(wallet)} wallet and {len(txns)} ledger movements for no decided refund or dispute",
                adjustment_id,
            )
        elif len(txns) != 1 or len(wallet) != (0 if txns[0].get("commission_minor", 0) == abs(amount) else 1):
            report.fail(
                8, f"{len(wallet)} wallet and {len(txns)} ledger movements (expected one each)", adjustment_id, order_id
            )
        else:
            # a refund gives back commission (the ledger's commission share): the seller's wallet moves the rest
            share = txns[0].get("commission_minor", 0)
            moved = wallet[0]["delta_minor"] if wallet else 0
            if moved != amount + (share if amount < 0 else 0) or txns[0]["amount_minor"] != abs(amount):
                ccy = str(txns[0].get("currency") or "")
                report.fail(
                    8,
                    f"moved {money(moved, ccy)} (wallet) / {money(txns[0]['amount_minor'], ccy)} (ledger, "
                    f"{money(share, ccy)} of it commission), decided {money(amount, ccy)}",
                    adjustment_id,
                    order_id,
                )
    for order_id, order in orders.items():
        if not (
            order.refund_reserved_minor
            or order.chargeback_minor
            or reserved.get(order_id)
            or charged_back.get(order_id)
        ):
            continue
        report.checks[8] += 1
        kept = (
            order.refund_reserved_minor,
            order.refunded_minor,
            order.chargeback_minor,
            order.chargeback_reversed_minor,
        )
        summed = (reserved[order_id], refunded[order_id], charged_back[order_id], reversed_[order_id])
        if kept != summed:
            report.fail(
                8, f"order keeps reserved/refunded/chargeback/reversed {kept}, its records sum to {summed}", order_id
            )
        given_back = refunded[order_id] + charged_back[order_id] - reversed_[order_id]
        # more back than in is allowed only as a claim a person knows of: an open flag that needs a
        # person, or one a person resolved for at least this much (a re-run or resume never closes it)
        if given_back > order.amount_minor and not order.person_told_of_money_back(given_back):
            report.fail(
                8,
                f"gave back {money(given_back, order.currency)} of {money(order.amount_minor, order.currency)} charged, "
                "and nobody was told",
                order_id,
            )
        if reserved[order_id] > order.amount_minor:
            report.fail(
                8,
                f"refunds reserved {money(reserved[order_id], order.currency)} of {money(order.amount_minor, order.currency)} charged",
                order_id,
            )
    if psp_refunds is not None:
        ours = {r.refund_id: r for r in records}
        per_key = Counter(r["merchant_reference"] for r in psp_refunds)
        for psp_refund in psp_refunds:
            report.checks[8] += 1
            key = psp_refund["merchant_reference"]
            refund = ours.get(key)
            if per_key[key] > 1:
                report.fail(8, f"{per_key[key]} refunds at the PSP", key)
            elif refund is None:
                report.fail(8, "PSP refund for a refund we never stored", key)
            elif psp_refund.get("succeeded") and refund.status.value == "FAILED":
                report.fail(8, "refunded at the PSP but FAILED here", key)
            elif not psp_refund.get("succeeded") and refund.status.value == "SUCCEEDED":
                report.fail(8, "refused at the PSP but SUCCEEDED here", key)
            elif expect_settled and refund.status.value == "PENDING" and not refund.needs_attention:
                outcome = "refunded" if psp_refund.get("succeeded") else "refused"
                report.fail(8, f"{outcome} at the PSP, still PENDING here and not parked", key)
        for refund in records:
            if psp_complete and refund.status.value == "SUCCEEDED" and per_key[refund.refund_id] == 0:
                report.fail(8, "SUCCEEDED here, unknown at the PSP", refund.refund_id)


def _check_history(order: OrderRecord, report: Report) -> None:
    history = [OrderStatus(h["status"]) for h in order.status_history]
    if not history or history[0] is not OrderStatus.NOT_STARTED:
        report.fail(5, "history does not start at NOT_STARTED", order.payment_order_id)
        return
    for before, after in pairwise(history):
        if before not in ORDER_TRANSITIONS[after]:
            report.fail(5, f"moved {before.value} -> {after.value}", order.payment_order_id)
    if history[-1] is not order.status:
        report.fail(5, f"status {order.status.value} is not the last of its history", order.payment_order_id)


def check_current(
    expect_settled: bool = True,
    psp_charges: list[dict[str, Any]] | None = None,
    psp_refunds: list[dict[str, Any]] | None = None,
    *,
    psp_name: str | None = None,
) -> Report:
    """Check the tables named by the current settings (the local runtime or a deployed stack).

    The PSP's record comes from the PSP the stage runs (``psp_name``, default the ``PAYMENTS_PSP``
    setting): the simulator's table, or for Adyen the settlement reports reconciliation read
    (:mod:`payments.ops.psp_record`). ``psp_charges`` / ``psp_refunds``: another record of the PSP's,
    given by the caller (the dev commands pass the Adyen fake's)."""
    from payments.kernel.config import settings
    from payments.ops.psp_record import adyen_reported_record, simulator_record
    from payments.refunds.repository import RefundsRepository

    name = psp_name or settings().payments_psp
    record = adyen_reported_record() if name == "adyen" else simulator_record()
    if psp_charges is not None or psp_refunds is not None:
        given = "the PSP's record given by the caller"
        record = PspRecord(
            given if psp_refunds is not None else f"{given}; refunds: {record.source}",
            psp_charges if psp_charges is not None else record.charges,
            psp_refunds if psp_refunds is not None else record.refunds,
            complete=psp_refunds is not None or record.complete,
            unavailable=record.unavailable,
        )
    payments = PaymentsRepository()
    return check(
        payments,
        WalletRepository(payments=payments),
        LedgerRepository(payments=payments),
        record.charges,
        expect_settled=expect_settled,
        refunds=RefundsRepository(payments=payments),
        psp_refunds=record.refunds,
        psp=record,
    )
