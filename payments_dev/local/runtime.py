"""The local runtime: the whole system on one machine, no Docker, no AWS account.

* an AWS-compatible endpoint (moto server) on ``aws_port``: DynamoDB, S3, Step Functions,
  Lambda, so ``aws --endpoint-url`` and boto3 work as against a real account;
* the tables of :mod:`payments.kernel.tables`, the settlement bucket with its ``incoming/``
  notification to the reconcile function, the bank bucket with its ``outgoing/pain001/`` notification
  to the simulated bank and its ``incoming/bank/`` notification to the bank reconciliation, and the state machine created from the
  very ``stepfunctions/payment.asl.json`` that the CDK stack deploys, executed by
  moto's ASL interpreter with Lambda tasks dispatched to the in-process handlers;
* the HTTP API on ``port``: each request becomes an API Gateway REST proxy event
  for ``functions/payment/handler.py``;
* the ledger's analytical copy: a thread reads the ledger table's stream and writes its Parquet objects
  into the ``ledger-lake`` bucket, as the deployed pipe and delivery stream do (``ledger_lake.py``);
* the events: a thread reads the payments, payouts and reconciliation tables' streams and delivers the
  CloudEvents of their changes to the EventBridge bus ``payments-local``, keeping each in the events' log that
  ``payments events tail`` reads (``events.py``);
* the recovery schedule: a thread that invokes ``functions/recovery`` every
  ``recovery_interval`` seconds, as the EventBridge rule does every minute in AWS.

The payment state machine is created with the deployed type (``PAYMENTS_WORKFLOW_TYPE``,
default EXPRESS, as ``cdk.json``): moto then checks the ASL with its Express static
analyser. What moto does not emulate of Express (docs/runbook.md, "Express locally"):
it deduplicates execution names and keeps a history like Standard, and it does not end
an execution at 5 minutes. The code never relies on either: starts are guarded by the
conditional marker, re-drives and resumes have names of their own, and the chaos harness
injects the Express behaviours (an execution run twice, an execution lost midway).
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import socket
import threading
import time
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from functions import registry
from payments.kernel import aws
from payments.kernel.config import Settings, reset_settings
from payments.kernel.tables import create_tables
from payments.psp import hmac as adyen_hmac
from payments_dev.local import inprocess, lambdas, moto_patches
from payments_dev.local.events import LocalEvents
from payments_dev.local.ledger_lake import LedgerLakeWriter

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/payments-local-lambda"

#: ASL placeholder -> local function name (the CDK stack substitutes the real ARNs), from the registry
ASL_FUNCTIONS = {p: f.local_name for p, f in registry.asl_functions(registry.PAYMENT_ASL).items()}
#: the same for stepfunctions/refund.asl.json (issue 18)
REFUND_ASL_FUNCTIONS = {p: f.local_name for p, f in registry.asl_functions(registry.REFUND_ASL).items()}


#: every setting the local runtime gives its functions, set explicitly (not left to the model's defaults);
#: those that depend on the run (ARNs, URLs, the webhook key) are added in LocalRuntime.__init__
LOCAL_SETTINGS: dict[str, Any] = {
    "payments_table": "payments",
    "wallets_table": "wallets",
    "ledger_table": "ledger",
    "idempotency_table": "idempotency",
    "psp_table": "psp-simulator",
    "reconciliation_table": "reconciliation",
    "payout_accounts_table": "payout-accounts",
    "payouts_table": "payouts",
    "payout_accounts_key": "alias/payments-payout-accounts",
    "payout_accounts_mac_key": "alias/payments-payout-accounts-mac",
    "settlement_bucket": "settlements",
    "ledger_lake_bucket": "ledger-lake",
    # the runtime flushes the ledger's copy before every reconciliation it invokes (ledger_lake.py)
    "ledger_lake_flushed": True,
    # never used locally: the flushed copy is complete at every reconciliation, so no file is deferred
    "deferred_reconciliations_queue_url": "",
    "bank_bucket": "bank",
    "payout_minimum_minor": {"EUR": 100},
    "wallet_shards": 4,
    "ledger_total_shards": 8,
    "recovery_delay_seconds": 360.0,
    "recovery_max_attempts": 3,
    "recovery_shards": 64,
    "psp_name": "simulated-psp",
    "payments_psp": "simulator",
    "payments_psp_hmac_key_secret": "",
    "adyen_secret_max_age": 300,
    "reconcile_state_machine_arn": "",
    # no Athena locally: a file too large for one invocation takes the Distributed Map's path
    "reconcile_athena_state_machine_arn": "",
    "ledger_lake_workgroup": "",
    "ledger_lake_database": "",
    "adyen_report_time_zone": "",  # the simulator and the fake write UTC
    "adyen_environment": "test",  # never live: notifications say "live": "false"
    "payments_stage": "",  # not a deployed stage: the handlers' cold start does not require every setting
    # the platform's account that payouts are paid from (a valid test IBAN; the simulated bank holds it)
    "payout_debtor_name": "Marketplace Platform Ltd",
    "payout_debtor_iban": "DE82370400440123456789",
    "payout_debtor_bic": "COBADEFFXXX",
}
#: set per run in LocalRuntime.__init__
RUN_SETTINGS = (
    "payments_commission_bps",
    "payments_commission_overrides",
    "state_machine_arn",
    "refund_state_machine_arn",
    "payments_psp_hmac_key",
    "payments_psp_merchant_account",
    "notifications_queue_url",
)

#: the runtime started last in this process (the chaos harness drives its recovery schedule)
CURRENT: LocalRuntime | None = None


class RecoverySchedule:
    """Invokes the recovery function every ``interval`` seconds while ``enabled`` (EventBridge's rule).

    ``active`` says whether its runtime is the process's current one: the recovery runs through the
    process-wide dispatcher and environment, which belong to the runtime started last (a runtime started
    after this one also reset moto's process-global backends). A schedule left ticking in a runtime that
    is no longer current would re-drive the *other* runtime's payments behind the back of whoever paused
    that one's schedule (a chaos audit raced such a re-drive), so it does nothing until it is current again."""

    def __init__(self, interval: float, active: Callable[[], bool] = lambda: True) -> None:
        self.interval = interval
        self.enabled = interval > 0
        self.active = active
        self.runs = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="recovery-schedule", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_now(self, *, only_if_enabled: bool = False) -> Any:
        """One recovery run, through the in-process Lambda dispatcher (as the schedule invokes it).

        ``only_if_enabled`` (the schedule's own tick) reads ``enabled`` under the run lock, so a run
        never starts after :meth:`pause`-style code set it False and took the lock once."""
        with self._lock:  # one run at a time, as a reserved concurrency of 1 would
            if only_if_enabled and not (self.enabled and self.active()):
                return None
            event = {"source": "aws.events", "detail-type": "Scheduled Event"}
            payload, _errored = lambdas.DISPATCHER.invoke(registry.RECOVERY.local_name, event)
            self.runs += 1
        return json.loads(payload) if payload else None

    def _loop(self) -> None:
        while not self._stop.wait(max(0.2, self.interval)):
            if self.enabled and self.active():
                self.run_now(only_if_enabled=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def render_asl(path: Path, substitutions: dict[str, str]) -> str:
    text = path.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError(f"unsubstituted placeholder left in {path.name}")
    json.loads(text)
    return text


@dataclass
class Endpoints:
    api_url: str
    aws_url: str
    settings: Settings


class LocalRuntime:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        aws_port: int | None = None,
        quiet: bool = True,
        in_process: bool | None = None,
        recovery_interval: float = 10.0,
    ):
        self.host = host
        self.recovery = RecoverySchedule(recovery_interval, active=lambda: CURRENT is self)
        self.workflow_type = os.environ.get("PAYMENTS_WORKFLOW_TYPE", "EXPRESS").upper()
        #: this process's own AWS calls reach moto without HTTP (payments_dev/local/inprocess.py);
        #: PAYMENTS_LOCAL_TRANSPORT=http sends them over the socket (to watch them, or compare)
        self.in_process = (
            in_process if in_process is not None else os.environ.get("PAYMENTS_LOCAL_TRANSPORT", "inprocess") != "http"
        )
        self.port = port
        self.aws_port = aws_port or port + 1
        self.quiet = quiet
        self._moto: Any = None
        self._http: Any = None
        self._saved_environment: dict[str, str] | None = None
        self._saved_log_level: int | None = None
        self.settings = Settings(
            **LOCAL_SETTINGS,
            state_machine_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:payments-payment",
            refund_state_machine_arn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:payments-refund",
            # the PSP's webhook key: PAYMENTS_PSP_HMAC_KEY (hex), else one for this run
            payments_psp_hmac_key=os.environ.get("PAYMENTS_PSP_HMAC_KEY") or secrets.token_hex(32),
            payments_psp_merchant_account=os.environ.get("PAYMENTS_PSP_MERCHANT_ACCOUNT") or "LocalMerchant",
            notifications_queue_url=f"{self.aws_url}/{ACCOUNT}/payments-notifications",
            # the platform's commission: PAYMENTS_COMMISSION_BPS (default 0) and PAYMENTS_COMMISSION_OVERRIDES (JSON)
            payments_commission_bps=int(os.environ.get("PAYMENTS_COMMISSION_BPS") or 0),
            payments_commission_overrides=os.environ.get("PAYMENTS_COMMISSION_OVERRIDES") or "{}",
        )
        self._pollers: list[Any] = []
        #: the ledger's analytical copy, written into the local S3 as the ledger is written (ledger_lake.py)
        self.ledger_lake: LedgerLakeWriter | None = None
        #: the events of every change, on the local bus and in the events' log (events.py)
        self.events: LocalEvents | None = None
        # the notifications function's cold-start check, at once: a bad PAYMENTS_PSP_HMAC_KEY stops the runtime
        adyen_hmac.configured_keys({"PAYMENTS_PSP_HMAC_KEY": self.settings.payments_psp_hmac_key})
        #: called once the runtime is up (its AWS endpoint and API serve): e.g. a local PSP registering itself
        self.started_hooks: list[Any] = []

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def aws_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    # --- lifecycle ----------------------------------------------------------------
    def start(self) -> Endpoints:
        self._saved_environment = dict(os.environ)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self._configure_environment()
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        default_user_config["stepfunctions"]["execute_state_machine"] = True
        lambdas.install_into_moto()
        moto_patches.install()
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.aws_port, verbose=False)
        self._moto.start()
        if self.in_process:
            for host in {self.host, "localhost", "127.0.0.1"}:
                inprocess.install(f"{host}:{self.aws_port}", self._moto._server.app)
        # moto's backends are process-global: a runtime started earlier in this process (another
        # test session's) left its tables and state machines behind. Start from nothing.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.aws_url}/moto-api/reset", method="POST"), timeout=30
        ).read()
        self._bootstrap()
        self._publish()
        from payments_dev.local.http_api import serve_api

        self._http = serve_api(self.host, self.port)
        self.recovery.start()
        global CURRENT
        CURRENT = self
        for hook in self.started_hooks:
            hook()
        return Endpoints(self.api_url, self.aws_url, self.settings)

    def stop(self) -> None:
        global CURRENT
        if CURRENT is self:
            CURRENT = None
        self.recovery.stop()
        for poller in self._pollers:
            poller.stop()
        if self.events is not None:
            self.events.stop()
            self.events = None
        if self.ledger_lake is not None:
            if self._flush_lake_before_reconcile in lambdas.DISPATCHER.before_invoke:
                lambdas.DISPATCHER.before_invoke.remove(self._flush_lake_before_reconcile)
            self.ledger_lake.stop()
            self.ledger_lake = None
        if self._http is not None:
            self._http.shutdown()
        if self._moto is not None:
            for host in {self.host, "localhost", "127.0.0.1"}:
                inprocess.uninstall(f"{host}:{self.aws_port}")
            self._moto.stop()
        if self._saved_log_level is not None:
            from payments.kernel.observability import logger

            logger.setLevel(self._saved_log_level)
        if self._saved_environment is not None:  # give the process its environment back
            os.environ.clear()
            os.environ.update(self._saved_environment)
            reset_settings()
            aws.reset_clients()

    def __enter__(self) -> LocalRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- set-up -------------------------------------------------------------------
    def _configure_environment(self) -> None:
        env = {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_PORT": str(self.aws_port),
            "MOTO_HOST": self.host,
            "POWERTOOLS_SERVICE_NAME": "payments-local",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING" if self.quiet else "INFO"),
        }
        for name, value in self.settings.model_dump().items():
            env[name.upper()] = variable(value)
        os.environ.update(env)
        reset_settings()
        aws.reset_clients()
        # The functions' logger was made when this process first imported it, with the level of that
        # moment (INFO unless set): the runtime's level applies from now on (stop() gives the old one back).
        from payments.kernel.observability import logger

        self._saved_log_level = logger.log_level
        logger.setLevel(env["POWERTOOLS_LOG_LEVEL"])

    def _bootstrap(self) -> None:
        s = self.settings
        create_tables(boto3.client("dynamodb", endpoint_url=self.aws_url, region_name=REGION), s)
        from payments.psp.simulator import SimulatedPsp

        SimulatedPsp().configure_webhook_key(s.payments_psp_hmac_key)  # for `payments psp chargeback`
        create_payout_account_keys(boto3.client("kms", endpoint_url=self.aws_url, region_name=REGION), s)

        iam = boto3.client("iam", endpoint_url=self.aws_url, region_name=REGION)
        iam.create_role(
            RoleName="payments-local-lambda",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        lam = boto3.client("lambda", endpoint_url=self.aws_url, region_name=REGION)
        arns: dict[str, str] = {}
        for name, target in lambdas.FUNCTIONS.items():
            module = target.split(":")[0]
            response = lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=ROLE_ARN,
                Handler=module + ".handler",
                Code={"ZipFile": _placeholder_zip()},
                Timeout=30,
            )
            arns[name] = response["FunctionArn"]

        sfn = boto3.client("stepfunctions", endpoint_url=self.aws_url, region_name=REGION)
        definition = render_asl(
            ROOT / "stepfunctions" / registry.PAYMENT_ASL, {k: arns[v] for k, v in ASL_FUNCTIONS.items()}
        )
        created = sfn.create_state_machine(
            name="payments-payment", definition=definition, roleArn=ROLE_ARN, type=self.workflow_type
        )
        assert created["stateMachineArn"] == s.state_machine_arn, created["stateMachineArn"]
        refund = render_asl(
            ROOT / "stepfunctions" / registry.REFUND_ASL, {k: arns[v] for k, v in REFUND_ASL_FUNCTIONS.items()}
        )
        created = sfn.create_state_machine(name="payments-refund", definition=refund, roleArn=ROLE_ARN, type="STANDARD")
        assert created["stateMachineArn"] == s.refund_state_machine_arn, created["stateMachineArn"]

        # the PSP's notifications: webhook -> queue (+ dead-letter queue) -> consumer, as in AWS
        from payments_dev.local.queues import QueuePoller, create_queue_with_dlq

        url, arn = create_queue_with_dlq(
            boto3.client("sqs", endpoint_url=self.aws_url, region_name=REGION), "payments-notifications"
        )
        assert url == s.notifications_queue_url, url
        self._pollers = [QueuePoller(url, arn, registry.NOTIFICATIONS_CONSUMER.local_name)]
        for poller in self._pollers:
            poller.start()

        s3 = boto3.client("s3", endpoint_url=self.aws_url, region_name=REGION)
        # the ledger's copy: the table's stream into the lake bucket, complete before each reconciliation
        s3.create_bucket(Bucket=s.ledger_lake_bucket)
        self.ledger_lake = LedgerLakeWriter(
            endpoint_url=self.aws_url, region=REGION, table=s.ledger_table, bucket=s.ledger_lake_bucket
        )
        self.ledger_lake.start()
        lambdas.DISPATCHER.before_invoke.append(self._flush_lake_before_reconcile)
        # the events: the resource tables' streams onto the bus payments-local and into the events' log
        self.events = LocalEvents(
            endpoint_url=self.aws_url,
            region=REGION,
            tables=(s.payments_table, s.payouts_table, s.reconciliation_table),
            payments_table=s.payments_table,
        )
        self.events.create()
        self.events.start()
        s3.create_bucket(Bucket=s.settlement_bucket)
        s3.put_bucket_notification_configuration(
            Bucket=s.settlement_bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "LambdaFunctionArn": arns[registry.RECONCILE.local_name],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                    }
                ]
            },
        )
        # the bank rail's bucket: our pain.001 files go to the simulated bank, its answers to the bank
        # reconciliation (infra/constructs/bank.py declares the same two notifications)
        s3.create_bucket(Bucket=s.bank_bucket)
        s3.put_bucket_notification_configuration(
            Bucket=s.bank_bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "LambdaFunctionArn": arns[function.local_name],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                    }
                    for function, prefix in (
                        (registry.SIMULATED_BANK, "outgoing/pain001/"),
                        (registry.BANK_RECONCILE, "incoming/bank/"),
                    )
                ]
            },
        )

    def _flush_lake_before_reconcile(self, function_name: str, event: Any) -> None:
        """A reconcile invocation reads the ledger's copy: everything booked before it is written first."""
        if function_name == registry.RECONCILE.local_name and self.ledger_lake is not None:
            self.ledger_lake.flush()

    def _publish(self) -> None:
        """Publish the settings on the endpoint, so that ``payments <command> --endpoint URL`` derives
        the API URL, the region, the table and bucket names and the ARNs from the URL alone (never the
        webhook's HMAC key: a command that needs it reads it where the simulated PSP keeps it)."""
        from payments.ops.clikit import publish

        settings = {
            name.upper(): variable(value)
            for name, value in self.settings.model_dump().items()
            if name != "payments_psp_hmac_key"
        }
        publish(self.aws_url, {"api_url": self.api_url, "region": REGION, "settings": settings}, REGION)


