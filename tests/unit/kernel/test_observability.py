"""One instrumentation policy for every Lambda handler (payments/kernel/observability.py)."""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path
from typing import Any
from unittest import mock

from payments.kernel import observability
from payments.kernel.observability import entry_point, logger, tracer

ROOT = Path(__file__).resolve().parents[3]


class _Context:
    function_name, memory_limit_in_mb, aws_request_id = "f", 128, "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"


def test_the_tracer_never_records_a_response_and_the_logger_forgets_the_last_invocations_keys() -> None:
    # Given a handler under the policy that returns payment data and appends a key to the logger
    subsegment = mock.MagicMock()

    @contextlib.contextmanager
    def in_subsegment(name: str) -> Any:
        yield subsegment

    @entry_point
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        keys_seen.append(dict(logger.get_current_keys()))
        logger.append_keys(checkout_id=event["checkout_id"])
        return {"checkout_id": event["checkout_id"], "amount": "19.99"}

    keys_seen: list[dict[str, Any]] = []
    # When it is invoked twice in one warm container, with tracing on
    with (
        mock.patch.object(tracer, "disabled", False),
        mock.patch.object(tracer.provider, "in_subsegment", in_subsegment),
    ):
        handler({"checkout_id": "chk_1"}, _Context())
        handler({"checkout_id": "chk_2"}, _Context())
    # Then no response reached the trace, and the second invocation did not inherit chk_1
    assert not [c for c in subsegment.put_metadata.call_args_list if "response" in str(c)]
    assert "checkout_id" not in keys_seen[1]


def test_every_handler_uses_the_policy_and_no_other_instrumentation() -> None:
    # Given every Lambda entry point of the deployed code
    handlers = sorted((ROOT / "functions").glob("*/handler.py"))
    assert handlers
    for path in handlers:
        tree = ast.parse(path.read_text())
        handler = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler")
        decorators = [ast.unparse(d) for d in handler.decorator_list]
        # Then its outermost decorator is the policy, and nothing re-instruments it by hand
        assert decorators[0] == "entry_point", (path, decorators)
        assert not [d for d in decorators if d.startswith(("logger.", "tracer.", "metrics."))], (path, decorators)
    assert observability.entry_point is entry_point


def test_no_deployed_module_instruments_a_function_outside_the_policy() -> None:
    # Given every module of the deployed code (functions/ and payments/; the dev tools are in payments_dev/)
    modules = [path for folder in ("functions", "payments") for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(modules) > 20
    # Then only payments/kernel/observability.py calls Powertools' per-invocation instrumentation: one
    # clear_state, one capture_response policy for every handler
    own = ("inject_lambda_context", "capture_lambda_handler", "capture_method", "log_metrics")
    found = [
        (path.relative_to(ROOT).as_posix(), node.lineno)
        for path in modules
        if path.relative_to(ROOT).as_posix() != "payments/kernel/observability.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in own
    ]
    assert found == []
