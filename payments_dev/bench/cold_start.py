"""Cold start of every Lambda handler module against the floor (``import boto3`` + one client).

    .venv/bin/python -m payments_dev.bench.cold_start [--repeats 5]

Each sample is a fresh interpreter (a subprocess) that times, from inside, the import of
one handler module (its module-level init) plus the creation of the DynamoDB client its
first invocation creates (``payments.kernel.aws.client("dynamodb")``), and reports its CPU time,
wall time and peak RSS (``VmHWM``, interpreter included). The floor is the same
interpreter doing ``import boto3; boto3.client("dynamodb")``. Floor and functions are run
alternately, round after round (the order rotates each round), so machine noise hits both.

Two more floors, in the same rounds, say how much of a function's cold start is ours: ``libraries``
is the floor plus the libraries every function uses and nothing of ours (Powertools' Logger, Metrics
and Tracer patching botocore, one pydantic model built and validated); ``libraries-api`` adds what the
checkout API uses (Powertools' REST resolver with validation, one route, the idempotency store). A
function's time above its library floor is our code; the library floor above the floor is the price of
those libraries, which no change of ours takes off.

Where it runs (``lambda_layout``): Lambda's code layout rebuilt in ``payments_dev/bench/out/lambda/``
with a Python of the runtime's version (3.13, found as the bundling finds it): the asset
built by ``infra.bundling.LocalPythonBundling`` for this machine's architecture, first on
``sys.path`` like ``/var/task``, then boto3 & co compiled, like the runtime's
``/var/runtime``; children run with ``-I``. Without a Python 3.13 it falls back to this
interpreter and the venv (and the report says so).

The environment is the deployed one as far as it matters to import (``deployed_env``):
``LAMBDA_TASK_ROOT`` is set, so Powertools' Tracer is *enabled* (it imports the X-Ray SDK
and patches botocore at import, as in Lambda); ``POWERTOOLS_TRACE_DISABLED`` /
``POWERTOOLS_METRICS_DISABLED`` are NOT set; fake credentials;
``AWS_DEFAULT_REGION``/``AWS_REGION`` = us-east-1; the table names.

Variants of each function:

* ``pyc``: as deployed: the asset with the bytecode the bundling compiles into it;
* ``import``: the same, the handler import alone (no client);
* ``asset``: the asset without ``__pycache__``, run with ``-B``: compiled from source at
  every cold start, which is what Lambda did before the bundling shipped bytecode
  (``/var/task`` is read-only so Python cannot cache what it compiles). boto3 and
  botocore come from the runtime, which ships them compiled, so they keep ``.pyc``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

from functions import registry
from infra.bundling import (
    DEPENDENCIES,
    DEPENDENCIES_WITHOUT_THEIRS,
    LocalPythonBundling,
    bytecode_python,
    compile_bytecode,
    pinned,
)
from infra.stage import COLD_START_FUNCTIONS
from payments.ops import capacity
from payments_dev.bench.common import OUT, PYTHON, ROOT, log, median

#: the pay-in path and reconciliation (the functions whose cold start the bench has always measured)
FUNCTIONS = tuple(
    fn.name
    for fn in (registry.PAYMENT, registry.EXECUTOR, registry.WALLET, registry.LEDGER, registry.RECONCILE, registry.PSP)
)
#: top-level modules of the deployed asset besides boto3/botocore (infra/bundling.py + their deps)
ASSET_MODULES = (
    "aws_lambda_powertools", "pydantic", "pydantic_core", "aws_xray_sdk", "wrapt", "jmespath",
    "typing_extensions", "typing_inspection", "annotated_types", "mt940", "bai2",
)  # fmt: skip
FIRST_PARTY = ("payments", "functions")
MEMORY_MB = {fn.name: fn.memory_mb for fn in registry.FUNCTIONS}

CHILD = """
import json, resource, time
t0 = time.perf_counter(); c0 = time.process_time()
{body}
c1 = time.process_time(); t1 = time.perf_counter()
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork+exec, so it would show the parent's peak
hwm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")]
peak_kib = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"wall": t1 - t0, "cpu": c1 - c0, "maxrss_mib": peak_kib / 1024}}))
"""
FLOOR = 'import boto3\nboto3.client("dynamodb")'
#: the floor plus what every function uses by the house rules, and nothing of ours: Powertools' Logger, Metrics and
#: Tracer (patching botocore, as ``payments.kernel.observability`` does) and a pydantic model built and validated
LIBRARIES = """import boto3
from decimal import Decimal
from aws_lambda_powertools import Logger, Metrics, Tracer
from pydantic import BaseModel
Logger(); Metrics(); Tracer(patch_modules=("botocore",))
class Order(BaseModel):
    payment_order_id: str
    amount: Decimal
