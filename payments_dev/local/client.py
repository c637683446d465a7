"""A minimal HTTP client of the checkout API (stdlib only), for the demo and the tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class ApiClient:
    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> Reply:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Reply(response.status, dict(response.headers), _json(response.read()))
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), _json(error.read()))

    def pay(self, body: Any, key: str | None) -> Reply:
        return self.request("POST", "/v1/payments", body, {"Idempotency-Key": key} if key is not None else {})

    def payment(self, checkout_id: str) -> Reply:
        return self.request("GET", f"/v1/payments/{checkout_id}")

    def wallet(self, seller: str) -> Reply:
        return self.request("GET", f"/v1/wallets/{seller}")

    def trial_balance(self) -> Reply:
        return self.request("GET", "/v1/ledger/trial-balance")


def _json(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
