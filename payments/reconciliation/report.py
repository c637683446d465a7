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
import io
import json
from collections.abc import Mapping
from typing import Any

from payments.kernel.money import format_minor
from payments.reconciliation import report_html
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
    # the batch's payout against its net (net credit less refunds, chargebacks, fees and other debits):
    # a payout that is not the net is an item for a person, like a mismatch, and the file is not clean
    checks = payout_checks(report)
    report["summary"]["payout_checks"] = checks
    if any(check["status"] == "differs" for check in checks):
        report["clean"] = False
    if result.statements:
        report["statements"] = result.statements
    if three_way is not None:
        report["three_way"] = three_way
    return report


def payout_checks(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """Per currency of the file's totals: the payout it announces against the net it should be
    (:func:`.report_html.payout_checks`), as decimal strings; ``status`` ``agrees``, ``differs`` or
    ``carried over`` (no payout row: the net goes to a later batch)."""
    out = []
    for check in report_html.payout_checks(report):
        places = int(check["places"])
        out.append(
            {
                "currency": str(check["currency"]),
                "expected_payout": f"{check['expected_payout']:.{places}f}",
                "payout": f"{check['payout']:.{places}f}",
                "difference": f"{check['difference']:.{places}f}",
                "status": str(check["status"]),
            }
        )
    return out


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


def to_html(report: dict[str, Any], resolutions: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The page a finance person acts on (:mod:`.report_html`): a verdict, the payout check, the
    mismatches grouped by kind with their next step and status (``resolutions``: mismatch_id ->
    the table's ``status``, ``resolved_by``, ``resolved_at``, ``resolution``). A quarantined
    file's report renders too."""
    return report_html.render(report, resolutions)
