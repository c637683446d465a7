"""Entry point of the CDK app: ``python3 -m infra.app`` (run by ``npx cdk`` through cdk.json).

Context ``stage`` selects one stage of ``stages`` (``-c stage=dev``); without it
every stage is synthesised (so ``cdk synth`` checks them all, and ``cdk deploy``
must be told which stack). The AWS Solutions rules of cdk-nag run on every
synthesis: an unacknowledged error fails it.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.stack import PaymentsStack
from infra.stage import Stage


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> tuple[cdk.App, list[PaymentsStack]]:
    """The app with its stacks and the cdk-nag checks (tests pass ``context`` and ``outdir``)."""
    app = cdk.App(context=context, outdir=outdir)
    selected = app.node.try_get_context("stage")
    names = [selected] if selected else list(app.node.try_get_context("stages") or {})
    stacks = [PaymentsStack(app, Stage.from_context(app.node, name)) for name in names]
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stacks


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
