"""Runtime settings of every function, read from the environment once.

The same names are set by the CDK stack (``infra/``) and by the local runtime
(``payments_dev.local``): this module is the single list of them.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field

#: Hard bounds of the public API (documented in the README and the OpenAPI).
MAX_ORDERS_PER_CHECKOUT = 50  # one DynamoDB transaction holds the payment and all its orders (<= 100 items)
MAX_BODY_BYTES = 64 * 1024  # a 50-order checkout is ~10 KiB; anything larger is not a checkout
MAX_JSON_DEPTH = 32  # a checkout nests 3 levels; deeper bodies are refused before they are parsed
IDEMPOTENCY_TTL_SECONDS = 24 * 3600  # replay window of an Idempotency-Key


class Settings(BaseModel):
    payments_table: str = Field(default="payments")
    wallets_table: str = Field(default="wallets")
    ledger_table: str = Field(default="ledger")
    idempotency_table: str = Field(default="idempotency")
    psp_table: str = Field(default="psp-simulator")
    reconciliation_table: str = Field(default="reconciliation")
    settlement_bucket: str = Field(default="settlements")
    state_machine_arn: str = Field(default="")
    #: balance items per (seller, currency); see payments.accounts.wallet
    wallet_shards: int = Field(default=4, ge=1, le=64)
    #: running-total items per currency in the ledger (trial balance)
    ledger_total_shards: int = Field(default=8, ge=1, le=64)
    #: automatic recovery (payments.payin.recovery): a payment unfinished this long after it was accepted
    #: (or after its last re-drive, or after an order was parked) is re-driven. Longer than an Express
    #: execution may live (5 minutes), so a re-drive never overtakes a live first execution in AWS.
    recovery_delay_seconds: float = Field(default=360.0, gt=0)
    #: re-drives of one payment before its unfinished orders are parked NEEDS_ATTENTION (alarm)
    recovery_max_attempts: int = Field(default=3, ge=1, le=20)
    #: partitions of the by_recovery_due index (spreads its writes; only ever increase it)
    recovery_shards: int = Field(default=16, ge=1, le=256)
    #: name of the PSP whose settlement files reconcile against our ledger
    psp_name: str = Field(default="simulated-psp")
    #: which PSP adapter the executor charges through: "simulator" or "adyen" (its own ADYEN_* settings)
    payments_psp: str = Field(default="simulator")
    #: the refund workflow (stepfunctions/refund.asl.json) and the queue of PSP notifications
    refund_state_machine_arn: str = Field(default="")
    notifications_queue_url: str = Field(default="")
    #: the PSP's notification HMAC key (hex) and the merchant account code it must name
    payments_psp_hmac_key: str = Field(default="")
    #: in AWS: the Secrets Manager secret holding that key (hex; several comma-separated during a rotation)
    payments_psp_hmac_key_secret: str = Field(default="")
    payments_psp_merchant_account: str = Field(default="LocalMerchant")

    @classmethod
    def from_env(cls) -> Settings:
        env = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        return cls.model_validate(env)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


def reset_settings() -> None:
    """Forget the cached settings (the local runtime and tests change the environment)."""
    settings.cache_clear()
