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
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger()
#: Only botocore is patched (every AWS call becomes a subsegment). The default patches every
#: library X-Ray knows (requests, httplib, sqlite3, ...), importing each at cold start although
#: no function uses them; a PSP adapter that calls out over HTTP adds its client library here.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics(namespace="Payments")

Handler = TypeVar("Handler", bound=Callable[..., Any])


def entry_point(handler: Handler) -> Handler:
    """The one instrumentation policy of every Lambda handler, outermost first:

    * the logger takes the Lambda context and **clears its appended keys** at each invocation, so a
      warm container never carries one checkout's ids into the next invocation's logs;
    * the tracer opens the handler's subsegment but **never records the response** as metadata:
      a response holds payment data (amounts, sellers, references), which has no place in X-Ray;
    * the metrics are flushed at the end of the invocation.
    """
    instrumented = metrics.log_metrics(handler)
    instrumented = tracer.capture_lambda_handler(instrumented, capture_response=False)
    return logger.inject_lambda_context(instrumented, clear_state=True)  # type: ignore[return-value]


LOCAL_COUNTS: Counter[str] = Counter()
_lock = threading.Lock()


def count(name: str, value: int = 1) -> None:
    if is_metrics_disabled():
        with _lock:
            LOCAL_COUNTS[name] += value
    else:
        metrics.add_metric(name=name, unit="Count", value=value)
