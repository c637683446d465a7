"""What the PSP says it did, for ``payments verify`` (invariants 1 and 8).

* The simulator (``PAYMENTS_PSP=simulator``): its own table, every charge and every refund it made.
* Adyen (``PAYMENTS_PSP=adyen``): what Adyen reports, namely the Settlement Details Reports that
  reconciliation read (its run summaries in the reconciliation table, format
  ``adyen_settlement_details``), read again from the settlement bucket: a ``Settled`` row is a
  charge (``Merchant Reference``: our payment_order_id), a ``Refunded`` row a refund that reached
  the shopper (``Modification Merchant Reference``: our refund_id). A report covers what Adyen has
  settled, so a charge or a refund decided after the last report is not in it yet: the record says
  so (``complete`` False), and a refund SUCCEEDED here that no report lists yet is left to
  reconciliation (``MISSING_IN_SETTLEMENT``) instead of being called a violation.
* Locally, the dev commands (demo, chaos) pass the Adyen fake's own record instead.

When nothing can be read (no Adyen report reconciled yet) the record carries the reason and
``payments verify`` prints the checks it feeds as ``SKIPPED``, never as passed.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from payments.kernel import aws
from payments.kernel.config import settings
from payments.kernel.dynamo import query_all

ADYEN_FORMAT = "adyen_settlement_details"  # payments.reconciliation.detect.ADYEN


@dataclass
class PspRecord:
    """The PSP's charges and refunds as ``payments.ops.invariants.check`` reads them: charges
    ``{merchant_reference, psp_reference}``, refunds ``{merchant_reference, succeeded}``. None:
    cannot be read, and ``unavailable`` says why."""

    source: str
    charges: list[dict[str, Any]] | None
    refunds: list[dict[str, Any]] | None
    #: every refund the PSP decided is listed (its own record), not only those reported so far
    complete: bool = True
    unavailable: str = ""
    notes: list[str] = field(default_factory=list)


def simulator_record() -> PspRecord:
    from payments.psp.simulator import SimulatedPsp

    psp = SimulatedPsp()
    return PspRecord(
        f"the simulated PSP's table {psp.table}", list(psp.all_charges()), list(psp.all_refunds()), complete=True
    )


def adyen_reported_record(table: str | None = None, bucket: str | None = None) -> PspRecord:
    """Adyen's charges and refunds from the settlement reports reconciliation read (see the module)."""
    table = table or settings().reconciliation_table
    bucket = bucket or settings().settlement_bucket
    runs = [
        item
        for item in query_all(
            aws.client("dynamodb"),
            _op="scan",
            TableName=table,
            FilterExpression="sk = :summary AND #format = :adyen",
            ExpressionAttributeNames={"#format": "format"},
            ExpressionAttributeValues={":summary": {"S": "SUMMARY"}, ":adyen": {"S": ADYEN_FORMAT}},
            ConsistentRead=True,
        )
        if not item.get("quarantine_reason")
    ]
    charges: dict[str, dict[str, Any]] = {}
    refunds: dict[str, dict[str, Any]] = {}
    read, notes = 0, []
    for run in sorted(runs, key=lambda r: str(r["pk"])):
        key = str(run["pk"]).removeprefix("RUN#")
        try:
            rows = _report_rows(bucket, key)
            for row in rows:
                if row.record_type in ("Settled", "SettledBulk"):
                    charges.setdefault(
                        row.psp_reference,
                        {"merchant_reference": row.merchant_reference, "psp_reference": row.psp_reference},
                    )
                elif row.record_type in ("Refunded", "RefundedBulk"):
                    reference = row.modification_reference or f"{key}:{row.line}"
                    refunds.setdefault(
                        reference,
                        {
                            "merchant_reference": row.modification_merchant_reference,
                            "psp_reference": row.modification_reference,
                            "succeeded": True,
                        },
                    )
        except (ClientError, ValueError) as err:
            notes.append(f"s3://{bucket}/{key} unreadable now ({type(err).__name__}: {str(err)[:120]})")
            continue
        read += 1
    if not read:
        why = (
            f"no Adyen settlement report has been reconciled yet (reconciliation table {table})"
            if not runs
            else f"none of the {len(runs)} reconciled Adyen settlement reports could be read: {'; '.join(notes)}"
        )
        return PspRecord("Adyen's settlement reports", None, None, complete=False, unavailable=why, notes=notes)
    source = (
        f"{read} reconciled Adyen settlement report(s) in s3://{bucket} ({len(charges)} Settled, "
        f"{len(refunds)} Refunded rows); what Adyen has not settled yet is not in them"
    )
    return PspRecord(source, list(charges.values()), list(refunds.values()), complete=False, notes=notes)


def _report_rows(bucket: str, key: str) -> Iterator[Any]:
    """The parsed rows of a report in the bucket (rejected rows are reconciliation's to report)."""
    from payments.reconciliation import adyen
    from payments.reconciliation.engine import read_header
    from payments.reconciliation.model import UnreadableFile

    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    text = codecs.iterdecode(body.iter_lines(keepends=True), "utf-8-sig", errors="replace")
    lines: Iterator[tuple[int, str | None]] = ((n, line.rstrip("\r\n")) for n, line in enumerate(text, 1))
    try:
        layout = read_header(lines)
    except UnreadableFile as err:
        raise ValueError(err.reason) from None
    for row in adyen.iter_rows(lines, layout):
        if isinstance(row, adyen.SettlementRow):
            yield row
