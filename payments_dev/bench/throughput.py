"""Local throughput of ``payments demo`` end to end, and where the time goes.

    .venv/bin/python -m payments_dev.bench.throughput [--checkouts 100] [--runs 2] [--no-profile]

Each run is a fresh process that starts a LocalRuntime and runs ``payments_dev.demo.run``
(the demo's scenario: good cards, declines, a flaky PSP, lost answers, replays) with
``--checkouts`` checkouts; the demo prints ``N checkouts/s end to end`` (submission to the
last workflow finished), which is parsed. Then one more run under py-spy
(``record --nonblocking --gil --format raw``: samples of the thread holding the GIL only,
i.e. Python CPU, not threads blocked in sockets; half the checkouts), aggregated here: the
share of samples per leaf function (self) and per layer (the first frame, from the leaf up,
that belongs to a known layer). The profiled run's rate is reported apart (py-spy slows it).

Each run is paired with a run of the **baseline**, alternately: the local runtime as it was
before its two speed-ups (``PAYMENTS_LOCAL_TRANSPORT=http``: this process's AWS calls go
over the socket to the moto server instead of to its WSGI application in-process;
``PAYMENTS_LOCAL_ASL_CACHE=off``: moto parses the ASL again for every execution).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from payments_dev.bench.common import OUT, PYTHON, ROOT, log, median

PY_SPY = Path(PYTHON).parent / "py-spy"
#: (layer, path fragment) in priority order: the first match from the leaf up names the layer
LAYERS = (
    ("moto: ASL parsing (ANTLR, per execution)", "moto/stepfunctions/parser/asl/antlr/"),
    ("moto: ASL parsing (ANTLR, per execution)", "moto/stepfunctions/parser/asl/parse/"),
    ("moto: ASL parsing (ANTLR, per execution)", "antlr4/"),
    ("moto: Step Functions interpreter", "moto/stepfunctions/"),
    ("moto: DynamoDB backend", "moto/dynamodb/"),
    ("moto: core (routing, responses)", "moto/"),
    ("our handlers (payments/, functions/)", "(payments/"),
    ("our handlers (payments/, functions/)", "(functions/"),
    ("powertools", "aws_lambda_powertools/"),
    ("pydantic", "pydantic"),
    ("botocore (client: serialise, sign, parse)", "botocore/"),
    ("urllib3 / http.client / socket (local HTTP)", "urllib3/"),
    ("werkzeug (local HTTP servers)", "werkzeug/"),
    ("urllib3 / http.client / socket (local HTTP)", "(http/"),
    ("urllib3 / http.client / socket (local HTTP)", "(socket"),
    ("json", "(json/"),
)


DEMO_TIMEOUT_S = 240.0  # the demo waits up to 600 s for stragglers by default; bound the suite


def child(checkouts: int) -> None:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from payments_dev import demo
    from payments_dev.local.runtime import LocalRuntime, free_port

    runtime = LocalRuntime(port=free_port(), aws_port=free_port(), quiet=True)
    runtime.start()
    buffer = io.StringIO()
    try:
        with redirect_stdout(buffer):
            code = demo.run(runtime.api_url, checkouts=checkouts, timeout=DEMO_TIMEOUT_S, output=None)
    finally:
        runtime.stop()
    text = buffer.getvalue()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"demo-output-{os.getpid()}.txt").write_text(text)
    unsettled = re.search(r"NOT SETTLED within \d+s: (\d+) checkouts", text)
    m = re.search(r"(\d+) checkouts in ([\d.]+)s wall time \(([\d.]+) checkouts/s", text)
    orders = re.search(r"(\d+) payment orders", text)
    print(
        json.dumps(
            {
                "checkouts": int(m.group(1)),
                "wall_s": float(m.group(2)),
                "checkouts_per_s": float(m.group(3)),
                "orders": int(orders.group(1)) if orders else None,
                "exit": code,
                "result": (re.findall(r"RESULT: .*", text) or ["?"])[-1],
                "unsettled": int(unsettled.group(1)) if unsettled else 0,
                "output": str(OUT / f"demo-output-{os.getpid()}.txt"),
            }
        )
    )


BASELINE_ENV = {"PAYMENTS_LOCAL_TRANSPORT": "http", "PAYMENTS_LOCAL_ASL_CACHE": "off"}


def one_run(checkouts: int, profile: Path | None = None, baseline: bool = False) -> dict[str, Any]:
    command = [PYTHON, "-m", "payments_dev.bench.throughput", "--child", "--checkouts", str(checkouts)]
    if profile is not None:
        command = [
            str(PY_SPY),
            "record",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            "50",
            "--gil",
            "--threads",
            "-o",
            str(profile),
            "--",
            *command,
        ]
    env = {k: v for k, v in os.environ.items() if k not in BASELINE_ENV}
    if baseline:
        env.update(BASELINE_ENV)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.strip().splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"throughput run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def aggregate(raw: Path, top: int = 8) -> dict[str, Any]:
    leaf: Counter[str] = Counter()
    layer: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith("thread (")]
        if not frames:
            continue
        total += n
        leaf[re.sub(r":\d+\)$", ")", frames[-1])] += n
        for frame in reversed(frames):
            found = next((name for name, fragment in LAYERS if fragment in frame), None)
            if found:
                layer[found] += n
                break
        else:
            layer["other (stdlib, threading, ...)"] += n
    return {
        "samples": total,
        "layers": [(k, v / total) for k, v in layer.most_common()],
        "leaf": [(k, v / total) for k, v in leaf.most_common(top)],
    }


def run(checkouts: int = 100, runs: int = 2, profile: bool = True) -> dict[str, Any]:
    results, baselines = [], []
    for i in range(runs):  # alternately: the runtime as it is, then the baseline
        results.append(one_run(checkouts))
        baselines.append(one_run(checkouts, baseline=True))
        log(
            f"  throughput: run {i + 1}/{runs}: {results[-1]['checkouts_per_s']} checkouts/s (baseline {baselines[-1]['checkouts_per_s']})"
        )
    # a run whose workflows did not all finish measured the timeout, not the throughput
    settled = [r for r in results if not r.get("unsettled")]
    out: dict[str, Any] = {
        "checkouts": checkouts,
        "orders": results[0]["orders"],
        "runs": [r["checkouts_per_s"] for r in results],
        "stalled_runs": [{"unsettled": r["unsettled"], "output": r["output"]} for r in results if r.get("unsettled")],
        "checkouts_per_s": median([r["checkouts_per_s"] for r in settled]) if settled else float("nan"),
        "results": [r["result"] for r in results],
        "baseline_runs": [r["checkouts_per_s"] for r in baselines],
        "baseline_checkouts_per_s": median([r["checkouts_per_s"] for r in baselines if not r.get("unsettled")]),
        "baseline_results": [r["result"] for r in baselines],
    }
    if profile and PY_SPY.exists():
        raw = OUT / "demo-profile.txt"
        OUT.mkdir(parents=True, exist_ok=True)
        try:
            profiled = one_run(max(20, checkouts // 2), raw)  # half size: py-spy slows it
            out["profiled_checkouts_per_s"] = profiled["checkouts_per_s"]
            out["profile"] = aggregate(raw)
        except RuntimeError as err:  # py-spy needs ptrace; say so rather than fail the suite
            out["profile_error"] = str(err)[-500:]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="payments demo throughput and profile")
    parser.add_argument("--checkouts", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a tiny run: 4 checkouts, once, no profile")
    args = parser.parse_args(argv)
    if args.child:
        child(args.checkouts)
        return 0
    if args.quick:
        args.checkouts, args.runs, args.no_profile = 4, 1, True
    print(json.dumps(run(args.checkouts, args.runs, not args.no_profile), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
