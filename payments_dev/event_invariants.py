"""The events' invariant: every committed state change was heard under exactly one event id, and nothing else was.

The two sides are read independently:

* **the changes that must have been heard**, from the committed state in the tables (never from the stream,
  never through :mod:`payments.events.changes`): the final status of every checkout; every status an order
  reached (its ``status_history``); a refund decided (SUCCEEDED / FAILED) and returned by the scheme; every
  booked dispute step (``amount_minor``, ``reversed_minor``, ``second_minor``); every status in a payout's
  ``history``; every reconciliation summary; the attention flags an order or a refund keeps (the flag open or
  last closed on the item, and every flag a person closed, in its ``attention_log``);
* **the events heard**, from the local runtime's append-only log of deliveries (:mod:`payments.events.log`),
  after the events reader was flushed, so that the log holds what the streams hold.

It checks:

(a) every committed change has exactly one event id (its deliveries may repeat: they are counted, as
    ``duplicates``); a change without an id is *missing*, a change under two ids is *published twice*;
(b) no event id without a committed change: an event whose resource is not in the tables, or does not hold
    the state the event says it reached (a change that was rolled back or never made) is *extra*;
(c) per subject, no two ids share a ``sequence``, and the sequences follow the order the item itself keeps
    of its changes (an order's ``status_history``, a payout's ``history``; a flag closed only after one was
    raised);
(d) every delivery validates against its type's schema (:func:`payments_dev.events_schemas.validate_event`),
    and every delivery of one id carries the same envelope but for ``data`` (a checkout's orders are read
    again when its record is delivered again).

What the tables cannot tell: an order or a refund keeps its *last* flag and the flags a person closed, not
the flags a re-run raised and closed before; an attention event of such an earlier flag is accepted when the
item was flagged at least as late (its times are not after the item's last flag), or when another event of
the same kind follows it in sequence order (a raise that read its clock first and committed last leaves the
item with the earlier time), and counted as ``attention_not_kept``. So a raise that never committed but was
followed by one that did is not caught here. A summary rewritten by a later run of another file under the same key keeps the last
run: the earlier runs' events are accepted when their ``sequence`` is below the last one's (``superseded``), and
so are those of earlier runs of the same file whose result differs from the last one's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from payments.events import log
from payments.events.envelope import EventType
from payments.kernel import aws
from payments.kernel.config import settings
from payments.kernel.dynamo import from_item

#: an event's identity in the check: (subject, type)
Key = tuple[str, str]

_FINAL_ORDER = {"SUCCESS": EventType.PAYMENT_ORDER_SUCCEEDED, "FAILED": EventType.PAYMENT_ORDER_FAILED}
_FINAL_PAYMENT = {
    "SUCCEEDED": EventType.PAYMENT_SUCCEEDED,
    "PARTIALLY_FAILED": EventType.PAYMENT_PARTIALLY_FAILED,
    "FAILED": EventType.PAYMENT_FAILED,
}
_FINAL_REFUND = {"SUCCEEDED": EventType.REFUND_SUCCEEDED, "FAILED": EventType.REFUND_FAILED}
_PAYOUT = {
    "SUBMITTED": EventType.PAYOUT_SUBMITTED,
    "PAID": EventType.PAYOUT_PAID,
    "FAILED": EventType.PAYOUT_FAILED,
    "RETURNED": EventType.PAYOUT_RETURNED,
}
_DISPUTE = (
    ("amount_minor", EventType.DISPUTE_CHARGEBACK),
    ("reversed_minor", EventType.DISPUTE_REVERSED),
    ("second_minor", EventType.DISPUTE_SECOND_CHARGEBACK),
)


@dataclass
class EventsReport:
    """The figures of one check and what it found wrong (each violation names the subject and the type)."""

    changes: int = 0
    events: int = 0
    deliveries: int = 0
    duplicates: int = 0
    checks: int = 0
    attention_not_kept: int = 0
    superseded: int = 0
    missing: Counter[str] = field(default_factory=Counter)
    extra: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def figures(self) -> str:
        return (
            f"{self.changes} changes, {self.events} event ids, {self.deliveries} deliveries "
            f"({self.duplicates} duplicates delivered), {len(self.violations)} violations"
        )

    def fail(self, what: str) -> None:
        self.violations.append(what)


@dataclass
class _Expected:
    """What the tables say one subject went through."""

    #: (type, how many changes of it), in the item's own order where it keeps one
    counts: Counter[str] = field(default_factory=Counter)
    #: the type order the item keeps (order status history, payout history), for (c)
    ordered: list[str] = field(default_factory=list)
    #: attention: the flag times known to the item (raised: flagged_at; resolved: resolved_at)
    raised: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)
    last_flagged: str = ""
    last_resolved: str = ""
    flagged_ever: bool = False
    #: reconciliation: the sha256 of the run the summary holds
    summary_sha: str | None = None
    #: the caller checks this subject's changes (else its events are neither counted nor extra)
    in_scope: bool = True


def _scan(table: str) -> Iterable[dict[str, Any]]:
    ddb = aws.client("dynamodb")
    for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for raw in page.get("Items", []):
            yield from_item(raw)


def _transitions(history: list[Any], wanted: dict[str, EventType]) -> list[str]:
    """The types of the entries of ``history`` that reached a wanted status from another one."""
    found, before = [], None
    for entry in history:
        status = str(entry.get("status"))
        if status in wanted and status != before:
            found.append(wanted[status].value)
        before = status
    return found


def _attention(item: dict[str, Any], expected: _Expected) -> None:
    flagged = item.get("attention_flagged_at")
    if not flagged and not item.get("attention_log"):
        return
    expected.flagged_ever = True
    if flagged:
        expected.raised.add(str(flagged))
        expected.last_flagged = str(flagged)
    if not item.get("needs_attention") and item.get("attention_resolved_at"):
        expected.resolved.add(str(item["attention_resolved_at"]))
        expected.last_resolved = str(item["attention_resolved_at"])
    for entry in item.get("attention_log") or []:
        if entry.get("flagged_at"):
            expected.raised.add(str(entry["flagged_at"]))
        if entry.get("resolved_at"):
            expected.resolved.add(str(entry["resolved_at"]))
    expected.last_resolved = max([expected.last_resolved, *expected.resolved])


def _payment(item: dict[str, Any], e: _Expected) -> None:
    if item.get("status") in _FINAL_PAYMENT:
        e.counts[_FINAL_PAYMENT[str(item["status"])].value] += 1


def _payment_order(item: dict[str, Any], e: _Expected) -> None:
    e.ordered = _transitions(item.get("status_history") or [], _FINAL_ORDER)
    e.counts.update(e.ordered)
    _attention(item, e)


def _refund(item: dict[str, Any], e: _Expected) -> None:
    if item.get("status") in _FINAL_REFUND:
        e.counts[_FINAL_REFUND[str(item["status"])].value] += 1
    if item.get("returned_reference"):
        e.counts[EventType.REFUND_RETURNED.value] += 1
    _attention(item, e)


def _dispute(item: dict[str, Any], e: _Expected) -> None:
    for attribute, type_ in _DISPUTE:
        if item.get(attribute) is not None:
            e.counts[type_.value] += 1


def _payout(item: dict[str, Any], e: _Expected) -> None:
    e.ordered = _transitions(item.get("history") or [], _PAYOUT)
    e.counts.update(e.ordered)


def _summary(item: dict[str, Any], e: _Expected) -> None:
    e.counts[EventType.RECONCILIATION_COMPLETED.value] += 1
    e.summary_sha = str(item.get("sha256") or "")


#: the items that hold resources: (pk prefix, sk) -> (the subject's attribute, or None: the pk after its
#: prefix; what the item says was committed)
_KINDS: dict[tuple[str, str], tuple[str | None, Callable[[dict[str, Any], _Expected], None]]] = {
    ("CHECKOUT#", "PAYMENT"): ("checkout_id", _payment),
    ("ORDER#", "ORDER"): ("payment_order_id", _payment_order),
    ("REFUND#", "REFUND"): ("refund_id", _refund),
    ("CHARGEBACK#", "CHARGEBACK"): ("dispute_reference", _dispute),
    ("PAYOUT#", "PAYOUT"): ("payout_id", _payout),
    ("RUN#", "SUMMARY"): (None, _summary),
}


def committed_changes(in_scope: Callable[[dict[str, Any]], bool]) -> dict[str, _Expected]:
    """Per subject, the changes the tables show committed (a subject whose item ``in_scope`` leaves out is
    known, with nothing checked of it: its events are neither counted nor extra)."""
    s = settings()
    found: dict[str, _Expected] = {}
    for table in (s.payments_table, s.payouts_table, s.reconciliation_table):
        for item in _scan(table):
            pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
            prefix = pk.split("#", 1)[0] + "#"
            kind = _KINDS.get((prefix, sk))
            if kind is None:
                continue
            attribute, read = kind
            subject = str(item[attribute]) if attribute else pk.removeprefix(prefix)
            expected = found.setdefault(subject, _Expected())
            expected.in_scope = in_scope(item)
            if expected.in_scope:
                read(item, expected)
    return found


def heard(s3: Any | None = None) -> list[dict[str, Any]]:
    """Every delivery in the local runtime's events' log, in delivery order."""
    return [envelope for _, envelope in log.read(s3 or aws.client("s3"))]


def check_events(
    *,
    flush: Callable[[], object] | None = None,
    in_scope: Callable[[dict[str, Any]], bool] = lambda item: True,
    deliveries: list[dict[str, Any]] | None = None,
) -> EventsReport:
    """Check (a)-(d) over the committed state and the events' log. ``flush``: the events reader's, called
    first (the log must hold what the streams hold); ``in_scope``: the items whose changes are checked;
    ``deliveries``: the envelopes heard, instead of the runtime's log."""
    from payments_dev.events_schemas import InvalidEvent, validate_event

    if flush is not None:
        flush()
    report = EventsReport()
    expected = committed_changes(in_scope)
    envelopes = [
        envelope
        for envelope in (heard() if deliveries is None else deliveries)
        if str(envelope.get("subject")) not in expected or expected[str(envelope.get("subject"))].in_scope
    ]
    report.deliveries = len(envelopes)
    first: dict[str, dict[str, Any]] = {}
    for envelope in envelopes:
        report.checks += 1
        try:
            validate_event(envelope)
        except InvalidEvent as err:
            report.fail(f"(d) {err}")
        event_id = str(envelope.get("id"))
        seen = first.setdefault(event_id, envelope)
        if seen is not envelope:
            report.duplicates += 1
            if {k: v for k, v in seen.items() if k != "data"} != {k: v for k, v in envelope.items() if k != "data"}:
                report.fail(f"(a) the deliveries of id {event_id} differ ({seen.get('type')} {seen.get('subject')})")
    report.events = len(first)
    by_key: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    by_subject: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for envelope in first.values():
        by_key[(str(envelope.get("subject")), str(envelope.get("type")))].append(envelope)
        by_subject[str(envelope.get("subject"))].append(envelope)
    report.changes = sum(
        sum(e.counts.values()) + len(e.raised) + len(e.resolved) for e in expected.values() if e.in_scope
    )
    _match(expected, by_key, report)
    _check_order(expected, by_subject, report)
    return report


