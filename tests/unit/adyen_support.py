"""Fixtures of the Adyen tests: the local fake on real HTTP and the adapter pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments.psp import ChargeRequest
from payments.psp.adyen import AdyenPsp, AdyenSettings
from payments_dev.local.adyen_fake import AdyenFake, CheckoutSpec, checkout_spec

API_KEY = "test-api-key"
MERCHANT = "LocalMerchant"
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
RETURN_URL = "https://shop.example/checkout/return"


def spec_or_skip() -> CheckoutSpec:
    spec = checkout_spec()
    if spec is None:
        pytest.skip("Adyen's CheckoutService-v72.json is not at ../shared/specs/adyen: spec validation not run")
    return spec


@pytest.fixture()
def fake() -> Iterator[AdyenFake]:
    fake = AdyenFake(api_key=API_KEY, merchant_account=MERCHANT, hmac_key=HMAC_KEY, slow_seconds=1.5)
    fake.base_url = fake.serve()  # type: ignore[attr-defined]
    yield fake
    fake.close()


def adapter(base_url: str, **overrides: object) -> AdyenPsp:
    values = {
        "api_key": API_KEY,
        "merchant_account": MERCHANT,
        "return_url": RETURN_URL,
        "base_url": base_url,
        "http_timeout": 1,
    }
    return AdyenPsp(AdyenSettings(**{**values, **overrides}))


@pytest.fixture()
def psp(fake: AdyenFake) -> AdyenPsp:
    return adapter(fake.base_url)  # type: ignore[attr-defined]


def charge_request(
    key: str = "po_1", token: str = "tok_visa", amount_minor: int = 1999, currency: str = "USD", **extra: object
) -> ChargeRequest:
    return ChargeRequest(
        idempotency_key=key,
        amount_minor=amount_minor,
        currency=currency,
        token=token,
        shopper_reference="buyer_42",
        **extra,
    )  # type: ignore[arg-type]
