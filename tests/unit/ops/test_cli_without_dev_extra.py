"""The operator's commands run from ``pip install .`` alone (no dev extra).

The runbook sends an operator to ``payments verify``, ``stuck``, ``resume``, ``attention``, ``reconcile``
and ``backfill-account-totals`` against a deployed stack, from a machine that has only the package.
Here a child interpreter refuses every dev-only module (the local runtime, moto, werkzeug, the
CDK, the test tools), as a venv without the dev extra would, and asks each command for its help.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

OPERATOR_COMMANDS = [
    ["verify"],
    ["stuck"],
    ["resume"],
    ["reconcile"],
    ["backfill-account-totals"],
    ["psp", "settle"],
    ["attention", "list"],
    ["attention", "resolve"],
    ["preflight"],
    ["loadtest"],  # Locust (the loadtest extra) is imported by its run only, never by the help
]

#: what only the dev extra (or the dev package) brings
DEV_ONLY = ("moto", "werkzeug", "flask", "aws_cdk", "cdk_nag", "pytest", "payments_dev", "locust", "gevent")

_CHILD = textwrap.dedent(
    """
    import importlib.abc, sys

    DEV_ONLY = {dev_only!r}

    class RefuseDevOnly(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == m or name.startswith(m + ".") for m in DEV_ONLY):
                raise ModuleNotFoundError(f"No module named {{name!r}} (dev extra not installed)", name=name)
            return None

    sys.meta_path.insert(0, RefuseDevOnly())
    from payments.ops.cli import main

    try:
        main({argv!r} + ["--help"])
    except SystemExit as exit:
        sys.exit(exit.code)
    """
)


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=" ".join)
def test_operator_command_needs_no_dev_extra(command: list[str]) -> None:
    # Given a Python that cannot import any dev-only module
    child = _CHILD.format(dev_only=DEV_ONLY, argv=command)

    # When the operator asks the command for its help
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)

    # Then it answers, without reaching for the local runtime or moto
    assert result.returncode == 0, result.stderr
    assert "usage: payments" in result.stdout


def test_the_guard_refuses_dev_modules() -> None:
    # Given the same guard, When a dev command is asked to start the local runtime's import
    child = _CHILD.format(dev_only=DEV_ONLY, argv=["verify"]).replace(
        "from payments.ops.cli import main", "import payments_dev.local.runtime\nfrom payments.ops.cli import main"
    )
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)

    # Then the import fails: the test above would notice a dev import
    assert result.returncode != 0
    assert "dev extra not installed" in result.stderr


@pytest.mark.parametrize("command", ["serve", "demo", "chaos"])
def test_a_dev_command_without_the_dev_extra_names_what_to_install(command: str) -> None:
    # Given a Python without the dev extra
    child = _CHILD.format(dev_only=DEV_ONLY, argv=[command]).replace(
        f'main({[command]!r} + ["--help"])', f"sys.exit(main([{command!r}]))"
    )

    # When the operator runs a dev command
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)

    # Then it fails with exit code 2 and a message naming the dev extra, not a traceback
    assert result.returncode == 2, result.stderr
    assert f"payments {command} is a dev command and needs the dev extra" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_the_dev_extra_the_dev_commands_are_the_real_ones() -> None:
    # Given this environment (the dev extra installed)
    from payments.ops.cli import parser

    # When the parser is built, Then serve, demo and chaos take their real options
    for command, option in [("serve", "--aws-port"), ("demo", "--checkouts"), ("chaos", "--seed")]:
        help_text = subprocess.run(
            [sys.executable, "-m", "payments.ops.cli", command, "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        assert option in help_text, command
    assert parser().parse_args(["demo", "--checkouts", "5"]).checkouts == 5
