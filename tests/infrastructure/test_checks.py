"""cdk-nag (AWS Solutions) and cfn-lint pass on the synthesised templates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_cdk_nag_reports_no_unacknowledged_finding(synthesis):
    # Given the app synthesised with the AwsSolutions checks as a validation plugin
    report = json.loads((synthesis.outdir / "validation-report.json").read_text())
    # Then no plugin reported a violation, error or warning (each acknowledgment has a reason in infra/)
    assert report["pluginReports"] == []


def test_cfn_lint_finds_no_error(synthesis):
    # Given every synthesised template
    templates = [str(synthesis.outdir / f"{name}.template.json") for name in synthesis.templates]
    # When cfn-lint checks them
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # the console script of the running environment
    # W3005 (a DependsOn also implied by a GetAtt) is how CDK makes a function wait for its role's policy.
    command = [str(cfn_lint), "--format", "parseable", "--ignore-checks", "W3005", "--", *templates]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    # Then it finds nothing (exit code 0: no error, warning or informational finding)
    assert result.returncode == 0, result.stdout + result.stderr
