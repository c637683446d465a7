"""A model-based test of money: a hypothesis ``RuleBasedStateMachine`` that drives the system
through its public interfaces only -- ``POST /v1/payments``, ``POST /v1/refunds``, ``POST /v1/payouts``,
the GETs, signed notifications posted to ``/v1/psp/notifications``, the PSP's settlement file reconciled
by the bucket's trigger, and the operator's ``payments payouts run`` and ``payments bank close-day``
(the simulated bank's files reconciled by theirs) -- and after every step compares what the system shows with a small reference
model of money:

* per order: charged, refunded (succeeded refunds), charged back (chargebacks standing: booked,
  minus reversed, plus second chargebacks), and its status;
* per refund: PENDING, SUCCEEDED or FAILED;
* per seller and currency: the wallet's ``pending`` (charges no reconciled settlement file reported
  yet), ``available`` (settled charges, minus money back -- refunds and chargebacks, taken from
  available whether the charge was settled or not, so it may go below zero -- minus payouts not
  FAILED or RETURNED) and ``in_transit`` (payouts PENDING or SUBMITTED); the commission is zero (the
  model's runtime sets none);
* per payout: PENDING, SUBMITTED, PAID, FAILED or RETURNED, as the contract's test IBANs say (each
  seller registers one: paid, rejected in the bank's pain.002, or booked and returned at the bank's
  next close), and the returning seller's payout account flagged invalid after its return;
* the ledger: balanced in every currency (trial balance);
* per day: what the PSP recorded and settled for the example's orders (charges and modifications, in
  the PSP's own minor units: ISO 4217 for the simulator, Adyen's table for Adyen), and the
  reconciliation of that day's file has no mismatch on them;
* the events (``payments_dev.event_invariants``), at the end of every ``MODEL_EVENTS_EVERY``-th clean
  example (4 unless told; 0: never): every change committed in the runtime's tables heard under exactly
  one event id, no event without its change, sequences in the order the items keep, every event valid
  against its schema.

The model encodes the behaviour the contract declares correct: an early CHARGEBACK eventually takes
the money off the seller, a refund may share its order's id, Adyen's minor units follow Adyen's
table (ISK refused on an Adyen stage), a refund whose workflow did not start completes on the
client's retry, a signed field of the wrong JSON type is refused, an order is refundable again
once its chargeback is reversed, concurrent payouts never exceed what is available, and a payout is
refused while available is zero or below zero.

Each example uses fresh ids (orders, refunds, sellers), so examples share one runtime per PSP and
never see each other's money; the ledger is checked for balance only, as it holds every example.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from payments.kernel import clock
from payments.kernel.money import exponent, format_minor
from payments.payouts.bank.simulated import TEST_IBAN_PAID, TEST_IBAN_REJECTED, TEST_IBAN_RETURNED
from payments.payouts.run import scheduled_payout_id
from tests.model.system import ADYEN_DISPUTED, Notification, System, fresh_id

SETTLE_TIMEOUT_S = float(os.environ.get("MODEL_SETTLE_TIMEOUT", "40"))
#: the events' invariant runs after every this many clean examples, per PSP (0: never)
EVENTS_EVERY = int(os.environ.get("MODEL_EVENTS_EVERY", "4"))
#: clean examples ended, per PSP
_CLEAN_EXAMPLES: Counter[str] = Counter()
SIMULATOR_CURRENCIES = ("USD", "EUR", "JPY", "KWD", "CLP", "IDR", "ISK")
ADYEN_CURRENCIES = ("USD", "EUR", "JPY", "KWD")
ADYEN_DIFFERING = ("CLP", "IDR")
#: the one currency with a payout rail (SEPA credit transfer), and the stage's scheduled-payout minimum in it
PAYOUT_CURRENCY = "EUR"
PAYOUT_MINIMUM_MINOR = 100
#: the contract's test IBANs (CONTRACT.md "Payouts"): what the simulated bank does with a payout to each
PAYOUT_IBANS = {
    "paid": TEST_IBAN_PAID,
    "rejected": TEST_IBAN_REJECTED,  # RJCT AC01 in the pain.002
    "returned": TEST_IBAN_RETURNED,  # booked, then returned (AC04) at the next day's close
}
DISPUTE_STEPS = ("CHARGEBACK", "CHARGEBACK_REVERSED", "SECOND_CHARGEBACK")
NOTIFICATION_ORDER = {
    "AUTHORISATION": 0,
    "REFUND": 1,
    "CHARGEBACK": 2,
    "CHARGEBACK_REVERSED": 3,
    "SECOND_CHARGEBACK": 4,
}


def wait_until(predicate: Callable[[], bool], timeout: float, first: float = 0.02, most: float = 0.25) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes, backing off from ``first`` to ``most``
    seconds: each poll is public requests that take the CPU the system needs to get there (a fixed
    50 ms poll of a running checkout took about a third of the machine from its own workflow)."""
    deadline = time.monotonic() + timeout
    interval = first
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
        interval = min(interval * 2, most)
    return bool(predicate())


class ModelViolation(AssertionError):
    """The system and the reference model of money disagree."""


# --- the reference model --------------------------------------------------------------------------
@dataclass
class Order:
    order_id: str
    checkout_id: str
    seller: str
    currency: str
    minor: int  # ISO 4217 minor units, as the API
    token: str
    state: str  # SUCCESS | FAILED | AWAITING (the PSP's AUTHORISATION decides)
    refunds: list[str] = field(default_factory=list)
    disputes: list[str] = field(default_factory=list)


@dataclass
class Refund:
    refund_id: str
    order_id: str
    minor: int
    key: str
    body: dict[str, Any]
    status: str = "PENDING"


@dataclass
class Dispute:
    reference: str
    order_id: str
    minor: int
    raised: list[str] = field(default_factory=list)  # steps the PSP raised, in order
    delivered: set[str] = field(default_factory=set)  # steps posted to the webhook


@dataclass
class Payout:
    payout_id: str
    seller: str
    minor: int  # EUR cents
    status: str = "PENDING"  # PENDING | SUBMITTED | PAID | FAILED | RETURNED
    currency: str = PAYOUT_CURRENCY


