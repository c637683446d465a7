"""The report of one file, in three renderings: JSON (the contract), HTML (people), CSV (spreadsheets).

The JSON keys named by the contract (``source_key``, ``format``, ``rows``,
``matched``, ``mismatches[kind, psp_reference, payment_order_id, ledger_amount,
settlement_amount, currency, classification]``, ``rejected_rows[line, reason]``)
are exactly as specified; the rest is added: each mismatch's ``rule``,
``mismatch_id`` and ``line`` (and ``record_type`` for a refund's, chargeback's or
reversal's); ``summary`` (row outcomes, record types, the refund/chargeback/reversal
outcomes per record type in ``adjustments``, gross/net/fee totals per currency); ``three_way``; ``statements`` for bank files;
``quarantined`` for files that could not be read. The report holds no timestamp:
the same file gives the same report, byte for byte.

The HTML escapes every value; the CSV neutralises spreadsheet formulas (a
leading ``=``, ``+``, ``-``, ``@``, tab or CR is prefixed with ``'``, the OWASP rule).
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Mapping
from typing import Any

from payments.kernel.money import format_minor
from payments.reconciliation.engine import Result

CSV_COLUMNS = (
    "mismatch_id",
    "kind",
    "psp_reference",
    "payment_order_id",
    "ledger_amount",
    "settlement_amount",
    "currency",
    "classification",
    "rule",
    "line",
)


def build(source_key: str, sha256: str, result: Result, three_way: dict[str, Any] | None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "source_key": source_key,
        "format": result.format,
        "rows": result.rows,
        "matched": result.matched,
        "mismatches": [m.to_report() for m in result.mismatches],
        "rejected_rows": [r.to_report() for r in result.rejected],
        "sha256": sha256,
        "encoding": result.encoding,
        "clean": result.clean and not (three_way or {}).get("differences"),
        "summary": {
            "window_day": result.window_day,
            "row_outcomes": {
                "matched": result.matched,
                "mismatched": sum(1 for m in result.mismatches if m.line is not None),
                "rejected": len(result.rejected),
                "recorded": result.recorded,
            },
            "mismatches_omitted": result.mismatches_omitted,
            "mismatches_by_classification": _count(m.classification for m in result.mismatches),
            "record_types": result.record_types,
            # refunds, chargebacks and reversals matched like charges: per record type, its rows and
            # their outcomes, and the ledger's adjustments of the day absent from the file
            **({"adjustments": result.adjustments} if result.adjustments else {}),
            "totals": {
                ccy: {name: format_minor(v, ccy) for name, v in sums.items()} for ccy, sums in result.totals.items()
            },
        },
    }
    if result.statements:
        report["statements"] = result.statements
    if three_way is not None:
        report["three_way"] = three_way
    return report


def quarantined(source_key: str, reason: str, quarantine_key: str) -> dict[str, Any]:
    return {
        "source_key": source_key,
        "format": None,
        "rows": 0,
        "matched": 0,
        "mismatches": [],
        "rejected_rows": [],
        "clean": False,
        "quarantined": {"reason": reason, "quarantine_key": quarantine_key},
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for mismatch in report["mismatches"]:
        writer.writerow([safe_cell(mismatch.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def to_html(report: dict[str, Any], resolutions: Mapping[str, Mapping[str, str]] | None = None) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Reconciliation {e(report['source_key'])}</title>",
        (
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
            ".MANUAL{background:#fdd}.AUTO_RESOLVABLE{background:#dfd}.UNCLASSIFIED{background:#ffd}</style>"
        ),
        "</head><body>",
        f"<h1>Reconciliation of {e(report['source_key'])}</h1>",
    ]
    if "quarantined" in report:
        parts.append(f"<p><strong>Quarantined:</strong> {e(report['quarantined']['reason'])}</p></body></html>")
        return "\n".join(parts) + "\n"
    parts += _html_summary(report)
    parts += _html_mismatches(report)
    parts += _html_statements(report)
    parts += _html_three_way(report)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_summary(report: dict[str, Any]) -> list[str]:
    """The run's figures and its totals per currency."""
    e = html.escape
    summary = report["summary"]
    parts = ["<table>"]
    for label, value in (
        ("Format", report["format"]),
        ("Day", summary["window_day"]),
        ("Rows", report["rows"]),
        ("Matched", report["matched"]),
        ("Mismatches", len(report["mismatches"])),
        ("Mismatches omitted (bound)", summary["mismatches_omitted"]),
        ("Rejected rows", len(report["rejected_rows"])),
        ("SHA-256", report["sha256"]),
    ):
        parts.append(f"<tr><th>{e(label)}</th><td>{e(str(value))}</td></tr>")
    parts.append("</table>")
    if summary["totals"]:
        names = list(next(iter(summary["totals"].values())))
        parts.append(
            "<h2>Totals</h2><table><tr><th>Currency</th>" + "".join(f"<th>{e(n)}</th>" for n in names) + "</tr>"
        )
        for ccy, sums in summary["totals"].items():
            parts.append(f"<tr><td>{e(ccy)}</td>" + "".join(f"<td>{e(sums[n])}</td>" for n in names) + "</tr>")
        parts.append("</table>")
    return parts


