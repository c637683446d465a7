"""The operator's command from ``pip install .`` alone, as the runbook uses it against a stack.

A fresh virtualenv gets the package without extras (no moto, no werkzeug, no CDK, not this
clone's files), and its ``payments verify --endpoint URL`` checks the invariants over the data of
the running local runtime, from a process with no AWS variables and another working directory.
The dev commands there say what to install instead of failing with a traceback.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import LocalRuntime
from tests.integration.conftest import checkout, wait_done

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def operator_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("operator")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    # a copy of the tracked sources (not this clone, not editable), installed without extras
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if installed.returncode != 0:
        pytest.fail(f"pip install . failed:\n{installed.stderr[-3000:]}")
    return home


def _payments(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(home)}  # no AWS variables, no virtualenv of ours
    return subprocess.run(
        [str(home / "venv" / "bin" / "payments"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=home,
        env=clean,
        check=False,
    )


def test_the_install_has_no_dev_modules(operator_venv: Path) -> None:
    # Given the operator's virtualenv, Then moto, werkzeug and the CDK are not in it
    probe = (
        "import importlib.util as u; print([m for m in ('moto', 'werkzeug', 'aws_cdk', 'pytest') if u.find_spec(m)])"
    )
    found = subprocess.run(
        [str(operator_venv / "venv" / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


def test_verify_runs_against_a_running_runtime_from_pip_install_alone(
    operator_venv: Path, runtime: LocalRuntime, api: ApiClient
) -> None:
    # Given a checkout through the running local runtime
    body = checkout()
    assert api.pay(body, "key-" + body["checkout_id"]).status == 202
    wait_done(api, body["checkout_id"])
    # When the operator's `payments verify --help` and `payments verify --endpoint URL` run
    assert "usage: payments verify" in _payments(operator_venv, "verify", "--help").stdout
    verified = _payments(operator_venv, "verify", "--endpoint", runtime.aws_url)
    # Then the invariants are checked over the runtime's data and hold
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "1. at most one PSP charge per payment_order_id" in verified.stdout and "VIOLATION" not in verified.stdout
    checks = [line for line in verified.stdout.splitlines() if line.lstrip().startswith("ok")]
    assert len(checks) >= 7


@pytest.mark.parametrize("command", ["serve", "demo", "chaos"])
def test_a_dev_command_names_the_dev_extra(operator_venv: Path, command: str) -> None:
    # When a dev command runs from the operator's install
    result = _payments(operator_venv, command)
    # Then it says what to install, without a traceback
    assert result.returncode == 2 and "needs the dev extra" in result.stderr and "Traceback" not in result.stderr


def test_the_operator_commands_answer_their_help(operator_venv: Path) -> None:
    for command in (
        ["stuck"],
        ["resume"],
        ["reconcile"],
        ["backfill-account-totals"],
        ["psp", "settle"],
        ["psp", "chargeback"],
        ["mismatches", "list"],
        ["mismatches", "resolve"],
    ):
        result = _payments(operator_venv, *command, "--help")
        assert result.returncode == 0 and "usage: payments" in result.stdout, (command, result.stderr)
