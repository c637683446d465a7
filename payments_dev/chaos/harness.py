"""The chaos harness: N checkouts through the real ASL with a seeded fault schedule, then every check.

Phases (each one is also a check):

1. **submit** every checkout through the HTTP API (``POST /v1/payments``, retried with the
   same ``Idempotency-Key`` on a 503/409 as a client should); for a seeded share, start a
   second execution of the same checkout (another name, the same input): two workflows race.
   The Express faults: for a seeded share the payment function crashes after storing the
   checkout and before starting its workflow, and the client never retries (``start_crash``);
   the same execution runs a second time, overlapping the first (``express_twice``); the
   first execution is lost midway, right after its first charge (``express_lost``);
2. **settle**: wait until every checkout is final or parked NEEDS_ATTENTION and no
   execution is running, **without an operator's command**: the recovery schedule
   (``functions/recovery``, every ``recovery_interval`` s, deadline ``recovery_delay`` s) is
   what finishes the crashed and lost ones. With ``recovery=False`` they stay unfinished
   and the run reports the violation;
3. **audit** (invariants 1-6 over all stored data, ``payments.ops.invariants.check_current``)
   and **stuck detection** (``payments stuck``: exactly the unfinished or parked payments);
4. **resume** every parked checkout with the runbook's ``payments resume`` (faults off: the
   incident is over), then audit again: nothing stuck, nothing parked, everything done;
5. **late notifications** of PSP outcomes after the orders are final (contradicting,
   repeated, out of order): never applied, recorded as anomalies;
6. **reconciliation** (invariant 7): the simulated PSP settles each day of the run into the
   settlement bucket, one file per day; the reconcile function runs from each file's S3
   notification (crashing midway on a seeded share of attempts, then retried by Lambda's
   asynchronous retry); the same event is delivered again once or twice; every report must
   be clean and identical, with no duplicate records.
   **Simulated PSP days**: the simulator's calendar puts ``checkouts_per_day`` checkouts on
   each day (time compression, as a deterministic simulator does), so a run settles and
   reconciles ``checkouts / checkouts_per_day`` files, each with its own settlement faults.
   The days end yesterday; only the PSP's capture time is simulated (our own clock, hence
   deadlines and stuck detection, is the wall clock);
7. the final audit, the events' invariant (``payments_dev.event_invariants``: every committed change heard
   under exactly one event id, no event without a change; the events reader crashing mid-batch and losing
   its iterators meanwhile, ``payments_dev.chaos.reader_faults``), and the report: faults by kind, checks,
   violations, wall time, the schedule digest (same seed => same digest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote_plus

from functions import registry
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.errors import StatusConflict
from payments.ops.invariants import INVARIANTS, Report, check_current
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus
from payments_dev import event_invariants
from payments_dev.chaos import schedule as s
from payments_dev.chaos.faults import ChaosInjector, FaultLog, step_of
from payments_dev.chaos.schedule import FaultProfile, FaultSchedule
from payments_dev.demo import build_scenario
from payments_dev.local.client import ApiClient

Printer = Callable[[str], None]


@dataclass
class ChaosConfig:
    checkouts: int = 300
    seed: int = 7
    concurrency: int = 8
    profile: FaultProfile = field(default_factory=FaultProfile)
    #: scale of the ASL Retry waits (1.0: real seconds, as in AWS)
    time_scale: float = 1.0
    settle_timeout: float = 900.0
    #: added to ids so that several runs can share one runtime; the schedule ignores it
    run_tag: str = ""
    reconcile: bool = True
    #: checkouts per simulated PSP day (each day is one settlement file); 0: the wall clock
    checkouts_per_day: int = 6
    #: automatic recovery (functions/recovery) runs during the run; False: a protection removed
    recovery: bool = True
    #: the recovery's deadline (RECOVERY_DELAY_SECONDS) and schedule period during the run, seconds
    recovery_delay: float = 45.0
    recovery_interval: float = 2.0
    #: another PSP than the simulator (``payments chaos --psp adyen-fake``: the local Adyen fake,
    #: ``payments_dev.local.adyen_fake.LocalAdyen``): its ``charges()`` are the PSP's record for
    #: invariant 1 and its ``settle(day)`` writes the day's settlement file. None: the simulator
    psp: Any = None
    #: the events reader's faults during the run: the share of stream records that crash it mid-batch (its
    #: iterators are lost in twice that share of rounds); None: the profile's ``crash_after``, 0: none
    reader_fault_rate: float | None = None
    #: a late *repeat* of the final outcome must also be recorded as an anomaly (ARCHITECTURE.md
    #: invariant 5 says so; the code treats an identical repeat as a harmless no-op)


@dataclass
class ChaosResult:
    config: ChaosConfig
    checkouts: int = 0
    orders: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    schedule_digest: str = ""
    planned: dict[str, int] = field(default_factory=dict)
    injected_digest: str = ""
    orders_by_status: Counter[str] = field(default_factory=Counter)
    parked: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    #: checkouts the recovery re-drove at least once, and those it gave up on (parked)
    redriven: list[str] = field(default_factory=list)
    recovery_gave_up: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    #: the events' invariant at the end of the run (None: no local runtime in this process)
    events: event_invariants.EventsReport | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def violated_invariants(self) -> set[int]:
        found = set()
        for report in self.reports.values():
            found |= {v.invariant for v in report.violations}
        return found


class _Checks:
    def __init__(self, result: ChaosResult):
        self.result = result
        self._lock = threading.Lock()

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        with self._lock:
            self.result.checks[name] += 1
            if not ok:
                self.result.violations.append(f"[{name}] {detail}")
        return ok

    def events(self, phase: str, in_scope: Any, out: Printer) -> None:
        """The events' invariant: its figures and violations beside the other checks."""
        with self._lock:
            checks, violations = self.result.checks, self.result.violations
            self.result.events = event_invariants.check_phase(phase, in_scope, out, checks, violations)

    def audit(self, phase: str, expect_settled: bool = True) -> Report:
        psp = self.result.config.psp
        report = check_current(
            expect_settled=expect_settled,
            psp_charges=psp.charges() if psp is not None else None,
            psp_refunds=psp.refunds() if psp is not None else None,  # the fake's record, not the simulator's
        )
        self.result.reports[phase] = report
        for number, count in report.checks.items():
            self.result.checks[f"invariant {number} ({phase})"] += count
        for violation in report.violations:
            self.result.violations.append(f"[invariant {violation.invariant}, {phase}] {violation}")
        return report


