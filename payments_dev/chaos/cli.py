"""``payments chaos --checkouts N --seed S``: the fault-injection harness on a fresh local runtime.

Wire it into ``payments/ops/cli.py`` next to the reconciliation commands::

    from payments_dev.chaos.cli import add_commands as add_chaos_commands
    add_chaos_commands(commands)

Exit code 0 when every check passed, 1 on any violation.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from typing import Any

from payments_dev.chaos.schedule import PROFILES


def _chaos(args: argparse.Namespace) -> int:
    from payments_dev.chaos import harness
    from payments_dev.event_invariants import everything
    from payments_dev.local.runtime import LocalRuntime, free_port

    profile = PROFILES[args.profile]
    if args.only_steps:
        profile = dataclasses.replace(profile, steps=tuple(args.only_steps.split(",")))
    config = harness.ChaosConfig(
        checkouts=args.checkouts,
        seed=args.seed,
        concurrency=args.concurrency,
        profile=profile,
        time_scale=args.time_scale,
        settle_timeout=args.timeout,
        reconcile=not args.no_reconcile,
        checkouts_per_day=args.checkouts_per_day,
        recovery=not args.no_recovery,
        recovery_delay=args.recovery_delay,
    )
    if args.psp == "adyen-fake" and args.checkouts_per_day:
        # the adapter records the wall clock as the capture time (Adyen tells no other): one PSP day
        print("chaos: --psp adyen-fake settles the wall clock's day (--checkouts-per-day 0)")
        config = dataclasses.replace(config, checkouts_per_day=0)
    if not args.verbose:
        # parked orders log an ERROR each (the alarm) and moto logs every task failure: expected here
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
        logging.getLogger("moto").setLevel(logging.CRITICAL)
    runtime = LocalRuntime(port=free_port(), aws_port=free_port())
    adyen = None
    if args.psp == "adyen-fake":
        from payments_dev.local.adyen_fake import LocalAdyen

        # Adyen delivers at least once and in no guaranteed order: the fake duplicates and reorders a share too
        adyen = LocalAdyen(runtime, duplicate=args.adyen_duplicate, reorder=args.adyen_reorder, seed=args.seed)
        adyen.start()  # before the runtime: it exports the settings that point the executor at the fake
        config = dataclasses.replace(config, psp=adyen)
    runtime.start()
    try:
        result = harness.run(runtime.api_url, config)
        if adyen is not None:
            invalid = len(adyen.fake.invalid_requests)
            print(
                f"chaos: the Adyen fake received {len(adyen.fake.requests)} requests, {invalid} invalid against the Checkout spec"
            )
            if invalid:
                result.violations.append(
                    f"[every request to Adyen validates against the Checkout spec] {invalid} invalid"
                )
        ok = result.ok
        if not args.no_money_back:  # issue 18: refunds, notifications and chargebacks on the run's orders
            from payments_dev.chaos.money_back import run_money_back

            money_back = run_money_back(
                runtime.api_url,
                f"cm{config.seed}{config.run_tag}",
                config.seed,
                concurrency=config.concurrency,
                profile=profile,
                time_scale=config.time_scale,
                psp=adyen.record() if adyen is not None else None,
                events_in_scope=everything,  # the runtime is the run's own: every item's events are checked
            )
            ok = money_back.ok and ok
            print("RESULT (with money back): " + ("no violations" if ok else "VIOLATIONS FOUND"))
        if not args.no_payouts and not config.reconcile:
            print("payouts: skipped (--no-reconcile: no charge is settled, nothing is available to pay out)")
        elif not args.no_payouts:  # issue 25: the run's sellers paid by SEPA credit transfer
            from payments_dev.chaos.payouts import run_payouts

            payouts = run_payouts(
                runtime.api_url,
                f"cm{config.seed}{config.run_tag}",
                config.seed,
                concurrency=config.concurrency,
                profile=profile,
                psp=adyen.record() if adyen is not None else None,
                events_in_scope=everything,
            )
            ok = payouts.ok and ok
            print("RESULT (with payouts): " + ("no violations" if ok else "VIOLATIONS FOUND"))
    finally:
        runtime.stop()
        if adyen is not None:
            adyen.stop()
    return 0 if ok else 1


def add_commands(subparsers: Any) -> None:
    """Register ``chaos`` on the ``payments`` CLI's subparsers."""
    chaos = subparsers.add_parser(
        "chaos", help="run checkouts through the local runtime with seeded fault injection, then check every invariant"
    )
    chaos.add_argument("--checkouts", type=int, default=300, help="checkouts to place (default 300)")
    chaos.add_argument("--seed", type=int, default=7, help="same seed => same fault schedule (see the printed digest)")
    chaos.add_argument(
        "--profile", choices=sorted(PROFILES), default="default", help="fault rates (payments_dev/chaos/schedule.py)"
    )
    chaos.add_argument(
        "--only-steps", default="", help="comma-separated task steps to inject into: executor,wallet,ledger,finalize"
    )
    chaos.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients")
    chaos.add_argument(
        "--time-scale", type=float, default=1.0, help="scale of the ASL Retry waits (1.0 = real seconds; 0.1 for CI)"
    )
    chaos.add_argument("--timeout", type=float, default=900.0, help="seconds for every checkout to settle")
    chaos.add_argument(
        "--checkouts-per-day",
        type=int,
        default=6,
        help="checkouts per simulated PSP day; each day is one settlement file with its own S3 and reconciliation faults (0: the wall clock, one day)",
    )
    chaos.add_argument("--no-reconcile", action="store_true", help="skip the settlement + reconciliation phase")
    chaos.add_argument(
        "--no-recovery",
        action="store_true",
        help="switch the automatic recovery off (a protection removed: crashed starts stay unfinished)",
    )
    chaos.add_argument(
        "--recovery-delay",
        type=float,
        default=45.0,
        help="seconds a payment may stay unfinished before the recovery re-drives it",
    )
    chaos.add_argument(
        "--no-money-back", action="store_true", help="skip the refunds / notifications / chargebacks phase"
    )
    chaos.add_argument(
        "--no-payouts",
        action="store_true",
        help="skip the payouts phase (concurrent payouts, payout run crashes, the bank's files twice, late or lost)",
    )
    chaos.add_argument("--verbose", action="store_true", help="keep the functions' and moto's logs")
    chaos.add_argument(
        "--psp",
        choices=("simulator", "adyen-fake"),
        default="simulator",
        help="the PSP the executor charges (adyen-fake: the Adyen adapter over HTTP to the local fake)",
    )
    chaos.add_argument(
        "--adyen-duplicate",
        type=float,
        default=0.1,
        help="--psp adyen-fake: share of the fake's accepted notifications it delivers once more (Adyen's at-least-once)",
    )
    chaos.add_argument(
        "--adyen-reorder",
        type=float,
        default=0.1,
        help="--psp adyen-fake: share of the fake's notifications it holds back behind the next one (no order guaranteed)",
    )
    chaos.set_defaults(func=_chaos)


def main(argv: list[str] | None = None) -> int:
    root = argparse.ArgumentParser(prog="payments")
    commands = root.add_subparsers(dest="command", required=True)
    add_commands(commands)
    from payments.ops.operations import add_commands as add_operations

    add_operations(commands)
    args = root.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