def _html_mismatches(report: dict[str, Any]) -> list[str]:
    """The mismatches (a row per mismatch, classed by its classification) and the rejected rows."""
    e = html.escape
    parts = ["<h2>Mismatches</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in CSV_COLUMNS) + "</tr>"]
    for mismatch in report["mismatches"]:
        cls = e(mismatch["classification"])
        parts.append(
            f'<tr class="{cls}">'
            + "".join(f"<td>{e(str(mismatch.get(c) if mismatch.get(c) is not None else ''))}</td>" for c in CSV_COLUMNS)
            + "</tr>"
        )
    parts.append("</table>")
    if report["rejected_rows"]:
        parts.append("<h2>Rejected rows</h2><table><tr><th>line</th><th>reason</th></tr>")
        for row in report["rejected_rows"]:
            parts.append(f"<tr><td>{row['line']}</td><td>{e(row['reason'])}</td></tr>")
        parts.append("</table>")
    return parts


def _html_statements(report: dict[str, Any]) -> list[str]:
    """A bank statement's balance check, one paragraph per statement."""
    e = html.escape
    parts = []
    for statement in report.get("statements", []):
        statement = {k: "-" if v is None else v for k, v in statement.items()}  # a balance the file lacks
        parts.append(
            f"<h2>Statement {e(statement['statement_id'])} ({e(statement['account'])})</h2>"
            f"<p>opening {e(statement['opening_balance'])} + credits {e(statement['credits'])} - debits {e(statement['debits'])} "
            f"= {e(statement['computed_closing_balance'])}; closing {e(statement['closing_balance'])} {e(statement['currency'])}: "
            f"<strong>{'balanced' if statement['balanced'] else 'cannot be checked' if statement['balanced'] is None else 'NOT BALANCED'}</strong>"
            f" ({e(statement['balance_check'])})</p>"
        )
    return parts


def _html_three_way(report: dict[str, Any]) -> list[str]:
    """The wallet vs ledger differences of the three-way check, if any."""
    e = html.escape
    three_way = report.get("three_way")
    if not (three_way and three_way.get("differences")):
        return []
    parts = [
        "<h2>Wallet vs ledger differences</h2><table><tr><th>seller</th><th>currency</th><th>wallet</th><th>ledger</th></tr>"
    ]
    for diff in three_way["differences"]:
        parts.append(
            f"<tr><td>{e(diff['seller_account'])}</td><td>{e(diff['currency'])}</td>"
            f"<td>{e(diff['wallet_amount'])}</td><td>{e(diff['ledger_amount'])}</td></tr>"
        )
    parts.append("</table>")
    return parts
