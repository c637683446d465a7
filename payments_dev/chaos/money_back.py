"""Chaos for money flowing back (issue 18): concurrent refunds, crashes in the refund workflow,
duplicated, lost, late and out-of-order PSP notifications, chargebacks and reversals, over the
orders of a chaos run.

Run after the pay-in harness (``payments_dev.chaos.harness.run``) on the same runtime: it picks a
seeded share of the run's settled orders and, for each one, concurrently

* asks 2-5 refunds of 60 % of the order at once: exactly one may be accepted (202), the others
  are ``refund-exceeds-remaining`` (422);
* runs the accepted refund's workflow (stepfunctions/refund.asl.json) under the fault schedule
  of the pay-in run (:class:`payments_dev.chaos.schedule.FaultSchedule`, the same seed, decided by
  the logical refund_id and attempt): its ``ExecuteRefund`` and ``ApplyRefundOutcome`` tasks
  crash before or after their writes, time out, run twice in a row or at the same time, are
  slow, meet DynamoDB throttling, errors and transaction conflicts; the PSP's refund call fails
  before refunding or refunds and loses its answer (a crash between the PSP's refund and the
  wallet debit, which is one transaction with the ledger append); for a seeded share the PSP's
  REFUND notification is delivered and applied *before* the PSP's answer reaches the workflow;
* delivers the REFUND notification, once the PSP decided the refund, once, never (lost), twice
  one after the other or twice at the same time; after the refund is decided, for a seeded
  share, a contradicting one or a late repeat (neither may change anything);
* on another share, raises a chargeback (whole or partial; some on refunded orders), delivers it
  once or twice, and sometimes its reversal too, before or after it (out of order), once or twice;
  and for a share of the reversed disputes the second chargeback (the defence lost after all),
  before its reversal or after it, once or twice.

Then it waits until every refund is decided and every notification applied, checks what each
fault should have left, and audits every invariant (8 included). Everything goes through the
HTTP API, signed like the PSP signs. The faults are counted by kind and printed.
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

from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository
from payments.notifications.store import NotificationStore, identity
from payments.ops.invariants import Report, check, check_current
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus
from payments.psp.hmac import signed
from payments.psp.simulator import SimulatedPsp
from payments.refunds.repository import RefundsRepository
from payments_dev import event_invariants
from payments_dev.chaos import schedule as s
from payments_dev.chaos.faults import ChaosInjector, FaultLog
from payments_dev.chaos.reader_faults import on_runtime
from payments_dev.chaos.schedule import FaultProfile, FaultSchedule
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
    def __init__(self, api_url: str, schedule: FaultSchedule, log: FaultLog, result: MoneyBackResult, psp: Any = None):
        self.client = ApiClient(api_url, timeout=60)
        #: the PSP's own record: the simulator's, or another PSP's read the same way (the Adyen fake's
        #: ``LocalAdyen.record()``, which also delivers every notification by itself, with Adyen's retries)
        self.psp = psp if psp is not None else SimulatedPsp()
        #: the PSP posts every notification once by itself: the harness posts only the extra deliveries
        #: (the duplicates, the concurrent and late ones, those out of order), never a second plain one
        self.psp_delivers = hasattr(self.psp, "wait_delivered")
        self.schedule = schedule
        self.seed = schedule.seed
        self.log = log
        self.result = result
        self._lock = threading.Lock()
        self.accepted: list[str] = []
        self.store = NotificationStore()

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        with self._lock:
            self.result.checks[name] += 1
            if not ok:
                self.result.violations.append(f"[{name}] {detail}")
        return ok

    def fault(self, kind: str, key: str = "") -> None:
        self.log.add(kind, "money back", key, 1)

    def notify(self, item: dict[str, Any]) -> None:
        reply = self.client.request(
            "POST", "/v1/psp/notifications", {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
        )
        self.check(
            "every signed notification is acknowledged [accepted]",
            reply.status == 200 and reply.body == "[accepted]",
            f"{reply.status} {reply.body}",
        )

    def applied(self, item: dict[str, Any], seconds: float) -> bool:
        """Wait until the stored notification of ``item`` has been processed (the queue drained it)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.store.ddb.get_item(
                TableName=self.store.table,
                Key={"pk": {"S": f"NOTIFICATION#{identity(item)}"}, "sk": {"S": "NOTIFICATION"}},
                ConsistentRead=True,
            ).get("Item")
            if found is not None and "outcome" in found:
                return True
            time.sleep(0.05)
        return False

    def notification_first(self, refund_id: str) -> None:
        """Called by the injector inside ExecuteRefund, right after the PSP decided the refund and
        before its answer returns: the PSP's REFUND notification is delivered and applied first."""
        item = self.psp.refund_notification(refund_id)
        if not self.check("the PSP knows the refund it just decided", item is not None, refund_id):
            return
        assert item is not None
        self.notify(item)
        self.check(
            "a REFUND notification that beats the PSP's answer is applied before it (within 20 s)",
            self.applied(item, 20.0),
            f"{refund_id}: not processed in 20 s",
        )

    def order(self, index: int, order: Any) -> None:
        rng = random.Random(f"{self.seed}:{self.schedule.logical(order.payment_order_id)}")
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
        self.fault("concurrent refunds", order.payment_order_id)
        bodies = [
            {
                "refund_id": f"{order.payment_order_id}_rf{i}",
                "payment_order_id": order.payment_order_id,
                "amount": money.format_minor(ask, order.currency),
                "currency": order.currency,
            }
            for i in range(n)
        ]
        with ThreadPoolExecutor(max_workers=n) as pool:
            replies = list(
                pool.map(
                    lambda b: self.client.request(
                        "POST", "/v1/refunds", b, headers={"Idempotency-Key": "k-" + b["refund_id"]}
                    ),
                    bodies,
                )
            )
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
                self.refund_notifications(refund_id)

    def refund_notifications(self, refund_id: str) -> None:
        """The REFUND notification, once the PSP decided the refund: once, lost, or twice (in a row or at once)."""
        kind = self.schedule.refund_notification(refund_id)
        if kind == s.REFUND_NOTIFICATION_LOST:
            self.fault(kind, refund_id)
            return
        deadline = time.monotonic() + 120  # the PSP call may meet outages, retries and a task timeout first
        item = None
        while item is None and time.monotonic() < deadline:  # as soon as the PSP has decided it
            item = self.psp.refund_notification(refund_id)
            if item is None:
                time.sleep(0.05)
        if not self.check("the PSP decides every accepted refund (within 120 s)", item is not None, refund_id):
            return
        assert item is not None
        if kind == s.REFUND_NOTIFICATION_CONCURRENT:
            barrier = threading.Barrier(2)

            def deliver() -> None:
                barrier.wait()
                self.notify(item)

            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda _: deliver(), range(2)))
        else:
            for _ in range(s.REFUND_NOTIFICATION_KINDS.get(kind or "", 1) - self.psp_delivers):
                self.notify(item)
        if kind is not None:
            self.fault(kind, refund_id)

    def after_decision(self, refunds: RefundsRepository) -> None:
        """Once every refund is decided: a contradicting REFUND notification or a late repeat, for a
        seeded share. Neither may change the refund, its order, the wallet or the ledger."""
        late: list[tuple[str, str, dict[str, Any]]] = []
        for refund_id in sorted(self.accepted):
            kind = self.schedule.refund_notification_after(refund_id)
            item = self.psp.refund_notification(refund_id) if kind else None
            if kind is None or item is None:
                continue
            if kind == s.REFUND_NOTIFICATION_CONTRADICTING:
                item = signed(
                    {
                        **{k: v for k, v in item.items() if k != "additionalData"},
                        "success": "false" if item["success"] == "true" else "true",
                    },
                    self.psp.webhook_key(),
                )
            late.append((refund_id, kind, item))
        before = {refund_id: refunds.get(refund_id) for refund_id, _, _ in late}
        orders = {r.payment_order_id: refunds.payments.get_order(r.payment_order_id) for r in before.values()}
        for refund_id, kind, item in late:
            self.notify(item)
            self.fault(kind, refund_id)
        for refund_id, kind, item in late:
            self.check(
                "a late or contradicting REFUND notification is processed",
                self.applied(item, 60.0),
                f"{refund_id}: {kind} not processed",
            )
            was, now = before[refund_id], refunds.get(refund_id)
            order_was, order_now = orders[was.payment_order_id], refunds.payments.get_order(was.payment_order_id)
            self.check(
                "a late or contradicting REFUND notification changes nothing",
                (
                    now.status,
                    now.decided_by,
                    now.psp_reference,
                    order_now.refund_reserved_minor,
                    order_now.refunded_minor,
                )
                == (
                    was.status,
                    was.decided_by,
                    was.psp_reference,
                    order_was.refund_reserved_minor,
                    order_was.refunded_minor,
                ),
                f"{refund_id}: {kind} moved {was.status.value}/{was.decided_by} -> {now.status.value}/{now.decided_by}",
            )
            if kind == s.REFUND_NOTIFICATION_CONTRADICTING:
                self.check(
                    "a contradicting REFUND notification is recorded as an anomaly",
                    len(now.anomalies) > len(was.anomalies),
                    f"{refund_id}: {len(was.anomalies)} -> {len(now.anomalies)} anomalies",
                )

    def audit_faults(self, refunds: RefundsRepository, records: dict[str, Any]) -> None:
        """What each injected fault should have left, refund by refund."""
        lost_answers = {e.key for e in self.log.of_kind(s.REFUND_PSP_LOST_ANSWER)}
        first = {e.key for e in self.log.of_kind(s.NOTIFICATION_FIRST)}
        # an ExecuteRefund attempt that timed out still runs (and may be the one that meets the PSP
        # first and delivers the notification), while the state machine's retry returns the PSP's
        # answer at once: then the answer may decide first, and the notification is the duplicate
        overtaken = {e.key for e in self.log.of_kind(s.TIMEOUT) if e.step == "refund_execute"}
        for refund_id in sorted(self.accepted):
            refund = records[refund_id]
            self.check(
                "no refund parked NEEDS_ATTENTION (every fault within the ASL's retries)",
                not refund.needs_attention,
                f"{refund_id}: {refund.attention_reason}",
            )
            at_psp = self.psp.lookup_refund(refund_id)
            if refund_id in lost_answers:
                self.check(
                    "a refund whose PSP answer was lost is decided as the PSP decided it",
                    at_psp is not None and refund.status.value == ("SUCCEEDED" if at_psp["succeeded"] else "FAILED"),
                    f"{refund_id}: {refund.status.value} here, {at_psp and at_psp['succeeded']} at the PSP",
                )
            if refund_id in first and refund_id not in overtaken:
                self.check(
                    "a REFUND notification that beats the PSP's answer decides the refund; the answer changes nothing",
                    refund.decided_by == "notification"
                    and refund.status.is_final
                    and not any(a["what"].startswith("psp said") for a in refund.anomalies),
                    f"{refund_id}: {refund.status.value} decided by {refund.decided_by}, anomalies {refund.anomalies}",
                )
            elif refund_id in first:
                self.check(
                    "a REFUND notification delivered while a timed-out attempt's retry answers: one decides, the other changes nothing",
                    refund.status.is_final and not any(a["what"].startswith("psp said") for a in refund.anomalies),
                    f"{refund_id}: {refund.status.value} decided by {refund.decided_by}, anomalies {refund.anomalies}",
                )

    def audit_disputes(self, refunds: RefundsRepository, prefix: str) -> None:
        """What the PSP did to each dispute of the run is what we booked: its chargeback, reversal and
        second chargeback, each for the dispute's amount, and nothing it did not do."""
        steps = (
            ("chargeback", "charged_back_at", "amount_minor"),
            ("reversal", "reversed_at", "reversed_minor"),
            ("second chargeback", "second_at", "second_minor"),
        )
        for theirs in self.psp.disputes():
            if not theirs["payment_order_id"].startswith(prefix):
                continue
            ours = refunds.find_dispute(theirs["dispute_reference"]) or {}
            for name, at, booked in steps:
                expected = theirs["amount_minor"] if at in theirs else None
                self.check(
                    f"a dispute's {name} is booked as the PSP made it (once, for its amount), or not at all",
                    ours.get(booked) == expected,
                    f"{theirs['dispute_reference']} on {theirs['payment_order_id']}: the PSP {expected}, booked {ours.get(booked)}",
                )

    def dispute(self, rng: random.Random, order: Any) -> None:
        amount = order.amount_minor if rng.random() < 0.5 else max(1, order.amount_minor // 3)
        chargeback = self.psp.raise_chargeback(order.payment_order_id, amount)
        reverse = rng.random() < 0.5
        reversal = self.psp.reverse_chargeback(chargeback["pspReference"]) if reverse else None
        # the defence lost after all (SECOND_CHARGEBACK), on a share of the reversed disputes: drawn from a
        # generator of its own, so that every earlier fault of the seed stays where it was
        also = random.Random(f"{self.seed}:{self.schedule.logical(order.payment_order_id)}:second")
        second = self.psp.second_chargeback(chargeback["pspReference"]) if reverse and also.random() < 0.6 else None
        if second is not None and also.random() < 0.5:
            self.notify(second)  # before its reversal (and maybe its chargeback): retried until they are booked
            self.fault("second chargeback before its reversal", order.payment_order_id)
        if reversal is not None and rng.random() < 0.5:
            self.notify(reversal)
            self.fault("reversal before its chargeback", order.payment_order_id)
        self.deliver(chargeback, "chargeback", rng, order.payment_order_id)
        if reversal is not None:
            self.deliver(reversal, "reversal", rng, order.payment_order_id)
        if second is not None:
            self.deliver(second, "second chargeback", also, order.payment_order_id)

    def deliver(self, item: dict[str, Any], kind: str, rng: random.Random, payment_order_id: str) -> None:
        """Deliver a dispute's notification once or twice (the PSP's at-least-once), counted as a fault of ``kind``."""
        times = rng.choice([1, 2])
        for _ in range(times - self.psp_delivers):
            self.notify(item)
        self.fault(kind, payment_order_id)
        if times > 1:
            self.fault(f"{kind} duplicated", payment_order_id)


def run_money_back(
    api_url: str,
    prefix: str,
    seed: int,
    share: float = 0.5,
    concurrency: int = 6,
    timeout: float = 300.0,
    out: Printer = print,
    profile: FaultProfile | None = None,
    time_scale: float = 1.0,
    psp: Any = None,
    events_in_scope: Callable[[dict[str, Any]], bool] | None = None,
) -> MoneyBackResult:
    """The money-back phase on the orders of the run ``prefix``, with the fault schedule of ``seed``
    and ``profile`` (the pay-in run's) injected into the refund workflow and the events reader; then every
    invariant and the events' one (over ``events_in_scope``: the run's items unless told)."""
    started = time.monotonic()
    result = MoneyBackResult()
    schedule = FaultSchedule(seed, profile or FaultProfile(), prefix=prefix)
    log = FaultLog()
    run = _Run(api_url, schedule, log, result, psp)
    repo = PaymentsRepository()
    refunds = RefundsRepository(payments=repo)
    candidates = sorted(
        (
            o
            for o in repo.scan_orders()
            if o.checkout_id.startswith(prefix)
            and o.status is OrderStatus.SUCCESS
            and o.wallet_updated
            and o.ledger_updated
            and not o.needs_attention
            and o.refund_reserved_minor == 0
            and o.chargeback_minor == 0
        ),
        key=lambda o: o.payment_order_id,
    )
    chosen = random.Random(seed).sample(candidates, int(len(candidates) * share))
    result.orders = len(chosen)
    out(f"money back: {len(chosen)} of {len(candidates)} settled orders get refunds, notifications and chargebacks")
    injector = ChaosInjector(schedule, log, time_scale=time_scale)
    injector.active_steps = set(s.REFUND_STEPS)  # the pay-in steps are done: only the refund workflow
    injector.before_refund_answer = run.notification_first
    reader = on_runtime(seed, schedule.profile.crash_after)
    try:
        with injector, reader:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for future in [pool.submit(run.order, i, o) for i, o in enumerate(chosen)]:
                    future.result()
            deadline = time.monotonic() + timeout
            undecided: list[str] = list(run.accepted)
            while undecided and time.monotonic() < deadline:
                undecided = [
                    r for r in undecided if run.client.request("GET", f"/v1/refunds/{r}").body["status"] == "PENDING"
                ]
                time.sleep(0.2)
            run.check("every accepted refund is decided", not undecided, f"still PENDING: {undecided[:5]}")
            reader.drain()
        run.after_decision(refunds)
        delivered = getattr(run.psp, "wait_delivered", None)
        if delivered is not None:  # a PSP that delivers by itself (the Adyen fake): its webhooks are all in
            run.check(
                "the PSP's own notifications are all accepted by the webhook",
                delivered(timeout),
                "some still queued for retry",
            )
        deadline = time.monotonic() + timeout
        waiting: list[str] = ["?"]
        while waiting and time.monotonic() < deadline:
            waiting = [
                n["notification_id"]
                for n in run.store.scan()
                if "outcome" not in n and n["merchant_reference"].startswith(prefix)
            ]
            time.sleep(0.2)
        run.check("every stored notification is applied (the queue drains)", not waiting, f"{len(waiting)} waiting")
        run.audit_faults(refunds, {r.refund_id: r for r in refunds.scan_refunds() if r.refund_id.startswith(prefix)})
        run.audit_disputes(refunds, prefix)
    except Exception as err:  # noqa: BLE001 - a crashed phase is a finding: report what ran
        run.check("the money-back phase ran to the end", False, f"{type(err).__name__}: {err}"[:500])
    report = _invariants(psp)
    for number, count in report.checks.items():
        result.checks[f"invariant {number} (money back)"] += count
    result.violations += [f"[invariant {v.invariant}, money back] {v}" for v in report.violations]
    in_scope = events_in_scope or event_invariants.of_run(prefix)
    event_invariants.check_phase("money back", in_scope, out, result.checks, result.violations)
    result.faults = log.by_kind() + reader.injected
    result.wall_seconds = time.monotonic() - started
    print_money_back(result, out)
    return result


def _invariants(psp: Any) -> Report:
    """Every invariant, against the PSP's own record: the simulator's table, or another PSP's record
    of charges and refunds (the Adyen fake's: what it charged and refunded, not the simulator's empty table)."""
    if psp is None or isinstance(psp, SimulatedPsp):
        return check_current(expect_settled=True)
    payments = PaymentsRepository()
    return check(
        payments,
        WalletRepository(payments=payments),
        LedgerRepository(payments=payments),
        list(psp.all_charges()),
        expect_settled=True,
        refunds=RefundsRepository(payments=payments),
        psp_refunds=list(psp.all_refunds()),
    )


def print_money_back(result: MoneyBackResult, out: Printer = print) -> None:
    out(f"money back: {result.orders} orders, {sum(result.faults.values())} faults injected:")
    for kind, count in sorted(result.faults.items()):
        out(f"  {kind:<34} {count}")
    out(f"money back: {sum(result.checks.values())} checks:")
    for name, count in sorted(result.checks.items()):
        out(f"  {count:>7}  {name}")
    out(f"money back: {len(result.violations)} violations, {result.wall_seconds:.1f}s")
    for violation in result.violations[:20]:
        out(f"  VIOLATION {violation}")
