"""The code assets of the Lambda functions, bundled without Docker: one shared by every function but the
reconcile function, and the reconcile function's own (the same plus its columnar engine, duckdb).

The asset holds the deployed core (an allow-list: :data:`SHIPPED_PACKAGES`) plus the third-party
dependencies the runtime does not provide (boto3 and botocore it does). The
dependencies are installed by ``pip`` as prebuilt wheels for the Lambda platform
(``--platform manylinux2014_aarch64 --only-binary=:all:``), so no container is
needed. If pip fails the synthesis fails: there is no fallback to Docker.

Their versions are the ones installed where the app is synthesised, i.e. the
versions the test suite ran against.

Bytecode is shipped: ``/var/task`` is read-only, so without ``.pyc`` files every cold
start compiles every module it imports from source (about 1.5-2x the import time). The
``.pyc`` files are compiled by an interpreter of the runtime's own version (Python 3.13;
bytecode is version-specific), found by :func:`bytecode_python`, with
``--invalidation-mode unchecked-hash`` (the asset's zip does not keep source mtimes, and the
code never changes in place) and ``/var/task`` as the recorded path. Without such an
interpreter the asset is built from sources only and the stack carries a warning
(``cdk synth --strict`` fails on it); the asset hash records which of the two was built.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The first-party code the asset ships: an allow-list of packages. A module outside them is not
#: deployed, whatever its name; the operator's tools (payments.ops) and the dev package
#: (payments_dev: local runtime, chaos harness, demo, bench) are not on it, and
#: tests/infrastructure/test_asset.py proves that no shipped module imports anything outside it.
SHIPPED_PACKAGES = (
    "functions",
    "payments/kernel",
    "payments/payin",
    "payments/accounts",
    "payments/psp",
    "payments/refunds",
    "payments/payouts",
    "payments/notifications",
    "payments/reconciliation",
    "payments/events",
)
SHIPPED_FILES = ("payments/__init__.py",)
#: Sub-packages of the allow-list that no deployed function uses, left out of the asset (none today: the
#: bank rail, payments/payouts/bank, ships with the bank reconciliation and the simulated bank).
NOT_SHIPPED: tuple[str, ...] = ()
#: Installed with their own dependencies, pinned to the versions installed here.
DEPENDENCIES = (
    *("aws-lambda-powertools", "pydantic", "mt-940", "bai2", "defusedxml", "adyen"),
    *("schwifty", "cryptography"),  # payout accounts: IBAN validation, the IBAN's envelope encryption
    # the bank rail: pain.001 written and checked against its XSD (sepaxml, through xmlschema and elementpath)
    *("sepaxml", "xmlschema"),
)
#: The reconcile function's own asset is the shared one plus these: its columnar engine (duckdb, ~60 MB
#: unpacked), which no other function needs, so their package and cold start do not carry it. The modules
#: that use it import it inside the functions that run the matching, never at import time.
RECONCILE_DEPENDENCIES = ("duckdb",)
#: What the Powertools Tracer needs (its [tracer] extra), installed without dependencies: the
#: remaining one is botocore, which must stay the runtime's own (it is paired with the runtime's boto3).
DEPENDENCIES_WITHOUT_THEIRS = ("aws-xray-sdk", "wrapt")
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "manylinux2014_aarch64"  # must match ARCHITECTURE
#: newer glibc tags the runtime also takes (Amazon Linux 2023: glibc 2.34), accepted for the reconcile function's
#: asset only (duckdb ships its aarch64 wheels for these), so the shared asset's wheels stay exactly as they were
PIP_NEWER_PLATFORMS = ("manylinux_2_28_aarch64",)
#: where the code lives in the Lambda sandbox (recorded in the bytecode, shown in tracebacks)
TASK_ROOT = "/var/task"
#: overrides the search for an interpreter of the runtime's version (an absolute path)
BYTECODE_PYTHON_ENV = "PAYMENTS_BYTECODE_PYTHON"
#: never copied from a shipped package: compiled files of this machine's interpreter
_NOT_SOURCE = ("__pycache__", "*.pyc")


def pinned(names: tuple[str, ...]) -> tuple[str, ...]:
    """``name==version`` of each package, as installed in this environment."""
    try:
        return tuple(f"{name}=={metadata.version(name)}" for name in names)
    except metadata.PackageNotFoundError as err:
        raise RuntimeError(f"{err.name} is not installed: synthesise from the project's virtualenv") from err


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundling:
    """Builds the asset on this machine; raises instead of returning False (no Docker fallback)."""

    def __init__(
        self,
        requirements: tuple[str, ...],
        requirements_without_deps: tuple[str, ...],
        platforms: tuple[str, ...] = (PIP_PLATFORM,),
        python: str | None = None,
    ) -> None:
        self._requirements = requirements
        self._requirements_without_deps = requirements_without_deps
        self._platforms = platforms
        self._python = python

    def try_bundle(self, output_dir: str, _options: cdk.BundlingOptions | None = None) -> bool:
        out = Path(output_dir)
        self._pip_install(out, self._requirements)
        self._pip_install(out, self._requirements_without_deps, "--no-deps")
        for relative in shipped_files():
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO_ROOT / relative, out / relative)
        if self._python is not None:
            compile_bytecode(self._python, out)
        return True

    def _pip_install(self, out: Path, requirements: tuple[str, ...], *options: str) -> None:
        if not requirements:
            return
        command = [
            sys.executable, "-m", "pip", "install",
            *(option for platform in self._platforms for option in ("--platform", platform)),
            "--implementation", "cp",
            "--python-version", RUNTIME.name.removeprefix("python"),
            "--only-binary=:all:",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
            "--target", str(out),
            *options,
            *requirements,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pip failed to bundle {requirements}:\n{result.stderr or result.stdout}")


def _python_version(executable: str) -> str | None:
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@functools.cache
def bytecode_python() -> str | None:
    """An interpreter of the Lambda runtime's Python version, or None.

    ``$PAYMENTS_BYTECODE_PYTHON`` if set (it must be that version), else ``python3.13`` on the
    ``PATH``, else a pyenv-installed 3.13.x, else this interpreter if it is 3.13.
    """
    wanted = RUNTIME.name.removeprefix("python")
    configured = os.environ.get(BYTECODE_PYTHON_ENV)
    if configured:
        found = _python_version(configured)
        if found != wanted:
            raise RuntimeError(f"${BYTECODE_PYTHON_ENV}={configured} is Python {found}, the Lambda runtime is {wanted}")
        return configured
    candidates = [shutil.which(f"python{wanted}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(
        (
            str(p)
            for p in pyenv_root.glob(f"versions/{wanted}.*/bin/python{wanted}")
            if re.fullmatch(rf"{re.escape(wanted)}\.\d+", p.parent.parent.name)
        ),
        reverse=True,
    )
    candidates.append(sys.executable)
    for candidate in candidates:
        if candidate and _python_version(candidate) == wanted:
            return candidate
    return None


def compile_bytecode(python: str, out: Path) -> None:
    """Compile every module of the asset with the runtime's interpreter (see the module docstring)."""
    command = [
        python, "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(out), "-p", TASK_ROOT,
        str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"compiling the asset's bytecode failed:\n{result.stderr or result.stdout}"[:4000])


