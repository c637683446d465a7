"""Chaos for payouts (issue 25): sellers paid by SEPA credit transfer while everything around the payout
goes wrong, over the sellers of a chaos run once their charges are settled and available.

Run after the pay-in harness (with its reconciliation: that is what makes charges available) and the
money-back phase, on the same runtime. The run's EUR sellers with money available are shuffled by the seed
and given payout accounts: every fifth the contract's rejecting test IBAN (``...0001``: pain.002 ``RJCT``),
every fifth the returning one (``...0002``: paid, then returned the next day), the others paid IBANs. They
are paid in rounds (:data:`ROUNDS`, each a share of them); in each round

* every seller of the round asks 2-5 payouts of more than half its available at the same time: at most
  one is accepted (202), the others are 422 ``payout-exceeds-available``, and available never goes below
  zero; for a share of the sellers a chargeback on one of its settled charges is delivered at the same time
  as its payout (of 60 % of available): available may go below zero, the payout never overdraws it;
* the night's payout run (:class:`payments.payouts.run.PayoutRun`, in process) pays the rest of each
  seller's available and writes the round's pain.001; for a share of the rounds it crashes first
  (:data:`~payments_dev.chaos.schedule.PAYOUT_RUN_CRASHES`: after reserving, after storing the file's MsgId
  and before writing it, after writing it) and is run again: the file is written once, each payout is in
  one file;
* the simulated bank answers the file (its S3 notification, as on the runtime); for a share of the rounds
  the pain.001 reaches the bank twice: the bank refuses the repeated MsgId (``RJCT DU01``) and books nothing
  twice;
* the bank's pain.002 reaches the bank reconciliation once, or twice (in a row or at the same time), late
  (after the day's camt.053: the statement before its pain.002), or never (lost: re-driven once the
  statements are in, as an operator re-drives a lost event).

Then the day is closed (camt.053: each accepted payout PAID), the next day too (the returns: RETURNED, the
money back in available, the payout account flagged invalid). Every payout must end as its IBAN says,
each failed or returned payout's money back in available exactly once (each seller's available and
in_transit against what the phase did), each payout in one pain.001, booked at most once by the bank,
every bank file reconciled with 0 mismatches, and every invariant (10 and 11 included) holds. The faults
are counted by kind and printed.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from functions import registry
from payments.accounts.balances import balance_key
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import get_item
from payments.kernel.ids import MAX_PAYOUT_ID_LENGTH
from payments.kernel.money import format_minor
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus
from payments.payouts import simulated_bank
from payments.payouts.bank.camt import read_camt
from payments.payouts.bank.pain001 import OUTGOING_PREFIX
from payments.payouts.bank.pain001_reader import read_pain001
from payments.payouts.bank.pain002 import read_pain002
from payments.payouts.bank.simulated import CAMT053_PREFIX, PAIN002_PREFIX, TEST_IBAN_REJECTED, TEST_IBAN_RETURNED
from payments.payouts.models import PayoutRecord
from payments.payouts.outcomes import PayoutStatus
from payments.payouts.repository import PayoutsRepository
from payments.payouts.run import PayoutRun
from payments_dev import event_invariants
from payments_dev.chaos import schedule as s
from payments_dev.chaos.faults import ChaosCrash, FaultLog
from payments_dev.chaos.money_back import _invariants
from payments_dev.chaos.money_back import _Run as _MoneyBackRun
from payments_dev.chaos.reader_faults import on_runtime
from payments_dev.chaos.schedule import FaultProfile, FaultSchedule
from payments_dev.demo import paid_iban

Printer = Callable[[str], None]

#: payout rounds of a run (each one payout run, one pain.001): enough for every payout fault kind to come in turn
ROUNDS = 6
#: the sellers paid: those with at least this much available (minor units), so that half of it and the rest pay
MIN_AVAILABLE_MINOR = 300
#: what each payout ends in, by the seller's IBAN (CONTRACT.md "Payouts": the simulated bank's test IBANs)
FINAL = {"rejected": PayoutStatus.FAILED, "returned": PayoutStatus.RETURNED, "paid": PayoutStatus.PAID}
FINAL_STATUSES = frozenset(FINAL.values())
# the phase's own kinds (the schedule's are in payments_dev.chaos.schedule)
CONCURRENT_PAYOUTS = "concurrent_payouts"
CHARGEBACK_RACING_PAYOUT = "chargeback_racing_payout"
STATEMENT_BEFORE_PAIN002 = "camt053_before_its_pain002"
RETURN_AFTER_PAID = "payout_returned_after_paid"
REJECTING_IBAN = "seller_with_rejecting_iban"
RETURNING_IBAN = "seller_with_returning_iban"
#: every kind a run with enough sellers meets (the test asks each of them)
PAYOUT_FAULT_KINDS = (
    CONCURRENT_PAYOUTS,
    CHARGEBACK_RACING_PAYOUT,
    *s.PAYOUT_RUN_CRASHES,
    s.PAIN001_TWICE,
    *s.PAIN002_FATES,
    STATEMENT_BEFORE_PAIN002,
    RETURN_AFTER_PAID,
    REJECTING_IBAN,
    RETURNING_IBAN,
)


@dataclass
class PayoutsResult:
    sellers: int = 0
    rounds: int = 0
    payouts: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    #: the invariants violated in the phase's audit
    invariants_violated: set[int] = field(default_factory=set)
    wall_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class _Seller:
    seller_account: str
    fate: str  # rejected | returned | paid
    iban: str
    available_minor: int  # before the phase
    round: int
    #: a settled charge of the seller that a chargeback takes back while it asks a payout (None: no race)
    race_order: Any = None
    charged_back_minor: int = 0


class _Run(_MoneyBackRun):
    """The phase's checks, notifications and fault log (the money-back phase's, counted as payouts')."""

    def fault(self, kind: str, key: str = "") -> None:
        self.log.add(kind, "payouts", key, 1)


