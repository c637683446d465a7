"""The operator's CLI against a ``payments serve`` started on non-default ports, with no AWS variable.

One ``payments serve`` subprocess for the module (ports picked free, never 8080/8081), with every
``AWS_*`` variable removed and an empty HOME, as a newcomer's shell. Each command is reached by
discovery (no ``--endpoint``: the discovery file ``serve`` writes) and by ``--endpoint URL``; each
command's exit code follows the rule 0 all good / 1 findings / 2 could not do its job; no run prints
a traceback (but ``--debug``'s).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from payments_dev.local.client import ApiClient
from payments_dev.local.runtime import free_port

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "settlements" / "adyen_settlement_2026-11-30.csv"
DEFAULT_PORTS = {8080, 8081}


@dataclass
class Serve:
    api_url: str
    aws_url: str
    env: dict[str, str]
    runtime_dir: Path
    process: subprocess.Popen[str]

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )


def _bare_env(home: Path, runtime_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO"))}
    env.update({"HOME": str(home), "PAYMENTS_RUNTIME_DIR": str(runtime_dir), "PYTHONPATH": str(ROOT)})
    for name in [k for k in env if k.startswith("PAYMENTS_") and k != "PAYMENTS_RUNTIME_DIR"]:
        del env[name]  # nothing of a stage's settings either: all of it comes from the endpoint
    return env


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    home = tmp_path_factory.mktemp("home")
    runtime_dir = tmp_path_factory.mktemp("run")
    port, aws_port = free_port(), free_port()
    while {port, aws_port} & DEFAULT_PORTS or port == aws_port:
        port, aws_port = free_port(), free_port()
    env = _bare_env(home, runtime_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "payments.ops.cli", "serve", "--port", str(port), "--aws-port", str(aws_port)],
        env=env,
        cwd=str(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    for line in process.stdout:
        lines.append(line)
        if line.strip() == "ready" or time.monotonic() > deadline:
            break
    assert lines and lines[-1].strip() == "ready", "".join(lines)
    served = Serve(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aws_port}", env, runtime_dir, process)
    try:
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    # serve removes its discovery file when it stops
    assert list(runtime_dir.glob("serve-*.json")) == []


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def payments(serve: Serve, *args: str, endpoint: bool = False, env: dict[str, str] | None = None) -> Ran:
    """``payments ARGS`` in a shell with no AWS variable: by discovery, or with ``--endpoint``."""
    argv = [*args, "--endpoint", serve.aws_url] if endpoint else list(args)
    done = subprocess.run(
        [sys.executable, "-m", "payments.ops.cli", *argv],
        env=env or serve.env,
        cwd=serve.env["HOME"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if "--debug" not in args:
        assert "Traceback" not in done.stderr, done.stderr
    return Ran(done.returncode, done.stdout, done.stderr)


def _checkout(api: ApiClient, amount: str = "24.99") -> tuple[str, str]:
    checkout_id, order_id = f"chk_{uuid.uuid4().hex[:10]}", f"po_{uuid.uuid4().hex[:10]}"
    body = {
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "buyer_42", "email": "a@example.com"},
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": [
            {"payment_order_id": order_id, "seller_account": "seller_books", "amount": amount, "currency": "USD"}
        ],
    }
    assert api.pay(body, uuid.uuid4().hex).status == 202
    _wait(lambda: api.payment(checkout_id).body["is_payment_done"], f"{checkout_id} done")
    return checkout_id, order_id


def _wait(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def paid(serve: Serve) -> tuple[str, str]:
    """One checkout of 24.99 USD, paid and settled internally."""
    return _checkout(ApiClient(serve.api_url))


# --- all good (exit 0), by discovery and by --endpoint ------------------------------------------------
@pytest.mark.parametrize("endpoint", [False, True], ids=["discovered", "endpoint"])
def test_checks_on_a_healthy_runtime_exit_0(serve: Serve, paid: tuple[str, str], endpoint: bool) -> None:
    # Given a runtime with one paid checkout and nothing parked
    # When the checks run (by discovery, or with --endpoint)
    verify = payments(serve, "verify", "--output", "table", endpoint=endpoint)
    stuck = payments(serve, "stuck", "--output", "table", endpoint=endpoint)
    attention = payments(serve, "attention", "list", "--output", "table", endpoint=endpoint)
    mismatches = payments(serve, "mismatches", "list", "--day", "2020-01-01", "--output", "table", endpoint=endpoint)
    # Then each says all is good, with exit 0
    assert verify.code == 0, verify.out + verify.err
    assert "every invariant holds" in verify.out
    assert verify.out.splitlines()[0].split() == ["RESULT", "INVARIANT", "CHECKS", "BROKEN", "NOTE"]
    assert stuck.code == 0 and "nothing stuck" in stuck.out, stuck.out + stuck.err
    assert attention.code == 0 and "nothing needs attention" in attention.out, attention.out + attention.err
    assert mismatches.code == 0 and mismatches.out.strip() == "no mismatches on settlement day 2020-01-01", (
        mismatches.out + mismatches.err
    )


def test_json_output_is_one_document(serve: Serve, paid: tuple[str, str]) -> None:
    # When the checks are asked for JSON
    verify = payments(serve, "verify", "--output", "json")
    stuck = payments(serve, "stuck", "--output", "json")
    attention = payments(serve, "attention", "list", "--output", "json")
    # Then each prints one JSON document with the verdict's data
    assert verify.code == 0 and verify.json()["ok"] is True and verify.json()["complete"] is True
    assert [row["result"] for row in verify.json()["invariants"]] == ["ok"] * len(verify.json()["invariants"])
    assert stuck.code == 0 and stuck.json()["payments"] == [] and stuck.json()["refunds"] == []
    assert attention.code == 0 and attention.json() == []
    # And without --output, a pipe (not a terminal) gets the same JSON document
    piped = payments(serve, "stuck")
    assert piped.code == 0 and piped.json() == stuck.json()


@pytest.mark.parametrize("endpoint", [False, True], ids=["discovered", "endpoint"])
def test_resume_of_a_finished_checkout_exit_0(serve: Serve, paid: tuple[str, str], endpoint: bool) -> None:
    # Given a paid checkout, When it is resumed (the state machine's ARN derived from the endpoint)
    resumed = payments(serve, "resume", paid[0], "--timeout", "60", "--output", "json", endpoint=endpoint)
    # Then its idempotent workflow re-runs to the same end
    assert resumed.code == 0, resumed.out + resumed.err
    assert resumed.json()["payment_status"] == "SUCCEEDED" and resumed.json()["is_payment_done"] is True


@pytest.mark.parametrize("endpoint", [False, True], ids=["discovered", "endpoint"])
def test_psp_settle_and_reconcile_a_clean_day(
    serve: Serve, paid: tuple[str, str], endpoint: bool, tmp_path: Path
) -> None:
    # Given the day's charges, When the PSP settles today and the file is reconciled locally
    settled = payments(serve, "psp", "settle", "--output", "json", endpoint=endpoint)
    assert settled.code == 0, settled.out + settled.err
    key = settled.json()["key"]
    local = tmp_path / Path(key).name
    local.write_bytes(serve.aws("s3").get_object(Bucket=settled.json()["bucket"], Key=key)["Body"].read())
    reconciled = payments(serve, "reconcile", str(local), "--output", "table", endpoint=endpoint)
    # Then the file is clean: exit 0
    assert reconciled.code == 0, reconciled.out + reconciled.err
    assert reconciled.out.splitlines()[0].split()[:3] == ["FILE", "FORMAT", "DAY"]
    assert reconciled.out.rstrip().endswith("clean")


# --- findings (exit 1) ----------------------------------------------------------------------------------
def test_reconcile_a_file_with_mismatches_exit_1(serve: Serve) -> None:
    # Given a settlement file of charges this ledger never saw
    reconciled = payments(serve, "reconcile", str(FIXTURE), "--output", "table")
    as_json = payments(serve, "reconcile", str(FIXTURE), "--output", "json")
    # Then it is a finding: exit 1, the mismatches listed with amounts in major units and currency
    assert reconciled.code == 1, reconciled.out + reconciled.err
    assert "MISSING_IN_LEDGER" in reconciled.out and " USD" in reconciled.out
    assert as_json.code == 1 and as_json.json()["clean"] is False


def test_a_chargeback_on_a_refunded_order_is_a_finding_until_resolved(serve: Serve) -> None:
    api = ApiClient(serve.api_url)
    # Given a checkout of 19.99 USD refunded in full
    checkout_id, order_id = _checkout(api, "19.99")
    refund_id = f"rf_{uuid.uuid4().hex[:10]}"
    reply = api.request(
        "POST",
        "/v1/refunds",
        {"refund_id": refund_id, "payment_order_id": order_id, "currency": "USD"},
        {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert reply.status == 202, reply.body
    _wait(lambda: api.request("GET", f"/v1/refunds/{refund_id}").body["status"] == "SUCCEEDED", "refund")

    # When the PSP raises a chargeback on it (the API derived from --endpoint alone)
    charged = payments(serve, "psp", "chargeback", order_id, "--output", "table", endpoint=True)

    # Then the chargeback is said in major units with its currency, and the notification delivered
    assert charged.code == 0, charged.out + charged.err
    assert "19.99 USD" in charged.out and "1999" not in charged.out
    _wait(lambda: payments(serve, "attention", "list").code == 1, "the order parked for a person")

    # And stuck and attention list report it as a finding (exit 1), with why it waits
    stuck = payments(serve, "stuck", "--output", "json")
    assert stuck.code == 1
    (parked,) = [p for p in stuck.json()["payments"] if p["checkout_id"] == checkout_id]
    assert parked["amounts"] == [{"amount": "19.99", "currency": "USD"}]
    assert parked["orders"][0]["needs_attention"] is True and parked["orders"][0]["attention_reason"]
    table = payments(serve, "stuck", "--output", "table")
    assert table.code == 1 and table.out.splitlines()[0].split()[:4] == ["KIND", "ID", "STATUS", "AGE"]
    assert "19.99 USD" in table.out
    shown = payments(serve, "attention", "show", order_id, "--output", "table")
    assert shown.code == 1 and "OPEN" in shown.out

    # When a person resolves it, Then the queue is empty again: exit 0
    resolved = payments(serve, "attention", "resolve", order_id, "--note", "claim filed with the issuer")
    assert resolved.code == 0, resolved.out + resolved.err
    assert payments(serve, "attention", "list").code == 0
    assert payments(serve, "stuck").code == 0


def test_mismatches_are_a_work_queue_exit_1_until_resolved(serve: Serve) -> None:
    # Given a settlement file of charges this ledger never saw, dropped in the bucket and reconciled by its trigger
    key = f"incoming/adyen/cli-{uuid.uuid4().hex[:8]}.csv"
    s3 = serve.aws("s3")
    s3.put_object(Bucket="settlements", Key=key, Body=FIXTURE.read_bytes())

    def reported() -> bool:
        return bool(s3.list_objects_v2(Bucket="settlements", Prefix=f"reports/{key}.json").get("KeyCount"))

    _wait(reported, f"the report of {key}", timeout=120)
    # When the day's open mismatches are listed: findings, exit 1, amounts in major units with their currency
    listed = payments(serve, "mismatches", "list", "--day", "2026-11-30", "--open", "--output", "table")
    assert listed.code == 1, listed.out + listed.err
    assert listed.out.splitlines()[0].split()[:3] == ["ID", "STATUS", "KIND"]
    assert "MISSING_IN_LEDGER" in listed.out and "19.99 USD" in listed.out and key in listed.out
    mine = [m for m in payments(serve, "mismatches", "list", "--day", "2026-11-30").json() if m["source_key"] == key]
    assert mine and {m["status"] for m in mine} == {"OPEN"}
    first = mine[0]["id"]
    # And one is shown in full (exit 0), by --endpoint too
    shown = payments(serve, "mismatches", "show", first, "--output", "table", endpoint=True)
    assert shown.code == 0 and f"id:             {first}" in shown.out and "status:         OPEN" in shown.out
    # When a person resolves it with a note, Then it is recorded as the local user, exit 0
    resolved = payments(serve, "mismatches", "resolve", first, "--note", "charge booked by hand, ticket 7")
    assert resolved.code == 0, resolved.out + resolved.err
    assert resolved.json()["status"] == "RESOLVED" and resolved.json()["resolved_by"].startswith("local user ")
    # And a second resolution is refused in one line, exit 2: the first stands
    again = payments(serve, "mismatches", "resolve", first, "--note", "again")
    assert (
        again.code == 2 and "already resolved by local user" in again.err and "the first resolution stands" in again.err
    )
    assert len(again.err.strip().splitlines()) == 1, again.err
    # When every one of the file's mismatches is resolved, Then the file adds no finding any more
    for other in mine[1:]:
        assert payments(serve, "mismatches", "resolve", other["id"], "--note", "written off").code == 0
    left = payments(serve, "mismatches", "list", "--day", "2026-11-30", "--open")
    assert not [m for m in left.json() if m["source_key"] == key]
    assert left.code == (1 if left.json() else 0)


def test_verify_finds_a_tampered_wallet_in_major_units(serve: Serve, paid: tuple[str, str]) -> None:
    ddb = serve.aws("dynamodb")
    balances = [
        i
        for i in ddb.scan(TableName="wallets")["Items"]
        if "balance_minor" in i and i.get("currency", {}).get("S") == "USD"
    ]
    assert balances, "no USD wallet balance item"
    key = {name: balances[0][name] for name in ("pk", "sk")}
    # Given a wallet balance changed behind the ledger's back by one cent
    ddb.update_item(
        TableName="wallets",
        Key=key,
        UpdateExpression="ADD balance_minor :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    try:
        # When verify runs, Then it is a finding (exit 1) said in major units and currency
        found = payments(serve, "verify", "--output", "table")
        assert found.code == 1, found.out + found.err
        assert re.search(
            r"^VIOLATION \[4\] .*: wallet pending \d+\.\d\d USD != ledger \d+\.\d\d USD", found.out, re.M
        ), found.out
        assert found.out.rstrip().endswith("violation(s)")
    finally:
        ddb.update_item(
            TableName="wallets",
            Key=key,
            UpdateExpression="ADD balance_minor :one",
            ExpressionAttributeValues={":one": {"N": "-1"}},
        )
    assert payments(serve, "verify").code == 0


# --- the command could not do its job (exit 2), one line, no traceback --------------------------------
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["stuck", "--older-than", "15x"], "not a duration"),
        (["reconcile", "/nonexistent.csv"], "payments reconcile: no file /nonexistent.csv"),
        (["resume", "chk_nope"], "payments resume: no checkout 'chk_nope'"),
        (["attention", "show", "po_nope"], "payments attention show: no order or refund 'po_nope'"),
        (["attention", "resolve", "po_nope", "--note", "x"], "payments attention resolve: no order or refund"),
        (["psp", "chargeback", "po_nope"], "payments psp chargeback: no charge for po_nope"),
        (["psp", "settle", "--date", "2026-13-01"], "not a day"),
        (
            ["mismatches", "show", "20261130-000000000000"],
            "payments mismatches show: no mismatch '20261130-000000000000'",
        ),
        (["mismatches", "resolve", "20261130-000000000000", "--note", "x"], "payments mismatches resolve: no mismatch"),
        (["mismatches", "list", "--day", "30/11/2026"], "not a day"),
        (["verify", "--output", "yaml"], "invalid choice"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_operator_mistakes_exit_2_in_one_line(serve: Serve, args: list[str], says: str) -> None:
    # When the operator gets an argument or an id wrong
    ran = payments(serve, *args)
    # Then one line says so on stderr, exit 2 (argparse's usage errors: its usage line, then the error)
    assert ran.code == 2, ran.out + ran.err
    assert says in ran.err
    if not says.startswith(("not a", "invalid")):
        assert len(ran.err.strip().splitlines()) == 1, ran.err


@pytest.mark.parametrize(
    "args",
    [
        ["verify"],
        ["stuck"],
        ["resume", "chk_x"],
        ["attention", "list"],
        ["psp", "settle"],
        ["psp", "chargeback", "po_x"],
        ["mismatches", "list"],
        ["mismatches", "show", "20261130-000000000000"],
        ["mismatches", "resolve", "20261130-000000000000", "--note", "x"],
    ],
)
def test_an_unreachable_endpoint_exits_2(serve: Serve, args: list[str]) -> None:
    # Given an endpoint where nothing listens
    dead = f"http://127.0.0.1:{free_port()}"
    # When a command is pointed at it
    ran = payments(serve, *args, "--endpoint", dead)
    # Then one line says it cannot be reached and what to do, exit 2
    assert ran.code == 2, ran.out + ran.err
    assert f"cannot reach the endpoint {dead}" in ran.err and "payments serve" in ran.err
    assert len(ran.err.strip().splitlines()) == 1, ran.err


def test_debug_shows_the_traceback(serve: Serve) -> None:
    ran = payments(serve, "--debug", "verify", "--endpoint", f"http://127.0.0.1:{free_port()}")
    assert ran.code == 2 and "Traceback" in ran.err and "cannot reach the endpoint" in ran.err


def test_no_runtime_and_no_aws_configuration_says_how_to_point_at_one(serve: Serve, tmp_path: Path) -> None:
    # Given no discovery file (another folder), no AWS variable, an empty HOME
    env = _bare_env(tmp_path, tmp_path / "run")
    # When a command runs
    ran = payments(serve, "stuck", env=env)
    # Then one line: nothing found, no region, and how to point at a local runtime
    assert ran.code == 2, ran.out + ran.err
    assert "no local runtime found and no AWS region configured" in ran.err
    assert "--endpoint URL" in ran.err and "payments serve" in ran.err


def test_a_stale_discovery_file_is_ignored_with_a_note(serve: Serve, tmp_path: Path) -> None:
    # Given the live runtime's discovery file and a stale one whose process is gone
    env = {**serve.env, "PAYMENTS_RUNTIME_DIR": str(tmp_path)}
    (live,) = serve.runtime_dir.glob("serve-*.json")
    (tmp_path / live.name).write_text(live.read_text())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"serve-{gone.stdout.strip()}.json"
    stale.write_text(
        json.dumps({"pid": int(gone.stdout), "api_url": "http://127.0.0.1:1", "aws_url": "http://127.0.0.1:2"})
    )
    # When a command runs by discovery
    ran = payments(serve, "stuck", env=env)
    # Then the live runtime answers, and the stale file is noted and removed
    assert ran.code in (0, 1), ran.out + ran.err
    assert f"ignoring stale {stale}" in ran.err
    assert not stale.exists()


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "payments.ops.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("payments ") and done.stdout.split()[1][0].isdigit()


def test_serve_on_ports_in_use_says_so_in_one_line(serve: Serve) -> None:
    # Given the running runtime's API port, When a second payments serve asks for it
    port = serve.api_url.rsplit(":", 1)[1]
    ran = payments(serve, "serve", "--port", port, "--aws-port", str(free_port()))
    # Then it refuses before starting anything: one line, exit 2
    assert ran.code == 2, ran.out + ran.err
    assert f"payments serve: cannot listen on 127.0.0.1:{port}" in ran.err and "--port" in ran.err
    assert len(list(serve.runtime_dir.glob("serve-*.json"))) == 1