def run(api_url: str, config: ChaosConfig, out: Printer = print) -> ChaosResult:
    started = time.monotonic()
    result = ChaosResult(config)
    checks = _Checks(result)
    scenario = build_scenario(config.checkouts, config.seed, run_id=config.run_tag)
    prefix = f"cm{config.seed}{config.run_tag}"
    schedule = FaultSchedule(config.seed, config.profile, prefix=prefix)
    calendar = PspCalendar.spread(scenario.checkouts, config.checkouts_per_day)
    result.checkouts = len(scenario.checkouts)
    result.orders = sum(len(c["payment_orders"]) for c in scenario.checkouts)
    result.schedule_digest, result.planned = schedule.digest(scenario.checkouts, days=calendar.days)
    out(
        f"chaos: {result.checkouts} checkouts, {result.orders} payment orders over {calendar.days} PSP days, seed {config.seed}, "
        f"time scale {config.time_scale}, schedule digest {result.schedule_digest}"
    )
    log = FaultLog()
    injector = ChaosInjector(
        schedule, log, time_scale=config.time_scale, calendar=calendar.charged_at if config.checkouts_per_day else None
    )
    client = ApiClient(api_url, timeout=60)
    repo = PaymentsRepository()
    recovery = _Recovery(config)
    reader = reader_faults(config)
    try:
        mark = time.monotonic()
        with injector, recovery, reader:
            # 1. submit
            _submit(client, scenario.checkouts, schedule, log, checks, config, out)
            result.phases["submit"] = time.monotonic() - mark
            mark = time.monotonic()
            # 2. settle
            ids = [c["checkout_id"] for c in scenario.checkouts]
            pending = _wait_settled(client, ids, config.settle_timeout)
            checks.check(
                "every checkout final or parked within the deadline",
                not pending,
                f"{len(pending)} unsettled, e.g. {sorted(pending)[:5]}",
            )
            for checkout_id in ids:
                checks.check(
                    "a checkout ends final or NEEDS_ATTENTION without an operator's command",
                    checkout_id not in pending,
                    f"{checkout_id}: still unfinished after {config.settle_timeout:.0f} s (recovery {'on' if config.recovery else 'OFF'})",
                )
            result.phases["settle"] = time.monotonic() - mark
            mark = time.monotonic()
            injector.enabled = False
            recovery.pause()
            _wait_at_rest(checks, 120)
            result.redriven, result.recovery_gave_up = _recovered(repo, prefix)
            # 3. audit + stuck detection
            before = checks.audit("after the run")
            out(
                f"chaos: audit after the run: {sum(before.checks.values())} invariant checks, {len(before.violations)} violations, {len(before.needs_attention)} parked"
            )
            result.parked = sorted(before.needs_attention)
            _check_stuck_detection(repo, checks, prefix)
            # 4. resume what is parked, as the runbook says
            result.resumed = _resume_parked(repo, checks, prefix)
            result.phases["resume"] = time.monotonic() - mark
            mark = time.monotonic()
            # 5. late notifications (once a PSP that delivers by itself has had its say: its own count as signals too)
            _psp_notifications_applied(config.psp, checks, prefix, config.settle_timeout)
            _late_notifications(repo, schedule, log, checks, prefix)
            # 6. reconciliation, with its own faults
            if config.reconcile:
                injector.enabled = True
                injector.active_steps = {"reconcile"}
                _reconcile(schedule, log, checks, calendar, prefix, out, config.psp)
                injector.enabled = False
            result.phases["reconcile"] = time.monotonic() - mark
            reader.drain()
        # 7. final audit
        after = checks.audit("final")
        checks.events("pay-in", event_invariants.of_run(prefix) if config.run_tag else event_invariants.everything, out)
        result.orders_by_status = Counter(
            o.status.value + ("+NEEDS_ATTENTION" if o.needs_attention else "")
            for o in repo.scan_orders()
            if o.checkout_id.startswith(prefix)
        )
        checks.check(
            "nothing left parked after resume",
            not after.needs_attention,
            f"still parked: {sorted(after.needs_attention)[:10]}",
        )
    except Exception as err:  # noqa: BLE001 - a crashed phase is a finding: report what ran, exit non-zero
        out("chaos: a phase raised:\n" + "".join(traceback.format_exception(err))[-3000:])
        checks.check("every phase ran to the end", False, f"{type(err).__name__}: {err}"[:500])
    result.faults = log.by_kind() + reader.injected
    result.injected_digest = hashlib.sha256(
        "\n".join(
            sorted(f"{e.kind} {e.step} {_logical(schedule, e.step, e.key)} {e.attempt}" for e in log.events)
        ).encode()
    ).hexdigest()[:16]
    result.wall_seconds = time.monotonic() - started
    print_report(result, out)
    return result


