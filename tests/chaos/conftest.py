"""Chaos tests run against their own local runtime (process-wide moto state: run this
directory in its own pytest process, like tests/integration)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from payments import aws
from payments.config import reset_settings
from payments.local.runtime import LocalRuntime, free_port


@pytest.fixture(scope="package")
def runtime() -> Iterator[LocalRuntime]:
    saved = dict(os.environ)
    rt = LocalRuntime(port=free_port(), aws_port=free_port())
    rt.start()
    yield rt
    rt.stop()
    os.environ.clear()
    os.environ.update(saved)
    reset_settings()
    aws.reset_clients()
