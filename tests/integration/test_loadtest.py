"""A short ``payments loadtest`` against the local runtime: the real command, Locust, the real API.

Up to five checkouts a second for ten seconds, ramped over twenty (so half the rate, in steps of the
shoppers' 10 s pace), against the package's local runtime; the report's figures must agree with each other, every checkout must reach a
final status, and the declined share must come back FAILED. After it, the package's check of every
money invariant runs over what the load stored.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payments_dev.local.runtime import LocalRuntime

# found, never imported here: Locust's gevent would patch this test process's standard library
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="the loadtest extra (Locust) is not installed"
)

ROOT = Path(__file__).resolve().parents[2]
RATE, DURATION = 5, 10


def test_a_short_load_reports_consistent_figures(runtime: LocalRuntime) -> None:
    # Given the local runtime, when payments loadtest ramps towards 5 checkouts/s over 20 s, for 10 s, 10 % declined
    command = [sys.executable, "-m", "payments.ops.cli", "loadtest", "--api", runtime.api_url]
    command += ["--rate", str(RATE), "--duration", f"{DURATION}s", "--ramp", "20s", "--declined", "0.1"]
    command += ["--final-timeout", "40s", "--output", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)

    # Then it succeeds within its bounds and prints one JSON report
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["breaches"] == []

    # and the checkouts add up: every one started reached a final status, none refused or timed out
    checkouts = report["checkouts"]
    assert checkouts["started"] > 0
    assert checkouts["final"] == checkouts["started"]
    assert checkouts["rejected"] == 0 and checkouts["timed_out"] == 0
    assert sum(checkouts["final_by_status"].values()) == checkouts["final"]
    # one in ten declined, spread evenly: exactly floor(started / 10) FAILED, the rest SUCCEEDED
    assert checkouts["final_by_status"].get("FAILED", 0) == checkouts["started"] // 10
    assert checkouts["final_by_status"].get("SUCCEEDED", 0) == checkouts["started"] - checkouts["started"] // 10

    # the rate achieved is the checkouts started over the duration, below what was asked: the ramp lowers it
    assert report["achieved_checkouts_per_s"] == round(checkouts["started"] / DURATION, 2)
    assert 0 < report["achieved_checkouts_per_s"] < RATE

    # the time from POST to final status: one figure per checkout, percentiles in order
    latency = report["post_to_final"]
    assert latency["count"] == checkouts["final"]
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"] <= 40_000

    # the requests add up: one 202 per checkout, GETs answered 200, no error and no throttle
    requests = report["requests"]
    assert requests["by_method"]["POST"] == {"202": checkouts["started"]}
    assert set(requests["by_method"]["GET"]) == {"200"}
    assert (
        requests["total"]
        == sum(requests["by_status"].values())
        == sum(n for by_status in requests["by_method"].values() for n in by_status.values())
    )
    assert requests["errors"] == requests["throttles"] == 0
    post = requests["response_ms"]["POST"]
    assert post["count"] == checkouts["started"]
    assert 0 < post["p50_ms"] <= post["p95_ms"] <= post["p99_ms"] <= post["max_ms"]
    assert requests["error_rate"] == requests["throttle_rate"] == 0.0

    print(  # the figures of the run, for the record (pytest -s)
        f"\nloadtest smoke: {checkouts['started']} checkouts, p50 {latency['p50_ms']} ms, "
        f"p95 {latency['p95_ms']} ms, p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms"
    )