def reader_faults(config: ChaosConfig) -> Any:
    """The events reader's faults of the run: a record crashes the reader at the profile's ``crash_after``
    rate (or the config's own), a round loses its iterators at twice it."""
    from payments_dev.chaos.reader_faults import on_runtime

    rate = config.profile.crash_after if config.reader_fault_rate is None else config.reader_fault_rate
    return on_runtime(config.seed, rate)


def _logical(schedule: FaultSchedule, step: str, key: str) -> str:
    """A fault's place, free of the run's prefix and of the calendar (settlement files by day index)."""
    return schedule.logical_file(key) if step == "reconcile" else schedule.logical(key)


# --- phases ---------------------------------------------------------------------------------
def _submit(
    client: ApiClient,
    checkouts: list[dict[str, Any]],
    schedule: FaultSchedule,
    log: FaultLog,
    checks: _Checks,
    config: ChaosConfig,
    out: Printer,
) -> None:
    sfn = aws.client("stepfunctions")
    started = time.monotonic()
    every = max(100, len(checkouts) // 20)
    done = 0
    done_lock = threading.Lock()

    def progress() -> None:
        nonlocal done
        with done_lock:
            done += 1
            if done % every or done == len(checkouts):
                return
            elapsed = time.monotonic() - started
            out(
                f"chaos: submitted {done}/{len(checkouts)} in {elapsed:.0f} s ({done / elapsed:.2f}/s), {len(log.events)} faults so far"
            )

    def start_again(name: str, execution_input: dict[str, Any]) -> None:
        sfn.start_execution(
            stateMachineArn=settings().state_machine_arn, name=name, input=json.dumps(execution_input, sort_keys=True)
        )

    def submit(checkout: dict[str, Any]) -> None:
        key = f"idem-{checkout['checkout_id']}"
        if schedule.start_crash(checkout["checkout_id"]):
            # the payment function crashes after storing, before starting; this client never retries
            reply = client.pay(checkout, key)
            checks.check(
                "a POST whose function crashed is answered 5xx (and not retried)",
                reply.status >= 500,
                f"{checkout['checkout_id']}: {reply.status} {reply.body}",
            )
            progress()
            return
        reply = None
        for attempt in range(6):
            reply = client.pay(checkout, key)
            if reply.status not in (409, 503):
                break
            time.sleep(0.2 * (attempt + 1))
        assert reply is not None
        checks.check(
            "POST /v1/payments answered 202",
            reply.status == 202,
            f"{checkout['checkout_id']}: {reply.status} {reply.body}",
        )
        execution_input = {
            "checkout_id": checkout["checkout_id"],
            "payment_method": checkout["payment_method"],
            "payment_orders": [{"payment_order_id": o["payment_order_id"]} for o in checkout["payment_orders"]],
        }
        if reply.status == 202 and schedule.race_execution(checkout["checkout_id"]):
            start_again(f"{checkout['checkout_id']}-race", execution_input)
            log.add(s.RACE_EXECUTION, "workflow", checkout["checkout_id"], 1)
        delay = schedule.express_twice(checkout["checkout_id"])
        if reply.status == 202 and delay is not None:
            # Express is at-least-once: the same execution runs again, overlapping the first at some point.
            # (moto deduplicates names like Standard, so the second run gets a name of its own.)
            time.sleep(delay)
            start_again(f"{checkout['checkout_id']}-twice", execution_input)
            log.add(s.EXPRESS_TWICE, "workflow", checkout["checkout_id"], 1, f"after {delay} s")
        progress()

    with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
        list(pool.map(submit, checkouts))


class _Recovery:
    """The local runtime's recovery schedule, set for the run (deadline, period, on/off), restored after."""

    def __init__(self, config: ChaosConfig):
        from payments_dev.local import runtime as local_runtime

        self.config = config
        self.schedule = local_runtime.CURRENT.recovery if local_runtime.CURRENT is not None else None
        self._saved: tuple[Any, ...] | None = None

    def __enter__(self) -> _Recovery:
        import os

        from payments.kernel.config import reset_settings

        if self.schedule is None:
            if self.config.recovery:
                raise RuntimeError(
                    "the chaos harness needs the local runtime of this process for its recovery schedule"
                )
            return self
        self._saved = (self.schedule.enabled, self.schedule.interval, os.environ.get("RECOVERY_DELAY_SECONDS"))
        os.environ["RECOVERY_DELAY_SECONDS"] = str(self.config.recovery_delay)
        reset_settings()
        self.schedule.interval = self.config.recovery_interval
        self.schedule.enabled = self.config.recovery
        return self

    def pause(self) -> None:
        """No new recovery run; the one in progress, if any, ends first."""
        if self.schedule is not None:
            self.schedule.enabled = False
            with self.schedule._lock:
                pass

    def __exit__(self, *exc: object) -> None:
        import os

        from payments.kernel.config import reset_settings

        if self.schedule is None or self._saved is None:
            return
        self.pause()
        enabled, interval, delay = self._saved
        if delay is None:
            os.environ.pop("RECOVERY_DELAY_SECONDS", None)
        else:
            os.environ["RECOVERY_DELAY_SECONDS"] = delay
        reset_settings()
        self.schedule.interval, self.schedule.enabled = interval, enabled


def _wait_at_rest(checks: _Checks, timeout: float) -> None:
    """Until no execution runs and no Lambda invocation is in flight, seen twice in a row, 0.5 s apart.

    The audit reads the tables while nothing writes them. Executions are not enough: a task whose state
    timed out (``States.Timeout``) goes on running and completes its writes after its execution moved
    on or ended, as in Lambda (the chaos injects exactly that), and a re-drive the recovery started just
    before it was paused runs on. The recovery itself is paused by then (no new run starts)."""
    from payments_dev.local.lambdas import DISPATCHER

    deadline = time.monotonic() + timeout
    quiet, executions, invocations = 0, 0, {}
    while time.monotonic() < deadline:
        executions, invocations = _running_executions(), DISPATCHER.running()
        quiet = 0 if executions or invocations else quiet + 1
        if quiet == 2:
            break
        time.sleep(0.5)
    checks.check(
        "the system comes to rest before the audit (no execution running, no invocation in flight)",
        quiet == 2,
        f"after {timeout:.0f} s: {executions} execution(s) running, invocations in flight {invocations}",
    )


def _recovered(repo: PaymentsRepository, prefix: str) -> tuple[list[str], list[str]]:
    """(checkouts re-driven by the recovery, checkouts it gave up on) of this run."""
    redriven, gave_up = [], []
    for item in repo.ddb.get_paginator("scan").paginate(TableName=repo.table, ConsistentRead=True):
        for raw in item.get("Items", []):
            if raw["sk"]["S"] != "PAYMENT" or not raw["pk"]["S"].startswith(f"CHECKOUT#{prefix}"):
                continue
            if "recovery_attempts" in raw:
                redriven.append(raw["pk"]["S"].removeprefix("CHECKOUT#"))
            if "recovery_gave_up_at" in raw:
                gave_up.append(raw["pk"]["S"].removeprefix("CHECKOUT#"))
    return sorted(redriven), sorted(gave_up)


def _running_executions() -> int:
    sfn = aws.client("stepfunctions")
    count = 0
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=settings().state_machine_arn, statusFilter="RUNNING"
    ):
        count += len(page["executions"])
    return count


