"""Adyen as the PSP: the executor's :class:`~payments.psp.PaymentServiceProvider` on Adyen's
Checkout API v72, through Adyen's official library (PyPI ``adyen`` 16.x).

Charge (``POST /payments``)
    ``amount`` in Adyen's minor units (Adyen's table of decimals, not ISO 4217's: IDR 10000.00 is
    ``value`` 10000, CLP 5000 is 500000; :mod:`payments.psp.adyen_currencies`; an amount Adyen cannot
    take exactly, or a currency it does not support or whose decimals are disputed, is never sent:
    :class:`PspRequestInvalid`), ``reference`` = ``Idempotency-Key`` = ``payment_order_id`` (at most
    64 characters by our identifier rule, Adyen allows 64 and 80; refunds and reversals use keys of
    their own kind, :mod:`payments.psp.keys`),
    the card as a stored payment method: our token is the ``storedPaymentMethodId`` stored under
    ``shopperReference`` = the buyer's id, charged merchant-initiated (``shopperInteraction``
    ``ContAuth``, ``recurringProcessingModel`` from the settings), and ``returnUrl`` (v72 requires
    it even for a token; it is never visited by an off-session charge).

Outcome, per ``resultCode`` (``../shared/specs/adyen/FACTS.md`` §1)
    ========================================= ===================================================
    ``Authorised``                            :class:`Approved` (order SUCCESS)
    ``Refused``                               :class:`Declined` with the refusal reason (FAILED)
    ``Error``                                 :class:`Declined` ``psp_error:...``: final for this
                                              key (Adyen replays it for the same key), nothing charged
    ``Cancelled``                             :class:`Declined` ``cancelled``
    ``RedirectShopper``, ``IdentifyShopper``, :class:`Declined` ``shopper_action_not_supported:<code>``
    ``ChallengeShopper``, ``PresentToShopper``  (3-D Secure / redirects are not supported yet; an
                                              off-session token charge should not get them)
    ``PartiallyAuthorised``                   we never ask for partial authorisation: the partial
                                              authorisation is reversed (``/reversals``) and the order
                                              declined ``partially_authorised_reversed``
    ``Received``, ``Pending``                 :class:`PspAwaitingNotification`: parked, the
                                              AUTHORISATION notification decides
    ``AuthenticationFinished``,               unexpected for a payment: parked the same way
    ``AuthenticationNotRequired``, ``Success``
    no ``resultCode`` (a garbled answer)      :class:`PspOutcomeUnknown` (retried with the same key)
    ========================================= ===================================================

Errors
    * connection refused, DNS failure, connect timeout (the request never left):
      :class:`PspUnavailable`; 429, 503 and ``errorCode 703`` (idempotency store down), and a 500
      saying "too many requests": :class:`PspUnavailable`;
    * read timeout, connection reset, truncated answer, 500/502/504: :class:`PspOutcomeUnknown`;
    * 409/422 ``errorCode 704`` with ``transient-error: true`` (the first request with this key is
      still in flight): :class:`PspOutcomeUnknown`; without the header (the key was used for
      another request): :class:`PspRequestInvalid`;
    * any other 4xx (400, 401, 403, 404, 422): :class:`PspRequestInvalid`, nothing processed; the
      order is parked for an operator, never failed on our own configuration's account.

Unknown outcomes
    Adyen has no lookup by reference, so :meth:`AdyenPsp.lookup` answers None and the executor's
    retry resends the same request with the same key: Adyen answers with the first answer and
    never processes the key twice. That is only safe while Adyen keeps the key (at least 31 days
    documented, older pages say 7 to 14): past ``key_valid_for`` (7 days) the adapter refuses to
    resend and parks the order (:class:`PspAwaitingNotification`).

Library traps handled here (FACTS.md §5)
    * the HTTP client is forced to urllib: the library prefers ``requests`` when it is installed,
      so tests (``requests`` present) and Lambda (absent) would otherwise run different clients
      that raise different exceptions;
    * transport failures surface as raw ``urllib``/``http.client``/``socket`` exceptions, not as
      ``AdyenError``; HTTP errors as ``AdyenAPI*Error`` with ``status_code``, ``error_code`` and
      ``headers`` (read case-insensitively); a success exposes no headers;
    * ``platform="test"`` rewrites ``-live`` to ``-test`` in any URL, and ``platform="live"`` needs
      the live URL prefix; a custom base URL (the local fake) is set on every service object and is
      refused for live;
    * the ``Idempotency-Key`` header is only sent for a truthy key: the key is checked non-empty.

Nothing here logs a request body, a token or a card number.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import urllib.error
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from Adyen.client import AdyenClient
from Adyen.exceptions import AdyenAPIResponseError, AdyenError
from Adyen.services import AdyenCheckoutApi
from pydantic import BaseModel, Field, model_validator

from payments.kernel import clock
from payments.kernel.errors import PspAwaitingNotification, PspOutcomeUnknown, PspRequestInvalid, PspUnavailable
from payments.kernel.money import Money
from payments.kernel.observability import logger
from payments.psp import Approved, ChargeOutcome, ChargeRequest, Declined
from payments.psp.adyen_currencies import UnsupportedAtAdyen, to_adyen_minor
from payments.psp.keys import psp_key
from payments.refunds.psp import RefundAnswer, RefundCall

CHECKOUT_API_VERSION = "v72"
MAX_IDEMPOTENCY_KEY = 64
MAX_STORED_PAYMENT_METHOD_ID = 64
MAX_REFERENCE = 80

#: Adyen refusalReasonCode -> our failure_reason.
#: Source: Adyen's "Refusal reasons" page (https://docs.adyen.com/development-resources/refusal-reasons,
#: stored docs: its refusalReason texts and descriptions) and its test values ("Testing result codes and
#: refusal reasons", https://docs.adyen.com/development-resources/testing/result-codes: holderName ->
#: refusalReasonCode/refusalReason). The stored copy of the refusal-reasons page is cut before its code
#: column, so each code <-> text pair below was checked against the test-values table as transcribed by a
#: third-party Adyen integration's test suite and against the order of the ``adyen`` Rust crate's
#: ``RefusalReason`` enum (docs.rs), which agree: 2 Refused ... 46 Transaction blocked by Adyen.
#: Not a refusal: 0 (may come with Authorised), 13 (Received/pending), 30 (partially approved).
#: Codes not listed are looked up by text (:data:`REFUSAL_TEXTS`), else ``refused:<Adyen's text>``.
REFUSAL_REASONS = {
    "2": "card_declined",  # Refused
    "3": "referral",  # Referral
    "4": "acquirer_error",  # Acquirer Error (resultCode Error)
    "5": "card_blocked",  # Blocked Card
    "6": "expired_card",  # Expired Card
    "7": "invalid_amount",  # Invalid Amount
    "8": "invalid_card_number",  # Invalid Card Number
    "9": "issuer_unavailable",  # Issuer Unavailable
    "10": "not_supported",  # Not supported
    "11": "authentication_failed",  # 3D Not Authenticated
    "12": "insufficient_funds",  # Not enough balance
    "14": "fraud",  # Acquirer Fraud
    "15": "cancelled",  # Cancelled
    "16": "shopper_cancelled",  # Shopper Cancelled
    "17": "invalid_pin",  # Invalid Pin
    "18": "pin_tries_exceeded",  # Pin tries exceeded
    "19": "pin_validation_not_possible",  # Pin validation not possible
    "20": "fraud",  # FRAUD (Adyen's risk check)
    "21": "not_submitted",  # Not Submitted
    "22": "fraud",  # FRAUD-CANCELLED (resultCode Cancelled)
    "23": "transaction_not_permitted",  # Transaction Not Permitted
    "24": "cvc_declined",  # CVC Declined
    "25": "restricted_card",  # Restricted Card
    "26": "revocation_of_auth",  # Revocation Of Auth (the shopper stopped recurring payments: never retry)
    "27": "card_declined",  # Declined Non Generic (a response that cannot be mapped reliably)
    "28": "withdrawal_amount_exceeded",  # Withdrawal amount exceeded
    "29": "withdrawal_count_exceeded",  # Withdrawal count exceeded
    "31": "suspected_fraud",  # Issuer Suspected Fraud
    "32": "avs_declined",  # AVS Declined
    "33": "pin_required",  # Card requires online pin
    "34": "no_checking_account",  # No checking account available on Card
    "35": "no_savings_account",  # No savings account available on Card
    "36": "pin_required",  # Mobile PIN required
    "37": "contactless_fallback",  # Contactless fallback
    "38": "authentication_required",  # Authentication required (the issuer refused the exemption: needs 3DS)
    "39": "authentication_failed",  # RReq not received from DS
    "40": "card_declined",  # Current AID is in Penalty Box.
    "41": "pin_required",  # CVM Required Restart Payment
    "42": "authentication_failed",  # 3DS Authentication Error
    "43": "pin_required",  # Online PIN required
    "44": "card_declined",  # Try another interface
    "45": "card_declined",  # Chip downgrade mode
    "46": "retry_blocked",  # Transaction blocked by Adyen to prevent excessive retry fees
}

#: Adyen refusalReason text -> our failure_reason, for answers without a refusalReasonCode (the
#: classic API's, e.g. Adyen's library sample "CVC Declined"); texts as on the refusal-reasons page
REFUSAL_TEXTS = {
    "refused": "card_declined",
    "referral": "referral",
    "not enough balance": "insufficient_funds",
    "cvc declined": "cvc_declined",
    "expired card": "expired_card",
    "blocked card": "card_blocked",
    "restricted card": "restricted_card",
    "invalid card number": "invalid_card_number",
    "invalid amount": "invalid_amount",
    "issuer unavailable": "issuer_unavailable",
    "acquirer error": "acquirer_error",
    "acquirer fraud": "fraud",
    "fraud": "fraud",
    "fraud-cancelled": "fraud",
    "issuer suspected fraud": "suspected_fraud",
    "declined non generic": "card_declined",
    "transaction not permitted": "transaction_not_permitted",
    "3d not authenticated": "authentication_failed",
    "authentication required": "authentication_required",
    "revocation of auth": "revocation_of_auth",
}

SHOPPER_ACTION_CODES = frozenset({"RedirectShopper", "IdentifyShopper", "ChallengeShopper", "PresentToShopper"})
AWAITING_CODES = frozenset({"Received", "Pending"})
UNEXPECTED_CODES = frozenset({"AuthenticationFinished", "AuthenticationNotRequired", "Success"})

#: our refund reasons (issue 18) -> Adyen's merchantRefundReason enum
REFUND_REASONS = {
    "requested_by_customer": "CUSTOMER REQUEST",
    "customer_request": "CUSTOMER REQUEST",
    "duplicate": "DUPLICATE",
    "fraudulent": "FRAUD",
    "fraud": "FRAUD",
    "return": "RETURN",
}

RecurringModel = Literal["CardOnFile", "Subscription", "UnscheduledCardOnFile"]


class AdyenSettings(BaseModel):
    """The adapter's settings, from ``ADYEN_*`` environment variables (the stage sets them)."""

    #: the API key itself (local runs, tests), or ...
    api_key: str | None = Field(default=None, min_length=1)
    #: ... the Secrets Manager secret holding it (deployed): read per container, refreshed every
    #: ``secret_max_age`` seconds so that a rotated key is picked up without a deployment
    api_key_secret_arn: str | None = Field(default=None, min_length=1)
    secret_max_age: int = Field(default=300, ge=0, le=3600)
    merchant_account: str = Field(min_length=1)
    #: v72 requires it on every /payments; an off-session token charge never sends the shopper there
    return_url: str = Field(min_length=1, max_length=1024)
    environment: Literal["test", "live"] = "test"
    #: the company's live URL prefix (Customer Area > Developers > API URLs); live only
    live_url_prefix: str | None = None
    #: Checkout base URL with the version segment (the local fake); test only
    base_url: str | None = None
    http_timeout: int = Field(default=10, ge=1, le=25)  # below the execute step's 30 s
    recurring_processing_model: RecurringModel = "UnscheduledCardOnFile"
    #: how long a key is resent: Adyen keeps keys >= 31 days today; 7 is the safe floor of its docs' history
    key_valid_days: int = Field(default=7, ge=1, le=31)

    @model_validator(mode="after")
    def _endpoint(self) -> AdyenSettings:
        if (self.api_key is None) == (self.api_key_secret_arn is None):
            raise ValueError("set exactly one of ADYEN_API_KEY and ADYEN_API_KEY_SECRET_ARN")
        if self.environment == "live":
            if not self.live_url_prefix:
                raise ValueError("ADYEN_LIVE_URL_PREFIX is required for the live environment")
            if self.base_url:
                raise ValueError("ADYEN_BASE_URL is for the test environment only (live URLs come from the prefix)")
        return self

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of the field ``field`` (``ADYEN_<FIELD>``)."""
        if field not in cls.model_fields:
            raise KeyError(f"{field!r} is not a field of AdyenSettings")
        return f"ADYEN_{field.upper()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AdyenSettings:
        env = os.environ if environ is None else environ
        values = {name: env[cls.env_name(name)] for name in cls.model_fields if cls.env_name(name) in env}
        return cls.model_validate(values)


class AdyenPsp:
    """The executor's PSP on Adyen. One per container: the library client is reused."""

    #: the executor passes the buyer's id as ``ChargeRequest.shopper_reference``
    needs_shopper_reference = True

    def __init__(self, config: AdyenSettings, *, now: Callable[[], datetime] = clock.now):
        self.config = config
        self._now = now
        self._client = client = AdyenClient(
            xapikey=config.api_key or "unset",  # a secret's value is set before every call (_authenticate)
            platform=config.environment,
            live_endpoint_prefix=config.live_url_prefix,
            http_timeout=config.http_timeout,
            http_force="urllib",  # the client Lambda has (no requests there); tests run the same one
        )
        self._checkout = AdyenCheckoutApi(client=client)
        if config.base_url:
            base = config.base_url.rstrip("/")
            # every service object has its own baseUrl (FACTS §5)
            self._checkout.payments_api.baseUrl = base
            self._checkout.modifications_api.baseUrl = base

    @classmethod
    def from_env(cls) -> AdyenPsp:
        return cls(AdyenSettings.from_env())

    # --- the executor's interface -------------------------------------------------------
    def lookup(self, idempotency_key: str) -> ChargeOutcome | None:
        """Adyen has no lookup by merchant reference: always None, and the caller resends the same
        request with the same key (:meth:`charge`), which Adyen answers from its idempotency store."""
        return None

    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        declined = self._unchargeable(request)
        if declined is not None:
            return declined
        self._refuse_expired_key(request.idempotency_key, request.first_attempt_at)
        body = self.payment_request(request)
        self._authenticate()
        result = _call(
            f"payment {request.idempotency_key}",
            lambda: self._checkout.payments_api.payments(body, idempotency_key=request.idempotency_key),
        )
        return self._outcome(request, result.message if isinstance(result.message, dict) else {})

    # --- refunds (the refund flow is issue 18's; this is its adapter call) ---------------
    def refund(self, call: RefundCall) -> RefundAnswer:
        """The refund flow's PSP call (:class:`payments.refunds.psp.RefundingPsp`): ``POST
        /payments/{pspReference}/refunds`` with ``reference`` = our refund_id and ``Idempotency-Key``
        ``refund:<refund_id>`` (:func:`payments.psp.keys.psp_key`: never a charge's key, even when the
        refund_id equals a payment_order_id), the amount in Adyen's minor units.

        Adyen answers ``received``: the answer decides nothing (``succeeded`` None, the refund stays
        PENDING) and the REFUND notification, whose ``pspReference`` is the one returned here,
        decides it. A resend with the same key gets Adyen's first answer."""
        key = psp_key("refund", call.idempotency_key)
        _check_key(key)
        amount = call.money  # integer minor units of an ISO 4217 currency, or InvalidAmount
        body: dict[str, Any] = {
            "merchantAccount": self.config.merchant_account,
            "amount": _adyen_amount(amount, f"refund {call.idempotency_key}"),
            "reference": call.idempotency_key,
            "merchantRefundReason": REFUND_REASONS.get(call.reason or "", "OTHER"),
        }
        self._authenticate()
        result = _call(
            f"refund {call.idempotency_key}",
            lambda: self._checkout.modifications_api.refund_captured_payment(
                body, call.original_psp_reference, idempotency_key=key
            ),
        )
        answer = result.message if isinstance(result.message, dict) else {}
        if answer.get("status") != "received" or not answer.get("pspReference"):
            raise PspOutcomeUnknown(
                f"refund {call.idempotency_key}: unexpected answer (status {answer.get('status')!r})"
            )
        logger.info(
            "adyen refund received", extra={"refund_id": call.idempotency_key, "psp_reference": answer["pspReference"]}
        )
        return RefundAnswer(succeeded=None, psp_reference=str(answer["pspReference"]))

    def _authenticate(self) -> None:
        """The API key for the next call: the configured one, or the secret's (cached ``secret_max_age`` s)."""
        if self.config.api_key_secret_arn is None:
            return
        from aws_lambda_powertools.utilities import parameters

        try:
            key = parameters.get_secret(self.config.api_key_secret_arn, max_age=self.config.secret_max_age)
        except parameters.exceptions.GetParameterError as err:
            raise PspUnavailable(
                f"the Adyen API key secret could not be read: {type(err.__cause__ or err).__name__}"
            ) from err
        if not isinstance(key, str) or not key.strip():
            raise PspRequestInvalid("the Adyen API key secret is empty or binary")
        self._client.xapikey = key.strip()

    # --- the request ---------------------------------------------------------------------
    def payment_request(self, request: ChargeRequest) -> dict[str, Any]:
        """The /payments body for a charge (the same bytes on every resend of a key)."""
        amount = request.money  # integer minor units of an ISO 4217 currency, or InvalidAmount
        return {
            "merchantAccount": self.config.merchant_account,
            "amount": _adyen_amount(amount, f"payment {request.idempotency_key}"),
            "reference": request.idempotency_key,
            "paymentMethod": {"type": "scheme", "storedPaymentMethodId": request.token},
            "shopperReference": request.shopper_reference,
            "shopperInteraction": "ContAuth",
            "recurringProcessingModel": self.config.recurring_processing_model,
            "returnUrl": self.config.return_url,
        }

    def _unchargeable(self, request: ChargeRequest) -> Declined | None:
        _check_key(request.idempotency_key)
        if request.shopper_reference is None:
            raise PspRequestInvalid("Adyen charges a stored token under a shopperReference: none was given")
        if not 3 <= len(request.shopper_reference) <= 256:
            return Declined("shopper_reference_invalid")  # Adyen cannot have stored a token under it
        if not request.token or len(request.token) > MAX_STORED_PAYMENT_METHOD_ID:
            return Declined("payment_method_not_supported")  # not an Adyen storedPaymentMethodId
        return None

    def _refuse_expired_key(self, key: str, first_attempt_at: str | None) -> None:
        if first_attempt_at is None:
            return
        first = datetime.fromisoformat(first_attempt_at.replace("Z", "+00:00"))
        age = self._now() - first
        if age > timedelta(days=self.config.key_valid_days):
            raise PspAwaitingNotification(
                f"payment {key}: the idempotency key is {age.days} days old (resent for {self.config.key_valid_days}); "
                "not resending it, the AUTHORISATION notification decides"
            )

    # --- the answer ------------------------------------------------------------------------
    def _outcome(self, request: ChargeRequest, answer: dict[str, Any]) -> ChargeOutcome:
        key = request.idempotency_key
        code = answer.get("resultCode")
        psp_reference = answer.get("pspReference")
        logger.info(
            "adyen payment answered",
            extra={"payment_order_id": key, "result_code": code, "psp_reference": psp_reference},
        )
        if code == "Authorised":
            if not psp_reference:
                raise PspOutcomeUnknown(f"payment {key}: Authorised without a pspReference")
            return Approved(psp_reference=psp_reference, charged_at=clock.now_iso())
        if code == "Refused":
            return Declined(_refusal(answer))
        if code == "Error":
            return Declined("psp_error:" + _slug(answer.get("refusalReason") or "unspecified"))
        if code == "Cancelled":
            return Declined("cancelled")
        if code in SHOPPER_ACTION_CODES:
            return Declined(f"shopper_action_not_supported:{code}")
        if code == "PartiallyAuthorised":
            self._reverse(key, psp_reference)
            return Declined("partially_authorised_reversed")
        if code in AWAITING_CODES or code in UNEXPECTED_CODES:
            if code in UNEXPECTED_CODES:
                logger.warning(
                    "adyen answered an unexpected resultCode", extra={"payment_order_id": key, "result_code": code}
                )
            raise PspAwaitingNotification(
                f"payment {key}: Adyen answered {code} (pspReference {psp_reference}); the AUTHORISATION notification decides"
            )
        if code is None:
            raise PspOutcomeUnknown(f"payment {key}: an answer without resultCode")
        logger.warning("adyen answered an unknown resultCode", extra={"payment_order_id": key, "result_code": code})
        raise PspAwaitingNotification(
            f"payment {key}: unknown resultCode {code!r}; the AUTHORISATION notification decides"
        )

    def _reverse(self, key: str, psp_reference: str | None) -> None:
        """Give back a partial authorisation we never asked for (cancel, or refund once captured)."""
        if not psp_reference:
            raise PspAwaitingNotification(f"payment {key}: PartiallyAuthorised without a pspReference")
        reversal_key = psp_key("reversal", key)
        # a failure is retried as a whole: the charge replays its answer, the reversal key dedups
        _call(
            f"reversal of payment {key}",
            lambda: self._checkout.modifications_api.refund_or_cancel_payment(
                {"merchantAccount": self.config.merchant_account, "reference": key},
                psp_reference,
                idempotency_key=reversal_key,
            ),
        )
        logger.warning(
            "adyen partial authorisation reversed", extra={"payment_order_id": key, "psp_reference": psp_reference}
        )


