"""The local runtime's log of delivered events: one S3 object per delivery, append-only.

The local runtime (``payments serve``) publishes each event on its bus ``payments-local`` and keeps the
envelope it delivered as the object ``events/<YYYY-MM-DD>/<delivered at>-<n>-<id>.json`` of the bucket
:data:`LOG_BUCKET` (the day and time are the delivery's, UTC; ``n`` counts the runtime's deliveries), so that
the keys sort in delivery order and a repeated delivery of one id is another object: the log shows what a
consumer receives, duplicates included. ``payments events tail`` reads it through the runtime's AWS endpoint.
A deployed stage has no such log: its events are on the bus ``payments-<stage>`` and in its archive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

#: the local runtime's bucket of delivered events
LOG_BUCKET = "events-log"
LOG_PREFIX = "events/"


def log_key(delivered_at: datetime, n: int, event_id: str) -> str:
    """The key of the ``n``-th delivery of the runtime, at ``delivered_at`` (UTC)."""
    return f"{LOG_PREFIX}{delivered_at:%Y-%m-%d}/{delivered_at:%H%M%S%f}-{n:09d}-{event_id}.json"


def read(s3: Any, *, after: str = "", bucket: str = LOG_BUCKET) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, envelope)`` of every delivery after the key ``after``, in delivery order."""
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=LOG_PREFIX, **({"StartAfter": after} if after else {})
    )
    for page in pages:
        for entry in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            yield entry["Key"], json.loads(body)
