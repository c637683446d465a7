"""Acknowledging cdk-nag findings, always with a written reason.

cdk-nag (v3) runs as a CDK policy-validation plugin (see ``infra/app.py``); a
finding is acknowledged on the construct that causes it through CDK's
``Validations`` API. Wildcard-resource findings are identified by the resource
string as cdk-nag renders it (``<LogicalId.Arn>``, ``<AWS::Region>``, ...),
which ``acknowledge_wildcard_resource`` derives from the ARN itself, so the
acknowledgment follows the resource instead of a hard-coded logical id.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge ``rule_id`` (e.g. ``AwsSolutions-S1``) on ``scope`` and everything below it."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def acknowledge_wildcard_resource(scope: IConstruct, resource_arn: str, reason: str) -> None:
    """Acknowledge the AwsSolutions-IAM5 finding of one wildcard resource ARN granted within ``scope``."""
    rendered = _render(cdk.Stack.of(scope).resolve(resource_arn))
    acknowledge(scope, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as cdk-nag does")
