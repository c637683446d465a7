"""Every test session discovers only the ``payments serve`` it starts itself.

The operator commands find a running ``payments serve`` through the discovery files in
``PAYMENTS_RUNTIME_DIR`` (``payments.ops.clikit``). A developer's own ``payments serve``, or another
test session's, must never be the target of a command a test runs: the session gets a folder of its
own, empty, inherited by the subprocesses it starts.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ["PAYMENTS_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="payments-runtime-test-")
atexit.register(shutil.rmtree, os.environ["PAYMENTS_RUNTIME_DIR"], ignore_errors=True)
