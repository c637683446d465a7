"""Shared domain package of the serverless payment system.

Every Lambda function under ``functions/`` is a thin adapter over this package:

* ``payments.money``         ISO 4217 currencies, decimal strings <-> integer minor units
* ``payments.models``        the public API models (pydantic) and the workflow messages
* ``payments.errors``        domain errors; their class names are the ASL ``ErrorEquals`` names
* ``payments.status``        the forward-only status machines of payments and orders
* ``payments.repositories``  DynamoDB data access (conditional writes, transactions)
* ``payments.psp``           the PSP adapter interface and the simulated PSP
* ``payments.invariants``    the money invariants, checked over the stored data
* ``payments.local``         the local runtime (moto server + HTTP API + the real ASL)
"""

__version__ = "0.1.0"
