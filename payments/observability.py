"""Logger, tracer and metrics shared by every function (Powertools).

Service name and namespace come from ``POWERTOOLS_SERVICE_NAME`` and
``POWERTOOLS_METRICS_NAMESPACE``. Nothing here logs request bodies: a checkout
body may carry a card number that the API is about to reject.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Payments")