def _s3_event(bucket: str, key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
            }
        ]
    }


def _event_key(event: Any) -> str | None:
    records = event.get("Records", []) if isinstance(event, dict) else []
    if len(records) != 1:
        return None
    return unquote_plus(records[0].get("s3", {}).get("object", {}).get("key", ""))


class _BankWire:
    """How the bank's pain.002 files reach the bank reconciliation (its S3 notifications), as each round's
    fate says: the reconciliation function is shadowed on the local Lambda dispatcher (restored on exit).
    A pain.002 takes the fate of the round in which its original file (OrgnlMsgId) was first answered; a
    DU01 refusal of a repeated file, and anything else, passes as it came."""

    def __init__(self, run: _Run):
        from payments_dev.local.lambdas import DISPATCHER

        self.dispatcher = DISPATCHER
        self.run = run
        self.current: str | None = None  # the fate of the round under way
        self.fates: dict[str, str | None] = {}  # original MsgId -> fate
        self.held: dict[str, tuple[str, str, Any]] = {}  # pain.002 key -> (fate, original MsgId, event)
        self.released: set[str] = set()
        self._lock = threading.Lock()
        self._had_own = False
        self._previous: Any = None

    def __enter__(self) -> _BankWire:
        self._had_own = "handler_for" in self.dispatcher.__dict__
        self._previous = self.dispatcher.handler_for
        self.dispatcher.handler_for = self.handler_for
        return self

    def __exit__(self, *exc: object) -> None:
        if self._had_own:
            self.dispatcher.handler_for = self._previous
        else:
            del self.dispatcher.handler_for

    def handler_for(self, function_name: str) -> Callable[[Any, Any], Any]:
        handler = self._previous(function_name)
        if function_name.rsplit(":", 1)[-1] != registry.BANK_RECONCILE.local_name:
            return handler

        def wired(event: Any, context: Any) -> Any:
            key = _event_key(event)
            if key is None or not key.startswith(PAIN002_PREFIX) or key in self.released:
                return handler(event, context)
            body = aws.client("s3").get_object(Bucket=settings().bank_bucket, Key=key)["Body"].read()
            report = read_pain002(body)
            if report.duplicate_refused or not report.original_msg_id:
                return handler(event, context)
            with self._lock:
                fate = self.fates.setdefault(report.original_msg_id, self.current)
            if fate is None:
                return handler(event, context)
            self.run.fault(fate, report.original_msg_id)
            if fate in (s.PAIN002_LOST, s.PAIN002_LATE):
                with self._lock:
                    self.held[key] = (fate, report.original_msg_id, event)
                return {"outcomes": []}  # the event never arrived (yet)
            if fate == s.PAIN002_CONCURRENT:
                barrier = threading.Barrier(2)

                def once(_: int) -> Any:
                    barrier.wait()
                    return handler(event, context)

                with ThreadPoolExecutor(max_workers=2) as pool:
                    return list(pool.map(once, range(2)))[-1]
            handler(event, context)  # PAIN002_DUPLICATED: the same event, once more after the first
            return handler(event, context)

        return wired

    def release(self, fate: str) -> list[tuple[str, str]]:
        """Deliver the held pain.002 events of ``fate`` now (synchronously); their (key, original MsgId)."""
        with self._lock:
            chosen = sorted((key, held) for key, held in self.held.items() if held[0] == fate)
            for key, _ in chosen:
                self.released.add(key)
                del self.held[key]
        for key, (_, _, event) in chosen:
            payload, errored = self.dispatcher.invoke(registry.BANK_RECONCILE.local_name, event)
            self.run.check("a held pain.002 is reconciled when it arrives", not errored, f"{key}: {payload[:300]!r}")
        return [(key, msg_id) for key, (_, msg_id, _) in chosen]


