"""Logger, tracer and metrics shared by every function (Powertools).

Service name and namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE``. Nothing here logs request bodies: a checkout
body may carry a card number that the API is about to reject.

Functions record metrics through :func:`count`. When metrics are disabled (the
local runtime sets ``POWERTOOLS_METRICS_DISABLED``), the counts go to
:data:`LOCAL_COUNTS` instead: Powertools would otherwise buffer them and print
them every 100 values, since a disabled flush never clears its buffer.
"""

import threading
from collections import Counter

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger()
#: Only botocore is patched (every AWS call becomes a subsegment). The default patches every
#: library X-Ray knows (requests, httplib, sqlite3, ...), importing each at cold start although
#: no function uses them; a PSP adapter that calls out over HTTP adds its client library here.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics(namespace="Payments")

LOCAL_COUNTS: Counter[str] = Counter()
_lock = threading.Lock()


def count(name: str, value: int = 1) -> None:
    if is_metrics_disabled():
        with _lock:
            LOCAL_COUNTS[name] += value
    else:
        metrics.add_metric(name=name, unit="Count", value=value)