def _wait_settled(client: ApiClient, checkout_ids: list[str], timeout: float) -> set[str]:
    pending = set(checkout_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pending:
            ids = sorted(pending)
            with ThreadPoolExecutor(max_workers=8) as pool:
                for checkout_id, reply in zip(ids, pool.map(client.payment, ids), strict=True):
                    body = reply.body if reply.status == 200 else {}
                    parked = any(o.get("needs_attention") for o in body.get("payment_orders", []))
                    if body.get("is_payment_done") or body.get("status") == "FAILED" or parked:
                        pending.discard(checkout_id)
        if not pending and _running_executions() == 0:
            return pending
        time.sleep(0.5)
    return pending


def _check_stuck_detection(repo: PaymentsRepository, checks: _Checks, prefix: str) -> None:
    from payments.ops.operations import find_stuck

    listed = {p.checkout_id for p in find_stuck(timedelta(0), repo=repo) if p.checkout_id.startswith(prefix)}
    expected = set()
    orders_by_checkout: dict[str, list[Any]] = {}
    for order in repo.scan_orders():
        orders_by_checkout.setdefault(order.checkout_id, []).append(order)
    for payment in repo.scan_payments():
        if not payment.checkout_id.startswith(prefix):
            continue
        if not payment.status.is_final or any(
            o.needs_attention for o in orders_by_checkout.get(payment.checkout_id, [])
        ):
            expected.add(payment.checkout_id)
    checks.check(
        "payments stuck lists exactly the unfinished or parked payments",
        listed == expected,
        f"listed but not expected {sorted(listed - expected)[:5]}, expected but not listed {sorted(expected - listed)[:5]}",
    )


def _resume_parked(repo: PaymentsRepository, checks: _Checks, prefix: str) -> list[str]:
    from payments.ops.operations import find_stuck, resume

    stuck = [p for p in find_stuck(timedelta(0), repo=repo) if p.checkout_id.startswith(prefix)]
    resumed = []

    def one(checkout_id: str) -> None:
        outcome = resume(checkout_id, timeout=300, repo=repo)
        checks.check(
            "payments resume settles a parked checkout",
            outcome.ok,
            f"{checkout_id}: {outcome.execution_name} {outcome.execution_status}, payment {outcome.payment_status}, "
            f"done {outcome.is_payment_done}, still parked {outcome.still_parked}",
        )
        resumed.append(checkout_id)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, [p.checkout_id for p in stuck]))
    left = [p.checkout_id for p in find_stuck(timedelta(0), repo=repo) if p.checkout_id.startswith(prefix)]
    checks.check("payments stuck is empty after resume", not left, f"still stuck: {left[:5]}")
    return sorted(resumed)


