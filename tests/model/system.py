"""The system under the model, seen only through its public interfaces, on either PSP.

:class:`System` owns one local runtime (started once per test session, per PSP) and answers what a
client, the PSP and an operator see: the HTTP API, signed notifications posted to the webhook, and
the PSP's own record and settlement file (reconciled by the settlement bucket's trigger).

The PSP side is a driver: :class:`SimulatorPsp` (the simulated PSP: refunds decided in the
workflow, disputes raised in its table) or :class:`FakeAdyenPsp` (the Adyen fake over HTTP: every
outcome arrives as a signed notification, which the model delivers itself, early, late, twice or
out of order).
"""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from payments_dev.local.client import ApiClient, Reply

#: the webhook key of the model's runtimes (hex, 32 bytes); the fake and the simulator sign with it
HMAC_KEY = "8D6F0B1E2A3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6"

#: Adyen's own table of decimals where it differs from ISO 4217 (../shared/specs/adyen/FACTS.md §6)
ADYEN_EXPONENT_DIFFERS = {"CLP": 2, "IDR": 0, "CVE": 0}
#: a currency whose Adyen exponent is disputed: refused on an Adyen stage
ADYEN_DISPUTED = {"ISK"}

_ALPHABET = string.ascii_lowercase

#: the simulated bank's own records in the bank bucket: the days it closed, the payout files it received
BANK_DAYS = "bank/days/"
BANK_RECEIVED = "bank/received/"


def fresh_id(prefix: str) -> str:
    """An identifier no other example uses; letters only after the prefix (never a digit run)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(14))


def wrap(item: dict[str, Any]) -> dict[str, Any]:
    """A signed item in Adyen's standard notification envelope."""
    return {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}


@dataclass
class Notification:
    """A signed notification the PSP sent, held by the model until it delivers it."""

    kind: str  # AUTHORISATION, REFUND, CHARGEBACK, CHARGEBACK_REVERSED, SECOND_CHARGEBACK
    ref: str  # the order (AUTHORISATION), the refund (REFUND) or the dispute it is about
    body: dict[str, Any]
    delivered: int = 0

    @property
    def item(self) -> dict[str, Any]:
        return dict(self.body["notificationItems"][0]["NotificationRequestItem"])


class PspDriver:
    name = ""
    is_adyen = False
    #: the tokens the model charges with (the contract's tokens, and the fake's "outcome unknown")
    tokens: tuple[str, ...] = ("tok_visa", "tok_chargeDeclined", "tok_refundFails")

    def psp_exponent(self, currency: str, iso: int) -> int:
        """Decimals of the PSP's amounts, as the model compares them (charges, modifications)."""
        return iso

    def wire_exponent(self, currency: str, iso: int) -> int:
        """Decimals the PSP writes its notifications and settlement in: amounts are drawn to fit them."""
        return self.psp_exponent(currency, iso)

    def start(self, runtime: Any) -> None: ...

    def stop(self) -> None: ...

    def raise_chargeback(self, order_id: str, amount_psp_minor: int) -> Notification:
        raise NotImplementedError

    def dispute_step(self, dispute: str, kind: str) -> Notification:
        raise NotImplementedError

    def drain(self) -> list[Notification]:
        """Notifications the PSP emitted by itself since the last call (held for the model)."""
        return []

    def refund_notification(self, refund_id: str) -> Notification | None:
        """The REFUND notification of a refund the PSP decided, once it did (None: not yet)."""
        for n in self.drain():
            if n.kind == "REFUND" and n.ref == refund_id:
                return n
        return None

    def day(self, day: str, order_ids: set[str]) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
        """What the PSP records for the day, for these orders: charges (order -> minor units at the
        PSP) and modifications (record type, order, minor units at the PSP)."""
        raise NotImplementedError

    def settle(self, day: str) -> str:
        raise NotImplementedError


