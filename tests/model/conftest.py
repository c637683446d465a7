"""The model-based test of money owns a local runtime per PSP (process-wide moto state): run this
directory in its own pytest process (``make test-model``), like tests/integration.

One runtime per PSP for the whole session (it is slow to start); examples are isolated by fresh ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.model.system import System

PSPS = ("simulator", "adyen-fake")


@pytest.fixture(scope="session", params=PSPS)
def system(request: pytest.FixtureRequest) -> Iterator[System]:
    started = System(request.param).start()
    try:
        yield started
    finally:
        started.stop()
