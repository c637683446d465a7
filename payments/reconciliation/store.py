"""The reconciliation table: runs, their mismatches (a work queue: listed, resolved once), PSP payouts.

Item layout (``pk``, ``sk``), all strings:

* run summary   ``RUN#<source_key>`` / ``SUMMARY``: sha256, format, rows, matched, mismatches,
  rejected, clean, report_key, window_day (and ``counts`` for a bank file: applied, already, recorded,
  mismatches). Put (overwritten by a later run of the same key).
* mismatch      ``RUN#<source_key>`` / ``MISMATCH#<sha256[:16]>#<mismatch_id>``: the report's
  mismatch fields, ``status`` (``OPEN`` | ``RESOLVED``), and once resolved ``resolution``,
  ``resolved_by``, ``resolved_at``. ``mismatch_id`` is ``<kind>#<reference>#<line>``:
  deterministic, so reconciling the same file again writes the same keys. They are
  written with ``attribute_not_exists``: a second run creates no duplicate and never
  reopens a resolved mismatch. A *changed* file under the same key has another
  sha256, hence its own mismatch set; the summary points at the latest.
  Each mismatch also carries ``source_key``, ``mismatch_day`` (the run's settlement day,
  ``undated`` when it has none) and ``mismatch_ref``: the short id an operator types,
  ``<YYYYMMDD>-<12 hex>`` (a hash of the file's key, its sha256 and the ``mismatch_id``:
  stable, the same file gives the same ids). The sparse index ``by_mismatch_day``
  (``mismatch_day``, ``mismatch_ref``) lists a day's mismatches across every file and finds
  one by its short id (its day is in it): one Query each, never a Scan.
* day           ``MISMATCH_DAYS`` / ``<day>``: a day that has mismatches; "recent" is the latest
  :data:`RECENT_DAYS` of them (a Query, newest first).
* payout        ``PAYOUT#<currency>#<amount_minor>`` / ``<source_key>``: a ``MerchantPayout``
  total announced by a PSP report, for bank statement matching.

Resolution is one conditional update (``status = OPEN``): exactly once, the first one stands,
recording who (``resolved_by``), when (``resolved_at``) and why (``resolution``).

What resolves by itself (``resolved_by`` = ``reconciliation``, the resolution says why):

* **A charge settled late.** ``MISSING_IN_SETTLEMENT`` of a charge made on day D (typically near
  midnight) is resolved when a later file holds that charge's row and it matches the ledger
  (PSP reference, order, amount, currency): "settled by <source_key> line N". The engine finds
  such rows with its bounded point lookups (``Result.settled_late``); the day's mismatches are
  read with one Query of ``by_mismatch_day``.
* **A file reconciled again.** When a file is reconciled again and an open mismatch of its
  earlier run is no longer found (the ledger caught up: a ``MISSING_IN_LEDGER`` whose order was
  booked, an ``AMOUNT_MISMATCH`` corrected in the ledger), it is resolved "no longer found
  when <source_key> was reconciled again"; when the file under that key *changed* (another
  sha256), the old run's open mismatches are resolved as "superseded". Not when the new run
  hit the mismatch bound (an omitted mismatch is not a fixed one).

Nothing else resolves by itself: an ``AMOUNT_MISMATCH``, ``CURRENCY_MISMATCH`` or
``DUPLICATE_IN_SETTLEMENT`` of a file is what the PSP paid; a later file settling the same
reference again would be a second settlement, not a correction, and a refund's or
chargeback's ``MISSING_IN_SETTLEMENT`` is left to a person (the engine matches adjustments by
key within their day). Those need a person: ``payments mismatches resolve``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import (
    conditional_write,
    from_item,
    query_all,
    to_item,
    to_values,
    transient_as_store_unavailable,
)
from payments.kernel.errors import NotFound

OPEN, RESOLVED = "OPEN", "RESOLVED"
#: ``resolved_by`` of what reconciliation resolves by itself
RECONCILIATION = "reconciliation"
BY_DAY, DAYS_PK, UNDATED = "by_mismatch_day", "MISMATCH_DAYS", "undated"
#: how many of the latest days with mismatches a listing without ``day`` covers
RECENT_DAYS = 14
#: the fields of a stored mismatch that say how it stands (the HTML report's ``resolutions``)
STATUS_FIELDS = ("status", "resolved_by", "resolved_at", "resolution")
_REF = re.compile(r"^(?:(\d{4})(\d{2})(\d{2})|undated)-[0-9a-f]{12}$")


def mismatch_ref(source_key: str, sha256: str, mismatch_id: str, day: str | None) -> str:
    """The short id of a stored mismatch: its day (``YYYYMMDD`` or ``undated``) and 12 hex digits."""
    digest = hashlib.sha256(f"{source_key}\n{sha256[:16]}\n{mismatch_id}".encode()).hexdigest()[:12]
    return f"{day.replace('-', '') if day else UNDATED}-{digest}"


def day_of_ref(ref: str) -> str | None:
    """The settlement day a short id names (``undated`` for a run without one); None if it is no short id."""
    match = _REF.match(ref.strip().lower())
    if match is None:
        return None
    return "-".join(match.groups()) if match.group(1) else UNDATED


def run_pk(source_key: str) -> str:
    return f"RUN#{source_key}"


class ReconciliationStore:
    def __init__(self, table: str | None = None, client: Any = None):
        self.table = table or settings().reconciliation_table
        self.ddb = client or aws.client("dynamodb")

    def save_run(self, report: dict[str, Any], report_key: str) -> int:
        """Record a run and its mismatches; returns how many mismatch items were new."""
        source_key, digest = report["source_key"], report.get("sha256", "")
        day = report.get("summary", {}).get("window_day")
        created = 0
        for mismatch in report["mismatches"]:
            item = {
                "pk": run_pk(source_key),
                "sk": f"MISMATCH#{digest[:16]}#{mismatch['mismatch_id']}",
                "status": OPEN,
                "sha256": digest,
                "source_key": source_key,
                "mismatch_day": day or UNDATED,
                "mismatch_ref": mismatch_ref(source_key, digest, mismatch["mismatch_id"], day),
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
            # a bank file's run (payments.payouts.reconcile): what the payouts' book applied, already had, mismatched
            "counts": report.get("counts"),
        }
        if report["mismatches"]:
            with transient_as_store_unavailable():
                self.ddb.put_item(TableName=self.table, Item=to_item({"pk": DAYS_PK, "sk": day or UNDATED}))
        previous = self.summary(source_key)
        with transient_as_store_unavailable():
            self.ddb.put_item(TableName=self.table, Item=to_item(summary))
        self._close_earlier_runs(report, previous)
        return created

    def _close_earlier_runs(self, report: dict[str, Any], previous: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Resolve the open mismatches of an earlier run of this key that this run no longer has."""
        if previous is None or report.get("summary", {}).get("mismatches_omitted"):
            return []
        source_key, digest = report["source_key"], report.get("sha256", "")
        current = {f"MISMATCH#{digest[:16]}#{m['mismatch_id']}" for m in report["mismatches"]}
        resolved = []
        for item in query_all(
            self.ddb,
            TableName=self.table,
            ConsistentRead=True,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="#s = :open",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_values({":pk": run_pk(source_key), ":prefix": "MISMATCH#", ":open": OPEN}),
        ):
            if item["sk"] in current:
                continue
            why = (
                f"no longer found when {source_key} was reconciled again"
                if item.get("sha256") == digest
                else f"superseded: {source_key} was reconciled again with other contents"
            )
            if self.resolve_item(item["pk"], item["sk"], why, RECONCILIATION):
                resolved.append(item)
        return resolved

    def resolve_item(self, pk: str, sk: str, resolution: str, resolved_by: str) -> bool:
        """The one conditional write of a resolution: True if recorded now, False if the item was
        resolved before (the first resolution stands) or does not exist."""
        return conditional_write(
            self.ddb.update_item,
            TableName=self.table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
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
        )

    def item(self, pk: str, sk: str) -> dict[str, Any] | None:
        with transient_as_store_unavailable():
            found = self.ddb.get_item(
                TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            ).get("Item")
        return from_item(found)

    def day_mismatches(self, day: str, status: str | None = None) -> list[dict[str, Any]]:
        """Every stored mismatch of settlement day ``day`` across files (one Query of the index)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BY_DAY,
            "KeyConditionExpression": "mismatch_day = :day",
            "ExpressionAttributeValues": {":day": day},
        }
        if status is not None:
            request["FilterExpression"] = "#s = :status"
            request["ExpressionAttributeNames"] = {"#s": "status"}
            request["ExpressionAttributeValues"][":status"] = status
        request["ExpressionAttributeValues"] = to_values(request["ExpressionAttributeValues"])
        return list(query_all(self.ddb, **request))

    def recent_days(self, limit: int = RECENT_DAYS) -> list[str]:
        """The latest ``limit`` settlement days with mismatches, newest first (``undated`` last)."""
        with transient_as_store_unavailable():
            items = self.ddb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_values({":pk": DAYS_PK}),
                ScanIndexForward=False,
                Limit=limit + 1,  # "undated" sorts after every date
            ).get("Items", [])
        days = [item["sk"]["S"] for item in items]
        return [d for d in days if d != UNDATED][:limit] + [d for d in days if d == UNDATED]

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
    pk, sk = run_pk(source_key), f"MISMATCH#{summary['sha256'][:16]}#{mismatch_id}"
    if store.resolve_item(pk, sk, resolution, resolved_by):
        return True
    if store.item(pk, sk) is None:
        raise NotFound(f"no mismatch {mismatch_id} in the latest run of {source_key}")
    return False


# --- the work queue across files: by settlement day, by short id ------------------------------------
def _public(item: dict[str, Any]) -> dict[str, Any]:
    """A stored mismatch as the queue shows it: ``id`` (the short id) first, no table keys."""
    hidden = ("pk", "sk", "mismatch_ref", "mismatch_day")
    return {"id": item["mismatch_ref"], "day": item["mismatch_day"]} | {
        k: v for k, v in item.items() if k not in hidden
    }


def queue(
    day: str | None = None, open_only: bool = False, store: ReconciliationStore | None = None
) -> list[dict[str, Any]]:
    """The mismatches of settlement day ``day`` (default: the :data:`RECENT_DAYS` latest days that have
    any), across files, optionally only the open ones: newest day first, then by file and mismatch."""
    store = store or ReconciliationStore()
    days = [day] if day else store.recent_days()
    found = []
    for each in days:
        items = store.day_mismatches(each, OPEN if open_only else None)
        found += sorted(items, key=lambda i: (i.get("source_key", ""), i["sk"]))
    return [_public(item) for item in found]


def get(ref: str, store: ReconciliationStore | None = None) -> dict[str, Any] | None:
    """The mismatch whose short id is ``ref`` (as it stands now: a strongly consistent read), or None."""
    item = _find(ref, store or ReconciliationStore())
    return None if item is None else _public(item)


def _find(ref: str, store: ReconciliationStore) -> dict[str, Any] | None:
    day = day_of_ref(ref)
    if day is None:
        return None
    with transient_as_store_unavailable():
        items = store.ddb.query(
            TableName=store.table,
            IndexName=BY_DAY,
            KeyConditionExpression="mismatch_day = :day AND mismatch_ref = :ref",
            ExpressionAttributeValues=to_values({":day": day, ":ref": ref.strip().lower()}),
        ).get("Items", [])
    if not items:
        return None
    index_item = from_item(items[0])
    return store.item(index_item["pk"], index_item["sk"])  # the index lags: the table is the truth


def resolve(ref: str, note: str, who: str, store: ReconciliationStore | None = None) -> tuple[dict[str, Any], bool]:
    """Resolve the mismatch ``ref`` as ``who`` for the reason ``note``: (the mismatch as it is now,
    True) if this call resolved it, (..., False) if it was resolved before: the first resolution
    stands. NotFound if there is no such mismatch; ValueError for an empty note."""
    note = note.strip()
    if not note:
        raise ValueError("note: say why the mismatch is resolved (it is kept with who and when)")
    store = store or ReconciliationStore()
    item = _find(ref, store)
    if item is None:
        raise NotFound(f"no mismatch {ref!r}")
    done = store.resolve_item(item["pk"], item["sk"], note, who)
    now = store.item(item["pk"], item["sk"])  # mismatches are never deleted
    return _public(now or item), done


def resolutions(source_key: str, store: ReconciliationStore | None = None) -> dict[str, dict[str, str]]:
    """mismatch_id -> its status fields, for the latest run of ``source_key`` (the HTML report's)."""
    return {
        m["mismatch_id"]: {k: str(m[k]) for k in STATUS_FIELDS if m.get(k) is not None}
        for m in list_mismatches(source_key, store=store)
    }


def settle_late(
    source_key: str, settled: Iterable[dict[str, Any]], store: ReconciliationStore | None = None
) -> list[str]:
    """Resolve the open ``MISSING_IN_SETTLEMENT`` of each charge a later file settled (``settled``:
    the engine's ``Result.settled_late``); returns the source keys of the files whose mismatches
    were resolved (their HTML reports are to be written again)."""
    store = store or ReconciliationStore()
    by_day: dict[str, list[dict[str, Any]]] = {}
    for row in settled:
        by_day.setdefault(row["charge_day"], []).append(row)
    touched: list[str] = []
    for day, rows in by_day.items():
        missing: dict[str, list[dict[str, Any]]] = {}
        for item in store.day_mismatches(day, OPEN):
            if item.get("kind") == "MISSING_IN_SETTLEMENT" and not item.get("record_type"):
                missing.setdefault(item.get("psp_reference", ""), []).append(item)
        for row in rows:
            for item in missing.get(row["psp_reference"], []):
                if item.get("payment_order_id") != row["payment_order_id"] or item.get("source_key") == source_key:
                    continue
                why = f"settled by {source_key} line {row['line']}"
                if (
                    store.resolve_item(item["pk"], item["sk"], why, RECONCILIATION)
                    and item["source_key"] not in touched
                ):
                    touched.append(item["source_key"])
    return touched