Order.model_validate({"payment_order_id": "po-1", "amount": "1.00"})
client = boto3.client("dynamodb")"""
#: and what the checkout API adds (the payment function): the REST resolver with validation and OpenAPI, one
#: route taking that model, and the idempotency store on the same client
API_LIBRARIES = (
    LIBRARIES
    + """
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
app = APIGatewayRestResolver(enable_validation=True)
@app.post("/orders")
def create(order: Order) -> dict:
    return {}
DynamoDBPersistenceLayer(table_name="idempotency", boto3_client=client)"""
)
#: the library floor each function is compared with (the others: LIBRARIES)
API_FUNCTIONS = ("payment",)


def library_floor(name: str) -> str:
    """The target of the libraries ``name`` stands on (``libraries`` or ``libraries-api``)."""
    return "libraries-api" if name in API_FUNCTIONS else "libraries"


IMPORT_ONLY = "import functions.{name}.handler"
IMPORT_AND_CLIENT = 'import functions.{name}.handler\nfrom payments.kernel import aws\naws.client("dynamodb")'


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


#: packages of the Lambda Python runtime itself (``/var/runtime``): boto3 and what it needs
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
LAMBDA = OUT / "lambda"
#: prepended to the child in the Lambda layout: /var/task first, then /var/runtime, as in Lambda
LAMBDA_PATH = "import sys; sys.path[:0] = [{task!r}, {runtime!r}]\n"


@dataclass(frozen=True)
class LambdaLayout:
    """The sandbox's code layout reproduced here, with an interpreter of the runtime's version."""

    python: str
    task: Path  # the asset exactly as `infra/bundling.py` builds it, for this machine's architecture
    task_sources: Path  # the same without bytecode: what was shipped before bytecode was compiled in
    runtime: Path  # boto3 & co, compiled, as the runtime provides them


def lambda_layout() -> LambdaLayout | None:
    """Build the layout (the asset is rebuilt every run from pip's cache: ~10 s), or None without Python 3.13."""
    python = bytecode_python()
    if python is None:
        return None
    machine_platform = f"manylinux2014_{platform.machine()}"
    task, task_sources, runtime = LAMBDA / "task", LAMBDA / "task-sources", LAMBDA / "runtime"
    for path in (task, task_sources):
        shutil.rmtree(path, ignore_errors=True)
    bundling = LocalPythonBundling(
        pinned(DEPENDENCIES), pinned(DEPENDENCIES_WITHOUT_THEIRS), platforms=(machine_platform,), python=None
    )
    bundling.try_bundle(str(task_sources))
    shutil.copytree(task_sources, task)
    compile_bytecode(python, task)
    wanted = pinned(RUNTIME_PACKAGES)
    marker = runtime / ".installed"
    if not marker.exists() or marker.read_text() != "\n".join(wanted):
        shutil.rmtree(runtime, ignore_errors=True)
        LocalPythonBundling(wanted, (), platforms=(machine_platform,), python=None)._pip_install(runtime, wanted)
        compile_bytecode(python, runtime)
        marker.write_text("\n".join(wanted))
    return LambdaLayout(python, task, task_sources, runtime)


def sample(
    body: str,
    env: dict[str, str],
    source: Path | None = None,
    importtime: bool = False,
    layout: LambdaLayout | None = None,
    sources_only: bool = False,
) -> dict[str, Any]:
    args = [PYTHON]
    env = dict(env)
    if layout is not None:
        task = layout.task_sources if sources_only else layout.task
        args = [layout.python, "-I"] + (["-B"] if sources_only else [])
        env["LAMBDA_TASK_ROOT"] = str(task)
        body = LAMBDA_PATH.format(task=str(task), runtime=str(layout.runtime)) + body
        if importtime:
            args += ["-X", "importtime"]
        return _child(args, body, env, importtime)
    if source is not None:
        args.append("-B")
        env["PYTHONPATH"] = str(source)
    if importtime:
        args += ["-X", "importtime"]
    return _child(args, body, env, importtime)


def _child(args: list[str], body: str, env: dict[str, str], importtime: bool) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    # cwd outside the repository: first-party packages resolve through the install (or the copy)
    done = subprocess.run(
        [*args, "-c", CHILD.format(body=body)], env=env, cwd=OUT, capture_output=True, text=True, check=False
    )
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


def run(repeats: int = 5, functions: tuple[str, ...] = FUNCTIONS, lambda_python: bool = True) -> dict[str, Any]:
    """Lambda layout (Python 3.13) when available: floor, each function as shipped (bytecode) and
    as sources only; otherwise (or ``lambda_python=False``) this interpreter with the venv's bytecode
    and a copy without it."""
    layout = lambda_layout() if lambda_python else None
    if layout is None:
        log("  cold start: no Python 3.13 here; measuring with this interpreter (see the notes)")
    source = source_tree() if layout is None else None
    # (name, variant, body, source copy, sources_only)
    targets: list[tuple[str, str, str, Path | None, bool]] = [
        ("floor", "pyc", FLOOR, None, False),
        ("libraries", "pyc", LIBRARIES, None, False),
        ("libraries-api", "pyc", API_LIBRARIES, None, False),
    ]
    for name in functions:
        targets.append((name, "import", IMPORT_ONLY.format(name=name), None, False))
        targets.append((name, "pyc", IMPORT_AND_CLIENT.format(name=name), None, False))
        targets.append((name, "asset", IMPORT_AND_CLIENT.format(name=name), source, True))
    samples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for round_ in range(repeats):
        shift = round_ % len(targets)
        for name, variant, body, src, sources_only in targets[shift:] + targets[:shift]:  # rotate the order each round
            env = deployed_env(name if name in FUNCTIONS else "bench")
            samples[(name, variant)].append(sample(body, env, src, layout=layout, sources_only=sources_only))
        log(f"  cold start: round {round_ + 1}/{repeats} done")
    result: dict[str, Any] = {"repeats": repeats, "targets": {}, "layout": None}
    if layout is not None:
        result["layout"] = {
            "python": layout.python,
            "task": str(layout.task.relative_to(ROOT)),
            "runtime": str(layout.runtime.relative_to(ROOT)),
        }
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
        sampled = sample(IMPORT_AND_CLIENT.format(name=name), deployed_env(name), importtime=True, layout=layout)
        result["importtime"][name] = top_packages(sampled["importtime"])
    result["options"] = options(result)
    return result


#: Lambda's prices for taking a cold start off the wait, us-east-1, USD, arm64 (https://aws.amazon.com/lambda/pricing/,
#: "Provisioned Concurrency" and "SnapStart": Python's snapshots are billed, Java's are not). Recalled, not fetched,
#: like docs/prices-us-east-1.json: re-check before quoting them.
OPTION_PRICES = {
    "provisioned_gb_s": 0.0000033334,  # an environment kept initialised, per GB-second
    "provisioned_duration_gb_s": 0.0000077778,  # duration on a provisioned environment (on demand: 0.0000133334)
    "snapstart_cache_gb_s": 0.0000015046,  # a published version's cached snapshot, per GB-second (3 hours at least)
    "snapstart_restore_gb": 0.0001397998,  # each environment resumed from the snapshot, per GB
}
#: Lambda gives one full vCPU at 1,769 MB and a proportional share below (a 256 MB function: 0.14 vCPU)
FULL_VCPU_MB = 1769
HOUR_S, MONTH_HOURS = 3600, 730


def options(result: dict[str, Any], target: float = capacity.PROD_TARGET_CHECKOUTS_PER_S) -> dict[str, Any]:
    """Provisioned concurrency and SnapStart for the functions on a shopper's wait at ``target`` checkouts/s: what
    each costs against the wait a cold start adds (this run's CPU of import + first client, at a full vCPU and at
    the function's share of one: Lambda's init runs somewhere between the two)."""
    environments = capacity.function_concurrency_needed(target)
    gb = {name: MEMORY_MB[name] / 1024 for name in COLD_START_FUNCTIONS}
    held_gb = sum(environments[name] * gb[name] for name in COLD_START_FUNCTIONS)
    functions = {}
    for name in COLD_START_FUNCTIONS:
        cpu_ms = result["targets"].get(f"{name}/pyc", {}).get("cpu_ms")
        functions[name] = {
            "memory_mb": MEMORY_MB[name],
            "environments_at_target": environments[name],
            "init_cpu_ms": cpu_ms,
            "init_ms_at_memory_share": None if cpu_ms is None else cpu_ms * max(1.0, FULL_VCPU_MB / MEMORY_MB[name]),
        }
    return {
        "target_checkouts_per_s": target,
        "functions": functions,
        "prices": OPTION_PRICES,
        # every environment the target holds, kept initialised
        "provisioned_usd_per_hour": held_gb * HOUR_S * OPTION_PRICES["provisioned_gb_s"],
        "provisioned_usd_per_month": held_gb * HOUR_S * MONTH_HOURS * OPTION_PRICES["provisioned_gb_s"],
        # one live version of each function cached all month, and every environment of a ramp to the target restored
        "snapstart_cache_usd_per_month": sum(gb.values())
        * HOUR_S
        * MONTH_HOURS
        * OPTION_PRICES["snapstart_cache_gb_s"],
        "snapstart_restores_usd_per_ramp": held_gb * OPTION_PRICES["snapstart_restore_gb"],
    }


def options_table(o: dict[str, Any]) -> str:
    """The table of docs/capacity.md, "Cold starts"."""
    rows = [
        "| function | memory | environments at the target | cold start: import + first client, CPU at 1 vCPU "
        "/ at its memory's share | provisioned, per hour held | SnapStart: snapshot per month / restores of a ramp |",
        "|---|---|---|---|---|---|",
    ]
    p = o["prices"]
    for name, f in o["functions"].items():
        gb = f["memory_mb"] / 1024
        cpu = (
            "not measured"
            if f["init_cpu_ms"] is None
            else f"{f['init_cpu_ms']:,.0f} ms / {f['init_ms_at_memory_share']:,.0f} ms"
        )
        rows.append(
            f"| {name} | {f['memory_mb']} MB | {f['environments_at_target']:,} | {cpu} "
            f"| USD {f['environments_at_target'] * gb * HOUR_S * p['provisioned_gb_s']:,.2f} "
            f"| USD {gb * HOUR_S * MONTH_HOURS * p['snapstart_cache_gb_s']:,.2f} "
            f"/ USD {f['environments_at_target'] * gb * p['snapstart_restore_gb']:,.3f} |"
        )
    rows.append(
        f"| all four | | {sum(f['environments_at_target'] for f in o['functions'].values()):,} | "
        f"| USD {o['provisioned_usd_per_hour']:,.2f} (USD {o['provisioned_usd_per_month']:,.0f} a month) "
        f"| USD {o['snapstart_cache_usd_per_month']:,.2f} / USD {o['snapstart_restores_usd_per_ramp']:,.3f} |"
    )
    return "\n".join(rows)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold start of every handler module vs import boto3 + one client")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny run: once, the payment function, this interpreter (no Lambda layout)",
    )
    parser.add_argument(
        "--options",
        type=Path,
        metavar="RESULT",
        help="print the provisioned concurrency / SnapStart table (docs/capacity.md) of a result this command printed",
    )
    args = parser.parse_args(argv)
    if args.options:
        print(options_table(options(json.loads(args.options.read_text()))))
        return 0
    result = run(1, FUNCTIONS[:1], lambda_python=False) if args.quick else run(args.repeats)
    result["asset"] = asset_size()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
