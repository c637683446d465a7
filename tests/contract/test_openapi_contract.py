"""Property-based contract test: schemathesis over docs/openapi.json against the local runtime.

Requests generated from the committed OpenAPI document (valid ones, and invalid ones that break
the schema on purpose), with a fixed seed, are sent to the running API. Every answer must be
documented: no 5xx, a documented status code and content type, a body valid against the
document's schema. Afterwards the money invariants hold (``payments verify``) and no table or
object of the runtime holds a card number.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from payments.ops.invariants import check_current
from payments_dev.local.runtime import wait_until
from tests.card_numbers import scan_runtime

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
SEED = 14
#: examples per operation: the checkout takes most; a refund's POST mostly meets unknown orders (404), the
#: webhook unsigned bodies (401), so fewer suffice; each read takes a few (the trial balance takes no input)
CHECKOUT_EXAMPLES, REFUND_EXAMPLES, WEBHOOK_EXAMPLES, READ_EXAMPLES = 550, 250, 120, 120
MIN_REQUESTS = 1_000
SETTLE_TIMEOUT_S = 240.0

schema = schemathesis.openapi.from_path(DOCUMENT)
schema.config.generation.update(modes=["positive", "negative"], deterministic=True, database="none")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,  # a request outside the schema is refused with a 4xx
    missing_required_header,  # no Idempotency-Key: a 4xx
    unsupported_method,  # a method the path does not document: 405 with Allow
]

SENT: Counter[str] = Counter()
STATUSES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def session() -> requests.Session:
    return requests.Session()


def send_and_check(case, runtime, session) -> None:
    # Given a request generated from the OpenAPI document (within or outside its schema)
    label = f"{case.operation.method.upper()} {case.operation.path}"
    # When it is sent to the local runtime
    response = case.call(base_url=runtime.api_url, session=session, timeout=30)
    SENT[label] += 1
    STATUSES[f"{label} -> {response.status_code}"] += 1
    # Then no 5xx, and status code, content type, headers and body are as the document says
    case.validate_response(response, checks=CHECKS)


@schema.include(method="POST", path="/v1/payments").parametrize()
@seed(SEED)
@settings(
    max_examples=CHECKOUT_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_to_a_checkout_is_documented(case, runtime, session):
    send_and_check(case, runtime, session)


@schema.include(method="POST", path="/v1/refunds").parametrize()
@seed(SEED)
@settings(
    max_examples=REFUND_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_to_a_refund_is_documented(case, runtime, session):
    send_and_check(case, runtime, session)


@schema.include(method="POST", path="/v1/psp/notifications").parametrize()
@seed(SEED)
@settings(
    max_examples=WEBHOOK_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_of_the_psp_webhook_is_documented(case, runtime, session):
    send_and_check(case, runtime, session)


@schema.exclude(method="POST").parametrize()
@seed(SEED)
@settings(
    max_examples=READ_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_every_answer_to_a_read_is_documented(case, runtime, session):
    send_and_check(case, runtime, session)


def test_after_the_run_money_invariants_hold_and_no_card_number_is_stored(runtime, capsys):
    # Given every generated request was sent (the figures are printed in every run)
    total = sum(SENT.values())
    with capsys.disabled():
        print(f"\ncontract test: seed {SEED}, {total} requests")
        for line, n in sorted(STATUSES.items()):
            print(f"  {line}: {n}")
    assert total >= MIN_REQUESTS, dict(SENT)
    # When the accepted checkouts have settled
    assert wait_until(lambda: check_current(expect_settled=True).ok, SETTLE_TIMEOUT_S, interval=1.0), (
        "checkouts did not settle"
    )
    # Then `payments verify` is clean
    report = check_current(expect_settled=True)
    assert report.ok, "\n".join(str(v) for v in report.violations)
    # And no table or object holds a card number, in any form
    assert scan_runtime() == []
