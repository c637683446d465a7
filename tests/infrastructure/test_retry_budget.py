"""One execution's worst case, computed from the ASL, fits Express's 5-minute limit with a margin.

An Express execution that outlives 5 minutes fails (States.Timeout of the execution), so every
retry the ASL allows must fit in it: for a Task, (1 + MaxAttempts) attempts that each run until
TimeoutSeconds, plus the waits between them (IntervalSeconds x BackoffRate^n, capped by
MaxDelaySeconds; full jitter only shortens them). The orders of a checkout run in one Map wave
(MaxConcurrency >= the per-checkout order bound), so the execution's worst case is the longest
path through the states: one order's execute -> wallet -> ledger, then FinalizePayment.
An execution that dies anyway is re-driven by the recovery function (functions/recovery).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from payments.kernel.config import MAX_ORDERS_PER_CHECKOUT
from tests.infrastructure.helpers import function_named

ASL = Path(__file__).resolve().parents[2] / "stepfunctions" / "payment.asl.json"
EXPRESS_LIMIT_SECONDS = 300
BUDGET_SECONDS = 240  # a minute of margin under Express's limit


def retry_waits(retrier: dict[str, Any]) -> float:
    """The longest total wait between the attempts of one retrier."""
    interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
    cap = retrier.get("MaxDelaySeconds", float("inf"))
    return sum(min(interval * rate**n, cap) for n in range(retrier.get("MaxAttempts", 3)))


def task_worst_case(state: dict[str, Any]) -> float:
    """Every attempt runs to TimeoutSeconds; the retriers' attempts add up (each one counts its own)."""
    retriers = state.get("Retry", [])
    attempts = 1 + sum(r.get("MaxAttempts", 3) for r in retriers)
    assert "TimeoutSeconds" in state, f"a Task without TimeoutSeconds waits up to the execution's limit: {state}"
    return attempts * state["TimeoutSeconds"] + sum(retry_waits(r) for r in retriers)


def path_worst_case(states: dict[str, Any], name: str) -> float:
    """The longest path from state ``name`` to an end, in seconds."""
    state = states[name]
    if state["Type"] == "Task":
        own = task_worst_case(state)
    elif state["Type"] == "Map":
        processor = state["ItemProcessor"]
        assert state.get("MaxConcurrency", 0) in (0,) or state["MaxConcurrency"] >= MAX_ORDERS_PER_CHECKOUT
        own = path_worst_case(processor["States"], processor["StartAt"])
    else:
        own = 0.0
    nexts = [state["Next"]] if "Next" in state else []
    nexts += [choice["Next"] for choice in state.get("Choices", [])]
    nexts += [state["Default"]] if "Default" in state else []
    nexts += [catcher["Next"] for catcher in state.get("Catch", [])]
    return own + max((path_worst_case(states, n) for n in nexts), default=0.0)


def test_retry_waits_follow_the_asl_semantics():
    # Given a retrier of 4 attempts from 1 s doubling, capped at 5 s
    # Then it waits 1 + 2 + 4 + 5 seconds at most
    assert retry_waits({"IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 4, "MaxDelaySeconds": 5}) == 12
    # and a task of 10 s with it runs 5 attempts
    assert (
        task_worst_case(
            {"TimeoutSeconds": 10, "Retry": [{"IntervalSeconds": 1, "MaxAttempts": 4, "MaxDelaySeconds": 5}]}
        )
        == 62
    )


def test_the_whole_retry_budget_of_one_execution_fits_express_with_a_margin():
    # Given the payment workflow as deployed
    asl = json.loads(ASL.read_text())
    # When its worst case is computed (every attempt of every task on the longest path times out)
    worst = path_worst_case(asl["States"], asl["StartAt"])
    # Then it is under 4 minutes: a minute of margin under Express's 5-minute execution limit
    assert worst < BUDGET_SECONDS < EXPRESS_LIMIT_SECONDS, f"worst case {worst:.0f} s"
    # and the old budget (MaxAttempts 6-8, 30 s task timeouts, 10 orders per wave) would not have fitted
    assert worst > 60, "suspiciously small: no retries left?"


def test_the_map_runs_every_order_of_a_checkout_in_one_wave():
    # Given the Map over the payment orders
    the_map = json.loads(ASL.read_text())["States"]["ProcessPaymentOrders"]
    # Then its concurrency admits the largest checkout at once (a second wave would double the budget)
    assert the_map["MaxConcurrency"] >= MAX_ORDERS_PER_CHECKOUT


def test_every_function_times_out_before_the_task_that_runs_it(dev):
    # Given the Tasks of the payment workflow and the functions they invoke
    asl = json.loads(ASL.read_text())
    tasks = {
        "ExecutePaymentOrder": "executor",
        "UpdateWallet": "wallet",
        "AppendLedger": "ledger",
        "FinalizePayment": "payment",
    }
    states = {**asl["States"], **asl["States"]["ProcessPaymentOrders"]["ItemProcessor"]["States"]}
    for state_name, function in tasks.items():
        _, props = function_named(dev, function)
        # Then the function's own timeout fires first: the task sees a function error, retried, not a hung attempt
        assert props["Timeout"] < states[state_name]["TimeoutSeconds"], (function, props["Timeout"])
