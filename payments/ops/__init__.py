"""The operator's tools: the ``payments`` command (verify, stuck, resume, reconcile, backfill,
``psp settle`` and ``psp chargeback``) and the money invariants it checks.

Installed by ``pip install .`` alone and run from a workstation against a deployed stack (or the
local runtime); never shipped in the Lambda asset. The dev commands (serve, demo, chaos) are
imported from ``payments_dev`` only when they are run.
"""
