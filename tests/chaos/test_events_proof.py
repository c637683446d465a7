"""The events' invariant in the chaos harness: it holds when events come from the stream through a reader that
crashes mid-batch and loses its iterators, and it fails, naming what is missing or extra, when the events are
derived the wrong way (a type dropped, the stream reader off, an event for a change that never committed).

Each run is a few checkouts of its own run tag on the package's runtime (the check covers the run's items,
and only the events' verdict is asserted: the other invariants cover all stored data, which a test of
tests/chaos/test_chaos.py corrupts on purpose); the broken derivations are undone before the test ends.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from payments.events.envelope import CloudEvent, EventType
from payments.kernel import aws, clock
from payments.kernel.config import settings
from payments.kernel.dynamo import get_item
from payments.payin import repository
from payments.payin.status import AttentionKind
from payments_dev import event_invariants
from payments_dev.chaos import harness
from payments_dev.chaos import reader_faults as rf
from payments_dev.chaos.schedule import PROFILES
from payments_dev.local import events as local_events
from payments_dev.local.runtime import LocalRuntime

SEED = 7
QUIET = lambda line: None  # noqa: E731
NO_FAULTS = PROFILES["none"]


def small_run(runtime: LocalRuntime, checkouts: int = 4, **options: Any) -> harness.ChaosResult:
    config = harness.ChaosConfig(
        checkouts=checkouts,
        seed=SEED,
        profile=options.pop("profile", NO_FAULTS),
        time_scale=0.1,
        run_tag="e" + uuid.uuid4().hex[:6],
        reconcile=False,
        settle_timeout=120,
        **options,
    )
    return harness.run(runtime.api_url, config, out=QUIET)


def events_violations(result: harness.ChaosResult) -> list[str]:
    return [v for v in result.violations if v.startswith("[events")]


def succeeded_orders(result: harness.ChaosResult) -> int:
    return result.orders_by_status.get("SUCCESS", 0)


@pytest.fixture()
def reader(runtime: LocalRuntime) -> Iterator[local_events.LocalEvents]:
    assert runtime.events is not None
    yield runtime.events
    runtime.events.flush()  # whatever the test broke is undone: the streams are read to their end again


def test_events_hold_under_reader_crashes_and_lost_iterators(runtime: LocalRuntime) -> None:
    # Given a run whose events reader crashes on half the stream records before delivering them, and on half
    # of those with events after delivering them, and loses its iterators after every record
    result = small_run(runtime, checkouts=6, reader_fault_rate=0.5)
    # Then the faults were injected, redeliveries happened and were counted, and the invariant holds
    assert result.faults[rf.CRASH_AFTER] > 0 and result.faults[rf.CRASH_BEFORE] > 0, result.faults
    assert result.faults[rf.ITERATOR_LOST] > 0, result.faults
    events = result.events
    assert events is not None
    assert events.duplicates >= result.faults[rf.CRASH_AFTER] > 0
    assert not events_violations(result), events_violations(result)
    # and every final order and checkout of the run was one change, heard under one id
    assert events.changes >= result.orders + result.checkouts
    assert events.events >= events.changes


def test_a_dropped_type_fails_naming_what_is_missing(
    runtime: LocalRuntime, reader: local_events.LocalEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a derivation that loses every payment_order.succeeded (changes.py with a type dropped)
    real = local_events.changes_of

    def dropping(record: dict[str, Any], **kwargs: Any) -> list[CloudEvent]:
        return [e for e in real(record, **kwargs) if e.type is not EventType.PAYMENT_ORDER_SUCCEEDED]

    monkeypatch.setattr(local_events, "changes_of", dropping)
    # When a small run goes through
    result = small_run(runtime)
    # Then the events' invariant fails, naming each succeeded order's change as missing, and nothing else
    assert result.events is not None and not result.events.ok
    assert succeeded_orders(result) > 0
    assert dict(result.events.missing) == {"payments.payment_order.succeeded": succeeded_orders(result)}
    found = events_violations(result)
    assert len(found) == succeeded_orders(result), found
    assert all("committed payments.payment_order.succeeded change(s) without an event" in v for v in found), found


def test_the_stream_reader_off_fails_with_every_change_missing(
    runtime: LocalRuntime, reader: local_events.LocalEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the events reader turned off (nothing reads the streams: no outbox, no pipe)
    monkeypatch.setattr(reader, "flush", lambda: None)
    # When a small run goes through
    result = small_run(runtime)
    # Then every committed change of the run is reported missing
    events = result.events
    assert events is not None and not events.ok
    assert events.changes > 0
    assert sum(events.missing.values()) == events.changes
    assert {"payments.payment_order.succeeded", "payments.payment.succeeded"} <= set(events.missing)


def test_an_event_for_a_change_that_never_committed_fails_as_extra(
    runtime: LocalRuntime, reader: local_events.LocalEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a publisher that also announces a failure for every order that succeeded (an event sent for a
    # change that was not the one committed, as one sent before a write that then lost its condition)
    real = local_events.changes_of

    def inventing(record: dict[str, Any], **kwargs: Any) -> list[CloudEvent]:
        found = real(record, **kwargs)
        invented = [
            CloudEvent.of(
                stage="local",
                type_=EventType.PAYMENT_ORDER_FAILED,
                subject=e.subject,
                sequence=e.sequence[:-2] + "99",
                time=e.time,
                data=e.data,
            )
            for e in found
            if e.type is EventType.PAYMENT_ORDER_SUCCEEDED
        ]
        return found + invented

    monkeypatch.setattr(local_events, "changes_of", inventing)
    # When a small run goes through
    result = small_run(runtime)
    # Then each invented event is extra, named by its subject and type, and nothing is missing
    events = result.events
    assert events is not None and not events.ok
    assert not events.missing
    assert dict(events.extra) == {"payments.payment_order.failed": succeeded_orders(result)}
    assert all("holds no such change" in v for v in events_violations(result)), events_violations(result)


def test_without_faults_the_run_is_clean_and_counts_no_duplicate(runtime: LocalRuntime) -> None:
    result = small_run(runtime, profile=dataclasses.replace(NO_FAULTS), reader_fault_rate=0.0)
    assert result.events is not None
    assert not events_violations(result), events_violations(result)
    assert result.events.duplicates == 0
    assert result.events.changes == result.events.events > 0


def test_a_shared_sequence_an_invalid_event_and_a_changed_redelivery_are_named(runtime: LocalRuntime) -> None:
    # Given a clean small run, and its events as delivered
    result = small_run(runtime, reader_fault_rate=0.0)
    assert not events_violations(result), events_violations(result)
    prefix = f"cm{SEED}{result.config.run_tag}"
    scope = event_invariants.of_run(prefix)
    delivered = [e for e in event_invariants.heard() if str(e["subject"]).startswith(prefix)]
    assert event_invariants.check_events(in_scope=scope, deliveries=delivered).ok
    order = next(e for e in delivered if e["type"] == "payments.payment_order.succeeded")
    # When one more delivery carries a field its schema does not have
    invalid = {**order, "data": {**order["data"], "card_number": "4111111111111111"}}
    # and another event of the same order takes its sequence (another type: another id)
    shared = {**order, "type": "payments.payment_order.failed", "id": str(uuid.uuid4())}
    # and a redelivery of an id carries another sequence
    changed = {**order, "sequence": order["sequence"][:-2] + "07"}
    report = event_invariants.check_events(in_scope=scope, deliveries=[*delivered, invalid, shared, changed])
    # Then each is named
    text = "\n".join(report.violations)
    assert "(d) invalid event of type payments.payment_order.succeeded: data.card_number" in text, text
    assert f"(c) {order['subject']}: 1 sequence(s) shared by two ids" in text, text
    assert f"(a) the deliveries of id {order['id']} differ" in text, text
    assert report.duplicates == 2


def test_a_raise_that_read_its_clock_first_and_committed_last_is_an_earlier_flag_not_an_extra(
    runtime: LocalRuntime, reader: local_events.LocalEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a clean small run, and one of its orders
    result = small_run(runtime, reader_fault_rate=0.0)
    assert not events_violations(result), events_violations(result)
    prefix = f"cm{SEED}{result.config.run_tag}"
    scope = event_invariants.of_run(prefix)
    order = next(
        e
        for e in event_invariants.heard()
        if e["type"] == "payments.payment_order.succeeded" and str(e["subject"]).startswith(prefix)
    )["subject"]
    key = {"pk": {"S": f"ORDER#{order}"}, "sk": {"S": "ORDER"}}
    ddb, table = aws.client("dynamodb"), settings().payments_table
    # When two parkers race: the one whose clock reads later commits first, the other commits last
    later, earlier = "2099-01-01T00:00:02.000Z", "2099-01-01T00:00:01.000Z"
    for moment in (later, earlier):
        monkeypatch.setattr(clock, "now_iso", lambda moment=moment: moment)
        assert repository.set_attention(ddb, table, key, f"parked at {moment}", AttentionKind.REDRIVE)
    monkeypatch.undo()
    reader.flush()
    # Then the item keeps the earlier time, and the raise of the later time is an earlier flag, not an extra
    assert get_item(ddb, table, key)["attention_flagged_at"] == earlier
    report = event_invariants.check_events(in_scope=scope)
    assert report.ok, report.violations
    assert report.attention_not_kept == 1
    # and a raise heard after the last one committed, with a time the item never kept, is still an extra
    raised = [e for e in event_invariants.heard() if e["subject"] == order and e["type"].endswith("raised")]
    last = max(raised, key=lambda e: e["sequence"])
    phantom = {
        **last,
        "id": str(uuid.uuid4()),
        "sequence": last["sequence"][:-2] + "99",
        "data": {**last["data"], "flagged_at": "2099-01-01T00:00:03.000Z"},
    }
    report = event_invariants.check_events(in_scope=scope, deliveries=[*event_invariants.heard(), phantom])
    assert [v for v in report.violations if "a flag the item never had" in v] == [
        f"(b) {order}: 1 payments.attention.raised event(s) of 2099-01-01T00:00:03.000Z, a flag the item never had"
    ], report.violations


def test_runs_of_one_file_are_one_change_each_result_and_one_result_under_two_ids_is_named(
    runtime: LocalRuntime, reader: local_events.LocalEvents
) -> None:
    from payments.reconciliation.store import ReconciliationStore, run_pk

    # Given a bank file reconciled three times: applied, then sent again (all applied already: the resource as it
    # was), then a run whose result differs (the ledger caught up)
    key = f"incoming/bank/pain002/ST{uuid.uuid4().hex[:20]}.xml"
    base: dict[str, Any] = {
        "source_key": key,
        "sha256": "cd" * 32,
        "format": "pain.002",
        "rows": 3,
        "matched": 2,
        "mismatches": [],
        "rejected_rows": [],
        "clean": False,
        "summary": {"window_day": "2026-12-07"},
    }
    store = ReconciliationStore()
    store.save_run({**base, "counts": {"applied": 2, "already": 0}}, f"reports/{key}.json")
    store.save_run({**base, "counts": {"applied": 0, "already": 2}}, f"reports/{key}.json")
    store.save_run({**base, "matched": 3, "clean": True, "counts": {"applied": 1, "already": 2}}, f"reports/{key}.json")
    reader.flush()
    scope = lambda item: item.get("pk") == run_pk(key)  # noqa: E731
    # Then two events were heard, the check holds, and the first run's is superseded by the last
    heard = [e for e in event_invariants.heard() if e["subject"] == key]
    assert [e["data"]["matched"] for e in sorted(heard, key=lambda e: e["sequence"])] == [2, 3]
    report = event_invariants.check_events(in_scope=scope)
    assert report.ok, report.violations
    assert report.superseded == 1
    # And the last result heard again under another id is one change published twice
    last = max(heard, key=lambda e: e["sequence"])
    twice = {**last, "id": str(uuid.uuid4()), "sequence": last["sequence"][:-2] + "01"}
    report = event_invariants.check_events(in_scope=scope, deliveries=[*event_invariants.heard(), twice])
    assert [v for v in report.violations if "published under" in v] == [
        f"(a) {key}: 1 committed payments.reconciliation.completed change(s) published under 2 ids"
    ], report.violations