def shipped_files() -> list[Path]:
    """Every first-party file the asset holds, relative to the repository: the allow-list's packages
    (sources and data, not this machine's bytecode) and its single files."""
    files = [Path(name) for name in SHIPPED_FILES]
    for package in SHIPPED_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*")):
            relative = path.relative_to(REPO_ROOT)
            if any(relative.is_relative_to(held_back) for held_back in NOT_SHIPPED):
                continue
            if path.is_file() and not any(fnmatch(part, pattern) for part in relative.parts for pattern in _NOT_SOURCE):
                files.append(relative)
    return files


def _fingerprint(requirements: tuple[str, ...], bytecode: bool) -> str:
    """Hash of what goes into the asset, so an unchanged asset is neither rebuilt nor re-uploaded."""
    digest = hashlib.sha256()
    digest.update(f"{RUNTIME.name}|{PIP_PLATFORM}|bytecode={bytecode}|{'|'.join(requirements)}".encode())
    for relative in shipped_files():
        digest.update(str(relative).encode())
        digest.update((REPO_ROOT / relative).read_bytes())
    return digest.hexdigest()


@functools.cache
def _local_bundling(extra: tuple[str, ...] = ()) -> LocalPythonBundling:
    """One instance per process and asset: the bundling options are part of the asset hash, so every stack
    (dev, prod) then shares one identical asset instead of bundling it once each."""
    return LocalPythonBundling(
        pinned(DEPENDENCIES) + pinned(extra),
        pinned(DEPENDENCIES_WITHOUT_THEIRS),
        platforms=(PIP_PLATFORM, *PIP_NEWER_PLATFORMS) if extra else (PIP_PLATFORM,),
        python=bytecode_python(),
    )


BYTECODE_WARNING = (
    f"No Python {RUNTIME.name.removeprefix('python')} interpreter found to compile the asset's bytecode: the functions ship "
    f"sources only and compile them at every cold start. Install Python {RUNTIME.name.removeprefix('python')} or set "
    f"${BYTECODE_PYTHON_ENV} (docs/deploy.md)."
)


def asset_requirements(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``name==version`` of everything an asset installs: the shared one's, plus ``extra``."""
    return pinned(DEPENDENCIES) + pinned(extra) + pinned(DEPENDENCIES_WITHOUT_THEIRS)


def lambda_code(scope: Construct | None = None, extra: tuple[str, ...] = ()) -> lambda_.Code:
    """The shared code asset (bundling is skipped when the stack is not in ``aws:cdk:bundling-stacks``);
    with ``extra`` requirements, an asset of its own (:func:`reconcile_code`).

    ``scope`` receives the warning when the asset can only be built without bytecode.
    """
    bytecode = bytecode_python() is not None
    if not bytecode and scope is not None:
        cdk.Annotations.of(scope).add_warning_v2("payments:no-bytecode", BYTECODE_WARNING)
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=_fingerprint(asset_requirements(extra), bytecode),
        bundling=cdk.BundlingOptions(
            # Required by the API, never pulled: LocalPythonBundling always succeeds or raises.
            image=cdk.DockerImage.from_registry("unused-local-bundling-only"),
            local=_local_bundling(extra),
        ),
    )


def reconcile_code(scope: Construct | None = None) -> lambda_.Code:
    """The reconcile function's asset: the shared one plus :data:`RECONCILE_DEPENDENCIES`."""
    return lambda_code(scope, RECONCILE_DEPENDENCIES)