def _psp_notifications_applied(psp: Any, checks: _Checks, prefix: str, timeout: float) -> None:
    """A PSP that posts its notifications by itself (the Adyen fake: an AUTHORISATION for every payment,
    retried, some duplicated): wait until the webhook accepted every one and the queue applied them, so
    that what the next phase counts (an order's anomalies) is not moved by a delivery still in flight."""
    record = getattr(psp, "record", None)
    if record is None:
        return
    from payments.notifications.store import NotificationStore

    checks.check(
        "the PSP's own notifications are all accepted by the webhook",
        record().wait_delivered(timeout),
        f"some still queued for retry after {timeout:.0f} s",
    )
    store = NotificationStore()
    deadline = time.monotonic() + timeout
    waiting = ["?"]
    while waiting and time.monotonic() < deadline:
        waiting = [
            n["notification_id"]
            for n in store.scan()
            if "outcome" not in n and str(n.get("merchant_reference", "")).startswith(prefix)
        ]
        if waiting:
            time.sleep(0.2)
    checks.check(
        "the PSP's own notifications are applied (the queue drains)",
        not waiting,
        f"{len(waiting)} still waiting after {timeout:.0f} s",
    )


def _late_notifications(
    repo: PaymentsRepository, schedule: FaultSchedule, log: FaultLog, checks: _Checks, prefix: str
) -> None:
    for order in sorted(repo.scan_orders(), key=lambda o: o.payment_order_id):
        if not order.checkout_id.startswith(prefix) or not order.status.is_final:
            continue
        kind = schedule.late_notification(order.payment_order_id)
        if kind is None:
            continue
        log.add(kind, "notification", order.payment_order_id, 1, order.status.value)
        success = order.status is OrderStatus.SUCCESS
        if kind == s.LATE_CONTRADICTING:
            move: dict[str, Any] = (
                {"target": OrderStatus.FAILED, "failure_reason": "late_decline"}
                if success
                else {
                    "target": OrderStatus.SUCCESS,
                    "psp_reference": "psp_late_" + hashlib.sha256(order.payment_order_id.encode()).hexdigest()[:12],
                    "charged_at": order.updated_at,
                }
            )
        elif kind == s.LATE_REPEATED:
            move = (
                {"target": order.status, "psp_reference": order.psp_reference, "charged_at": order.charged_at}
                if success
                else {"target": order.status, "failure_reason": order.failure_reason}
            )
        else:
            move = {"target": OrderStatus.EXECUTING}
        target = move.pop("target")
        with contextlib.suppress(StatusConflict):
            repo.move_order(order.payment_order_id, target, signal="late PSP notification", **move)
        after = repo.get_order(order.payment_order_id)
        unchanged = (after.status, after.psp_reference, after.failure_reason, after.status_history) == (
            order.status,
            order.psp_reference,
            order.failure_reason,
            order.status_history,
        )
        checks.check(
            "a late notification is never applied",
            unchanged,
            f"{order.payment_order_id}: {kind} changed the order ({order.status.value} -> {after.status.value})",
        )
        recorded = len(after.anomalies) == len(order.anomalies) + 1
        checks.check(
            "a late notification is recorded as an anomaly",
            recorded,
            f"{order.payment_order_id}: {kind} ({order.status.value} -> {target.value}) left {len(after.anomalies) - len(order.anomalies)} new anomalies",
        )


