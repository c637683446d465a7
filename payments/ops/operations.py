"""Operator tools of the runbook (docs/runbook.md): find stuck payments, resume parked ones.

* ``payments stuck --older-than 15m``  payments still ``PENDING``/``PROCESSING`` after the
  deadline, and payments with an order parked ``NEEDS_ATTENTION``; exit 1 if any.
* ``payments resume CHECKOUT_ID``       re-runs the checkout's workflow as a new execution
  of the same state machine named ``<checkout_id>-resume-<n>`` with the original input
  (Express: ``<checkout_id>-resume-<time>``, watched through the payment, since Express
  executions cannot be described).
  Every step is idempotent (the executor asks the PSP before charging, the wallet credit
  and the ledger transaction are conditional on a per-order marker), so re-running the
  whole workflow only does what is missing, and ``FinalizePayment`` re-derives the
  payment status. Orders that are settled afterwards get their re-drivable (``REDRIVE``)
  ``needs_attention`` flag cleared with an audit trail (``attention_resolved_at``,
  ``attention_resolution``); an order that fails again is parked again by the workflow itself.
  A flag that needs a person (``PERSON``: a chargeback on a refunded order, a refusal) is never
  cleared here: the result lists it, and ``payments attention resolve`` closes it.

* ``payments backfill-account-totals``  adds the ledger transactions booked before the seller
  account totals existed to those totals, each exactly once (safe while payments flow).

All work against the local runtime (``--endpoint`` / ``AWS_ENDPOINT_URL``) and against a
deployed stack (AWS credentials of the environment or ``AWS_PROFILE``; table names and the
state machine ARN from ``PAYMENTS_TABLE``, ``STATE_MACHINE_ARN``, ... as for the functions).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from payments.kernel import aws, clock, money
from payments.kernel.config import settings
from payments.kernel.dynamo import error_code
from payments.ops import clikit
from payments.payin.models import AttentionOut
from payments.payin.repository import PaymentsRepository
from payments.payin.status import AttentionKind, PaymentStatus
from payments.refunds import recovery as refund_recovery

MAX_RESUMES = 20  # execution names <checkout>-resume-1 .. -20; beyond that, a human looks closer


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d`` or plain seconds (``ValueError`` otherwise)."""
    try:
        return clikit.duration(text)
    except argparse.ArgumentTypeError as err:
        raise ValueError(str(err)) from None


def _parse_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


# --- stuck payments --------------------------------------------------------------------------
@dataclass
class StuckPayment:
    checkout_id: str
    status: str
    age_seconds: float
    orders: dict[str, str] = field(default_factory=dict)  # payment_order_id -> status
    parked: list[str] = field(default_factory=list)  # orders flagged NEEDS_ATTENTION
    reason: str = ""
    #: the parked orders' attention flags (payment_order_id -> kind, reason, since: as the API shows them)
    attention: dict[str, AttentionOut] = field(default_factory=dict)
    #: the checkout's total per currency, in minor units
    totals: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        orders = ", ".join(
            f"{k}={v}" + ("(NEEDS_ATTENTION)" if k in self.parked else "") for k, v in self.orders.items()
        )
        return f"{self.checkout_id:<40} {self.status:<17} {self.age_seconds / 60:8.1f} min  {self.reason:<22} {orders}"


def find_stuck(
    older_than: timedelta,
    *,
    now: datetime | None = None,
    include_parked: bool = True,
    repo: PaymentsRepository | None = None,
) -> list[StuckPayment]:
    """Payments not final ``older_than`` after they were accepted, and (``include_parked``)
    payments of any age with an order parked NEEDS_ATTENTION that is not resolved yet.

    A full scan of the payments table: an audit for an operator or a scheduled check, not a
    hot path. (At scale: a sparse GSI on unfinished payments; see docs/runbook.md.)
    """
    repo = repo or PaymentsRepository()
    now = now or clock.now()
    orders_by_checkout: dict[str, list[Any]] = {}
    for order in repo.scan_orders():
        orders_by_checkout.setdefault(order.checkout_id, []).append(order)
    found: list[StuckPayment] = []
    for payment in repo.scan_payments():
        age = (now - _parse_time(payment.created_at)).total_seconds() if payment.created_at else 0.0
        orders = orders_by_checkout.get(payment.checkout_id, [])
        parked = [o.payment_order_id for o in orders if o.needs_attention]
        overdue = not payment.status.is_final and age >= older_than.total_seconds()
        if overdue or (include_parked and parked):
            reason = "overdue " + payment.status.value if overdue else "parked NEEDS_ATTENTION"
            found.append(
                StuckPayment(
                    payment.checkout_id,
                    payment.status.value,
                    age,
                    {o.payment_order_id: o.status.value for o in orders},
                    parked,
                    reason,
                    {o.payment_order_id: flag for o in orders if (flag := AttentionOut.of(o)) is not None},
                    _totals(orders),
                )
            )
    return sorted(found, key=lambda p: -p.age_seconds)


