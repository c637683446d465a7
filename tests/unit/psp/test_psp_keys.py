"""The PSP's idempotency keys, namespaced by kind (payments/psp/keys.py).

Charges and refunds used to share one key space at the PSP (charge key = payment_order_id, refund key =
refund_id): a refund whose id equals its order's id got Adyen's 422/704 and parked for ever. A refund's
key is now ``refund:<refund_id>``, a reversal's ``reversal:<payment_order_id>``; the charge's is unchanged.
"""

from __future__ import annotations

from payments.psp import Approved
from payments.psp.adyen import AdyenPsp
from payments.psp.keys import MAX_KEY, psp_key
from payments.psp.simulator import SimulatedPsp
from payments.refunds.models import RefundStatus
from payments.refunds.psp import RefundAnswer, RefundCall
from payments.refunds.repository import RefundsRepository
from payments_dev.local.adyen_fake import AdyenFake
from tests.unit.adyen_support import charge_request
from tests.unit.adyen_support import fake as fake  # the pytest fixtures, injected by name
from tests.unit.adyen_support import psp as psp
from tests.unit.conftest import Repos
from tests.unit.refunds.test_refunds import accept, paid, run_refund


def test_psp_keys_are_namespaced_by_kind_bounded_and_derived_from_the_id() -> None:
    assert psp_key("charge", "po_1") == "po_1"
    assert psp_key("refund", "po_1") == "refund:po_1"
    assert psp_key("reversal", "po_1") == "reversal:po_1"
    long_a, long_b = "a" * 63 + "1", "a" * 63 + "2"
    assert len(psp_key("refund", long_a)) == MAX_KEY == len(psp_key("reversal", long_a))
    assert psp_key("refund", long_a) != psp_key("refund", long_b)
    assert psp_key("refund", long_a) == psp_key("refund", long_a) and psp_key("refund", long_a).startswith("refund:aaa")


def test_a_refund_whose_id_is_its_orders_id_is_received_by_adyen(fake: AdyenFake, psp: AdyenPsp) -> None:
    # Given a charge of po_1 at Adyen
    charged = psp.charge(charge_request("po_1"))
    assert isinstance(charged, Approved)
    # When a refund whose refund_id is also po_1 is sent, twice (a retry)
    answer = psp.refund(RefundCall("po_1", "po_1", charged.psp_reference, 500, "USD"))
    again = psp.refund(RefundCall("po_1", "po_1", charged.psp_reference, 500, "USD"))
    # Then Adyen received it once under a refund key (not the charge's), referenced by the refund id
    assert isinstance(answer, RefundAnswer) and answer.pending and answer == again
    keys = [(path.rsplit("/", 1)[-1], headers.get("idempotency-key")) for _, path, headers, _ in fake.requests]
    assert keys == [("payments", "po_1"), ("refunds", "refund:po_1"), ("refunds", "refund:po_1")]
    refunds = [m for m in fake.modifications.values() if m["operation"] == "refunds"]
    assert len(refunds) == 1 and refunds[0]["body"]["reference"] == "po_1"


def test_a_refund_whose_id_is_its_orders_id_succeeds_on_the_simulator(repos: Repos) -> None:
    # Given an order po_1 charged at the simulator
    refunds = RefundsRepository(payments=repos.payments, wallets=repos.wallets, ledger=repos.ledger)
    simulator = SimulatedPsp()
    paid(repos, simulator, "po_1", 7000)
    # When a refund whose refund_id is po_1 runs, twice
    accept(refunds, "po_1", "po_1", "25.00")
    first = run_refund(refunds, simulator, "po_1")
    second = run_refund(refunds, simulator, "po_1")
    # Then it succeeded once, and the charge is still the one charge of po_1
    assert refunds.get("po_1").status is RefundStatus.SUCCEEDED and first["status"] == second["status"]
    assert [c["merchant_reference"] for c in simulator.all_charges()] == ["po_1"]
    assert simulator.lookup_refund("po_1")["amount_minor"] == 2500  # type: ignore[index]
