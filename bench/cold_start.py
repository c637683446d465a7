"""Cold start of every Lambda handler module against the floor (``import boto3`` + one client).

    .venv/bin/python -m bench.cold_start [--repeats 5]

Each sample is a fresh interpreter (a subprocess) that times, from inside, the import of
one handler module (its module-level init) plus the creation of the DynamoDB client its
first invocation creates (``payments.aws.client("dynamodb")``), and reports its CPU time,
wall time and peak RSS (``ru_maxrss``, interpreter included). The floor is the same
interpreter doing ``import boto3; boto3.client("dynamodb")``. Floor and functions are run
alternately, round after round (the order rotates each round), so machine noise hits both.

The environment is the deployed one as far as it matters to import (``deployed_env``):
``LAMBDA_TASK_ROOT`` is set, so Powertools' Tracer is *enabled* (it imports the X-Ray SDK
and patches botocore & co at import, as in Lambda; the X-Ray SDK is installed locally);
``POWERTOOLS_TRACE_DISABLED`` / ``POWERTOOLS_METRICS_DISABLED`` are NOT set; fake
credentials; ``AWS_DEFAULT_REGION``/``AWS_REGION`` = us-east-1; the table names.

Two variants of each function:

* ``pyc``: third-party and first-party modules load from cached bytecode (``__pycache__``);
* ``asset``: the asset's own packages (Powertools, pydantic, X-Ray SDK, jmespath, wrapt,
  typing_*; ``payments``, ``functions``) are loaded from a copy *without* ``__pycache__``
  and with ``-B``, i.e. compiled from source at every cold start, which is what happens
  in Lambda with the asset as bundled today (``pip install --no-compile`` and ``*.pyc``
  ignored; ``/var/task`` is read-only so Python cannot cache what it compiles). boto3 and
  botocore come from the Lambda runtime, which ships them compiled, so they keep ``.pyc``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

from bench.common import OUT, PYTHON, ROOT, log, median

FUNCTIONS = ("payment", "executor", "wallet", "ledger", "reconcile", "psp")
#: top-level modules of the deployed asset besides boto3/botocore (infra/bundling.py + their deps)
ASSET_MODULES = (
    "aws_lambda_powertools", "pydantic", "pydantic_core", "aws_xray_sdk", "wrapt", "jmespath",
    "typing_extensions", "typing_inspection", "annotated_types", "mt940", "bai2",
)  # fmt: skip
FIRST_PARTY = ("payments", "functions")
MEMORY_MB = {"payment": 512, "executor": 256, "wallet": 256, "ledger": 256, "reconcile": 1024, "psp": 512}

CHILD = """
import json, resource, time
t0 = time.perf_counter(); c0 = time.process_time()
{body}
c1 = time.process_time(); t1 = time.perf_counter()
print(json.dumps({{"wall": t1 - t0, "cpu": c1 - c0, "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
FLOOR = 'import boto3\nboto3.client("dynamodb")'
IMPORT_ONLY = "import functions.{name}.handler"
IMPORT_AND_CLIENT = 'import functions.{name}.handler\nfrom payments import aws\naws.client("dynamodb")'


def deployed_env(name: str = "bench") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_", "MOTO_", "PYTHON"))}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": f"payments-dev-{name}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB.get(name, 256)),
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "POWERTOOLS_SERVICE_NAME": name,
            "POWERTOOLS_METRICS_NAMESPACE": "Payments",
            "LOG_LEVEL": "INFO",
            "PAYMENTS_TABLE": "payments",
            "WALLETS_TABLE": "wallets",
            "LEDGER_TABLE": "ledger",
            "IDEMPOTENCY_TABLE": "idempotency",
            "PSP_TABLE": "psp-simulator",
            "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:payments-dev-payment",
            "PYTHONHASHSEED": "0",
        }
    )
    return env


def source_tree() -> Path:
    """A copy of the asset's packages without bytecode (rebuilt every run: it is cheap)."""
    target = OUT / "coldstart-src"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")
    for name in ASSET_MODULES:
        spec = importlib_util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        if spec.submodule_search_locations:
            shutil.copytree(origin.parent, target / name, ignore=ignore)
        else:
            shutil.copy2(origin, target / origin.name)
    for name in FIRST_PARTY:
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    return target


def sample(body: str, env: dict[str, str], source: Path | None = None, importtime: bool = False) -> dict[str, Any]:
    args = [PYTHON]
    env = dict(env)
    if source is not None:
        args.append("-B")
        env["PYTHONPATH"] = str(source)
    if importtime:
        args += ["-X", "importtime"]
    OUT.mkdir(parents=True, exist_ok=True)
    # cwd outside the repository: first-party packages resolve through the install (or the copy)
    done = subprocess.run([*args, "-c", CHILD.format(body=body)], env=env, cwd=OUT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if importtime:
        result["importtime"] = done.stderr
    return result


def top_packages(importtime: str, top: int = 4) -> list[tuple[str, float]]:
    """Self import time (ms) summed per top-level package, largest first."""
    totals: dict[str, float] = defaultdict(float)
    for line in importtime.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            totals[m.group(4).split(".")[0]] += int(m.group(1)) / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def run(repeats: int = 5, variants: tuple[str, ...] = ("pyc", "asset")) -> dict[str, Any]:
    source = source_tree() if "asset" in variants else None
    targets: list[tuple[str, str, str, Path | None]] = [("floor", "pyc", FLOOR, None)]
    for name in FUNCTIONS:
        targets.append((name, "import", IMPORT_ONLY.format(name=name), None))
        if "pyc" in variants:
            targets.append((name, "pyc", IMPORT_AND_CLIENT.format(name=name), None))
        if "asset" in variants:
            targets.append((name, "asset", IMPORT_AND_CLIENT.format(name=name), source))
    samples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for round_ in range(repeats):
        shift = round_ % len(targets)
        for name, variant, body, src in targets[shift:] + targets[:shift]:  # rotate the order each round
            samples[(name, variant)].append(sample(body, deployed_env(name if name != "floor" else "bench"), src))
        log(f"  cold start: round {round_ + 1}/{repeats} done")
    result: dict[str, Any] = {"repeats": repeats, "targets": {}}
    for (name, variant), runs in samples.items():
        result["targets"][f"{name}/{variant}"] = {
            "cpu_ms": median([r["cpu"] * 1000 for r in runs]),
            "wall_ms": median([r["wall"] * 1000 for r in runs]),
            "maxrss_mib": median([r["maxrss_mib"] for r in runs]),
            "cpu_ms_runs": [round(r["cpu"] * 1000, 1) for r in runs],
        }
    result["importtime"] = {}
    for name in FUNCTIONS:
        # attribution only (one sample, noisy): self import time per top-level package
        sampled = sample(IMPORT_AND_CLIENT.format(name=name), deployed_env(name), importtime=True)
        result["importtime"][name] = top_packages(sampled["importtime"])
    return result


def asset_size() -> dict[str, Any]:
    """Size of the deployed shared asset: the one referenced by cdk.out/Payments-dev.assets.json."""
    cdk_out = ROOT / "cdk.out"
    assets = cdk_out / "Payments-dev.assets.json"
    path: Path | None = None
    if assets.exists():
        found = re.findall(r"asset\.[0-9a-f]{64}", assets.read_text())
        candidates = [cdk_out / f for f in dict.fromkeys(found) if (cdk_out / f).is_dir()]
        path = candidates[0] if candidates else None
    if path is None:
        dirs = sorted(cdk_out.glob("asset.*"), key=lambda p: p.stat().st_mtime) if cdk_out.exists() else []
        path = dirs[-1] if dirs else None
    if path is None:
        return {"source": "missing: run `PATH=.venv/bin:$PATH npx cdk synth -q -c stage=dev`"}
    sizes: dict[str, int] = defaultdict(int)
    total = files = 0
    for file in path.rglob("*"):
        if file.is_file():
            size = file.stat().st_size
            total += size
            files += 1
            sizes[file.relative_to(path).parts[0].split("-")[0].split(".dist")[0]] += size
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    pyc = sum(1 for _ in path.rglob("*.pyc"))
    return {
        "source": str(path.relative_to(ROOT)),
        "bytes": total,
        "files": files,
        "pyc_files": pyc,
        "largest": [(k, round(v / 2**20, 2)) for k, v in top],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Cold start of every handler module vs import boto3 + one client")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = run(args.repeats)
    result["asset"] = asset_size()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
