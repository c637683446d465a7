"""Who hears the alarms: the topic and the dashboard are outputs of the stack, and a production stage
that nobody listens to says so at synthesis (docs/deploy.md, "Alarms: who hears them")."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Annotations, Match

from infra.app import build_app
from infra.constructs.observability import NO_ALARM_SUBSCRIBER
from tests.infrastructure.conftest import LIVE_PROD, REPO_ROOT
from tests.infrastructure.helpers import resources


def _prod_warnings(**overrides: Any) -> list[str]:
    """The texts of the no-subscriber warning on prod synthesised with ``overrides`` on top of cdk.json."""
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    context["aws:cdk:bundling-stacks"] = []
    context.update(LIVE_PROD)
    context.pop("alarmEmail")
    context.update(overrides)
    _, stacks = build_app(context)
    (stack,) = stacks
    found = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    return [str(w.entry.data) for w in found if NO_ALARM_SUBSCRIBER in str(w.entry.data)]


def test_the_alarm_topic_and_the_dashboard_are_stack_outputs(dev: dict[str, Any]) -> None:
    # Given the dev stack's template
    outputs = dev["Outputs"]
    # Then its outputs name the alarm topic (the ARN to subscribe to) and the dashboard
    (topic_id,) = resources(dev, "AWS::SNS::Topic")
    (dashboard_id,) = resources(dev, "AWS::CloudWatch::Dashboard")
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": topic_id}
    assert outputs["DashboardName"]["Value"] == {"Ref": dashboard_id}
    assert dev["Resources"][dashboard_id]["Properties"]["DashboardName"] == "payments-dev-flow"


def test_a_production_stage_nobody_listens_to_warns_at_synthesis() -> None:
    # Given prod configured for live Adyen but with no alarm subscriber
    # When it is synthesised
    warnings = _prod_warnings()
    # Then one warning says nobody hears its alarms and what to set
    assert len(warnings) == 1
    assert "alarmEmail" in warnings[0] and "alarmSubscribedElsewhere" in warnings[0]


def test_subscribers_managed_outside_the_stack_silence_the_warning() -> None:
    # Given prod whose alarm topic is subscribed outside the stack (PagerDuty, AWS Chatbot)
    # Then synthesis has nothing to warn about (with alarmEmail: test_checks.py, the live prod stage)
    assert _prod_warnings(alarmSubscribedElsewhere="true") == []
