"""The deployment stage (dev, prod, ...) as read from CDK context.

Two stages differ only by context: ``cdk.json`` holds one entry per stage under
``stages``, and ``-c key=value`` on the command line overrides the top-level
keys. See docs/deploy.md for the list of keys.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Node

from functions import registry
from payments.kernel.config import Settings
from payments.ops import capacity

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")


@dataclass(frozen=True)
class Stage:
    """Everything that may differ between two deployments of the same stack."""

    name: str
    account: str | None
    region: str | None
    api_rate_limit: int  # steady-state requests per second of the whole API stage
    api_burst_limit: int  # token-bucket size of the API stage
    log_retention_days: int
    log_level: str
    wallet_shards: int  # balance items per (seller, currency); only ever increase it
    ledger_total_shards: int  # trial-balance total items per currency; only ever increase it
    retain_all_data: bool  # False: non-money tables, log groups and keys go with the stack
    alarm_email: str | None
    #: the payment workflow's type: EXPRESS (default: priced per execution, no transition quota)
    #: or STANDARD (exactly-once transitions, name-deduplicated starts, durable history)
    workflow_type: str = "EXPRESS"
    #: a production stage takes real money: synthesis refuses the simulated PSP for it
    production: bool = False
    #: the PSP the executor charges: "simulated" (in-process simulator, nightly settlement job) or "adyen"
    psp: str = "simulated"
    #: Adyen's settings when ``psp`` is "adyen" (None otherwise)
    adyen: AdyenStage | None = None
    #: the alarm topic's subscribers are managed outside the stack (PagerDuty, AWS Chatbot, an email
    #: list subscribed by hand): a production stage without ``alarm_email`` then synthesises without warning
    alarm_subscribed_elsewhere: bool = False
    #: the checkouts/s (of three orders) the stage is sized for: tables' warm throughput, the API throttle
    #: (``payments.ops.capacity``); None: the API throttle as set, tables at DynamoDB's default warm throughput
    target_checkouts_per_second: float | None = None
    #: how payout files reach the stage's bank (docs/payouts-bank.md): "simulated" (the simulated bank answers
    #: them in the bank bucket; default of a stage that is not production), "s3-drop" (the bank, or a transfer
    #: job of its own, takes ``outgoing/pain001/`` and drops its answers in ``incoming/bank/``; default of a
    #: production stage) or "sftp" (an AWS Transfer Family SFTP connector, set up outside the stack)
    bank: str = "simulated"
    #: the platform's bank account every SEPA payout is paid from (``payoutDebtorName``, ``payoutDebtorIban``,
    #: ``payoutDebtorBic``) and the nightly payout's minimum per currency in minor units (``payoutMinimumMinor``,
    #: e.g. ``{"EUR": 100}``); unset: the settings' defaults (a test account: a dev stage's simulated bank)
    payout_debtor: tuple[str, str, str] | None = None
    payout_minimum_minor: dict[str, int] | None = None
    #: the platform's commission in basis points (``commissionBps``, default 0) and per seller
    #: (``commissionOverrides``, ``{"seller_books": 250}``): the payment function fixes it on each order
    commission_bps: int = 0
    commission_overrides: str = "{}"
    #: how the cold start of a function on the shopper's wait is taken off it (``coldStart``, per function of
    #: :data:`COLD_START_FUNCTIONS`): :data:`SNAPSTART` (Lambda SnapStart: a published version restores a snapshot
    #: of its initialised environment) or a number of environments kept initialised (provisioned concurrency);
    #: such a function is invoked through its ``live`` alias. A function not listed starts cold, from nothing.
    #: docs/capacity.md, "Cold starts", prices both against the wait they save.
    cold_start: dict[str, str | int] = field(default_factory=dict)
    #: days the event bus's archive keeps every event for replay (``eventArchiveRetentionDays``; 0: for ever)
    event_archive_retention_days: int = 30

    @classmethod
    def from_context(cls, node: Node, name: str) -> Stage:
        """Read stage ``name`` from ``stages.<name>`` with top-level context overrides."""
        if not _STAGE_NAME.match(name):
            raise ValueError(f"stage name {name!r} must be 2-12 lowercase letters or digits")
        stages: dict[str, dict[str, Any]] = node.try_get_context("stages") or {}
        if name not in stages:
            raise ValueError(f"unknown stage {name!r}: cdk.json context 'stages' defines {sorted(stages)}")
        values = stages[name]

        def value(key: str) -> Any:
            override = node.try_get_context(key)
            return override if override is not None else values.get(key)

        production = _flag(value("production"))
        psp = str(value("psp") or "simulated")
        if psp not in PSPS:
            raise ValueError(f"stage {name!r}: psp must be one of {PSPS}, not {psp!r}")
        if production and psp == "simulated":
            raise ValueError(
                f"stage {name!r} is a production stage (production: true) and cannot deploy the simulated PSP: "
                "set psp to 'adyen' with adyenMerchantAccount and adyenReturnUrl, and adyenEnvironment 'live' with "
                "adyenLiveUrlPrefix to take real money (cdk.json 'stages', or -c key=value); see docs/deploy.md, "
                "'Connecting Adyen'"
            )
        bank = str(value("bank") or ("s3-drop" if production else "simulated"))
        if bank not in BANKS:
            raise ValueError(f"stage {name!r}: bank must be one of {BANKS}, not {bank!r}")
        if production and bank == "simulated":
            raise ValueError(
                f"stage {name!r} is a production stage (production: true) and cannot deploy the simulated bank: set "
                "bank to 's3-drop' or 'sftp' (docs/payouts-bank.md)"
            )
        target = _target(name, value("targetCheckoutsPerSecond"))
        if psp == "simulated" and target is not None and target > capacity.SIMULATOR_MAX_CHECKOUTS_PER_S:
            raise ValueError(
                f"stage {name!r}: the simulated PSP writes every charge of a day to one index key, which takes "
                f"{capacity.SIMULATOR_MAX_CHECKOUTS_PER_S} checkouts/s: targetCheckoutsPerSecond {target:,g} needs "
                "psp 'adyen' (docs/capacity.md, 'Index keys')"
            )
        rate, burst = _api_limits(name, target, values.get("apiRateLimit"), values.get("apiBurstLimit"))
        if target is not None:
            _check_shards(name, target, int(values["ledgerTotalShards"]))
        return cls(
            name=name,
            account=value("account") or os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=value("region") or os.environ.get("CDK_DEFAULT_REGION"),
            api_rate_limit=rate,
            api_burst_limit=burst,
            log_retention_days=int(values["logRetentionDays"]),
            log_level=str(values["logLevel"]),
            wallet_shards=int(values["walletShards"]),
            ledger_total_shards=int(values["ledgerTotalShards"]),
            retain_all_data=bool(values["retainAllData"]),
            alarm_email=value("alarmEmail") or None,
            workflow_type=_workflow_type(value("workflowType")),
            production=production,
            psp=psp,
            adyen=AdyenStage.from_values(name, value) if psp == "adyen" else None,
            alarm_subscribed_elsewhere=_flag(value("alarmSubscribedElsewhere")),
            target_checkouts_per_second=target,
            bank=bank,
            payout_debtor=(
                (str(value("payoutDebtorName")), str(value("payoutDebtorIban")), str(value("payoutDebtorBic") or ""))
                if value("payoutDebtorIban")
                else None
            ),
            payout_minimum_minor=value("payoutMinimumMinor") or None,
            **_commission(name, value("commissionBps"), value("commissionOverrides")),
            cold_start=_cold_start(name, value("coldStart")),
            event_archive_retention_days=_archive_retention(name, values.get("eventArchiveRetentionDays")),
        )

    @property
    def psp_name(self) -> str:
        """``PSP_NAME``: the PSP's name in the ledger's receivable account and under ``incoming/``."""
        return "adyen" if self.psp == "adyen" else "simulated-psp"

    @property
    def payments_psp(self) -> str:
        """``Settings.payments_psp``: the adapter the functions charge and refund through."""
        return "adyen" if self.psp == "adyen" else "simulator"

    @property
    def stack_name(self) -> str:
        return f"Payments-{self.name}"

    def resource_name(self, short: str) -> str:
        """Physical name of a stage-scoped resource, e.g. ``payments-dev-ledger``."""
        return f"payments-{self.name}-{short}"

    @property
    def env(self) -> cdk.Environment | None:
        """None (an environment-agnostic stack) unless account or region is known."""
        if self.account is None and self.region is None:
            return None
        return cdk.Environment(account=self.account, region=self.region)

    @property
    def disposable_removal_policy(self) -> cdk.RemovalPolicy:
        """Removal policy of what holds no money and no audit trail (never used for money)."""
        return cdk.RemovalPolicy.RETAIN if self.retain_all_data else cdk.RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        try:
            return _RETENTION[self.log_retention_days]
        except KeyError:
            raise ValueError(f"logRetentionDays must be one of {sorted(_RETENTION)}") from None


def _target(stage: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        target = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"stage {stage!r}: targetCheckoutsPerSecond must be a number, not {value!r}") from None
    if not 0 < target <= 1_000_000:
        raise ValueError(f"stage {stage!r}: targetCheckoutsPerSecond must be above 0, not {value!r}")
    return target


def _api_limits(stage: str, target: float | None, rate: Any, burst: Any) -> tuple[int, int]:
    """The API stage's (rate, burst): computed from the target (``payments.ops.capacity.api_limits``) unless
    set; a setting below what the target needs fails synthesis, naming it."""
    if target is None:
        if rate is None or burst is None:
            raise ValueError(
                f"stage {stage!r} needs targetCheckoutsPerSecond, or apiRateLimit and apiBurstLimit (cdk.json 'stages')"
            )
        return int(rate), int(burst)
    needed = capacity.api_limits(target)
    for key, setting, required in (("apiRateLimit", rate, needed.rate), ("apiBurstLimit", burst, needed.burst)):
        if setting is not None and int(setting) < required:
            raise ValueError(
                f"stage {stage!r}: {key} {int(setting):,} < needed {required:,} for {target:,g} checkouts/s "
                f"(targetCheckoutsPerSecond; {capacity.api_requests():g} requests per checkout x "
                f"{capacity.HEADROOM:g} headroom): raise {key} or remove it to have it computed"
            )
    return (
        int(rate) if rate is not None else needed.rate,
        int(burst) if burst is not None else needed.burst,
    )


def _check_shards(stage: str, target: float, ledger_total_shards: int) -> None:
    """Every order adds to one trial-balance totals shard of its currency: one currency at the target must fit."""
    needed = capacity.shards_needed(target * capacity.ORDERS_PER_CHECKOUT)
    if ledger_total_shards < needed:
        raise ValueError(
            f"stage {stage!r}: ledgerTotalShards {ledger_total_shards} < needed {needed} for {target:,g} "
            f"checkouts/s of {capacity.ORDERS_PER_CHECKOUT} orders in one currency (1,000 WCU/s per shard)"
        )


#: the functions on a shopper's wait: the API's (payment) and the payment workflow's tasks, each invoked by API
#: Gateway or Step Functions through its alias when ``coldStart`` names it
COLD_START_FUNCTIONS = tuple(sorted(f.name for f in registry.asl_functions(registry.PAYMENT_ASL).values()))
SNAPSTART = "snapstart"


def _cold_start(stage: str, value: Any) -> dict[str, str | int]:
    """``coldStart``: ``{"<function>": "snapstart" | <provisioned environments>}`` (JSON, or a JSON string given
    with ``-c coldStart=...``); unset or ``{}``: every function starts cold."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"stage {stage!r}: coldStart must be a JSON object, not {value!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"stage {stage!r}: coldStart must be an object of function names, not {value!r}")
    modes: dict[str, str | int] = {}
    for function, mode in value.items():
        if function not in COLD_START_FUNCTIONS:
            raise ValueError(
                f"stage {stage!r}: coldStart names {function!r}, which is not a function on a shopper's wait "
                f"({', '.join(COLD_START_FUNCTIONS)})"
            )
        if mode == SNAPSTART:
            modes[function] = SNAPSTART
        elif isinstance(mode, int) and not isinstance(mode, bool) and mode >= 1:
            modes[function] = mode
        else:
            raise ValueError(
                f"stage {stage!r}: coldStart.{function} must be {SNAPSTART!r} or a number of provisioned environments "
                f"(1 or more), not {mode!r}: Lambda does not combine SnapStart with provisioned concurrency"
            )
    return modes


