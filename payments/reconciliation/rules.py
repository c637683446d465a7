"""Classification rules: every mismatch carries the class *and* the named rule that produced it.

The three classes of the design:

* ``AUTO_RESOLVABLE``: the difference is expected and goes away by itself or is
  harmless; it is recorded, and a job (or a person) may close it without analysis.
* ``MANUAL``: money differs between the PSP and us; a person must look.
* ``UNCLASSIFIED``: the engine does not understand the row well enough to say.

===================================== ================= ============================================
rule                                  class             when
===================================== ================= ============================================
``timing: settles next day``          AUTO_RESOLVABLE   MISSING_IN_SETTLEMENT for a charge made in the
                                                        last :data:`CUTOFF_MINUTES` minutes of its UTC
                                                        day: the PSP's batch closed before it
``missing: not settled by the PSP``   MANUAL            any other MISSING_IN_SETTLEMENT
``amount: differs from the ledger``   MANUAL            AMOUNT_MISMATCH
``currency: differs from the ledger`` MANUAL            CURRENCY_MISMATCH
``duplicate: identical row repeated`` AUTO_RESOLVABLE   DUPLICATE_IN_SETTLEMENT whose row equals the first
                                                        (a file artefact; the payment is counted once)
``duplicate: conflicting rows``       MANUAL            same PSP reference, different order/amount/currency
``unknown: no ledger transaction``    MANUAL            MISSING_IN_LEDGER, the order is not in our ledger
``reference: booked under another``   MANUAL            PSP reference and order disagree with the ledger
``unknown: no ledger <record type>``  MANUAL            MISSING_IN_LEDGER of a Refunded, Chargeback,
                                                        ChargebackReversed or SecondChargeback row: no
                                                        such ledger transaction
``adjustment: not booked``            MANUAL            an adjustment the ledger never books
                                                        (RefundedReversed, ChargebackExternally, ...)
``record type: unknown``              UNCLASSIFIED      a record type this engine does not know
``lookup budget exhausted``           UNCLASSIFIED      a row outside the file's day beyond
                                                        ``Bounds.max_point_lookups`` point lookups
===================================== ================= ============================================
"""

from __future__ import annotations

from datetime import datetime, timedelta

from payments.reconciliation.model import AUTO_RESOLVABLE, MANUAL, UNCLASSIFIED, Classification

#: a rule's verdict: its class and its name (the report's ``rule``)
Rule = tuple[Classification, str]

#: a charge this close to midnight UTC may land in the next day's batch
CUTOFF_MINUTES = 30

TIMING: Rule = (AUTO_RESOLVABLE, f"timing: charged in the last {CUTOFF_MINUTES} minutes of the day, settles next day")
NOT_SETTLED: Rule = (MANUAL, "missing: booked in the ledger, not settled by the PSP")
AMOUNT: Rule = (MANUAL, "amount: settled amount differs from the ledger")
CURRENCY: Rule = (MANUAL, "currency: settled in another currency than booked")
DUPLICATE_IDENTICAL: Rule = (AUTO_RESOLVABLE, "duplicate: identical row repeated, counted once")
DUPLICATE_CONFLICTING: Rule = (MANUAL, "duplicate: same PSP reference with different content")
UNKNOWN_PAYMENT: Rule = (MANUAL, "unknown: settled at the PSP, no ledger transaction for the order")
LOOKUP_BUDGET: Rule = (UNCLASSIFIED, "lookup budget exhausted: row outside the file's day not looked up")


def booked_under_another(what: str, other: str) -> Rule:
    return MANUAL, f"reference: {what} is booked in the ledger under {other}"


def unknown_adjustment(record_type: str) -> Rule:
    return MANUAL, f"unknown: {record_type} at the PSP, no such ledger transaction"


def adjustment(record_type: str) -> Rule:
    return MANUAL, f"adjustment: {record_type} is not booked by the ledger"


def unknown_record_type(record_type: str) -> Rule:
    return UNCLASSIFIED, f"record type: unknown '{record_type[:40]}'"


def missing_in_settlement(charged_at: str) -> Rule:
    """TIMING if the charge was made within CUTOFF_MINUTES of the end of its UTC day."""
    try:
        moment = datetime.fromisoformat(charged_at)
    except ValueError:
        return NOT_SETTLED
    day_end = moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return TIMING if day_end - moment <= timedelta(minutes=CUTOFF_MINUTES) else NOT_SETTLED
