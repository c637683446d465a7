"""Every index key of every table, its busiest value's writes at 20,000 checkouts/s, within one partition's
1,000 WCU/s where it is deployed; docs/capacity.md lists each one with that figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions import registry
from payments.kernel.tables import TABLES
from payments.ops import capacity

DOC = Path(__file__).resolve().parents[3] / "docs" / "capacity.md"


def test_every_index_of_every_table_is_counted_once_with_its_key_and_whether_it_is_deployed():
    # Given the tables' description (the local runtime's tables and, where deployed, the stack's)
    indexes = {(t.setting, i.name): (i.partition_key, i.deployed) for t in TABLES for i in t.indexes}
    # Then the capacity model counts exactly those indexes, by the attribute of their key
    counted = {(k.table, k.index): (k.key.split(" = ")[0], k.deployed) for k in capacity.INDEX_KEYS}
    assert counted == indexes
    assert len(capacity.INDEX_KEYS) == len(counted)


def test_no_deployed_index_key_takes_more_than_one_partitions_writes_at_20000_checkouts_per_second():
    # When every index key's busiest value is computed at the peak
    peaks = {(k.table, k.index): peak for k, peak in capacity.index_key_peaks(capacity.PEAK_CHECKOUTS_PER_S)}
    deployed = {(k.table, k.index) for k in capacity.INDEX_KEYS if k.deployed}
    # Then every deployed one is within a partition's 1,000 WCU/s
    assert {key: peak for key, peak in peaks.items() if key in deployed and peak > capacity.PARTITION_WCU} == {}
    # And the recovery index spreads its 2 writes per checkout over 64 shards: 20,000 x 2 x 1.1 / 64
    assert peaks[("payments_table", "by_recovery_due")] == pytest.approx(687.5)
    # And the ledger's day key, were it deployed, would take 60,000 writes/s: why it is not
    assert peaks[("ledger_table", "by_settlement_day")] == pytest.approx(60_000)
    # And the simulated PSP's day key is bounded by the target a simulated-PSP stage may have
    assert peaks[("psp_table", "by_charge_day")] == pytest.approx(3 * capacity.SIMULATOR_MAX_CHECKOUTS_PER_S)
    assert capacity.SIMULATOR_MAX_CHECKOUTS_PER_S * 3 * capacity.HEADROOM <= capacity.PARTITION_WCU


def test_the_recovery_shards_setting_is_the_models():
    from payments.kernel.config import Settings

    assert Settings().recovery_shards == capacity.RECOVERY_SHARDS


def test_no_function_is_granted_an_index_that_is_not_deployed():
    # Given the indexes that exist on the local runtime only
    local_only = {(t.setting, i.name) for t in TABLES for i in t.indexes if not i.deployed}
    # Then no deployed function's table access names one (its reader there is the ledger's copy in S3)
    granted = {(a.setting, index) for f in registry.FUNCTIONS for a in f.tables for index in a.indexes}
    assert local_only and not (granted & local_only)


def test_docs_capacity_lists_every_index_key_with_its_peak_writes():
    # Given docs/capacity.md
    text = DOC.read_text()
    # Then each index key is a row with its busiest value's WCU/s at 20,000 checkouts/s (or that it is not deployed)
    for key, peak in capacity.index_key_peaks():
        figure = f"{peak:,.0f}" if key.deployed else f"not deployed ({peak:,.0f})"
        row = f"| `{key.table}` | `{key.index}` | `{key.key}` | {figure} |"
        assert row in text, row
