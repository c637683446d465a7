"""Chaos tests run against their own local runtime (process-wide moto state: run this
directory in its own pytest process, like tests/integration).

One runtime per module, never one for the package: test_money_back and test_payouts start a runtime
per test, and a runtime started while another is alive shares moto's process-global backends, the
environment and the Lambda dispatcher with it. The older one's background threads (its recovery
schedule above all) must not outlive the module that needed them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments_dev.local.runtime import LocalRuntime, free_port
from tests.card_numbers import scan_runtime


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(port=free_port(), aws_port=free_port()) as rt:  # restores the environment on exit
        yield rt
        # after the module: no card number in any table or object, in any form (issue 14)
        assert scan_runtime() == [], "card numbers stored"
