"""Synthesise the CDK app once per test session (every stage, bundling skipped, cdk-nag on)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Synthesis:
    outdir: Path
    templates: dict[str, dict[str, Any]]  # stack name -> CloudFormation template

    def resources(self, stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.templates[stack]["Resources"].items() if v["Type"] == resource_type}


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    # Given the context of cdk.json, with asset bundling skipped for every stack
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    outdir = tmp_path_factory.mktemp("cdk.out")
    # When the app is synthesised (cdk-nag runs as a validation plugin and fails synthesis on a finding)
    app, stacks = build_app(context, outdir=str(outdir))
    app.synth()
    templates = {s.stack_name: json.loads((outdir / f"{s.stack_name}.template.json").read_text()) for s in stacks}
    return Synthesis(outdir=outdir, templates=templates)


@pytest.fixture(scope="session")
def dev(synthesis: Synthesis) -> dict[str, Any]:
    return synthesis.templates["Payments-dev"]


@pytest.fixture(scope="session")
def prod(synthesis: Synthesis) -> dict[str, Any]:
    """The prod stack of cdk.json: psp adyen (test environment, placeholder merchant account)."""
    return synthesis.templates["Payments-prod"]


#: prod as an operator configures it to take real money (docs/deploy.md, "Going live"): live
#: environment, a real-looking merchant account, the API key secret imported by name, someone on call
LIVE_PROD = {
    "stage": "prod",
    "adyenEnvironment": "live",
    "adyenLiveUrlPrefix": "1797a841fbb37ca7-AdyenDemo",
    "adyenMerchantAccount": "AcmeShopECOM",
    "adyenReturnUrl": "https://shop.example.com/checkout/return",
    "adyenApiKeySecret": "acme/adyen/live-api-key",
    "alarmEmail": "payments-oncall@shop.example.com",
}


@pytest.fixture(scope="session")
def live_prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """prod synthesised with :data:`LIVE_PROD` on top of cdk.json (cdk-nag included)."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context.update(LIVE_PROD)
    outdir = tmp_path_factory.mktemp("cdk.out.live")
    app, stacks = build_app(context, outdir=str(outdir))
    app.synth()
    templates = {s.stack_name: json.loads((outdir / f"{s.stack_name}.template.json").read_text()) for s in stacks}
    return Synthesis(outdir=outdir, templates=templates)


@pytest.fixture(scope="session")
def standard_dev(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The dev stack synthesised with ``workflowType`` STANDARD (cdk-nag included)."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context["stage"] = "dev"
    context["workflowType"] = "STANDARD"  # a top-level key overrides the stage's (infra/stage.py)
    outdir = tmp_path_factory.mktemp("cdk.out.standard")
    app, stacks = build_app(context, outdir=str(outdir))
    app.synth()
    (stack,) = stacks
    return json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
