"""The one code asset shared by every Lambda function, bundled without Docker.

The asset holds the ``payments`` and ``functions`` packages plus the third-party
dependencies the runtime does not provide (boto3 and botocore it does). The
dependencies are installed by ``pip`` as prebuilt wheels for the Lambda platform
(``--platform manylinux2014_aarch64 --only-binary=:all:``), so no container is
needed. If pip fails the synthesis fails: there is no fallback to Docker.

Their versions are the ones installed where the app is synthesised, i.e. the
versions the test suite ran against.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("payments", "functions")  # first-party code copied into the asset
#: Installed with their own dependencies, pinned to the versions installed here.
DEPENDENCIES = ("aws-lambda-powertools", "pydantic", "mt-940", "bai2")
#: What the Powertools Tracer needs (its [tracer] extra), installed without dependencies: the
#: remaining one is botocore, which must stay the runtime's own (it is paired with the runtime's boto3).
DEPENDENCIES_WITHOUT_THEIRS = ("aws-xray-sdk", "wrapt")
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "manylinux2014_aarch64"  # must match ARCHITECTURE
#: not deployed: tests, and the code that only runs on a workstation (the local runtime on moto,
#: the fault-injection harness, the demo, the command line and the operator's tools)
_IGNORED = ("__pycache__", "*.pyc", "tests", "test_*.py", "local", "chaos", "demo.py", "cli.py", "operations.py")


def pinned(names: tuple[str, ...]) -> tuple[str, ...]:
    """``name==version`` of each package, as installed in this environment."""
    try:
        return tuple(f"{name}=={metadata.version(name)}" for name in names)
    except metadata.PackageNotFoundError as err:
        raise RuntimeError(f"{err.name} is not installed: synthesise from the project's virtualenv") from err


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundling:
    """Builds the asset on this machine; raises instead of returning False (no Docker fallback)."""

    def __init__(self, requirements: tuple[str, ...], requirements_without_deps: tuple[str, ...]) -> None:
        self._requirements = requirements
        self._requirements_without_deps = requirements_without_deps

    def try_bundle(self, output_dir: str, _options: cdk.BundlingOptions) -> bool:
        out = Path(output_dir)
        self._pip_install(out, self._requirements)
        self._pip_install(out, self._requirements_without_deps, "--no-deps")
        for package in PACKAGES:
            shutil.copytree(REPO_ROOT / package, out / package, ignore=shutil.ignore_patterns(*_IGNORED))
        return True

    @staticmethod
    def _pip_install(out: Path, requirements: tuple[str, ...], *options: str) -> None:
        command = [
            sys.executable, "-m", "pip", "install",
            "--platform", PIP_PLATFORM,
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


def _is_shipped(relative: Path) -> bool:
    """The same rule as the copy's ``ignore_patterns``, applied to every part of the path."""
    return not any(fnmatch(part, pattern) for part in relative.parts for pattern in _IGNORED)


def _fingerprint(requirements: tuple[str, ...]) -> str:
    """Hash of what goes into the asset, so an unchanged asset is neither rebuilt nor re-uploaded."""
    digest = hashlib.sha256()
    digest.update(f"{RUNTIME.name}|{PIP_PLATFORM}|{'|'.join(requirements)}".encode())
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*")):
            relative = path.relative_to(REPO_ROOT)
            if path.is_file() and _is_shipped(relative):
                digest.update(str(relative).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _local_bundling() -> LocalPythonBundling:
    """One instance per process: the bundling options are part of the asset hash, so every stack
    (dev, prod) then shares one identical asset instead of bundling it once each."""
    return LocalPythonBundling(pinned(DEPENDENCIES), pinned(DEPENDENCIES_WITHOUT_THEIRS))


def lambda_code() -> lambda_.Code:
    """The shared code asset (bundling is skipped when the stack is not in ``aws:cdk:bundling-stacks``)."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=_fingerprint(pinned(DEPENDENCIES) + pinned(DEPENDENCIES_WITHOUT_THEIRS)),
        bundling=cdk.BundlingOptions(
            # Required by the API, never pulled: LocalPythonBundling always succeeds or raises.
            image=cdk.DockerImage.from_registry("unused-local-bundling-only"),
            local=_local_bundling(),
        ),
    )
