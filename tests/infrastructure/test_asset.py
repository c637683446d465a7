"""The Lambda asset ships an allow-list of first-party packages, and nothing shipped reaches outside it.

A dev module (the local runtime, the chaos harness, the demo, the bench: ``payments_dev``) or an
operator tool (``payments.ops``) is never shipped because it is not on the list, whatever its name;
and a shipped module that imported one would fail at cold start, so the imports are checked here,
statically, over every shipped file.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from infra.bundling import DEPENDENCIES, REPO_ROOT, SHIPPED_FILES, SHIPPED_PACKAGES, shipped_files

FIRST_PARTY = ("payments", "payments_dev", "functions", "infra", "tests")
#: what the asset's pip install brings (infra/bundling.py DEPENDENCIES), and what the runtime has
THIRD_PARTY_SHIPPED = {
    "aws_lambda_powertools",
    "pydantic",
    "pydantic_core",
    "mt940",
    "bai2",
    "defusedxml",
    "Adyen",
    "schwifty",
    "cryptography",
    "sepaxml",
    "xmlschema",
    "aws_xray_sdk",
    "boto3",
    "botocore",
    "typing_extensions",
    # the reconcile function's own asset only (infra/bundling.py RECONCILE_DEPENDENCIES), imported inside the
    # functions that run the matching: tests/infrastructure/test_reconcile_asset.py checks both
    "duckdb",
}


def _module_of(relative: Path) -> str:
    parts = relative.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """The imports that run: not those under ``if TYPE_CHECKING:`` (stubs for mypy, never imported)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _is_shipped_module(name: str, shipped: set[str]) -> bool:
    # `from payments.kernel import money` names a module or an attribute of a shipped module
    return name in shipped or name.rsplit(".", 1)[0] in shipped


def test_the_asset_holds_exactly_the_allow_list() -> None:
    # Given the files the bundling copies
    files = shipped_files()
    # Then each is under an allowed package (or is an allowed single file), none is a dev or ops module
    assert files
    for relative in files:
        assert str(relative) in SHIPPED_FILES or any(relative.is_relative_to(p) for p in SHIPPED_PACKAGES), relative
        assert relative.parts[0] != "payments_dev" and relative.parts[:2] != ("payments", "ops"), relative
    # and every package on the list exists and holds Python code (a typo would ship nothing)
    for package in SHIPPED_PACKAGES:
        assert (REPO_ROOT / package / "__init__.py").is_file(), package


def test_no_shipped_module_imports_outside_the_asset() -> None:
    # Given every shipped Python module
    sources = [r for r in shipped_files() if r.suffix == ".py"]
    shipped = {_module_of(r) for r in sources}
    offenders = []
    for relative in sources:
        for line, name in _imports(REPO_ROOT / relative):
            top = name.split(".")[0]
            if top in FIRST_PARTY:
                # Then a first-party import is a shipped module (never payments_dev, payments.ops, infra)
                if not _is_shipped_module(name, shipped):
                    offenders.append(f"{relative}:{line} imports {name}")
            elif top not in sys.stdlib_module_names and top not in THIRD_PARTY_SHIPPED:
                # and a third-party import is one the asset installs (or the runtime provides)
                offenders.append(f"{relative}:{line} imports {name} (not installed in the asset)")
    assert offenders == []


@pytest.mark.parametrize("outsider", ["payments_dev.local.runtime", "payments.ops.invariants", "moto"])
def test_the_import_check_catches_an_outsider(tmp_path: Path, outsider: str) -> None:
    # Given a module that imports a dev module, an operator tool or moto
    probe = tmp_path / "probe.py"
    probe.write_text(f"import {outsider}\n")
    # Then the check above would name it
    ((_, name),) = _imports(probe)
    shipped = {_module_of(r) for r in shipped_files() if r.suffix == ".py"}
    top = name.split(".")[0]
    assert (top in FIRST_PARTY and not _is_shipped_module(name, shipped)) or top not in THIRD_PARTY_SHIPPED | set(
        sys.stdlib_module_names
    )


def test_an_import_for_the_type_checker_only_is_not_an_outsider(tmp_path: Path) -> None:
    # Given a module that names boto3-stubs' types for mypy only, and imports moto for real
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from mypy_boto3_dynamodb import DynamoDBClient\n"
        "import moto\n"
    )
    # Then only the import that runs is checked
    assert [name for _, name in _imports(probe)] == ["typing.TYPE_CHECKING", "moto"]


def test_the_bank_rail_ships_with_the_functions_that_use_it() -> None:
    # Given the asset's files and dependencies
    files = {str(relative) for relative in shipped_files()}
    # Then the payout accounts and the bank rail ship: the payouts API checks the rail, the run writes the
    # files, the bank reconciliation reads the answers, the simulated bank answers them
    assert {"payments/payouts/accounts.py", "payments/payouts/reconcile.py"} <= files
    assert {
        "payments/payouts/bank/pain001.py",
        "payments/payouts/bank/camt.py",
        "payments/payouts/bank/simulated.py",
    } <= files
    # and so do the libraries that write and validate the files
    assert {"sepaxml", "xmlschema"} <= set(DEPENDENCIES)
