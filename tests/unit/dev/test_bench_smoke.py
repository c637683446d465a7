"""Every benchmark in ``payments_dev/bench`` imports and runs, tiny, in ``make test``: a broken benchmark
fails the build instead of the next ``make bench``.

The modules are discovered (``pkgutil`` over the package), not listed, so a new one is covered as soon
as it exists. A module that runs as a script (it has a ``main`` or an ``if __name__ == "__main__"``
block) must offer ``main(argv)`` and take ``--quick``: a tiny run of the very code the full run uses.
Each quick run is its own interpreter (some load moto or fork children), from outside the repository.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import payments_dev.bench as bench

BENCH_DIR = Path(bench.__path__[0])
MODULES = sorted(info.name for info in pkgutil.iter_modules(bench.__path__))
QUICK_TIMEOUT_SECONDS = 240


def _runs_as_script(name: str) -> bool:
    """A ``main`` function, or code under ``if __name__ == "__main__"``: a benchmark, not a helper."""
    tree = ast.parse((BENCH_DIR / f"{name}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            return True
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return True
    return False


BENCHMARKS = [name for name in MODULES if _runs_as_script(name)]


def test_the_benchmarks_are_discovered() -> None:
    # Given the bench package, when its modules are discovered, then the benchmarks are among them
    # (the discovery works: an empty list would make every test below vacuous)
    assert {"run", "cold_start", "bench_reconcile", "warm"} <= set(BENCHMARKS), BENCHMARKS


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports(name: str) -> None:
    # Given a module of payments_dev/bench, when it is imported, then nothing it names is missing
    importlib.import_module(f"payments_dev.bench.{name}")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_runs_its_quick_mode(name: str, tmp_path: Path) -> None:
    # Given a benchmark module with a main(argv)
    module = importlib.import_module(f"payments_dev.bench.{name}")
    main = getattr(module, "main", None)
    if main is None or not inspect.signature(main).parameters:
        pytest.fail(
            f"payments_dev/bench/{name}.py runs as a script but has no main(argv): every benchmark offers "
            "main(argv: list[str] | None = None) taking --quick, so that `make test` runs it tiny"
        )
    # When its quick mode runs, in an interpreter of its own
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; from payments_dev.bench import {name} as m; sys.exit(m.main(['--quick']))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_SECONDS,
        check=False,
    )
    # Then it takes --quick and finishes cleanly
    if "unrecognized arguments: --quick" in done.stderr:
        pytest.fail(
            f"payments_dev/bench/{name}.py has no quick mode: every benchmark takes --quick (a tiny run) so that "
            "`make test` sees it run"
        )
    assert done.returncode == 0, (
        f"payments_dev/bench/{name}.py --quick failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    )
