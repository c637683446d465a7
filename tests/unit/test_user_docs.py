"""The user documentation (README.md, docs/) stands on its own.

A user of the repository has nothing beside it: no link may leave the repository, no page may
speak of issue numbers or carry run diaries (those live in docs/benchmarks.md and the commit
history), the README keeps its two set-up commands and shows the examples a newcomer needs, and
the deploy guide has the sections an operator looks for, its idle-cost arithmetic right.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: the user documentation: the README and every page of docs/ (benchmarks.md is the record of runs)
USER_DOCS = [README, *sorted(p for p in DOCS.glob("*.md") if p.name != "benchmarks.md")]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"^#{1,2} ", text[start + len(heading) :], flags=re.MULTILINE)
    return text[start : start + len(heading) + following.start()] if following else text[start:]


def test_nothing_in_readme_or_docs_points_outside_the_repository() -> None:
    # Given every file of README.md and docs/ (what `grep -rn "\.\./shared" README.md docs/` reads)
    files = [README, *sorted(p for p in DOCS.rglob("*") if p.is_file())]
    # Then none names the sibling folder a user of the repository does not have
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in files
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if "../shared" in line
    ]
    assert found == []


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_lands_on_a_file_of_the_repository(path: Path) -> None:
    # Given the Markdown links of a page (not in code), less those to the web and to anchors of the same page
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL))
    targets = re.findall(r"\]\(([^)\s]+)\)", prose)
    relative = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    # Then each names a file or folder inside the repository
    for target in relative:
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{path.name}: {target}"


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_speak_of_behaviour_not_of_issue_numbers(path: Path) -> None:
    found = re.findall(r".{0,40}\bissues? \d+.{0,40}", path.read_text(), flags=re.IGNORECASE)
    assert found == []


def test_the_readme_keeps_two_setup_commands() -> None:
    # Given the README's section for a newcomer
    section = _section(README.read_text(), "## Two commands")
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    # Then it gives exactly two commands: make demo, make test
    assert commands == ["make demo", "make test"]


def test_the_readme_shows_a_refund_an_error_and_the_aws_cli_with_dummy_credentials() -> None:
    text = README.read_text()
    # a refund request and its GET
    assert re.search(r"curl -si http://127\.0\.0\.1:8080/v1/refunds \\\n.*Idempotency-Key", text)
    assert re.search(r"curl -s http://127\.0\.0\.1:8080/v1/refunds/rf_1\n", text)
    # one error response in full: status line, headers, the problem body with its field
    error = re.search(r"HTTP/1\.1 422 .*?\n\n(\{.*?\})\n```", text, flags=re.DOTALL)
    assert error and "Content-Type: application/problem+json" in error.group(0)
    problem = json.loads(error.group(1))
    assert set(problem) >= {"type", "title", "status", "detail", "errors"} and problem["status"] == 422
    assert problem["errors"][0]["field"]
    # the aws CLI against the local endpoint, with the dummy credentials and region it needs
    assert "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1" in text
    assert "aws --endpoint-url http://127.0.0.1:8081 s3 ls" in text


def test_the_deploy_guide_has_what_an_operator_looks_for() -> None:
    text = (DOCS / "deploy.md").read_text()
    for heading in (
        "### Before every deploy: `cdk diff`",
        "## Alarms: who hears them",
        "## Rolling back",
        "## What an idle stage costs per month",
    ):
        assert f"\n{heading}\n" in text, heading
    outputs = _section(text, "## Outputs")
    assert "| `AlarmTopicArn` |" in outputs and "| `DashboardName` |" in outputs
    alarms = _section(text, "## Alarms: who hears them")
    for subscriber in ("E-mail", "PagerDuty", "Slack", "payments:no-alarm-subscriber"):
        assert subscriber in alarms, subscriber
    rollback = _section(text, "## Rolling back")
    for topic in ("continue-update-rollback", "versions or aliases", "In-flight executions"):
        assert topic in rollback, topic


def _price(prices: dict, dotted: str) -> Decimal:
    value: object = prices
    for key in dotted.split("."):
        assert isinstance(value, dict) and key in value, dotted
        value = value[key]
    return Decimal(str(value))


def test_the_idle_cost_uses_the_price_file_and_adds_up() -> None:
    # Given the idle-cost table of the deploy guide and the price file it cites
    prices = json.loads((DOCS / "prices-us-east-1.json").read_text())
    table = _section((DOCS / "deploy.md").read_text(), "## What an idle stage costs per month")
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    body, total = rows[1:-1], rows[-1]
    sums = {"dev": Decimal(0), "prod": Decimal(0)}
    for what, dev, prod, price in body:
        # each price quoted is the file's
        cited = re.search(r"`([a-z0-9_.]+)`( [\d.]+)?", price)
        assert cited, what
        if cited.group(2):
            assert _price(prices, cited.group(1)) == Decimal(cited.group(2).strip()), what
        else:
            _price(prices, cited.group(1))
        # each cell's arithmetic holds (a x b = c, to the cent), and adds to the total
        for stage, cell in (("dev", dev), ("prod", prod)):
            product = re.search(r"([\d.,]+) (?:M |metrics |GB )?\u00d7 ([\d.]+) = ([\d.]+)$", cell.strip())
            if product:
                a, b, c = (Decimal(x.replace(",", "")) for x in product.groups())
                assert abs(a * b - c) <= Decimal("0.005"), (what, stage, cell)
            amount = re.findall(r"(?:= |^)([\d.]+)$", cell.strip())
            sums[stage] += Decimal(amount[-1]) if amount else Decimal(0)
    for stage, cell in (("dev", total[1]), ("prod", total[2])):
        stated = Decimal(re.search(r"([\d.]+) USD", cell).group(1))
        assert stated == sums[stage], (stage, stated, sums[stage])
