"""Payout accounts against moto in-process: the tables of payments/kernel/tables.py and the two KMS
keys under the settings' aliases, created as the local runtime creates them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from payments.kernel.config import settings
from payments_dev.local.runtime import create_payout_account_keys
from tests.unit.conftest import REGION


@pytest.fixture()
def kms(ddb: Any) -> Any:
    client = boto3.client("kms", region_name=REGION)
    create_payout_account_keys(client, settings())
    return client
