"""The injectors: where the schedule's faults enter the running system.

Seams used (all exist already; all are restored by :meth:`ChaosInjector.uninstall`):

* **Lambda tasks** -- ``payments_dev.local.lambdas.DISPATCHER.handler_for`` is shadowed on the
  instance so every task invocation (from the state machine, and the asynchronous S3
  notifications) runs through :meth:`ChaosInjector._invoke`, which may crash before
  the handler, run it and then crash (after its writes), report a timeout, deliver it
  twice (in sequence, or concurrently: real conditional-check races), or slow it down.
  An exception's class name is the Lambda ``errorType`` the ASL matches, so the
  injected errors are named ``Lambda.ServiceException`` (retried by the ASL) and
  ``Runtime.ExitError`` (not retried: caught, parked NEEDS_ATTENTION). A timeout is a
  real one: the invocation outlives the state's ``TimeoutSeconds`` (moto raises
  ``States.Timeout``, retried) and still completes its writes afterwards, racing the
  retry. (A function cannot return a ``States.*`` errorType: moto, like AWS, refuses it.)
* **DynamoDB** -- a ``before-parameter-build.dynamodb`` hook on the shared client of
  :mod:`payments.kernel.aws` raises the ``ClientError`` DynamoDB would return (throttling,
  internal error, transaction conflict) for calls made *by a task handler* to the
  service's tables. The SDK's own retries are bypassed: an injected error stands for
  one that outlived them. The PSP simulator's table is "their" system and is left alone.
* **PSP** -- ``functions.executor.handler.default_psp`` is replaced by a factory that
  wraps the simulator: outages, lost answers after a real charge, slow answers, failed
  lookups. The simulator may also be given a calendar (the harness's simulated PSP days).
* **Reconciliation** -- the asynchronous invocation from the S3 notification crashes midway
  (schedule.RECONCILE_CRASH_POINTS): a ``before-parameter-build.s3.PutObject`` hook raises
  before its 2nd or 3rd report object, the DynamoDB hook before its first record.
* **The refund workflow** (issue 18) -- its tasks (``payments-refunds`` with ``execute_refund`` /
  ``apply_refund_outcome``, steps ``refund_execute`` / ``refund_apply``) get the Lambda-level and
  DynamoDB faults above, keyed by the refund_id; ``functions.refunds.handler.default_psp`` is
  wrapped like the executor's: the PSP's refund call fails before refunding, or refunds and
  loses its answer (a crash between the PSP's refund and the wallet debit). Right after the
  PSP decided, the REFUND notification may be delivered and applied before the answer is
  returned (``before_refund_answer``, set by :mod:`payments_dev.chaos.money_back`).
* **Step Functions retry waits** -- optionally scaled (``time_scale``): the ASL is the real
  one, only the seconds its Retry blocks sleep are shortened. ``TimeoutSeconds`` is never
  scaled: under load a healthy task can take seconds, and a shortened timeout would
  park orders that are merely slow (tried: at a tenth, hundreds were parked).

HTTP API requests (``POST/GET /v1/...``) pass through untouched.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from functions import registry
from payments.kernel import aws
from payments.kernel.config import settings
from payments.kernel.errors import PspOutcomeUnknown, PspUnavailable
from payments_dev.chaos import schedule as s
from payments_dev.chaos.schedule import FaultSchedule


def _error_class(name: str) -> type[Exception]:
    """An exception whose class name (hence Lambda errorType) is ``name``, dots included."""
    return type(name, (Exception,), {"__module__": __name__})


LambdaServiceException = _error_class("Lambda.ServiceException")
RuntimeExitError = _error_class("Runtime.ExitError")


#: TimeoutSeconds of each task of stepfunctions/payment.asl.json
TASK_TIMEOUT_SECONDS = s.TASK_TIMEOUTS


class ChaosCrash(Exception):
    """An injected crash in the middle of a function (the reconciliation's)."""


_STEP_OF = {fn.local_name: fn.name for fn in (registry.EXECUTOR, registry.WALLET, registry.LEDGER)}
_REFUND_STEP_OF = {"execute_refund": "refund_execute", "apply_refund_outcome": "refund_apply"}


def step_of(function_name: str, event: Any) -> tuple[str, str] | None:
    """(step, key) of a task invocation, or None for anything the chaos leaves alone."""
    if not isinstance(event, dict):
        return None
    if function_name in _STEP_OF and "payment_order_id" in event:
        return _STEP_OF[function_name], str(event["payment_order_id"])
    if function_name == registry.REFUNDS.local_name and event.get("action") in _REFUND_STEP_OF and "refund_id" in event:
        return _REFUND_STEP_OF[event["action"]], str(event["refund_id"])
    if function_name == registry.PAYMENT.local_name and event.get("action") == "finalize_payment":
        return "finalize", str(event["checkout_id"])
    if function_name == registry.RECONCILE.local_name and event.get("Records"):
        key = event["Records"][0].get("s3", {}).get("object", {}).get("key", "")
        return "reconcile", unquote_plus(str(key))  # S3 event keys arrive URL-encoded
    return None


@dataclass(frozen=True)
class Injected:
    kind: str
    step: str
    key: str
    attempt: int
    detail: str = ""


@dataclass
class FaultLog:
    """Every fault injected, thread-safe."""

    events: list[Injected] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, step: str, key: str, attempt: int, detail: str = "") -> None:
        with self._lock:
            self.events.append(Injected(kind, step, key, attempt, detail))

    def by_kind(self) -> Counter[str]:
        with self._lock:
            return Counter(e.kind for e in self.events)

    def of_kind(self, kind: str) -> list[Injected]:
        with self._lock:
            return [e for e in self.events if e.kind == kind]


