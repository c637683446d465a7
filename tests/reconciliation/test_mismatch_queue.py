"""Mismatches as a work queue: listed by settlement day across files, found by a short id, resolved
exactly once with who/when/why, and resolved by reconciliation itself when a later file settles them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from functions.psp.handler import handler as settle_handler
from payments.kernel.errors import NotFound
from payments.reconciliation import report as report_module
from payments.reconciliation import store
from tests.reconciliation.conftest import DAY, Aws, Context
from tests.reconciliation.test_settlement_files import ORDERS, reconcile, seed_day, tamper

NEXT_DAY = "2026-12-01"
KEY = f"incoming/simulated-psp/{DAY}.csv"
NEXT_KEY = f"incoming/simulated-psp/{NEXT_DAY}.csv"
LATE = "psp_00000000000000a7"  # charged at 23:50: the PSP settles it the next day
SHORT_ID = re.compile(r"^\d{8}-[0-9a-f]{12}$")


def settle(cloud: Aws, day: str) -> bytes:
    key = settle_handler({"date": day}, Context())["key"]
    return cloud.get(key)


def without(file: bytes, reference: str) -> tuple[bytes, bytes]:
    """The file without the row of ``reference``, and that row."""
    lines = file.decode().splitlines(keepends=True)
    row = next(line for line in lines if f",{reference}," in line)
    return "".join(line for line in lines if line is not row).encode(), row.encode()


def with_row_first(file: bytes, row: bytes) -> bytes:
    """The file with ``row`` as its first data row (line 2)."""
    header, _, rest = file.partition(b"\n")
    return header + b"\n" + row + rest


def late_charge_missing(cloud: Aws) -> dict[str, Any]:
    """Day DAY reconciled without its late charge; returns that MISSING_IN_SETTLEMENT in the queue."""
    seed_day(cloud)
    day_file, _ = without(settle(cloud, DAY), LATE)
    cloud.put(KEY, day_file)
    reconcile(cloud, KEY)
    missing = [m for m in store.queue(DAY, open_only=True) if m["psp_reference"] == LATE]
    assert len(missing) == 1 and missing[0]["kind"] == "MISSING_IN_SETTLEMENT"
    return missing[0]


def test_a_charge_a_later_file_settles_is_resolved_by_reconciliation_saying_so(
    cloud: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given day DAY reconciled without its 23:50 charge: a MISSING_IN_SETTLEMENT in the queue
    missing = late_charge_missing(cloud)
    assert SHORT_ID.match(missing["id"]) and missing["id"].startswith(DAY.replace("-", ""))
    assert missing["source_key"] == KEY and missing["status"] == "OPEN"
    late_row = without(settle(cloud, DAY), LATE)[1]
    # When the next day's file holds that charge (its line 2) and is reconciled
    cloud.book("psp_00000000000000b1", "po_b1", "seller_books", 700, "USD", f"{NEXT_DAY}T09:00:00.000Z")
    cloud.put(NEXT_KEY, with_row_first(settle(cloud, NEXT_DAY), late_row))
    rendered: list[tuple[str, Any]] = []
    real = report_module.to_html
    monkeypatch.setattr(
        report_module,
        "to_html",
        lambda report, resolutions=None: rendered.append((report["source_key"], resolutions)) or real(report),
    )
    second = reconcile(cloud, NEXT_KEY)
    # Then that file matched it, and the earlier day's mismatch is resolved by reconciliation, saying by what
    assert second["mismatches"] == [] and second["matched"] == 2
    now = store.get(missing["id"])
    assert now is not None
    assert now["status"] == "RESOLVED" and now["resolved_by"] == "reconciliation"
    assert now["resolution"] == f"settled by {NEXT_KEY} line 2" and now["resolved_at"]
    assert [m["id"] for m in store.queue(DAY, open_only=True) if m["psp_reference"] == LATE] == []
    # And the earlier file's HTML report was written again with that status
    refreshed = [resolutions for key, resolutions in rendered if key == KEY]
    assert refreshed and refreshed[-1][missing["mismatch_id"]]["resolved_by"] == "reconciliation"
    # And a person cannot resolve it afterwards: the first resolution stands
    after, done = store.resolve(missing["id"], "found it myself", "arn:aws:iam::1:user/ops")
    assert done is False and after["resolved_by"] == "reconciliation"


def test_a_later_file_that_settles_another_amount_resolves_nothing(cloud: Aws) -> None:
    # Given the late charge missing from its day
    missing = late_charge_missing(cloud)
    late_row = without(settle(cloud, DAY), LATE)[1]
    # When the next day's file holds it with another amount (25.00 -> 24.00)
    cloud.book("psp_00000000000000b1", "po_b1", "seller_books", 700, "USD", f"{NEXT_DAY}T09:00:00.000Z")
    changed = late_row.replace(b",25.00,", b",24.00,")
    assert changed != late_row
    cloud.put(NEXT_KEY, with_row_first(settle(cloud, NEXT_DAY), changed))
    second = reconcile(cloud, NEXT_KEY)
    # Then that is the next file's AMOUNT_MISMATCH, and the day's MISSING_IN_SETTLEMENT stays open
    assert [m["kind"] for m in second["mismatches"]] == ["AMOUNT_MISMATCH"]
    now = store.get(missing["id"])
    assert now is not None and now["status"] == "OPEN"


def test_the_queue_lists_a_day_across_files_and_a_resolution_is_recorded_once(cloud: Aws) -> None:
    # Given a tampered copy of the day's file reconciled beside the day's own (late charge missing)
    missing = late_charge_missing(cloud)
    tampered, _ = tamper(settle(cloud, DAY))
    cloud.put("incoming/adyen/tampered.csv", tampered)
    report = reconcile(cloud, "incoming/adyen/tampered.csv")
    # Then the day lists every mismatch of both files, each with a short id of its own
    listed = store.queue(DAY)
    assert len(listed) == len(report["mismatches"]) + 1
    assert {m["source_key"] for m in listed} == {KEY, "incoming/adyen/tampered.csv"}
    assert len({m["id"] for m in listed}) == len(listed) and all(SHORT_ID.match(m["id"]) for m in listed)
    assert store.queue(DAY, open_only=True) == listed
    assert store.queue("2026-11-29") == []
    # When a person resolves one
    target = next(m for m in listed if m["source_key"] == "incoming/adyen/tampered.csv")
    resolved, done = store.resolve(target["id"].upper(), "  booked a correction  ", "arn:aws:iam::1:user/ops")
    # Then who, when and why are recorded, and it leaves the open queue
    assert done is True and resolved["id"] == target["id"]
    assert resolved["status"] == "RESOLVED" and resolved["resolved_by"] == "arn:aws:iam::1:user/ops"
    assert resolved["resolution"] == "booked a correction" and resolved["resolved_at"]
    assert target["id"] not in {m["id"] for m in store.queue(DAY, open_only=True)}
    assert len(store.queue(DAY, open_only=True)) == len(listed) - 1
    # And a second resolution changes nothing: the first stands
    again, done = store.resolve(target["id"], "something else", "someone")
    assert done is False and again["resolution"] == "booked a correction" and again["resolved_by"].endswith("ops")
    # And an unknown id, or an empty note, is refused with nothing written
    for unknown in ("20261130-000000000000", "nonsense", "po_a1"):
        assert store.get(unknown) is None
        with pytest.raises(NotFound):
            store.resolve(unknown, "x", "someone")
    with pytest.raises(ValueError, match="note"):
        store.resolve(missing["id"], "   ", "someone")
    assert store.get(missing["id"])["status"] == "OPEN"  # type: ignore[index]


def test_without_a_day_the_queue_lists_the_recent_days_newest_first(cloud: Aws) -> None:
    # Given mismatches on two days (the late charge missing on DAY, an unknown row on NEXT_DAY)
    late_charge_missing(cloud)
    cloud.book("psp_00000000000000b1", "po_b1", "seller_books", 700, "USD", f"{NEXT_DAY}T09:00:00.000Z")
    next_file, row = without(settle(cloud, NEXT_DAY), "psp_00000000000000b1")
    unknown = row.replace(b"psp_00000000000000b1", b"psp_00000000000000c9").replace(b"po_b1", b"po_c9")
    cloud.put(NEXT_KEY, with_row_first(next_file, unknown))
    reconcile(cloud, NEXT_KEY)
    # Then the default listing holds both days, the latest first
    days = [m["day"] for m in store.queue()]
    assert days[0] == NEXT_DAY and DAY in days and days == sorted(days, reverse=True)


def test_a_file_reconciled_again_resolves_what_it_no_longer_has(cloud: Aws) -> None:
    # Given a file with a row our ledger does not know (MISSING_IN_LEDGER)
    seed_day(cloud)
    day_file = settle(cloud, DAY)
    reference, order = ORDERS[1][0], ORDERS[1][1]
    unknown = day_file.replace(reference.encode(), b"psp_00000000000000c9").replace(f",{order},".encode(), b",po_c9,")
    cloud.put(KEY, unknown)
    first = reconcile(cloud, KEY)
    ids = {m["psp_reference"]: m["id"] for m in store.queue(DAY)}
    assert "psp_00000000000000c9" in ids and len(first["mismatches"]) == len(ids)
    # When the ledger catches up (the order is booked) and the same file is reconciled again
    cloud.book("psp_00000000000000c9", "po_c9", "seller_toys", 500, "USD", f"{DAY}T09:00:01.000Z")
    cloud.put(KEY, unknown)
    reconcile(cloud, KEY)
    # Then the mismatch it no longer finds is resolved by reconciliation, saying so
    now = store.get(ids["psp_00000000000000c9"])
    assert now is not None and now["status"] == "RESOLVED" and now["resolved_by"] == "reconciliation"
    assert now["resolution"] == f"no longer found when {KEY} was reconciled again"
    # When the file under that key changes (the PSP's corrected file) and is reconciled
    cloud.put(KEY, day_file)
    assert reconcile(cloud, KEY)["mismatches"] != []
    # Then the earlier contents' open mismatches are superseded, and the queue holds only the new run's open ones
    open_now = store.queue(DAY, open_only=True)
    assert all(m["sha256"] == open_now[0]["sha256"] for m in open_now)
    assert open_now and all(m["psp_reference"] == "psp_00000000000000c9" for m in open_now)
    superseded = [m for m in store.queue(DAY) if m.get("resolution", "").startswith("superseded")]
    assert superseded and all(m["resolved_by"] == "reconciliation" for m in superseded)
