"""The demo's generated ids never look like card numbers (the API would reject the checkout)."""

from __future__ import annotations

from payments.kernel.pan import contains_pan, find_pans
from payments_dev.demo import build_scenario, run_id


def test_seed_and_time_run_together_are_no_card_number():
    # Given the demo's seed and a time, written next to each other (the ids of an earlier demo, some of
    # which an earlier policy refused as a Luhn-valid 14-digit run)
    glued = [f"cm2026{int(1_764_035_000 + s)}_chk_00001" for s in range(200)]
    # Then none is a card number: the run is glued to letters, and no scheme issues 14 digits starting 20
    assert not any(contains_pan(text) for text in glued)


def test_demo_ids_hold_no_card_number_whatever_the_time():
    # Given the ids of a scenario for each of 2,000 consecutive run times
    for second in range(2_000):
        scenario = build_scenario(3, 2026, run_id=run_id(1_764_035_000 + second))
        # Then no checkout body carries anything the PAN guard would reject
        for checkout in scenario.checkouts:
            assert find_pans(checkout) == [], checkout["checkout_id"]


def test_demo_and_chaos_ids_and_keys_pass_the_stricter_card_number_policy():
    # Given the scenarios the demo and the chaos harness build (seeds of `make demo`, `make chaos`, the chaos
    # tests), under the policy that joins digit groups across '_' and '-' (issue 14)
    for seed in (2026, 7, 11, 42):
        scenario = build_scenario(300, seed, run_id=run_id(1_764_035_000 + seed))
        for checkout in scenario.checkouts:
            # Then no body and no Idempotency-Key they send holds anything the guard would refuse
            assert find_pans(checkout) == [], checkout["checkout_id"]
            assert not contains_pan(f"idem-{checkout['checkout_id']}")
