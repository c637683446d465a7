"""``payments loadtest --api URL --rate R --duration D``: checkouts per second against a stage, measured.

Simulated shoppers (Locust, headless, :mod:`payments.ops.loadswarm`) start ``R`` checkouts per second for
``D`` seconds, the rate ramped from 0 over ``--ramp`` seconds; each is polled until its final status (at
most ``--final-timeout``). The report: the time from POST to final status (p50, p95, p99, max), HTTP
statuses by method, error rate (throttles, 429, counted apart), timeouts, and the checkouts per second
achieved against those asked. Exit 0 when within the bounds (``--max-error-rate``,
``--max-throttle-rate``, ``--max-timeouts``), 1 when not, 2 when the run could not be made.

Locust is an optional extra: ``pip install 'serverless-payments[loadtest]'``.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import json
import math
import re
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from payments.ops import clikit

INSTALL_HINT = "install it with pip install 'serverless-payments[loadtest]' (in a clone: make .venv/.installed)"
#: an API Gateway URL names its region: https://abc123.execute-api.eu-west-1.amazonaws.com/prod
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
#: each simulated shopper starts a checkout every PACE seconds (the shoppers are rate x PACE)
PACE_S = 10.0


def is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return host == "localhost"
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def region_for(api: str, given: str | None) -> str:
    """``--region``, else the region in an API Gateway host, else the default chain's; us-east-1 on loopback."""
    if given:
        return given
    host = urlsplit(api).hostname or ""
    match = _REGION_IN_HOST.search(host)
    if match:
        return match.group(1)
    import botocore.session

    configured = botocore.session.get_session().get_config_variable("region")
    if configured:
        return str(configured)
    if is_loopback(host):
        return "us-east-1"
    raise clikit.CliError(f"no AWS region for {api}", "give --region, or set AWS_REGION or AWS_PROFILE")


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def distribution(seconds: list[float]) -> dict[str, Any]:
    """count, p50, p95, p99 and max in milliseconds of ``seconds`` (None each when there is none)."""
    ordered = sorted(seconds)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) * 1000),
        "p95_ms": round(percentile(ordered, 0.95) * 1000),
        "p99_ms": round(percentile(ordered, 0.99) * 1000),
        "max_ms": round(ordered[-1] * 1000),
    }


def summarise(observed: dict[str, Any], settings: dict[str, Any], bounds: dict[str, float]) -> dict[str, Any]:
    """The report of one run from what :mod:`payments.ops.loadswarm` observed."""
    checkouts: list[dict[str, Any]] = observed["checkouts"]
    requests: dict[str, dict[str, int]] = observed["requests"]
    finals = [c for c in checkouts if c.get("outcome") == "final"]
    timeouts = sum(1 for c in checkouts if c.get("outcome") == "timeout")
    rejected = sum(1 for c in checkouts if c.get("outcome") == "rejected")
    seconds = sorted(float(c["seconds"]) for c in finals)
    statuses: dict[str, int] = {}
    for c in finals:
        statuses[c["status"]] = statuses.get(c["status"], 0) + 1
    by_status: dict[str, int] = {}
    for counts in requests.values():
        for status, count in counts.items():
            by_status[status] = by_status.get(status, 0) + count
    total = sum(by_status.values())
    throttles = by_status.get("429", 0)
    errors = sum(n for s, n in by_status.items() if s != "429" and not 200 <= int(s) < 300)
    latency = distribution(seconds)
    error_rate = errors / total if total else 0.0
    throttle_rate = throttles / total if total else 0.0
    breaches = []
    if not checkouts:
        breaches.append("no checkout was started")
    if error_rate > bounds["max_error_rate"]:
        breaches.append(f"error rate {error_rate:.2%} above {bounds['max_error_rate']:.2%}")
    if throttle_rate > bounds["max_throttle_rate"]:
        breaches.append(f"throttle rate {throttle_rate:.2%} above {bounds['max_throttle_rate']:.2%}")
    if timeouts > bounds["max_timeouts"]:
        breaches.append(f"{timeouts} checkout(s) without a final status within {settings['final_timeout']:g}s")
    return {
        "api": settings["api"],
        "asked_checkouts_per_s": settings["rate"],
        "achieved_checkouts_per_s": round(len(checkouts) / settings["duration"], 2),
        "duration_s": settings["duration"],
        "ramp_s": settings["ramp"],
        "checkouts": {
            "started": len(checkouts),
            "final": len(finals),
            "final_by_status": dict(sorted(statuses.items())),
            "rejected": rejected,
            "timed_out": timeouts,
        },
        "post_to_final": latency,
        "requests": {
            "total": total,
            "by_method": {m: dict(sorted(c.items())) for m, c in sorted(requests.items())},
            "by_status": dict(sorted(by_status.items())),
            "response_ms": {m: distribution(t) for m, t in sorted(observed.get("seconds", {}).items())},
            "errors": errors,
            "error_rate": round(error_rate, 4),
            "throttles": throttles,
            "throttle_rate": round(throttle_rate, 4),
        },
        "bounds": bounds,
        "ok": not breaches,
        "breaches": breaches,
    }