def variable(value: Any) -> str:
    """A setting's value as its environment variable holds it (a mapping as JSON: ``payout_minimum_minor``)."""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)


def create_payout_account_keys(kms: Any, settings: Settings) -> None:
    """The payout accounts' KMS keys under the settings' aliases, as the stack declares them
    (``infra/constructs/payouts.py``): a symmetric key for the IBANs' data keys, an HMAC key for their hashes."""
    sealing = kms.create_key(Description="payout accounts: IBAN data keys", KeyUsage="ENCRYPT_DECRYPT")
    kms.create_alias(AliasName=settings.payout_accounts_key, TargetKeyId=sealing["KeyMetadata"]["KeyId"])
    hashing = kms.create_key(
        Description="payout accounts: IBAN keyed hash", KeyUsage="GENERATE_VERIFY_MAC", KeySpec="HMAC_256"
    )
    kms.create_alias(AliasName=settings.payout_accounts_mac_key, TargetKeyId=hashing["KeyMetadata"]["KeyId"])


def _placeholder_zip() -> bytes:
    """moto needs a code package; the code that runs is the in-process handler."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "dispatched in-process by payments_dev.local.lambdas\n")
    return buffer.getvalue()


def wait_forever() -> None:
    event = threading.Event()
    try:
        while not event.wait(3600):
            pass
    except KeyboardInterrupt:
        pass


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
