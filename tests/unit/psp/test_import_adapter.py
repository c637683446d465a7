"""The executor imports its stage's PSP adapter at cold start (payments.psp.import_adapter), in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
from payments.psp import import_adapter
before = {m for m in ("payments.psp.adyen", "payments.psp.simulator", "Adyen") if m in sys.modules}
import_adapter()
after = {m for m in ("payments.psp.adyen", "payments.psp.simulator", "Adyen") if m in sys.modules}
print(sorted(before), sorted(after))
"""


def _imported(psp: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")} | {"PAYMENTS_PSP": psp}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("psp", "imported"),
    [
        ("adyen", "[] ['Adyen', 'payments.psp.adyen']"),  # the adapter and Adyen's library, not the simulator
        ("simulator", "[] ['payments.psp.simulator']"),
        ("stripe", "[] []"),  # unknown: nothing at cold start; default_psp refuses it at the invocation, as before
    ],
)
def test_the_adapter_the_settings_name_is_imported_and_no_other(psp: str, imported: str) -> None:
    # Given a fresh interpreter whose PAYMENTS_PSP names an adapter
    # When the executor's cold start imports it
    # Then that adapter's module (and its library) is loaded, nothing before, and no other adapter
    assert _imported(psp) == imported