def _tables(report: dict[str, Any]) -> list[clikit.Table]:
    c, lat, req = report["checkouts"], report["post_to_final"], report["requests"]
    figures = [
        ("checkouts/s asked", report["asked_checkouts_per_s"]),
        ("checkouts/s achieved", report["achieved_checkouts_per_s"]),
        ("checkouts started", c["started"]),
        ("reached a final status", c["final"]),
        *((f"  {status}", n) for status, n in c["final_by_status"].items()),
        ("POST refused", c["rejected"]),
        ("timed out", c["timed_out"]),
        ("POST to final p50 ms", lat["p50_ms"]),
        ("POST to final p95 ms", lat["p95_ms"]),
        ("POST to final p99 ms", lat["p99_ms"]),
        ("POST to final max ms", lat["max_ms"]),
        *(
            (f"{method} answered p50/p95/p99 ms", f"{d['p50_ms']}/{d['p95_ms']}/{d['p99_ms']}")
            for method, d in req["response_ms"].items()
        ),
        ("requests", req["total"]),
        *((f"  HTTP {status}" if status != "0" else "  no answer", n) for status, n in req["by_status"].items()),
        ("error rate", f"{req['error_rate']:.2%}"),
        ("throttle rate (429)", f"{req['throttle_rate']:.2%}"),
    ]
    verdict = "within bounds" if report["ok"] else "OUT OF BOUNDS: " + "; ".join(report["breaches"])
    return [clikit.Table(("FIGURE", "VALUE"), figures, notes=[verdict], right=("VALUE",))]


def _loadtest(args: argparse.Namespace) -> int:
    try:
        found = importlib.util.find_spec("locust")
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise clikit.CliError("Locust is not installed", INSTALL_HINT)
    api = args.api.rstrip("/")
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise clikit.CliError(f"--api {args.api!r} is not an http(s) URL", "give the stage's API URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise clikit.CliError(f"--api {args.api!r} is plain http to another host", "a stage's API is https")
    from payments.kernel.aws import LOCAL_KEY

    loopback = is_loopback(parts.hostname)
    if not loopback:
        import botocore.session

        if botocore.session.get_session().get_credentials() is None:
            raise clikit.CliError("no AWS credentials to sign the requests with", "set AWS_PROFILE (docs/loadtest.md)")

    settings = {
        "api": api,
        "rate": args.rate,
        "duration": args.duration.total_seconds(),
        "ramp": args.ramp.total_seconds(),
        "orders": args.orders,
        "declined": args.declined,
        "final_timeout": args.final_timeout.total_seconds(),
        "poll_interval": args.poll_interval,
        "pace": PACE_S,
        "region": region_for(api, args.region),
        "local_key": LOCAL_KEY if loopback else None,
    }
    bounds = {
        "max_error_rate": args.max_error_rate,
        "max_throttle_rate": args.max_throttle_rate,
        "max_timeouts": args.max_timeouts,
    }
    limit = settings["duration"] + settings["final_timeout"] + 120
    try:
        child = subprocess.run(  # this interpreter and this package's module
            [sys.executable, "-m", "payments.ops.loadswarm"],
            input=json.dumps(settings),
            capture_output=True,
            text=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise clikit.CliError(f"the load generator did not finish within {limit:g}s", "run with --debug") from None
    if child.returncode != 0:
        detail = (child.stderr.strip().splitlines() or ["no message"])[-1]
        raise clikit.CliError(f"the load generator failed ({detail})", "run with --debug")
    if args.debug and child.stderr:
        sys.stderr.write(child.stderr)
    report = summarise(json.loads(child.stdout), settings, bounds)
    clikit.emit(args, report, _tables(report))
    return clikit.OK if report["ok"] else clikit.FINDINGS


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1: {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a share between 0 and 1: {text}")
    return value


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    loadtest = commands.add_parser(
        "loadtest",
        help="checkouts per second against a stage's API (Locust), with the time to final status "
        "(needs the loadtest extra; never against production)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    loadtest.add_argument("--api", required=True, metavar="URL", help="the stage's API URL (the base before /v1)")
    loadtest.add_argument("--rate", required=True, type=_positive, metavar="R", help="checkouts started per second")
    loadtest.add_argument(
        "--duration", required=True, type=clikit.duration, metavar="D", help="how long checkouts start (90s, 15m)"
    )
    loadtest.add_argument(
        "--ramp",
        type=clikit.duration,
        default=clikit.duration("0"),
        metavar="S",
        help=f"the rate grows to R over S, in steps of {PACE_S:g}s (default 0: full rate at once; a ramp of "
        f"{PACE_S:g}s or less is the full rate at once too)",
    )
    loadtest.add_argument(
        "--orders", type=_count, default=2, metavar="N", help="payment orders per checkout (default 2)"
    )
    loadtest.add_argument(
        "--declined",
        type=_share,
        default=0.1,
        metavar="SHARE",
        help="share of checkouts paid with the declined test token tok_chargeDeclined (default 0.1)",
    )
    loadtest.add_argument(
        "--final-timeout",
        type=clikit.duration,
        default=clikit.duration("60s"),
        metavar="D",
        help="a checkout without a final status this long after its POST is a timeout (default 60s)",
    )
    loadtest.add_argument(
        "--poll-interval", type=_positive, default=0.5, metavar="SECONDS", help="between two GETs (default 0.5)"
    )
    loadtest.add_argument(
        "--region", default=None, help="the region to sign for (default: the API's host, else AWS_REGION/profile)"
    )
    loadtest.add_argument(
        "--max-error-rate",
        type=_share,
        default=0.01,
        metavar="SHARE",
        help="exit 1 above this share of requests answered with an error (not 2xx, not 429) or not at all "
        "(default 0.01)",
    )
    loadtest.add_argument(
        "--max-throttle-rate",
        type=_share,
        default=0.01,
        metavar="SHARE",
        help="exit 1 above this share of requests throttled (429) (default 0.01)",
    )
    loadtest.add_argument(
        "--max-timeouts",
        type=int,
        default=0,
        metavar="N",
        help="exit 1 when more checkouts than this reach no final status in time (default 0)",
    )
    clikit.add_output_option(loadtest)
    loadtest.set_defaults(func=_loadtest)
