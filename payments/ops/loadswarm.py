"""The Locust side of ``payments loadtest``: simulated shoppers against the checkout API, headless.

Run by :mod:`payments.ops.loadtest` as a child process (``python -m payments.ops.loadswarm``) so that
Locust's gevent patches the standard library before anything opens a socket or imports ``ssl``. It
reads the run's settings as one JSON document on stdin and writes what it observed as one JSON
document on stdout: every checkout (when it started, how it ended, the time from its POST to its final
status) and every request's HTTP status. The figures are computed by :func:`payments.ops.loadtest.summarise`.

Each shopper POSTs ``/v1/payments`` with a fresh ``Idempotency-Key`` and one of the contract's test card
tokens (a share of them declined), retrying a throttled POST (429) with the same key, then polls
``GET /v1/payments/{id}`` until a final status or the bound. Every request is signed with SigV4 for the
``execute-api`` service (botocore's signer, credentials from the default chain).
"""

# Locust first: gevent must patch the standard library before anything else is imported.
import locust  # isort: skip

import itertools
import json
import math
import sys
import time
import uuid  # time.sleep is gevent's from here on: a shopper's wait yields to the others
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session

#: a throttled POST is sent again with the same key, after 0.5 s, then 1 s, then 2 s
POST_RETRIES = 3
#: the contract's simulated-PSP test tokens (CONTRACT.md): succeeds, and declined (final)
SUCCESS_TOKEN, DECLINED_TOKEN = "tok_visa", "tok_chargeDeclined"


@dataclass
class Settings:
    api: str
    rate: float
    duration: float
    ramp: float
    orders: int
    declined: float
    final_timeout: float
    poll_interval: float
    pace: float
    region: str
    local_key: str | None  # credentials for a loopback runtime when the default chain has none


@dataclass
class Observed:
    checkouts: list[dict[str, Any]] = field(default_factory=list)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)  # method -> status -> count
    seconds: dict[str, list[float]] = field(default_factory=dict)  # method -> each request's time
    in_flight: int = 0

    def request(self, method: str, status: int, seconds: float) -> None:
        self.seconds.setdefault(method, []).append(round(seconds, 4))
        by_status = self.requests.setdefault(method, {})
        by_status[str(status)] = by_status.get(str(status), 0) + 1