# --- helpers ------------------------------------------------------------------------------
def _adyen_amount(amount: Money, what: str) -> dict[str, Any]:
    """Adyen's ``amount``: the value in Adyen's minor units, exactly, or nothing is sent (the API
    refuses such an amount on an Adyen stage; one that gets here anyway is parked, never rounded)."""
    try:
        return {"currency": amount.currency, "value": to_adyen_minor(amount)}
    except UnsupportedAtAdyen as err:
        raise PspRequestInvalid(f"{what}: {err}") from err


def _check_key(key: str) -> None:
    # the library omits the header for a falsy key: an empty key would charge without idempotency
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise PspRequestInvalid(
            f"an Adyen Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY} characters, got {len(key or '')}"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:80] or "unspecified"


def _refusal(answer: Mapping[str, Any]) -> str:
    code = str(answer.get("refusalReasonCode") or "")
    if code in REFUSAL_REASONS:
        return REFUSAL_REASONS[code]
    text = str(answer.get("refusalReason") or "")
    return REFUSAL_TEXTS.get(text.strip().lower()) or "refused:" + _slug(text or "unspecified")


def _header(headers: Any, name: str) -> str | None:
    if not headers or isinstance(headers, str):
        return None
    try:
        items = headers.items()
    except AttributeError:
        return None
    for key, value in items:
        if str(key).lower() == name:
            return str(value)
    return None


