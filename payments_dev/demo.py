"""``payments demo``: a Cyber Monday on the local runtime, end to end.

Hundreds of checkouts across many sellers and currencies go through the real
HTTP API, the real state machine definition and the real handlers: good cards,
declines, a flaky PSP, lost PSP answers, and idempotent replays of the same
request. Then money flows back (on the simulated PSP): a few refunds through
``POST /v1/refunds``, and a chargeback, its reversal and its second chargeback as the PSP's
signed notifications. Then the summary: orders by status, top seller balances, the trial
balance, and every money invariant checked over the stored data; the PSP's
settlement file of the day (charges, ``Refunded``, ``Chargeback``, ``ChargebackReversed`` and
``SecondChargeback`` rows) is reconciled.

Then the sellers get paid, with the platform's commission (:data:`COMMISSION_BPS`, one seller at
:data:`COMMISSION_OVERRIDES`, set by ``payments demo`` on its runtime): every EUR seller registers a
payout account (valid German test IBANs; one seller the bank's rejected test IBAN, one its returned one),
the night's payout run writes its ``pain.001``, the simulated bank answers it (``pain.002``), the day and
the next are closed (``camt.053``) and the bank reconciliation applies each file. The summary shows the
payouts by status, the money of the failed and returned payouts back in available, the sellers whose
currency has no payout rail, and the platform's commission revenue, PSP fees and result. Last, how many
events of each type the run produced (the CloudEvents the runtime delivered: ``payments events tail``).

The day is left behind before the runtime stops: the settlement bucket as it ends (the PSP's file,
the reconciliation's JSON, HTML and CSV reports, anything quarantined), the bank bucket under ``bank/``
(the ``pain.001`` sent, the bank's ``pain.002`` and ``camt.053`` files and their reports), the trial
balance and the printed summary go to a local folder (``demo-output/<run stamp>/`` by default), whose path the
demo prints with a line saying how to open the HTML report.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from payments.kernel import clock, money
from payments.ops.invariants import check_current
from payments_dev.local.client import ApiClient

#: (token, weight): mostly good cards, and every failure mode of the simulated PSP
TOKENS = [
    ("tok_visa", 50),
    ("tok_mastercard", 20),
    ("tok_amex", 8),
    ("tok_chargeDeclined", 6),
    ("tok_insufficientFunds", 4),
    ("tok_pspUnavailable", 7),
    ("tok_pspTimeout", 5),
]
#: (currency, weight, typical order amount in major units)
CURRENCIES = [("USD", 50, 60), ("EUR", 25, 50), ("GBP", 10, 40), ("JPY", 10, 7000), ("KWD", 5, 20)]
REPLAY_SHARE = 0.1
#: successful orders refunded after the checkouts (the first ones in id order, deterministic per seed):
#: this many refunds of half the amount, then one of the whole amount
PARTIAL_REFUNDS = 3
#: the platform's commission in the demo (basis points: 1.50 %), and one seller's own rate
COMMISSION_BPS = 150
COMMISSION_OVERRIDES = {"seller_001": 90}
#: the bank code of the simulated bank's test IBANs (Commerzbank Köln, as in the contract)
TEST_BANK_CODE = "37040044"
#: the account number the demo's paid IBANs count up from (never ending in the bank's 0001 or 0002)
PAID_ACCOUNTS_FROM = 532_013_000
#: where ``payments demo`` leaves its day by default (relative to the working directory; git-ignored)
OUTPUT_ROOT = Path("demo-output")


@dataclass
class Scenario:
    checkouts: list[dict[str, Any]]
    replays: set[str] = field(default_factory=set)


def run_id(now: float | None = None) -> str:
    """A per-run tag for the ids: a letter then the time. The letter keeps the seed's and the
    time's digits apart: run together they make a 13-19 digit run, Luhn-valid one time in ten,
    which the API rightly rejects as a card number."""
    return f"r{int(time.time() if now is None else now)}"


def build_scenario(n: int, seed: int, sellers: int = 40, run_id: str = "") -> Scenario:
    rng = random.Random(seed)
    seller_names = [f"seller_{i:03d}" for i in range(sellers)]
    hot = seller_names[:4]  # a few big sellers get most of the traffic
    checkouts = []
    prefix = f"cm{seed}{run_id}"
    for i in range(n):
        currency, _, typical = rng.choices(CURRENCIES, weights=[c[1] for c in CURRENCIES])[0]
        token = rng.choices([t for t, _ in TOKENS], weights=[w for _, w in TOKENS])[0]
        count = rng.choices([1, 2, 3, 4], weights=[40, 30, 20, 10])[0]
        chosen = rng.sample(seller_names, count) if rng.random() < 0.6 else rng.sample(hot, min(count, len(hot)))
        orders = []
        for j, seller in enumerate(chosen):
            minor = max(1, int(rng.lognormvariate(0, 0.8) * typical * 10 ** money.exponent(currency)))
            orders.append(
                {
                    "payment_order_id": f"{prefix}_po_{i:05d}_{j}",
                    "seller_account": seller,
                    "amount": money.format_minor(minor, currency),
                    "currency": currency,
                }
            )
        checkouts.append(
            {
                "checkout_id": f"{prefix}_chk_{i:05d}",
                "buyer_info": {"buyer_id": f"buyer_{rng.randrange(10_000):05d}", "email": f"shopper{i}@example.com"},
                "payment_method": {"type": "card", "token": token},
                "payment_orders": orders,
            }
        )
    replays = {c["checkout_id"] for c in checkouts if rng.random() < REPLAY_SHARE}
    return Scenario(checkouts, replays)


def settle_and_reconcile(timeout: float = 120.0, settle: Callable[[str], str] | None = None) -> bool:
    """Close the day: the PSP writes its settlement file, the S3 trigger reconciles it."""
    from payments.kernel import aws, clock
    from payments.kernel.config import settings
    from payments.ops.reconcile import psp_settle

    print("\nSettlement and reconciliation:")
    print("  ", end="")
    day = clock.now().date().isoformat()
    key = settle(day) if settle is not None else psp_settle(day, None)
    s3 = aws.client("s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = s3.get_object(Bucket=settings().settlement_bucket, Key=f"reports/{key}.json")["Body"].read()
            break
        except s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    else:
        print(f"  no report for {key} within {timeout:.0f}s")
        return False
    report = json.loads(body)
    kinds = Counter(m["kind"] for m in report["mismatches"])
    outcomes = report["summary"]["row_outcomes"]
    print(
        f"  reports/{key}.json: {report['rows']} rows: {outcomes['matched']} matched, {outcomes['recorded']} recorded "
        f"(fees, payouts), {len(report['mismatches'])} mismatches{' ' + str(dict(kinds)) if kinds else ''}, "
        f"{len(report['rejected_rows'])} rejected; wallet/ledger three-way check: "
        f"{len(report.get('three_way', {}).get('differences', []))} differences"
    )
    adjustments = report["summary"].get("adjustments") or {}
    if any(counts["rows"] or counts["missing_in_settlement"] for counts in adjustments.values()):
        print(
            "  refunds and chargebacks: "
            + ", ".join(
                f"{kind} {c['matched']}/{c['rows']} matched"
                + (f" ({c['missing_in_settlement']} missing from the file)" if c["missing_in_settlement"] else "")
                for kind, c in adjustments.items()
            )
        )
    return bool(report["clean"]) and not report["rejected_rows"]


def money_back(client: ApiClient, final: dict[str, Any], run: str, timeout: float = 120.0) -> bool:
    """Refunds through the API and a chargeback with its reversal and its second chargeback from the
    simulated PSP, each waited for; prints one line. True if every one ended as it should."""
    from payments.psp.simulator import SimulatedPsp
    from payments_dev.local.runtime import wait_until

    succeeded = sorted(
        (
            (o["payment_order_id"], checkout_id, o)
            for checkout_id, body in final.items()
            for o in body["payment_orders"]
            if o["status"] == "SUCCESS"
        ),
        key=lambda t: t[0],
    )
    if len(succeeded) < PARTIAL_REFUNDS + 2:
        print("\nMoney back: too few successful orders for refunds and a chargeback")
        return True
    refunds: list[tuple[str, str]] = []
    for i, (po, _, order) in enumerate(succeeded[: PARTIAL_REFUNDS + 1]):
        minor = money.parse_amount(order["amount"], order["currency"])
        amount = minor if i == PARTIAL_REFUNDS else max(1, minor // 2)
        refund_id = f"{run}_rf_{i}"
        body = {
            "refund_id": refund_id,
            "payment_order_id": po,
            "amount": money.format_minor(amount, order["currency"]),
            "currency": order["currency"],
        }
        reply = client.request("POST", "/v1/refunds", body, headers={"Idempotency-Key": f"idem-{refund_id}"})
        if reply.status != 202:
            print(f"\nMoney back: refund {refund_id} answered {reply.status} {reply.body}")
            return False
        refunds.append((refund_id, body["amount"] + " " + body["currency"]))
    statuses: dict[str, str] = {}

    def decided() -> bool:
        for refund_id, _ in refunds:
            if statuses.get(refund_id, "PENDING") == "PENDING":
                statuses[refund_id] = client.request("GET", f"/v1/refunds/{refund_id}").body.get("status", "PENDING")
        return all(status != "PENDING" for status in statuses.values())

    wait_until(decided, timeout, interval=0.2)
    po, checkout_id, order = succeeded[PARTIAL_REFUNDS + 1]
    psp = SimulatedPsp()

    def deliver(item: dict[str, Any], chargeback_amount: str) -> bool:
        client.request(
            "POST", "/v1/psp/notifications", {"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}
        )
        return wait_until(
            lambda: any(
                o["payment_order_id"] == po and o.get("chargeback_amount") == chargeback_amount
                for o in client.payment(checkout_id).body["payment_orders"]
            ),
            timeout,
            interval=0.2,
        )

    chargeback = psp.raise_chargeback(po)
    charged_back = deliver(chargeback, order["amount"])
    reversed_ = charged_back and deliver(
        psp.reverse_chargeback(chargeback["pspReference"]), money.format_minor(0, order["currency"])
    )
    # the defence lost after all: the dispute's second chargeback takes the amount again
    second = reversed_ and deliver(psp.second_chargeback(chargeback["pspReference"]), order["amount"])
    outcome = Counter(statuses.values())

    def said(done: bool) -> str:
        return "applied" if done else "NOT APPLIED"

    print(
        f"\nMoney back:          refunds {', '.join(f'{k} {v}' for k, v in sorted(outcome.items()))} "
        f"({', '.join(amount for _, amount in refunds)}); chargeback of {order['amount']} {order['currency']} on {po} "
        f"{said(charged_back)}, its reversal {said(reversed_)}, its second chargeback {said(second)}"
    )
    return outcome == Counter({"SUCCEEDED": len(refunds)}) and second


def paid_iban(n: int) -> str:
    """The ``n``-th valid German test IBAN the simulated bank pays (an account number not ending in 0001 or
    0002, whose IBAN check digits ``schwifty`` computes)."""
    from schwifty import IBAN

    accounts = (a for a in range(PAID_ACCOUNTS_FROM, PAID_ACCOUNTS_FROM + 10 * (n + 1)) if a % 10_000 not in (1, 2))
    account = next(a for i, a in enumerate(accounts) if i == n)
    return str(IBAN.generate("DE", bank_code=TEST_BANK_CODE, account_code=f"{account:010d}"))


def payout_plan(sellers: list[str]) -> dict[str, tuple[str, str]]:
    """seller -> (IBAN, the status its payout ends in): the first seller the bank's rejected test IBAN, the
    second its returned one (when there are at least three), every other a paid one."""
    from payments.payouts.bank.simulated import TEST_IBAN_REJECTED, TEST_IBAN_RETURNED

    plan: dict[str, tuple[str, str]] = {}
    special = [(TEST_IBAN_REJECTED, "FAILED"), (TEST_IBAN_RETURNED, "RETURNED")] if len(sellers) >= 3 else []
    for i, seller in enumerate(sorted(sellers)):
        plan[seller] = special[i] if i < len(special) else (paid_iban(i - len(special)), "PAID")
    return plan


def _bank_report(key: str, timeout: float) -> dict[str, Any] | None:
    """The bank reconciliation's report of the bank file ``key``, once written (None after ``timeout``)."""
    from payments.kernel import aws
    from payments.kernel.config import settings
    from payments_dev.local.runtime import wait_until

    s3 = aws.client("s3")
    found: dict[str, Any] = {}

    def written() -> bool:
        try:
            body = s3.get_object(Bucket=settings().bank_bucket, Key=f"reports/{key}.json")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return False
        found["report"] = json.loads(body)
        return True

    return found["report"] if wait_until(written, timeout, interval=0.2) else None


