"""duckdb ships in the reconcile function's own asset, and only there: the other functions' asset and cold start
do not grow (infra/bundling.py)."""

from __future__ import annotations

import ast
from typing import Any

from infra.bundling import DEPENDENCIES, RECONCILE_DEPENDENCIES, REPO_ROOT, asset_requirements, shipped_files


def _code_keys(template: dict[str, Any]) -> dict[str, str]:
    """Function name -> the S3 key of its code (the asset's hash)."""
    keys = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function" or "S3Key" not in resource["Properties"]["Code"]:
            continue
        name = resource["Properties"].get("FunctionName")
        if isinstance(name, str):
            keys[name] = resource["Properties"]["Code"]["S3Key"]
    return keys


def test_the_reconcile_function_alone_runs_the_asset_with_duckdb(dev: dict[str, Any], prod: dict[str, Any]) -> None:
    for template, stage in ((dev, "dev"), (prod, "prod")):
        # Given every function of the stage and the asset each runs
        keys = _code_keys(template)
        reconcile = keys.pop(f"payments-{stage}-reconcile")
        # Then the reconcile function's asset is its own, and every other function shares one other asset
        assert len(keys) > 5
        assert reconcile not in set(keys.values())
        assert len(set(keys.values())) == 1, sorted(set(keys.values()))


def test_duckdb_is_a_requirement_of_the_reconcile_asset_only() -> None:
    # Given what each asset installs
    shared = {requirement.split("==")[0] for requirement in asset_requirements()}
    own = {requirement.split("==")[0] for requirement in asset_requirements(RECONCILE_DEPENDENCIES)}
    # Then duckdb is in the reconcile function's, not in the shared one, and that is the only difference
    assert "duckdb" not in shared and "duckdb" not in DEPENDENCIES
    assert own - shared == {"duckdb"}


def _module_level_imports(tree: ast.Module) -> set[str]:
    """The imports a module runs when it is imported: those not inside a function."""
    functions = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in functions:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_shipped_module_imports_duckdb_when_it_is_imported() -> None:
    # Given every shipped module, and the ones that use duckdb
    users, eager = [], []
    for relative in (r for r in shipped_files() if r.suffix == ".py"):
        text = (REPO_ROOT / relative).read_text()
        tree = ast.parse(text)
        if "duckdb" in {n.split(".")[0] for n in _all_imports(tree)}:
            users.append(str(relative))
        if "duckdb" in _module_level_imports(tree):
            eager.append(str(relative))
    # Then the matching uses it, and only inside its functions: importing a module never loads it, so a function
    # whose asset has no duckdb (the operator renders reports through payments.reconciliation) still starts
    assert "payments/reconciliation/columnar.py" in users
    assert eager == []


def _all_imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names
