"""boto3 clients, created once per process and shared (boto3 clients are thread-safe).

``AWS_ENDPOINT_URL`` (set by the local runtime) points every client at the
local AWS-compatible endpoint; in AWS it is unset and the real services are used.
Retries are botocore's "standard" mode with a bounded attempt count: transient
throttling is retried here a little, and beyond that by the state machine.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # boto3-stubs (the dev extra): each service's typed client, for mypy only
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
_lock = threading.Lock()
_clients: dict[str, Any] = {}
#: one session for every client: a second client then reuses the session's loaded endpoint,
#: partition and credential data instead of loading them again (a cold-start cost)
_session: boto3.session.Session | None = None


@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["kms"]) -> KMSClient: ...
@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["stepfunctions"]) -> SFNClient: ...
def client(service: str) -> Any:
    """The shared client of ``service``, typed by boto3-stubs for each service the code calls."""
    global _session
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:  # boto3 sessions are not thread-safe: clients are created under the lock
        if service not in _clients:
            if _session is None:
                _session = boto3.session.Session()
            _clients[service] = _session.client(service, config=_CONFIG, **local_defaults(_session))  # type: ignore[call-overload]  # service names a literal of the overloads above
        return _clients[service]


#: what a local AWS-compatible endpoint accepts when nothing is configured (it checks neither)
LOCAL_REGION, LOCAL_KEY = "us-east-1", "local"


def local_defaults(session: boto3.session.Session) -> dict[str, str]:
    """A region and credentials for a client of the *local* endpoint (``AWS_ENDPOINT_URL``)
    when none are configured, so that ``payments reconcile FILE --endpoint URL`` and the
    other local commands work with no AWS variable and no ``~/.aws``. Against AWS (no
    endpoint) nothing is added: a missing region or credential stays an error there."""
    if not os.environ.get("AWS_ENDPOINT_URL"):
        return {}
    defaults: dict[str, str] = {}
    if not session.region_name:
        defaults["region_name"] = LOCAL_REGION
    if session.get_credentials() is None:
        defaults["aws_access_key_id"] = LOCAL_KEY
        defaults["aws_secret_access_key"] = LOCAL_KEY
    return defaults


def reset_clients() -> None:
    """Drop cached clients and the session (the local runtime calls this after changing the
    endpoint or the credentials)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


def use_endpoint(endpoint: str | None, **defaults: str) -> None:
    """Point every client and the settings at an AWS-compatible ``endpoint`` (the operator
    commands' ``--endpoint``, e.g. a running ``payments serve``); nothing when it is None.

    The local region and credentials are filled in when unset (a local endpoint checks
    neither), as are ``defaults`` (other variables a command needs locally, e.g.
    ``STATE_MACHINE_ARN``); a variable already set non-empty is kept. The cached clients and
    settings are dropped so that the next use reads the new environment."""
    if not endpoint:
        return
    from payments.kernel.config import reset_settings  # config does not import this module; kept lazy all the same

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    local = {"AWS_ACCESS_KEY_ID": LOCAL_KEY, "AWS_SECRET_ACCESS_KEY": LOCAL_KEY, "AWS_DEFAULT_REGION": LOCAL_REGION}
    for name, value in {**local, **defaults}.items():
        if not os.environ.get(name):
            os.environ[name] = value
    reset_clients()
    reset_settings()
