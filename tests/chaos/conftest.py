"""Chaos tests run against their own local runtime (process-wide moto state: run this
directory in its own pytest process, like tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments_dev.local.runtime import LocalRuntime, free_port
from tests.card_numbers import scan_runtime


@pytest.fixture(scope="package")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(port=free_port(), aws_port=free_port()) as rt:  # restores the environment on exit
        yield rt
        # after the whole package: no card number in any table or object, in any form (issue 14)
        assert scan_runtime() == [], "card numbers stored"
