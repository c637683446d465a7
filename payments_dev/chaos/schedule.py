"""The fault schedule: which fault is injected where, decided by hashing, never by a shared RNG.

Every decision is ``unit(seed, *where) < rate``: a pure function of the seed and of
*where* the system is (the logical id of the checkout or order, the step, the
attempt number, the index of the DynamoDB call inside that attempt...). Thread
scheduling, the number of worker threads or the order in which the state machine
happens to run its Map iterations cannot change what is decided for a given place;
the same seed gives the same schedule, and :meth:`FaultSchedule.digest` proves it.

Logical ids are the ids without the run prefix (``po_00042_1``), so a run repeated
with a fresh prefix (tests share one runtime) draws the same faults.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

#: the state machine's task steps (and the reconcile function) the schedule knows
TASK_STEPS = ("executor", "wallet", "ledger", "finalize")
#: the ASL state of each task step
_STATE_OF_STEP = {
    "executor": "ExecutePaymentOrder",
    "wallet": "UpdateWallet",
    "ledger": "AppendLedger",
    "finalize": "FinalizePayment",
}


def _asl_tasks() -> dict[str, dict[str, object]]:
    asl = json.loads((Path(__file__).resolve().parents[2] / "stepfunctions" / "payment.asl.json").read_text())
    states = {**asl["States"], **asl["States"]["ProcessPaymentOrders"]["ItemProcessor"]["States"]}
    return {step: states[name] for step, name in _STATE_OF_STEP.items()}


#: attempts the ASL allows per step (stepfunctions/payment.asl.json: 1 + MaxAttempts), read from it;
#: reconcile: Lambda's asynchronous invocation (1 + 2 retries)
ASL_ATTEMPTS = {step: 1 + sum(r["MaxAttempts"] for r in task["Retry"]) for step, task in _asl_tasks().items()} | {
    "reconcile": 3
}  # type: ignore[attr-defined]
#: TimeoutSeconds of each task step, read from the ASL
TASK_TIMEOUTS = {step: float(task["TimeoutSeconds"]) for step, task in _asl_tasks().items()}  # type: ignore[arg-type]

#: the refund workflow's task steps (stepfunctions/refund.asl.json, issue 18) and their ASL states
REFUND_STEPS = ("refund_execute", "refund_apply")
_STATE_OF_REFUND_STEP = {"refund_execute": "ExecuteRefund", "refund_apply": "ApplyRefundOutcome"}


def _refund_asl_tasks() -> dict[str, dict[str, object]]:
    asl = json.loads((Path(__file__).resolve().parents[2] / "stepfunctions" / "refund.asl.json").read_text())
    return {step: asl["States"][name] for step, name in _STATE_OF_REFUND_STEP.items()}


ASL_ATTEMPTS |= {step: 1 + sum(r["MaxAttempts"] for r in task["Retry"]) for step, task in _refund_asl_tasks().items()}  # type: ignore[attr-defined]
TASK_TIMEOUTS |= {step: float(task["TimeoutSeconds"]) for step, task in _refund_asl_tasks().items()}  # type: ignore[arg-type]

# Lambda-level faults (one per task attempt)
CRASH_BEFORE = "crash_before"  # the invocation fails before the handler runs (Lambda.ServiceException)
CRASH_AFTER = "crash_after"  # the handler ran and wrote; its answer is lost (Lambda.ServiceException)
TIMEOUT = "timeout"  # the task outlives TimeoutSeconds (States.Timeout), then completes its writes anyway
DUPLICATE = "duplicate"  # delivered twice: run twice, the second result is returned
RACE = "race"  # delivered twice at the same time: two concurrent runs, real conditional-check races
SLOW = "slow"  # the invocation is slow (well under the task timeout)
RUNTIME_EXIT = "runtime_exit"  # the runtime dies after the write (Runtime.ExitError: not retried -> parked)
PERSISTENT = "persistent"  # every attempt of this step fails transiently: retries exhausted -> parked
LAMBDA_KINDS = (CRASH_BEFORE, CRASH_AFTER, TIMEOUT, DUPLICATE, RACE, SLOW, RUNTIME_EXIT)

# DynamoDB faults (one per call of a handler to a service table)
THROTTLE = "ddb_throttle"  # ProvisionedThroughputExceededException / ThrottlingException
INTERNAL = "ddb_internal"  # InternalServerError
TXN_CONFLICT = "ddb_txn_conflict"  # TransactionCanceledException [TransactionConflict] (transactions only)

# PSP faults (one per call of the executor to the PSP adapter)
PSP_OUTAGE = "psp_outage"  # PspUnavailable before anything is charged
PSP_LOST_ANSWER = "psp_lost_answer"  # the charge happens, the answer is lost (PspOutcomeUnknown)
PSP_SLOW = "psp_slow"
PSP_LOOKUP_OUTAGE = "psp_lookup_outage"  # the status lookup after an unknown outcome fails

# workflow-level and later faults
RACE_EXECUTION = "race_execution"  # a second execution of the same checkout (another name, same input)
# the payment function and the Express workflow (recovered by functions/recovery, without an operator)
START_CRASH = "start_crash"  # the payment function crashes after storing, before starting; the client never retries
START_CRASH_POINTS = ("before_marker", "after_marker")  # before or after the conditional PENDING -> PROCESSING
EXPRESS_TWICE = "express_twice"  # an Express execution runs twice: the same input again, overlapping the first
EXPRESS_LOST = "express_lost"  # an Express execution is lost midway (after its first charge): nothing after it runs
LATE_CONTRADICTING = "late_contradicting"  # a late PSP notification contradicting the final outcome
LATE_REPEATED = "late_repeated"  # a late duplicate of the final outcome
LATE_OUT_OF_ORDER = "late_out_of_order"  # a stale EXECUTING signal arriving after the final one
LATE_KINDS = (LATE_CONTRADICTING, LATE_REPEATED, LATE_OUT_OF_ORDER)
S3_DUPLICATE = "s3_duplicate_event"  # a settlement file's ObjectCreated event delivered again
RECONCILE_CRASH = "reconcile_crash_midway"  # the reconcile invocation crashes between its writes
#: where a reconciliation crashes: before its 2nd or 3rd report object (a partial report set),
#: or after every report and before its first record in the reconciliation table
RECONCILE_CRASH_POINTS = ("before_report_2", "before_report_3", "before_records")
#: the asynchronous attempts that may crash (Lambda makes 1 + 2 retries: the last one runs clean)
RECONCILE_CRASH_ATTEMPTS = 2

# money flowing back (issue 18): the refund workflow's tasks get the Lambda-level kinds above
# (per refund_id and attempt, never ``persistent``: a parked refund has no operator's resume) and
# the DynamoDB kinds (per call of a refund task); the PSP's refund call and the notifications
# get their own kinds, keyed by the logical refund_id / payment_order_id
REFUND_PSP_OUTAGE = "refund_psp_outage"  # PspUnavailable before anything is refunded
REFUND_PSP_LOST_ANSWER = "refund_psp_lost_answer"  # the PSP refunds, its answer is lost (PspOutcomeUnknown): a crash between the PSP's refund and the wallet debit
NOTIFICATION_FIRST = "refund_notification_first"  # the REFUND notification is applied before the PSP's synchronous answer reaches the workflow
REFUND_NOTIFICATION_LOST = "refund_notification_lost"  # never delivered: the PSP's answer alone decides
REFUND_NOTIFICATION_DUPLICATED = "refund_notification_duplicated"  # delivered twice, one after the other
REFUND_NOTIFICATION_CONCURRENT = "refund_notification_concurrent"  # delivered twice at the same time
REFUND_NOTIFICATION_CONTRADICTING = "refund_notification_contradicting"  # a late one saying the opposite
REFUND_NOTIFICATION_LATE = "refund_notification_late"  # a repeat delivered after the refund was decided
#: how many deliveries of a refund's REFUND notification (after the PSP decided it) each kind makes
REFUND_NOTIFICATION_KINDS = {
    REFUND_NOTIFICATION_LOST: 0,
    REFUND_NOTIFICATION_DUPLICATED: 2,
    REFUND_NOTIFICATION_CONCURRENT: 2,
}

# payouts (issue 25), per payout round of the run (payments_dev/chaos/payouts.py): where the night's payout
# run crashes, what happens to its pain.001 at the bank and to the bank's pain.002 on its way back
PAYOUT_RUN_CRASH_AFTER_RESERVING = "payout_run_crash_after_reserving"  # its payouts reserved, no run fixed yet
PAYOUT_RUN_CRASH_BEFORE_FILE = "payout_run_crash_before_file"  # the run's MsgId stored, its pain.001 not written
PAYOUT_RUN_CRASH_AFTER_FILE = "payout_run_crash_after_file"  # the pain.001 written (the bank has it), nothing marked
PAYOUT_RUN_CRASHES = (PAYOUT_RUN_CRASH_AFTER_RESERVING, PAYOUT_RUN_CRASH_BEFORE_FILE, PAYOUT_RUN_CRASH_AFTER_FILE)
PAIN001_TWICE = "pain001_delivered_twice"  # the bank receives the same pain.001 again (it refuses the MsgId: DU01)
PAIN002_LOST = "pain002_lost"  # its S3 event never reaches the reconciliation (re-driven after the statements)
PAIN002_DUPLICATED = "pain002_duplicated"  # reconciled twice, one after the other
PAIN002_CONCURRENT = "pain002_duplicated_concurrently"  # reconciled twice at the same time
PAIN002_LATE = "pain002_late"  # reconciled after the day's camt.053: the statement before its pain.002
PAIN002_FATES = (PAIN002_LOST, PAIN002_DUPLICATED, PAIN002_CONCURRENT, PAIN002_LATE)


@dataclass(frozen=True)
class FaultProfile:
    """Rates of every fault. The defaults keep retries within the ASL's MaxAttempts except
    where a fault is meant to exhaust them (``persistent``, ``runtime_exit``)."""

    # per task attempt, for attempts <= lambda_max_attempt
    crash_before: float = 0.05
    crash_after: float = 0.05
    timeout: float = 0.015
    duplicate: float = 0.06
    race: float = 0.04
    slow: float = 0.03
    runtime_exit: float = 0.006
    lambda_max_attempt: int = 2
    # per (order or checkout, step)
    persistent: float = 0.004
    # per DynamoDB call of a handler, for attempts <= ddb_max_attempt
    ddb_throttle: float = 0.02
    ddb_internal: float = 0.005
    ddb_txn_conflict: float = 0.03
    ddb_max_attempt: int = 2
    # per PSP call, for calls <= psp_max_call
    psp_outage: float = 0.08
    psp_lost_answer: float = 0.08
    psp_slow: float = 0.05
    psp_lookup_outage: float = 0.10
    psp_max_call: int = 3
    slow_seconds: float = 0.3
    # per checkout / per final order
    race_execution: float = 0.05
    late_notification: float = 0.12
    # per checkout: the payment function's crash before the start, an execution run twice, lost midway
    start_crash: float = 0.03
    express_twice: float = 0.04
    express_lost: float = 0.03
    # per settlement file (one per simulated PSP day): its event delivered again (and a third
    # time at half the rate); its first attempt crashing midway (its retry crashing again at
    # half the rate; the third and last attempt never does)
    s3_duplicate: float = 1.0
    reconcile_crash: float = 0.9
    # money flowing back (issue 18), per refund_id: the PSP's refund call (for calls <= psp_max_call);
    # the REFUND notification applied before the PSP's answer; the notification's fate
    refund_psp_outage: float = 0.08
    refund_psp_lost_answer: float = 0.12
    notification_first: float = 0.15
    refund_notification_lost: float = 0.2
    refund_notification_duplicated: float = 0.2
    refund_notification_concurrent: float = 0.15
    refund_notification_contradicting: float = 0.15
    refund_notification_late: float = 0.15
    # payouts (issue 25): the share of payout rounds that meet their faults (a crash of the payout run, the
    # pain.001 twice at the bank, the pain.002's fate), each kind in turn (FaultSchedule.payout_round)
    payout_faults: float = 1.0
    #: steps whose Lambda-level faults are enabled (all by default, the refund workflow's included)
    steps: tuple[str, ...] = TASK_STEPS + REFUND_STEPS

    def to_json(self) -> dict[str, object]:
        return asdict(self)


#: named profiles for the CLI
PROFILES: dict[str, FaultProfile] = {
    "default": FaultProfile(),
    # every rate zero: the float fields but durations (bounds, steps and durations keep their defaults)
    "none": FaultProfile(
        **{f.name: 0.0 for f in fields(FaultProfile) if f.type in ("float", float) and not f.name.endswith("_seconds")}
    ),
    "heavy": FaultProfile(
        crash_before=0.10,
        crash_after=0.10,
        timeout=0.05,
        duplicate=0.10,
        race=0.08,
        slow=0.05,
        runtime_exit=0.01,
        persistent=0.01,
        ddb_throttle=0.05,
        ddb_internal=0.01,
        ddb_txn_conflict=0.05,
        psp_outage=0.15,
        psp_lost_answer=0.15,
        psp_lookup_outage=0.15,
        race_execution=0.10,
        late_notification=0.2,
        start_crash=0.06,
        express_twice=0.08,
        express_lost=0.06,
        refund_psp_outage=0.15,
        refund_psp_lost_answer=0.2,
        notification_first=0.3,
    ),
}


def unit(seed: int, *where: object) -> float:
    """A number in [0, 1) determined by the seed and the place only."""
    digest = hashlib.sha256(json.dumps([seed, *where], separators=(",", ":")).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(u: float, table: Iterable[tuple[str, float]]) -> str | None:
    edge = 0.0
    for kind, rate in table:
        edge += rate
        if u < edge:
            return kind
    return None


@dataclass
class FaultSchedule:
    seed: int
    profile: FaultProfile = field(default_factory=FaultProfile)
    #: the run prefix stripped from ids before hashing (``cm7x1_po_00001_0`` -> ``po_00001_0``)
    prefix: str = ""
    #: settlement file key -> its day's index in the run (set by the harness before it settles)
    settlement_days: dict[str, int] = field(default_factory=dict)

    def logical(self, ident: str) -> str:
        if self.prefix and ident.startswith(self.prefix + "_"):
            return ident[len(self.prefix) + 1 :]
        return ident

    # --- decisions --------------------------------------------------------------------------
    def lambda_fault(self, step: str, key: str, attempt: int) -> str | None:
        p = self.profile
        if step not in p.steps and step != "reconcile":
            return None
        if step == "reconcile":
            return RECONCILE_CRASH if self.reconcile_crash(key, attempt) else None
        if step not in REFUND_STEPS and self.persistent(step, key):
            return PERSISTENT
        if attempt > p.lambda_max_attempt:
            return None
        table = [(k, getattr(p, k)) for k in LAMBDA_KINDS]
        if step == "finalize":
            # FinalizePayment retries States.ALL; a runtime exit there is retried like the rest
            table = [(k, r) for k, r in table if k != RUNTIME_EXIT]
        place = self.refund_place(key) if step in REFUND_STEPS else self.logical(key)
        return _pick(unit(self.seed, "lambda", step, place, attempt), table)

    def reconcile_crash(self, key: str, attempt: int) -> str | None:
        """Where the reconciliation of settlement file ``key`` crashes on this attempt, if it does."""
        if attempt > RECONCILE_CRASH_ATTEMPTS:
            return None
        where = self.logical_file(key)
        # attempt n runs only after attempt n-1 failed: a crash on n needs crashes on 1..n-1
        for tried in range(1, attempt + 1):
            if unit(self.seed, "reconcile_crash", where, tried) >= self.profile.reconcile_crash / tried:
                return None
        return RECONCILE_CRASH_POINTS[
            int(unit(self.seed, "reconcile_point", where, attempt) * len(RECONCILE_CRASH_POINTS))
        ]

    def s3_duplicates(self, key: str) -> int:
        """How many extra times S3 delivers the ObjectCreated event of settlement file ``key``."""
        u, rate = unit(self.seed, "s3_duplicate", self.logical_file(key)), self.profile.s3_duplicate
        return 0 if u >= rate else 2 if u < rate / 2 else 1

    def logical_file(self, key: str) -> str:
        """A settlement file by its place in the run (``day#12``: the run's 13th PSP day), so the
        decision does not depend on the calendar date the run happened to start on."""
        index = self.settlement_days.get(key)
        return key if index is None else f"day#{index}"

    def persistent(self, step: str, key: str) -> bool:
        if step not in ("executor", "wallet", "ledger") or step not in self.profile.steps:
            return False
        return unit(self.seed, "persistent", step, self.logical(key)) < self.profile.persistent

    def ddb_fault(self, step: str, key: str, attempt: int, call: int, operation: str) -> str | None:
        p = self.profile
        if attempt > p.ddb_max_attempt or step not in p.steps:
            return None
        table = [(THROTTLE, p.ddb_throttle), (INTERNAL, p.ddb_internal)]
        if operation == "TransactWriteItems":
            table.append((TXN_CONFLICT, p.ddb_txn_conflict))
        place = self.refund_place(key) if step in REFUND_STEPS else self.logical(key)
        return _pick(unit(self.seed, "ddb", step, place, attempt, call), table)

    def psp_fault(self, operation: str, key: str, call: int) -> str | None:
        p = self.profile
        if call > p.psp_max_call or "executor" not in p.steps:
            return None
        if operation == "lookup":
            table = [(PSP_LOOKUP_OUTAGE, p.psp_lookup_outage)]
        else:
            table = [(PSP_OUTAGE, p.psp_outage), (PSP_LOST_ANSWER, p.psp_lost_answer), (PSP_SLOW, p.psp_slow)]
        return _pick(unit(self.seed, "psp", operation, self.logical(key), call), table)

    # --- money flowing back (issue 18) ------------------------------------------------------
    def refund_place(self, refund_id: str) -> str:
        """A refund's place: its logical id, with the harness's ``_rf<i>`` suffix dropped. Which of
        an order's concurrent refund requests is accepted is decided by a real race; the faults of
        *the* accepted refund of an order must not depend on it."""
        return re.sub(r"_rf\d+$", "", self.logical(refund_id)) + "/refund"

    def refund_psp_fault(self, refund_id: str, call: int) -> str | None:
        """The fault of the ``call``-th call of the refund workflow to the PSP for this refund."""
        p = self.profile
        if call > p.psp_max_call or "refund_execute" not in p.steps:
            return None
        table = [(REFUND_PSP_OUTAGE, p.refund_psp_outage), (REFUND_PSP_LOST_ANSWER, p.refund_psp_lost_answer)]
        return _pick(unit(self.seed, "refund_psp", self.refund_place(refund_id), call), table)

    def notification_first(self, refund_id: str) -> bool:
        """The refund's REFUND notification is applied before the PSP's answer reaches the workflow."""
        return unit(self.seed, "notification_first", self.refund_place(refund_id)) < self.profile.notification_first

    def refund_notification(self, refund_id: str) -> str | None:
        """The fate of a refund's REFUND notification once the PSP decided it (REFUND_NOTIFICATION_KINDS),
        None: delivered once."""
        p = self.profile
        table = [(k, getattr(p, k)) for k in REFUND_NOTIFICATION_KINDS]
        return _pick(unit(self.seed, "refund_notification", self.refund_place(refund_id)), table)

    def refund_notification_after(self, refund_id: str) -> str | None:
        """What arrives after the refund was decided: a contradicting or a repeated REFUND notification."""
        p = self.profile
        table = [
            (REFUND_NOTIFICATION_CONTRADICTING, p.refund_notification_contradicting),
            (REFUND_NOTIFICATION_LATE, p.refund_notification_late),
        ]
        return _pick(unit(self.seed, "refund_notification_after", self.refund_place(refund_id)), table)

    # --- payouts (issue 25) -------------------------------------------------------------------
    def payout_round(self, index: int) -> tuple[str | None, str | None, bool]:
        """The faults of the ``index``-th payout round: where its payout run crashes (PAYOUT_RUN_CRASHES, None:
        it does not), the fate of its pain.002 (PAIN002_FATES, None: delivered once), whether its pain.001 reaches
        the bank twice. Each kind comes in turn from a seeded start, so that as many rounds as kinds meet every
        one of them; a round meets its faults at the profile's ``payout_faults`` rate."""
        if unit(self.seed, "payout_round", index) >= self.profile.payout_faults:
            return None, None, False

        def turn(kinds: tuple[object, ...], name: str) -> object:
            return kinds[(int(unit(self.seed, "payout_turn", name) * len(kinds)) + index) % len(kinds)]

        crash = turn((*PAYOUT_RUN_CRASHES, None), "crash")
        fate = turn((*PAIN002_FATES, None), "pain002")
        return (
            None if crash is None else str(crash),
            None if fate is None else str(fate),
            bool(turn((True, False), "pain001")),
        )

    def race_execution(self, checkout_id: str) -> bool:
        return unit(self.seed, "race_execution", self.logical(checkout_id)) < self.profile.race_execution

    def start_crash(self, checkout_id: str) -> str | None:
        """Where the payment function crashes for this checkout, if it does (START_CRASH_POINTS)."""
        key = self.logical(checkout_id)
        if unit(self.seed, "start_crash", key) >= self.profile.start_crash:
            return None
        return START_CRASH_POINTS[int(unit(self.seed, "start_crash_point", key) * len(START_CRASH_POINTS))]

    def express_twice(self, checkout_id: str) -> float | None:
        """Seconds after the first start at which the same execution starts again, if it does."""
        key = self.logical(checkout_id)
        if unit(self.seed, "express_twice", key) >= self.profile.express_twice:
            return None
        return round(2.0 * unit(self.seed, "express_twice_delay", key), 3)

    def express_lost(self, checkout_id: str) -> bool:
        return unit(self.seed, "express_lost", self.logical(checkout_id)) < self.profile.express_lost

    def late_notification(self, payment_order_id: str) -> str | None:
        key = self.logical(payment_order_id)
        if unit(self.seed, "late", key) >= self.profile.late_notification:
            return None
        return _pick(
            unit(self.seed, "late_kind", key),
            [(LATE_CONTRADICTING, 0.5), (LATE_REPEATED, 0.25), (LATE_OUT_OF_ORDER, 0.25)],
        )

    def slow_seconds(self, *where: object) -> float:
        return self.profile.slow_seconds * (0.2 + unit(self.seed, "slow", *where))

    # --- the schedule as data ----------------------------------------------------------------
    def plan(self, checkouts: list[dict[str, object]], days: int = 1) -> Iterator[str]:
        """Every decision for these checkouts and the run's ``days`` settlement files, one line
        each (what :meth:`digest` hashes)."""
        for index in range(days):
            where = f"day#{index}"
            yield f"{where} s3_duplicates={self.s3_duplicates(where)}"
            for attempt in range(1, ASL_ATTEMPTS["reconcile"] + 1):
                yield f"{where} reconcile#{attempt} {self.reconcile_crash(where, attempt)}"
        for checkout in checkouts:
            cid = self.logical(str(checkout["checkout_id"]))
            yield f"{cid} race_execution={self.race_execution(cid)}"
            crash, twice, lost = self.start_crash(cid), self.express_twice(cid), self.express_lost(cid)
            yield f"{cid} start {START_CRASH if crash else None}"
            yield f"{cid} twice {EXPRESS_TWICE if twice is not None else None}"
            yield f"{cid} lost {EXPRESS_LOST if lost else None}"
            for attempt in range(1, ASL_ATTEMPTS["finalize"] + 1):
                yield f"{cid} finalize#{attempt} {self.lambda_fault('finalize', cid, attempt)}"
                for call in range(8):
                    yield f"{cid} finalize#{attempt}.{call} {self.ddb_fault('finalize', cid, attempt, call, 'TransactWriteItems')}"
            for order in checkout["payment_orders"]:  # type: ignore[attr-defined]
                oid = self.logical(order["payment_order_id"])
                yield f"{oid} late={self.late_notification(oid)}"
                for op in ("charge", "lookup"):
                    for call in range(1, self.profile.psp_max_call + 1):
                        yield f"{oid} psp.{op}#{call} {self.psp_fault(op, oid, call)}"
                for step in ("executor", "wallet", "ledger"):
                    for attempt in range(1, ASL_ATTEMPTS[step] + 1):
                        yield f"{oid} {step}#{attempt} {self.lambda_fault(step, oid, attempt)}"
                        for call in range(8):
                            yield f"{oid} {step}#{attempt}.{call} {self.ddb_fault(step, oid, attempt, call, 'TransactWriteItems')}"

    def digest(self, checkouts: list[dict[str, object]], days: int = 1) -> tuple[str, dict[str, int]]:
        """(sha256 of the planned schedule, planned faults by kind) for these checkouts and days."""
        h = hashlib.sha256(json.dumps(self.profile.to_json(), sort_keys=True).encode())
        planned: dict[str, int] = {}
        for line in self.plan(checkouts, days):
            h.update(line.encode() + b"\n")
            kind = line.rsplit(" ", 1)[-1]
            if kind.startswith("s3_duplicates="):
                if kind != "s3_duplicates=0":
                    planned[S3_DUPLICATE] = planned.get(S3_DUPLICATE, 0) + int(kind.split("=")[1])
            elif kind in RECONCILE_CRASH_POINTS:
                planned[RECONCILE_CRASH] = planned.get(RECONCILE_CRASH, 0) + 1
            elif kind not in ("None", "race_execution=False") and not kind.startswith("late=None"):
                planned[kind] = planned.get(kind, 0) + 1
        return h.hexdigest()[:16], dict(sorted(planned.items()))