def _match(expected: dict[str, _Expected], by_key: dict[Key, list[dict[str, Any]]], report: EventsReport) -> None:
    keys = set(by_key) | {(subject, type_) for subject, e in expected.items() for type_ in e.counts}
    keys |= {(subject, EventType.ATTENTION_RAISED.value) for subject, e in expected.items() if e.raised}
    keys |= {(subject, EventType.ATTENTION_RESOLVED.value) for subject, e in expected.items() if e.resolved}
    for subject, type_ in sorted(keys):
        events = by_key.get((subject, type_), [])
        e = expected.get(subject)
        if e is None:
            report.checks += 1
            report.extra[type_] += len(events)
            report.fail(f"(b) {len(events)} {type_} event(s) of {subject}: no such resource in the tables")
            continue
        if not e.in_scope:
            continue
        if type_ in (EventType.ATTENTION_RAISED.value, EventType.ATTENTION_RESOLVED.value):
            _match_attention(subject, type_, e, events, report)
            continue
        if type_ == EventType.RECONCILIATION_COMPLETED.value and e.summary_sha is not None:
            events = _summary_runs(subject, e.summary_sha, events, report)
        report.checks += 1
        _compare(subject, type_, e.counts[type_], len(events), report)


def _compare(subject: str, type_: str, want: int, got: int, report: EventsReport) -> None:
    if got < want:
        report.missing[type_] += want - got
        report.fail(f"(a) {subject}: {want - got} committed {type_} change(s) without an event")
    elif got > want and want == 0:
        report.extra[type_] += got
        report.fail(f"(b) {subject}: {got} {type_} event(s) but the resource holds no such change")
    elif got > want:
        report.extra[type_] += got - want
        report.fail(f"(a) {subject}: {want} committed {type_} change(s) published under {got} ids")


