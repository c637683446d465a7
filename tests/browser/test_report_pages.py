"""The reconciliation report in a real browser: Debian's Chromium driven by Playwright.

Four pages (a clean day, a tampered day, a quarantined file and the largest real Adyen file,
payments_dev.report_samples) at a phone's width (390 px) and a laptop's (1280 px): the page
never scrolls sideways, its verdict is the first thing read, and its text has the contrast
WCAG asks (4.5:1). Nothing is installed from the internet: where no system Chromium exists
(or the playwright package is absent) the tests are skipped, saying why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from payments.reconciliation import report
from payments_dev import report_samples

VERDICTS = {
    "clean": "Clean",
    "tampered": "3 items need a person",
    "quarantined": "File quarantined: binary content (NUL byte) in the first bytes",
    "adyen": "226 items need a person",
}

#: every element with text of its own, outside closed <details>: its colour against the background
#: it is drawn on (the first ancestor with an opaque one), as WCAG 2 computes contrast
CONTRAST = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                                 if (c.length === 3 || c[3] === 1) return c.slice(0, 3); } return [255, 255, 255]; };
  let worst = {ratio: 99, text: ""};
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim()).map((n) => n.textContent.trim());
    if (!own.length || el.getClientRects().length === 0) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < worst.ratio) worst = {ratio, text: own.join(" ").slice(0, 60)};
  }
  return worst;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """The system's Chromium; each test is skipped, saying why, where it or playwright is absent
    (skipped tests, not an empty module: `make test` passes on a machine without a browser)."""
    api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    executable = report_samples.chromium()
    if executable is None:
        pytest.skip(
            "no system Chromium (Debian's chromium package: apt-get install chromium); the browser tests need it"
        )
    with api.sync_playwright() as playwright:
        launched = report_samples.launch(playwright, executable)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    rendered = {}
    for day in report_samples.DAYS:
        with contextlib.suppress(FileNotFoundError):  # the real sample is beside the repository (../shared)
            rendered[day] = report.to_html(report_samples.build(day))
    return rendered


def open_page(browser: Any, pages: dict[str, str], day: str, width: int) -> Any:
    if day not in pages:
        pytest.skip(f"the real Adyen sample is absent: {report_samples.ADYEN_SAMPLE} (../shared/samples) is not here")
    page = browser.new_page(viewport={"width": width, "height": report_samples.VIEWPORTS[width]})
    page.set_content(pages[day])
    return page


@pytest.mark.parametrize("width", sorted(report_samples.VIEWPORTS))
@pytest.mark.parametrize("day", report_samples.DAYS)
def test_the_page_fits_the_screen_and_opens_with_its_verdict(
    browser: Any, pages: dict[str, str], day: str, width: int
) -> None:
    page = open_page(browser, pages, day, width)
    try:
        # Then the page is no wider than the window: nothing to scroll sideways
        scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        print(f"{day} at {width} px: scrollWidth {scroll_width}, innerWidth {inner_width}")
        assert inner_width == width
        assert scroll_width <= inner_width, f"{day} at {width} px is {scroll_width} px wide"
        # And the verdict says what the day needs, and is on the first screen without scrolling
        verdict = page.locator("#verdict strong")
        assert verdict.inner_text() == VERDICTS[day]
        box = verdict.bounding_box()
        assert box is not None and box["y"] + box["height"] <= report_samples.VIEWPORTS[width]
        # And every text has a contrast of at least 4.5:1 against its background
        worst = page.evaluate(CONTRAST)
        assert worst["ratio"] >= 4.5, worst
    finally:
        page.close()


def test_the_largest_real_adyen_file_is_a_short_page_until_its_group_is_opened(
    browser: Any, pages: dict[str, str]
) -> None:
    # Given the real batch of 226 payments and refunds unknown to an empty ledger
    page = open_page(browser, pages, "adyen", 1280)
    try:
        folded = page.evaluate("document.documentElement.scrollHeight")
        # Then its one group is folded: the page is a few screens, not 226 rows
        assert folded < 4 * 800, folded
        # And opening the group shows every row, in its own box that scrolls sideways if it must
        page.locator("details > summary").first.click()
        assert page.locator("details[open] tbody tr").count() == 226
        assert page.evaluate("document.documentElement.scrollHeight") > folded
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    finally:
        page.close()
