"""The functions of the payment system: one entry each, the only list of them.

Read by the CDK app (``infra/constructs/function.py`` builds each function from its entry and
grants exactly the table actions declared here), by the local runtime (``payments_dev.local``: the
in-process dispatcher and the ASL substitutions) and by the tests (``tests/infrastructure`` check
that the synthesised functions, state machines and IAM policies are what this module declares).

Data only: no CDK, no boto3, no moto; the deployed functions import it (``payments.kernel.config``
validates each function's settings at cold start against :meth:`Function.required_settings`).

A function ``<name>`` is ``functions/<name>/handler.py:handler``, deployed as
``payments-<stage>-<name>`` and run locally as ``payments-<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: a stage's PSP (``infra.stage.Stage.psp``)
Psp = Literal["simulated", "adyen"]
PSPS: tuple[Psp, ...] = ("simulated", "adyen")

#: the state machines, as ``stepfunctions/<file>``; their ``${...}`` placeholders are filled by the
#: functions whose :attr:`Function.asl_placeholders` name them
PAYMENT_ASL = "payment.asl.json"
RECONCILE_ASL = "reconcile.asl.json"
RECONCILE_ATHENA_ASL = "reconcile_athena.asl.json"
REFUND_ASL = "refund.asl.json"


@dataclass(frozen=True)
class TableAccess:
    """The DynamoDB ``actions`` a function performs on one table (and ``indexes`` it queries)."""

    #: the ``payments.kernel.config.Settings`` field holding the table's name (its variable: upper-cased)
    setting: str
    #: DynamoDB actions without the ``dynamodb:`` prefix
    actions: tuple[str, ...]
    #: global secondary indexes it queries, each granted by its own ARN
    indexes: tuple[str, ...] = ()
    #: only on stages whose PSP is this one (None: every stage)
    psp: Psp | None = None


@dataclass(frozen=True)
class Function:
    """One Lambda function: its identity, its sizing, what it may touch and which settings it needs."""

    name: str
    description: str
    memory_mb: int
    timeout_s: int
    #: ``(ASL file, placeholder)`` pairs whose ``${placeholder}`` this function's ARN fills
    asl_placeholders: tuple[tuple[str, str], ...] = ()
    tables: tuple[TableAccess, ...] = ()
    #: ``payments.kernel.config.Settings`` fields (other than its tables) it requires on every stage. The
    #: recovery tunables (``recovery_delay_seconds``, ``recovery_max_attempts``, ``recovery_shards``) are
    #: not listed: they are the same on every stage, their values are the model's (docs/runbook.md)
    settings: tuple[str, ...] = ()
    #: IAM actions other than DynamoDB, logs and X-Ray (``service:Action``): the CDK construct grants
    #: them on the exact resources; a grant of an action not listed here is refused at synthesis
    actions: tuple[str, ...] = ()
    #: the same, only on stages whose PSP is the key's
    psp_actions: tuple[tuple[Psp, tuple[str, ...]], ...] = ()
    reserved_concurrency: int | None = None

    @property
    def module(self) -> str:
        return f"functions.{self.name}.handler"

    @property
    def handler(self) -> str:
        """The Lambda handler string: ``functions.<name>.handler.handler``."""
        return f"{self.module}.handler"

    @property
    def local_name(self) -> str:
        """The function's name in the local runtime (moto's Lambda, the in-process dispatcher)."""
        return f"payments-{self.name}"

    def tables_for(self, psp: Psp) -> tuple[TableAccess, ...]:
        return tuple(t for t in self.tables if t.psp in (None, psp))

    def actions_for(self, psp: Psp) -> frozenset[str]:
        return frozenset(self.actions) | frozenset(a for p, extra in self.psp_actions if p == psp for a in extra)

    def required_settings(self, psp: Psp) -> frozenset[str]:
        """Every ``Settings`` field this function needs on a stage of ``psp``: its tables and the rest."""
        return frozenset({t.setting for t in self.tables_for(psp)} | set(self.settings))

    def placeholders(self, asl: str) -> tuple[str, ...]:
        return tuple(p for file, p in self.asl_placeholders if file == asl)


_IDEMPOTENCY = TableAccess("idempotency_table", ("GetItem", "PutItem", "UpdateItem", "DeleteItem"))
#: an order read and moved (its status, its ``wallet_updated``/``ledger_updated`` flag)
_ORDERS = TableAccess("payments_table", ("GetItem", "UpdateItem"))
_SHARDS = ("wallet_shards", "ledger_total_shards")
_START = "states:StartExecution"
_READ_SECRET = "secretsmanager:GetSecretValue"  # noqa: S105 -- an IAM action name, not a secret

PAYMENT = Function(
    name="payment",
    description="Checkout API (POST/GET /v1/...) and the FinalizePayment task of the payment workflow",
    memory_mb=512,
    timeout_s=10,  # below API Gateway's 29 s integration timeout
    asl_placeholders=((PAYMENT_ASL, "PaymentFunctionArn"),),
    tables=(
        _IDEMPOTENCY,
        # ConditionCheckItem and PutItem authorise the TransactWriteItems that stores a payment with its orders
        TableAccess(
            "payments_table", ("GetItem", "PutItem", "UpdateItem", "BatchGetItem", "Query", "ConditionCheckItem")
        ),
        TableAccess("wallets_table", ("Query", "GetItem", "BatchGetItem")),
        TableAccess("ledger_table", ("Query", "GetItem", "BatchGetItem")),
    ),
    # payments_psp: on an Adyen stage the API refuses what Adyen's minor units cannot carry (422)
    settings=(
        "state_machine_arn",
        "payments_psp",
        *_SHARDS,
        # the platform's commission, fixed on each order as the payment is accepted
        "payments_commission_bps",
        "payments_commission_overrides",
    ),
    actions=(_START, "states:DescribeExecution"),
)
EXECUTOR = Function(
    name="executor",
    description="Executes one payment order: charges the PSP with the order id as idempotency key",
    memory_mb=256,
    timeout_s=12,  # below the task's TimeoutSeconds (15) in the ASL
    asl_placeholders=((PAYMENT_ASL, "ExecutorFunctionArn"),),
    tables=(
        _ORDERS,
        # the simulated PSP runs in-process and keeps its own record of charges
        TableAccess("psp_table", ("GetItem", "PutItem", "UpdateItem", "Query"), psp="simulated"),
    ),
    settings=("psp_name", "payments_psp"),
    psp_actions=(("adyen", (_READ_SECRET,)),),  # the Adyen API key secret only
)
WALLET = Function(
    name="wallet",
    description="Credits the seller's wallet for a successful payment order (exactly once)",
    memory_mb=256,
    timeout_s=6,  # below the task's TimeoutSeconds (8) in the ASL
    asl_placeholders=((PAYMENT_ASL, "WalletFunctionArn"),),
    tables=(TableAccess("wallets_table", ("GetItem", "PutItem", "UpdateItem", "Query")), _ORDERS),
    settings=("wallet_shards",),
)
LEDGER = Function(
    name="ledger",
    description="Appends the balanced ledger transaction of a successful payment order (exactly once)",
    memory_mb=256,
    timeout_s=6,  # below the task's TimeoutSeconds (8) in the ASL
    asl_placeholders=((PAYMENT_ASL, "LedgerFunctionArn"),),
    tables=(TableAccess("ledger_table", ("GetItem", "PutItem", "UpdateItem", "Query")), _ORDERS),
    settings=("ledger_total_shards", "psp_name"),
)
RECONCILE = Function(
    name="reconcile",
    description="Reconciles a settlement file under incoming/ with the ledger; writes reports/",
    #: 1,769 MB is where Lambda gives a function one full vCPU; the engine is single-threaded and CPU-bound,
    #: so more buys no speed. Its memory is bounded whatever the file's size: duckdb's limit for the matching
    #: (Bounds.columnar_memory_limit, 256 MB; it spills to /tmp above it; a statement that runs out anyway runs
    #: again with more, up to Bounds.columnar_memory_ceiling_mb, 1 GB), a chunk's entries (~50 MiB), at most
    #: 100k mismatches kept for the report.
    memory_mb=1769,
    #: Below the 900 s TimeoutSeconds of every Task in the ASL, so that a run that is too slow fails
    #: as the function's own timeout (not retried) instead of States.Timeout (retried while it still runs).
    #: The single pass is bounded to 512 MiB (~3 M Adyen rows): minutes at the engine's throughput.
    timeout_s=14 * 60,
    asl_placeholders=((RECONCILE_ASL, "ReconcileFunctionArn"), (RECONCILE_ATHENA_ASL, "ReconcileFunctionArn")),
    tables=(
        # the day's transactions come from the ledger's copy in S3 (ledger_lake_bucket: no Query of the ledger);
        # carry-over rows (GetItem), and the three-way check's two sides read by key: the seller accounts'
        # ledger totals and their wallet shards (BatchGetItem); what a reconciled file books
        # (payments.accounts.settlement): the settled charges' move from pending to available (a SETTLED marker
        # per order, a ledger transaction per batch, the balance item and the pending shards: PutItem and
        # UpdateItem in one TransactWriteItems) and the PSP's fees
        TableAccess("ledger_table", ("GetItem", "BatchGetItem", "PutItem", "UpdateItem")),
        TableAccess("wallets_table", ("BatchGetItem", "PutItem", "UpdateItem")),
        # Query on the index: a day's open mismatches, which a late settlement in this file resolves
        TableAccess(
            "reconciliation_table",
            ("GetItem", "PutItem", "UpdateItem", "Query", "BatchWriteItem"),
            indexes=("by_mismatch_day",),
        ),
        TableAccess("payments_table", ("GetItem", "BatchGetItem")),
    ),
    settings=(
        "psp_name",
        "settlement_bucket",
        "ledger_lake_bucket",
        "reconcile_state_machine_arn",
        "reconcile_athena_state_machine_arn",
        "ledger_lake_workgroup",
        "ledger_lake_database",
        "deferred_reconciliations_queue_url",
        *_SHARDS,
    ),
    actions=(
        *("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", _START),
        # its failure destination, the dead-letter queue (CDK's SqsDestination), and the deferred queue: sent to
        # (a file whose ledger day is not complete yet), consumed (its event source) and kept invisible longer
        *("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
        *("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"),
    ),
)
OPERATOR = Function(
    name="operator",
    description="Operator API (/v1/operator/...): attention flags and settlement mismatches; resolve one, recording who",
    memory_mb=256,
    timeout_s=25,  # below API Gateway's 29 s integration timeout
    tables=(
        # attention: every open flag (a Scan: an audit, as payments attention list), an order or a refund by
        # id (GetItem) and the conditional write that closes a flag (UpdateItem)
        TableAccess("payments_table", ("Scan", "GetItem", "UpdateItem")),
        # mismatches: a day's (the index), the latest days (Query), one by key, the conditional resolution
        TableAccess("reconciliation_table", ("Query", "GetItem", "UpdateItem"), indexes=("by_mismatch_day",)),
    ),
    settings=("settlement_bucket",),
    # the resolved mismatch's HTML report, written again from its JSON report (reports/ only)
    actions=("s3:GetObject", "s3:PutObject"),
)
PSP = Function(
    name="psp",
    description="Simulated PSP: writes yesterday's settlement file to incoming/simulated-psp/",
    memory_mb=512,
    timeout_s=120,
    tables=(TableAccess("psp_table", ("Query", "GetItem"), indexes=("by_charge_day", "by_modification_day")),),
    settings=("psp_name", "settlement_bucket"),
    actions=("s3:PutObject",),
)
RECOVERY = Function(
    name="recovery",
    description="Every minute: re-drives payments and refunds unfinished past their deadline (bounded), then parks them NEEDS_ATTENTION",
    memory_mb=256,
    timeout_s=50,  # below the schedule's period: runs do not pile up
    tables=(
        # Query: the due payments and refunds, on the index only; UpdateItem: the conditional claim, the give-up
        # and the NEEDS_ATTENTION flags; GetItem + BatchGetItem: a due refund, a payment's orders when it gives up
        TableAccess("payments_table", ("Query", "UpdateItem", "GetItem", "BatchGetItem"), indexes=("by_recovery_due",)),
    ),
    settings=("state_machine_arn", "refund_state_machine_arn"),
    # StartExecution: both workflows' re-drives; DescribeExecution: whether a refund's execution still runs
    actions=(_START, "states:DescribeExecution"),
)
REFUNDS = Function(
    name="refunds",
    description="Refunds API (POST/GET /v1/refunds) and the refund workflow's tasks",
    memory_mb=512,
    timeout_s=20,  # below the tasks' TimeoutSeconds (30) and API Gateway's 29 s
    asl_placeholders=((REFUND_ASL, "RefundFunctionArn"),),
    tables=(
        _IDEMPOTENCY,
        # the reservation and the outcome are TransactWriteItems over payments, wallets and ledger
        TableAccess("payments_table", ("GetItem", "PutItem", "UpdateItem", "ConditionCheckItem")),
        TableAccess("wallets_table", ("PutItem", "UpdateItem")),
        TableAccess("ledger_table", ("PutItem", "UpdateItem")),
        # the simulated PSP runs in-process and keeps its own record of refunds
        TableAccess("psp_table", ("GetItem", "PutItem", "UpdateItem"), psp="simulated"),
    ),
    settings=("refund_state_machine_arn", "psp_name", "payments_psp", *_SHARDS),
    actions=(_START,),
    psp_actions=(("adyen", (_READ_SECRET,)),),  # the Adyen API key secret only
)
NOTIFICATIONS = Function(
    name="notifications",
    description="POST /v1/psp/notifications: verify every item's HMAC, store it once, enqueue it, answer [accepted]",
    memory_mb=256,
    timeout_s=8,  # Adyen waits 10 s for the acknowledgement
    tables=(TableAccess("payments_table", ("PutItem", "UpdateItem")),),
    settings=(
        "notifications_queue_url",
        "payments_psp_hmac_key_secret",
        "adyen_secret_max_age",
        "payments_psp_merchant_account",
        "adyen_environment",  # the notifications' live must match it
    ),
    # the queue (CDK's grant_send_messages) and the HMAC key secret
    actions=("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", _READ_SECRET),
)
NOTIFICATIONS_CONSUMER = Function(
    name="notifications_consumer",
    description="Applies stored PSP notifications (AUTHORISATION, REFUND, CHARGEBACK, CHARGEBACK_REVERSED, SECOND_CHARGEBACK) once, forward only",
    memory_mb=512,
    timeout_s=30,
    tables=(
        TableAccess("payments_table", ("GetItem", "PutItem", "UpdateItem", "ConditionCheckItem")),
        TableAccess("wallets_table", ("GetItem", "PutItem", "UpdateItem")),
        TableAccess("ledger_table", ("GetItem", "PutItem", "UpdateItem")),
    ),
    # payments_psp: a notification's amount is read by Adyen's table of decimals, strictly on an Adyen stage
    settings=("payments_psp_merchant_account", "psp_name", "payments_psp", *_SHARDS),
    # the SQS event source mapping's poller (CDK's SqsEventSource)
    actions=(
        *("sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"),
        *("sqs:DeleteMessage", "sqs:GetQueueAttributes"),
    ),
)
PAYOUTS = Function(
    name="payouts",
    description="Payouts API: PUT/GET /v1/sellers/{seller_account}/payout-account (the IBAN encrypted by KMS, answered "
    "masked), POST/GET /v1/payouts (the reservation from the seller's available balance)",
    memory_mb=512,
    timeout_s=10,  # below API Gateway's 29 s integration timeout
    tables=(
        _IDEMPOTENCY,
        # Query: a seller's accounts (GET without currency); no UpdateItem: the API replaces an account whole
        TableAccess("payout_accounts_table", ("GetItem", "PutItem", "Query")),
        # the reservation is one TransactWriteItems: the payout (Put), the balance item (Update), the ledger
        # transaction (Put) and its totals (Update); GetItem: a payout, the balance when amount is left out
        TableAccess("payouts_table", ("GetItem", "PutItem")),
        TableAccess("wallets_table", ("GetItem", "UpdateItem")),
        TableAccess("ledger_table", ("PutItem", "UpdateItem")),
    ),
    settings=("payout_accounts_key", "payout_accounts_mac_key", *_SHARDS),
    # seal a new IBAN (a data key) and hash it (the HMAC key); never kms:Decrypt: the API cannot read an IBAN back
    actions=("kms:GenerateDataKey", "kms:GenerateMac"),
)
BANK_RECONCILE = Function(
    name="bank_reconcile",
    description="Reconciles the bank's answers under incoming/bank/ (pain.002, camt.053, camt.054) with the payouts",
    memory_mb=512,
    timeout_s=120,  # a day's statement of one account: thousands of entries, each one conditional write
    tables=(
        # the run's summary and mismatches (conditional puts), the PSP payouts recorded by settlement files
        # (Query by currency and amount, the file's summary), the one claim of each PSP payout (PutItem)
        TableAccess("reconciliation_table", ("GetItem", "PutItem", "UpdateItem", "Query")),
        # the claim of a PSP payout is one TransactWriteItems with its ledger booking (bank <- psp_receivable of
        # psp_name): the ledger's PutItem and UpdateItem below
        # the payouts' book (payments.payouts.repository): each outcome is one TransactWriteItems over the payout
        # (its status, conditional), the seller's balance item and the ledger's booking; a returned payout's
        # account is marked invalid (a conditional UpdateItem)
        TableAccess("payouts_table", ("GetItem", "UpdateItem")),
        TableAccess("wallets_table", ("UpdateItem",)),
        TableAccess("ledger_table", ("PutItem", "UpdateItem")),
        TableAccess("payout_accounts_table", ("GetItem", "UpdateItem")),
    ),
    settings=("bank_bucket", "psp_name", *_SHARDS),
    # GetObject: the bank's files and our pain.001 a whole-file rejection names; PutObject: reports and
    # quarantine; DeleteObject: an unreadable file leaves incoming/ (moved to quarantine/)
    actions=(
        *("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"),
        *("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
    ),
)
SIMULATED_BANK = Function(
    name="simulated_bank",
    description="Simulated bank (stages without a real one): answers each pain.001 with a pain.002, books the day's camt.053",
    memory_mb=512,
    timeout_s=60,
    settings=(
        *("bank_bucket", "settlement_bucket", "psp_name"),
        *("payout_debtor_name", "payout_debtor_iban", "payout_debtor_bic"),
    ),
    # its own store in the bank bucket (conditional puts, a listing of the days) and the PSP's settlement file
    actions=("s3:GetObject", "s3:PutObject", "s3:ListBucket"),
)
PAYOUT_RUN = Function(
    name="payout_run",
    description="Nightly: a payout per seller above the stage minimum, then every PENDING EUR payout in one pain.001 "
    "file written to the bank bucket (outgoing/pain001/)",
    memory_mb=1024,
    # a run that stops at its timeout is completed by the next (payments.payouts.run): every step may repeat
    timeout_s=5 * 60,
    tables=(
        # Query: the PENDING payouts (by_pending) and a day's runs; PutItem/UpdateItem: runs, claims, statuses and
        # the reservations' TransactWriteItems; GetItem: each payout read again before it is claimed and sent
        TableAccess("payouts_table", ("GetItem", "PutItem", "UpdateItem", "Query"), indexes=("by_pending",)),
        # Query: the keys of the sellers' balance items (by_balance_shard), BatchGetItem: the items (available) for
        # the scheduled payouts; Update: their reservations
        TableAccess("wallets_table", ("Query", "BatchGetItem", "GetItem", "UpdateItem"), indexes=("by_balance_shard",)),
        TableAccess("ledger_table", ("PutItem", "UpdateItem")),
        # the payout accounts: whether usable (GetItem), and a payout to an unusable one fails (no write to them)
        TableAccess("payout_accounts_table", ("GetItem",)),
    ),
    settings=(
        "bank_bucket",
        *_SHARDS,
        "payout_minimum_minor",
        "payout_debtor_name",
        "payout_debtor_iban",
        "payout_debtor_bic",
    ),
    # the file (s3:PutObject on outgoing/pain001/ only) and each payee's IBAN decrypted in memory (kms:Decrypt)
    actions=("s3:PutObject", "kms:Decrypt"),
)
EVENTS = Function(
    name="events",
    description="The events' enrichment: each table's pipe passes its DynamoDB stream records, it answers the "
    "CloudEvents of their changes for the stage's bus",
    memory_mb=256,
    timeout_s=30,
    tables=(
        # a checkout's event carries its orders, read as the API reads them (BatchGetItem)
        TableAccess("payments_table", ("GetItem", "BatchGetItem")),
    ),
)

#: every function, in the order the stack builds them
FUNCTIONS: tuple[Function, ...] = (
    PAYMENT,
    EXECUTOR,
    WALLET,
    LEDGER,
    RECONCILE,
    PSP,
    RECOVERY,
    REFUNDS,
    NOTIFICATIONS,
    NOTIFICATIONS_CONSUMER,
    OPERATOR,
    PAYOUTS,
    BANK_RECONCILE,
    SIMULATED_BANK,
    PAYOUT_RUN,
    EVENTS,
)
BY_NAME: dict[str, Function] = {f.name: f for f in FUNCTIONS}
BY_LOCAL_NAME: dict[str, Function] = {f.local_name: f for f in FUNCTIONS}


def deployed_on(psp: Psp, simulated_bank: bool = True) -> tuple[Function, ...]:
    """The functions a stage of ``psp`` deploys (the simulated PSP's nightly job only with the simulator, the
    simulated bank only on a stage without a real bank)."""
    return tuple(
        f for f in FUNCTIONS if (f is not PSP or psp == "simulated") and (f is not SIMULATED_BANK or simulated_bank)
    )


def asl_functions(asl: str) -> dict[str, Function]:
    """``${placeholder}`` of ``stepfunctions/<asl>`` -> the function whose ARN fills it."""
    return {p: f for f in FUNCTIONS for p in f.placeholders(asl)}