def _summary_runs(subject: str, sha: str, events: list[dict[str, Any]], report: EventsReport) -> list[dict[str, Any]]:
    """The events of the run the summary holds; earlier runs' events (another sha256, a lower sequence) are
    superseded; a later one is extra. Runs of the same file (the same sha256) whose results differ (the ledger
    caught up between them) are each a change: the last one is the summary's, the earlier ones superseded. Two
    events of one result under two ids stay, for :func:`_compare` to name."""
    current = sorted(
        (e for e in events if (e.get("data") or {}).get("sha256") == sha), key=lambda e: str(e.get("sequence"))
    )
    if not current:
        return current
    last = str(current[-1].get("sequence"))
    final = current[-1].get("data")
    for earlier in current[:-1]:
        if earlier.get("data") != final:
            report.checks += 1
            report.superseded += 1
    current = [e for e in current if e.get("data") == final]
    for other in (e for e in events if (e.get("data") or {}).get("sha256") != sha):
        report.checks += 1
        if str(other.get("sequence")) < last:
            report.superseded += 1
        else:
            report.extra[EventType.RECONCILIATION_COMPLETED.value] += 1
            report.fail(f"(b) {subject}: a reconciliation.completed of a run after the one the summary holds")
    return current


def _match_attention(
    subject: str, type_: str, e: _Expected, events: list[dict[str, Any]], report: EventsReport
) -> None:
    raised = type_ == EventType.ATTENTION_RAISED.value
    known, last = (e.raised, e.last_flagged) if raised else (e.resolved, e.last_resolved)
    field_ = "flagged_at" if raised else "resolved_at"
    times: Counter[str] = Counter(str((ev.get("data") or {}).get(field_) or "") for ev in events)
    # the commit order: the last sequence of each moment, and the last of all (a flag written again later)
    committed_at: dict[str, str] = {}
    for ev in events:
        moment = str((ev.get("data") or {}).get(field_) or "")
        committed_at[moment] = max(committed_at.get(moment, ""), str(ev.get("sequence")))
    latest = max(committed_at.values(), default="")
    for moment in sorted(known):
        report.checks += 1
        _compare(subject, f"{type_} of {moment}", 1, times.get(moment, 0), report)
    for moment, count in sorted(times.items()):
        if moment in known:
            continue
        report.checks += 1
        # an earlier flag the item no longer keeps: its time is not after the item's last flag, or another
        # write of the same kind committed after it (two writers' clocks: the one that read its clock first
        # can commit last, and the item keeps the earlier time)
        overwritten = committed_at[moment] < latest
        if e.flagged_ever and moment and (moment <= max(last, e.last_flagged) or overwritten):
            report.attention_not_kept += count
        else:
            report.extra[type_] += count
            report.fail(
                f"(b) {subject}: {count} {type_} event(s) of {moment or '(no time)'}, a flag the item never had"
            )


