"""The checked-in counts of a checkout (payments/ops/checkout_counts.json) are what the cost bench counts now.

Both the cost model and the capacity model read that record (payments.ops.measured); a change to the checkout
path that adds or removes a request, an invocation, a transition or a unit makes it stale, and this test says
so: regenerate it with ``python -m payments_dev.bench.cost --write`` (or ``make bench``). The handler CPU (a
measurement) is not compared; every count is, exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from payments.ops import measured
from payments_dev.bench import cost

pytestmark = pytest.mark.slow

#: one checkout of each size on the local runtime: about 25 s of wall time, 8 s of CPU
TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("counts") / "record.json"
    done = subprocess.run(
        [sys.executable, "-m", "payments_dev.bench.cost", "--quick", "--record", str(out)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(out.read_text())


def _differences(fresh: dict, checked_in: dict, path: str = "") -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for key in sorted(set(fresh) | set(checked_in)):
        a, b = fresh.get(key), checked_in.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(_differences(a, b, f"{path}{key}/"))
        elif a != b:
            out[f"{path}{key}"] = (a, b)
    return out


def test_the_checked_in_counts_are_what_a_fresh_run_counts(fresh: dict) -> None:
    # Given the record both models read, and the counts of a fresh run of the cost bench (1 checkout of each size)
    checked_in = json.loads(measured.PATH.read_text())
    # Then every count is the same: requests, invocations, PSP calls, transitions, units, AWS calls per invocation
    stale = _differences(cost.counts_only(fresh), cost.counts_only(checked_in))
    assert stale == {}, (
        f"payments/ops/checkout_counts.json is stale (fresh, checked in): {stale}; "
        "run `python -m payments_dev.bench.cost --write`"
    )
    # and the Step Functions log record's size (the execution's ids are in it) within a few percent
    assert fresh["sfn_log_bytes_per_event"] == pytest.approx(
        checked_in["sfn_log_bytes_per_event"], rel=cost.LOG_BYTES_TOLERANCE
    )


def test_a_fresh_run_sees_the_get_poll_and_the_psp_call(fresh: dict) -> None:
    # Then the counts include what a real checkout adds to the workflow: the client's GET poll of the payment
    # (an API request and a payment invocation) and the executor's call to the PSP per order
    three = fresh["checkouts"]["3"]
    assert three["api_requests"] == {"GET": cost.GET_POLLS, "POST": 1}
    assert three["invocations"]["payment GET"] == cost.GET_POLLS
    assert three["psp_calls"] == 3 and fresh["invocation_kinds"]["executor"]["psp_calls"] == 1
    assert three["statuses"] == {"SUCCEEDED": 1}


def test_counts_only_keeps_every_count_and_drops_only_the_measurements() -> None:
    record = json.loads(measured.PATH.read_text())
    kept = cost.counts_only(record)
    assert set(kept) == {"assumptions", "checkouts", "invocation_kinds"}
    assert all("cpu_ms" not in k and "aws_calls" in k for k in kept["invocation_kinds"].values())
    # a changed count is seen
    changed = json.loads(json.dumps(record))
    changed["checkouts"]["3"]["dynamodb"]["payments_table"]["wru"] += 1
    assert cost.counts_only(changed) != kept
