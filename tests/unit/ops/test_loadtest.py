"""payments loadtest's figures, its bounds, the region it signs for, and what it says without Locust.

The load itself (Locust against the local runtime) is tests/integration/test_loadtest.py; here the
report is computed from observations written by hand, so every figure has a known right answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from payments.ops import clikit, loadtest

SETTINGS = {"api": "https://x.execute-api.eu-west-1.amazonaws.com/prod", "rate": 10, "duration": 2, "ramp": 0}
SETTINGS["final_timeout"] = 60
BOUNDS = {"max_error_rate": 0.1, "max_throttle_rate": 0.2, "max_timeouts": 0}


def observed(
    finals: list[tuple[str, float]], timeouts: int = 0, rejected: int = 0, requests: Any = None
) -> dict[str, Any]:
    checkouts: list[dict[str, Any]] = [{"outcome": "final", "status": s, "seconds": t} for s, t in finals]
    checkouts += [{"outcome": "timeout"}] * timeouts + [{"outcome": "rejected", "http_status": 500}] * rejected
    return {"checkouts": checkouts, "requests": requests or {"POST": {"202": len(checkouts)}}}


def test_percentiles_are_nearest_rank_over_every_final_checkout() -> None:
    # Given 20 checkouts whose POST-to-final times are 0.1 s .. 2.0 s (in a shuffled order)
    times = [round(0.1 * k, 1) for k in range(20, 0, -1)]
    report = loadtest.summarise(observed([("SUCCEEDED", t) for t in times]), SETTINGS, BOUNDS)

    # Then p50 is the 10th value, p95 the 19th, p99 and max the 20th
    assert report["post_to_final"] == {"count": 20, "p50_ms": 1000, "p95_ms": 1900, "p99_ms": 2000, "max_ms": 2000}
    assert report["achieved_checkouts_per_s"] == 10.0  # 20 started over 2 s
    assert report["ok"] is True


def test_throttles_are_counted_apart_from_errors_and_each_bound_is_named() -> None:
    # Given 4 checkouts, one timed out, and 10 requests: 6 answered, 2 throttled, 1 server error, 1 no answer
    requests = {"POST": {"202": 3, "429": 2, "500": 1}, "GET": {"200": 3, "0": 1}}
    report = loadtest.summarise(observed([("SUCCEEDED", 1.0), ("FAILED", 2.0)], 1, 1, requests), SETTINGS, BOUNDS)

    # Then the errors are the 500 and the unanswered one (2 of 10), the throttles the two 429s
    figures = report["requests"]
    assert (figures["total"], figures["errors"], figures["throttles"]) == (10, 2, 2)
    assert (figures["error_rate"], figures["throttle_rate"]) == (0.2, 0.2)
    assert figures["by_status"] == {"0": 1, "200": 3, "202": 3, "429": 2, "500": 1}
    assert report["checkouts"] == {
        "started": 4,
        "final": 2,
        "final_by_status": {"FAILED": 1, "SUCCEEDED": 1},
        "rejected": 1,
        "timed_out": 1,
    }
    # and the run is out of bounds for its errors and its timeout, not for throttles at 20 % (the bound)
    assert report["ok"] is False
    assert [b.split(" ")[0] for b in report["breaches"]] == ["error", "1"]
    assert "within 60s" in report["breaches"][1]


def test_a_run_that_started_nothing_is_not_a_pass() -> None:
    report = loadtest.summarise({"checkouts": [], "requests": {}}, SETTINGS, BOUNDS)
    assert report["ok"] is False and report["breaches"] == ["no checkout was started"]
    assert report["post_to_final"]["p50_ms"] is None


def test_the_declined_share_is_spread_evenly_and_exact() -> None:
    # loadswarm imports Locust (and gevent's patching) at the top: read its rule in a child
    code = "from payments.ops.loadswarm import declined; print(sum(declined(n, 0.1) for n in range(1000)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    if "No module named 'locust'" in done.stderr:
        pytest.skip("the loadtest extra (Locust) is not installed")
    assert done.stdout.strip() == "100", done.stderr


@pytest.mark.parametrize(
    ("api", "given", "expected"),
    [
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", None, "eu-west-1"),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", "us-east-2", "us-east-2"),
        ("http://127.0.0.1:8080", None, "us-east-1"),
    ],
)
def test_the_region_signed_for(api: str, given: str | None, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert loadtest.region_for(api, given) == expected


def test_a_custom_domain_without_a_region_asks_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(clikit.CliError, match="no AWS region") as raised:
        loadtest.region_for("https://pay.staging.example.com", None)
    assert "--region" in raised.value.todo


_WITHOUT_LOCUST = textwrap.dedent(
    """
    import importlib.abc, sys

    class RefuseLocust(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "locust" or name.startswith("locust."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, RefuseLocust())
    from payments.ops.cli import main

    sys.exit(main(["loadtest", "--api", "http://127.0.0.1:9", "--rate", "1", "--duration", "1"]))
    """
)


def test_without_locust_it_says_how_to_get_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_LOCUST], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == clikit.BROKEN, done.stderr
    assert done.stderr.strip() == (
        "payments loadtest: Locust is not installed; install it with pip install 'serverless-payments[loadtest]' "
        "(in a clone: make .venv/.installed)"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--rate", "0", "--duration", "10s"],
        ["--rate", "5", "--duration", "soon"],
        ["--rate", "5", "--duration", "10s", "--declined", "1.5"],
        ["--rate", "5", "--duration", "10s", "--orders", "0"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from payments.ops.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["loadtest", "--api", "http://127.0.0.1:9", *argv])
    assert exited.value.code == 2


def test_plain_http_to_another_host_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from payments.ops.cli import main

    assert main(["loadtest", "--api", "http://staging.example.com", "--rate", "1", "--duration", "1"]) == 2
    assert "plain http to another host" in capsys.readouterr().err


def test_a_stage_without_credentials_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from payments.ops.cli import main

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com/staging"
    assert main(["loadtest", "--api", api, "--rate", "1", "--duration", "1"]) == 2
    assert "no AWS credentials to sign the requests with; set AWS_PROFILE" in capsys.readouterr().err


_SIGN = textwrap.dedent(
    """
    import json
    from payments.ops.loadswarm import Settings, Signer

    settings = Settings(api="https://abc.execute-api.eu-west-1.amazonaws.com/staging", rate=1, duration=1, ramp=0,
                        orders=1, declined=0, final_timeout=1, poll_interval=1, pace=10, region="eu-west-1",
                        local_key=None)
    headers = Signer(settings).headers("POST", settings.api + "/v1/payments", b"{}",
                                       {"Content-Type": "application/json", "Idempotency-Key": "k1"})
    print(json.dumps(headers))
    """
)


def test_each_request_is_signed_for_execute_api_in_the_stage_region() -> None:
    # Given credentials in the environment (the default chain's first link)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="AKIDLOADTEST", AWS_SECRET_ACCESS_KEY="secret", AWS_CONFIG_FILE="/nonexistent")
    done = subprocess.run([sys.executable, "-c", _SIGN], capture_output=True, text=True, timeout=120, env=env)
    if "No module named 'locust'" in done.stderr:
        pytest.skip("the loadtest extra (Locust) is not installed")
    headers = json.loads(done.stdout)
    # Then the Authorization is SigV4 for execute-api in eu-west-1, over the key and the body's type
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDLOADTEST/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"content-type", "host", "idempotency-key", "x-amz-date"} <= set(signed)
    assert headers["Idempotency-Key"] == "k1" and headers["X-Amz-Date"]
