"""A local fake of Adyen's Checkout API v72 (development only: never imported by deployed code).

It checks every request against Adyen's own OpenAPI document (``CheckoutService-v72.json`` from
``../shared/specs/adyen/``, read in place, never copied into the repository) with jsonschema
2020-12, and answers bodies that the same document describes (the tests validate them too).

Behaviour
    * ``X-API-Key`` and ``merchantAccount`` are checked (401 / 403 with Adyen's generic bodies);
    * idempotency as Adyen documents it: the same ``Idempotency-Key`` with the same request is
      answered with the first answer and never processed twice; while the first is still being
      processed: 409 ``errorCode 704`` with ``transient-error: true``; the same key with another
      request: 422 ``704`` without that header (Adyen does not document this case; FACTS.md §2);
    * the contract's test tokens as stored payment methods (``storedPaymentMethodId``):
      ``tok_chargeDeclined`` / ``tok_insufficientFunds`` are Refused (codes 2 / 12),
      ``tok_pspUnavailable`` fails its first two calls per key with a 503 before processing,
      ``tok_pspTimeout`` charges and loses the first answer (the connection closes unanswered),
      ``tok_refundFails`` charges and every refund of it fails in its REFUND notification, any
      other token is Authorised; Adyen-only outcomes have tokens of their own (:data:`RESULT_TOKENS`);
    * fault injection (:meth:`AdyenFake.inject`): ``error_before`` (500, nothing processed),
      ``error_after`` (processed, then 500), ``rate_limit`` (429), ``slow`` (processing takes
      ``slow_seconds``: a second request with the key meets the in-flight 704), ``lost``
      (processed, the connection closes unanswered), ``garbled`` (processed, a 200 that is not JSON);
      any other error answer is scripted with :meth:`AdyenFake.script`;
    * refunds, reversals and cancels answer 201 ``received``; every outcome is also queued as a
      standard notification signed with the HMAC key (:mod:`payments.psp.hmac`). Once
      :meth:`AdyenFake.start_delivery` is given the stage's webhook (``LocalAdyen`` does), the fake
      delivers them by itself on a thread of its own, as Adyen does, with Adyen's retries
      (:class:`Delivery`); without it they wait in ``notifications`` for :meth:`AdyenFake.deliver`;
    * amounts are Adyen's minor units by Adyen's table of decimals (IDR 0, CLP 2, CVE 0;
      :mod:`payments.psp.adyen_currencies`): a currency not in it, or whose decimals are disputed (ISK),
      is refused 422 ``137``; what it records, notifies and settles is in those units;
    * :meth:`AdyenFake.write_settlement` writes a day's Settlement Details Report with the
      simulator's writer (:func:`payments.reconciliation.adyen.write_report`), which writes Adyen's
      decimals.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from payments.kernel import clock
from payments.psp import adyen_currencies
from payments.psp import hmac as adyen_hmac
from payments.reconciliation import adyen as report

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT.parent / "shared" / "specs" / "adyen"
CHECKOUT_SPEC = SPEC_DIR / "CheckoutService-v72.json"
VERSION = "v72"

DECLINES = {
    "tok_chargeDeclined": ("Refused", "2"),
    "tok_insufficientFunds": ("Not enough balance", "12"),
}
UNAVAILABLE_TOKEN, UNAVAILABLE_CALLS = "tok_pspUnavailable", 2
TIMEOUT_TOKEN = "tok_pspTimeout"
REFUND_FAILS_TOKEN = "tok_refundFails"
#: tokens for the resultCodes the contract's tokens do not reach
RESULT_TOKENS = {
    "tok_adyenReceived": "Received",
    "tok_adyenPending": "Pending",
    "tok_adyenRedirect": "RedirectShopper",
    "tok_adyenIdentify": "IdentifyShopper",
    "tok_adyenChallenge": "ChallengeShopper",
    "tok_adyenPresent": "PresentToShopper",
    "tok_adyenPartial": "PartiallyAuthorised",
    "tok_adyenCancelled": "Cancelled",
    "tok_adyenError": "Error",
    "tok_adyenAuthenticationFinished": "AuthenticationFinished",
}
FAULTS = ("error_before", "error_after", "rate_limit", "slow", "lost", "garbled")
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


# --- the specification ------------------------------------------------------------------------
class CheckoutSpec:
    """Adyen's Checkout OpenAPI document as request and response validators (jsonschema 2020-12)."""

    def __init__(self, path: Path = CHECKOUT_SPEC):
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.document = json.loads(Path(path).read_text())
        self._registry = Registry().with_resource(
            "urn:adyen:checkout", Resource(contents=self.document, specification=DRAFT202012)
        )
        self._validator = Draft202012Validator
        self._templates = [(template, _template_regex(template)) for template in self.document["paths"]]
        self._cache: dict[str, Any] = {}

    def _validator_for(self, pointer: str) -> Any:
        if pointer not in self._cache:
            self._cache[pointer] = self._validator({"$ref": "urn:adyen:checkout" + pointer}, registry=self._registry)
        return self._cache[pointer]

    def template(self, path: str) -> str | None:
        for template, regex in self._templates:
            if regex.fullmatch(path):
                return template
        return None

    def errors(self, schema_name: str, instance: Any) -> list[str]:
        validator = self._validator_for(f"#/components/schemas/{schema_name}")
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:200]}"
            for e in validator.iter_errors(instance)
        ]

    def request_schema(self, method: str, template: str) -> str:
        operation = self.document["paths"][template][method.lower()]
        return operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    def response_schema(self, method: str, template: str, status: int) -> str:
        responses = self.document["paths"][template][method.lower()]["responses"]
        described = responses.get(str(status))
        if described is None or "content" not in described:
            return "ServiceError"  # every error body Adyen sends is a ServiceError
        return described["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        template = self.template(path)
        if template is None or method.lower() not in self.document["paths"][template]:
            return [f"{method} {path} is not an operation of Checkout {VERSION}"]
        return self.errors(self.request_schema(method, template), body)

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        template = self.template(path)
        if template is None:
            return [f"{path} is not a path of Checkout {VERSION}"]
        return self.errors(self.response_schema(method, template, status), body)


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))


