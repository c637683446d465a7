"""Unit-test fixtures: moto in-process DynamoDB with the tables of ``payments/kernel/tables.py``.

The tables are created exactly as the local runtime creates them
(``payments_dev.local.runtime.LocalRuntime._bootstrap``, DynamoDB part only), so the
repositories run against the same keys and indexes as everywhere else. No
network, no server: ``mock_aws`` patches botocore in the test process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

# Powertools must never try to flush metrics or trace in unit tests.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "payments-unit")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Payments")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from payments.accounts.ledger import LedgerRepository
from payments.accounts.wallet import WalletRepository
from payments.kernel import aws
from payments.kernel.config import Settings, reset_settings, settings
from payments.kernel.tables import create_tables
from payments.payin.models import OrderRecord, PaymentRecord
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus

REGION = "us-east-1"
#: environment variables read by payments.kernel.config.Settings (unset: the defaults apply)
SETTINGS_ENV = tuple(name.upper() for name in Settings.model_fields)


@pytest.fixture(scope="package")
def aws_session() -> Iterator[Any]:
    """Fake credentials and region, no endpoint override, default table names; caches reset once.

    boto3 clients are costly to build (~0.15 s each), so the package shares them: moto's
    interception is global to botocore, so a client built once is mocked by every
    ``mock_aws`` context that follows.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.setenv("AWS_REGION", REGION)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_SECURITY_TOKEN", "testing")
        mp.setenv("AWS_SESSION_TOKEN", "testing")
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", *SETTINGS_ENV):
            mp.delenv(name, raising=False)
        reset_settings()
        aws.reset_clients()
        yield boto3.client("dynamodb", region_name=REGION)
    reset_settings()
    aws.reset_clients()


@pytest.fixture()
def ddb(aws_session: Any) -> Iterator[Any]:
    """A low-level DynamoDB client on a fresh moto backend with every table of TABLES created and empty."""
    with mock_aws():
        reset_settings()
        create_tables(aws_session, settings())
        yield aws_session
    reset_settings()


@dataclass
class Repos:
    payments: PaymentsRepository
    wallets: WalletRepository
    ledger: LedgerRepository


@pytest.fixture()
def repos(ddb: Any) -> Repos:
    payments = PaymentsRepository()
    return Repos(
        payments=payments, wallets=WalletRepository(payments=payments), ledger=LedgerRepository(payments=payments)
    )


def payment_record(
    checkout_id: str, order_ids: list[str], fingerprint: str = "f" * 64, token: str = "tok_visa"
) -> PaymentRecord:
    return PaymentRecord(
        checkout_id=checkout_id,
        buyer_id="buyer_42",
        payment_order_ids=order_ids,
        payment_method_type="card",
        payment_method_token=token,
        idempotency_key=f"key-{checkout_id}",
        request_fingerprint=fingerprint,
    )


def order_record(
    payment_order_id: str,
    checkout_id: str,
    seller: str = "seller_books",
    amount_minor: int = 1999,
    currency: str = "USD",
) -> OrderRecord:
    return OrderRecord(
        payment_order_id=payment_order_id,
        checkout_id=checkout_id,
        seller_account=seller,
        amount_minor=amount_minor,
        currency=currency,
    )


def store_checkout(
    repo: PaymentsRepository,
    checkout_id: str,
    orders: list[tuple[str, str, int, str]],
    fingerprint: str = "f" * 64,
    token: str = "tok_visa",
) -> list[OrderRecord]:
    """Store a checkout whose orders are (payment_order_id, seller, amount_minor, currency)."""
    records = [order_record(po, checkout_id, seller, amount, ccy) for po, seller, amount, ccy in orders]
    outcome = repo.create(
        payment_record(checkout_id, [r.payment_order_id for r in records], fingerprint, token), records
    )
    assert outcome.created
    return records


def succeed(
    repo: PaymentsRepository,
    payment_order_id: str,
    psp_reference: str | None = None,
    charged_at: str = "2026-11-30T10:00:00.000Z",
) -> OrderRecord:
    """Move a stored order NOT_STARTED -> EXECUTING -> SUCCESS, as the executor does after an approval."""
    repo.move_order(payment_order_id, OrderStatus.EXECUTING)
    return repo.move_order(
        payment_order_id,
        OrderStatus.SUCCESS,
        psp_reference=psp_reference or f"psp_{payment_order_id}",
        charged_at=charged_at,
    )