def _totals(orders: list[Any]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for order in orders:
        totals[order.currency] = totals.get(order.currency, 0) + order.amount_minor
    return totals


# --- resume -------------------------------------------------------------------------------------
@dataclass
class ResumeResult:
    checkout_id: str
    execution_name: str
    execution_status: str
    payment_status: str
    is_payment_done: bool
    cleared: list[str] = field(default_factory=list)  # orders whose NEEDS_ATTENTION flag was cleared
    still_parked: list[str] = field(default_factory=list)
    #: orders whose flag needs a person (never cleared by a resume) -> the flag's reason
    needs_person: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.execution_status == "SUCCEEDED"
            and not self.still_parked
            and not self.needs_person
            and self.payment_status
            in (
                PaymentStatus.SUCCEEDED.value,
                PaymentStatus.PARTIALLY_FAILED.value,
                PaymentStatus.FAILED.value,
            )
            and self.is_payment_done_expected
        )

    is_payment_done_expected: bool = True


def workflow_input(checkout_id: str, repo: PaymentsRepository | None = None) -> dict[str, Any]:
    """The execution input of a checkout, rebuilt from the stored payment (as ``start_workflow`` builds it)."""
    payment = (repo or PaymentsRepository()).get(checkout_id)
    return {
        "checkout_id": payment.checkout_id,
        "payment_method": {"type": payment.payment_method_type, "token": payment.payment_method_token},
        "payment_orders": [{"payment_order_id": i} for i in payment.payment_order_ids],
    }


def workflow_type(machine: str) -> str:
    """EXPRESS or STANDARD (the payment workflow's type is a per-stage setting)."""
    return str(aws.client("stepfunctions").describe_state_machine(stateMachineArn=machine).get("type", "STANDARD"))


def start_resume_execution(checkout_id: str, repo: PaymentsRepository | None = None) -> tuple[str, str]:
    """Start ``<checkout_id>-resume-<n>`` (the first free n, or join one still running). Returns (name, arn).

    An Express workflow has no DescribeExecution (and no name deduplication): its resume is started
    under a name of its own and its ARN is returned empty; :func:`resume` then watches the payment.
    """
    sfn = aws.client("stepfunctions")
    machine = settings().state_machine_arn
    if not machine:
        from payments.ops.clikit import CliError

        raise CliError(
            "the payment state machine's ARN is not known (STATE_MACHINE_ARN is not set)",
            "against a stage, set STATE_MACHINE_ARN to its payment state machine; locally, "
            "give the endpoint payments serve prints with --endpoint URL",
        )
    execution_input = json.dumps(workflow_input(checkout_id, repo), sort_keys=True)
    if workflow_type(machine) == "EXPRESS":
        name = f"{checkout_id}-resume-{clock.now().strftime('%Y%m%dT%H%M%S%f')}"[:80]
        sfn.start_execution(stateMachineArn=machine, name=name, input=execution_input)
        return name, ""
    prefix = machine.replace(":stateMachine:", ":execution:") + ":"
    for n in range(1, MAX_RESUMES + 1):
        name = f"{checkout_id}-resume-{n}"
        try:
            described = sfn.describe_execution(executionArn=prefix + name)
        except ClientError as err:
            if error_code(err) not in ("ExecutionDoesNotExist", "ResourceNotFound"):
                raise
        else:
            if described["status"] == "RUNNING":
                return name, described["executionArn"]  # an operator already resumed it: join
            continue
        try:
            started = sfn.start_execution(stateMachineArn=machine, name=name, input=execution_input)
        except ClientError as err:
            if error_code(err) == "ExecutionAlreadyExists":
                continue  # a concurrent resume took this name
            raise
        return name, started["executionArn"]
    raise RuntimeError(f"{checkout_id} was resumed {MAX_RESUMES} times already: investigate by hand (docs/runbook.md)")


def wait_execution(arn: str, timeout: float, interval: float = 0.5) -> str:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]
        if status != "RUNNING" or time.monotonic() > deadline:
            return status
        time.sleep(interval)