@dataclass(frozen=True)
class PspCalendar:
    """The simulated PSP's days: checkout ``i`` of the run is captured on day ``i // per_day``,
    counted from ``first`` (the run's days end yesterday)."""

    first: date
    days: int
    day_of_order: dict[str, str]

    @classmethod
    def spread(cls, checkouts: list[dict[str, Any]], per_day: int) -> PspCalendar:
        days = -(-len(checkouts) // per_day) if per_day > 0 else 1
        first = clock.now().date() - timedelta(days=days if per_day > 0 else 0)
        day_of_order = (
            {
                order["payment_order_id"]: (first + timedelta(days=i // per_day)).isoformat()
                for i, checkout in enumerate(checkouts)
                for order in checkout["payment_orders"]
            }
            if per_day > 0
            else {}
        )
        return cls(first, days, day_of_order)

    def charged_at(self, request: Any) -> str:
        """A capture's time: its order's simulated day at the wall clock's time of day."""
        now = clock.now_iso()
        day = self.day_of_order.get(request.idempotency_key)
        return now if day is None else f"{day}{now[10:]}"

    def index(self, day: str) -> int:
        return (date.fromisoformat(day) - self.first).days


def _reconcile(
    schedule: FaultSchedule,
    log: FaultLog,
    checks: _Checks,
    calendar: PspCalendar,
    prefix: str,
    out: Printer,
    other_psp: Any = None,
) -> None:
    from payments.psp.simulator import SimulatedPsp
    from payments.reconciliation.settlement import settle_day, settlement_key
    from payments.reconciliation.store import ReconciliationStore
    from payments_dev.local.lambdas import DEAD_LETTERS, DISPATCHER

    s3 = aws.client("s3")
    bucket = settings().settlement_bucket
    store = ReconciliationStore()
    if other_psp is None:
        all_charges = list(SimulatedPsp().all_charges())
    else:  # another PSP's record (the Adyen fake's captured payments), its day from its capture time
        all_charges = [{**c, "charge_day": clock.day_of(c["charged_at"])} for c in other_psp.charges()]

        settle_day = other_psp.settle_day  # the other PSP's nightly job

    charged: Counter[str] = Counter()  # charges per day, of every run in this runtime (what a file holds)
    ours: set[str] = set()  # the days of this run
    for charge in all_charges:
        charged[charge["charge_day"]] += 1
        if str(charge["merchant_reference"]).startswith(prefix + "_"):
            ours.add(charge["charge_day"])
    days = sorted(ours)
    for day in days:
        schedule.settlement_days[settlement_key(day)] = calendar.index(day)
    dead_before = len(DEAD_LETTERS)
    # the PSP's nightly job for every day of the run: each file's notification queues an
    # asynchronous reconcile invocation (Lambda runs them concurrently, retries each on failure)
    mark = time.monotonic()
    seen = len(DISPATCHER.async_invocations)
    files = [(day, *settle_day(day)) for day in days]
    invocations = _wait_async_reconciles(DISPATCHER, seen, {key for _, key, _ in files})
    rows_total = sum(rows for _, _, rows in files)
    out(
        f"chaos: {len(files)} settlement files ({rows_total} rows) written and reconciled from their S3 events in {time.monotonic() - mark:.0f} s"
    )
    attempts: Counter[int] = Counter()
    seconds: list[float] = []
    for day, key, rows in files:
        invocation = invocations.get(key)
        if not checks.check(
            "the settlement file's S3 notification invoked reconcile", invocation is not None, f"{key}: no invocation"
        ):
            continue
        assert invocation is not None
        attempts[invocation.attempts] += 1
        seconds.append(invocation.seconds)
        finished = checks.check(
            "the reconcile invocation succeeded within Lambda's bounds",
            bool(invocation.succeeded),
            f"{key}: {'still running' if not invocation.done else 'dead-lettered'} after {invocation.attempts} attempts, {time.monotonic() - invocation.queued:.0f} s",
        )
        if not finished:
            continue
        crashes = [e for e in log.of_kind(s.RECONCILE_CRASH) if e.key == key]
        checks.check(
            "each injected reconciliation crash was retried by Lambda (attempts = crashes + 1)",
            invocation.attempts == len(crashes) + 1,
            f"{key}: {invocation.attempts} attempts for {len(crashes)} injected crashes {[e.detail for e in crashes]}",
        )
        # the run of *this* file (the same day may have been reconciled before, in a shared runtime):
        # its summary is the last record written, under the file's sha256
        sha256 = hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
        summary = store.summary(key)
        if not checks.check(
            "the settlement file was reconciled (S3 notification -> reconcile)",
            summary is not None and summary.get("sha256") == sha256,
            f"{key}: the invocation succeeded but recorded no run of sha256 {sha256[:16]} (summary {summary})",
        ):
            continue
        report_key = f"reports/{key}.json"
        raw_report = s3.get_object(Bucket=bucket, Key=report_key)["Body"].read()
        report = json.loads(raw_report)
        checks.check(
            "reconciliation: zero mismatches after a clean day (invariant 7)",
            not report["mismatches"],
            f"{key}: {len(report['mismatches'])} mismatches, e.g. {report['mismatches'][:3]}",
        )
        checks.check(
            "reconciliation: no rejected rows", not report["rejected_rows"], f"{key}: {report['rejected_rows'][:3]}"
        )
        diffs = report.get("three_way", {}).get("differences", [])
        checks.check(
            "reconciliation: wallets equal the ledger for the sellers of the file", not diffs, f"{key}: {diffs[:3]}"
        )
        checks.check(
            "reconciliation: every charge of the day matched, every row read",
            report["matched"] == charged[day] and report["rows"] == rows,
            f"{key}: rows {report['rows']} of {rows} written, matched {report['matched']} of {charged[day]} charges",
        )
        # S3 delivers the same ObjectCreated event again: the same report, no new records
        duplicates = schedule.s3_duplicates(key)
        if duplicates:
            items_before = _run_items(store, key)
            event = {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="")}},
                    }
                ]
            }
            for delivery in range(2, 2 + duplicates):
                log.add(s.S3_DUPLICATE, "reconcile", key, delivery)
                payload, errored = DISPATCHER.invoke(registry.RECONCILE.local_name, event)
                checks.check("a duplicate S3 event is reconciled without error", not errored, payload.decode()[:300])
                raw_after = s3.get_object(Bucket=bucket, Key=report_key)["Body"].read()
                checks.check(
                    "a duplicate S3 event writes the same report",
                    raw_report == raw_after,
                    f"{report_key} changed on delivery {delivery}",
                )
            checks.check(
                "duplicate S3 events add no records", _run_items(store, key) == items_before, f"{key}: records changed"
            )
    if seconds:
        ordered = sorted(seconds)
        out(
            f"chaos: reconcile invocations by attempts: {dict(sorted(attempts.items()))}; "
            f"seconds per file median {ordered[len(ordered) // 2]:.2f}, max {ordered[-1]:.2f}"
        )
    checks.check(
        "no asynchronous invocation dead-lettered",
        len(DEAD_LETTERS) == dead_before,
        f"{DEAD_LETTERS[dead_before:][:2]}",
    )