def _archive_retention(stage: str, value: Any) -> int:
    """``eventArchiveRetentionDays``: whole days, 0 for ever; unset: 30."""
    if value is None:
        return 30
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"stage {stage!r}: eventArchiveRetentionDays must be a whole number of days (0: for ever)")
    return value


def _flag(value: Any) -> bool:
    """A boolean key of cdk.json (a JSON boolean) or of ``-c key=value`` (the string "true"/"false")."""
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", ""):
            raise ValueError(f"expected true or false, not {value!r}")
        return value.strip().lower() == "true"
    return bool(value)


PSPS = ("simulated", "adyen")
BANKS = ("simulated", "s3-drop", "sftp")
ADYEN_ENVIRONMENTS = ("test", "live")
#: the merchant account placeholder of cdk.json: synthesis warns until an operator replaces it
ADYEN_PLACEHOLDER = "SET_ADYEN_MERCHANT_ACCOUNT"


@dataclass(frozen=True)
class AdyenStage:
    """Adyen's settings of a stage (keys ``adyen*`` of the stage; see docs/deploy.md)."""

    merchant_account: str
    return_url: str  # v72 requires returnUrl on every /payments; an off-session charge never visits it
    environment: str  # test | live
    live_url_prefix: str | None  # live only: Customer Area > Developers > API URLs
    #: an existing secret (name or complete ARN) holding the API key; None: the stack creates an empty one
    api_key_secret: str | None
    #: an existing secret (name or complete ARN) holding the HMAC key(s); None: the stack creates an empty one
    hmac_key_secret: str | None
    #: seconds a function keeps a secret's value before reading it again (per container)
    secret_max_age: int = 300

    @property
    def placeholder(self) -> bool:
        return self.merchant_account == ADYEN_PLACEHOLDER

    @classmethod
    def from_values(cls, stage: str, value: Any) -> AdyenStage:
        def required(key: str) -> str:
            found = value(key)
            if not found or not str(found).strip():
                raise ValueError(
                    f"stage {stage!r} uses psp 'adyen' and needs {key} (cdk.json 'stages', or -c {key}=...); see docs/deploy.md"
                )
            return str(found).strip()

        environment = str(value("adyenEnvironment") or "test")
        if environment not in ADYEN_ENVIRONMENTS:
            raise ValueError(
                f"stage {stage!r}: adyenEnvironment must be one of {ADYEN_ENVIRONMENTS}, not {environment!r}"
            )
        prefix = value("adyenLiveUrlPrefix") or None
        if environment == "live" and not prefix:
            raise ValueError(
                f"stage {stage!r}: adyenEnvironment 'live' needs adyenLiveUrlPrefix, the company's prefix "
                "(Adyen Customer Area > Developers > API URLs)"
            )
        return_url = required("adyenReturnUrl")
        if not return_url.startswith("https://"):
            raise ValueError(f"stage {stage!r}: adyenReturnUrl must be an https:// URL, not {return_url!r}")
        max_age = int(value("adyenSecretMaxAge") or 300)
        if not 0 <= max_age <= 3600:
            raise ValueError(f"stage {stage!r}: adyenSecretMaxAge must be 0 to 3600 seconds")
        return cls(
            merchant_account=required("adyenMerchantAccount"),
            return_url=return_url,
            environment=environment,
            live_url_prefix=str(prefix) if prefix else None,
            api_key_secret=value("adyenApiKeySecret") or None,
            hmac_key_secret=value("adyenHmacKeySecret") or None,
            secret_max_age=max_age,
        )


WORKFLOW_TYPES = ("EXPRESS", "STANDARD")


def _workflow_type(value: Any) -> str:
    chosen = str(value or "EXPRESS").upper()
    if chosen not in WORKFLOW_TYPES:
        raise ValueError(f"workflowType must be one of {WORKFLOW_TYPES}, not {value!r}")
    return chosen


_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
}


def _commission(name: str, bps: Any, overrides: Any) -> dict[str, Any]:
    """The stage's commission settings, validated as the functions will read them (0..10000 basis points)."""
    text = overrides if isinstance(overrides, str) else json.dumps(overrides or {}, sort_keys=True)
    try:
        checked = Settings(payments_commission_bps=int(bps or 0), payments_commission_overrides=text)
    except (ValueError, TypeError) as err:
        raise ValueError(f"stage {name!r}: commissionBps / commissionOverrides: {err}") from None
    return {
        "commission_bps": checked.payments_commission_bps,
        "commission_overrides": json.dumps(checked.payments_commission_overrides, sort_keys=True),
    }