def _call(what: str, send: Callable[[], Any]) -> Any:
    try:
        return send()
    except Exception as err:  # every failure is classified; an unforeseen one passes as is
        mapped = _classified(err, what)
        if mapped is err:
            raise
        raise mapped from err


def _classified(err: Exception, what: str) -> Exception:
    """One library or transport failure as a domain error (see the module docstring)."""
    if isinstance(err, AdyenAPIResponseError):
        status = err.status_code if isinstance(err.status_code, int) else 0
        code = str(err.error_code or "")
        text = f"{what}: HTTP {status} errorCode {code or '-'}"
        if code == "704":
            if (_header(err.headers, "transient-error") or "").lower() == "true":
                return PspOutcomeUnknown(text + ": the first request with this key is still in flight")
            return PspRequestInvalid(text + ": the idempotency key was used for another request")
        if status in (429, 503) or code == "703":  # rate limited, or not taken in: nothing processed
            return PspUnavailable(text)
        if status == 500 and "too many requests" in str(err.raw_response).lower():
            return PspUnavailable(text + " (rate limited)")
        if status >= 500:
            return PspOutcomeUnknown(text)
        return PspRequestInvalid(text)
    if isinstance(err, AdyenError):  # raised before sending (missing credentials and the like)
        return PspRequestInvalid(f"{what}: {type(err).__name__}")
    if isinstance(err, urllib.error.URLError):
        # urllib wraps only connect/send failures: the request never reached Adyen complete
        return PspUnavailable(f"{what}: could not reach Adyen ({type(err.reason).__name__})")
    if isinstance(err, (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException, OSError)):
        return PspOutcomeUnknown(f"{what}: the answer was lost ({type(err).__name__})")
    if isinstance(err, ValueError):  # an unreadable answer body
        return PspOutcomeUnknown(f"{what}: unreadable answer ({type(err).__name__})")
    return err
