"""Chaos for money flowing back (issue 18): concurrent refunds, duplicated, lost, late and
out-of-order PSP notifications, chargebacks and reversals, over the orders of a chaos run.

Run after the pay-in harness (``payments_dev.chaos.harness.run``) on the same runtime: it picks a
seeded share of the run's settled orders and, for each one, concurrently

* asks 2-5 refunds of 60 % of the order at once: exactly one may be accepted (202), the others
  are ``refund-exceeds-remaining`` (422);
* delivers the PSP's REFUND notification 0, 1 or 2 times, as soon as the PSP has decided it
  (often before the workflow applies the PSP's answer), and sometimes a contradicting late one;
* on another share, raises a chargeback (whole or partial; some on refunded orders), delivers it
  once or twice, and sometimes its reversal too, before or after it, once or twice.

Then it waits until every refund is decided and every notification applied, and audits every
invariant (8 included). Everything goes through the HTTP API, signed like the PSP signs.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from payments.notifications.store import NotificationStore
from payments.ops.invariants import check_current
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus
from payments.psp.hmac import signed
from payments.psp.simulator import SimulatedPsp
from payments_dev.local.client import ApiClient

Printer = Callable[[str], None]


@dataclass
class MoneyBackResult:
    orders: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


class _Run:
    def __init__(self, api_url: str, seed: int, result: MoneyBackResult):
        self.client = ApiClient(api_url, timeout=60)
        self.psp = SimulatedPsp()
        self.seed = seed
        self.result = result
        self._lock = threading.Lock()
        self.accepted: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            self.result.checks[name] += 1
            if not ok:
                self.result.violations.append(f"[{name}] {detail}")

    def fault(self, kind: str) -> None:
        with self._lock:
            self.result.faults[kind] += 1

    def notify(self, item: dict[str, Any]) -> None:
        reply = self.client.request("POST", "/v1/psp/notifications", {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
        self.check("every signed notification is acknowledged [accepted]", reply.status == 200 and reply.body == "[accepted]", f"{reply.status} {reply.body}")

    def order(self, index: int, order: Any) -> None:
        rng = random.Random(f"{self.seed}:{order.payment_order_id}")
        if rng.random() < 0.7:
            self.refunds(rng, order)
        if rng.random() < 0.35:
            self.dispute(rng, order)

    def refunds(self, rng: random.Random, order: Any) -> None:
        from payments.kernel import money

        ask = max(1, (order.amount_minor * 6 + 9) // 10)  # 60 %, rounded up: two never fit
        if ask * 2 <= order.amount_minor:
            return
        n = rng.randint(2, 5)
        self.fault("concurrent refunds")
        bodies = [
            {"refund_id": f"{order.payment_order_id}_rf{i}", "payment_order_id": order.payment_order_id, "amount": money.format_minor(ask, order.currency), "currency": order.currency}
            for i in range(n)
        ]
        with ThreadPoolExecutor(max_workers=n) as pool:
            replies = list(pool.map(lambda b: self.client.request("POST", "/v1/refunds", b, headers={"Idempotency-Key": "k-" + b["refund_id"]}), bodies))
        statuses = Counter(r.status for r in replies)
        self.check(
            "exactly one of concurrent refunds exceeding the charge is accepted, the others are 422",
            statuses == Counter({202: 1, 422: n - 1}),
            f"{order.payment_order_id}: {dict(statuses)}",
        )
        for reply in replies:
            if reply.status == 202:
                refund_id = reply.body["refund_id"]
                with self._lock:
                    self.accepted.append(refund_id)
                self.refund_notifications(rng, refund_id)

    def refund_notifications(self, rng: random.Random, refund_id: str) -> None:
        deliveries = rng.choices([0, 1, 2], weights=[2, 5, 3])[0]
        if deliveries == 0:
            self.fault("REFUND notification lost")
            return
        deadline = time.monotonic() + 30
        item = None
        while item is None and time.monotonic() < deadline:  # as soon as the PSP has decided it
            item = self.psp.refund_notification(refund_id)
            if item is None:
                time.sleep(0.05)
        if item is None:
            return
        for _ in range(deliveries):
            self.notify(item)
        self.fault("REFUND notification duplicated" if deliveries > 1 else "REFUND notification delivered")
        if rng.random() < 0.15:
            late = signed({**{k: v for k, v in item.items() if k != "additionalData"}, "success": "false" if item["success"] == "true" else "true"}, self.psp.webhook_key())
            self.notify(late)
            self.fault("contradicting late REFUND notification")

    def dispute(self, rng: random.Random, order: Any) -> None:
        amount = order.amount_minor if rng.random() < 0.5 else max(1, order.amount_minor // 3)
        chargeback = self.psp.raise_chargeback(order.payment_order_id, amount)
        reverse = rng.random() < 0.5
        reversal = self.psp.reverse_chargeback(chargeback["pspReference"]) if reverse else None
        if reversal is not None and rng.random() < 0.5:
            self.notify(reversal)
            self.fault("reversal before its chargeback")
        for _ in range(rng.choice([1, 2])):
            self.notify(chargeback)
        self.fault("chargeback")
        if reversal is not None:
            for _ in range(rng.choice([1, 2])):
                self.notify(reversal)
            self.fault("reversal")


def run_money_back(api_url: str, prefix: str, seed: int, share: float = 0.5, concurrency: int = 6, timeout: float = 300.0, out: Printer = print) -> MoneyBackResult:
    started = time.monotonic()
    result = MoneyBackResult()
    run = _Run(api_url, seed, result)
    repo = PaymentsRepository()
    candidates = sorted(
        (
            o
            for o in repo.scan_orders()
            if o.checkout_id.startswith(prefix) and o.status is OrderStatus.SUCCESS and o.wallet_updated and o.ledger_updated
            and not o.needs_attention and o.refund_reserved_minor == 0 and o.chargeback_minor == 0
        ),
        key=lambda o: o.payment_order_id,
    )
    chosen = random.Random(seed).sample(candidates, int(len(candidates) * share))
    result.orders = len(chosen)
    out(f"money back: {len(chosen)} of {len(candidates)} settled orders get refunds, notifications and chargebacks")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(run.order, i, o) for i, o in enumerate(chosen)]:
            future.result()
    deadline = time.monotonic() + timeout
    undecided: list[str] = list(run.accepted)
    while undecided and time.monotonic() < deadline:
        undecided = [r for r in undecided if run.client.request("GET", f"/v1/refunds/{r}").body["status"] == "PENDING"]
        time.sleep(0.2)
    run.check("every accepted refund is decided", not undecided, f"still PENDING: {undecided[:5]}")
    store = NotificationStore()
    waiting: list[str] = ["?"]
    while waiting and time.monotonic() < deadline:
        waiting = [n["notification_id"] for n in store.scan() if "outcome" not in n and n["merchant_reference"].startswith(prefix)]
        time.sleep(0.2)
    run.check("every stored notification is applied (the queue drains)", not waiting, f"{len(waiting)} waiting")
    report = check_current(expect_settled=True)
    for number, count in report.checks.items():
        result.checks[f"invariant {number} (money back)"] += count
    result.violations += [f"[invariant {v.invariant}, money back] {v}" for v in report.violations]
    result.wall_seconds = time.monotonic() - started
    out(
        f"money back: {sum(result.checks.values())} checks, {len(result.violations)} violations, faults "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.faults.items()))
        + f", {result.wall_seconds:.1f}s"
    )
    for violation in result.violations[:20]:
        out(f"  VIOLATION {violation}")
    return result
