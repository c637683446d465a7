"""Runtime settings of every function, read from the environment once.

This model is the single list of the variables: a field's variable is its name upper-cased
(:func:`env_name`). The CDK stack (``infra/constructs/function.py``) sets, on each function, the
variables of the fields its registry entry requires (``functions.registry.Function.required_settings``);
the local runtime (``payments_dev.local.runtime``) sets every one of them explicitly.

Deployed stages are marked by ``PAYMENTS_STAGE`` (set by the CDK on every function): there, a
function's handler calls :func:`load` at import, which fails the cold start with an error naming
each required variable that is not set, instead of running with a default. Without the marker
(local runtime, tests, the operator CLI) the defaults below apply to what is not set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from functions.registry import Function, Psp

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
    #: sellers' payout accounts (payments.payouts.accounts): the IBAN encrypted, masked and keyed-hashed
    payout_accounts_table: str = Field(default="payout-accounts")
    #: the KMS key (id, ARN or alias) whose data keys encrypt the IBANs (envelope encryption)
    payout_accounts_key: str = Field(default="alias/payments-payout-accounts")
    #: the KMS HMAC key (HMAC_256) of the IBANs' keyed hash (an IBAN compared without being decrypted)
    payout_accounts_mac_key: str = Field(default="alias/payments-payout-accounts-mac")
    settlement_bucket: str = Field(default="settlements")
    #: the ledger's analytical copy (``ledger/psp=<psp>/day=<day>/ccy=<CCY>/*.parquet``,
    #: payments.reconciliation.lake), written as the ledger is written; reconciliation reads it
    ledger_lake_bucket: str = Field(default="ledger-lake")
    #: true only where the copy's writer flushes every row before it invokes the reconciliation (the local
    #: runtime): the copy of a day is then complete whenever a file is reconciled, so no delivery lag is waited
    #: for. A deployed stage never sets it: its copy is complete a day's end plus LEDGER_LAKE_LAG_MINUTES.
    ledger_lake_flushed: bool = Field(default=False)
    #: the "deferred reconciliations" SQS queue (payments.reconciliation.deferred): a settlement file whose ledger
    #: day's copy is not complete yet waits there until it is; empty: such a file fails the invocation (retried)
    deferred_reconciliations_queue_url: str = Field(default="")
    #: payouts and their runs (payments.payouts): status, amount, the file that carried each
    payouts_table: str = Field(default="payouts")
    #: the bank rail's bucket: our payment files under ``outgoing/``, the bank's answers under ``incoming/bank/``
    bank_bucket: str = Field(default="bank")
    #: the nightly payout's minimum per currency, in minor units (JSON ``{"EUR": 100}``): a seller is paid when its
    #: available reaches it (payments.payouts.run); a currency not listed: any positive available
    payout_minimum_minor: dict[str, int] = Field(default_factory=lambda: {"EUR": 100})
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
    recovery_shards: int = Field(default=64, ge=1, le=256)
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
    #: seconds a secret read through Powertools parameters is kept per container (the HMAC key secret;
    #: the Adyen adapter's API key too, through its own ``AdyenSettings.secret_max_age``)
    adyen_secret_max_age: int = Field(default=300, ge=0, le=3600)
    #: the Adyen account's report time zone (an IANA name such as ``America/Chicago``), when the
    #: operator sets it: the settlement report's zone abbreviations are then checked against it
    adyen_report_time_zone: str = Field(default="")
    #: the PSP's environment ("test" or "live"; the Adyen adapter reads the same ADYEN_ENVIRONMENT): the
    #: notifications' ``live`` must be "true" on a live stage and "false" on any other
    adyen_environment: Literal["test", "live"] = Field(default="test")
    #: the state machine of the large-file reconciliation (``stepfunctions/reconcile.asl.json``)
    reconcile_state_machine_arn: str = Field(default="")
    #: the state machine of a day too large for one function (``stepfunctions/reconcile_athena.asl.json``);
    #: set only where the stage has the ledger's copy and its Athena workgroup
    reconcile_athena_state_machine_arn: str = Field(default="")
    #: the Athena workgroup of the ledger's copy (its results in the lake bucket under ``athena-results/``)
    ledger_lake_workgroup: str = Field(default="")
    #: the Glue database of the ledger's copy and of the Athena workflow's normalised settlement rows
    ledger_lake_database: str = Field(default="")
    #: the stage's name: set in deployed stages only (the marker that makes required settings required)
    payments_stage: str = Field(default="")
    #: the platform's own bank account, the debtor of every SEPA payout file (payments.payouts.bank): the
    #: account holder's name, IBAN and optional BIC. The defaults are the local runtime's (a valid test IBAN).
    payout_debtor_name: str = Field(default="Marketplace Platform Ltd")
    payout_debtor_iban: str = Field(default="DE82370400440123456789")
    payout_debtor_bic: str = Field(default="COBADEFFXXX")
    #: the platform's commission on every charge, in basis points of the charge (0..10000; 250 = 2.50 %),
    #: fixed on each payment order when the payment is accepted (payments.accounts.commission)
    payments_commission_bps: int = Field(default=0, ge=0, le=10_000)
    #: per-seller commission in basis points, over ``payments_commission_bps``: JSON ``{"seller_books": 250}``
    payments_commission_overrides: dict[str, Annotated[int, Field(ge=0, le=10_000)]] = Field(default_factory=dict)

    @field_validator("payments_commission_overrides", mode="before")
    @classmethod
    def _overrides_from_json(cls, value: object) -> object:
        """The variable holds a JSON object (seller account -> basis points)."""
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as err:
                raise ValueError(f"must be a JSON object of seller account -> basis points: {err.msg}") from None
        return value

    @field_validator("payout_minimum_minor", mode="before")
    @classmethod
    def _json_minimums(cls, value: object) -> object:
        """The variable holds JSON (``{"EUR": 100}``); the model takes a mapping as it is."""
        return json.loads(value) if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {name: env[env_name(name)] for name in cls.model_fields if env_name(name) in env}
        return cls.model_validate(values)


def env_name(field: str) -> str:
    """The environment variable of the ``Settings`` field ``field`` (e.g. ``PAYMENTS_TABLE``)."""
    if field not in Settings.model_fields:
        raise KeyError(f"{field!r} is not a field of payments.kernel.config.Settings")
    return field.upper()


#: the variable whose presence marks a deployed stage
STAGE_ENV = env_name("payments_stage")


class MissingSettings(RuntimeError):
    """A deployed function's cold start without a variable its registry entry requires."""