def _check_order(
    expected: dict[str, _Expected], by_subject: dict[str, list[dict[str, Any]]], report: EventsReport
) -> None:
    for subject, events in sorted(by_subject.items()):
        ordered = sorted(events, key=lambda ev: str(ev.get("sequence")))
        report.checks += 1
        sequences = Counter(str(ev.get("sequence")) for ev in ordered)
        shared = [sequence for sequence, n in sequences.items() if n > 1]
        if shared:
            report.fail(f"(c) {subject}: {len(shared)} sequence(s) shared by two ids, e.g. {shared[0]}")
        e = expected.get(subject)
        if e is None or not e.in_scope:
            continue
        if e.ordered:
            kept = set(e.ordered)
            heard_order = [str(ev.get("type")) for ev in ordered if ev.get("type") in kept]
            if heard_order != e.ordered and Counter(heard_order) == Counter(e.ordered):
                report.fail(f"(c) {subject}: sequences order {heard_order}, the item committed {e.ordered}")
        # a flag is closed only while open (the closing write's condition): in commit order, every
        # attention.resolved follows an attention.raised, never another resolved (the items' times are
        # not the commit order: a closing write reads its clock before a raise that commits first)
        flags = [str(ev.get("type")) for ev in ordered if str(ev.get("type")).startswith("payments.attention.")]
        closed = EventType.ATTENTION_RESOLVED.value
        if any(kind == closed and (n == 0 or flags[n - 1] == closed) for n, kind in enumerate(flags)):
            report.fail(f"(c) {subject}: an attention.resolved without a raised flag before it in sequence order")