class SimulatorPsp(PspDriver):
    name = "simulator"

    def _psp(self) -> Any:
        from payments.psp.simulator import SimulatedPsp

        return SimulatedPsp()

    def wire_exponent(self, currency: str, iso: int) -> int:
        """The simulator records ISO 4217 minor units but writes Adyen's formats (IDR with 0 decimals)."""
        from payments.psp.adyen_currencies import wire_exponent

        return wire_exponent(currency)

    def raise_chargeback(self, order_id: str, amount_psp_minor: int) -> Notification:
        item = self._psp().raise_chargeback(order_id, amount_psp_minor)
        return Notification("CHARGEBACK", item["pspReference"], wrap(item))

    def dispute_step(self, dispute: str, kind: str) -> Notification:
        psp = self._psp()
        item = psp.reverse_chargeback(dispute) if kind == "CHARGEBACK_REVERSED" else psp.second_chargeback(dispute)
        return Notification(kind, dispute, wrap(item))

    def refund_notification(self, refund_id: str) -> Notification | None:
        """The simulator decides a refund in its answer; its REFUND notification follows (late)."""
        item = self._psp().refund_notification(refund_id)
        return None if item is None else Notification("REFUND", refund_id, wrap(item))

    def day(self, day: str, order_ids: set[str]) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
        psp = self._psp()
        charges = {c["merchant_reference"]: int(c["amount_minor"]) for c in psp.charges_for_day(day)}
        mods = [
            (m["record_type"], m["merchant_reference"], int(m["amount_minor"])) for m in psp.modifications_for_day(day)
        ]
        return (
            {k: v for k, v in charges.items() if k in order_ids},
            [m for m in mods if m[1] in order_ids],
        )

    def settle(self, day: str) -> str:
        from payments.reconciliation.settlement import settle_day

        return settle_day(day)[0]


class FakeAdyenPsp(PspDriver):
    name = "adyen-fake"
    is_adyen = True
    tokens = ("tok_visa", "tok_chargeDeclined", "tok_refundFails", "tok_adyenReceived")

    def __init__(self) -> None:
        self.local: Any = None
        self._lock = threading.Lock()

    def psp_exponent(self, currency: str, iso: int) -> int:
        return ADYEN_EXPONENT_DIFFERS.get(currency, iso)

    def start(self, runtime: Any) -> None:
        from payments_dev.local.adyen_fake import LocalAdyen

        self.local = LocalAdyen(runtime)
        self.local.start()
        # the model is the fake's webhook sender: it holds every notification and delivers it itself,
        # early, late, twice or out of order, in an order hypothesis draws (and replays when shrinking)
        self.fake.stop_delivery()

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()

    @property
    def fake(self) -> Any:
        return self.local.fake

    def _payment(self, order_id: str) -> dict[str, Any]:
        with self.fake._lock:
            found = [p for p in self.fake.payments.values() if p["merchant_reference"] == order_id]
        if len(found) != 1:
            raise AssertionError(f"the fake holds {len(found)} payments for {order_id}")
        return dict(found[0])

    def raise_chargeback(self, order_id: str, amount_psp_minor: int) -> Notification:
        body = self.fake.chargeback(self._payment(order_id)["psp_reference"], amount_psp_minor)
        self._take(body)
        item = body["notificationItems"][0]["NotificationRequestItem"]
        return Notification("CHARGEBACK", item["pspReference"], body)

    def dispute_step(self, dispute: str, kind: str) -> Notification:
        step = self.fake.chargeback_reversed if kind == "CHARGEBACK_REVERSED" else self.fake.second_chargeback
        body = step(dispute)
        self._take(body)
        return Notification(kind, dispute, body)

    def _take(self, body: dict[str, Any]) -> None:
        """The model delivers this one itself: off the fake's queue."""
        with self.fake._lock:
            self.fake.notifications = [n for n in self.fake.notifications if n is not body]

    def drain(self) -> list[Notification]:
        with self.fake._lock:
            queue, self.fake.notifications = self.fake.notifications, []
        held = []
        for body in queue:
            item = body["notificationItems"][0]["NotificationRequestItem"]
            kind = item["eventCode"]
            held.append(Notification(kind, item["merchantReference"], body))
        return held

    def day(self, day: str, order_ids: set[str]) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
        charges = {c["merchant_reference"]: int(c["amount_minor"]) for c in self.fake.charges_for_day(day)}
        mods = [
            (m["record_type"], m["merchant_reference"], int(m["amount_minor"]))
            for m in self.fake.modifications_for_day(day)
        ]
        return (
            {k: v for k, v in charges.items() if k in order_ids},
            [m for m in mods if m[1] in order_ids],
        )

    def settle(self, day: str) -> str:
        return str(self.local.settle_day(day)[0])