#: how long S3 may take to deliver an ObjectCreated notification (moto delivers it on the PUT)
NOTIFICATION_SECONDS = 60
#: one attempt of the deployed reconcile function is bounded by its timeout
#: (``RECONCILE_TIMEOUT`` in infra/constructs/reconciliation.py); Lambda makes 3 attempts
RECONCILE_ATTEMPT_SECONDS = 14 * 60


def _wait_async_reconciles(dispatcher: Any, seen: int, keys: set[str]) -> dict[str, Any]:
    """The asynchronous reconcile invocation of each key, queued after the first ``seen`` ones,
    once finished. Bounded by Lambda's limits: S3 delivers within NOTIFICATION_SECONDS, and
    the queue must finish *some* invocation (all its attempts) within their bound, or the
    waiting stops; a key never invoked is missing from the answer."""
    from payments_dev.local.lambdas import ASYNC_RETRIES

    found: dict[str, Any] = {}
    scanned = seen
    last_progress = time.monotonic()
    done_before = 0
    while True:
        batch = dispatcher.async_invocations[scanned:]  # one copy: what it holds is what was scanned
        scanned += len(batch)
        for invocation in batch:
            where = step_of(invocation.function_name, invocation.event)
            if where is not None and where[0] == "reconcile" and where[1] in keys and where[1] not in found:
                found[where[1]] = invocation
        done = sum(1 for i in found.values() if i.done)
        if done != done_before:
            done_before, last_progress = done, time.monotonic()
        if len(found) == len(keys) and done == len(found):
            return found
        waited = time.monotonic() - last_progress
        if (
            len(found) < len(keys) and waited > NOTIFICATION_SECONDS and done == len(found)
        ) or waited > RECONCILE_ATTEMPT_SECONDS * (1 + ASYNC_RETRIES):
            return found
        time.sleep(0.2)