def wait_payment(checkout_id: str, since: str, timeout: float, repo: PaymentsRepository, interval: float = 0.5) -> str:
    """The outcome of an Express re-run, seen in the payments table: SUCCEEDED once the payment is
    done; PARKED once an order was parked again at or after ``since`` (its ``attention_flagged_at``:
    this re-run's FinalizePayment, or another execution's, gave up on it again); TIMED_OUT when
    neither came in time (an Express execution lives at most 5 minutes).

    Only a new parking counts: the orders this re-run was started for are still flagged from before
    until it settles them, and other writers (a recovery re-drive claiming the payment, another
    execution's steps) touch ``updated_at`` meanwhile; neither is this re-run's outcome."""
    deadline = time.monotonic() + min(timeout, 330.0)
    while True:
        payment = repo.get(checkout_id)
        if payment.is_payment_done:
            return "SUCCEEDED"
        if any(o.needs_attention and (o.attention_flagged_at or "") >= since for o in repo.orders_of(payment)):
            return "PARKED"
        if time.monotonic() > deadline:
            return "TIMED_OUT"
        time.sleep(interval)


def clear_attention(payment_order_id: str, resolution: str, repo: PaymentsRepository | None = None) -> bool:
    """Clear NEEDS_ATTENTION on an order that is settled now (see ``PaymentsRepository.clear_attention``)."""
    return (repo or PaymentsRepository()).clear_attention(payment_order_id, resolution)


def resume(checkout_id: str, *, timeout: float = 600.0, repo: PaymentsRepository | None = None) -> ResumeResult:
    """Re-run a checkout's idempotent workflow, wait for it, clear the flags of what it settled."""
    repo = repo or PaymentsRepository()
    since = clock.now_iso()
    name, arn = start_resume_execution(checkout_id, repo)
    status = wait_execution(arn, timeout) if arn else wait_payment(checkout_id, since, timeout, repo)
    payment = repo.get(checkout_id)
    orders = repo.orders_of(payment)
    cleared, still, needs_person = [], [], {}
    for order in orders:
        if not order.needs_attention:
            continue
        if AttentionKind.of(order.attention_kind) is AttentionKind.PERSON:
            needs_person[order.payment_order_id] = order.attention_reason or "no reason recorded"
            continue
        if clear_attention(order.payment_order_id, f"resumed by execution {name} ({status})", repo):
            cleared.append(order.payment_order_id)
        else:
            still.append(order.payment_order_id)
    payment = repo.get(checkout_id)
    done_expected = all(o.is_settled_internally for o in repo.orders_of(payment))
    return ResumeResult(
        checkout_id,
        name,
        status,
        payment.status.value,
        payment.is_payment_done,
        cleared,
        still,
        needs_person,
        is_payment_done_expected=(payment.is_payment_done == done_expected),
    )