@dataclass
class Balance:
    """One seller's balance in one currency, in ISO minor units (the wallet API's three parts)."""

    pending: int = 0
    available: int = 0
    in_transit: int = 0

    @property
    def amount(self) -> int:
        return self.pending + self.available + self.in_transit


class MoneyModel:
    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}
        self.disputes: dict[str, Dispute] = {}
        self.refused_checkouts: list[str] = []
        self.settled: set[str] = set()  # orders whose charge a reconciled settlement file moved to available
        self.payouts: dict[str, Payout] = {}
        self.fates: dict[str, str] = {}  # seller -> what the simulated bank does with its IBAN (PAYOUT_IBANS)
        self.account_valid: dict[str, bool] = {}  # seller -> its payout account usable (False once returned)

    def applied_steps(self, d: Dispute) -> list[str]:
        """The steps of a dispute booked here: each once delivered, after its predecessor was booked,
        and the chargeback only on an order that is SUCCESS here (an early one waits for it)."""
        if self.orders[d.order_id].state != "SUCCESS":
            return []
        applied = []
        for step in DISPUTE_STEPS:
            if step not in d.delivered:
                break
            applied.append(step)
        return applied

    def charged_back(self, order: Order) -> int:
        total = 0
        for ref in order.disputes:
            d = self.disputes[ref]
            for step in self.applied_steps(d):
                total += -d.minor if step == "CHARGEBACK_REVERSED" else d.minor
        return total

    def charged(self, order: Order) -> int:
        return order.minor if order.state == "SUCCESS" else 0

    def refunded(self, order: Order) -> int:
        return sum(self.refunds[r].minor for r in order.refunds if self.refunds[r].status == "SUCCEEDED")

    def reserved(self, order: Order) -> int:
        return sum(self.refunds[r].minor for r in order.refunds if self.refunds[r].status != "FAILED")

    def refundable(self, order: Order) -> int:
        """The contract: the charge minus succeeded and pending refunds minus chargebacks standing."""
        return self.charged(order) - self.reserved(order) - self.charged_back(order)

    def balances(self, seller: str) -> dict[str, Balance]:
        """Per currency: a charge is pending until settled, then available; money back (refunds,
        chargebacks) is taken from available whether the charge was settled or not; a payout moves its
        amount from available to in transit, leaves when PAID and comes back to available when FAILED or
        RETURNED."""
        out: dict[str, Balance] = {}
        for o in self.orders.values():
            if o.seller == seller and o.state == "SUCCESS":
                b = out.setdefault(o.currency, Balance())
                if o.order_id in self.settled:
                    b.available += self.charged(o)
                else:
                    b.pending += self.charged(o)
                b.available -= self.refunded(o) + self.charged_back(o)
        for p in self.payouts.values():
            if p.seller == seller:
                b = out.setdefault(p.currency, Balance())
                if p.status in ("PENDING", "SUBMITTED"):
                    b.available -= p.minor
                    b.in_transit += p.minor
                elif p.status == "PAID":
                    b.available -= p.minor
        return out

    def available(self, seller: str, currency: str = "EUR") -> int:
        return self.balances(seller).get(currency, Balance()).available


def amount_text(minor: int, currency: str) -> str:
    return format_minor(minor, currency)


def decimal_of(text: Any) -> Decimal:
    return Decimal(str(text)) if text not in (None, "") else Decimal(0)


