"""One endpoint helper (payments.kernel.aws.use_endpoint) for every operator command's ``--endpoint``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from payments.kernel import aws
from payments.kernel.config import settings

VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "STATE_MACHINE_ARN",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    saved = {name: os.environ.get(name) for name in VARIABLES}
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    # use_endpoint writes os.environ itself: put every variable back as it was, then drop the caches
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    aws.reset_clients()
    settings.cache_clear()


def test_an_endpoint_points_clients_and_settings_at_it(clean_env: pytest.MonkeyPatch) -> None:
    # Given no AWS variable but a region set by the operator, and cached clients and settings
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    settings()
    aws._clients["marker"] = object()
    # When an endpoint is used with a local default for the state machine
    aws.use_endpoint("http://127.0.0.1:9", STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:x")
    # Then the endpoint is set, local credentials fill the gaps, what was set is kept
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]) == ("local", "local")
    assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert os.environ["STATE_MACHINE_ARN"].endswith(":stateMachine:x")
    # and the cached clients and settings are dropped, so the next use reads the new environment
    assert "marker" not in aws._clients
    assert settings.cache_info().currsize == 0


def test_no_endpoint_changes_nothing(clean_env: pytest.MonkeyPatch) -> None:
    # Given no --endpoint (real AWS) / When used / Then no variable is set and nothing is reset
    aws._clients["marker"] = object()
    aws.use_endpoint(None, STATE_MACHINE_ARN="arn")
    assert not any(os.environ.get(name) for name in VARIABLES)
    assert "marker" in aws._clients