def _run_items(store: Any, key: str) -> list[dict[str, Any]]:
    from payments.kernel.dynamo import query_all, to_values
    from payments.reconciliation.store import run_pk

    return sorted(
        (
            json.dumps(i, sort_keys=True, default=str)
            for i in query_all(
                store.ddb,
                TableName=store.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_values({":pk": run_pk(key)}),
            )
        ),
    )  # type: ignore[return-value]


# --- report --------------------------------------------------------------------------------------
def print_report(result: ChaosResult, out: Printer = print) -> None:
    out("")
    out(
        f"Checkouts: {result.checkouts} ({result.orders} payment orders); orders by status: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.orders_by_status.items()))
    )
    out(
        f"Recovered without an operator: {len(result.redriven)} checkouts re-driven by the recovery schedule, "
        f"{len(result.recovery_gave_up)} given up (parked NEEDS_ATTENTION)"
    )
    out(
        f"Parked NEEDS_ATTENTION after the run: {len(result.parked)} payment orders; checkouts resumed with `payments resume`: {len(result.resumed)}"
    )
    out(f"Faults injected ({sum(result.faults.values())}):")
    for kind, count in sorted(result.faults.items()):
        out(f"  {kind:<26} {count}")
    out(f"Checks run ({sum(result.checks.values())}):")
    for name, count in sorted(result.checks.items()):
        out(f"  {count:>7}  {name}")
    if result.events is not None:
        out(f"Events: {result.events.figures()}")
    out(f"Violations: {len(result.violations)}")
    for violation in result.violations[:30]:
        out(f"  VIOLATION {violation}")
    if len(result.violations) > 30:
        out(f"  ... and {len(result.violations) - 30} more")
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in result.phases.items())
    out(
        f"Schedule digest {result.schedule_digest} (planned: {sum(result.planned.values())} fault decisions); injected digest {result.injected_digest}"
    )
    out(f"Wall time {result.wall_seconds:.1f}s ({phases})")
    out("RESULT: " + ("no violations" if result.ok else "VIOLATIONS FOUND"))


__all__ = ["INVARIANTS", "ChaosConfig", "ChaosResult", "run"]
