"""Fault injection for the local runtime and the tests (issue 5).

Never imported by ``functions/*`` nor by anything a deployed stack runs: only the
local harness (``payments chaos``) and ``tests/chaos`` import it. It plugs into
seams the local runtime already has (the in-process Lambda dispatcher, botocore
event hooks on the shared clients, the executor's PSP factory) and restores
every one of them when it is uninstalled.

* :mod:`payments_dev.chaos.schedule`  which fault, where: a pure function of
  ``(seed, logical id, step, attempt)``, so thread scheduling cannot change it
* :mod:`payments_dev.chaos.faults`    the injectors (Lambda, DynamoDB, PSP, S3/reconcile)
* :mod:`payments_dev.chaos.harness`   N checkouts through the real ASL, then every check
* :mod:`payments_dev.chaos.money_back`  refunds, notifications and chargebacks on the run's orders
* :mod:`payments_dev.chaos.payouts`  the run's sellers paid: concurrent payouts, payout run crashes,
  the bank's files twice, late or lost, returns, a chargeback racing a payout
* :mod:`payments_dev.chaos.cli`       ``payments chaos --checkouts N --seed S``
"""
