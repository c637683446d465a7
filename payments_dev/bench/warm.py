"""Warm per-invocation CPU of each handler on the hot path, AWS calls excluded.

    .venv/bin/python -m payments_dev.bench.warm [--n 100]

Runs in a fresh subprocess under moto's in-process ``mock_aws`` (tables and the state machine
of the local runtime). Every botocore API call is timed (``BaseClient._make_api_call``) and
its CPU subtracted, so what remains is the handler's *own* CPU: Powertools decorators,
routing, validation, idempotency bookkeeping, (de)serialisation, logging and the domain logic.

Each handler is compared, alternately invocation by invocation, with a *bare* call of the
same work: parse the event with the same pydantic model, call the same logic function,
serialise the result (no Powertools). handler - bare = the framework's own cost.

The hot path of one checkout: ``POST /v1/payments`` (3 orders, valid body, fresh
Idempotency-Key), ``executor`` per order, ``wallet`` per order, ``ledger`` per order,
``payment`` FinalizePayment task per checkout.

Environment: as deployed (INFO logs, metrics *enabled*: the EMF blob is printed at each
flush, into a byte-counting sink, which also gives the CloudWatch Logs bytes per invocation),
except ``POWERTOOLS_TRACE_DISABLED=true``: there is no X-Ray daemon or trace header here,
so the tracer's per-invocation subsegment is not measured.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from typing import Any

from payments_dev.bench.common import PYTHON, ROOT, median

ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Payments",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:payments-payment",
}


class CountingSink(io.TextIOBase):
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, s: str) -> int:
        self.bytes += len(s.encode())
        return len(s)

    def writable(self) -> bool:
        return True


class AwsTimer:
    """Accumulates CPU time spent inside botocore API calls (moto's in-process work included)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.calls = 0
        self.depth = 0

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        timer = self

        def timed(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if timer.depth:
                return original(client, operation, params)
            timer.depth += 1
            started = time.process_time()
            try:
                return original(client, operation, params)
            finally:
                timer.cpu += time.process_time() - started
                timer.calls += 1
                timer.depth -= 1

        BaseClient._make_api_call = timed


def checkout_body(i: int, orders: int = 3) -> dict[str, Any]:
    return {
        "checkout_id": f"wchk_{i:06d}",
        "buyer_info": {"buyer_id": f"buyer_{i % 97}", "email": f"b{i}@example.com"},
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": [
            {
                "payment_order_id": f"wpo_{i:06d}_{j}",
                "seller_account": f"seller_{(i + j) % 40:03d}",
                "amount": f"{10 + j}.99",
                "currency": "USD",
            }
            for j in range(orders)
        ],
    }


def proxy_event(body: dict[str, Any], key: str) -> dict[str, Any]:
    text = json.dumps(body)
    return {
        "resource": "/v1/payments",
        "path": "/v1/payments",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json", "Idempotency-Key": key},
        "multiValueHeaders": {"Content-Type": ["application/json"], "Idempotency-Key": [key]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": f"req-{key}",
            "stage": "bench",
            "httpMethod": "POST",
            "path": "/v1/payments",
            "resourcePath": "/v1/payments",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


def child(n: int) -> dict[str, Any]:
    os.environ.update(ENV)
    sink = CountingSink()
    real_stdout = sys.stdout
    sys.stdout = sink  # Powertools' logger binds its stream at import: import the handlers after this
    from moto import mock_aws

    with mock_aws():
        from payments.kernel import aws
        from payments.kernel.config import reset_settings
        from payments_dev.local.runtime import LocalRuntime, variable

        class InProcess(LocalRuntime):
            aws_url = None  # type: ignore[assignment]  # boto3's default endpoints: intercepted by mock_aws

        runtime = InProcess()
        # boto3's default SQS endpoint names the queue that mock_aws creates (the runtime's names its own endpoint)
        runtime.settings = runtime.settings.model_copy(
            update={
                "notifications_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/payments-notifications"
            }
        )
        for name, value in runtime.settings.model_dump().items():
            os.environ[name.upper()] = variable(value)
        reset_settings()
        aws.reset_clients()
        runtime._bootstrap()

        import functions.executor.handler as executor_h
        import functions.ledger.handler as ledger_h
        import functions.payment.handler as payment_h
        import functions.wallet.handler as wallet_h
        from functions.executor.logic import execute_order
        from functions.ledger.logic import book_payin
        from functions.payment import logic as payment_logic
        from functions.wallet.logic import credit_seller
        from payments.accounts.ledger import LedgerRepository
        from payments.accounts.wallet import WalletRepository
        from payments.payin.models import PaymentRequest
        from payments.payin.repository import PaymentsRepository
        from payments.payin.tasks import ExecuteOrderTask, FinalizePaymentTask, OrderTask
        from payments.psp import default_psp
        from payments_dev.local.lambdas import LambdaContext

        def bare_payment(event: dict[str, Any], _: Any) -> dict[str, Any]:
            request = PaymentRequest.model_validate(json.loads(event["body"]))
            resource = payment_logic.accept_payment(event["headers"]["Idempotency-Key"], request, PaymentsRepository())
            return {"statusCode": 202, "body": json.dumps(resource)}

        def bare_finalize(event: dict[str, Any], _: Any) -> dict[str, Any]:
            return payment_logic.finalize_payment(FinalizePaymentTask.model_validate(event), PaymentsRepository())

        def bare_executor(event: dict[str, Any], _: Any) -> dict[str, Any]:
            return execute_order(
                ExecuteOrderTask.model_validate(event), PaymentsRepository(), default_psp()
            ).model_dump(mode="json")

        def bare_wallet(event: dict[str, Any], _: Any) -> dict[str, Any]:
            orders = PaymentsRepository()
            return credit_seller(
                OrderTask.model_validate(event).payment_order_id, orders, WalletRepository(payments=orders)
            )

        def bare_ledger(event: dict[str, Any], _: Any) -> dict[str, Any]:
            orders = PaymentsRepository()
            return book_payin(
                OrderTask.model_validate(event).payment_order_id, orders, LedgerRepository(payments=orders)
            )

        timer = AwsTimer()
        timer.install()
        results: dict[str, Any] = {}

        def measure(label: str, handler: Any, bare: Any, events: list[dict[str, Any]], check: Any) -> None:
            runs: dict[str, list[dict[str, float]]] = {"handler": [], "bare": []}
            for i, event in enumerate(events):
                kind = "handler" if i % 2 == 0 else "bare"
                fn = handler if kind == "handler" else bare
                context = LambdaContext(function_name=f"payments-{label}")
                cpu0, aws0, calls0, out0 = time.process_time(), timer.cpu, timer.calls, sink.bytes
                result = fn(event, context)
                cpu = time.process_time() - cpu0
                check(result)
                runs[kind].append(
                    {"cpu": cpu, "aws": timer.cpu - aws0, "calls": timer.calls - calls0, "log_bytes": sink.bytes - out0}
                )
            summary: dict[str, Any] = {}
            for kind, rows in runs.items():
                summary[kind] = {
                    "total_ms": median([r["cpu"] * 1000 for r in rows]),
                    "aws_ms": median([r["aws"] * 1000 for r in rows]),
                    "own_ms": median([(r["cpu"] - r["aws"]) * 1000 for r in rows]),
                    "aws_calls": median([r["calls"] for r in rows]),
                    "log_bytes": median([r["log_bytes"] for r in rows]),
                    "n": len(rows),
                }
            results[label] = summary

        checkouts = [checkout_body(i) for i in range(2 * n)]

        def accepted(result: dict[str, Any]) -> None:
            assert result["statusCode"] == 202, result

        measure(
            "payment POST",
            payment_h.handler,
            bare_payment,
            [proxy_event(c, f"idem-{c['checkout_id']}") for c in checkouts],
            accepted,
        )
        orders = [(c["checkout_id"], o["payment_order_id"]) for c in checkouts for o in c["payment_orders"]]
        # each order runs either the handler or the bare call, alternately, in every step
        measure(
            "executor",
            executor_h.handler,
            bare_executor,
            [
                {"checkout_id": c, "payment_order_id": o, "payment_method": {"type": "card", "token": "tok_visa"}}
                for c, o in orders
            ],
            lambda r: r["status"] == "SUCCESS" or (_ for _ in ()).throw(AssertionError(r)),
        )
        measure("wallet", wallet_h.handler, bare_wallet, [{"payment_order_id": o} for _, o in orders], lambda r: None)
        measure("ledger", ledger_h.handler, bare_ledger, [{"payment_order_id": o} for _, o in orders], lambda r: None)
        finalize_events = [
            {
                "action": "finalize_payment",
                "checkout_id": c["checkout_id"],
                "order_results": [
                    {"payment_order_id": o["payment_order_id"], "outcome": "SUCCESS"} for o in c["payment_orders"]
                ],
            }
            for c in checkouts
        ]
        measure("payment finalize", payment_h.handler, bare_finalize, finalize_events, lambda r: None)
    sys.stdout = real_stdout
    return results


def run(n: int = 100) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    done = subprocess.run(
        [PYTHON, "-m", "payments_dev.bench.warm", "--child", "--n", str(n)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"warm child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Warm per-invocation CPU of each handler, AWS calls excluded")
    parser.add_argument(
        "--n", type=int, default=100, help="checkouts per kind (handler and bare): 2n checkouts, 6n orders"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a tiny run: 2 checkouts per kind")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.n)))
        return 0
    print(json.dumps(run(2 if args.quick else args.n), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
