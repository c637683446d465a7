"""The HTML rendering of a reconciliation report: one self-contained page a finance person acts on.

The page answers, in this order:

1. **The verdict**: ``Clean``, ``N items need a person`` or ``File quarantined: <why>``
   (``All N items resolved`` once every item has a resolution). An *item* is an open
   mismatch, a mismatch beyond the report's bound, a rejected row, a bank statement that
   does not balance, a wallet/ledger difference, or a currency whose payout is not its net.
2. **The payout check**: per currency, the net credit of the file minus its refunds,
   chargebacks, fees and other debits must be the payout the PSP announces. An Adyen batch
   closes at zero: its rows' net credits equal their net debits, the payout included.
3. **What needs doing**: the mismatches grouped by kind, each kind with what it means and
   the next step; groups longer than :data:`FOLD_AFTER` are folded (``<details>``). Each
   mismatch says whether it is open or who resolved it, when and why (``resolutions``:
   ``mismatch_id -> {"status", "resolved_by", "resolved_at", "resolution"}``, the records
   of the reconciliation table).
4. Rejected rows, bank statements, wallet/ledger differences, the file's totals and its facts.

Everything is inline (CSS, no script, no external fetch); every value is escaped; amounts
are decimal strings (never floats), right-aligned with their currency in tabular numerals.
Tables sit in boxes that scroll on their own, so the page itself never scrolls sideways.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

#: a group with more mismatches than this is folded
FOLD_AFTER = 10
#: days a payment may take to appear in a settlement file before the PSP is asked
WAIT_DAYS = 3

FORMATS = {
    "adyen_settlement_details": "Adyen Settlement Details Report",
    "camt053": "Bank statement (ISO 20022 camt.053)",
    "bai2": "Bank statement (BAI2)",
    "mt940": "Bank statement (SWIFT MT940)",
}

#: kind -> (title, what it means, the next step); in the order the page lists them (money at risk first)
KINDS: dict[str, tuple[str, str, str]] = {
    "AMOUNT_MISMATCH": (
        "Amount differs",
        "The PSP settled a different amount than our ledger booked for the same payment.",
        "Compare both amounts with the order. If the PSP is wrong, raise a claim with the PSP quoting "
        "the PSP reference; if our ledger is wrong, book a correcting entry. Then resolve the item with a note.",
    ),
    "CURRENCY_MISMATCH": (
        "Currency differs",
        "The PSP settled the payment in another currency than our ledger booked.",
        "Check the order's currency and the PSP account's currency settings, and ask the PSP which "
        "currency it captured. Do not accept the payout for this payment until it is explained.",
    ),
    "MISSING_IN_LEDGER": (
        "Settled by the PSP, not in our ledger",
        "Money the PSP settled (a payment, refund or chargeback) that our ledger has no record of.",
        "Look the PSP reference up in the PSP's back office. If it is ours, find why it was not booked "
        "(a lost notification) and book it; if it is not ours, ask the PSP to take it back.",
    ),
    "DUPLICATE_IN_SETTLEMENT": (
        "Listed twice by the PSP",
        "The same PSP reference appears on more than one row of the file.",
        "An identical repeat is counted once: resolve it with a note. Rows that differ: ask the PSP "
        "which row is right before you accept the payout.",
    ),
    "MISSING_IN_SETTLEMENT": (
        "In our ledger, not settled by the PSP",
        "A payment our ledger booked for this day that the PSP's file does not list.",
        f"Wait for the next file: a payment made just before midnight settles the next day, and the "
        f"later file resolves it by itself. If it is still missing after {WAIT_DAYS} days, ask the PSP "
        f"whether it captured the payment (quote the PSP reference).",
    ),
}
UNKNOWN_KIND = ("Other difference", "A difference of a kind this page does not describe.", "Ask engineering.")

CLASSES = {
    "AUTO_RESOLVABLE": "should clear by itself",
    "MANUAL": "needs a person",
    "UNCLASSIFIED": "not understood by the engine",
}
RECORD_TYPES = {
    None: "Payment",
    "Refunded": "Refund",
    "Chargeback": "Chargeback",
    "ChargebackReversed": "Chargeback reversed",
    "SecondChargeback": "Second chargeback",
}

#: the summary's totals, labelled; in the order the table lists them (zero rows are left out)
TOTALS = (
    ("gross_credit", "Gross credit"),
    ("gross_debit", "Gross debit"),
    ("net_credit", "Net credit"),
    ("net_debit", "Net debit"),
    ("commission", "Commission"),
    ("markup", "Markup"),
    ("scheme_fees", "Scheme fees"),
    ("interchange", "Interchange"),
    ("refunded", "Refunds"),
    ("refunded_reversed", "Refunds reversed"),
    ("chargeback", "Chargebacks"),
    ("chargeback_reversed", "Chargebacks reversed"),
    ("second_chargeback", "Second chargebacks"),
    ("fee", "Fees (Fee rows)"),
    ("payout", "Payout"),
)
#: the debits the payout check takes from the net credit, labelled
DEBITS = (
    ("refunded", "Refunds"),
    ("chargeback", "Chargebacks"),
    ("second_chargeback", "Second chargebacks"),
    ("fee", "Fees (Fee rows)"),
)

CSS = """
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1a1a1a;background:#fff}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.25rem;margin:2rem 0 .5rem;border-bottom:1px solid #c4c4c4;padding-bottom:.25rem}
h3{font-size:1.05rem;margin:0}
p{margin:.5rem 0}
.file,.wrap{overflow-wrap:anywhere}
.muted{color:#555}
.verdict{margin:1rem 0;padding:1rem;border-radius:.5rem;border:2px solid;overflow-wrap:anywhere}
.verdict strong{display:block;font-size:1.4rem;line-height:1.3}
.verdict p{margin:.25rem 0 0}
.v-clean{background:#e7f4ea;color:#0b4f1f;border-color:#2e7d32}
.v-action{background:#fff3e0;color:#6b3300;border-color:#c25e00}
.v-quarantined{background:#fdecec;color:#7f1212;border-color:#c62828}
.v-resolved{background:#e8f0fe;color:#123a7a;border-color:#3b6fd1}
.table-wrap{max-width:100%;overflow-x:auto;margin:.5rem 0}
table{border-collapse:collapse;width:100%}
caption{text-align:left;font-weight:600;padding:.25rem 0;color:#1a1a1a}
th,td{border-bottom:1px solid #d0d0d0;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
thead th{border-bottom:2px solid #555;white-space:nowrap}
th[scope=row]{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ok{color:#0b4f1f;font-weight:600}
.bad{color:#a11212;font-weight:600}
.open{color:#a11212;font-weight:600}
.resolved{color:#0b4f1f}
.group{border:1px solid #c4c4c4;border-radius:.5rem;padding:.75rem;margin:1rem 0}
.next{background:#f3f3f3;padding:.5rem .75rem;border-left:4px solid #555}
details>summary{cursor:pointer;font-weight:600;padding:.25rem 0}
.total-row th,.total-row td{border-top:2px solid #555;font-weight:600}
dl.facts{display:grid;grid-template-columns:minmax(0,16rem) minmax(0,1fr);gap:.25rem 1rem;margin:.5rem 0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere;min-width:0}
.checks{display:flex;flex-wrap:wrap;gap:0 2rem}
.checks>.table-wrap{flex:1 1 20rem}
@media (max-width:40rem){dl.facts{grid-template-columns:minmax(0,1fr)}dl.facts dd{margin-bottom:.5rem}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _decimal(text: Any) -> Decimal:
    try:
        return Decimal(str(text)) if text not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _places(text: Any) -> int:
    value = str(text or "")
    return len(value.split(".", 1)[1]) if "." in value else 0


def _money(amount: Decimal | str | None, currency: str | None, places: int | None = None) -> str:
    """``55308.07, "USD" -> "55,308.07 USD"`` (thousands separated, the currency after the digits)."""
    if amount is None or amount == "":
        return ""
    value = amount if isinstance(amount, Decimal) else _decimal(amount)
    digits = places if places is not None else _places(amount)
    text = f"{value:,.{digits}f}"  # an ASCII minus: the figure pastes into a spreadsheet as a number
    return f"{text} {currency}" if currency else text


def _table(caption: str, head: list[str], rows: list[str], numeric: frozenset[int] = frozenset()) -> str:
    """A captioned table in its own scrolling box (focusable: it scrolls from the keyboard too);
    ``rows`` are rendered ``<tr>`` elements, the columns whose index is in ``numeric`` hold
    amounts (their headers are right-aligned too)."""
    header = "".join(
        f'<th scope="col" class="num">{_e(h)}</th>' if i in numeric else f'<th scope="col">{_e(h)}</th>'
        for i, h in enumerate(head)
    )
    return (
        f'<div class="table-wrap" role="region" tabindex="0" aria-label="{_e(caption)}">'
        f"<table><caption>{_e(caption)}</caption>"
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --- the figures behind the verdict ----------------------------------------------------------------
def payout_checks(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per currency with net amounts or a payout: net credit minus the debits, against the payout.

    ``status``: ``agrees``; ``differs`` (a payout row that is not the net: an item for a
    person); ``carried over`` (no payout row: the net goes to a later batch).
    """
    checks = []
    totals: Mapping[str, Mapping[str, str]] = report.get("summary", {}).get("totals", {})
    for ccy, sums in totals.items():
        net_credit, net_debit, payout = (_decimal(sums.get(k)) for k in ("net_credit", "net_debit", "payout"))
        if not (net_credit or net_debit or payout):
            continue
        debits = {key: _decimal(sums.get(key)) for key, _ in DEBITS}
        other = net_debit - payout - sum(debits.values(), Decimal(0))
        expected = net_credit - (net_debit - payout)
        status = "agrees" if expected == payout else ("differs" if payout else "carried over")
        checks.append(
            {
                "currency": ccy,
                "places": max(_places(sums.get("net_credit")), _places(sums.get("payout"))),
                "net_credit": net_credit,
                "debits": debits,
                "other_debits": other,
                "expected_payout": expected,
                "payout": payout,
                "difference": payout - expected,
                "status": status,
            }
        )
    return checks


def _is_open(mismatch: Mapping[str, Any], resolutions: Mapping[str, Mapping[str, Any]]) -> bool:
    record = resolutions.get(str(mismatch.get("mismatch_id")))
    return record is None or str(record.get("status", "OPEN")).upper() == "OPEN"


def items(report: Mapping[str, Any], resolutions: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, int]:
    """What needs a person, counted by what it is (zero counts included)."""
    resolutions = resolutions or {}
    summary = report.get("summary", {})
    mismatches = report.get("mismatches", [])
    return {
        "open_mismatches": sum(1 for m in mismatches if _is_open(m, resolutions)),
        "resolved_mismatches": sum(1 for m in mismatches if not _is_open(m, resolutions)),
        "mismatches_not_listed": int(summary.get("mismatches_omitted", 0) or 0),
        "rejected_rows": len(report.get("rejected_rows", [])),
        "unbalanced_statements": sum(1 for s in report.get("statements", []) if s.get("balanced") is False),
        "wallet_differences": len((report.get("three_way") or {}).get("differences", [])),
        "payouts_differing": sum(1 for c in payout_checks(report) if c["status"] == "differs"),
    }


def verdict(report: Mapping[str, Any], resolutions: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The page's first line: ``Clean``, ``N items need a person``, ``File quarantined: <why>``, or
    ``All N items resolved``."""
    if "quarantined" in report:
        return f"File quarantined: {report['quarantined']['reason']}"
    counts = items(report, resolutions)
    resolved = counts.pop("resolved_mismatches")
    need = sum(counts.values())
    if need:
        return f"{_plural(need, 'item')} {'needs' if need == 1 else 'need'} a person"
    if resolved:
        return f"All {_plural(resolved, 'item')} resolved"
    return "Clean"


# --- the page ---------------------------------------------------------------------------------------
def render(report: Mapping[str, Any], resolutions: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    resolutions = resolutions or {}
    summary = report.get("summary", {})
    day = summary.get("window_day")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(verdict(report, resolutions))}: reconciliation of {_e(report['source_key'])}</title>",
        f"<style>{CSS}</style>",
        "</head><body><main>",
        "<header><h1>Reconciliation report</h1>",
        f'<p class="file">File <strong>{_e(report["source_key"])}</strong>'
        + (f" · day {_e(day)}" if day else "")
        + (f" · {_e(FORMATS.get(report['format'], report['format']))}" if report.get("format") else "")
        + "</p></header>",
    ]
    parts.append(_verdict_box(report, resolutions))
    if "quarantined" in report:
        parts.append(_quarantined(report))
    else:
        parts += _payout_section(report)
        parts += _mismatch_section(report, resolutions)
        parts += _rejected_section(report)
        parts += _statements_section(report)
        parts += _three_way_section(report)
        parts += _totals_section(report)
        parts += _facts_section(report)
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _verdict_box(report: Mapping[str, Any], resolutions: Mapping[str, Mapping[str, Any]]) -> str:
    text = verdict(report, resolutions)
    if "quarantined" in report:
        cls, detail = "v-quarantined", "The file was not reconciled: nothing in it was matched or recorded."
    else:
        counts = items(report, resolutions)
        listed = [
            _plural(counts["open_mismatches"], "open mismatch", "open mismatches"),
            _plural(
                counts["mismatches_not_listed"],
                "mismatch beyond the report's bound",
                "mismatches beyond the report's bound",
            ),
            _plural(counts["rejected_rows"], "rejected row"),
            _plural(
                counts["unbalanced_statements"], "statement that does not balance", "statements that do not balance"
            ),
            _plural(counts["wallet_differences"], "wallet/ledger difference"),
            _plural(counts["payouts_differing"], "payout that is not the net", "payouts that are not the net"),
        ]
        listed = [item for item in listed if not item.startswith("0 ")]
        resolved = counts["resolved_mismatches"]
        if listed:
            cls = "v-action"
            detail = "To do: " + ", ".join(listed) + "."
        elif resolved:
            cls, detail = "v-resolved", "Every mismatch of this file has a resolution (see each one below)."
        else:
            cls = "v-clean"
            outcomes = report.get("summary", {}).get("row_outcomes", {})
            detail = (
                f"{_plural(int(report.get('matched', 0)), 'row')} matched, "
                f"{_plural(int(outcomes.get('recorded', 0)), 'account row')} (fees, payouts) recorded; "
                "nothing needs a person."
            )
        if resolved and listed:
            detail += f" {_plural(resolved, 'mismatch', 'mismatches')} already resolved."
    return (
        f'<section class="verdict {cls}" id="verdict" aria-label="Verdict">'
        f"<strong>{_e(text)}</strong><p>{_e(detail)}</p></section>"
    )


def _quarantined(report: Mapping[str, Any]) -> str:
    quarantined = report["quarantined"]
    return (
        "<h2>What happened</h2>"
        "<p>The file could not be read as a settlement file or a bank statement, so it was moved aside "
        "untouched: no payment was matched, no mismatch was recorded and no balance moved.</p>"
        '<dl class="facts">'
        f"<dt>Reason</dt><dd>{_e(quarantined['reason'])}</dd>"
        f"<dt>The file is now at</dt><dd>{_e(quarantined.get('quarantine_key'))}</dd>"
        "</dl>"
        '<p class="next"><strong>Next step:</strong> ask the sender (the PSP or the bank) for a correct copy '
        "of the file and put it under <code>incoming/</code> again; it is reconciled as it arrives. Tell "
        "engineering if the reason names a format the file really is in.</p>"
    )


def _payout_section(report: Mapping[str, Any]) -> list[str]:
    checks = payout_checks(report)
    if not checks:
        return []
    parts = [
        "<h2>Payout check</h2>",
        "<p>What the PSP pays into the bank must be the file's net credit less its refunds, chargebacks, "
        "fees and other debits.</p>",
        '<div class="checks">',
    ]
    notes = []
    for c in checks:
        ccy = c["currency"]

        def money(value: Decimal, minus: bool = False, c: dict[str, Any] = c) -> str:
            return _e(_money(-value if minus else value, c["currency"], c["places"]))

        def row(label: str, cell: str, cls: str = "") -> str:
            return f'<tr class="{cls}"><th scope="row">{_e(label)}</th><td class="num">{cell}</td></tr>'

        rows = [row("Net credit (payments and reversals, after per-payment fees)", money(c["net_credit"]))]
        rows += [
            row(f"less {label.lower()}", money(c["debits"][key], True)) for key, label in DEBITS if c["debits"][key]
        ]
        if c["other_debits"]:
            rows.append(row("less other debits (invoices, costs, corrections)", money(c["other_debits"], True)))
        rows.append(row("Net to pay out", money(c["expected_payout"]), "total-row"))
        rows.append(row("Payout the PSP announces", money(c["payout"])))
        if c["status"] == "agrees":
            result = '<span class="ok">Agrees</span>'
        elif c["status"] == "differs":
            result = f'<span class="bad">Differs by {money(c["difference"])}</span>'
            notes.append(
                f'<p class="bad">{_e(ccy)}: the PSP announces a payout of {money(c["payout"])}, but the file\'s '
                f"net credit less its debits is {money(c['expected_payout'])}; "
                f"{money(c['difference'].copy_abs())} is not explained by any row of the file. "
                "Ask the PSP for the rows this batch is missing before you book the payout.</p>"
            )
        else:
            result = '<span class="muted">No payout in this file</span>'
            notes.append(
                f"<p>{_e(ccy)}: no payout row; the net of {money(c['expected_payout'])} is carried to a later "
                "batch. Check that it arrives there.</p>"
            )
        rows.append(row("Check", result))
        parts.append(_table(f"Payout check, {ccy}", ["Step", "Amount"], rows, frozenset({1})))
    parts.append("</div>")
    return parts + notes


def _mismatch_section(report: Mapping[str, Any], resolutions: Mapping[str, Mapping[str, Any]]) -> list[str]:
    mismatches = report.get("mismatches", [])
    omitted = int(report.get("summary", {}).get("mismatches_omitted", 0) or 0)
    if not mismatches and not omitted:
        return []
    parts = ["<h2>Mismatches</h2>"]
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for mismatch in mismatches:
        groups.setdefault(str(mismatch["kind"]), []).append(mismatch)
    order = [k for k in KINDS if k in groups] + sorted(k for k in groups if k not in KINDS)
    for kind in order:
        parts.append(_group(kind, groups[kind], resolutions))
    if omitted:
        parts.append(
            f'<p class="bad">{_plural(omitted, "more mismatch", "more mismatches")} of this file '
            "are beyond the report's bound and not listed: list them with <code>payments mismatches list</code>.</p>"
        )
    return parts


def _group(kind: str, mismatches: list[Mapping[str, Any]], resolutions: Mapping[str, Mapping[str, Any]]) -> str:
    title, meaning, step = KINDS.get(kind, UNKNOWN_KIND)
    open_count = sum(1 for m in mismatches if _is_open(m, resolutions))
    count = f"{_plural(len(mismatches), 'item')}, {open_count} open"
    head = ["Status", "What", "PSP reference", "Order", "Our ledger", "PSP file", "Line", "Why"]
    rows = [_mismatch_row(m, resolutions) for m in mismatches]
    table = _table(f"{title}: {count}", head, rows, frozenset({4, 5, 6}))
    anchor = f"kind-{_e(kind.lower())}"
    folded = len(mismatches) > FOLD_AFTER
    return (
        f'<section class="group" aria-labelledby="{anchor}">'
        f'<h3 id="{anchor}">{_e(title)} <span class="muted">({_e(count)})</span></h3>'
        f"<p>{_e(meaning)}</p>"
        f'<p class="next"><strong>Next step:</strong> {_e(step)}</p>'
        f"<details{'' if folded else ' open'}><summary>{'Show the ' if folded else ''}{_e(_plural(len(mismatches), 'item'))}"
        f"</summary>{table}</details></section>"
    )


def _mismatch_row(mismatch: Mapping[str, Any], resolutions: Mapping[str, Mapping[str, Any]]) -> str:
    record = resolutions.get(str(mismatch.get("mismatch_id")))
    if record is None or _is_open(mismatch, resolutions):
        status = '<span class="open">Open</span>'
    else:
        status = (
            f'<span class="resolved">Resolved</span> by {_e(record.get("resolved_by") or "someone")}'
            f" on {_e(record.get('resolved_at') or 'an unknown date')}: {_e(record.get('resolution') or '')}"
        )
    ledger_ccy = mismatch.get("ledger_currency") or mismatch.get("currency")
    classification = CLASSES.get(str(mismatch.get("classification")), str(mismatch.get("classification")))
    cells = [
        f"<td>{status}</td>",
        f"<td>{_e(RECORD_TYPES.get(mismatch.get('record_type'), mismatch.get('record_type')))}</td>",
        f"<td>{_e(mismatch.get('psp_reference') or '')}</td>",
        f"<td>{_e(mismatch.get('payment_order_id') or '')}</td>",
        f'<td class="num">{_e(_money(mismatch.get("ledger_amount"), ledger_ccy))}</td>',
        f'<td class="num">{_e(_money(mismatch.get("settlement_amount"), mismatch.get("currency")))}</td>',
        f'<td class="num">{_e(mismatch.get("line") or "")}</td>',
        f'<td>{_e(mismatch.get("rule"))} <span class="muted">({_e(classification)})</span></td>',
    ]
    return f"<tr>{''.join(cells)}</tr>"


def _rejected_section(report: Mapping[str, Any]) -> list[str]:
    rejected = report.get("rejected_rows", [])
    if not rejected:
        return []
    rows = [f'<tr><td class="num">{_e(r["line"])}</td><td>{_e(r["reason"])}</td></tr>' for r in rejected]
    table = _table(f"Rejected rows: {len(rejected)}", ["Line", "Why it could not be read"], rows, frozenset({0}))
    folded = len(rejected) > FOLD_AFTER
    return [
        "<h2>Rows that could not be read</h2>",
        '<p class="next"><strong>Next step:</strong> open the file at each line; ask the sender for a corrected '
        "file. These rows were not matched, so their payments are not confirmed.</p>",
        f"<details{'' if folded else ' open'}><summary>{_e(_plural(len(rejected), 'row'))}</summary>{table}</details>",
    ]


def _statements_section(report: Mapping[str, Any]) -> list[str]:
    statements = report.get("statements", [])
    if not statements:
        return []
    rows = []
    for s in statements:
        ccy = s.get("currency")
        check = (
            '<span class="ok">Balances</span>'
            if s.get("balanced")
            else '<span class="muted">Cannot be checked</span>'
            if s.get("balanced") is None
            else '<span class="bad">Does not balance</span>'
        )
        problems = "; ".join(str(p) for p in s.get("problems", []))
        rows.append(
            "<tr>"
            f'<th scope="row">{_e(s.get("statement_id"))}</th><td>{_e(s.get("account"))}</td>'
            + "".join(
                f'<td class="num">{_e(_money(s.get(k), ccy))}</td>'
                for k in ("opening_balance", "credits", "debits", "computed_closing_balance", "closing_balance")
            )
            + f"<td>{check}{(' ' + _e(problems)) if problems else ''}</td></tr>"
        )
    head = [
        "Statement",
        "Account",
        "Opening",
        "Credits",
        "Debits",
        "Opening plus credits minus debits",
        "Closing in the file",
        "Check",
    ]
    return [
        "<h2>Bank statements</h2>",
        "<p>Each statement must balance: its opening balance plus credits minus debits is its closing balance. "
        "One that does not: ask the bank for the missing entries.</p>",
        _table(f"Statements: {len(statements)}", head, rows, frozenset(range(2, 7))),
    ]


def _three_way_section(report: Mapping[str, Any]) -> list[str]:
    differences = (report.get("three_way") or {}).get("differences", [])
    if not differences:
        return []
    rows = [
        f'<tr><th scope="row">{_e(d["seller_account"])} ({_e(d.get("part", "total"))})</th>'
        f'<td class="num">{_e(_money(d["wallet_amount"], d["currency"]))}</td>'
        f'<td class="num">{_e(_money(d["ledger_amount"], d["currency"]))}</td>'
        f'<td class="num">{_e(_money(d.get("difference"), d["currency"]))}</td></tr>'
        for d in differences
    ]
    return [
        "<h2>Wallets that differ from the ledger</h2>",
        '<p class="next"><strong>Next step:</strong> a seller\'s wallet must equal what the ledger says we owe '
        "them. Hold the seller's payouts and tell engineering: this is never expected.</p>",
        _table(
            f"Wallet/ledger differences: {len(differences)}",
            ["Seller", "Wallet", "Ledger", "Difference"],
            rows,
            frozenset({1, 2, 3}),
        ),
    ]


def _totals_section(report: Mapping[str, Any]) -> list[str]:
    totals: Mapping[str, Mapping[str, str]] = report.get("summary", {}).get("totals", {})
    if not totals:
        return []
    currencies = list(totals)
    rows = []
    for key, label in TOTALS:
        if not any(_decimal(totals[c].get(key)) for c in currencies):
            continue
        cells = "".join(f'<td class="num">{_e(_money(totals[c].get(key), c))}</td>' for c in currencies)
        rows.append(f'<tr><th scope="row">{_e(label)}</th>{cells}</tr>')
    if not rows:
        return []
    return [
        "<h2>Totals of the file</h2>",
        "<p>As the file states them, per currency (gross amounts in the shopper's currency, net amounts and "
        "fees in the account's).</p>",
        _table("Totals per currency", ["Total", *currencies], rows, frozenset(range(1, len(currencies) + 1))),
    ]


def _facts_section(report: Mapping[str, Any]) -> list[str]:
    summary = report.get("summary", {})
    outcomes = summary.get("row_outcomes", {})
    record_types = summary.get("record_types", {})
    facts = [
        ("Rows read", report.get("rows")),
        ("Matched", report.get("matched")),
        ("Mismatched rows", outcomes.get("mismatched")),
        ("Rejected rows", outcomes.get("rejected")),
        ("Account rows recorded (fees, payouts)", outcomes.get("recorded")),
        ("Row types", ", ".join(f"{k}: {v}" for k, v in record_types.items()) or None),
        ("Text encoding", report.get("encoding")),
        ("File fingerprint (SHA-256)", report.get("sha256")),
    ]
    body = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in facts if value not in (None, ""))
    return ["<h2>About this file</h2>", f'<dl class="facts">{body}</dl>']