# --- CLI -------------------------------------------------------------------------------------------
def _age(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _waits(flag: AttentionOut | None) -> str:
    """Why a parked order or refund waits, in the table: ``PERSON since 2026-12-01T10:00:00Z: reason``."""
    if flag is None:
        return "-"
    return f"{flag.kind.value} since {flag.since or '?'}: {flag.reason or 'no reason recorded'}"


def _reason(flag: AttentionOut | None) -> str | None:
    return (flag.reason or "no reason recorded") if flag is not None else None


def _flag(flag: AttentionOut | None) -> dict[str, Any] | None:
    """The attention flag in JSON, as ``GET /v1/payments/{id}`` shows it: kind, reason, since."""
    return flag.model_dump(mode="json") if flag is not None else None


def _stuck_command(args: argparse.Namespace) -> int:
    clikit.connect(args)
    older_than: timedelta = args.older_than
    found = find_stuck(older_than, include_parked=not args.overdue_only)
    refunds = refund_recovery.stuck(older_than, include_parked=not args.overdue_only)
    rows: list[tuple[Any, ...]] = []
    for p in found:
        orders = ", ".join(f"{k}={v}" + ("(NEEDS_ATTENTION)" if k in p.parked else "") for k, v in p.orders.items())
        why = "; ".join(f"{k} {_waits(v)}" for k, v in p.attention.items())
        amount = ", ".join(clikit.money(m, c) for c, m in sorted(p.totals.items()))
        rows.append(("payment", p.checkout_id, p.status, _age(p.age_seconds), amount, p.reason, orders, why or "-"))
    for r in refunds:
        detail = f"order {r.payment_order_id}, {r.recovery_attempts} re-drive(s)"
        amount = clikit.money(r.amount_minor, r.currency)
        rows.append(
            ("refund", r.refund_id, "PENDING", _age(r.age_seconds), amount, r.reason, detail, _waits(r.attention))
        )
    document = {
        "older_than_seconds": older_than.total_seconds(),
        "payments": [
            {
                "checkout_id": p.checkout_id,
                "status": p.status,
                "age_seconds": round(p.age_seconds, 1),
                "reason": p.reason,
                "amounts": [{"amount": money.format_minor(m, c), "currency": c} for c, m in sorted(p.totals.items())],
                "orders": [
                    {
                        "payment_order_id": k,
                        "status": v,
                        "needs_attention": k in p.parked,
                        "attention_reason": _reason(p.attention.get(k)),
                        "attention": _flag(p.attention.get(k)),
                    }
                    for k, v in p.orders.items()
                ],
            }
            for p in found
        ],
        "refunds": [
            {
                "refund_id": r.refund_id,
                "payment_order_id": r.payment_order_id,
                "status": "PENDING",
                "amount": money.format_minor(r.amount_minor, r.currency),
                "currency": r.currency,
                "age_seconds": round(r.age_seconds, 1),
                "reason": r.reason,
                "attention_reason": _reason(r.attention),
                "attention": _flag(r.attention),
                "recovery_attempts": r.recovery_attempts,
            }
            for r in refunds
        ],
    }
    summary = f"{len(found)} payment(s) and {len(refunds)} refund(s) stuck (older than {_text(older_than)}) or parked"
    table = clikit.Table(
        ("KIND", "ID", "STATUS", "AGE", "AMOUNT", "REASON", "ORDERS", "WHY IT WAITS"),
        rows,
        [summary] if rows else [],
        empty=f"nothing stuck (older than {_text(older_than)}) or parked",
        right=("AGE", "AMOUNT"),
    )
    clikit.emit(args, document, table)
    return clikit.FINDINGS if rows else clikit.OK


def _resume_command(args: argparse.Namespace) -> int:
    from payments.kernel.errors import NotFound

    clikit.connect(args)
    repo = PaymentsRepository()
    try:
        repo.get(args.checkout_id)
    except NotFound:
        raise clikit.CliError(
            f"no checkout {args.checkout_id!r}", "list stuck and parked ones with payments stuck"
        ) from None
    result = resume(args.checkout_id, timeout=args.timeout, repo=repo)
    document = {
        "checkout_id": result.checkout_id,
        "execution": result.execution_name,
        "execution_status": result.execution_status,
        "payment_status": result.payment_status,
        "is_payment_done": result.is_payment_done,
        "cleared": result.cleared,
        "still_parked": result.still_parked,
        "needs_person": result.needs_person,
        "ok": result.ok,
    }
    notes = [
        f"{order_id}: not cleared: its flag needs a person ({reason}); a resume never clears it: "
        f"when it is dealt with, close it with payments attention resolve {order_id} --note TEXT"
        for order_id, reason in result.needs_person.items()
    ]
    table = clikit.Table(
        ("CHECKOUT", "EXECUTION", "EXECUTION STATUS", "PAYMENT", "DONE", "CLEARED", "STILL PARKED"),
        [
            (
                result.checkout_id,
                result.execution_name,
                result.execution_status,
                result.payment_status,
                result.is_payment_done,
                ", ".join(result.cleared) or "-",
                ", ".join(result.still_parked) or "-",
            )
        ],
        notes,
    )
    clikit.emit(args, document, table)
    return clikit.OK if result.ok else clikit.FINDINGS


def _backfill_command(args: argparse.Namespace) -> int:
    from payments.accounts.ledger import LedgerRepository

    clikit.connect(args)
    read, added = LedgerRepository().backfill_account_totals()
    print(
        f"{read} ledger transactions read, {added} added to their seller account totals now, {read - added} already counted"
    )
    return clikit.OK


def _text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def add_commands(subparsers: Any) -> None:
    """Register ``stuck``, ``resume`` and ``backfill-account-totals`` on the ``payments`` CLI's subparsers."""
    stuck = subparsers.add_parser(
        "stuck", help="list payments and refunds unfinished beyond a deadline, and parked ones (exit 1 if any)"
    )
    stuck.add_argument(
        "--older-than",
        default="15m",
        type=clikit.duration,
        help="deadline since acceptance, e.g. 90s, 15m, 2h, 1d (default 15m)",
    )
    stuck.add_argument("--overdue-only", action="store_true", help="do not list final payments with parked orders")
    clikit.add_endpoint_option(stuck)
    clikit.add_output_option(stuck)
    stuck.set_defaults(func=_stuck_command)

    resume_cmd = subparsers.add_parser("resume", help="re-run a parked or stuck checkout's idempotent workflow")
    resume_cmd.add_argument("checkout_id", help="the checkout to re-run (payments stuck lists them)")
    resume_cmd.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for the execution (default 600)"
    )
    clikit.add_endpoint_option(resume_cmd)
    clikit.add_output_option(resume_cmd)
    resume_cmd.set_defaults(func=_resume_command)

    backfill = subparsers.add_parser(
        "backfill-account-totals",
        help="add ledger transactions booked before the seller account totals existed to them, once each",
    )
    clikit.add_endpoint_option(backfill)
    backfill.set_defaults(func=_backfill_command)
