"""cdk-nag (AWS Solutions) and cfn-lint pass on the synthesised templates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: the warnings cdk.json's prod stage carries on purpose until an operator configures Adyen
#: (infra/stack.py; docs/deploy.md, "Connecting Adyen"), and that nobody hears its alarms until
#: alarmEmail is set (infra/constructs/observability.py; docs/deploy.md, "Alarms: who hears them"): each
#: names what to set
PROD_PLACEHOLDER_WARNINGS = {
    "payments:adyen-merchant-account",
    "payments:adyen-test-environment",
    "payments:no-alarm-subscriber",
}


def _findings(outdir: Path) -> list[tuple[str, str, str, str]]:
    """(plugin, rule, severity, construct path) of every finding of the validation report."""
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        (plugin["pluginName"], violation["ruleName"], violation["severity"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]


def test_cdk_nag_reports_no_unacknowledged_finding(synthesis):
    # Given the app synthesised with the AwsSolutions checks as a validation plugin
    findings = _findings(synthesis.outdir)
    # Then no plugin reported a violation, error or warning (each acknowledgment has a reason in infra/),
    # except prod's three warnings saying what an operator must set before deploying it
    assert sorted(findings) == sorted(
        ("Construct Annotations", f"Annotation::{rule}", "warning", "Payments-prod")
        for rule in PROD_PLACEHOLDER_WARNINGS
    )


def test_a_configured_live_production_stage_has_no_finding_at_all(live_prod):
    # Given prod synthesised as an operator configures it to take real money (live Adyen)
    # Then neither cdk-nag nor an annotation reports anything
    assert _findings(live_prod.outdir) == []


def test_cfn_lint_finds_no_error(synthesis, live_prod):
    # Given every synthesised template, and prod configured for live Adyen
    templates = [str(synthesis.outdir / f"{name}.template.json") for name in synthesis.templates]
    templates += [str(live_prod.outdir / f"{name}.template.json") for name in live_prod.templates]
    # When cfn-lint checks them
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # the console script of the running environment
    # W3005 (a DependsOn also implied by a GetAtt) is how CDK makes a function wait for its role's policy.
    command = [str(cfn_lint), "--format", "parseable", "--ignore-checks", "W3005", "--", *templates]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    # Then it finds nothing (exit code 0: no error, warning or informational finding)
    assert result.returncode == 0, result.stdout + result.stderr
