"""Four reconciliation reports to look at, and their pictures: ``python -m payments_dev.report_samples``.

The four days the browser tests (tests/browser) open and the screenshots in ``docs/`` show:

* ``clean``: a day of the simulated PSP whose file agrees with the ledger row for row
  (payments in two currencies and a refund), reconciled by the engine the Lambda runs;
* ``tampered``: the same day's file with one amount changed and one row deleted;
* ``quarantined``: a file that is no settlement file at all;
* ``adyen``: the largest real Adyen file of the sample corpus (``../shared/samples/adyen/
  oca-batch-380.csv``) against an empty ledger, as a new account's first day would be.

Each is built by the real engine (:func:`payments.reconciliation.service.reconcile_stream`) and
rendered by :func:`payments.reconciliation.report.to_html`: nothing here is written by hand.
``--screenshots DIR`` opens each page in the system's Chromium (Debian's ``chromium`` package,
driven by Playwright; nothing is downloaded) at 390 and 1280 px and writes ``report-<day>-<width>.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from payments.reconciliation import adyen, report
from payments.reconciliation.model import Bounds, UnreadableFile
from payments.reconciliation.service import reconcile_stream
from payments.reconciliation.sources import LedgerAdjustment, LedgerEntry

DAY = "2026-11-30"
REPO = Path(__file__).resolve().parents[1]
#: the real samples, beside the repository (never copied into it)
SAMPLES = REPO.parent / "shared" / "samples"
ADYEN_SAMPLE = SAMPLES / "adyen" / "oca-batch-380.csv"
DAYS = ("clean", "tampered", "quarantined", "adyen")
#: the widths the page must fit without scrolling sideways: a phone and a laptop
VIEWPORTS = {390: 844, 1280: 800}
#: a screenshot shows the page's top this tall at most (the verdict, the payout check, the mismatches)
MAX_SHOT_HEIGHT = 1800
#: where Debian's chromium package puts the browser (``CHROMIUM`` overrides)
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

#: (order, PSP reference, currency, amount in minor units, charged at) of the clean day
CHARGES = [
    (f"po_{i:04d}", f"88{i:014d}", ccy, amount, f"{DAY}T{8 + i // 4:02d}:{(i * 7) % 60:02d}:00+00:00")
    for i, (ccy, amount) in enumerate(
        [("EUR", 2499), ("EUR", 1999), ("USD", 4550), ("EUR", 12000), ("USD", 899), ("EUR", 3490)]
        + [("EUR", 1500 + 250 * k) for k in range(10)]
        + [("USD", 2000 + 125 * k) for k in range(6)]
    )
]
REFUND = ("rf_0001", "99000000000000001", 1, 1000)  # refund id, its PSP reference, charge index, amount
SELLER = "seller_demo"


class MemoryLedger:
    """A ledger of the day in memory, in the shape the engine reads (:class:`LedgerSource`)."""

    def __init__(self, entries: list[LedgerEntry], adjustments: list[LedgerAdjustment]):
        self.entries = sorted(entries, key=lambda e: e.psp_reference)
        self.adjustments = adjustments

    def day_entries(self, day: str) -> Iterator[LedgerEntry]:
        return (e for e in self.entries if e.charged_at[:10] == day)

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        return next((e for e in self.entries if e.payment_order_id == payment_order_id), None)

    def day_adjustments(self, day: str) -> Iterator[LedgerAdjustment]:
        return (a for a in self.adjustments if a.booked_at[:10] == day)

    def find_adjustment(self, txn_id: str) -> LedgerAdjustment | None:
        return next((a for a in self.adjustments if a.txn_id == txn_id), None)


def ledger() -> MemoryLedger:
    entries = [LedgerEntry(ref, order, SELLER, ccy, amount, at) for order, ref, ccy, amount, at in CHARGES]
    refund_id, refund_ref, index, amount = REFUND
    order, ref, ccy, _, _ = CHARGES[index]
    refund = LedgerAdjustment(
        f"refund:{refund_id}", "Refunded", refund_ref, ref, order, SELLER, ccy, amount, f"{DAY}T20:00:00+00:00"
    )
    return MemoryLedger(entries, [refund])


def settlement_file() -> bytes:
    """The PSP's file of the clean day, written by the simulated PSP's writer."""
    charges = [
        {
            "psp_reference": ref,
            "merchant_reference": order,
            "currency": ccy,
            "amount_minor": amount,
            "charged_at": at,
            "merchant_account": "DemoShop",
        }
        for order, ref, ccy, amount, at in CHARGES
    ]
    refund_id, refund_ref, index, amount = REFUND
    order, ref, ccy, _, _ = CHARGES[index]
    refunds = [
        {
            "record_type": "Refunded",
            "currency": ccy,
            "amount_minor": amount,
            "psp_reference": ref,
            "merchant_reference": order,
            "modification_reference": refund_ref,
            "modification_merchant_reference": refund_id,
            "at": f"{DAY}T20:00:00+00:00",
            "merchant_account": "DemoShop",
        }
    ]
    out = io.StringIO()
    adyen.write_report(charges, DAY, out, refunds)
    return out.getvalue().encode("utf-8")


def tampered_file() -> bytes:
    """The clean day's file with one amount changed (the 3rd payment: 45.50 -> 40.50 USD) and one
    row deleted (the 5th payment's): an amount mismatch, a payment missing, a payout that is off."""
    rows = list(csv.reader(io.StringIO(settlement_file().decode("utf-8"))))
    header = rows[0]
    ref, gross, net = header.index("Psp Reference"), header.index("Gross Credit (GC)"), header.index("Net Credit (NC)")
    changed, deleted = CHARGES[2][1], CHARGES[4][1]
    kept = []
    for row in rows:
        if row[ref] == changed and row[header.index("Type")] == "Settled":
            row[gross] = "40.50"
            row[net] = str(Decimal(row[net]) - Decimal("5.00"))
        if row[ref] != deleted:
            kept.append(row)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    return out.getvalue().encode("utf-8")


def reconcile(name: str, data: bytes, ledger_source: Any, hint: str | None = DAY) -> dict[str, Any]:
    """The report the Lambda writes for ``data`` (quarantined when unreadable)."""
    key = f"incoming/{name}"
    try:
        result, digest = reconcile_stream(io.BytesIO(data), ledger_source, Bounds(), None, hint)
    except UnreadableFile as err:
        return report.quarantined(key, err.reason, f"quarantine/{name}")
    return report.build(key, digest, result, None)


def build(day: str) -> dict[str, Any]:
    """One of :data:`DAYS`' reports. ``adyen`` raises FileNotFoundError where the samples are absent."""
    if day == "clean":
        return reconcile(f"simulated-psp/{DAY}.csv", settlement_file(), ledger())
    if day == "tampered":
        return reconcile(f"simulated-psp/{DAY}.csv", tampered_file(), ledger())
    if day == "quarantined":
        return reconcile(f"simulated-psp/{DAY}.csv", b"%PDF-1.7\n\x00\x01\x02 not a settlement file\n", ledger())
    if day == "adyen":
        return reconcile(f"adyen/{ADYEN_SAMPLE.name}", ADYEN_SAMPLE.read_bytes(), MemoryLedger([], []), None)
    raise ValueError(f"no sample day {day!r}: one of {', '.join(DAYS)}")


def chromium() -> str | None:
    """The system's Chromium, or None. ``CHROMIUM`` names another (empty: none, to see the tests skip)."""
    configured = os.environ.get("CHROMIUM")
    for path in (configured,) if configured is not None else (*CHROMIUM_PATHS, shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    return None


def launch(playwright: Any, executable: str) -> Any:
    """Headless Chromium from the system (``--no-sandbox``: CI runs as root)."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])


def screenshots(directory: Path) -> list[tuple[str, int, int, Path]]:
    """Each day at each width: (day, width, measured scrollWidth, PNG path)."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    if executable is None:
        raise SystemExit("no Chromium found: install Debian's chromium package (apt-get install chromium)")
    directory.mkdir(parents=True, exist_ok=True)
    taken = []
    with sync_playwright() as playwright:
        browser = launch(playwright, executable)
        try:
            for day in DAYS:
                try:
                    page_html = report.to_html(build(day))
                except FileNotFoundError:
                    print(f"skipped {day}: {ADYEN_SAMPLE} is absent", file=sys.stderr)
                    continue
                for width, height in VIEWPORTS.items():
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.set_content(page_html)
                    scroll_width = int(page.evaluate("document.documentElement.scrollWidth"))
                    path = directory / f"report-{day}-{width}.png"
                    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_SHOT_HEIGHT)
                    page.screenshot(
                        path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height}
                    )
                    page.close()
                    taken.append((day, width, scroll_width, path))
        finally:
            browser.close()
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payments_dev.report_samples", description=__doc__.split("\n")[0])
    parser.add_argument("--screenshots", metavar="DIR", type=Path, help="write report-<day>-<width>.png into DIR")
    parser.add_argument("--html", metavar="DIR", type=Path, help="write report-<day>.html into DIR")
    args = parser.parse_args(argv)
    if not (args.screenshots or args.html):
        parser.error("say where: --screenshots DIR and/or --html DIR")
    if args.html:
        args.html.mkdir(parents=True, exist_ok=True)
        for day in DAYS:
            try:
                (args.html / f"report-{day}.html").write_text(report.to_html(build(day)), encoding="utf-8")
            except FileNotFoundError:
                print(f"skipped {day}: {ADYEN_SAMPLE} is absent", file=sys.stderr)
    if args.screenshots:
        for day, width, scroll_width, path in screenshots(args.screenshots):
            print(f"{path} ({day}, {width} px wide: scrollWidth {scroll_width})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
