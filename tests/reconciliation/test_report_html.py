"""The reconciliation report's HTML page, as a finance person reads it (tests/browser opens it in Chromium).

The days are built by the real engine from files the simulated PSP's writer produces
(payments_dev.report_samples): a clean day, the same file tampered with, a ledger that
disagrees, and a file that is no settlement file."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from payments.reconciliation import adyen, report, report_html
from payments_dev import report_samples
from payments_dev.report_samples import CHARGES, DAY, MemoryLedger, ledger, reconcile, settlement_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "settlements"


class Page(HTMLParser):
    """The visible text of a page, and its tags with their attributes."""

    def __init__(self, text: str):
        super().__init__()
        self.words: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("style", "title")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.words.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.words))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def verdict_of(page: str) -> str:
    match = re.search(r'id="verdict"[^>]*><strong>(.*?)</strong>', page)
    assert match, "the page has no verdict"
    return match.group(1)


def test_a_clean_day_says_clean_shows_no_mismatch_table_and_its_payout_agrees() -> None:
    # Given the simulated PSP's file of a day and a ledger that agrees with it (a refund included)
    built = report_samples.build("clean")
    assert built["clean"] is True
    # When it is rendered
    page = report.to_html(built)
    parsed = Page(page)
    # Then the verdict at the top says so, and there is no empty mismatch table
    assert verdict_of(page) == "Clean"
    assert "Mismatches" not in parsed.text and "Open" not in parsed.text
    # And the payout check takes the refund from the net credit: the payout agrees
    assert "less refunds -10.00 EUR" in parsed.text
    assert parsed.text.count("Agrees") == 2  # EUR and USD


def test_the_page_is_self_contained_labelled_and_accessible() -> None:
    page = report.to_html(report_samples.build("tampered"))
    parsed = Page(page)
    # one file: no script, no stylesheet link, no image, nothing fetched
    assert not parsed.all("script") and not parsed.all("link") and not parsed.all("img")
    assert not re.search(r"https?://|src=|url\(|@import", page)
    # a language, a viewport for phones
    assert parsed.all("html") == [{"lang": "en"}]
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in parsed.all("meta")
    # every table has a caption and every header cell a scope
    assert len(parsed.all("caption")) == len(parsed.all("table")) >= 4
    assert all(attrs.get("scope") in ("col", "row") for attrs in parsed.all("th"))
    # and each table's scrolling box is a labelled region reachable from the keyboard
    boxes = [a for a in parsed.all("div") if a.get("class") == "table-wrap"]
    assert len(boxes) == len(parsed.all("table"))
    assert all(a.get("role") == "region" and a.get("tabindex") == "0" and a.get("aria-label") for a in boxes)
    # human labels: none of the JSON's field names or kinds is shown
    for raw in ("gross_credit", "net_credit", "payment_order_id", "AMOUNT_MISMATCH", "MISSING_IN_SETTLEMENT", "MANUAL"):
        assert raw not in parsed.text, raw


def test_a_tampered_day_lists_each_item_under_its_kind_with_the_next_step() -> None:
    # Given the clean day's file with one amount changed (45.50 -> 40.50 USD) and one row deleted
    built = report_samples.build("tampered")
    page = report.to_html(built)
    parsed = Page(page)
    # Then the verdict counts the two mismatches and the payout the deleted row left unexplained
    assert verdict_of(page) == "3 items need a person"
    # And each kind has its heading, its meaning and its next step
    assert "Amount differs (1 item, 1 open)" in parsed.text
    assert "In our ledger, not settled by the PSP (1 item, 1 open)" in parsed.text
    assert f"If it is still missing after {report_html.WAIT_DAYS} days, ask the PSP" in parsed.text
    assert "raise a claim with the PSP" in parsed.text
    # And amounts are right-aligned cells with their currency, the ledger's beside the file's
    assert '<td class="num">45.50 USD</td><td class="num">40.50 USD</td>' in page
    # And the payout check says by how much the payout is off, and what to do
    assert "Differs by 13.76 USD" in parsed.text
    assert "Ask the PSP for the rows this batch is missing" in parsed.text


def test_each_mismatch_shows_who_resolved_it_when_and_why() -> None:
    # Given the tampered day, one of whose mismatches was resolved (a note with markup in it)
    built = report_samples.build("tampered")
    amount = next(m for m in built["mismatches"] if m["kind"] == "AMOUNT_MISMATCH")
    resolutions = {
        amount["mismatch_id"]: {
            "status": "RESOLVED",
            "resolved_by": "arn:aws:iam::123456789012:user/alice",
            "resolved_at": "2026-12-01T09:30:00Z",
            "resolution": "PSP confirmed <b>40.50</b>; claim raised",
        }
    }
    # When the report is rendered with the resolutions
    page = report.to_html(built, resolutions)
    parsed = Page(page)
    # Then that mismatch says who, when and why (escaped), the other is open, and the verdict counts one less
    assert (
        "Resolved by arn:aws:iam::123456789012:user/alice on 2026-12-01T09:30:00Z: PSP confirmed <b>40.50</b>; "
        "claim raised" in parsed.text
    )
    assert "&lt;b&gt;40.50&lt;/b&gt;" in page
    assert "Amount differs (1 item, 0 open)" in parsed.text
    assert verdict_of(page) == "2 items need a person"
    # And a resolution still OPEN counts as open
    still_open = {amount["mismatch_id"]: {**resolutions[amount["mismatch_id"]], "status": "OPEN"}}
    assert verdict_of(report.to_html(built, still_open)) == "3 items need a person"


def test_the_page_re_rendered_from_the_stored_json_is_the_same_page() -> None:
    # Given a report as the Lambda stored it (reports/<key>.json), read back later to re-render it
    built = report_samples.build("tampered")
    stored = json.loads(report.to_json(built))
    # Then the page is byte for byte the one rendered from the engine's own objects
    assert report.to_html(stored) == report.to_html(built)


def test_when_every_mismatch_is_resolved_the_verdict_says_so() -> None:
    # Given a day whose file is right but whose ledger booked one payment 0.50 USD less
    entries = [
        e if e.payment_order_id != CHARGES[2][0] else dataclasses.replace(e, amount_minor=4500)
        for e in ledger().entries
    ]
    built = reconcile(f"simulated-psp/{DAY}.csv", settlement_file(), MemoryLedger(entries, ledger().adjustments))
    [mismatch] = built["mismatches"]
    assert (mismatch["ledger_amount"], mismatch["settlement_amount"]) == ("45.00", "45.50")
    assert verdict_of(report.to_html(built)) == "1 item needs a person"
    # When it is resolved
    resolved = {"status": "RESOLVED", "resolved_by": "finance", "resolved_at": "2026-12-01", "resolution": "ok"}
    page = report.to_html(built, {mismatch["mismatch_id"]: resolved})
    # Then nothing is left for a person, and the page says it was resolved rather than clean
    assert verdict_of(page) == "All 1 item resolved"


def test_long_groups_are_folded_with_their_count() -> None:
    # Given the clean day's file against an empty ledger: every payment and the refund are unknown to us
    built = reconcile(f"simulated-psp/{DAY}.csv", settlement_file(), MemoryLedger([], []))
    count = len(built["mismatches"])
    assert count == len(CHARGES) + 1 > report_html.FOLD_AFTER
    page = report.to_html(built)
    # Then the group is folded behind a summary that says how many it holds
    assert re.search(rf"<details><summary>Show the {count} items</summary>", page)
    assert f"Settled by the PSP, not in our ledger ({count} items, {count} open)" in Page(page).text
    # And a short group is open
    assert "<details open><summary>1 item</summary>" in report.to_html(report_samples.build("tampered"))


def test_a_payout_without_its_row_is_carried_over_not_flagged() -> None:
    # Given a day with only a refund: its net is negative, so the PSP writes no payout row
    out = io.StringIO()
    order, ref, ccy, _, _ = CHARGES[1]
    refunds = [
        {
            "record_type": "Refunded",
            "currency": ccy,
            "amount_minor": 1000,
            "psp_reference": ref,
            "merchant_reference": order,
            "modification_reference": "99000000000000001",
            "modification_merchant_reference": "rf_0001",
            "at": f"{DAY}T20:00:00+00:00",
        }
    ]
    adyen.write_report([], DAY, out, refunds)
    built = reconcile(f"simulated-psp/{DAY}.csv", out.getvalue().encode(), MemoryLedger([], ledger().adjustments))
    assert built["clean"] is True
    # Then the check says the net is carried to a later batch, and it is no item for a person
    [check] = report_html.payout_checks(built)
    assert (check["status"], check["expected_payout"], check["payout"]) == ("carried over", -10, 0)
    page = report.to_html(built)
    assert "no payout row; the net of -10.00 EUR is carried to a later batch" in Page(page).text
    assert verdict_of(page) == "Clean"


def test_a_quarantined_file_gets_a_page_that_says_why_and_what_to_do() -> None:
    built = report.quarantined("incoming/adyen/x.csv", "binary <content>", "quarantine/adyen/x.csv")
    page = report.to_html(built)
    parsed = Page(page)
    assert verdict_of(page) == "File quarantined: binary &lt;content&gt;"
    assert "quarantine/adyen/x.csv" in parsed.text and "ask the sender" in parsed.text
    assert "Payout check" not in parsed.text and "Totals" not in parsed.text
    # And the engine's own reason reaches the page of a real unreadable file
    assert verdict_of(report.to_html(report_samples.build("quarantined"))) == (
        "File quarantined: binary content (NUL byte) in the first bytes"
    )


@pytest.mark.parametrize("name", ["mt940_2026-11-30.sta", "camt053_2026-11-30.xml", "bai2_2026-11-30.bai"])
def test_a_bank_statement_shows_its_balance_check(name: str) -> None:
    built = reconcile(f"bank/{name}", (FIXTURES / name).read_bytes(), MemoryLedger([], []), None)
    page = report.to_html(built)
    parsed = Page(page)
    assert "Bank statements" in parsed.text
    balanced: Any = [s["balanced"] for s in built["statements"]]
    assert parsed.text.count("Balances") == balanced.count(True)
    assert parsed.text.count("Does not balance") == balanced.count(False)
    if built["clean"]:
        assert verdict_of(page) == "Clean"
    else:
        assert re.fullmatch(r"[1-9][0-9]* items? needs? a person", verdict_of(page))


def test_the_docs_page_describes_every_kind_and_shows_every_screenshot() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    text = (docs / "reconciliation-report.md").read_text(encoding="utf-8")
    for title, _, _ in report_html.KINDS.values():
        assert f"| {title} |" in text, title
    assert f"still missing after {report_html.WAIT_DAYS} days" in text
    for day in report_samples.DAYS:
        for width in report_samples.VIEWPORTS:
            name = f"report-{day}-{width}.png"
            assert f"]({name})" in text and (docs / name).is_file(), name


def test_a_payout_that_is_not_the_net_makes_the_file_not_clean_in_the_json_too() -> None:
    # Given the clean day's file with only its USD payout row changed (189.57 -> 189.00): every row matches
    text = settlement_file().decode().replace(",USD,189.57,", ",USD,189.00,")
    built = reconcile(f"simulated-psp/{DAY}.csv", text.encode(), ledger())
    # Then no mismatch, yet the file is not clean: the JSON report says which payout is off and by how much
    assert built["mismatches"] == []
    assert built["clean"] is False
    checks = {c["currency"]: c for c in built["summary"]["payout_checks"]}
    assert checks["USD"] == {
        "currency": "USD",
        "expected_payout": "189.57",
        "payout": "189.00",
        "difference": "-0.57",
        "status": "differs",
    }
    assert checks["EUR"]["status"] == "agrees"
    # And the page counts it as the one item for a person
    assert verdict_of(report.to_html(built)) == "1 item needs a person"
    # while the untouched file stays clean, every payout agreeing
    clean = report_samples.build("clean")
    assert clean["clean"] is True and {c["status"] for c in clean["summary"]["payout_checks"]} == {"agrees"}
