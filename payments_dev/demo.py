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

The day is left behind before the runtime stops: the settlement bucket as it ends (the PSP's file,
the reconciliation's JSON, HTML and CSV reports, anything quarantined), the trial balance and the
printed summary go to a local folder (``demo-output/<run stamp>/`` by default), whose path the
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from payments.kernel import money
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


def save_bucket(folder: Path) -> list[Path]:
    """Copy every object of the settlement bucket under ``folder``, keyed as in the bucket (the PSP's
    files under incoming/, the reports under reports/, quarantine/): the runtime's moto goes with it."""
    from payments.kernel import aws
    from payments.kernel.config import settings

    s3 = aws.client("s3")
    bucket = settings().settlement_bucket
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
    saved = save_bucket(folder)
    (folder / "trial-balance.json").write_text(json.dumps(client.trial_balance().body, indent=2) + "\n")
    (folder / "summary.txt").write_text(summary)
    print(
        f"\nThe day, left behind in {folder}/ ({len(saved) + 2} files: the PSP's settlement file, its reports, the trial balance, this summary)"
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
    trial = client.trial_balance().body
    print("\nTrial balance (GET /v1/ledger/trial-balance):")
    for row in trial["currencies"]:
        print(f"  {row['currency']}  debits {row['debits']:>14}  credits {row['credits']:>14}")
    for row in trial.get("accounts", []):
        print(f"  {row['currency']}  {row['account']:<32} {row['balance']:>14}")

    report = check_current(
        psp_charges=psp_charges() if psp_charges is not None else None,
        psp_refunds=psp_refunds() if psp_refunds is not None else None,
    )
    print("\nMoney invariants:")
    for line in report.summary_lines():
        print(line)
    for violation in report.violations[:20]:
        print(f"  VIOLATION {violation}")
    print(f"\n{checkouts} checkouts in {wall:.1f}s wall time ({checkouts / wall:.1f} checkouts/s end to end)")

    reconciled = settle_and_reconcile(settle=settle)
    ok = report.ok and reconciled and money_back_ok and not pending and not replay_mismatch and set(answers) == {202}
    print("RESULT: " + ("all invariants hold" if ok else "PROBLEMS FOUND"))
    return ok
