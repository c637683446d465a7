"""The contract test owns a local runtime (process-wide moto state): this directory runs in
its own pytest process (``make test-contract``), like tests/integration and tests/chaos."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments_dev.local.runtime import LocalRuntime, free_port


@pytest.fixture(scope="package")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(port=free_port(), aws_port=free_port()) as rt:  # restores the environment on exit
        yield rt
