"""The reconciliation table: runs, their mismatches (listable, resolvable once), PSP payouts.

Item layout (``pk``, ``sk``), all strings:

* run summary   ``RUN#<source_key>`` / ``SUMMARY``: sha256, format, rows, matched, mismatches,
  rejected, clean, report_key, window_day. Put (overwritten by a later run of the same key).
* mismatch      ``RUN#<source_key>`` / ``MISMATCH#<sha256[:16]>#<mismatch_id>``: the report's
  mismatch fields, ``status`` (``OPEN`` | ``RESOLVED``), and once resolved ``resolution``,
  ``resolved_by``, ``resolved_at``. ``mismatch_id`` is ``<kind>#<reference>#<line>``:
  deterministic, so reconciling the same file again writes the same keys. They are
  written with ``attribute_not_exists``: a second run creates no duplicate and never
  reopens a resolved mismatch. A *changed* file under the same key has another
  sha256, hence its own mismatch set; the summary points at the latest.
* payout        ``PAYOUT#<currency>#<amount_minor>`` / ``<source_key>``: a ``MerchantPayout``
  total announced by a PSP report, for bank statement matching.

Listing open mismatches across all runs would want a GSI ``by_status``
(``status``, ``pk``); today they are listed per run (one Query).
"""

from __future__ import annotations

from typing import Any

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import conditional_write, query_all, to_item, to_values, transient_as_store_unavailable
from payments.kernel.errors import NotFound

OPEN, RESOLVED = "OPEN", "RESOLVED"


def run_pk(source_key: str) -> str:
    return f"RUN#{source_key}"


class ReconciliationStore:
    def __init__(self, table: str | None = None, client: Any = None):
        self.table = table or settings().reconciliation_table
        self.ddb = client or aws.client("dynamodb")

    def save_run(self, report: dict[str, Any], report_key: str) -> int:
        """Record a run and its mismatches; returns how many mismatch items were new."""
        source_key, digest = report["source_key"], report.get("sha256", "")
        created = 0
        for mismatch in report["mismatches"]:
            item = {
                "pk": run_pk(source_key),
                "sk": f"MISMATCH#{digest[:16]}#{mismatch['mismatch_id']}",
                "status": OPEN,
                "sha256": digest,
                **{k: v for k, v in mismatch.items() if v is not None},
            }
            if conditional_write(
                self.ddb.put_item,
                TableName=self.table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
            ):
                created += 1
        summary = {
            "pk": run_pk(source_key),
            "sk": "SUMMARY",
            "sha256": digest,
            "format": report["format"],
            "rows": report["rows"],
            "matched": report["matched"],
            "mismatches": len(report["mismatches"]),
            "rejected": len(report["rejected_rows"]),
            "clean": report["clean"],
            "report_key": report_key,
            "window_day": report.get("summary", {}).get("window_day"),
            "quarantine_reason": report.get("quarantined", {}).get("reason"),
        }
        with transient_as_store_unavailable():
            self.ddb.put_item(TableName=self.table, Item=to_item(summary))
        return created

    def record_payouts(self, source_key: str, payouts: dict[str, int]) -> None:
        """Remember the PSP payouts of a report (currency -> minor units) for bank matching."""
        for currency, amount in payouts.items():
            if amount > 0:
                item = {
                    "pk": f"PAYOUT#{currency}#{amount}",
                    "sk": source_key,
                    "currency": currency,
                    "amount_minor": amount,
                }
                with transient_as_store_unavailable():
                    self.ddb.put_item(TableName=self.table, Item=to_item(item))

    def find_payout(self, currency: str, amount_minor: int) -> dict[str, Any] | None:
        items = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_values({":pk": f"PAYOUT#{currency}#{amount_minor}"}),
            Limit=1,
        ).get("Items", [])
        return {"source_key": items[0]["sk"]["S"], "currency": currency} if items else None

    def summary(self, source_key: str) -> dict[str, Any] | None:
        for item in query_all(
            self.ddb,
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk = :sk",
            ExpressionAttributeValues=to_values({":pk": run_pk(source_key), ":sk": "SUMMARY"}),
        ):
            return item
        return None


def list_mismatches(
    source_key: str, status: str | None = None, store: ReconciliationStore | None = None
) -> list[dict[str, Any]]:
    """The mismatches of the latest run of ``source_key`` (optionally only OPEN or RESOLVED ones)."""
    store = store or ReconciliationStore()
    summary = store.summary(source_key)
    if summary is None:
        return []
    items = query_all(
        store.ddb,
        TableName=store.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues=to_values(
            {":pk": run_pk(source_key), ":prefix": f"MISMATCH#{summary['sha256'][:16]}#"}
        ),
    )
    return [
        {k: v for k, v in item.items() if k not in ("pk", "sk")}
        for item in items
        if status is None or item["status"] == status
    ]


def resolve_mismatch(
    source_key: str, mismatch_id: str, resolution: str, resolved_by: str, store: ReconciliationStore | None = None
) -> bool:
    """Record how a mismatch was resolved. Exactly once: True if recorded now, False if it
    had been resolved before (the first resolution stands). NotFound if there is no such mismatch."""
    store = store or ReconciliationStore()
    summary = store.summary(source_key)
    if summary is None:
        raise NotFound(f"no reconciliation run for {source_key}")
    key = {"pk": {"S": run_pk(source_key)}, "sk": {"S": f"MISMATCH#{summary['sha256'][:16]}#{mismatch_id}"}}
    if conditional_write(
        store.ddb.update_item,
        TableName=store.table,
        Key=key,
        UpdateExpression="SET #s = :resolved, resolution = :resolution, resolved_by = :by, resolved_at = :at",
        ConditionExpression="attribute_exists(pk) AND #s = :open",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_values(
            {
                ":resolved": RESOLVED,
                ":open": OPEN,
                ":resolution": resolution,
                ":by": resolved_by,
                ":at": clock.now_iso(),
            }
        ),
    ):
        return True
    existing = store.ddb.get_item(TableName=store.table, Key=key, ConsistentRead=True).get("Item")
    if existing is None:
        raise NotFound(f"no mismatch {mismatch_id} in the latest run of {source_key}")
    return False