class _Context(threading.local):
    step: str | None = None
    key: str = ""
    attempt: int = 0
    ddb_calls: int = 0
    #: where the running reconciliation crashes (schedule.RECONCILE_CRASH_POINTS), if it does
    crash_point: str | None = None
    report_puts: int = 0


class ChaosInjector:
    def __init__(
        self,
        schedule: FaultSchedule,
        log: FaultLog | None = None,
        time_scale: float = 1.0,
        calendar: Callable[[Any], str] | None = None,
    ):
        self.schedule = schedule
        self.log = log or FaultLog()
        self.time_scale = time_scale
        #: the simulated PSP's calendar (ChargeRequest -> charged_at), None: the wall clock
        self.calendar = calendar
        #: faults are drawn only while enabled, and only for these steps
        self.enabled = True
        self.active_steps: set[str] = set(s.TASK_STEPS) | {"reconcile"}
        self._ctx = _Context()
        self._attempts: Counter[tuple[str, str, str]] = Counter()
        #: called with a refund_id right after the PSP decided it and before its answer is returned,
        #: when the schedule says its REFUND notification comes first (None: not injected)
        self.before_refund_answer: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._wrapped: dict[str, Callable[[Any, Any], Any]] = {}
        self._restore: list[Callable[[], None]] = []

    # --- install / uninstall -----------------------------------------------------------------
    def install(self) -> ChaosInjector:
        from payments_dev.local.lambdas import DISPATCHER

        original = DISPATCHER.handler_for

        def handler_for(function_name: str) -> Callable[[Any, Any], Any]:
            name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
            handler = original(name)
            with self._lock:
                if name not in self._wrapped:
                    self._wrapped[name] = self._wrap(name, handler)
                return self._wrapped[name]

        DISPATCHER.handler_for = handler_for  # type: ignore[method-assign]
        self._restore.append(lambda: DISPATCHER.__dict__.pop("handler_for", None))

        ddb = aws.client("dynamodb")
        ddb.meta.events.register("before-parameter-build.dynamodb", self._ddb_hook, unique_id="payments-chaos-ddb")
        self._restore.append(
            lambda: ddb.meta.events.unregister("before-parameter-build.dynamodb", unique_id="payments-chaos-ddb")
        )
        s3_client = aws.client("s3")
        s3_client.meta.events.register(
            "before-parameter-build.s3.PutObject", self._s3_put_hook, unique_id="payments-chaos-s3"
        )
        self._restore.append(
            lambda: s3_client.meta.events.unregister(
                "before-parameter-build.s3.PutObject", unique_id="payments-chaos-s3"
            )
        )

        import functions.executor.handler as executor_handler

        real_factory = executor_handler.default_psp
        executor_handler.default_psp = lambda: ChaosPsp(self._on_calendar(real_factory()), self)  # type: ignore[assignment]
        self._restore.append(lambda: setattr(executor_handler, "default_psp", real_factory))
        import functions.refunds.handler as refunds_handler

        real_refunding = refunds_handler.default_psp
        refunds_handler.default_psp = lambda: ChaosPsp(real_refunding(), self)  # type: ignore[assignment]
        self._restore.append(lambda: setattr(refunds_handler, "default_psp", real_refunding))

        # the payment function's crash between storing a checkout and starting its workflow
        import functions.payment.logic as payment_logic
        from payments.payin.repository import PaymentsRepository

        real_claim, real_start = PaymentsRepository.claim_start, payment_logic.start_workflow
        injector = self

        def claim_start(repo: Any, checkout_id: str) -> bool:
            injector._start_crash(checkout_id, "before_marker")
            return real_claim(repo, checkout_id)

        def start_workflow(payment: Any, name: str | None = None) -> None:
            if name is None:
                injector._start_crash(payment.checkout_id, "after_marker")
            real_start(payment, name)

        PaymentsRepository.claim_start = claim_start  # type: ignore[method-assign]
        payment_logic.start_workflow = start_workflow  # type: ignore[assignment]
        self._restore.append(lambda: setattr(PaymentsRepository, "claim_start", real_claim))
        self._restore.append(lambda: setattr(payment_logic, "start_workflow", real_start))

        if self.time_scale != 1.0:
            from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

            real_time = retrier_decl.time
            retrier_decl.time = _ScaledTime(self.time_scale)  # type: ignore[assignment]
            self._restore.append(lambda: setattr(retrier_decl, "time", real_time))
        return self

    def _on_calendar(self, psp: Any) -> Any:
        if self.calendar is not None and hasattr(psp, "calendar"):
            psp.calendar = self.calendar
        return psp

    def uninstall(self) -> None:
        while self._restore:
            self._restore.pop()()

    def __enter__(self) -> ChaosInjector:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # --- the payment function and the Express workflow -------------------------------------------
    def _start_crash(self, checkout_id: str, point: str) -> None:
        """Crash the payment function at ``point`` for a scheduled checkout, the first time only."""
        if not self.enabled or self.schedule.start_crash(checkout_id) != point:
            return
        if self.next_attempt("start_crash", checkout_id) != 1:
            return
        self.log.add(s.START_CRASH, "payment", checkout_id, 1, point)
        raise ChaosCrash(
            f"chaos: the payment function crashed for {checkout_id} after storing it, before starting its workflow ({point})"
        )

    def _lose_execution(self, checkout_id: str) -> None:
        """Stop the first execution of a scheduled checkout (its name is the checkout id): an Express
        execution lost midway. Nothing after the running task happens; the recovery re-drives it."""
        if (
            not self.enabled
            or not self.schedule.express_lost(checkout_id)
            or self.next_attempt("express_lost", checkout_id) != 1
        ):
            return
        sfn = aws.client("stepfunctions")
        arn = settings().state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + checkout_id
        try:
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                return
            sfn.stop_execution(executionArn=arn, error="Chaos.ExecutionLost", cause="an Express execution lost midway")
        except ClientError:  # not started under its own name (its start crashed): nothing to lose
            return
        self.log.add(s.EXPRESS_LOST, "workflow", checkout_id, 1)

    def _notification_first(self, refund_id: str) -> None:
        """The PSP decided the refund: its REFUND notification is applied before the answer returns."""
        hook = self.before_refund_answer
        if hook is None or not self._active("refund_execute") or not self.schedule.notification_first(refund_id):
            return
        if self.next_attempt("notification_first", refund_id) != 1:
            return
        self.log.add(s.NOTIFICATION_FIRST, "notification", refund_id, 1)
        ctx = self._ctx
        step, ctx.step = ctx.step, None  # the PSP's webhook is not the task: no faults in its calls
        try:
            hook(refund_id)
        finally:
            ctx.step = step

    # --- attempts ------------------------------------------------------------------------------
    def next_attempt(self, *what: str) -> int:
        with self._lock:
            self._attempts[what] += 1  # type: ignore[index]
            return self._attempts[what]  # type: ignore[index]

    def attempts(self, step: str, key: str) -> int:
        with self._lock:
            return self._attempts[("lambda", step, key)]

    def _active(self, step: str) -> bool:
        return self.enabled and step in self.active_steps

    # --- Lambda tasks ----------------------------------------------------------------------------
    def _wrap(self, name: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def invoke(event: Any, context: Any) -> Any:
            where = step_of(name, event)
            if where is None or not self._active(where[0]):
                return handler(event, context)
            step, key = where
            attempt = self.next_attempt("lambda", step, key)
            kind = self.schedule.lambda_fault(step, key, attempt)
            if step == "executor" and self.schedule.express_lost(str(event.get("checkout_id", ""))):
                try:
                    return self._invoke(kind, step, key, attempt, handler, event, context)
                finally:  # lost right after its first charge attempt: the task's writes stand, nothing follows
                    self._lose_execution(str(event["checkout_id"]))
            return self._invoke(kind, step, key, attempt, handler, event, context)

        return invoke

    def _run(
        self,
        step: str,
        key: str,
        attempt: int,
        handler: Callable[[Any, Any], Any],
        event: Any,
        context: Any,
        crash: str | None = None,
    ) -> Any:
        ctx = self._ctx
        saved = (ctx.step, ctx.key, ctx.attempt, ctx.ddb_calls, ctx.crash_point, ctx.report_puts)
        ctx.step, ctx.key, ctx.attempt, ctx.ddb_calls, ctx.crash_point, ctx.report_puts = (
            step,
            key,
            attempt,
            0,
            crash,
            0,
        )
        try:
            return handler(event, context)
        finally:
            ctx.step, ctx.key, ctx.attempt, ctx.ddb_calls, ctx.crash_point, ctx.report_puts = saved

    def _invoke(
        self,
        kind: str | None,
        step: str,
        key: str,
        attempt: int,
        handler: Callable[[Any, Any], Any],
        event: Any,
        context: Any,
    ) -> Any:
        run = lambda crash=None: self._run(step, key, attempt, handler, event, context, crash)  # noqa: E731
        if kind is None:
            return run()
        if kind == s.RECONCILE_CRASH:
            # logged by the hook that crashes, when the run reaches the point (a run that ends
            # before it, e.g. a quarantined file, crashes nowhere and logs nothing)
            return run(crash=self.schedule.reconcile_crash(key, attempt))
        self.log.add(kind, step, key, attempt)
        if kind == s.PERSISTENT:
            raise LambdaServiceException(f"chaos: {step} keeps failing for {key} (attempt {attempt})")
        if kind == s.CRASH_BEFORE:
            raise LambdaServiceException(f"chaos: invocation of {step} failed before the handler ran")
        if kind == s.SLOW:
            time.sleep(self.schedule.slow_seconds(step, key, attempt))
            return run()
        if kind == s.TIMEOUT:
            # a real States.Timeout: the task outlives the state's TimeoutSeconds, the state machine
            # gives up and retries, and this invocation still completes its writes afterwards
            time.sleep(TASK_TIMEOUT_SECONDS[step] + 0.5)
            return run()
        if kind in (s.CRASH_AFTER, s.RUNTIME_EXIT):
            run()
            error = {s.CRASH_AFTER: LambdaServiceException, s.RUNTIME_EXIT: RuntimeExitError}[kind]
            raise error(f"chaos: {step} ran for {key} but its answer was lost ({kind})")
        if kind == s.DUPLICATE:
            with contextlib.suppress(Exception):  # the first delivery's fate is not what the caller sees
                run()
            return run()
        if kind == s.RACE:
            return self._race(run)
        raise AssertionError(f"unknown fault kind {kind}")

    @staticmethod
    def _race(run: Callable[[], Any]) -> Any:
        barrier = threading.Barrier(2)
        outcomes: list[tuple[bool, Any]] = [(False, None), (False, None)]

        def one(index: int) -> None:
            barrier.wait()
            try:
                outcomes[index] = (True, run())
            except Exception as err:  # noqa: BLE001
                outcomes[index] = (False, err)

        threads = [threading.Thread(target=one, args=(i,), name=f"chaos-race-{i}") for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for ok, value in outcomes:
            if ok:
                return value
        raise outcomes[0][1]

    # --- DynamoDB ----------------------------------------------------------------------------------
    def _ddb_hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        ctx = self._ctx
        if ctx.step is None or not self.enabled:
            return
        operation = model.name
        tables = _tables_of(operation, params)
        if settings().psp_table in tables:
            return  # the simulated PSP is an external system: its faults are the PSP's
        if ctx.crash_point == "before_records" and settings().reconciliation_table in tables and operation == "PutItem":
            self._crash_now(ctx)
            raise ChaosCrash(
                f"chaos: reconciliation of {ctx.key} crashed after writing its reports, before its records"
            )
        if ctx.step == "reconcile":
            return
        call = ctx.ddb_calls
        ctx.ddb_calls += 1
        kind = self.schedule.ddb_fault(ctx.step, ctx.key, ctx.attempt, call, operation)
        if kind is None:
            return
        self.log.add(kind, ctx.step, ctx.key, ctx.attempt, f"{operation} call {call}")
        raise _ddb_error(kind, operation, params)

    def _s3_put_hook(self, params: dict[str, Any], **_: Any) -> None:
        """The reconciliation's report objects: crash before the 2nd or the 3rd (a partial set)."""
        ctx = self._ctx
        if ctx.step != "reconcile" or not str(params.get("Key", "")).startswith("reports/"):
            return
        ctx.report_puts += 1
        if ctx.crash_point == f"before_report_{ctx.report_puts}":
            self._crash_now(ctx)
            raise ChaosCrash(
                f"chaos: reconciliation of {ctx.key} crashed after {ctx.report_puts - 1} of its report objects"
            )

    def _crash_now(self, ctx: _Context) -> None:
        """Log the reconciliation crash that is about to be raised at ``ctx.crash_point`` (once)."""
        self.log.add(s.RECONCILE_CRASH, "reconcile", str(ctx.key), ctx.attempt, str(ctx.crash_point))
        ctx.crash_point = None


def _tables_of(operation: str, params: dict[str, Any]) -> set[str]:
    if "TableName" in params:
        return {params["TableName"]}
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return set(params.get("RequestItems", {}))
    if operation in ("TransactWriteItems", "TransactGetItems"):
        found = set()
        for entry in params.get("TransactItems", []):
            for op in entry.values():
                found.add(op.get("TableName"))
        return found
    return set()


def _ddb_error(kind: str, operation: str, params: dict[str, Any]) -> ClientError:
    if kind == s.TXN_CONFLICT:
        reasons = [{"Code": "None"} for _ in params.get("TransactItems", [])]
        if reasons:
            reasons[0] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
        response = {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": "Transaction cancelled [TransactionConflict] (chaos)",
            },
            "CancellationReasons": reasons,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
    elif kind == s.THROTTLE:
        code = "ThrottlingException" if operation.startswith("Transact") else "ProvisionedThroughputExceededException"
        response = {
            "Error": {"Code": code, "Message": "Rate exceeded (chaos)"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
    else:
        response = {
            "Error": {"Code": "InternalServerError", "Message": "Internal server error (chaos)"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }
    return ClientError(response, operation)  # type: ignore[arg-type]


class ChaosPsp:
    """The PSP adapter, with the network between us and the PSP made unreliable."""

    def __init__(self, inner: Any, injector: ChaosInjector):
        self.inner = inner
        self.injector = injector

    def _fault(self, operation: str, key: str) -> str | None:
        if not self.injector._active("executor"):
            return None
        call = self.injector.next_attempt("psp", operation, key)
        kind = self.injector.schedule.psp_fault(operation, key, call)
        if kind is not None:
            self.injector.log.add(kind, "psp." + operation, key, call)
        return kind

    def charge(self, request: Any) -> Any:
        kind = self._fault("charge", request.idempotency_key)
        if kind == s.PSP_OUTAGE:
            raise PspUnavailable("chaos: PSP answered 503; nothing charged")
        if kind == s.PSP_SLOW:
            time.sleep(self.injector.schedule.slow_seconds("psp", request.idempotency_key))
        outcome = self.inner.charge(request)
        if kind == s.PSP_LOST_ANSWER:
            raise PspOutcomeUnknown("chaos: the PSP processed the charge but its answer was lost (read timeout)")
        return outcome

    def lookup(self, idempotency_key: str) -> Any:
        if self._fault("lookup", idempotency_key) == s.PSP_LOOKUP_OUTAGE:
            raise PspUnavailable("chaos: PSP status lookup failed")
        return self.inner.lookup(idempotency_key)

    def refund(self, call: Any) -> Any:
        """The refund workflow's call (idempotency key ``refund_id``): an outage before anything is
        refunded, or a refund whose answer is lost; right after the PSP decided, maybe its REFUND
        notification first."""
        refund_id = call.idempotency_key
        kind = None
        if self.injector._active("refund_execute"):
            attempt = self.injector.next_attempt("psp", "refund", refund_id)
            kind = self.injector.schedule.refund_psp_fault(refund_id, attempt)
            if kind is not None:
                self.injector.log.add(kind, "psp.refund", refund_id, attempt)
        if kind == s.REFUND_PSP_OUTAGE:
            raise PspUnavailable("chaos: PSP answered 503 to the refund; nothing refunded")
        answer = self.inner.refund(call)
        self.injector._notification_first(refund_id)
        if kind == s.REFUND_PSP_LOST_ANSWER:
            raise PspOutcomeUnknown("chaos: the PSP processed the refund but its answer was lost (read timeout)")
        return answer

    def __getattr__(self, name: str) -> Any:
        # what else the executor asks of its PSP (Adyen's ``needs_shopper_reference``) is the adapter's
        return getattr(self.inner, name)


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: its waits are scaled."""

    def __init__(self, scale: float):
        self.scale = scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
