"""The operator's command from ``pip install .`` alone, as the runbook uses it against a stack.

The package is built as a wheel (with the pinned build backend of pyproject.toml) and a fresh
virtualenv gets that wheel without extras (no moto, no werkzeug, no CDK, not this clone's files):
the wheel holds the deployed core and the operator's CLI, not the dev tooling, the CDK app or the
tests, and declares its licence as an SPDX expression. Its ``payments verify --endpoint URL``
checks the invariants over the data of the running local runtime, from a process with no AWS
variables and another working directory. The dev commands there say what to install instead of
failing with a traceback; in the clone's own virtualenv they run, from any working directory.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import LocalRuntime
from tests.integration.conftest import checkout, wait_done

REPO = Path(__file__).resolve().parents[2]
#: what a fresh clone does not have: this clone's environments, caches and earlier builds' leftovers
NOT_IN_A_CLONE = (".git", ".venv", "node_modules", "cdk.out", "build", "dist", "*.egg-info", "__pycache__")
NOT_IN_A_CLONE += (".mypy_cache", ".ruff_cache", ".pytest_cache", "demo-output", ".local")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def operator_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("operator")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    # the wheel `pip install .` builds in a fresh clone: from a copy of the repository's files (not
    # this clone's build/ or egg-info leftovers), in an isolated build environment holding the pinned
    # backend; its build's output kept for the warnings test
    source = home / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE))
    build = ["wheel", "-v", "--no-deps", "--disable-pip-version-check", "-w", str(home / "dist"), str(source)]
    built = subprocess.run(
        [str(python), "-m", "pip", *build],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    (home / "build.log").write_text(built.stdout + built.stderr)
    if built.returncode != 0:
        pytest.fail(f"pip wheel . failed:\n{built.stderr[-3000:]}")
    (wheel,) = (home / "dist").glob("serverless_payments-*.whl")
    # installed without extras, not editable
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if installed.returncode != 0:
        pytest.fail(f"pip install of the wheel failed:\n{installed.stderr[-3000:]}")
    return home


def _wheel(home: Path) -> zipfile.ZipFile:
    (wheel,) = (home / "dist").glob("serverless_payments-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_holds_the_deployed_core_and_the_operator_cli_only(operator_venv: Path) -> None:
    # Given the wheel `pip install .` builds
    names = _wheel(operator_venv).namelist()
    # Then its top-level packages are the deployed core and nothing of the clone's tooling
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"payments", "functions"}, sorted(top)
    assert "payments/ops/cli.py" in names and "functions/registry.py" in names
    # and the operator's command is its entry point
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "payments = payments.ops.cli:main" in _wheel(operator_venv).read(entry_points).decode()


def test_the_wheel_declares_its_licence_as_an_spdx_expression(operator_venv: Path) -> None:
    # Given the wheel's metadata
    metadata_name = next(n for n in _wheel(operator_venv).namelist() if n.endswith(".dist-info/METADATA"))
    metadata = email.message_from_bytes(_wheel(operator_venv).read(metadata_name))
    # Then the licence is the SPDX expression of core metadata 2.4, not the legacy free-text field
    assert metadata["Metadata-Version"] == "2.4"
    assert metadata["License-Expression"] == "Apache-2.0" and metadata["License"] is None
    # and the licence's text travels with it (License-File, in the wheel's .dist-info/licenses/)
    assert metadata.get_all("License-File") == ["LICENSE"]
    text = next(n for n in _wheel(operator_venv).namelist() if n.endswith(".dist-info/licenses/LICENSE"))
    assert b"Apache License" in _wheel(operator_venv).read(text)


def test_the_build_prints_no_deprecation_warning(operator_venv: Path) -> None:
    # Given the verbose output of the wheel's build (pip shows the backend's warnings)
    log = (operator_venv / "build.log").read_text()
    assert "Building wheel for serverless-payments" in log  # the build ran here, not taken from a cache
    # Then setuptools warned about nothing: no licence table, no deprecated configuration
    for warning in ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "is deprecated"):
        assert warning not in log, log[log.find(warning) - 1500 : log.find(warning) + 500]


def test_the_build_pins_what_it_needs() -> None:
    # Given the build requirements of pyproject.toml
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    # Then each is pinned to one release: a build a year from now uses today's backend
    assert requires and all("==" in requirement and "*" not in requirement for requirement in requires), requires


def test_the_dev_commands_run_from_the_clones_virtualenv_anywhere(tmp_path: Path) -> None:
    # Given the clone's virtualenv (make's .venv/.installed), whose package list leaves out payments_dev
    bin_dir = Path(sys.executable).parent
    # When its `payments` and its python run from a directory outside the clone
    served = subprocess.run(
        [str(bin_dir / "payments"), "serve", "--help"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    probe = "import payments_dev.cli, infra.app; print(payments_dev.cli.REPO_ROOT)"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120
    )
    # Then the dev commands are there (not the placeholder that names the dev extra), from this clone
    assert served.returncode == 0 and "--aws-port" in served.stdout, served.stdout + served.stderr
    assert found.returncode == 0 and Path(found.stdout.strip()) == REPO, found.stderr


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
    verified = _payments(operator_venv, "verify", "--endpoint", runtime.aws_url, "--output", "table")
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
