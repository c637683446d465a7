"""The capacity model (payments_dev/bench/capacity.py): its arithmetic and what it concludes."""

from __future__ import annotations

import pytest

from payments_dev.bench import capacity


def test_standard_is_bound_by_its_start_and_transition_quotas():
    # Given the default quotas
    # Then a Standard workflow sustains 300 one-order checkouts/s (StartExecution) and 5,000 / 17 three-order ones
    one, quota_one, _ = capacity.sustainable(1, express=False)
    three, quota_three, _ = capacity.sustainable(3, express=False)
    assert (round(one), quota_one.name) == (300, "Step Functions Standard: StartExecution refill (us-east-1)")
    assert three == pytest.approx(5_000 / 17) and "state transitions" in quota_three.name


def test_express_is_not_bound_by_step_functions_and_beats_standard():
    for n in (1, 3, 10):
        express, quota, _ = capacity.sustainable(n, express=True)
        standard, _, _ = capacity.sustainable(n, express=False)
        assert express > standard and "Step Functions" not in quota.name


def test_the_measured_write_units_are_what_each_write_of_a_checkout_explains():
    # Given the write units the capacity model takes from the cost bench's record (docs/capacity.md, section 5)
    t = capacity.TRANSACTIONAL
    # payments: the payment and its orders created in one transaction, the start marker, per order EXECUTING and
    # SUCCESS and the wallet's and the ledger's order flags (transactional), the final status, the recovery index
    # entry in and out
    per_order = t + 2 + 2 * t
    assert capacity.payments_wru(1) == t + 1 + per_order + 1 + 2
    assert capacity.payments_wru(3) - capacity.payments_wru(1) == 2 * per_order
    # ledger: per order the transaction, the trial-balance totals shard and the totals shards of the two accounts
    # it posts to, transactional; wallets: the credit marker and the balance shard
    assert capacity.ledger_wru(3) == 3 * 4 * t
    assert capacity.wallets_wru(3) == 3 * 2 * t
    # idempotency: the in-progress record, then the completed one with the answer (over 1 KB for 3 orders)
    assert capacity.idempotency_wru(3) == 1 + 2


def test_5000_checkouts_per_second_need_named_raises_and_are_reachable():
    # Given a target of 5,000 three-order checkouts/s
    needed = {quota.name for quota, _ in capacity.raises_for(5_000, 3)}
    # Then the Lambda concurrency, the stage throttle and the table throughput must be raised
    assert "Lambda: concurrent executions per account and region" in needed
    assert "API Gateway: the stage's throttle (cdk.json prod apiRateLimit)" in needed
    # and once every listed quota is raised to what it needs, the region sustains the target
    raised = {q.name: 5_000 * q.use(3) for q in capacity.QUOTAS if q.name in needed}
    assert capacity.sustainable(3, values=raised, express=True, include_ours=True)[0] >= 5_000


def test_one_seller_at_10000_credits_per_second_needs_more_wallet_shards_than_prod_has():
    shards = capacity.wallet_shards_for(10_000)
    assert shards["shards"] > capacity.PROD_WALLET_SHARDS and shards["ceiling_credits_per_s"] >= 10_000
    assert 10_000 / 500 <= shards["shards"] <= capacity.shards_needed(10_000) + 2
