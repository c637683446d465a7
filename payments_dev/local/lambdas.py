"""In-process Lambda functions for the local runtime.

moto's Step Functions engine interprets ``stepfunctions/*.asl.json`` and invokes
each Task's Lambda through moto's Lambda service. Here that invocation is
dispatched to the real handler module in this process (no Docker): the same
code that runs in AWS, with the same event and the same error contract (an
exception becomes ``FunctionError`` with ``errorType`` = the exception's class
name, which is what the ASL's ``Retry``/``Catch`` match on).

Asynchronous invocations (S3 notifications) run on a small worker pool with
Lambda's async retry policy (2 retries); an event that still fails is kept in
:data:`DEAD_LETTERS`, never dropped. Each one's fate (attempts, seconds, whether it
succeeded) is kept in :attr:`Dispatcher.async_invocations`, so a caller can wait for
the invocation itself rather than guess a deadline.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from functions import registry

#: local function name -> "module:function" of its handler (functions.registry, as infra/ deploys them)
FUNCTIONS: dict[str, str] = {f.local_name: f"{f.module}:handler" for f in registry.FUNCTIONS}

ASYNC_RETRIES = 2
DEAD_LETTERS: list[dict[str, Any]] = []


@dataclass
class AsyncInvocation:
    """One asynchronous (``Event``) invocation, with its retries, as the Lambda service runs it."""

    function_name: str
    event: Any
    queued: float = field(default_factory=time.monotonic)
    attempts: int = 0
    #: None while queued or running; then True (an attempt succeeded) or False (dead-lettered)
    succeeded: bool | None = None
    seconds: float = 0.0  # from the first attempt's start to the last attempt's end

    @property
    def done(self) -> bool:
        return self.succeeded is not None


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that our handlers and Powertools use."""

    function_name: str
    timeout_ms: int = 30_000
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


class Dispatcher:
    """Resolves function names to handlers and runs them like the Lambda service does."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()
        self._async = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lambda-async")
        #: hooks run around every invocation: (function_name, event) -> None (fault injection, counting)
        self.before_invoke: list[Callable[[str, Any], None]] = []
        self.invocations: dict[str, int] = {}
        self.async_invocations: list[AsyncInvocation] = []
        #: invocations running now, by function: a task whose state timed out goes on running (as in
        #: Lambda), so an audit that needs the system at rest waits for this to empty, not only for executions
        self._running: dict[str, int] = {}

    def handler_for(self, function_name: str) -> Callable[[Any, Any], Any]:
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        with self._lock:
            if name not in self._handlers:
                module_name, attr = FUNCTIONS[name].split(":")
                self._handlers[name] = getattr(importlib.import_module(module_name), attr)
            return self._handlers[name]

    def invoke(self, function_name: str, event: Any) -> tuple[bytes, bool]:
        """Run the handler; returns (payload, errored) exactly as Lambda would encode them."""
        name = function_name.rsplit(":", 1)[-1]
        with self._lock:
            self.invocations[name] = self.invocations.get(name, 0) + 1
            self._running[name] = self._running.get(name, 0) + 1
        try:
            for hook in self.before_invoke:
                hook(name, event)
            result = self.handler_for(name)(event, LambdaContext(function_name=name))
            return json.dumps(result).encode(), False
        except Exception as err:  # noqa: BLE001 - the Lambda runtime's contract: any exception is a function error
            payload = {
                "errorType": type(err).__name__,
                "errorMessage": str(err),
                "stackTrace": traceback.format_tb(err.__traceback__)[-5:],
            }
            return json.dumps(payload).encode(), True
        finally:
            with self._lock:
                self._running[name] -= 1

    def running(self) -> dict[str, int]:
        """{function: invocations running now}, the functions with none left out."""
        with self._lock:
            return {name: n for name, n in self._running.items() if n}

    def invoke_async(self, function_name: str, event: Any) -> AsyncInvocation:
        record = AsyncInvocation(function_name.rsplit(":", 1)[-1], event)
        with self._lock:
            self.async_invocations.append(record)

        def attempts() -> bool:
            for attempt in range(1 + ASYNC_RETRIES):
                record.attempts = attempt + 1
                payload, errored = self.invoke(function_name, event)
                if not errored:
                    return True
                time.sleep(0.2 * (attempt + 1))
            DEAD_LETTERS.append({"function": function_name, "event": event, "error": json.loads(payload)})
            return False

        def run() -> None:
            started, succeeded = time.monotonic(), False
            try:
                succeeded = attempts()
            except Exception as err:  # noqa: BLE001 - the dispatcher itself failed: the event is not lost
                DEAD_LETTERS.append({"function": function_name, "event": event, "error": f"dispatcher: {err!r}"})
            finally:
                record.seconds = time.monotonic() - started
                record.succeeded = succeeded  # last: a waiter that sees it done reads final figures

        self._async.submit(run)
        return record


DISPATCHER = Dispatcher()


def install_into_moto() -> None:
    """Make moto's Lambda service run our in-process handlers instead of Docker containers."""
    from moto.awslambda import models

    if getattr(models.LambdaFunction.invoke, "_payments_local", False):
        return

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        event = json.loads(body) if isinstance(body, (str, bytes)) and body else (body or {})
        invocation_type = (request_headers or {}).get("X-Amz-Invocation-Type") or (request_headers or {}).get(
            "x-amz-invocation-type"
        )
        if not request_headers or invocation_type == "Event":
            # S3 notifications arrive with no headers: asynchronous, as in AWS
            DISPATCHER.invoke_async(self.function_name, event)
            return b""
        payload, errored = DISPATCHER.invoke(self.function_name, event)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    invoke._payments_local = True  # type: ignore[attr-defined]
    models.LambdaFunction.invoke = invoke
