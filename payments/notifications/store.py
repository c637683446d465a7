"""Store each PSP notification item once, by the PSP's event identity (payments table).

Item layout: ``NOTIFICATION#<id>`` / ``NOTIFICATION`` with the raw item (JSON text, as received),
``event_code``, ``psp_reference``, ``merchant_reference``, ``received_at``, ``deliveries`` and,
once processed, ``outcome`` (APPLIED | DUPLICATE | ANOMALY | IGNORED), ``detail`` and
``processed_at``.

Adyen delivers at least once and in no guaranteed order; its items have no event id of their
own, so the identity is (eventCode, pspReference, originalReference, success), as FACTS.md
section 3 advises. The id is a hash of it. The first delivery stores the item
(``attribute_not_exists``); a redelivery only counts itself and changes nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import (
    conditional_write,
    from_item,
    get_item,
    scan_sort_key,
    to_item,
    to_values,
    transient_as_store_unavailable,
)
from payments.kernel.errors import NotFound

OUTCOMES = ("APPLIED", "DUPLICATE", "ANOMALY", "IGNORED")


def identity(item: dict[str, Any]) -> str:
    parts = [str(item.get(k) or "") for k in ("eventCode", "pspReference", "originalReference", "success")]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def _key(notification_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"NOTIFICATION#{notification_id}"}, "sk": {"S": "NOTIFICATION"}}


@dataclass(frozen=True)
class Stored:
    notification_id: str
    new: bool
    processed: bool  # already processed: nothing to enqueue


class NotificationStore:
    def __init__(self, table: str | None = None, client: Any = None):
        self.table = table or settings().payments_table
        self.ddb = client or aws.client("dynamodb")

    def store(self, item: dict[str, Any]) -> Stored:
        notification_id = identity(item)
        record = {
            "pk": f"NOTIFICATION#{notification_id}",
            "sk": "NOTIFICATION",
            "notification_id": notification_id,
            "raw": json.dumps(item, sort_keys=True, separators=(",", ":")),
            "event_code": str(item.get("eventCode") or ""),
            "psp_reference": str(item.get("pspReference") or ""),
            "merchant_reference": str(item.get("merchantReference") or ""),
            "received_at": clock.now_iso(),
            "deliveries": 1,
        }
        if conditional_write(
            self.ddb.put_item,
            TableName=self.table,
            Item=to_item(record),
            ConditionExpression="attribute_not_exists(pk)",
        ):
            return Stored(notification_id, new=True, processed=False)
        with transient_as_store_unavailable():  # a redelivery: count it, change nothing else
            response = self.ddb.update_item(
                TableName=self.table,
                Key=_key(notification_id),
                UpdateExpression="ADD deliveries :one",
                ExpressionAttributeValues=to_values({":one": 1}),
                ReturnValues="ALL_NEW",
            )
        existing = from_item(response["Attributes"]) or {}
        return Stored(notification_id, new=False, processed="outcome" in existing)

    def get(self, notification_id: str) -> dict[str, Any]:
        item = get_item(self.ddb, self.table, _key(notification_id))
        if item is None:
            raise NotFound(f"no notification {notification_id}")
        return item

    def mark(self, notification_id: str, outcome: str, detail: str) -> bool:
        """Record the outcome of its first processing; False if it had one already."""
        if outcome not in OUTCOMES:
            raise ValueError(f"not a notification outcome: {outcome!r} (one of {sorted(OUTCOMES)})")
        return conditional_write(
            self.ddb.update_item,
            TableName=self.table,
            Key=_key(notification_id),
            UpdateExpression="SET outcome = :outcome, detail = :detail, processed_at = :now",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(outcome)",
            ExpressionAttributeValues=to_values(
                {":outcome": outcome, ":detail": detail[:1000], ":now": clock.now_iso()}
            ),
        )

    def scan(self) -> list[dict[str, Any]]:
        return scan_sort_key(self.ddb, self.table, "NOTIFICATION")