def _quiet(timeout: float) -> bool:
    """Wait until no asynchronous invocation (the bank's answers, their reconciliation) is queued or running."""
    from payments_dev.local.lambdas import DISPATCHER

    deadline, calm = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if any(not i.done for i in list(DISPATCHER.async_invocations)):
            calm = None
        elif calm is None:
            calm = time.monotonic()
        elif time.monotonic() - calm > 0.5:
            return True
        time.sleep(0.05)
    return False


class _CrashingS3:
    """The payout run's S3 client, dying once around its pain.001: before the put (the run's MsgId is stored,
    the file is not written) or after it (the file is at the bank, the run marked nothing)."""

    def __init__(self, real: Any, before: bool):
        self.real, self.before, self.crashed = real, before, False

    def put_object(self, **kwargs: Any) -> Any:
        if self.before and not self.crashed:
            self.crashed = True
            raise ChaosCrash("the payout run died before writing its pain.001")
        answer = self.real.put_object(**kwargs)
        if not self.crashed:
            self.crashed = True
            raise ChaosCrash("the payout run died after writing its pain.001")
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _CrashAfterReserving(PayoutRun):
    """A payout run that dies once its scheduled payouts are reserved, before any run or file is fixed."""

    def send(self, day: date, currency: str, answer: Any, created: list[str]) -> None:
        raise ChaosCrash("the payout run died after reserving its payouts")


def _crashing_run(crash: str) -> PayoutRun:
    if crash == s.PAYOUT_RUN_CRASH_AFTER_RESERVING:
        return _CrashAfterReserving()
    return PayoutRun(s3=_CrashingS3(aws.client("s3"), before=crash == s.PAYOUT_RUN_CRASH_BEFORE_FILE))


def _balance(seller: str) -> tuple[int, int]:
    """(available, in transit) of the seller's EUR balance item, strongly consistent."""
    item = get_item(aws.client("dynamodb"), settings().wallets_table, balance_key(seller, "EUR")) or {}
    return int(item.get("available_minor", 0)), int(item.get("in_transit_minor", 0))


def _payout_id(prefix: str, seller: str, suffix: str) -> str:
    payout_id = f"{prefix}_{seller}_{suffix}"
    if len(payout_id) > MAX_PAYOUT_ID_LENGTH:  # the EndToEndId's most: the seller by a digest
        digest = hashlib.sha256(seller.encode()).hexdigest()[:8]
        payout_id = f"{prefix[: MAX_PAYOUT_ID_LENGTH - len(suffix) - 10]}_{digest}_{suffix}"
    return payout_id


