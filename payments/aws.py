"""boto3 clients, created once per process and shared (boto3 clients are thread-safe).

``AWS_ENDPOINT_URL`` (set by the local runtime) points every client at the
local AWS-compatible endpoint; in AWS it is unset and the real services are used.
Retries are botocore's "standard" mode with a bounded attempt count: transient
throttling is retried here a little, and beyond that by the state machine.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)
_lock = threading.Lock()
_clients: dict[str, Any] = {}
#: one session for every client: a second client then reuses the session's loaded endpoint,
#: partition and credential data instead of loading them again (a cold-start cost)
_session: boto3.session.Session | None = None


def client(service: str) -> Any:
    global _session
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:  # boto3 sessions are not thread-safe: clients are created under the lock
        if service not in _clients:
            if _session is None:
                _session = boto3.session.Session()
            _clients[service] = _session.client(service, config=_CONFIG)
        return _clients[service]


def reset_clients() -> None:
    """Drop cached clients and the session (the local runtime calls this after changing the
    endpoint or the credentials)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None