@lru_cache(maxsize=1)
def checkout_spec() -> CheckoutSpec | None:
    """The spec if ``../shared/specs/adyen`` is there, else None (the fake then validates nothing)."""
    return CheckoutSpec() if CHECKOUT_SPEC.is_file() else None


# --- the fake ----------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    #: "lost": close the connection without an answer; "garbled": answer bytes that are not JSON
    transport: str | None = None


@dataclass
class _Key:
    fingerprint: str
    reply: Reply | None = None  # None while in flight


def _error(status: int, code: str, message: str, error_type: str, **headers: str) -> Reply:
    return Reply(
        status, {"status": status, "errorCode": code, "message": message, "errorType": error_type}, dict(headers)
    )


class AdyenFake:
    """Adyen's Checkout API in memory; :meth:`handle` is the whole API, :meth:`serve` puts it on HTTP."""

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key",
        merchant_account: str = "LocalMerchant",
        hmac_key: str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056",
        spec: CheckoutSpec | bool | None = True,
        slow_seconds: float = 0.5,
        calendar: Callable[[dict[str, Any]], str] | None = None,
    ):
        self.api_key = api_key
        self.merchant_account = merchant_account
        self.hmac_key = hmac_key
        self.spec: CheckoutSpec | None = checkout_spec() if spec is True else (spec or None)
        self.slow_seconds = slow_seconds
        self.calendar = calendar or (lambda payment: clock.now_iso())
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._calls: dict[str, int] = {}
        self._faults: list[tuple[str, str | None]] = []  # (fault, path suffix it applies to or None)
        self._scripted: list[Reply] = []  # answered before anything else, nothing processed
        self.payments: dict[str, dict[str, Any]] = {}  # pspReference -> payment
        #: pspReference -> a refund, reversal or cancel; "<dispute>#<event>" -> a step of a dispute
        self.modifications: dict[str, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []  # signed, not yet delivered
        self.delivered: list[dict[str, Any]] = []
        self.delivery: Delivery | None = None  # set by start_delivery: the fake then posts by itself
        #: (eventCode, merchantReference) -> the latest notification of it, delivered or not
        self.sent: dict[tuple[str, str], dict[str, Any]] = {}
        #: every request received, as (method, path, headers, body) with the headers lower-cased
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.invalid_requests: list[tuple[str, list[str]]] = []
        self._server: ThreadingHTTPServer | None = None
        #: operator requests under ``/_fake/`` (not Adyen's API): path, JSON body -> (status, JSON answer)
        self.admin: Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]] | None = None

    # --- test control ---------------------------------------------------------------------
    def inject(self, fault: str, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests (ending in ``path`` if given) meet ``fault``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.extend([(fault, path)] * times)

    def script(
        self, status: int, error_code: str, message: str = "scripted", error_type: str = "internal", **headers: str
    ) -> None:
        """The next request is answered with this ServiceError and not processed (an Adyen error
        the fake cannot otherwise produce: 502, 504, 703, a 500 'too many requests', ...)."""
        with self._lock:
            self._scripted.append(_error(status, error_code, message, error_type, **headers))

    def _take_fault(self, path: str) -> str | None:
        with self._lock:
            for i, (fault, suffix) in enumerate(self._faults):
                if suffix is None or path.endswith(suffix):
                    del self._faults[i]
                    return fault
        return None

    def charges(self) -> list[dict[str, Any]]:
        """Every authorised (captured) payment: what Adyen would settle. A payment answered Received or
        Pending is authorised by its AUTHORISATION notification (success unless declined) and settled too."""
        with self._lock:
            return [
                dict(p)
                for p in self.payments.values()
                if p["result_code"] == "Authorised"
                or (p["result_code"] in ("Received", "Pending") and p["token"] not in DECLINES)
            ]

    def refunds(self) -> list[dict[str, Any]]:
        """Every refund received, as ``payments verify`` reads a PSP's refunds: ``merchant_reference``
        (our refund_id), ``psp_reference``, ``succeeded`` (what its REFUND notification says)."""
        with self._lock:
            return [
                {"merchant_reference": m["body"].get("reference", ""), "psp_reference": ref, "succeeded": m["success"]}
                for ref, m in self.modifications.items()
                if m["operation"] == "refunds"
            ]

    # --- the API -----------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return _error(400, "702", "Unexpected input: not JSON", "validation")
        with self._lock:
            self.requests.append((method, path, headers, body))
        with self._lock:
            scripted = self._scripted.pop(0) if self._scripted else None
        if scripted is not None:
            return scripted
        if headers.get("x-api-key") != self.api_key:
            return _error(401, "000", "HTTP Status Response - Unauthorized", "security")
        if not path.startswith(f"/{VERSION}/"):
            return _error(404, "000", f"not a Checkout {VERSION} path", "validation")
        api_path = path[len(VERSION) + 1 :]
        if self.spec is not None:
            problems = self.spec.request_errors(method, api_path, body)
            if problems:
                with self._lock:
                    self.invalid_requests.append((f"{method} {api_path}", problems))
                return _error(
                    422, "14_000", "Request does not match Checkout v72: " + "; ".join(problems)[:500], "validation"
                )
        if not isinstance(body, dict) or body.get("merchantAccount") != self.merchant_account:
            return _error(403, "901", "Invalid Merchant Account", "security")
        route = self._route(method, api_path)
        if route is None:
            return _error(404, "000", f"{method} {api_path} is not served by the fake", "validation")
        operation, psp_reference = route

        key = headers.get("idempotency-key")
        fingerprint = hashlib.sha256(
            f"{method} {api_path} ".encode() + json.dumps(body, sort_keys=True).encode()
        ).hexdigest()
        fault = self._take_fault(api_path)
        if key:
            with self._lock:
                seen = self._keys.get(key)
                if seen is not None:
                    if seen.fingerprint != fingerprint:
                        return _error(422, "704", "request already processed or in progress", "validation")
                    if seen.reply is None:
                        return _error(
                            409,
                            "704",
                            "request already processed or in progress",
                            "validation",
                            **{"transient-error": "true"},
                        )
                    return _replayed(seen.reply, key)
                self._calls[key] = calls = self._calls.get(key, 0) + 1
        else:
            calls = 1
        if fault == "error_before":
            return _error(500, "000", "Internal error (nothing processed)", "internal")
        if fault == "rate_limit":
            return _error(429, "000", "Too many requests", "internal")
        token = ((body.get("paymentMethod") or {}).get("storedPaymentMethodId")) if operation == "payments" else None
        if token == UNAVAILABLE_TOKEN and calls <= UNAVAILABLE_CALLS:
            return _error(503, "000", f"Service unavailable (call {calls} of {UNAVAILABLE_CALLS} failing)", "internal")
        if key:
            with self._lock:
                if key in self._keys:  # a racing request with the key got in first
                    return _error(
                        409,
                        "704",
                        "request already processed or in progress",
                        "validation",
                        **{"transient-error": "true"},
                    )
                self._keys[key] = _Key(fingerprint)
        try:
            if fault == "slow":
                time.sleep(self.slow_seconds)
            reply = self._process(operation, psp_reference, body)
        except BaseException:
            if key:
                with self._lock:
                    self._keys.pop(key, None)
            raise
        if key:
            with self._lock:
                if reply.status >= 400:
                    self._keys.pop(key, None)  # a validation error is not stored: nothing was processed
                else:
                    self._keys[key].reply = reply
        reply = Reply(reply.status, reply.body, {**reply.headers, **({"Idempotency-Key": key} if key else {})})
        if fault == "error_after":
            return _error(500, "000", "Internal error", "internal")
        if fault == "lost" or (token == TIMEOUT_TOKEN and calls == 1):
            return Reply(reply.status, reply.body, reply.headers, transport="lost")
        if fault == "garbled":
            return Reply(reply.status, reply.body, reply.headers, transport="garbled")
        return reply

    @staticmethod
    def _route(method: str, api_path: str) -> tuple[str, str | None] | None:
        if method != "POST":
            return None
        if api_path == "/payments":
            return "payments", None
        match = re.fullmatch(r"/payments/([^/]+)/(refunds|reversals|cancels)", api_path)
        if match:
            return match.group(2), match.group(1)
        return None

    def _process(self, operation: str, psp_reference: str | None, body: dict[str, Any]) -> Reply:
        if operation == "payments":
            return self._payment(body)
        return self._modification(operation, psp_reference or "", body)

    def _payment(self, body: dict[str, Any]) -> Reply:
        method = body["paymentMethod"]
        token = method.get("storedPaymentMethodId")
        if not token:
            return _error(
                422, "14_001", "the fake charges stored payment methods (storedPaymentMethodId) only", "validation"
            )
        if not body.get("shopperReference"):
            return _error(422, "14_002", "shopperReference is required with a storedPaymentMethodId", "validation")
        if not body.get("recurringProcessingModel"):
            return _error(
                422, "14_003", "recurringProcessingModel is required with a storedPaymentMethodId", "validation"
            )
        amount = body["amount"]
        if amount["currency"] not in adyen_currencies.ADYEN_DECIMALS or amount["value"] <= 0:
            return _error(422, "137", "Invalid amount specified", "validation")
        psp_reference = _psp_reference()
        result_code = "Refused" if token in DECLINES else RESULT_TOKENS.get(token, "Authorised")
        brand = _brand(token)
        answer: dict[str, Any] = {
            "pspReference": psp_reference,
            "resultCode": result_code,
            "merchantReference": body["reference"],
            "amount": dict(amount),
            "paymentMethod": {"type": "scheme", "brand": brand},
            "additionalData": {"paymentMethod": brand},
        }
        if token in DECLINES:
            answer["refusalReason"], answer["refusalReasonCode"] = DECLINES[token]
        elif result_code == "Error":
            answer["refusalReason"], answer["refusalReasonCode"] = "Acquirer Error", "4"
        elif result_code == "PartiallyAuthorised":
            answer["amount"] = {"currency": amount["currency"], "value": amount["value"] // 2}
        elif result_code == "RedirectShopper":
            answer["action"] = {
                "type": "redirect",
                "paymentMethodType": "scheme",
                "method": "GET",
                "url": "https://checkoutshopper-test.adyen.com/redirect",
            }
        elif result_code in ("IdentifyShopper", "ChallengeShopper"):
            subtype = "fingerprint" if result_code == "IdentifyShopper" else "challenge"
            answer["action"] = {
                "type": "threeDS2",
                "subtype": subtype,
                "paymentMethodType": "scheme",
                "token": secrets.token_urlsafe(16),
            }
        payment = {
            "psp_reference": psp_reference,
            "merchant_reference": body["reference"],
            "merchant_account": body["merchantAccount"],
            "amount_minor": int(amount["value"]),
            "currency": amount["currency"],
            "token": token,
            "shopper_reference": body["shopperReference"],
            "result_code": result_code,
            "payment_method": brand,
            "refunded_minor": 0,
        }
        payment["charged_at"] = self.calendar(payment)
        with self._lock:
            self.payments[psp_reference] = payment
        if result_code in ("Authorised", "Refused", "Error", "Received", "Pending"):
            success = result_code == "Authorised" or (result_code in ("Received", "Pending") and token not in DECLINES)
            reason = (
                answer.get("refusalReason", "") if not success else f"{secrets.randbelow(900000) + 100000}:1111:03/2030"
            )
            self._notify("AUTHORISATION", psp_reference, None, body["reference"], amount, success, reason, brand)
        return Reply(200, answer, {"pspReference": psp_reference})

    def _modification(self, operation: str, payment_reference: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            payment = self.payments.get(payment_reference)
        if payment is None or payment["result_code"] not in (
            "Authorised",
            "PartiallyAuthorised",
            "Received",
            "Pending",
        ):
            return _error(422, "167", "Original pspReference required for this operation", "validation")
        psp_reference = _psp_reference()
        answer: dict[str, Any] = {
            "merchantAccount": body["merchantAccount"],
            "paymentPspReference": payment_reference,
            "pspReference": psp_reference,
            "status": "received",
        }
        if body.get("reference"):
            answer["reference"] = body["reference"]
        if operation == "refunds":
            amount = body["amount"]
            answer["amount"] = dict(amount)
            with self._lock:
                ok = (
                    payment["token"] != REFUND_FAILS_TOKEN
                    and amount["currency"] == payment["currency"]
                    and payment["refunded_minor"] + amount["value"] <= payment["amount_minor"]
                )
                if ok:
                    payment["refunded_minor"] += amount["value"]
            event, notify_amount, reason = (
                "REFUND",
                amount,
                "" if ok else "Refund failed at the fake (declined by the scheme)",
            )
        else:
            ok = True
            event = {"reversals": "CANCEL_OR_REFUND", "cancels": "CANCELLATION"}[operation]
            notify_amount, reason = {"currency": payment["currency"], "value": payment["amount_minor"]}, ""
        with self._lock:
            self.modifications[psp_reference] = {
                "operation": operation,
                "payment": payment_reference,
                "body": body,
                "success": ok,
                "at": clock.now_iso(),
            }
        self._notify(
            event,
            psp_reference,
            payment_reference,
            body.get("reference") or payment["merchant_reference"],
            notify_amount,
            ok,
            reason,
            payment["payment_method"],
        )
        return Reply(201, answer, {"pspReference": psp_reference})

    # --- notifications ---------------------------------------------------------------------------
    def _notify(
        self,
        event: str,
        psp_reference: str,
        original_reference: str | None,
        merchant_reference: str,
        amount: dict[str, Any],
        success: bool,
        reason: str,
        payment_method: str,
    ) -> dict[str, Any]:
        """Queue the signed notification of an event (delivered by :class:`Delivery` once started) and return it."""
        item: dict[str, Any] = {
            "amount": {"currency": amount["currency"], "value": int(amount["value"])},
            "eventCode": event,
            "eventDate": clock.now().astimezone().isoformat(timespec="seconds"),
            "merchantAccountCode": self.merchant_account,
            "merchantReference": merchant_reference,
            "pspReference": psp_reference,
            "paymentMethod": payment_method,
            "reason": reason,
            "success": "true" if success else "false",
        }
        if original_reference:
            item["originalReference"] = original_reference
        body = self.notification(item)
        with self._lock:
            self.notifications.append(body)
            self.sent[(event, merchant_reference)] = body
        if self.delivery is not None:
            self.delivery.wake()
        return body

    def notification(self, item: dict[str, Any]) -> dict[str, Any]:
        """A standard notification body carrying the item, signed with the fake's HMAC key."""
        return {
            "live": "false",
            "notificationItems": [{"NotificationRequestItem": adyen_hmac.signed(item, self.hmac_key)}],
        }

    def chargeback(self, psp_reference: str, amount_minor: int | None = None) -> dict[str, Any]:
        """Queue a CHARGEBACK notification for an authorised payment (``amount_minor`` omitted: all of
        it). Its pspReference is the dispute's reference, which every later step of the dispute keeps
        (Adyen's dispute examples: one pspReference from NOTIFICATION_OF_CHARGEBACK to SECOND_CHARGEBACK)."""
        with self._lock:
            payment = self.payments[psp_reference]
        value = payment["amount_minor"] if amount_minor is None else amount_minor
        dispute = _psp_reference()
        return self._dispute_event("CHARGEBACK", dispute, psp_reference, value)

    def chargeback_reversed(self, dispute_reference: str) -> dict[str, Any]:
        """Queue the dispute's CHARGEBACK_REVERSED (the defence won): same pspReference, no originalReference."""
        return self._dispute_step("CHARGEBACK_REVERSED", dispute_reference, after="CHARGEBACK")

    def second_chargeback(self, dispute_reference: str) -> dict[str, Any]:
        """Queue the dispute's SECOND_CHARGEBACK (the defence lost after all): same pspReference, no
        originalReference, the amount reversed."""
        return self._dispute_step("SECOND_CHARGEBACK", dispute_reference, after="CHARGEBACK_REVERSED")

    def _dispute_step(self, event: str, dispute_reference: str, *, after: str) -> dict[str, Any]:
        with self._lock:
            before = self.modifications.get(f"{dispute_reference}#{after}")
        if before is None:
            raise ValueError(f"dispute {dispute_reference} has no {after}: no {event}")
        return self._dispute_event(
            event, dispute_reference, before["payment"], int(before["body"]["amount"]["value"]), original=False
        )

    def _dispute_event(
        self, event: str, dispute: str, payment_reference: str, value: int, *, original: bool = True
    ) -> dict[str, Any]:
        with self._lock:
            payment = self.payments[payment_reference]
            self.modifications[f"{dispute}#{event}"] = {
                "operation": event.lower(),
                "reference": dispute,
                "payment": payment_reference,
                "body": {"amount": {"currency": payment["currency"], "value": value}},
                "success": True,
                "at": clock.now_iso(),
            }
        return self._notify(  # (the delivery thread may have taken it from ``notifications`` already)
            event,
            dispute,
            payment_reference if original else None,
            payment["merchant_reference"],
            {"currency": payment["currency"], "value": value},
            True,
            "Fraudulent transaction (fake)",
            payment["payment_method"],
        )

    def deliver(self, url: str, timeout: float = 10.0) -> int:
        """POST every queued notification to ``url``; those answered 2xx leave the queue. Returns how many."""
        delivered = 0
        with self._lock:
            queue, self.notifications = self.notifications, []
        kept: list[dict[str, Any]] = []
        for body in queue:
            request = urllib.request.Request(
                url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    ok = 200 <= response.status < 300
            except OSError:
                ok = False
            if ok:
                delivered += 1
                self.delivered.append(body)
            else:
                kept.append(body)  # Adyen retries later: it stays queued
        with self._lock:
            self.notifications = kept + self.notifications
        return delivered

    def start_delivery(self, url: str, **options: Any) -> Delivery:
        """From now on, post every notification to ``url`` by itself, as Adyen does (:class:`Delivery`;
        ``options`` are its switches: ``time_scale``, ``duplicate``, ``reorder``, ``seed``, ...)."""
        if self.delivery is not None:
            self.delivery.stop()
        self.delivery = Delivery(self, url, **options)
        self.delivery.start()
        return self.delivery

    def stop_delivery(self) -> None:
        if self.delivery is not None:
            self.delivery.stop()
            self.delivery = None

    # --- settlement ------------------------------------------------------------------------------
    def charges_for_day(self, day: str) -> Iterator[dict[str, Any]]:
        for charge in sorted(self.charges(), key=lambda c: (c["charged_at"], c["psp_reference"])):
            if clock.day_of(charge["charged_at"]) == day:
                yield charge

    def modifications_for_day(self, day: str) -> Iterator[dict[str, Any]]:
        """The day's successful refunds, chargebacks, reversals and second chargebacks, as the simulator lists its own
        (:meth:`payments.psp.simulator.SimulatedPsp.modifications_for_day`)."""
        types = {
            "refunds": "Refunded",
            "chargeback": "Chargeback",
            "chargeback_reversed": "ChargebackReversed",
            "second_chargeback": "SecondChargeback",
        }
        with self._lock:
            found = [
                (reference, dict(m), dict(self.payments[m["payment"]])) for reference, m in self.modifications.items()
            ]
        for reference, m, payment in sorted(
            found, key=lambda f: f[1]["at"]
        ):  # stable: one millisecond keeps the order they happened in
            if m["operation"] in types and m["success"] and clock.day_of(m["at"]) == day:
                yield {
                    "record_type": types[m["operation"]],
                    "psp_reference": m["payment"],
                    "modification_reference": m.get("reference", reference),
                    "merchant_reference": payment["merchant_reference"],
                    "modification_merchant_reference": m["body"].get("reference", "")
                    if m["operation"] == "refunds"
                    else "",
                    "merchant_account": self.merchant_account,
                    "payment_method": payment["payment_method"],
                    "amount_minor": int(m["body"]["amount"]["value"]),
                    "currency": m["body"]["amount"]["currency"],
                    "at": m["at"],
                }

    def write_settlement(self, day: str, out: report.Writable) -> int:
        """The day's Settlement Details Report (the simulator's writer, which takes our ISO 4217 minor
        units and writes Adyen's decimals; the fake records Adyen's minor units): returns the rows written."""
        charges, modifications = map(_ours, self.charges_for_day(day)), map(_ours, self.modifications_for_day(day))
        return report.write_report(charges, day, out, modifications)

    # --- HTTP ---------------------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a thread; returns the Checkout base URL (``http://host:port/v72``)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server names the handler so
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/_fake/") and fake.admin is not None:
                    try:
                        status, answer = fake.admin(self.path, json.loads(raw or b"{}"))
                    except Exception as err:  # noqa: BLE001 - an operator's request: say what failed
                        status, answer = 500, {"error": f"{type(err).__name__}: {err}"}
                    reply = Reply(status, answer)
                else:
                    reply = fake.handle("POST", self.path, dict(self.headers.items()), raw)
                if reply.transport == "lost":
                    self.close_connection = True
                    return  # no status line: the client sees the connection closed unanswered
                payload = b"<html>502 Bad Gateway" if reply.transport == "garbled" else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header(
                        "Content-Type", "application/json" if reply.transport != "garbled" else "text/html"
                    )
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (its read timeout)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="adyen-fake", daemon=True).start()
        bound_host, bound_port = self._server.server_address[:2]
        return f"http://{bound_host}:{bound_port}/{VERSION}"

    def close(self) -> None:
        self.stop_delivery()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _ours(record: dict[str, Any]) -> dict[str, Any]:
    """A record of the fake (``amount_minor`` in Adyen's minor units) in our ISO 4217 minor units."""
    money = adyen_currencies.from_adyen_minor(int(record["amount_minor"]), record["currency"])
    return {**record, "amount_minor": money.minor}


def _replayed(reply: Reply, key: str) -> Reply:
    return Reply(reply.status, reply.body, {**reply.headers, "Idempotency-Key": key})


def _psp_reference() -> str:
    return "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(16))


def _brand(token: str) -> str:
    for brand in ("visa", "mastercard", "amex"):
        if brand in token.lower():
            return brand
    return "visa"


# --- delivering notifications as Adyen does --------------------------------------------------------
#: Adyen's delivery of standard webhooks (FACTS.md §3, from docs.adyen.com/development-resources/webhooks/
#: troubleshoot and the Webhooks-v1 responses): a notification is accepted by any 2xx answered within
#: 10 s (the body ``[accepted]`` is the older rule, still answered by our webhook); otherwise it is retried
#: 3 times at once, then from the endpoint's retry queue for up to 30 days at 2 min, 5, 10, 15, 30 min,
#: 1 h, 2 h, 4 h, 8 h, ... Only the queue's earliest notification is retried until it is accepted, so it
#: holds back those behind it. Reading the listed times as the waits between successive retries, and
#: "..." as 8 h from then on, is this fake's inference.
ACK_TIMEOUT_SECONDS = 10.0
IMMEDIATE_RETRIES = 3
RETRY_DELAYS_SECONDS = (120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)
RETRY_FOR_SECONDS = 30 * 86400


@dataclass
class _Queued:
    body: dict[str, Any]
    first_at: float
    retries: int = 0
    due: float = 0.0


@dataclass
class Attempt:
    """One POST of a notification to the webhook: what the fake saw."""

    event: str
    psp_reference: str
    status: int | None  # None: no answer (refused connection, timeout)
    accepted: bool
    kind: str  # "first", "immediate retry", "queued retry", "duplicate"


class Delivery:
    """The fake's webhook sender: a thread that posts every notification the fake queues to ``url``,
    with Adyen's retries (:data:`RETRY_DELAYS_SECONDS`, multiplied by ``time_scale`` so that local runs
    and tests do not wait minutes: 0.001 turns 2 min into 0.12 s; the 10 s acknowledgement timeout is
    not scaled).

    Adyen delivers at least once and in no guaranteed order; the switches make that happen on purpose:
    ``duplicate`` (a share of the accepted notifications is posted once more) and ``reorder`` (a share
    is held back and posted after the next one, or after ``hold_seconds`` when none follows), drawn from
    ``random.Random(seed)``."""

    def __init__(
        self,
        fake: AdyenFake,
        url: str,
        *,
        time_scale: float = 1.0,
        timeout: float = ACK_TIMEOUT_SECONDS,
        duplicate: float = 0.0,
        reorder: float = 0.0,
        hold_seconds: float = 0.5,
        seed: int = 0,
    ):
        import random

        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the webhook URL {url!r} is not http(s)")
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.fake, self.url = fake, url
        self.time_scale, self.timeout = time_scale, timeout
        self.duplicate, self.reorder, self.hold_seconds = duplicate, reorder, hold_seconds
        self._rng = random.Random(seed)
        self.retry_queue: list[_Queued] = []  # the endpoint's retry queue: only its head is retried
        self.attempts: list[Attempt] = []
        self.given_up: list[dict[str, Any]] = []  # not accepted within 30 days (scaled)
        self._held: tuple[dict[str, Any], float] | None = None  # (body, post by then): reordered
        self._busy = False  # the thread is at work (what it took may be in no list for a moment)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="adyen-fake-webhooks", daemon=True)

    # --- control -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout + 5)

    def wake(self) -> None:
        self._wake.set()

    def idle(self) -> bool:
        """Nothing left to post: every notification so far was accepted (or given up after 30 days)."""
        with self.fake._lock:
            waiting = bool(self.fake.notifications)
        with self._lock:
            return not (waiting or self.retry_queue or self._held or self._busy)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            time.sleep(0.02)
        return self.idle()

    # --- the thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                self._busy = True
            try:
                self._post_new()
                self._release_held(force=False)
                self._retry_due()
            except Exception as err:  # noqa: BLE001 - the sender must outlive a bug in one post
                print(f"adyen fake: webhook delivery failed: {type(err).__name__}: {err}")
            finally:
                with self._lock:
                    self._busy = False

    def _next_wait(self) -> float | None:
        now = time.monotonic()
        with self._lock:
            dues = [q.due for q in self.retry_queue[:1]] + ([self._held[1]] if self._held else [])
        return max(0.0, min(dues) - now) if dues else None

    def _post_new(self) -> None:
        with self.fake._lock:
            new, self.fake.notifications = self.fake.notifications, []
        for body in new:
            if self.reorder and self._held is None and self._rng.random() < self.reorder:
                with self._lock:
                    self._held = (body, time.monotonic() + self.hold_seconds)
                continue
            self._first_delivery(body)
            self._release_held(force=True)  # a held one goes after the one that followed it

    def _release_held(self, *, force: bool) -> None:
        with self._lock:
            held = self._held
            if held is None or (not force and time.monotonic() < held[1]):
                return
            self._held = None
        self._first_delivery(held[0])

    def _first_delivery(self, body: dict[str, Any]) -> None:
        """Posted at once, then retried at once ``IMMEDIATE_RETRIES`` times; then it joins the retry queue."""
        for attempt in range(1 + IMMEDIATE_RETRIES):
            if self._post(body, "first" if attempt == 0 else "immediate retry"):
                self._accepted(body)
                return
        now = time.monotonic()
        with self._lock:
            self.retry_queue.append(_Queued(body, now, 0, now + self._delay(0)))

    def _retry_due(self) -> None:
        """The queue's head, when its time has come; once it is accepted, the ones behind it follow at once."""
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                head = self.retry_queue[0] if self.retry_queue else None
                if head is None or head.due > now:
                    return
            if self._post(head.body, "queued retry"):
                with self._lock:
                    self.retry_queue.pop(0)
                    if self.retry_queue:
                        self.retry_queue[0].due = now
                self._accepted(head.body)
                continue
            head.retries += 1
            if now - head.first_at >= RETRY_FOR_SECONDS * self.time_scale:
                with self._lock:
                    self.retry_queue.pop(0)
                    self.given_up.append(head.body)
                    if self.retry_queue:
                        self.retry_queue[0].due = now
                continue
            head.due = now + self._delay(head.retries)
            return

    def _delay(self, retries: int) -> float:
        return RETRY_DELAYS_SECONDS[min(retries, len(RETRY_DELAYS_SECONDS) - 1)] * self.time_scale

    def _accepted(self, body: dict[str, Any]) -> None:
        with self.fake._lock:
            self.fake.delivered.append(body)
        if self.duplicate and self._rng.random() < self.duplicate:
            self._post(body, "duplicate")  # at least once: Adyen may deliver an accepted one again

    def _post(self, body: dict[str, Any], kind: str) -> bool:
        item = body["notificationItems"][0]["NotificationRequestItem"]
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        status: int | None = None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # http(s): checked in __init__
                status = response.status
                response.read()
        except urllib.error.HTTPError as err:
            status = err.code
        except OSError:
            status = None  # refused, reset or timed out: no acknowledgement
        accepted = status is not None and 200 <= status < 300
        with self._lock:
            self.attempts.append(Attempt(item["eventCode"], item["pspReference"], status, accepted, kind))
        return accepted


class FakeRecord:
    """The fake's own record of refunds and disputes, under the names the chaos harness's money-back
    phase (:mod:`payments_dev.chaos.money_back`) asks a PSP for (the simulator's): what the PSP decided,
    the notifications it sent, and the disputes it raised (each one's notifications queued, so the
    fake delivers them by itself too)."""

    def __init__(self, fake: AdyenFake):
        self.fake = fake

    def webhook_key(self) -> str:
        return self.fake.hmac_key

    @staticmethod
    def _item(body: dict[str, Any]) -> dict[str, Any]:
        return dict(body["notificationItems"][0]["NotificationRequestItem"])

    def _refund(self, refund_id: str) -> tuple[str, dict[str, Any]] | None:
        with self.fake._lock:
            for reference, m in self.fake.modifications.items():
                if m["operation"] == "refunds" and m["body"].get("reference") == refund_id:
                    return reference, dict(m)
        return None

    def lookup_refund(self, refund_id: str) -> dict[str, Any] | None:
        found = self._refund(refund_id)
        if found is None:
            return None
        reference, m = found
        return {"psp_reference": reference, "succeeded": bool(m["success"]), "at": m["at"]}

    def all_charges(self) -> list[dict[str, Any]]:
        return self.fake.charges()

    def all_refunds(self) -> list[dict[str, Any]]:
        """Every refund the fake decided, as the simulator lists its own: keyed by our refund_id."""
        with self.fake._lock:
            found = [(reference, dict(m)) for reference, m in self.fake.modifications.items()]
        return [
            {
                "merchant_reference": m["body"].get("reference", ""),
                "psp_reference": reference,
                "succeeded": m["success"],
            }
            for reference, m in found
            if m["operation"] == "refunds"
        ]

    def refund_notification(self, refund_id: str) -> dict[str, Any] | None:
        """The REFUND notification the fake sent for a refund it decided (None: it never saw the refund)."""
        with self.fake._lock:
            body = self.fake.sent.get(("REFUND", refund_id))
        return None if body is None else self._item(body)

    def raise_chargeback(self, payment_order_id: str, amount_minor: int | None = None) -> dict[str, Any]:
        with self.fake._lock:
            payment = next(
                (
                    p
                    for p in self.fake.payments.values()
                    if p["merchant_reference"] == payment_order_id and p["result_code"] == "Authorised"
                ),
                None,
            )
        if payment is None:
            raise ValueError(f"no authorised payment for {payment_order_id} at the fake")
        return self._item(self.fake.chargeback(payment["psp_reference"], amount_minor))

    def reverse_chargeback(self, dispute_reference: str) -> dict[str, Any]:
        return self._item(self.fake.chargeback_reversed(dispute_reference))

    def second_chargeback(self, dispute_reference: str) -> dict[str, Any]:
        return self._item(self.fake.second_chargeback(dispute_reference))

    def disputes(self) -> Iterator[dict[str, Any]]:
        """Each dispute as the simulator lists its own: its payment order, amount and the times of its steps."""
        with self.fake._lock:
            steps = {key: dict(m) for key, m in self.fake.modifications.items() if "#" in key}
            payments = {reference: dict(p) for reference, p in self.fake.payments.items()}
        for key, m in sorted(steps.items()):
            dispute, event = key.split("#", 1)
            if event != "CHARGEBACK":
                continue
            found: dict[str, Any] = {
                "dispute_reference": dispute,
                "payment_order_id": payments[m["payment"]]["merchant_reference"],
                "amount_minor": int(m["body"]["amount"]["value"]),
                "currency": m["body"]["amount"]["currency"],
                "charged_back_at": m["at"],
            }
            for step, at in (("CHARGEBACK_REVERSED", "reversed_at"), ("SECOND_CHARGEBACK", "second_at")):
                if f"{dispute}#{step}" in steps:
                    found[at] = steps[f"{dispute}#{step}"]["at"]
            yield found

    def wait_delivered(self, timeout: float) -> bool:
        """Wait until every notification the fake queued was accepted by the webhook (True), or ``timeout``."""
        delivery = self.fake.delivery
        return True if delivery is None else delivery.wait_idle(timeout)


# --- beside the local runtime (payments serve / demo --psp adyen-fake) ---------------------------
class LocalAdyen:
    """The fake on a local port, and the runtime's settings pointing the Adyen adapter at it.

    :meth:`start` before ``LocalRuntime.start`` (the runtime exports its settings to the
    environment the in-process functions read): the executor then charges through
    :class:`payments.psp.adyen.AdyenPsp` over HTTP, exactly as a deployed stage would.
    """

    API_KEY = "local-adyen-api-key"
    RETURN_URL = "https://localhost/checkout/return"

    #: Adyen's webhook retry schedule is multiplied by this locally (``PAYMENTS_ADYEN_FAKE_RETRY_SCALE``):
    #: a 2-minute retry comes after 1.2 s, an 8-hour one after under 5 minutes
    RETRY_SCALE = 0.01

    def __init__(self, runtime: Any, host: str = "127.0.0.1", port: int = 0, **delivery: Any):
        import os

        self.runtime = runtime
        self.host, self.port = host, port
        # the stage's own merchant account and webhook key (the runtime's), so that its webhook accepts the fake's posts
        self.fake = AdyenFake(
            api_key=self.API_KEY,
            merchant_account=runtime.settings.payments_psp_merchant_account,
            hmac_key=runtime.settings.payments_psp_hmac_key,
        )
        self.delivery_options: dict[str, Any] = {
            "time_scale": float(os.environ.get("PAYMENTS_ADYEN_FAKE_RETRY_SCALE") or self.RETRY_SCALE),
            **delivery,
        }
        self.base_url = ""
        self._environment: dict[str, str] = {}

    def start(self) -> str:
        import os

        self.fake.admin = self._admin
        self.base_url = self.fake.serve(self.host, self.port)
        self.fake.start_delivery(self.webhook_url, **self.delivery_options)
        self.runtime.started_hooks.append(self.register)
        self._environment = {
            "ADYEN_API_KEY": self.API_KEY,
            "ADYEN_MERCHANT_ACCOUNT": self.fake.merchant_account,
            "ADYEN_BASE_URL": self.base_url,
            "ADYEN_RETURN_URL": self.RETURN_URL,
            "ADYEN_ENVIRONMENT": "test",
        }
        os.environ.update(self._environment)
        self.runtime.settings = self.runtime.settings.model_copy(update={"payments_psp": "adyen", "psp_name": "adyen"})
        if self.fake.spec is None:
            print(f"warning: {CHECKOUT_SPEC} not found: the Adyen fake does not validate requests")
        return self.base_url

    @property
    def webhook_url(self) -> str:
        """The stage's webhook, where the fake posts its notifications by itself."""
        return f"{self.runtime.api_url}/v1/psp/notifications"

    def charges(self) -> list[dict[str, Any]]:
        return self.fake.charges()

    def refunds(self) -> list[dict[str, Any]]:
        return self.fake.refunds()

    def record(self) -> FakeRecord:
        """The fake's refunds and disputes, for the chaos harness's money-back phase."""
        return FakeRecord(self.fake)

    def _admin(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /_fake/settle {"date": "YYYY-MM-DD"}`` writes that day's report (default: today);
        ``POST /_fake/deliver {"url": ...}`` posts the queued signed notifications there."""
        if path == "/_fake/settle":
            day = body.get("date") or clock.now().date().isoformat()
            key, rows = self.settle_day(day)
            return 200, {"key": key, "rows": rows}
        if path == "/_fake/deliver":
            return 200, {"delivered": self.fake.deliver(body["url"]), "queued": len(self.fake.notifications)}
        if path in self.DISPUTE_PATHS:
            return self._dispute(path, body)
        return 404, {"error": f"unknown operator path {path}"}

    #: ``payments psp chargeback`` and its steps on a runtime that runs the fake: the fake raises the dispute
    #: step and delivers its notification to the stage's webhook by itself, as Adyen does
    DISPUTE_PATHS = ("/_fake/chargeback", "/_fake/chargeback-reversed", "/_fake/second-chargeback")

    def _dispute(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``/_fake/chargeback {"payment_order_id", "amount"?}`` (a decimal string in the order's currency;
        omitted: all of it), ``/_fake/chargeback-reversed`` and ``/_fake/second-chargeback
        {"dispute_reference"}``: 200 with the notification item queued, 404 for an unknown order or dispute,
        422 for an amount that is not one."""
        from payments.kernel.money import InvalidAmount, Money
        from payments.psp.adyen_currencies import to_adyen_minor

        record = FakeRecord(self.fake)
        if path == "/_fake/chargeback":
            order = str(body.get("payment_order_id") or "")
            with self.fake._lock:
                payment = next(
                    (
                        dict(p)
                        for p in self.fake.payments.values()
                        if p["merchant_reference"] == order and p["result_code"] == "Authorised"
                    ),
                    None,
                )
            if payment is None:
                return 404, {"error": f"no authorised payment for {order!r} at the Adyen fake"}
            amount_minor = None
            if body.get("amount") is not None:
                try:
                    amount_minor = to_adyen_minor(Money.parse(str(body["amount"]), payment["currency"]))
                except InvalidAmount as err:
                    return 422, {"error": f"amount: {err}"}
                if amount_minor > int(payment["amount_minor"]):
                    return 422, {"error": f"amount: {body['amount']} is more than the payment's charge"}
            return 200, {"item": record.raise_chargeback(order, amount_minor)}
        reference = str(body.get("dispute_reference") or "")
        step = record.reverse_chargeback if path == "/_fake/chargeback-reversed" else record.second_chargeback
        try:
            return 200, {"item": step(reference)}
        except (KeyError, ValueError) as err:
            return 404, {"error": f"dispute {reference!r}: {err}"}

    def register(self) -> None:
        """Tell the runtime's other clients that its PSP is this fake: ``payments psp settle``, from
        another process, then asks the fake for its report (:func:`payments.ops.reconcile.psp_settle`)."""
        from payments.kernel import aws
        from payments.kernel.config import settings
        from payments.ops.reconcile import LOCAL_PSP_CONFIG

        aws.client("dynamodb").put_item(
            TableName=settings().psp_table,
            Item={
                "pk": {"S": LOCAL_PSP_CONFIG},
                "sk": {"S": "CONFIG"},
                "psp": {"S": "adyen-fake"},
                "settle_url": {"S": f"{self.admin_url}/settle"},
            },
        )

    @property
    def admin_url(self) -> str:
        return self.base_url.rsplit("/", 1)[0] + "/_fake"

    def settle(self, day: str) -> str:
        """Write the fake's Settlement Details Report for a UTC day into the settlement bucket; its key."""
        return self.settle_day(day)[0]

    def settle_day(self, day: str) -> tuple[str, int]:
        """:meth:`settle`, answering (S3 key, data rows written) like the simulator's ``settle_day``."""
        from payments.kernel import aws
        from payments.kernel.config import settings
        from payments.reconciliation.settlement import settlement_key

        out = io.StringIO()
        rows = self.fake.write_settlement(day, out)
        key = settlement_key(day)
        aws.client("s3").put_object(
            Bucket=settings().settlement_bucket, Key=key, Body=out.getvalue().encode(), ContentType="text/csv"
        )
        invalid = len(self.fake.invalid_requests)
        print(
            f"wrote {key} ({rows} rows, from the Adyen fake; {len(self.fake.requests)} requests to it, {invalid} invalid against Checkout {VERSION})"
        )
        return key, rows

    def stop(self) -> None:
        import os

        self.fake.close()
        for name in self._environment:
            os.environ.pop(name, None)