def missing_settings(function: Function, environ: Mapping[str, str] | None = None) -> list[str]:
    """The variables ``function`` requires in a deployed stage that ``environ`` does not set."""
    env = os.environ if environ is None else environ
    psp: Psp = "adyen" if env.get(env_name("payments_psp")) == "adyen" else "simulated"
    return sorted(env_name(f) for f in function.required_settings(psp) if not env.get(env_name(f), "").strip())


def load(function: Function, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``function``, validated once at its cold start (call it at handler import).

    In a deployed stage (``PAYMENTS_STAGE`` set) every variable the function's registry entry requires
    must be set and not empty: otherwise :class:`MissingSettings` names each one that is missing. Values
    are validated by the model either way (a malformed one is a pydantic ``ValidationError`` naming it).
    """
    env = os.environ if environ is None else environ
    stage = env.get(STAGE_ENV, "")
    if stage:
        missing = missing_settings(function, env)
        if missing:
            raise MissingSettings(
                f"function {function.name!r} on stage {stage!r}: {', '.join(missing)} not set; a deployed function "
                "requires every variable of its settings (functions/registry.py), none has a default there"
            )
        if environ is None:
            return settings()
    # outside a deployed stage the process's cached settings are left alone (tests change the environment)
    return Settings.from_env(env)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


def reset_settings() -> None:
    """Forget the cached settings (the local runtime and tests change the environment)."""
    settings.cache_clear()