# --- the machine ----------------------------------------------------------------------------------
class MoneyMachine(RuleBasedStateMachine):
    """Bound to a running :class:`System` by :func:`machine_for`."""

    system: System
    steps: Counter[str]  # per PSP: rules run (across examples)
    odd_replies: list[str]  # answers outside the contract that a retry got past (printed by the test)
    reached: Counter[
        str
    ]  # how often the money of payouts moved each way (printed by the test: coverage, not a verdict)

    def __init__(self) -> None:
        super().__init__()
        self.model = MoneyModel()
        self.sellers = [fresh_id("sel"), fresh_id("sel")]
        self.outbox: list[Notification] = []  # signed notifications the PSP sent, not yet delivered
        self.sent: list[Notification] = []  # delivered at least once
        #: the day the example began: an example runs in real time and may cross midnight (UTC), after which
        #: the PSP records its charges and modifications on the next day, in the next day's file
        self.first_day = clock.now().date()
        self._clean = True

    # --- helpers ---------------------------------------------------------------------------------
    def _days(self) -> list[str]:
        """Every day from the example's first to today, in order (one, unless it crossed midnight)."""
        today = clock.now().date()
        return [(self.first_day + timedelta(days=n)).isoformat() for n in range((today - self.first_day).days + 1)]

    def _settle_every_day(self, ids: set[str]) -> None:
        """Each day's settlement file since the example began, written and reconciled in order: no mismatch
        about this example's orders in any of them."""
        for day in self._days():
            report = self.system.settle_and_reconcile(day)
            ours = [m for m in report.get("mismatches", []) if m.get("payment_order_id") in ids]
            if ours:
                raise ModelViolation(f"reconciliation of {report.get('source_key')}: {ours}")

    @property
    def psp(self) -> Any:
        return self.system.psp

    def _step(self) -> None:
        self.steps[self.psp.name] += 1
        self._clean = False  # until the invariant has seen the system agree after this step

    def currencies(self) -> tuple[str, ...]:
        if not self.psp.is_adyen:
            return SIMULATOR_CURRENCIES
        return ADYEN_CURRENCIES + ADYEN_DIFFERING

    def unit(self, currency: str) -> int:
        """The smallest amount both our API and the PSP can express, in ISO minor units."""
        iso = exponent(currency)
        psp = self.psp.wire_exponent(currency, iso)
        return 10 ** max(0, iso - psp)

    def to_psp(self, minor: int, currency: str) -> int:
        iso = exponent(currency)
        psp = self.psp.psp_exponent(currency, iso)
        return minor * 10 ** (psp - iso) if psp >= iso else minor // 10 ** (iso - psp)

    def _amount(self, data: Any, currency: str, most: int, label: str) -> int:
        """A positive multiple of the currency's unit, at most ``most`` (ISO minor units)."""
        unit = self.unit(currency)
        units = data.draw(st.integers(min_value=1, max_value=max(1, most // unit)), label=label)
        return int(units * unit)

    def _drain(self) -> None:
        self.outbox.extend(self.psp.drain())
        # in the order of what they are about, not of their arrival: the draws replay exactly
        self.outbox.sort(key=self._position)

    def _position(self, n: Notification) -> tuple[int, int]:
        kind = NOTIFICATION_ORDER.get(n.kind, 9)
        known: dict[str, Any]
        for known in (self.model.orders, self.model.refunds, self.model.disputes):
            if n.ref in known:
                return kind, list(known).index(n.ref)
        return kind, -1

    def _await_refund_notification(self, refund_id: str) -> None:
        """The REFUND notification the PSP sends once the refund workflow asked it (Adyen decides the
        refund by it; the simulator's comes after its answer): held before going on, so the next step
        sees the same held notifications on every run."""

        def arrived() -> bool:
            if self.psp.is_adyen:
                self.outbox.extend(self.psp.drain())
            elif not any(n.kind == "REFUND" and n.ref == refund_id for n in self.outbox):
                found = self.psp.refund_notification(refund_id)
                if found is not None:
                    self.outbox.append(found)
            return any(n.kind == "REFUND" and n.ref == refund_id for n in self.outbox)

        if not wait_until(arrived, SETTLE_TIMEOUT_S):
            raise ModelViolation(f"the PSP never sent the REFUND notification of {refund_id}")
        self._drain()

    def _orders(self, pred: Callable[[Order], bool]) -> list[Order]:
        return [o for o in self.model.orders.values() if pred(o)]

    def _refundable_orders(self) -> list[Order]:
        return self._orders(lambda o: True)

    # --- checkouts ---------------------------------------------------------------------------------
    @initialize(fates=st.tuples(st.sampled_from(sorted(PAYOUT_IBANS)), st.sampled_from(sorted(PAYOUT_IBANS))))
    def start(self, fates: tuple[str, str]) -> None:
        """Each seller registers a payout account with one of the contract's test IBANs: paid, rejected by
        the bank, or paid and then returned."""
        self._drain()
        self.outbox.clear()  # notifications of earlier examples are theirs
        for seller, fate in zip(self.sellers, fates, strict=True):
            reply = self.system.register_payout_account(seller, PAYOUT_IBANS[fate])
            if reply.status != 200:
                raise ModelViolation(f"registering the {fate} test IBAN for {seller} answered {reply.status}")
            self.model.fates[seller] = fate
            self.model.account_valid[seller] = True

    @rule(data=st.data())
    def checkout(self, data: Any) -> None:
        """A checkout of one or two orders, in currencies of 0, 2 and 3 decimals (and those where Adyen
        differs from ISO), with a token that succeeds, is declined, refuses refunds or (Adyen) awaits its
        AUTHORISATION."""
        self._step()
        token = data.draw(st.sampled_from(self.psp.tokens), label="token")
        count = data.draw(st.integers(1, 2), label="orders")
        orders = []
        for _ in range(count):
            # the payout rail's currency drawn more often: its sellers get paid
            currency = data.draw(st.sampled_from((PAYOUT_CURRENCY,) * 2 + self.currencies()), label="currency")
            minor = self._amount(data, currency, 10 ** exponent(currency) * 5000, "amount")
            seller = data.draw(st.sampled_from(self.sellers), label="seller")
            orders.append((fresh_id("po"), seller, currency, minor))
        checkout_id = fresh_id("chk")
        body = {
            "checkout_id": checkout_id,
            "buyer_info": {"buyer_id": "buyer_model", "email": "model@example.com"},
            "payment_method": {"type": "card", "token": token},
            "payment_orders": [
                {"payment_order_id": oid, "seller_account": s, "amount": amount_text(m, c), "currency": c}
                for oid, s, c, m in orders
            ],
        }
        reply = self.system.pay(body, fresh_id("key"))
        if reply.status != 202:
            raise ModelViolation(f"checkout {body} answered {reply.status}: {reply.body}")
        state = {"tok_chargeDeclined": "FAILED", "tok_adyenReceived": "AWAITING"}.get(token, "SUCCESS")
        for oid, s, c, m in orders:
            self.model.orders[oid] = Order(oid, checkout_id, s, c, m, token, state)
        self._wait_checkout(checkout_id)
        self._drain()

    def _wait_checkout(self, checkout_id: str) -> None:
        def done() -> bool:
            reply = self.system.payment(checkout_id)
            if reply.status != 200:  # seen once under load right after the 202: noted, polled again
                self.odd_replies.append(f"GET /v1/payments/{checkout_id} after its 202: {reply.status} {reply.body}")
                return False
            body = reply.body
            return bool(
                body["is_payment_done"]
                or body["status"] == "FAILED"
                or (
                    all(o["needs_attention"] for o in body["payment_orders"] if o["status"] != "SUCCESS")
                    and any(o["needs_attention"] for o in body["payment_orders"])
                )
            )

        if not wait_until(done, SETTLE_TIMEOUT_S):
            raise ModelViolation(f"checkout {checkout_id} not done within {SETTLE_TIMEOUT_S}s")

    @precondition(lambda self: self.psp.is_adyen)
    @rule(data=st.data())
    def checkout_in_a_disputed_currency(self, data: Any) -> None:
        """ISK (Adyen's exponent disputed) is refused at the API on an Adyen stage, naming the field;
        nothing is stored."""
        self._step()
        currency = data.draw(st.sampled_from(sorted(ADYEN_DISPUTED)), label="currency")
        checkout_id = fresh_id("chk")
        body = {
            "checkout_id": checkout_id,
            "buyer_info": {"buyer_id": "buyer_model"},
            "payment_method": {"type": "card", "token": "tok_visa"},
            "payment_orders": [
                {
                    "payment_order_id": fresh_id("po"),
                    "seller_account": self.sellers[0],
                    "amount": "100",
                    "currency": currency,
                }
            ],
        }
        reply = self.system.pay(body, fresh_id("key"))
        fields = [e.get("field") for e in (reply.body or {}).get("errors", [])] if isinstance(reply.body, dict) else []
        if reply.status != 422 or "payment_orders[0].currency" not in fields:
            raise ModelViolation(f"a checkout in {currency} on an Adyen stage answered {reply.status}: {reply.body}")
        if self.system.payment(checkout_id).status != 404:
            raise ModelViolation(f"the refused checkout {checkout_id} was stored")

    # --- refunds -----------------------------------------------------------------------------------------
    def _refund_body(self, order: Order, refund_id: str, minor: int | None) -> dict[str, Any]:
        body = {
            "refund_id": refund_id,
            "payment_order_id": order.order_id,
            "currency": order.currency,
            "reason": "model",
        }
        if minor is not None:
            body["amount"] = amount_text(minor, order.currency)
        return body

    def _refund_id(self, data: Any, order: Order) -> str:
        """A fresh id, or the order's own id (ids are per kind: a refund may share its order's)."""
        reuse_allowed = order.order_id not in self.model.refunds
        if reuse_allowed and data.draw(st.booleans(), label="refund_id == payment_order_id"):
            return order.order_id
        return fresh_id("rf")

    def _expect_refund_answer(self, order: Order, minor: int | None, reply: Any, what: str) -> int | None:
        """Check one refund answer against the model; returns the amount reserved (None: refused)."""
        if order.state != "SUCCESS":
            if reply.status != 409 or not str(reply.body.get("type", "")).endswith("order-not-refundable"):
                raise ModelViolation(f"{what} of an order {order.state} answered {reply.status}: {reply.body}")
            return None
        remaining = self.model.refundable(order)
        asked = remaining if minor is None else minor
        if asked <= 0 or asked > remaining:
            if reply.status != 422 or not str(reply.body.get("type", "")).endswith("refund-exceeds-remaining"):
                raise ModelViolation(
                    f"{what} of {asked} with {remaining} refundable answered {reply.status}: {reply.body}"
                )
            return None
        if reply.status != 202:
            raise ModelViolation(f"{what} of {asked} with {remaining} refundable answered {reply.status}: {reply.body}")
        return asked

    def _record_refund(self, order: Order, refund_id: str, minor: int, key: str, body: dict[str, Any]) -> None:
        self.model.refunds[refund_id] = Refund(refund_id, order.order_id, minor, key, body)
        order.refunds.append(refund_id)
        if not self.psp.is_adyen:  # the simulator answers the workflow at once; Adyen by its notification
            self.model.refunds[refund_id].status = "FAILED" if order.token == "tok_refundFails" else "SUCCEEDED"
        self._await_refund_notification(refund_id)

    @precondition(lambda self: bool(self._refundable_orders()))
    @rule(data=st.data())
    def refund(self, data: Any) -> None:
        """A refund: all that remains (amount omitted), part of it, or more than remains."""
        self._step()
        order = data.draw(st.sampled_from(self._refundable_orders()), label="order")
        shape = data.draw(st.sampled_from(["all", "part", "more"]), label="shape")
        remaining = max(0, self.model.refundable(order))
        unit = self.unit(order.currency)
        minor: int | None
        if shape == "all":
            minor = None
        elif shape == "part":
            minor = self._amount(data, order.currency, max(unit, remaining), "amount")
        else:
            minor = remaining + unit * data.draw(st.integers(1, 3), label="over")
        refund_id = self._refund_id(data, order)
        key = fresh_id("key")
        body = self._refund_body(order, refund_id, minor)
        reply = self.system.refund(body, key)
        reserved = self._expect_refund_answer(order, minor, reply, f"refund {refund_id}")
        if reserved is not None:
            self._record_refund(order, refund_id, reserved, key, body)

    @precondition(lambda self: bool(self._orders(lambda o: o.state == "SUCCESS")))
    @rule(data=st.data())
    def concurrent_refunds(self, data: Any) -> None:
        """Two or three refunds of one order at once: together they never exceed what is refundable,
        and one is refused only when it did not fit."""
        self._step()
        # not an order whose refunds all fail: a refund that failed at once gives its reservation back, so
        # how many of the burst are accepted depends on timing (right, but not reproducible)
        candidates = [o for o in self._refundable_orders() if o.state == "SUCCESS" and o.token != "tok_refundFails"]
        if not candidates:
            return
        order = data.draw(st.sampled_from(candidates), label="order")
        remaining = max(0, self.model.refundable(order))
        unit = self.unit(order.currency)
        n = data.draw(st.integers(2, 3), label="refunds")
        # one amount for all: how many fit does not depend on which request wins (reproducible)
        each = self._amount(data, order.currency, max(unit, remaining), "amount")
        amounts = [each] * n
        requests = [(fresh_id("rf"), fresh_id("key"), a) for a in amounts]
        barrier = threading.Barrier(n)

        def send(request: tuple[str, str, int]) -> Any:
            refund_id, key, minor = request
            barrier.wait(timeout=10)
            return self.system.refund(self._refund_body(order, refund_id, minor), key)

        with ThreadPoolExecutor(n) as pool:
            replies = list(pool.map(send, requests))
        accepted = [(r, rep) for r, rep in zip(requests, replies, strict=True) if rep.status == 202]
        total = sum(r[2] for r, _ in accepted)
        if total > remaining:
            raise ModelViolation(f"concurrent refunds {amounts} of {remaining} refundable: {total} accepted")
        for request, reply in zip(requests, replies, strict=True):
            if reply.status == 202:
                continue
            refused = reply.status == 422 and str(reply.body.get("type", "")).endswith("refund-exceeds-remaining")
            if not refused or request[2] <= remaining - total:
                raise ModelViolation(
                    f"concurrent refund of {request[2]} ({remaining} refundable, {total} accepted) answered "
                    f"{reply.status}: {reply.body}"
                )
        for (refund_id, key, minor), _ in accepted:
            self._record_refund(order, refund_id, minor, key, self._refund_body(order, refund_id, minor))

    @precondition(lambda self: bool(self._orders(lambda o: o.state == "SUCCESS")))
    @rule(data=st.data())
    def refund_whose_workflow_start_fails(self, data: Any) -> None:
        """StartExecution fails once for a refund; the client retries (same key, same body) and the
        refund completes as any other."""
        self._step()
        candidates = [o for o in self._refundable_orders() if o.state == "SUCCESS" and self.model.refundable(o) > 0]
        if not candidates:
            return
        order = data.draw(st.sampled_from(candidates), label="order")
        minor = self._amount(data, order.currency, self.model.refundable(order), "amount")
        refund_id, key = fresh_id("rf"), fresh_id("key")
        body = self._refund_body(order, refund_id, minor)
        with self.system.start_execution_fails(refund_id) as failed:
            first = self.system.refund(body, key)
        if not failed or first.status not in (202, 500, 502, 503):
            raise ModelViolation(f"refund {refund_id} with a failing start answered {first.status}: {first.body}")
        again = self.system.refund(body, key)
        if again.status != 202:
            raise ModelViolation(f"the retry of refund {refund_id} answered {again.status}: {again.body}")
        self._record_refund(order, refund_id, minor, key, body)

    # --- the PSP: disputes and notifications --------------------------------------------------------
    def _chargeable(self) -> list[Order]:
        # SUCCESS, or AWAITING its AUTHORISATION: an early chargeback
        return self._orders(lambda o: len(o.disputes) < 2 and o.state != "FAILED")

    @precondition(lambda self: bool(self._chargeable()))
    @rule(data=st.data())
    def psp_raises_chargeback(self, data: Any) -> None:
        """The cardholder's bank disputes all or part of a charge: the PSP records it and sends its
        signed CHARGEBACK, which the model holds (delivered later, early, twice or out of order)."""
        self._step()
        order = data.draw(st.sampled_from(self._chargeable()), label="order")
        full = data.draw(st.booleans(), label="whole charge")
        minor = order.minor if full else self._amount(data, order.currency, order.minor, "amount")
        notification = self.psp.raise_chargeback(order.order_id, self.to_psp(minor, order.currency))
        self.model.disputes[notification.ref] = Dispute(notification.ref, order.order_id, minor, ["CHARGEBACK"])
        order.disputes.append(notification.ref)
        self.outbox.append(notification)

    def _next_steps(self) -> list[tuple[Dispute, str]]:
        out = []
        for d in self.model.disputes.values():
            done = len(d.raised)
            if done < len(DISPUTE_STEPS):
                out.append((d, DISPUTE_STEPS[done]))
        return out

    @precondition(lambda self: bool(self._next_steps()))
    @rule(data=st.data())
    def psp_raises_next_dispute_step(self, data: Any) -> None:
        """The defence won (CHARGEBACK_REVERSED), then lost after all (SECOND_CHARGEBACK)."""
        self._step()
        dispute, step = data.draw(st.sampled_from(self._next_steps()), label="dispute step")
        notification = self.psp.dispute_step(dispute.reference, step)
        dispute.raised.append(step)
        self.outbox.append(notification)

    def _deliverable(self) -> list[Notification]:
        """Held notifications that can be delivered alone: anything but a dispute step whose
        predecessor was not delivered, or a chargeback before its charge is known here."""
        out = []
        for n in self.outbox:
            if n.kind in DISPUTE_STEPS:
                d = self.model.disputes[n.ref]
                i = DISPUTE_STEPS.index(n.kind)
                if i > 0 and DISPUTE_STEPS[i - 1] not in d.delivered:
                    continue
                if n.kind == "CHARGEBACK" and self.model.orders[d.order_id].state == "AWAITING":
                    continue
            out.append(n)
        return out

    def _apply(self, n: Notification) -> None:
        """What a delivered notification means to the model of money."""
        if n.kind == "AUTHORISATION":
            order = self.model.orders.get(n.ref)
            if order is not None and order.state == "AWAITING":
                order.state = "SUCCESS" if n.item.get("success") == "true" else "FAILED"
        elif n.kind == "REFUND":
            refund = self.model.refunds.get(n.ref)
            if refund is not None and refund.status == "PENDING":
                refund.status = "SUCCEEDED" if n.item.get("success") == "true" else "FAILED"
        elif n.kind in DISPUTE_STEPS:
            self.model.disputes[n.ref].delivered.add(n.kind)

    def _deliver(self, n: Notification, times: int = 1) -> None:
        for _ in range(times):
            reply = self.system.notify(n.body)
            if reply.status != 200:
                raise ModelViolation(f"a signed {n.kind} was answered {reply.status}: {reply.body}")
        n.delivered += times
        if n in self.outbox:
            self.outbox.remove(n)
            self.sent.append(n)
        self._apply(n)

    @precondition(lambda self: bool(self._deliverable()))
    @rule(data=st.data())
    def deliver(self, data: Any) -> None:
        """The PSP delivers one held notification (any of them: late ones included), once or twice."""
        self._step()
        n = data.draw(st.sampled_from(self._deliverable()), label="notification")
        self._deliver(n, times=data.draw(st.integers(1, 2), label="deliveries"))

    def _swappable(self) -> list[tuple[Notification, Notification]]:
        """Pairs (earlier, later) both held: two consecutive steps of a dispute, or (Adyen) an order's
        AUTHORISATION and the CHARGEBACK that overtakes it."""
        held = {(n.kind, n.ref): n for n in self.outbox}
        pairs = []
        for d in self.model.disputes.values():
            ready = self.model.orders[d.order_id].state == "SUCCESS"  # a chargeback can be booked
            for i, (a, b) in enumerate(itertools.pairwise(DISPUTE_STEPS)):
                # overtaken by one only: what the earlier one needs is there (the queue's retries
                # are bounded, and a step two ahead of its dispute waits for two deliveries)
                known = ready if i == 0 else DISPUTE_STEPS[i - 1] in d.delivered
                if known and (a, d.reference) in held and (b, d.reference) in held:
                    pairs.append((held[(a, d.reference)], held[(b, d.reference)]))
            order = self.model.orders[d.order_id]
            cb, auth = held.get(("CHARGEBACK", d.reference)), held.get(("AUTHORISATION", order.order_id))
            if cb is not None and auth is not None and order.state == "AWAITING":
                pairs.append((auth, cb))
        return pairs

    @precondition(lambda self: bool(self._swappable()))
    @rule(data=st.data())
    def deliver_reordered(self, data: Any) -> None:
        """Two notifications overtake each other: the later one arrives first (it waits, retried,
        until what it refers to is known here), the earlier one right after."""
        self._step()
        earlier, later = data.draw(st.sampled_from(self._swappable()), label="pair")
        self._deliver(later)
        self._deliver(earlier)

    @precondition(lambda self: any(n.kind == "REFUND" for n in self.outbox + self.sent))
    @rule(data=st.data())
    def replay_with_success_as_boolean(self, data: Any) -> None:
        """A captured signed REFUND posted again with ``success`` as a JSON boolean (the signature covers
        both spellings): refused with 400, nothing stored, nothing changes."""
        self._step()
        captured = [n for n in self.outbox + self.sent if n.kind == "REFUND"]
        n = data.draw(st.sampled_from(captured), label="captured")
        item = n.item
        item["success"] = item["success"] == "true"
        body = {**n.body, "notificationItems": [{"NotificationRequestItem": item}]}
        reply = self.system.notify(body)
        if reply.status != 400:
            raise ModelViolation(f"a REFUND replayed with success={item['success']!r} answered {reply.status}")

    # --- settlement: pending becomes available ----------------------------------------------------------
    def _deliver_everything(self) -> None:
        """Every notification the PSP sent arrives (each dispute's steps in order), and the system applies them."""
        self._drain()
        while self.outbox:
            deliverable = self._deliverable()
            if not deliverable:
                raise ModelViolation(f"held notifications can never be delivered: {[n.kind for n in self.outbox]}")
            self._deliver(min(deliverable, key=lambda n: NOTIFICATION_ORDER[n.kind]))
            self._drain()
        self.system_agrees_with_the_model()

    @precondition(
        lambda self: bool(self._orders(lambda o: o.state != "FAILED" and o.order_id not in self.model.settled))
    )
    @rule()
    def psp_settles_the_day(self) -> None:
        """The PSP settles what it charged so far: what it sent arrives first, then the day's settlement file
        (every charge and modification of the day until now) is written and reconciled by the bucket's
        trigger. No mismatch about this example's orders, and each charge moves from pending to available
        (its money back was taken from available already)."""
        self._step()
        self._deliver_everything()
        self._settle_every_day(set(self.model.orders))
        settled = {o.order_id for o in self._orders(lambda o: o.state == "SUCCESS")}
        self.reached["charges settled"] += len(settled - self.model.settled)
        self.model.settled |= settled

    # --- payouts ---------------------------------------------------------------------------------------
    def _payout_body(self, payout_id: str, seller: str, currency: str, minor: int | None) -> dict[str, Any]:
        body = {"payout_id": payout_id, "seller_account": seller, "currency": currency}
        if minor is not None:
            body["amount"] = amount_text(minor, currency)
        return body

    def _expect_payout_answer(self, seller: str, currency: str, minor: int | None, reply: Any, what: str) -> int | None:
        """Check one payout answer against the model; returns the amount reserved (None: refused)."""
        available = self.model.available(seller, currency)
        if currency != PAYOUT_CURRENCY:
            status, kind, named = 409, "payout-not-possible", "currency"
        elif not self.model.account_valid[seller]:
            status, kind, named = 409, "payout-not-possible", "seller_account"
        else:
            asked = available if minor is None else minor
            if 0 < asked <= available:
                want = decimal_of(amount_text(asked, currency))
                if (
                    reply.status != 202
                    or reply.body.get("status") != "PENDING"
                    or decimal_of(reply.body["amount"]) != want
                ):
                    raise ModelViolation(
                        f"{what} of {asked} with {available} available answered {reply.status}: {reply.body}"
                    )
                return asked
            status, kind, named = 422, "payout-exceeds-available", "amount"
        body = reply.body if isinstance(reply.body, dict) else {}
        fields = [e.get("field") for e in body.get("errors", [])]
        if reply.status != status or not str(body.get("type", "")).endswith(kind) or named not in fields:
            raise ModelViolation(
                f"{what} ({available} available, account valid: {self.model.account_valid[seller]}) answered "
                f"{reply.status}: {reply.body} (model: {status} {kind} naming {named})"
            )
        return None

    @rule(data=st.data())
    def payout(self, data: Any) -> None:
        """A seller asks to be paid: all that is available (amount omitted), part of it, or more; in EUR or,
        rarely, a currency without a payout rail. Refused while available is zero or below zero, and once the
        seller's account was flagged by a return; an accepted one replayed (same key, same body) answers the
        same and reserves nothing more."""
        self._step()
        # a seller with something to pay out drawn more often: most have nothing available (refused)
        seller = data.draw(st.sampled_from(self._payable() * 2 + self.sellers), label="seller")
        currency = data.draw(st.sampled_from((PAYOUT_CURRENCY,) * 3 + ("USD",)), label="currency")
        available = self.model.available(seller, currency)
        shape = data.draw(st.sampled_from(["all", "part", "more"]), label="shape")
        minor: int | None
        if shape == "all":
            minor = None
        elif shape == "part":
            minor = self._amount(data, currency, max(1, available), "amount")
        else:
            minor = max(0, available) + data.draw(st.integers(1, 300), label="over")
        payout_id, key = fresh_id("pt"), fresh_id("key")
        body = self._payout_body(payout_id, seller, currency, minor)
        reply = self.system.payout(body, key)
        reserved = self._expect_payout_answer(seller, currency, minor, reply, f"payout {payout_id}")
        self.reached["payouts refused" if reserved is None else "payouts accepted"] += 1
        if reserved is None:
            return
        self.model.payouts[payout_id] = Payout(payout_id, seller, reserved)
        if data.draw(st.booleans(), label="replayed"):
            again = self.system.payout(body, key)
            if again.status != 202 or again.body != reply.body:
                raise ModelViolation(f"payout {payout_id} replayed answered {again.status}: {again.body}")

    def _payable(self) -> list[str]:
        return [s for s in self.sellers if self.model.account_valid[s] and self.model.available(s) >= 2]

    @precondition(lambda self: bool(self._payable()))
    @rule(data=st.data())
    def concurrent_payouts(self, data: Any) -> None:
        """Two to four payouts at once, each of more than half of what is available: exactly one is accepted,
        the others are 422 payout-exceeds-available."""
        self._step()
        seller = data.draw(st.sampled_from(self._payable()), label="seller")
        available = self.model.available(seller)
        n = data.draw(st.integers(2, 4), label="payouts")
        each = data.draw(st.integers(available // 2 + 1, available), label="amount")
        requests = [(fresh_id("pt"), fresh_id("key")) for _ in range(n)]
        barrier = threading.Barrier(n)

        def send(request: tuple[str, str]) -> Any:
            payout_id, key = request
            barrier.wait(timeout=10)
            return self.system.payout(self._payout_body(payout_id, seller, PAYOUT_CURRENCY, each), key)

        with ThreadPoolExecutor(n) as pool:
            replies = list(pool.map(send, requests))
        accepted = [r for r, reply in zip(requests, replies, strict=True) if reply.status == 202]
        if len(accepted) != 1:
            raise ModelViolation(
                f"{n} concurrent payouts of {each} on {available} available: {[r.status for r in replies]} "
                f"{[r.body for r in replies]}"
            )
        (payout_id, _), *_ = accepted
        self.reached["concurrent payouts"] += 1
        self.model.payouts[payout_id] = Payout(payout_id, seller, each)
        for (other, _), reply in zip(requests, replies, strict=True):
            if other != payout_id:
                # the winner's reservation is in the model now: the others exceed what is left
                self._expect_payout_answer(seller, PAYOUT_CURRENCY, each, reply, f"concurrent payout {other}")

    # --- the night: the payout run, the bank's answers and its day closed -------------------------------
    def _scheduled(self) -> dict[str, int]:
        """The sellers the nightly run pays all their available: a usable account, at least the minimum."""
        out = {}
        for seller in self.sellers:
            available = self.model.available(seller)
            if self.model.account_valid[seller] and available >= PAYOUT_MINIMUM_MINOR:
                out[seller] = available
        return out

    def _bank_has_work(self) -> bool:
        moving = any(
            p.status in ("PENDING", "SUBMITTED") or (p.status == "PAID" and self.model.fates[p.seller] == "returned")
            for p in self.model.payouts.values()
        )
        return moving or bool(self._scheduled())

    @precondition(lambda self: self._bank_has_work())
    @rule()
    def bank_closes_the_day(self) -> None:
        """The night of the bank's next open day D: ``payments payouts run --date D`` (a scheduled payout of all
        available for every seller at or above the minimum, then one pain.001 of every PENDING payout); the
        simulated bank's pain.002 reconciled (the rejecting IBAN's payouts FAILED, their money back); then
        ``payments bank close-day --date D``: its camt.053 reconciled with no mismatch, the payouts it booked
        PAID, and those booked at the previous close to the returning IBAN RETURNED, their money back and the
        seller's payout account flagged invalid."""
        self._step()
        day = self.system.next_bank_day()
        expected = {scheduled_payout_id(s, PAYOUT_CURRENCY, day): (s, a) for s, a in self._scheduled().items()}
        ours = {scheduled_payout_id(s, PAYOUT_CURRENCY, day) for s in self.sellers}
        answer = self.system.run_payouts(day)
        created = set(answer["created"]) & ours
        if created != set(expected):
            raise ModelViolation(f"the payout run of {day} created {sorted(created)} (model: {expected})")
        for payout_id, (seller, minor) in expected.items():
            self.model.payouts[payout_id] = Payout(payout_id, seller, minor)
        for p in self.model.payouts.values():
            if p.status != "PENDING":
                continue
            if p.payout_id not in answer["submitted"]:
                raise ModelViolation(f"the payout run of {day} did not submit {p.payout_id}: {answer}")
            p.status = "FAILED" if self.model.fates[p.seller] == "rejected" else "SUBMITTED"
            self.reached[f"payouts {p.status}"] += 1
        for report in answer.get("answers", []):
            if report["counts"]["mismatches"]:
                raise ModelViolation(f"the bank's pain.002 {report['source_key']}: {report['mismatches']}")
        statement = self.system.close_bank_day(day)
        if statement["counts"]["mismatches"]:
            raise ModelViolation(f"the camt.053 of {day}: {statement['mismatches']}")
        for p in self.model.payouts.values():  # booked at an earlier close, sent back by the seller's bank
            if p.status == "PAID" and self.model.fates[p.seller] == "returned":
                p.status = "RETURNED"
                self.model.account_valid[p.seller] = False
                self.reached["payouts RETURNED"] += 1
        for p in self.model.payouts.values():
            if p.status == "SUBMITTED":
                p.status = "PAID"
                self.reached["payouts PAID"] += 1
        self.reached["bank days closed"] += 1

    # --- after every step: the system agrees with the model ----------------------------------------
    def differences(self) -> list[str]:
        self._drain()
        out: list[str] = []
        checkouts = {o.checkout_id for o in self.model.orders.values()}
        for checkout_id in sorted(checkouts):
            reply = self.system.payment(checkout_id)
            if reply.status != 200:
                out.append(f"GET payment {checkout_id}: {reply.status}")
                continue
            for seen in reply.body["payment_orders"]:
                order = self.model.orders[seen["payment_order_id"]]
                out += self._order_differences(order, seen)
        for refund in self.model.refunds.values():
            reply = self.system.get_refund(refund.refund_id)
            if reply.status != 200 or reply.body["status"] != refund.status:
                out.append(f"refund {refund.refund_id}: {reply.status} {reply.body} (model: {refund.status})")
            elif decimal_of(reply.body["amount"]) != decimal_of(amount_text(refund.minor, reply.body["currency"])):
                out.append(f"refund {refund.refund_id}: amount {reply.body['amount']} (model: {refund.minor} minor)")
        for seller in self.sellers:
            out += self._wallet_differences(seller)
        for p in self.model.payouts.values():
            reply = self.system.get_payout(p.payout_id)
            body = reply.body if isinstance(reply.body, dict) else {}
            if reply.status != 200 or body.get("status") != p.status:
                out.append(f"payout {p.payout_id}: {reply.status} {body.get('status')} (model: {p.status})")
            elif decimal_of(body["amount"]) != decimal_of(amount_text(p.minor, p.currency)):
                out.append(f"payout {p.payout_id}: amount {body['amount']} (model: {p.minor} minor)")
        for seller, fate in self.model.fates.items():
            if fate == "returned":  # the only account a bank's answer changes
                reply = self.system.payout_account(seller)
                valid = reply.body.get("valid") if isinstance(reply.body, dict) else None
                if reply.status != 200 or valid is not self.model.account_valid[seller]:
                    out.append(
                        f"payout account of {seller}: {reply.status} valid={valid} (model: {self.model.account_valid[seller]})"
                    )
        trial = self.system.trial_balance().body
        for line in trial.get("currencies", []):
            if decimal_of(line["debits"]) != decimal_of(line["credits"]):
                out.append(f"trial balance {line['currency']}: debits {line['debits']} != credits {line['credits']}")
        return out

    def _wallet_differences(self, seller: str) -> list[str]:
        """The wallet API's pending, available, in transit (and their sum) per currency, against the model."""
        out = []
        expected = self.model.balances(seller)
        reply = self.system.wallet(seller)
        seen = {b["currency"]: b for b in (reply.body or {}).get("balances", [])}
        for currency in set(expected) | set(seen):
            want = expected.get(currency, Balance())
            got = seen.get(currency, {})
            for part in ("amount", "pending", "available", "in_transit"):
                minor = getattr(want, part)
                if decimal_of(got.get(part)) != decimal_of(amount_text(minor, currency)):
                    out.append(
                        f"wallet {seller} {currency} {part}: {got.get(part)} (model: {amount_text(minor, currency)})"
                    )
        return out

    def _order_differences(self, order: Order, seen: dict[str, Any]) -> list[str]:
        out = []
        status = seen["status"]
        if order.state == "SUCCESS":
            if status != "SUCCESS" or not (seen["wallet_updated"] and seen["ledger_updated"]):
                out.append(f"order {order.order_id}: {status} w={seen['wallet_updated']} l={seen['ledger_updated']}")
        elif order.state == "FAILED":
            if status != "FAILED":
                out.append(f"order {order.order_id}: {status} (model: FAILED)")
        elif status in ("SUCCESS", "FAILED"):
            out.append(f"order {order.order_id}: {status} (model: awaiting its AUTHORISATION)")
        for name, want in (
            ("refunded_amount", self.model.refunded(order)),
            ("chargeback_amount", self.model.charged_back(order)),
        ):
            if decimal_of(seen.get(name)) != decimal_of(amount_text(want, order.currency)):
                out.append(
                    f"order {order.order_id}: {name} {seen.get(name)} (model: {amount_text(want, order.currency)})"
                )
        return out

    @invariant()
    def system_agrees_with_the_model(self) -> None:
        found: dict[str, list[str]] = {}

        def agrees() -> bool:
            found["d"] = self.differences()
            return not found["d"]

        if not wait_until(agrees, SETTLE_TIMEOUT_S, first=0.05):
            raise ModelViolation("the system disagrees with the model of money:\n  " + "\n  ".join(found["d"]))
        self._clean = True

    # --- at the end of the example: everything delivered, the day settled and reconciled --------------
    def teardown(self) -> None:
        """After a clean run only: a step that failed is the reproducer, not what follows it."""
        try:
            if self._clean:
                self._close_the_day()
                self._check_events()
        finally:
            super().teardown()

    def _check_events(self) -> None:
        """Every ``EVENTS_EVERY``-th clean example: the events' invariant over the whole runtime."""
        from payments_dev.event_invariants import check_runtime_events

        name = self.system.psp.name
        _CLEAN_EXAMPLES[name] += 1
        if not EVENTS_EVERY or _CLEAN_EXAMPLES[name] % EVENTS_EVERY:
            return
        # The check compares a snapshot of the tables with the events heard after a flush: a write still in flight
        # (a reconciliation the day's file started, run asynchronously) can commit between the two and look like a
        # change without an event. As for the money (system_agrees_with_the_model), the check is repeated until it
        # holds or the settle timeout passes: a change really without its event, or an event without a change,
        # stays so; a write in flight is heard within it.
        reports: list[Any] = []

        def events_agree() -> bool:
            reports.append(check_runtime_events(f"model, {name}", out=lambda line: None))
            return reports[-1] is None or reports[-1].ok

        wait_until(events_agree, SETTLE_TIMEOUT_S, first=0.1, most=1.0)
        report = reports[-1]
        if report is None:
            raise ModelViolation("the events were not checked: no local runtime with its events reader")
        self.reached["events checks"] += 1
        if not report.ok:
            raise ModelViolation(
                f"the events disagree with the committed changes ({report.figures()}):\n  "
                + "\n  ".join(report.violations[:20])
            )

    def _close_the_day(self) -> None:
        if not self.model.orders:
            return
        self._deliver_everything()
        ids = set(self.model.orders)
        charges: dict[str, int] = {}
        modifications: list[tuple[str, str, int]] = []
        for day in self._days():
            day_charges, day_modifications = self.psp.day(day, ids)
            charges |= day_charges
            modifications += day_modifications
        want_charges = {
            o.order_id: self.to_psp(o.minor, o.currency) for o in self.model.orders.values() if o.state == "SUCCESS"
        }
        if charges != want_charges:
            raise ModelViolation(f"the PSP's charges of the day {charges} (model: {want_charges})")
        want_mods: Counter[tuple[str, str, int]] = Counter()
        rows = {
            "CHARGEBACK": "Chargeback",
            "CHARGEBACK_REVERSED": "ChargebackReversed",
            "SECOND_CHARGEBACK": "SecondChargeback",
        }
        for d in self.model.disputes.values():
            order = self.model.orders[d.order_id]
            for step in d.raised:
                want_mods[(rows[step], d.order_id, self.to_psp(d.minor, order.currency))] += 1
        for r in self.model.refunds.values():
            if r.status == "SUCCEEDED":
                order = self.model.orders[r.order_id]
                want_mods[("Refunded", r.order_id, self.to_psp(r.minor, order.currency))] += 1
        if Counter(modifications) != want_mods:
            raise ModelViolation(
                f"the PSP's modifications of the day {sorted(modifications)} (model: {sorted(want_mods.elements())})"
            )
        self._settle_every_day(ids)


def machine_for(system: System, steps: Counter[str], base: type = MoneyMachine) -> type:
    """The machine class bound to a running system (hypothesis instantiates it per example)."""
    return type(
        f"{base.__name__}_{system.psp.name.replace('-', '_')}",
        (base,),
        {
            "system": system,
            "steps": steps,
            "odd_replies": [],
            "reached": Counter(),
        },
    )