def _bank_keys(prefix: str) -> list[str]:
    from payments.kernel import aws
    from payments.kernel.config import settings

    listed = aws.client("s3").list_objects_v2(Bucket=settings().bank_bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def pay_sellers(client: ApiClient, sellers: list[str], day: date, timeout: float = 120.0) -> bool:
    """The pay-out half: payout accounts for the EUR sellers, the night's payout run, the bank's answers
    reconciled, the day and the next closed. Prints what happened; True if every payout ended as its IBAN
    says, every bank file reconciled with 0 mismatches and the failed and returned money is back."""
    from payments.payouts import simulated_bank
    from payments.payouts.run import run_payouts
    from payments_dev.local.runtime import wait_until

    print("\nPayouts:")
    minimum = 100  # the local runtime's payout minimum: 1.00 EUR
    balances: dict[str, dict[str, dict[str, Any]]] = {}
    for seller in sorted(set(sellers)):
        reply = client.wallet(seller)
        if reply.status == 200:
            balances[seller] = {b["currency"]: b for b in reply.body["balances"]}
    eur = [s for s, b in balances.items() if "EUR" in b and money.parse_amount(b["EUR"]["available"], "EUR") >= minimum]
    plan = payout_plan(eur)
    for seller, (iban, _) in plan.items():
        body = {"iban": iban, "account_holder": f"{seller} GmbH", "currency": "EUR"}
        reply = client.request("PUT", f"/v1/sellers/{seller}/payout-account", body)
        if reply.status != 200:
            print(f"  payout account of {seller}: {reply.status} {reply.body}")
            return False
    print(
        f"  payout accounts:    {len(plan)} EUR sellers registered "
        f"({sum(1 for _, fate in plan.values() if fate == 'PAID')} paid test IBANs, "
        f"{sum(1 for _, fate in plan.values() if fate == 'FAILED')} rejected ...0001, "
        f"{sum(1 for _, fate in plan.values() if fate == 'RETURNED')} returned ...0002)"
    )
    run = run_payouts(day)
    created = sorted(run["created"] + run["already_created"])
    for file in run["files"]:
        print(
            f"  payments payouts run --date {day.isoformat()}: pain.001 {file['msg_id']}: "
            f"{file['payouts']} payouts, {file['control_sum']} {file['currency']}"
        )
    rails = Counter(s["currency"] for s in run["skipped"] if s["reason"].startswith("no payout rail"))
    for currency, n in sorted(rails.items()):
        print(f"  {currency}: {n} sellers' money stays available (no payout rail for {currency})")
    other = [s for s in run["skipped"] if not s["reason"].startswith("no payout rail")]
    for skipped in other:
        print(f"  not paid: {skipped['seller_account']} {skipped['currency']}: {skipped['reason']}")
    # the simulated bank answers each file at once (its pain.002), which the bank reconciliation applies
    answered = wait_until(lambda: len(_bank_keys("incoming/bank/pain002/")) >= len(run["files"]), timeout, 0.2)
    reports = {key: _bank_report(key, timeout) for key in _bank_keys("incoming/bank/pain002/")}
    # the returns come back the day after; each day's statement is reconciled before the next day closes
    for day_closed in (day, day + timedelta(days=1)):
        key, _ = simulated_bank.close_day(day_closed)
        print(f"  payments bank close-day --date {day_closed.isoformat()}: {key}")
        reports[key] = _bank_report(key, timeout)
    keys = list(reports)
    mismatches = sum(len(r["mismatches"]) for r in reports.values() if r is not None)
    print(
        f"  bank files reconciled: {sum(r is not None for r in reports.values())}/{len(keys)} "
        f"(pain.002 and camt.053), {mismatches} mismatches"
    )

    payouts = {p: client.request("GET", f"/v1/payouts/{p}").body for p in created}
    by_status = Counter(p["status"] for p in payouts.values())
    print("  payouts by status:  " + (", ".join(f"{k} {v}" for k, v in sorted(by_status.items())) or "none"))
    as_said = True
    back_ok = True
    for payout in sorted(payouts.values(), key=lambda p: p["seller_account"]):
        seller = payout["seller_account"]
        expected = plan.get(seller, ("", "PAID"))[1]
        as_said = as_said and payout["status"] == expected
        if payout["status"] == "FAILED":
            print(f"    FAILED   {seller}: {payout['amount']} EUR, rejected by the bank ({payout['failure_reason']})")
        elif payout["status"] == "RETURNED":
            print(
                f"    RETURNED {seller}: {payout['amount']} EUR, sent back by the seller's bank ({payout['return_reason']})"
            )
        if payout["status"] in ("FAILED", "RETURNED"):
            before = balances[seller]["EUR"]
            now = {b["currency"]: b for b in client.wallet(seller).body["balances"]}["EUR"]
            back = now["available"] == before["available"] and now["in_transit"] == before["in_transit"]
            back_ok = back_ok and back
            print(
                f"             its money {'back' if back else 'NOT back'} in available: available {now['available']} EUR "
                f"(before the run {before['available']}), in transit {now['in_transit']}"
            )
    ok = (
        answered
        and bool(created)
        and all(r is not None for r in reports.values())
        and mismatches == 0
        and as_said
        and back_ok
        and set(plan) == {p["seller_account"] for p in payouts.values()}
    )
    print(
        "  payouts: "
        + (
            "every payout PAID, FAILED or RETURNED as its IBAN says; bank files reconciled with 0 mismatches"
            if ok
            else "NOT as the IBANs say, or the bank files did not reconcile"
        )
    )
    return ok


def show_events() -> None:
    """How many events of each type the run produced (distinct ids in the events' log), and the deliveries."""
    from botocore.exceptions import ClientError

    from payments.events import log
    from payments.kernel import aws
    from payments_dev.local import runtime

    if runtime.CURRENT is not None and runtime.CURRENT.events is not None:
        runtime.CURRENT.events.flush()  # everything committed so far is delivered before it is counted
    print("\nEvents (payments events tail):")
    try:
        delivered = [envelope for _, envelope in log.read(aws.client("s3"))]
    except ClientError as err:
        print(f"  no events' log at this endpoint ({err.response.get('Error', {}).get('Code')})")
        return
    by_id = {envelope["id"]: envelope["type"] for envelope in delivered}
    for type_, n in sorted(Counter(by_id.values()).items()):
        print(f"  {type_:<40} {n:>6}")
    print(f"  {len(by_id)} events, {len(delivered)} deliveries ({len(delivered) - len(by_id)} repeated)")


def show_trial_balance(trial: dict[str, Any], title: str) -> None:
    """Print the trial balance: debits and credits per currency, then the platform's accounts."""
    print(f"\n{title} (GET /v1/ledger/trial-balance):")
    for row in trial["currencies"]:
        print(f"  {row['currency']}  debits {row['debits']:>14}  credits {row['credits']:>14}")
    for row in trial.get("accounts", []):
        print(f"  {row['currency']}  {row['account']:<32} {row['balance']:>14}")


def platform_result(trial: dict[str, Any]) -> None:
    """Print the platform's commission revenue, PSP fees and result (commission - PSP fees) per currency."""
    per: dict[str, dict[str, Decimal]] = {}
    for row in trial.get("accounts", []):
        kind = row.get("kind") or row["account"].partition(":")[0]
        parts = per.setdefault(row["currency"], {"commission_revenue": Decimal(0), "psp_fees": Decimal(0)})
        if kind in parts:
            parts[kind] += Decimal(row["balance"])
    print("\nThe platform's result (commission revenue - PSP fees):")
    for currency, parts in sorted(per.items()):
        commission, fees = parts["commission_revenue"], parts["psp_fees"]
        print(f"  {currency}  commission {commission:>12}  PSP fees {fees:>12}  result {commission - fees:>12}")


def _bar(done: int, total: int, started: float, label: str, stream: TextIO | None = None) -> None:
    """Progress on stderr: redrawn in place on a terminal; elsewhere (a log, a pipe, CI) no frames at
    all, only one plain line when the phase is complete."""
    stream = sys.stderr if stream is None else stream
    width = 40
    filled = int(width * done / max(total, 1))
    rate = done / max(time.monotonic() - started, 1e-9)
    line = f"  {label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:5.1f}/s)"
    if stream.isatty():
        stream.write("\r" + line + ("\n" if done >= total else ""))
    elif done >= total:
        stream.write(line + "\n")
    else:
        return
    stream.flush()


class _Tee(io.TextIOBase):
    """stdout as it is, and a copy of it: the summary the demo leaves in its folder."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


@contextlib.contextmanager
def _teed() -> Iterator[_Tee]:
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield tee


def output_folder(root: Path = OUTPUT_ROOT, now: datetime | None = None) -> Path:
    """A new folder for this run under ``root``: ``<root>/<UTC stamp>`` (``-2``, ``-3``... if taken)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    folder, n = root / stamp, 1
    while folder.exists():
        n += 1
        folder = root / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def save_bucket(folder: Path, bucket: str | None = None) -> list[Path]:
    """Copy every object of ``bucket`` (default: the settlement bucket) under ``folder``, keyed as in the
    bucket (the PSP's files under incoming/, the reports under reports/, quarantine/): the runtime's moto
    goes with it."""
    from payments.kernel import aws
    from payments.kernel.config import settings

    s3 = aws.client("s3")
    bucket = bucket or settings().settlement_bucket
    saved = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            target = folder / key
            if folder.resolve() not in target.resolve().parents:  # a key such as ../x stays in the bucket
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            saved.append(target)
    return saved


def how_to_open(report: Path, platform: str | None = None) -> str:
    """One line: the command that opens ``report`` in a browser here, or a local web server for it."""
    opener = "open" if (platform or sys.platform) == "darwin" else "xdg-open"
    where = shlex.quote(str(report))
    served = shlex.quote(str(report.parent))
    return (
        f"Open the report: {opener} {where}   (or: python3 -m http.server -d {served} 8000, "
        f"then http://127.0.0.1:8000/{report.name})"
    )


def leave_day_behind(folder: Path, client: ApiClient, summary: str) -> None:
    """The day's files in ``folder`` (before the runtime stops), then where they are and how to open them."""
    from payments.kernel.config import settings

    saved = save_bucket(folder)
    bank = save_bucket(folder / "bank", settings().bank_bucket)
    (folder / "trial-balance.json").write_text(json.dumps(client.trial_balance().body, indent=2) + "\n")
    (folder / "summary.txt").write_text(summary)
    print(
        f"\nThe day, left behind in {folder}/ ({len(saved) + len(bank) + 2} files: the PSP's settlement file, its reports, "
        "the bank's pain.001, pain.002 and camt.053 files under bank/, the trial balance, this summary)"
    )
    reports = sorted(p for p in saved if p.suffix == ".html")
    if reports:
        print(how_to_open(reports[0]))


def run(
    api_url: str,
    checkouts: int = 300,
    seed: int = 2026,
    concurrency: int = 8,
    timeout: float = 600.0,
    psp_charges: Callable[[], list[dict[str, Any]]] | None = None,
    settle: Callable[[str], str] | None = None,
    psp_refunds: Callable[[], list[dict[str, Any]]] | None = None,
    output: Path | None = OUTPUT_ROOT,
) -> int:
    """``psp_charges`` and ``settle``: another PSP's record of charges and settlement file (default: the simulator's).
    ``output``: the folder under which the run leaves its day (None: nothing written)."""
    with _teed() as tee:
        ok = _run(api_url, checkouts, seed, concurrency, timeout, psp_charges, settle, psp_refunds)
    if output is not None:
        leave_day_behind(output_folder(output), ApiClient(api_url), tee.copy.getvalue())
    return 0 if ok else 1


def _run(
    api_url: str,
    checkouts: int,
    seed: int,
    concurrency: int,
    timeout: float,
    psp_charges: Callable[[], list[dict[str, Any]]] | None,
    settle: Callable[[str], str] | None,
    psp_refunds: Callable[[], list[dict[str, Any]]] | None,
) -> bool:
    client = ApiClient(api_url)
    run_tag = run_id()
    scenario = build_scenario(checkouts, seed, run_id=run_tag)
    started = time.monotonic()
    print(
        f"Cyber Monday: {checkouts} checkouts, {sum(len(c['payment_orders']) for c in scenario.checkouts)} payment orders, seed {seed}"
    )
    from payments.kernel.config import settings

    config = settings()
    overrides = ", ".join(f"{k} {v} bps" for k, v in sorted(config.payments_commission_overrides.items()))
    print(f"Commission: {config.payments_commission_bps} bps" + (f" ({overrides})" if overrides else ""))

    answers: Counter[int] = Counter()
    replay_mismatch: list[str] = []

    def submit(checkout: dict[str, Any]) -> None:
        key = f"idem-{checkout['checkout_id']}"
        first = client.pay(checkout, key)
        answers[first.status] += 1
        if checkout["checkout_id"] in scenario.replays:
            again = client.pay(checkout, key)  # the shopper double-clicks Buy
            if (again.status, again.body) != (first.status, first.body):
                replay_mismatch.append(checkout["checkout_id"])

    done = 0
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in pool.map(submit, scenario.checkouts):
            done += 1
            _bar(done, checkouts, started, "submitted")
    submitted_at = time.monotonic()

    pending = {c["checkout_id"] for c in scenario.checkouts}
    final: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for checkout_id, reply in zip(list(pending), pool.map(client.payment, list(pending)), strict=True):
                body = reply.body
                attention = any(o.get("needs_attention") for o in body.get("payment_orders", []))
                if body.get("is_payment_done") or attention or body.get("status") in ("FAILED",):
                    final[checkout_id] = body
                    pending.discard(checkout_id)
        _bar(len(final), checkouts, submitted_at, "settled")
        if pending:
            time.sleep(0.5)
    wall = time.monotonic() - started

    orders = [o for body in final.values() for o in body["payment_orders"]]
    print(
        "\nPayments by status:  "
        + ", ".join(f"{k} {v}" for k, v in sorted(Counter(b["status"] for b in final.values()).items()))
    )
    print(
        "Orders by status:    " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(o["status"] for o in orders).items()))
    )
    reasons = Counter(o["failure_reason"] for o in orders if o["failure_reason"])
    print("Decline reasons:     " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"))
    print(
        f"HTTP answers:        {dict(sorted(answers.items()))}; replays {len(scenario.replays)}, identical {len(scenario.replays) - len(replay_mismatch)}"
    )
    if pending:
        print(f"NOT SETTLED within {timeout:.0f}s: {len(pending)} checkouts, e.g. {sorted(pending)[:3]}")
    # money back: on the simulated PSP, whose chargebacks the demo can raise
    money_back_ok = money_back(client, final, f"cm{seed}{run_tag}") if psp_charges is None else True

    totals: Counter[tuple[str, str]] = Counter()
    for o in orders:
        if o["status"] == "SUCCESS":
            totals[(o["seller_account"], o["currency"])] += money.parse_amount(o["amount"], o["currency"])
    print("\nTop sellers (wallet balances from GET /v1/wallets):")
    for (seller, currency), _ in totals.most_common(5):
        balances = {b["currency"]: b for b in client.wallet(seller).body["balances"]}
        b = balances.get(currency, {})
        print(
            f"  {seller:<12} {currency} {b.get('amount', '0'):>14}  (pending {b.get('pending', '0')}, "
            f"available {b.get('available', '0')}, in transit {b.get('in_transit', '0')})"
        )
    show_trial_balance(client.trial_balance().body, "Trial balance")

    def invariants(title: str) -> bool:
        report = check_current(
            psp_charges=psp_charges() if psp_charges is not None else None,
            psp_refunds=psp_refunds() if psp_refunds is not None else None,
        )
        print(f"\n{title}:")
        for line in report.summary_lines():
            print(line)
        for violation in report.violations[:20]:
            print(f"  VIOLATION {violation}")
        return report.ok

    held = invariants("Money invariants")
    print(f"\n{checkouts} checkouts in {wall:.1f}s wall time ({checkouts / wall:.1f} checkouts/s end to end)")

    reconciled = settle_and_reconcile(settle=settle)
    sellers = sorted({o["seller_account"] for c in scenario.checkouts for o in c["payment_orders"]})
    paid = pay_sellers(client, sellers, clock.now().date())
    trial = client.trial_balance().body
    show_trial_balance(trial, "Trial balance after the payouts")
    platform_result(trial)
    held_after = invariants("Money invariants after the payouts")
    show_events()
    ok = (
        held
        and held_after
        and reconciled
        and money_back_ok
        and paid
        and not pending
        and not replay_mismatch
        and set(answers) == {202}
    )
    print("RESULT: " + ("all invariants hold, the sellers are paid" if ok else "PROBLEMS FOUND"))
    return ok
