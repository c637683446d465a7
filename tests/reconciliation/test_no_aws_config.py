"""Item 13 of issue 15: the local commands work with no AWS variable and no ``~/.aws``.

The commands run as subprocesses whose environment holds no ``AWS_*`` variable and whose
HOME is empty, against a local AWS-compatible endpoint (moto's server, the same engine the
local runtime serves): no ``NoRegionError``, no ``NoCredentialsError``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from payments.kernel.config import Settings
from payments.kernel.tables import create_tables
from tests.reconciliation.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    settings = Settings()
    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    create_tables(boto3.client("dynamodb", **kwargs), settings)
    boto3.client("s3", **kwargs).create_bucket(Bucket=settings.settlement_bucket)
    yield url
    server.stop()


def run_without_aws(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO"))}
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from payments.ops.cli import main; sys.exit(main())", *args],
        env=env,
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_psp_settle_and_reconcile_with_an_endpoint_and_no_aws_variables(endpoint: str, tmp_path: Path) -> None:
    # Given no AWS variable, no ~/.aws, and a local endpoint with the tables and the bucket
    # When the simulated PSP settles a day and a file is reconciled against the endpoint
    settle = run_without_aws(
        ["psp", "settle", "--date", "2026-11-30", "--endpoint", endpoint, "--output", "table"], tmp_path
    )
    reconcile = run_without_aws(
        ["reconcile", str(FIXTURES / "adyen_settlement_2026-11-30.csv"), "--endpoint", endpoint, "--output", "table"],
        tmp_path,
    )
    # Then both run to their verdict: no region or credential error, no traceback
    for done in (settle, reconcile):
        assert "NoRegionError" not in done.stderr and "NoCredentialsError" not in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
    assert settle.returncode == 0 and "wrote incoming/simulated-psp/2026-11-30.csv" in settle.stdout
    assert reconcile.returncode == 1 and "MISSING_IN_LEDGER" in reconcile.stdout  # an empty ledger: mismatches