class Signer:
    def __init__(self, settings: Settings) -> None:
        credentials = get_session().get_credentials()
        if credentials is None and settings.local_key:
            credentials = Credentials(settings.local_key, settings.local_key)
        if credentials is None:
            raise SystemExit("payments loadtest: no AWS credentials in the default chain; set AWS_PROFILE")
        self.auth = SigV4Auth(credentials, "execute-api", settings.region)

    def headers(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        self.auth.add_auth(request)
        return dict(request.headers.items())


def is_final(body: Any) -> bool:
    """Done, failed, or parked for a person: nothing more happens to it without someone."""
    if not isinstance(body, dict):
        return False
    parked = any(bool(order.get("needs_attention")) for order in body.get("payment_orders") or [])
    return bool(body.get("is_payment_done")) or body.get("status") == "FAILED" or parked


def checkout_body(run_id: str, number: int, token: str, orders: int) -> dict[str, Any]:
    """A valid checkout: fresh ids, ``orders`` payment orders of a few dollars to distinct sellers."""
    return {
        "checkout_id": f"lt_{run_id}_{number}",
        "buyer_info": {"buyer_id": f"buyer_lt_{number % 1000}", "email": "loadtest@example.com"},
        "payment_method": {"type": "card", "token": token},
        "payment_orders": [
            {
                "payment_order_id": f"lt_{run_id}_{number}_{k}",
                "seller_account": f"seller_lt_{k % 10}",
                "amount": f"{10 + (number + k) % 90}.{(number * 7 + k) % 100:02d}",
                "currency": "USD",
            }
            for k in range(orders)
        ],
    }


def declined(number: int, share: float) -> bool:
    """Exactly ``share`` of the checkouts, spread evenly: the n-th is declined when floor(n*share) steps."""
    return math.floor((number + 1) * share) > math.floor(number * share)


def run(settings: Settings) -> Observed:
    observed = Observed()
    signer = Signer(settings)
    run_id = uuid.uuid4().hex[:10]
    numbers = itertools.count()
    spawned = itertools.count()
    users = max(1, math.ceil(settings.rate * settings.pace))
    pacing = users / settings.rate  # each shopper starts one checkout per `pacing` seconds: `rate` in all
    started_at = time.monotonic()
    stop_starting_at = started_at + settings.duration

    class Shopper(locust.HttpUser):
        host = settings.api.rstrip("/")
        wait_time = locust.constant_pacing(pacing)

        def on_start(self) -> None:
            # spread the first checkouts evenly over the pace (or the ramp, when longer): a steady rate
            first = started_at + next(spawned) * max(pacing, settings.ramp) / users
            time.sleep(max(0.0, first - time.monotonic()))

        def send(self, method: str, path: str, body: bytes | None, extra: dict[str, str]) -> tuple[int, Any]:
            headers = signer.headers(method, self.host + path, body, {"Content-Type": "application/json", **extra})
            name = "POST /v1/payments" if method == "POST" else "GET /v1/payments/{id}"
            sent = time.monotonic()
            response = self.client.request(method, path, data=body, headers=headers, name=name, timeout=30)
            status = int(response.status_code or 0)  # 0: no answer (connection error or timeout)
            observed.request(method, status, time.monotonic() - sent)
            try:
                return status, response.json() if response.content else None
            except ValueError:
                return status, None

        @locust.task
        def checkout(self) -> None:
            if time.monotonic() >= stop_starting_at:
                return
            number = next(numbers)
            token = DECLINED_TOKEN if declined(number, settings.declined) else SUCCESS_TOKEN
            body = checkout_body(run_id, number, token, settings.orders)
            payload = json.dumps(body).encode()
            key = str(uuid.uuid4())
            start = time.monotonic()
            record: dict[str, Any] = {"started_s": round(start - started_at, 3), "token": token}
            observed.checkouts.append(record)
            observed.in_flight += 1
            try:
                self._checkout(record, start, body["checkout_id"], payload, key)
            finally:
                observed.in_flight -= 1

        def _checkout(self, record: dict[str, Any], start: float, checkout_id: str, payload: bytes, key: str) -> None:
            status, answer = 0, None
            for attempt in range(POST_RETRIES + 1):
                status, answer = self.send("POST", "/v1/payments", payload, {"Idempotency-Key": key})
                if status != 429 or attempt == POST_RETRIES:
                    break
                time.sleep(0.5 * 2**attempt)
            if status not in (200, 201, 202):
                record.update(outcome="rejected", http_status=status)
                return
            deadline = start + settings.final_timeout
            while not is_final(answer):
                if time.monotonic() >= deadline:
                    record.update(outcome="timeout")
                    return
                time.sleep(settings.poll_interval)
                status, reply = self.send("GET", f"/v1/payments/{checkout_id}", None, {})
                if status == 200:
                    answer = reply
            final = answer if isinstance(answer, dict) else {}
            record.update(outcome="final", status=final.get("status"), seconds=round(time.monotonic() - start, 4))

    class Ramp(locust.LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            if time.monotonic() - started_at > settings.duration + settings.final_timeout + 30:
                return None
            return users, (users / settings.ramp if settings.ramp > 0 else users)

    shape = Ramp()  # type: ignore[no-untyped-call]  # Locust's shape has no annotated __init__
    environment = locust.env.Environment(user_classes=[Shopper], shape_class=shape, host=Shopper.host)
    runner = environment.create_local_runner()
    runner.start_shape()
    hard_stop = stop_starting_at + settings.final_timeout + 30
    while True:
        time.sleep(0.25)
        now = time.monotonic()
        if now >= stop_starting_at and observed.in_flight == 0:
            break
        if now >= hard_stop:
            break
    runner.quit()
    for record in observed.checkouts:  # still polling when stopped: counted as timeouts
        record.setdefault("outcome", "timeout")
    return observed


def main() -> int:
    settings = Settings(**json.load(sys.stdin))
    observed = run(settings)
    json.dump({"checkouts": observed.checkouts, "requests": observed.requests, "seconds": observed.seconds}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