def everything(item: dict[str, Any]) -> bool:
    """Every item of the runtime is checked (a runtime of one run: ``payments chaos``)."""
    return True


def of_run(prefix: str) -> Callable[[dict[str, Any]], bool]:
    """The items of one run in a shared runtime: those whose ids start with ``prefix`` (a dispute: its order's;
    a reconciliation summary, which covers every run's charges of its day, is left out)."""

    def in_scope(item: dict[str, Any]) -> bool:
        ids = ("checkout_id", "payment_order_id", "refund_id", "payout_id")
        return any(str(item.get(name) or "").startswith(prefix) for name in ids)

    return in_scope


def check_runtime_events(
    phase: str, in_scope: Callable[[dict[str, Any]], bool] = everything, out: Callable[[str], None] = print
) -> EventsReport | None:
    """:func:`check_events` on the local runtime of this process, its events reader flushed first; the figures
    printed as ``events (<phase>): ...``. None when no local runtime runs here."""
    from payments_dev.local import runtime

    current = runtime.CURRENT
    if current is None or current.events is None:
        out(f"events ({phase}): not checked (no local runtime with its events reader in this process)")
        return None
    report = check_events(flush=current.events.flush, in_scope=in_scope)
    out(f"events ({phase}): {report.figures()}")
    if report.attention_not_kept or report.superseded:
        out(
            f"events ({phase}): {report.attention_not_kept} attention event(s) of earlier flags the items no longer "
            f"keep, {report.superseded} reconciliation event(s) of runs superseded under the same key"
        )
    if report.missing or report.extra:
        out(f"events ({phase}): missing by type {dict(report.missing)}, extra by type {dict(report.extra)}")
    return report


def check_phase(
    phase: str,
    in_scope: Callable[[dict[str, Any]], bool],
    out: Callable[[str], None],
    checks: Counter[str],
    violations: list[str],
) -> EventsReport | None:
    """:func:`check_runtime_events` at the end of a chaos phase, its checks and violations added to the phase's."""
    report = check_runtime_events(phase, in_scope, out)
    if report is not None:
        checks[f"events: every change one id, no id without a change ({phase})"] += report.checks
        violations += [f"[events, {phase}] {v}" for v in report.violations]
    return report
