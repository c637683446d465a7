"""``payments demo --psp adyen-fake``: the whole system charging through the Adyen adapter over HTTP
against the local Checkout fake (its own process: the demo owns a local runtime of its own)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from payments_dev.local.adyen_fake import checkout_spec


def test_the_demo_on_the_adyen_fake_holds_every_invariant_and_reconciles_clean(tmp_path: Path) -> None:
    # Given a small Cyber Monday run whose executor charges the Adyen fake
    command = [
        sys.executable,
        "-m",
        "payments.ops.cli",
        "demo",
        "--psp",
        "adyen-fake",
        "--checkouts",
        "12",
        "--concurrency",
        "4",
        "--output-dir",  # its day is left in the test's folder, not in the clone
        str(tmp_path),
    ]
    # When it runs to the end
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    # Then every invariant holds, the fake's settlement file reconciles clean, and no request it
    # received broke Adyen's Checkout document
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "RESULT: all invariants hold" in result.stdout
    assert "incoming/adyen/" in result.stdout and " 0 mismatches, 0 rejected" in result.stdout
    if checkout_spec() is not None:
        assert " 0 invalid against Checkout v72" in result.stdout, result.stdout[-2000:]
