"""The large model-based run of money: ``make model STEPS=20000`` (``python -m tests.model.large_run``).

At least ``--steps`` model steps per PSP, run as rounds of ``--round`` steps, each round its own pytest
process with its own local runtime. Why rounds: the local runtime keeps every DynamoDB item, S3 object and
execution in moto's memory for the life of its process, so one process that ran 6,500 steps held 6.5 GB
and ran each step twice as slowly as a fresh one. A round starts from an empty system; within a round the
model's state and the system's carry over from step to step, as in ``make test``.

Each round prints its own figures (``model[<psp>]: N steps in S s, V violations``); this driver adds them up
per PSP, prints the total, and exits non-zero if any round failed or reported a violation. A round that
failed keeps its output in full, in ``out/model-rounds/<psp>-<round>.log`` (the shrunk reproducer and
its ``@reproduce_failure`` blob are in it); the driver prints the failure's own lines from it. ``--parallel`` runs the PSPs side by side
(one process per PSP at a time: two cores are enough).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

PSPS = ("simulator", "adyen")
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out" / "model-rounds"
#: the lines of a pytest failure that say what failed (the rest of a round's output is the system's own logs)
VERDICT = re.compile(r"^(E |FAILED |Falsifying|state = |state\.|@reproduce_failure|.*ModelViolation|.*Error: )")
FIGURES = re.compile(
    r"model\[(?P<psp>[^\]]+)\]: (?P<steps>\d+) steps in (?P<secs>[\d.]+)s .*?, (?P<violations>\d+) violations"
)


@dataclass
class Tally:
    psp: str
    steps: int = 0
    seconds: float = 0.0
    violations: int = 0
    rounds: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        per_1000 = 1000 * self.seconds / max(self.steps, 1)
        verdict = "FAILED" if self.failures or self.violations else "ok"
        return (
            f"model[{self.psp}]: {self.steps} steps in {self.rounds} rounds, {self.seconds:.0f}s "
            f"({per_1000:.0f}s per 1000 steps), {self.violations} violations: {verdict}"
        )


def one_round(psp: str, steps: int, python: str) -> tuple[int, str]:
    env = {**os.environ, "MODEL_STEPS": str(steps)}
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/model/test_money_model.py"]
    command += ["-k", f"test_money_agrees_with_its_model and {psp}"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def run_psp(psp: str, target: int, per_round: int, python: str) -> Tally:
    tally = Tally(psp)
    while tally.steps < target and not tally.failures:
        code, output = one_round(psp, min(per_round, target - tally.steps), python)
        tally.rounds += 1
        figures = list(FIGURES.finditer(output))
        if code != 0 or not figures:
            OUT.mkdir(parents=True, exist_ok=True)
            log = OUT / f"{psp}-{tally.rounds}.log"
            log.write_text(output)
            verdict = [line for line in output.splitlines() if VERDICT.match(line)]
            why = "the round printed no figures, so nothing was checked" if code == 0 else f"exit {code}"
            tally.failures.append(f"{psp} round {tally.rounds}: {why}; full output: {log}\n" + "\n".join(verdict[-80:]))
        for match in figures[-1:]:  # the round's final line (chunks print progress lines without "in")
            tally.steps += int(match["steps"])
            tally.seconds += float(match["secs"])
            tally.violations += int(match["violations"])
        print(f"  round {tally.rounds} on {psp}: exit {code}; {tally.line()}", flush=True)
    return tally


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="model steps per PSP, at least (default 2000)")
    parser.add_argument("--round", type=int, default=2500, help="steps per round, one fresh runtime each")
    parser.add_argument("--psp", choices=PSPS, action="append", help="one PSP (repeatable; default both)")
    parser.add_argument("--parallel", action="store_true", help="run the PSPs side by side")
    args = parser.parse_args(argv)
    psps = args.psp or list(PSPS)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(psps) if args.parallel else 1) as pool:
        tallies = list(pool.map(lambda psp: run_psp(psp, args.steps, args.round, sys.executable), psps))
    print(f"\nThe model of money, {time.monotonic() - started:.0f}s wall:")
    for tally in tallies:
        print(tally.line())
        for failure in tally.failures:
            print(failure)
    return 1 if any(t.failures or t.violations for t in tallies) else 0


if __name__ == "__main__":
    raise SystemExit(main())
