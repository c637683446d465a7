"""What one checkout uses, as the cost bench measured it: the one source of the cost and capacity models.

``checkout_counts.json`` (next to this module) is written by ``python -m payments_dev.bench.cost --write``
(and by ``make bench``) from checkouts of 1 and of 3 orders sent through the local runtime's HTTP API, each
followed by the assumed GET polls: per checkout the API requests, the Lambda invocations of every kind, the
PSP calls, the Step Functions starts and transitions, and every table's requests and read and write units
(index writes included, those of an index no deployed stage has apart); per kind of invocation the handler's
CPU and AWS calls. ``tests/unit/dev/test_checkout_counts.py`` fails when a fresh run counts differently.

The cost model (``payments_dev.bench.cost.price``) prices the 3-order checkout of the record; the capacity
model (:mod:`payments.ops.capacity`) reads the same record for any number of orders. Both use
:func:`billed_ms` for a duration, with the record's named assumptions: the GET polls a client makes, the PSP's
answer time (the executor waits on it: Lambda duration), the round trip of an AWS call, and Lambda's vCPU share.
Pure reading: no AWS call, no dev dependency.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("checkout_counts.json")
#: the order counts the record measures; a figure for n orders is the line through these two
MEASURED_ORDERS = (1, 3)
#: the PSP's own table (the simulated PSP's): a real PSP's requests, not ours
PSP_TABLE = "psp_table"


@cache
def record() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PATH.read_text())
    return data


def assumption(name: str) -> float:
    """A named assumption of the record: ``get_polls``, ``psp_latency_ms``, ``aws_call_ms``, ``full_vcpu_mb``."""
    return float(record()["assumptions"][name])


def checkout(orders: int) -> dict[str, Any]:
    """The counts of one measured checkout of ``orders`` orders (1 or 3)."""
    counts: dict[str, Any] = record()["checkouts"][str(orders)]
    return counts


def kinds() -> dict[str, dict[str, Any]]:
    """Every kind of invocation (``payment POST``, ``payment GET``, ``payment finalize``, ``executor``, ...)."""
    found: dict[str, dict[str, Any]] = record()["invocation_kinds"]
    return found


def billed_ms(kind: str) -> float:
    """Billed ms of one invocation in AWS: the handler's CPU stretched by the memory's vCPU share, one round
    trip per AWS call, rounded up to the ms, plus the PSP's answer time for every PSP call it waits on."""
    k = kinds()[kind]
    cpu = float(k["cpu_ms"]) * max(1.0, assumption("full_vcpu_mb") / int(k["memory_mb"]))
    own = math.ceil(cpu + float(k["aws_calls"]) * assumption("aws_call_ms"))
    return own + float(k["psp_calls"]) * assumption("psp_latency_ms")


def at(orders: float, value: Callable[[dict[str, Any]], float]) -> float:
    """``value`` of a checkout of ``orders`` orders: the line through the measured 1- and 3-order checkouts."""
    one, three = (float(value(checkout(n))) for n in MEASURED_ORDERS)
    per_order = (three - one) / (MEASURED_ORDERS[1] - MEASURED_ORDERS[0])
    return one + per_order * (orders - MEASURED_ORDERS[0])


def table_units(counts: dict[str, Any], table: str, unit: str) -> float:
    """``wru``, ``rru`` or ``requests`` of one table (a Settings field) in one checkout's counts (0 if unused)."""
    return float(counts["dynamodb"].get(table, {}).get(unit, 0.0))