DRIVERS: dict[str, Callable[[], PspDriver]] = {"simulator": SimulatorPsp, "adyen-fake": FakeAdyenPsp}


class System:
    """One local runtime on one PSP, and the public requests the model makes of it."""

    def __init__(self, psp: str):
        self.psp = DRIVERS[psp]()
        self.runtime: Any = None
        self.api: ApiClient | None = None
        self._saved_key: str | None = None

    def start(self) -> System:
        from payments_dev.local.runtime import LocalRuntime, free_port

        self._saved_key = os.environ.get("PAYMENTS_PSP_HMAC_KEY")
        os.environ["PAYMENTS_PSP_HMAC_KEY"] = HMAC_KEY
        self.runtime = LocalRuntime(port=free_port(), aws_port=free_port(), recovery_interval=2.0)
        self.psp.start(self.runtime)
        self.runtime.start()
        self.api = ApiClient(self.runtime.api_url)
        return self

    def stop(self) -> None:
        if self.runtime is not None:
            self.runtime.stop()
        self.psp.stop()
        if self._saved_key is None:
            os.environ.pop("PAYMENTS_PSP_HMAC_KEY", None)
        else:
            os.environ["PAYMENTS_PSP_HMAC_KEY"] = self._saved_key

    # --- the public API ---------------------------------------------------------------------
    @property
    def client(self) -> ApiClient:
        assert self.api is not None
        return self.api

    def pay(self, body: dict[str, Any], key: str) -> Reply:
        return self.client.pay(body, key)

    def payment(self, checkout_id: str) -> Reply:
        return self.client.payment(checkout_id)

    def refund(self, body: dict[str, Any], key: str) -> Reply:
        return self.client.request("POST", "/v1/refunds", body, {"Idempotency-Key": key})

    def get_refund(self, refund_id: str) -> Reply:
        return self.client.request("GET", f"/v1/refunds/{refund_id}")

    def wallet(self, seller: str) -> Reply:
        return self.client.wallet(seller)

    def trial_balance(self) -> Reply:
        return self.client.trial_balance()

    def notify(self, body: Any) -> Reply:
        return self.client.request("POST", "/v1/psp/notifications", raw=json.dumps(body).encode())

    def register_payout_account(self, seller: str, iban: str) -> Reply:
        body = {"iban": iban, "account_holder": "Model Seller Ltd", "currency": "EUR"}
        return self.client.request("PUT", f"/v1/sellers/{seller}/payout-account", body)

    def payout_account(self, seller: str) -> Reply:
        return self.client.request("GET", f"/v1/sellers/{seller}/payout-account")

    def payout(self, body: dict[str, Any], key: str) -> Reply:
        return self.client.request("POST", "/v1/payouts", body, {"Idempotency-Key": key})

    def get_payout(self, payout_id: str) -> Reply:
        return self.client.request("GET", f"/v1/payouts/{payout_id}")

    def report(self, key: str, timeout: float = 600.0) -> dict[str, Any]:
        """The reconciliation report of a settlement file just written (its old report deleted first). The
        day's file grows with every step of a long run and the reconciliation runs beside everything else the
        machine does: 60 s was exceeded on a loaded 2-core machine (load 10) after 650 steps, which failed the
        run with no money wrong. A report that never comes is still a failure, after 10 minutes."""
        from payments.kernel import aws
        from payments.kernel.config import settings

        s3 = aws.client("s3")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                body = s3.get_object(Bucket=settings().settlement_bucket, Key=f"reports/{key}.json")["Body"].read()
                return dict(json.loads(body))
            except s3.exceptions.NoSuchKey:
                time.sleep(0.2)
        raise AssertionError(f"no reconciliation report for {key} within {timeout}s")

    def settle_and_reconcile(self, day: str) -> dict[str, Any]:
        from payments.kernel import aws
        from payments.kernel.config import settings
        from payments.reconciliation.settlement import settlement_key

        aws.client("s3").delete_object(Bucket=settings().settlement_bucket, Key=f"reports/{settlement_key(day)}.json")
        key = self.psp.settle(day)
        return self.report(key)

    # --- the bank: the nightly payout run, the simulated bank's day closed -----------------------------
    def next_bank_day(self) -> date:
        """The first day the simulated bank has not closed, from today on: the bank books what it receives on
        it (days are closed in order, one after the other, by every example on this runtime)."""
        from payments.kernel import aws, clock
        from payments.kernel.config import settings

        listed = aws.client("s3").list_objects_v2(Bucket=settings().bank_bucket, Prefix=BANK_DAYS)
        closed = [date.fromisoformat(o["Key"][len(BANK_DAYS) : -len(".json")]) for o in listed.get("Contents", [])]
        today = clock.now().date()
        return max([today, *(d + timedelta(days=1) for d in closed)])

    def _bank_object(self, key: str) -> bytes | None:
        from payments.kernel import aws
        from payments.kernel.config import settings

        s3 = aws.client("s3")
        try:
            return bytes(s3.get_object(Bucket=settings().bank_bucket, Key=key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    def bank_report(self, key: str, timeout: float = 600.0) -> dict[str, Any]:
        """The bank reconciliation's report of a file under ``incoming/bank/`` (S3-triggered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self._bank_object(f"reports/{key}.json")
            if body is not None:
                return dict(json.loads(body))
            time.sleep(0.2)
        raise AssertionError(f"no bank reconciliation report for {key} within {timeout}s")

    def run_payouts(self, day: date, timeout: float = 600.0) -> dict[str, Any]:
        """The nightly payout run of ``day`` (``payments payouts run --date``), as the operator runs it
        locally; returns once the simulated bank answered each file it wrote and the answer was reconciled."""
        from payments.payouts.run import run_payouts

        answer = run_payouts(day)
        for file in answer["files"]:
            reply_key = self._bank_answer(str(file["msg_id"]), timeout)
            answer.setdefault("answers", []).append(self.bank_report(reply_key, timeout))
        return dict(answer)

    def _bank_answer(self, msg_id: str, timeout: float) -> str:
        """The key of the pain.002 the simulated bank answered the payout file ``msg_id`` with (S3-triggered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self._bank_object(f"{BANK_RECEIVED}{msg_id}.json")
            if body is not None and json.loads(body).get("reply_key"):
                return str(json.loads(body)["reply_key"])
            time.sleep(0.1)
        raise AssertionError(f"the simulated bank never answered the payout file {msg_id} within {timeout}s")

    def close_bank_day(self, day: date) -> dict[str, Any]:
        """``payments bank close-day --date``: the day's camt.053, and its reconciliation's report."""
        from payments.payouts import simulated_bank

        key, _ = simulated_bank.close_day(day)
        return self.bank_report(key)

    # --- faults -------------------------------------------------------------------------------
    @contextmanager
    def start_execution_fails(self, name: str) -> Iterator[list[str]]:
        """StartExecution of a workflow named ``name`` fails once, as Step Functions can
        (``ServiceUnavailable``), before anything starts."""
        from botocore.exceptions import ClientError

        from payments.kernel import aws

        failed: list[str] = []

        def hook(params: dict[str, Any], **_: Any) -> None:
            if params.get("name") == name and not failed:
                failed.append(name)
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": "injected by the money model"}},
                    "StartExecution",
                )

        events = aws.client("stepfunctions").meta.events
        events.register("provide-client-params.states.StartExecution", hook, unique_id="money-model-start")
        try:
            yield failed
        finally:
            events.unregister("provide-client-params.states.StartExecution", unique_id="money-model-start")