def _bank_objects(prefix: str) -> dict[str, bytes]:
    s3, bucket = aws.client("s3"), settings().bank_bucket
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


class _Phase:
    def __init__(self, run: _Run, prefix: str, day: date, concurrency: int, timeout: float):
        self.run = run
        self.prefix = prefix
        self.day = day
        self.concurrency = concurrency
        self.timeout = timeout
        self.payouts = PayoutsRepository()
        self.accepted: dict[str, list[str]] = {}  # seller -> payout ids the API accepted
        self.msg_ids: list[str] = []  # the pain.001 files of the rounds

    # --- the sellers ------------------------------------------------------------------------------
    def sellers(self, seed: int) -> tuple[list[_Seller], list[str]]:
        """The run's EUR sellers with money available (shuffled by the seed, each its IBAN and round), and
        those whose available is below zero (after money back)."""
        orders = [
            o
            for o in PaymentsRepository().scan_orders()
            if o.checkout_id.startswith(self.prefix) and o.currency == "EUR"
        ]
        names = sorted({o.seller_account for o in orders})
        balances = {name: _balance(name)[0] for name in names}
        paid = [name for name in names if balances[name] >= MIN_AVAILABLE_MINOR]
        negative = [name for name in names if balances[name] < 0]
        random.Random(f"{seed}:payouts").shuffle(paid)
        fresh: dict[str, Any] = {}
        for order in sorted(orders, key=lambda o: o.payment_order_id):
            if (
                order.status is OrderStatus.SUCCESS
                and order.wallet_updated
                and order.ledger_updated
                and not order.needs_attention
                and order.refund_reserved_minor == 0
                and order.chargeback_minor == 0
            ):
                fresh.setdefault(order.seller_account, order)
        rounds = min(ROUNDS, len(paid))
        chosen = []
        for i, name in enumerate(paid):
            fate = "rejected" if i % 5 == 0 else "returned" if i % 5 == 1 else "paid"
            iban = (
                TEST_IBAN_REJECTED if fate == "rejected" else TEST_IBAN_RETURNED if fate == "returned" else paid_iban(i)
            )
            race = fresh.get(name) if i % 3 == 2 else None
            chosen.append(_Seller(name, fate, iban, balances[name], i % rounds if rounds else 0, race))
        return chosen, negative

    def register(self, seller: str, iban: str) -> None:
        reply = self.run.client.request(
            "PUT",
            f"/v1/sellers/{seller}/payout-account",
            {"iban": iban, "account_holder": f"{seller} GmbH", "currency": "EUR"},
        )
        self.run.check("a seller's payout account is registered", reply.status == 200, f"{seller}: {reply.status}")

    def ask(self, payout_id: str, seller: str, amount_minor: int) -> Any:
        return self.run.client.request(
            "POST",
            "/v1/payouts",
            {
                "payout_id": payout_id,
                "seller_account": seller,
                "currency": "EUR",
                "amount": format_minor(amount_minor, "EUR"),
            },
            headers={"Idempotency-Key": f"k-{payout_id}"},
        )

    def refused_as_exceeding(self, reply: Any) -> bool:
        return (
            reply.status == 422
            and isinstance(reply.body, dict)
            and str(reply.body.get("type", "")).endswith("payout-exceeds-available")
        )

    def accept(self, seller: str, reply: Any) -> None:
        if reply.status == 202:
            self.accepted.setdefault(seller, []).append(reply.body["payout_id"])

    # --- a seller's payout requests ---------------------------------------------------------------
    def concurrent(self, seller: _Seller, rng: random.Random) -> None:
        available = _balance(seller.seller_account)[0]
        ask, n = available // 2 + 1, rng.randint(2, 5)
        self.run.fault(CONCURRENT_PAYOUTS, seller.seller_account)
        ids = [_payout_id(self.prefix, seller.seller_account, f"c{i}") for i in range(n)]
        with ThreadPoolExecutor(max_workers=n) as pool:
            replies = list(pool.map(lambda p: self.ask(p, seller.seller_account, ask), ids))
        statuses = Counter(r.status for r in replies)
        self.run.check(
            "of concurrent payouts of more than half the available, at most one is accepted (202)",
            statuses[202] <= 1,
            f"{seller.seller_account}: {dict(statuses)} for {n} x {format_minor(ask, 'EUR')} on {format_minor(available, 'EUR')}",
        )
        self.run.check(
            "the others are 422 payout-exceeds-available",
            sum(self.refused_as_exceeding(r) for r in replies) == n - statuses[202],
            f"{seller.seller_account}: {[(r.status, r.body) for r in replies if r.status != 202][:2]}",
        )
        for reply in replies:
            self.accept(seller.seller_account, reply)
        after = _balance(seller.seller_account)[0]
        self.run.check(
            "concurrent payouts never reserve more than available",
            after >= 0,
            f"{seller.seller_account}: available {format_minor(after, 'EUR')} after {statuses[202]} accepted",
        )

    def race(self, seller: _Seller) -> None:
        """A chargeback on one of the seller's settled charges, delivered while the seller asks a payout."""
        order = seller.race_order
        available = _balance(seller.seller_account)[0]
        ask = max(1, (available * 6 + 9) // 10)
        chargeback = self.run.psp.raise_chargeback(order.payment_order_id, order.amount_minor)
        seller.charged_back_minor = order.amount_minor
        self.run.fault(CHARGEBACK_RACING_PAYOUT, seller.seller_account)
        barrier = threading.Barrier(2)
        payout_id = _payout_id(self.prefix, seller.seller_account, "cb")

        def payout() -> Any:
            barrier.wait()
            return self.ask(payout_id, seller.seller_account, ask)

        def notify() -> None:
            barrier.wait()
            if not self.run.psp_delivers:  # a PSP that delivers by itself already races it
                self.run.notify(chargeback)

        with ThreadPoolExecutor(max_workers=2) as pool:
            asked, told = pool.submit(payout), pool.submit(notify)
            reply = asked.result()
            told.result()
        self.run.check(
            "a payout racing a chargeback is accepted, or refused as exceeding available",
            reply.status == 202 or self.refused_as_exceeding(reply),
            f"{seller.seller_account}: {reply.status} {reply.body}",
        )
        self.accept(seller.seller_account, reply)
        self.run.check(
            "the racing chargeback is applied (within 60 s)",
            self.run.applied(chargeback, 60.0),
            f"{seller.seller_account}: {order.payment_order_id}",
        )

    # --- a round ----------------------------------------------------------------------------------
    def round(self, index: int, sellers: list[_Seller], wire: _BankWire, seed: int) -> None:
        crash, fate, twice = self.run.schedule.payout_round(index)
        wire.current = fate
        for seller in sellers:
            self.register(seller.seller_account, seller.iban)
            if seller.fate != "paid":
                self.run.fault(REJECTING_IBAN if seller.fate == "rejected" else RETURNING_IBAN, seller.seller_account)

        def one(seller: _Seller) -> None:
            if seller.race_order is not None:
                self.race(seller)
            else:
                self.concurrent(seller, random.Random(f"{seed}:payouts:{seller.seller_account}"))

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for future in [pool.submit(one, seller) for seller in sellers]:
                future.result()
        # the night's run: it may crash, and is run again
        crashed = False
        if crash is not None:
            try:
                untouched = _crashing_run(crash).run(self.day)
            except ChaosCrash:
                crashed = True
                self.run.fault(crash, f"round {index}")
            else:  # a crash around the file needs a file: a round whose payouts were all refused has none
                self.run.check(
                    "an injected payout run crash happens (unless the round has no file)",
                    crash != s.PAYOUT_RUN_CRASH_AFTER_RESERVING and not untouched.files,
                    f"round {index}: {crash}, files {untouched.files}",
                )
            _quiet(self.timeout)  # a file written before the crash is answered by the bank meanwhile
        there = set(_bank_objects(OUTGOING_PREFIX))
        answer = PayoutRun().run(self.day)
        self.msg_ids += [f["msg_id"] for f in answer.files]
        if crashed and crash == s.PAYOUT_RUN_CRASH_AFTER_FILE:
            # the crashed run's file is there: the run again completes it, and S3 refuses it as there already
            # (a new file of the run again pays what came back to available meanwhile: a rejection's money)
            again = [f for f in answer.files if f["key"] in there]
            self.run.check(
                "a payout run run again after a crash after its file completes that file and writes it no second time",
                bool(again) and not any(f["written_now"] for f in again),
                f"round {index}: {answer.files}",
            )
        self.run.check(
            "the payout run leaves no payout PENDING",
            not [p for p in self.payouts.scan() if p.status is PayoutStatus.PENDING],
            f"round {index}: failed {answer.failed[:3]}",
        )
        self.run.check("the bank's answers are reconciled (within the timeout)", _quiet(self.timeout), f"round {index}")
        if twice:
            self.redeliver(answer, index)

    def redeliver(self, answer: Any, index: int) -> None:
        """Each pain.001 of the round reaches the bank once more: it refuses the repeated MsgId."""
        from payments_dev.local.lambdas import DISPATCHER

        for file in answer.files:
            self.run.fault(s.PAIN001_TWICE, file["msg_id"])
            payload, errored = DISPATCHER.invoke(
                registry.SIMULATED_BANK.local_name, _s3_event(settings().bank_bucket, file["key"])
            )
            answered = [] if errored else json.loads(payload).get("answered", [])
            self.run.check(
                "a pain.001 delivered twice is refused by the bank as a repeated MsgId (RJCT)",
                len(answered) == 1 and answered[0]["group_status"] == "RJCT",
                f"round {index}: {payload[:300]!r}",
            )
            if len(answered) == 1:
                reply = aws.client("s3").get_object(Bucket=settings().bank_bucket, Key=answered[0]["reply_key"])
                self.run.check(
                    "the bank's refusal of a repeated pain.001 is DU01",
                    read_pain002(reply["Body"].read()).duplicate_refused,
                    answered[0]["reply_key"],
                )
        self.run.check("the refusals are reconciled (within the timeout)", _quiet(self.timeout), f"round {index}")

    # --- the bank's days ----------------------------------------------------------------------------
    def close(self, day: date) -> None:
        key, _ = simulated_bank.close_day(day)
        self.run.check("the day's statement is reconciled (within the timeout)", _quiet(self.timeout), key)

    def held_answers(self, wire: _BankWire, fate: str) -> None:
        """Before a held pain.002 arrives, its payouts are where the statement alone put them: the accepted
        ones PAID (the camt.053 before its pain.002), the rejected ones not final (no statement books them)."""
        for key, (held, msg_id, _) in sorted(wire.held.items()):
            if held != fate:
                continue
            body = aws.client("s3").get_object(Bucket=settings().bank_bucket, Key=key)["Body"].read()
            accepted_some = False
            for tx in read_pain002(body).transactions:
                record = self.payouts.find(tx.end_to_end_id)
                status = record.status if record else None
                if tx.rejected:
                    self.run.check(
                        "a payout whose RJCT pain.002 has not arrived is not final",
                        status in (PayoutStatus.PENDING, PayoutStatus.SUBMITTED),
                        f"{tx.end_to_end_id}: {status} before its pain.002 ({fate})",
                    )
                else:
                    accepted_some = True
                    self.run.check(
                        "a camt.053 before its pain.002 pays the payout",
                        status in (PayoutStatus.PAID, PayoutStatus.RETURNED),
                        f"{tx.end_to_end_id}: {status} after the statement, before its pain.002 ({fate})",
                    )
            if accepted_some and fate == s.PAIN002_LATE:
                self.run.fault(STATEMENT_BEFORE_PAIN002, msg_id)

    # --- the end --------------------------------------------------------------------------------------
    def final(self, started_at: str) -> list[PayoutRecord]:
        deadline = time.monotonic() + self.timeout
        while True:
            ours = [p for p in self.payouts.scan() if p.created_at >= started_at]
            waiting = [p.payout_id for p in ours if p.status not in FINAL_STATUSES]
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.run.check("every payout is final (PAID, FAILED or RETURNED)", not waiting, f"not final: {waiting[:5]}")
        return ours

    def audit(self, sellers: list[_Seller], records: list[PayoutRecord]) -> None:
        by_seller: dict[str, list[PayoutRecord]] = {}
        for record in records:
            by_seller.setdefault(record.seller_account, []).append(record)
        for seller in sellers:
            mine = by_seller.get(seller.seller_account, [])
            for record in mine:
                self.run.check(
                    "each payout ends as its seller's IBAN says",
                    record.status is FINAL[seller.fate],
                    f"{record.payout_id} to a {seller.fate} IBAN is {record.status}",
                )
                if record.status is PayoutStatus.RETURNED:
                    self.run.fault(RETURN_AFTER_PAID, record.payout_id)
            out = sum(r.amount_minor for r in mine if r.status is PayoutStatus.PAID)
            available, in_transit = _balance(seller.seller_account)
            expected = seller.available_minor - out - seller.charged_back_minor
            self.run.check(
                "a seller's available is what it had, less what was paid out and charged back: each failed or "
                "returned payout's money back exactly once",
                available == expected and in_transit == 0,
                f"{seller.seller_account}: available {format_minor(available, 'EUR')}, in transit "
                f"{format_minor(in_transit, 'EUR')}; expected {format_minor(expected, 'EUR')} and 0.00",
            )
            if seller.fate == "returned" and any(r.status is PayoutStatus.RETURNED for r in mine):
                account = self.run.client.request("GET", f"/v1/sellers/{seller.seller_account}/payout-account")
                self.run.check(
                    "a returned payout's account is marked invalid",
                    account.status == 200 and account.body.get("valid") is False,
                    f"{seller.seller_account}: {account.status} {account.body}",
                )
        self.files(records)

    def files(self, records: list[PayoutRecord]) -> None:
        """Each payout in one pain.001, taken by the bank once, booked by its statements at most once."""
        sent: Counter[str] = Counter()
        for key, content in _bank_objects(OUTGOING_PREFIX).items():
            if key.endswith(".xml"):
                sent.update(tx.end_to_end_id for tx in read_pain001(content).transactions)
        taken: Counter[str] = Counter()
        for content in _bank_objects("bank/received/").values():
            taken.update(tx["end_to_end_id"] for tx in json.loads(content).get("transactions", []))
        debits: Counter[str] = Counter()
        returns: Counter[str] = Counter()
        for content in _bank_objects(CAMT053_PREFIX).values():
            for entry in read_camt(content).entries:
                for tx in entry.transactions:
                    (debits if entry.direction == "DBIT" else returns if tx.is_return else Counter()).update(
                        [tx.end_to_end_id]
                    )
        for record in records:
            self.run.check(
                "each payout is in exactly one pain.001 (the file written once)",
                sent[record.payout_id] == 1,
                f"{record.payout_id}: in {sent[record.payout_id]} files",
            )
            accepted = record.status in (PayoutStatus.PAID, PayoutStatus.RETURNED)
            self.run.check(
                "the bank takes each accepted payout once, and books it once (nothing paid twice)",
                (taken[record.payout_id], debits[record.payout_id]) == ((1, 1) if accepted else (0, 0)),
                f"{record.payout_id} ({record.status}): taken {taken[record.payout_id]}, debited {debits[record.payout_id]}",
            )
            self.run.check(
                "a returned payout is credited back once",
                returns[record.payout_id] == (1 if record.status is PayoutStatus.RETURNED else 0),
                f"{record.payout_id} ({record.status}): {returns[record.payout_id]} returns",
            )
        for key, content in _bank_objects("reports/incoming/bank/").items():
            report = json.loads(content)
            self.run.check(
                "every bank file is reconciled with 0 mismatches",
                not report.get("mismatches"),
                f"{key}: {report.get('mismatches', [])[:2]}",
            )


def run_payouts(
    api_url: str,
    prefix: str,
    seed: int,
    concurrency: int = 6,
    timeout: float = 300.0,
    out: Printer = print,
    profile: FaultProfile | None = None,
    psp: Any = None,
    events_in_scope: Callable[[dict[str, Any]], bool] | None = None,
) -> PayoutsResult:
    """The payouts phase on the sellers of the run ``prefix`` (settled and reconciled), with the payout faults
    of ``seed`` and ``profile`` (and the events reader's); then every invariant and the events' one (over
    ``events_in_scope``: the run's items unless told)."""
    started = time.monotonic()
    started_at = clock.now_iso()
    result = PayoutsResult()
    schedule = FaultSchedule(seed, profile or FaultProfile(), prefix=prefix)
    log = FaultLog()
    run = _Run(api_url, schedule, log, result, psp)  # type: ignore[arg-type]
    closed = {k[len(CAMT053_PREFIX) : -4] for k in _bank_objects(CAMT053_PREFIX)}
    day = clock.now().date()
    while day.isoformat() in closed:  # the bank books a file on its first day not yet closed
        day += timedelta(days=1)
    phase = _Phase(run, prefix, day, concurrency, timeout)
    reader = on_runtime(seed, schedule.profile.crash_after)
    try:
        sellers, negative = phase.sellers(seed)
        result.sellers = len(sellers)
        result.rounds = min(ROUNDS, len(sellers))
        out(
            f"payouts: {len(sellers)} sellers with EUR available paid in {result.rounds} rounds "
            f"({sum(x.race_order is not None for x in sellers)} racing a chargeback), {len(negative)} below zero"
        )
        for n, name in enumerate(negative):  # a negative available blocks payouts until it is covered
            phase.register(name, paid_iban(len(sellers) + n))
            refused = phase.ask(_payout_id(prefix, name, "neg"), name, 1)
            run.check(
                "a seller whose available is below zero cannot be paid (422 payout-exceeds-available)",
                phase.refused_as_exceeding(refused),
                f"{name}: {refused.status} {refused.body}",
            )
        with _BankWire(run) as wire, reader:
            for index in range(result.rounds):
                phase.round(index, [x for x in sellers if x.round == index], wire, seed)
            phase.close(day)  # the day's camt.053: the accepted payouts PAID, before the late pain.002s
            phase.held_answers(wire, s.PAIN002_LATE)
            wire.release(s.PAIN002_LATE)
            _quiet(timeout)
            phase.close(day + timedelta(days=1))  # the returns
            phase.held_answers(wire, s.PAIN002_LOST)
            wire.release(s.PAIN002_LOST)  # re-driven, as an operator re-drives a lost event
            _quiet(timeout)
            reader.drain()
        records = phase.final(started_at)
        result.payouts = len(records)
        result.by_status = Counter(r.status.value for r in records)
        phase.audit(sellers, records)
    except Exception as err:  # noqa: BLE001 - a crashed phase is a finding: report what ran
        run.check("the payouts phase ran to the end", False, f"{type(err).__name__}: {err}"[:500])
    report = _invariants(psp)
    for number, count in report.checks.items():
        result.checks[f"invariant {number} (payouts)"] += count
    result.violations += [f"[invariant {v.invariant}, payouts] {v}" for v in report.violations]
    result.invariants_violated = {v.invariant for v in report.violations}
    in_scope = events_in_scope or event_invariants.of_run(prefix)
    event_invariants.check_phase("payouts", in_scope, out, result.checks, result.violations)
    result.faults = log.by_kind() + reader.injected
    result.wall_seconds = time.monotonic() - started
    print_payouts(result, out)
    return result


def print_payouts(result: PayoutsResult, out: Printer = print) -> None:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(result.by_status.items())) or "none"
    out(f"payouts: {result.sellers} sellers, {result.rounds} rounds, {result.payouts} payouts ({statuses})")
    out(f"payouts: {sum(result.faults.values())} faults injected:")
    for kind, count in sorted(result.faults.items()):
        out(f"  {kind:<34} {count}")
    out(f"payouts: {sum(result.checks.values())} checks:")
    for name, count in sorted(result.checks.items()):
        out(f"  {count:>7}  {name}")
    out(f"payouts: {len(result.violations)} violations, {result.wall_seconds:.1f}s")
    for violation in result.violations[:20]:
        out(f"  VIOLATION {violation}")


__all__ = ["PAYOUT_FAULT_KINDS", "PayoutsResult", "run_payouts"]
