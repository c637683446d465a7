"""The bank's answers reconciled against the payouts' book (an in-memory PayoutOutcomes: fake_book.FakeBook).

Given / When / Then. Files come from the simulated bank and the pain.001 writer; the real samples are read
from ../shared/bank-replies/ (skipped, visibly, where absent).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from payments.payouts.bank.pain001 import Debtor, PayoutInstruction, write_payout_file
from payments.payouts.bank.simulated import (
    TEST_IBAN_PAID,
    TEST_IBAN_REJECTED,
    TEST_IBAN_RETURNED,
    MemoryBankStore,
    PspCredit,
    SimulatedBank,
)
from payments.payouts.outcomes import Applied, PayoutStatus
from payments.payouts.reconcile import PAYOUTS_FAILED, PAYOUTS_RETURNED, BankFileReconciler, BankRun
from payments.reconciliation.model import UnreadableFile
from tests.unit.payouts.fake_book import FakeBook

REPLIES = Path(__file__).resolve().parents[3] / ".." / "shared" / "bank-replies"
DEBTOR = Debtor(name="Marketplace Ltd", iban="DE82370400440123456789", bic="COBADEFFXXX")
RUN_AT = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
DAY1, DAY2 = date(2026, 12, 6), date(2026, 12, 7)


def payout(n: int, iban: str = TEST_IBAN_PAID, minor: int = 1000) -> PayoutInstruction:
    return PayoutInstruction(
        payout_id=f"pt_{n}", account_holder="Books Ltd", iban=iban, amount_minor=minor, currency="EUR", remittance="x"
    )


def shared(name: str) -> bytes:
    path = REPLIES / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared bank replies are not laid beside the repository")
    return path.read_bytes()


class PspBook:
    """PSP payouts announced by settlement files: (currency, amount, day) -> key, each claimed once."""

    def __init__(self, announced: dict[tuple[str, int, str], str]):
        self.announced = announced
        self.claims: dict[str, str] = {}

    def claim(self, currency: str, amount_minor: int, booked_on: str, by: str) -> tuple[Applied, str]:
        for (ccy, minor, day), key in self.announced.items():
            if (ccy, minor, day) == (currency, amount_minor, booked_on):
                if key not in self.claims:
                    self.claims[key] = by
                    return Applied.APPLIED, key
                if self.claims[key] == by:
                    return Applied.ALREADY, key
                return Applied.CONFLICT, "matched to another credit already"
        return Applied.UNKNOWN, "no settlement file announces it"


class World:
    """A bank, the book with the payouts of one file, and a reconciler with its metrics."""

    def __init__(self, *payouts: PayoutInstruction) -> None:
        self.bank = SimulatedBank(MemoryBankStore(), DEBTOR, opening_minor=100_000)
        self.book = FakeBook()
        for p in payouts:
            self.book.add(p.payout_id, p.amount_minor)
        self.file = write_payout_file("EUR", DEBTOR, "run-1", RUN_AT, DAY2, list(payouts))
        self.metrics: list[tuple[str, int]] = []
        self.psp = PspBook({})
        self.files = {self.file.msg_id: list(self.file.end_to_end_ids)}
        self.reconciler = BankFileReconciler(
            self.book, self.psp, self.files.get, lambda name, value: self.metrics.append((name, value))
        )

    def reconcile(self, key: str, content: bytes) -> BankRun:
        return self.reconciler.reconcile(key, content, today=DAY1)


def kinds(run: BankRun) -> list[str]:
    return [m["kind"] for m in run.mismatches]


def test_rjct_fails_the_payout_accp_only_records_and_the_booking_pays() -> None:
    # Given a file of three payouts, one to the rejected test IBAN
    w = World(payout(1), payout(2, TEST_IBAN_REJECTED, 2000), payout(3, TEST_IBAN_RETURNED, 3000))
    reply = w.bank.receive(w.file.content, RUN_AT)
    # When its pain.002 is reconciled
    run = w.reconcile(reply.key, reply.content)
    # Then the rejected one is FAILED with AC01, the accepted ones are recorded and still SUBMITTED
    assert (run.applied, run.already, run.recorded, run.mismatches) == (1, 0, 2, [])
    assert w.book.status("pt_2") is PayoutStatus.FAILED and w.book.payouts["pt_2"].reason == "AC01"
    assert w.book.status("pt_1") is PayoutStatus.SUBMITTED
    assert w.book.payouts["pt_2"].moves[0][1].startswith(reply.key + "#")
    assert w.metrics == [(PAYOUTS_FAILED, 1)]
    # When the day is closed and its statement reconciled, then the accepted ones are PAID
    key, statement = w.bank.close_day(DAY1)
    run = w.reconcile(key, statement)
    assert (run.applied, run.mismatches) == (2, [])
    assert [w.book.status(p) for p in ("pt_1", "pt_3")] == [PayoutStatus.PAID, PayoutStatus.PAID]
    # When the next day's statement returns the 0002 payout (AC04), then it is RETURNED and the alarm's metric counts
    key, statement = w.bank.close_day(DAY2)
    run = w.reconcile(key, statement)
    assert (run.applied, run.mismatches) == (1, [])
    assert w.book.status("pt_3") is PayoutStatus.RETURNED and w.book.payouts["pt_3"].reason == "AC04"
    assert (PAYOUTS_RETURNED, 1) in w.metrics


def test_every_file_delivered_twice_applies_nothing_twice_and_is_no_mismatch() -> None:
    w = World(payout(1), payout(2, TEST_IBAN_REJECTED), payout(3, TEST_IBAN_RETURNED))
    reply = w.bank.receive(w.file.content, RUN_AT)
    files = [(reply.key, reply.content), w.bank.close_day(DAY1), w.bank.close_day(DAY2)]
    first = [w.reconcile(k, c) for k, c in files]
    states = {p: (b.status, len(b.moves)) for p, b in w.book.payouts.items()}
    again = [w.reconcile(k, c) for k, c in files]
    assert [r.applied for r in first] == [1, 2, 1] and [r.already for r in again] == [1, 2, 1]
    assert all(r.applied == 0 and r.mismatches == [] for r in again)
    assert {p: (b.status, len(b.moves)) for p, b in w.book.payouts.items()} == states
    # the returned payout's booking, told again after its return, is ALREADY too
    assert w.book.status("pt_3") is PayoutStatus.RETURNED


def test_a_statement_before_its_pain002_then_a_late_accp_and_a_late_rjct() -> None:
    # Given the statement booking pt_1 arrives before the pain.002 that accepted it
    w = World(payout(1))
    reply = w.bank.receive(w.file.content, RUN_AT)
    key, statement = w.bank.close_day(DAY1)
    assert w.reconcile(key, statement).applied == 1 and w.book.status("pt_1") is PayoutStatus.PAID
    # When the ACCP arrives late, then nothing changes
    late = w.reconcile(reply.key, reply.content)
    assert (late.applied, late.recorded, late.mismatches) == (0, 1, [])
    # When a RJCT for that PAID payout arrives, then it is a MANUAL mismatch, not a status change
    rjct = reply.content.replace(
        b"<TxSts>ACCP</TxSts>", b"<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf>"
    )
    run = w.reconcile("incoming/bank/pain002/late.xml", rjct)
    assert kinds(run) == ["PAYOUT_CONFLICT"] and run.mismatches[0]["classification"] == "MANUAL"
    assert run.mismatches[0]["payout_id"] == "pt_1" and "PAID" in run.mismatches[0]["detail"]
    assert w.book.status("pt_1") is PayoutStatus.PAID


def test_a_duplicate_refusal_is_recorded_and_the_original_report_stands() -> None:
    w = World(payout(1), payout(2, TEST_IBAN_REJECTED))
    original = w.bank.receive(w.file.content, RUN_AT)
    duplicate = w.bank.receive(w.file.content, RUN_AT)
    run = w.reconcile(duplicate.key, duplicate.content)
    assert (run.applied, run.recorded, run.mismatches) == (0, 1, []) and w.book.calls == []
    w.reconcile(original.key, original.content)
    assert w.book.status("pt_2") is PayoutStatus.FAILED and w.book.status("pt_1") is PayoutStatus.SUBMITTED


def test_a_whole_file_rejection_fails_every_payout_of_our_file() -> None:
    w = World(payout(1), payout(2))
    broken = w.file.content.replace(b"<ChrgBr>SLEV</ChrgBr>", b"<ChrgBr>NOPE</ChrgBr>")
    reply = w.bank.receive(broken, RUN_AT)  # FF01: refused whole, no transaction listed
    run = w.reconcile(reply.key, reply.content)
    assert run.applied == 2 and [w.book.payouts[p].reason for p in ("pt_1", "pt_2")] == ["FF01", "FF01"]
    # a file that is not ours: a mismatch, nothing failed
    other = World(payout(1))
    run = BankFileReconciler(other.book).reconcile(reply.key, reply.content, today=DAY1)
    assert kinds(run) == ["BANK_FILE_REJECTED_UNKNOWN"] and other.book.calls == []


def test_unknown_payouts_and_amounts_that_differ_are_mismatches() -> None:
    # Given the book knows pt_1 at 10.00 only; the bank booked pt_1 at 12.00 and pt_9
    w = World(payout(1, minor=1200), payout(9))
    w.book.payouts["pt_1"].amount = w.book.payouts["pt_1"].amount.__class__(1000, "EUR")
    del w.book.payouts["pt_9"]
    w.bank.receive(w.file.content, RUN_AT)
    key, statement = w.bank.close_day(DAY1)
    run = w.reconcile(key, statement)
    assert sorted(kinds(run)) == ["PAYOUT_AMOUNT_DIFFERS", "PAYOUT_UNKNOWN"]
    by_kind = {m["kind"]: m for m in run.mismatches}
    assert by_kind["PAYOUT_AMOUNT_DIFFERS"]["settlement_amount"] == "12.00"
    assert by_kind["PAYOUT_UNKNOWN"]["entry"].startswith("Stmt STMT-20261206 Ntry STMT-20261206-D")
    assert w.book.status("pt_1") is PayoutStatus.SUBMITTED


def test_the_psp_credit_is_matched_once_and_an_unannounced_credit_is_a_mismatch() -> None:
    w = World(payout(1))  # the file is never sent: the day holds only the PSP's credit
    w.psp.announced[("EUR", 98_765, DAY1.isoformat())] = "incoming/simulated-psp/2026-12-06.csv"
    key, statement = w.bank.close_day(DAY1, [PspCredit("simulated-psp-1-EUR", 98_765, "EUR", "Simulated PSP")])
    run = w.reconcile(key, statement)
    assert (run.applied, run.mismatches) == (1, []) and run.lines[0]["settlement_key"].endswith("2026-12-06.csv")
    again = w.reconcile(key, statement)  # the same statement again: the same claim
    assert (again.applied, again.already, again.mismatches) == (0, 1, [])
    # a second credit of the same amount is not matched to the same payout; another amount is unannounced
    key, statement = w.bank.close_day(DAY2, [PspCredit("r2", 98_765, "EUR", "PSP"), PspCredit("r3", 5, "EUR", "PSP")])
    run = w.reconcile(key, statement)
    assert kinds(run) == ["BANK_CREDIT_UNMATCHED", "BANK_CREDIT_UNMATCHED"] and run.applied == 0


def test_an_unreadable_file_is_refused_with_its_reason() -> None:
    w = World(payout(1))
    with pytest.raises(UnreadableFile, match=r"not a pain\.002, camt\.053 or camt\.054"):
        w.reconcile("incoming/bank/x.xml", b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:pain.001.001.09'/>")
    with pytest.raises(UnreadableFile, match="malformed"):
        w.reconcile("incoming/bank/x.xml", b"<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'><Bk")


# --- the real samples ---------------------------------------------------------------------------


def test_the_real_rejections_are_recognised_and_failed_with_their_reasons() -> None:
    book = FakeBook()
    for n in range(1, 5):
        book.add(f"E2EID{n}", 10_000)
    run = BankFileReconciler(book).reconcile("incoming/bank/pain002/oca.xml", shared("oca-pain002-rejects.xml"), DAY1)
    assert (run.applied, run.mismatches) == (4, [])
    assert {p: (b.status, b.reason) for p, b in book.payouts.items()} == {
        "E2EID1": (PayoutStatus.FAILED, "AC01"),
        "E2EID2": (PayoutStatus.FAILED, "MS02"),
        "E2EID3": (PayoutStatus.FAILED, "MD06"),
        "E2EID4": (PayoutStatus.FAILED, "AM04"),
    }


def test_the_real_return_is_recognised_as_a_returned_direct_debit_never_a_payout() -> None:
    book = FakeBook()
    book.add("E2EID1", 10_000, PayoutStatus.PAID)
    run = BankFileReconciler(book).reconcile("incoming/bank/camt054/oca.xml", shared("oca-camt054-return.xml"), DAY1)
    assert kinds(run) == ["BANK_RETURN_NOT_A_PAYOUT"] and "AC06" in run.mismatches[0]["detail"]
    assert book.calls == [] and book.status("E2EID1") is PayoutStatus.PAID


@pytest.mark.parametrize("name", ["genkgo-camt054.v2.xml", "genkgo-camt054.v4.xml", "genkgo-camt054.v8.xml"])
def test_the_inconsistent_fixtures_are_reported_and_never_matched(name: str) -> None:
    book = FakeBook()
    for e2e in ("MUELL/FINP/RA12345", "UXC06170000006PI00001EE00001", "UXC06170000006PI00001EE00002"):
        book.add(e2e, 310)
    run = BankFileReconciler(book).reconcile(f"incoming/bank/camt054/{name}", shared(name), DAY1)
    assert run.mismatches and set(kinds(run)) == {"BANK_FILE_PROBLEM"} and run.applied == 0
    assert book.calls == []
