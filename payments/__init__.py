"""The deployed core of the serverless payment system, by bounded context.

Every Lambda function under ``functions/`` is a thin adapter (handler -> logic) over these:

* ``payments.kernel``          the shared kernel: money, errors, settings, AWS clients, observability
* ``payments.payin``           pay-in: checkouts, payment orders, forward-only statuses, recovery
* ``payments.accounts``        the books: seller wallets and the double-entry ledger
* ``payments.psp``             the PSP adapters (simulator, Adyen) and the notification HMAC
* ``payments.refunds``         refunds: the reservation, the PSP refund, the reversing entries
* ``payments.notifications``   the PSP's notifications: stored once, applied forward only
* ``payments.reconciliation``  settlement files and bank statements against the ledger

``payments.ops`` is the operator's command (installed, never shipped in the Lambda asset); the
dev tooling (local runtime, chaos harness, demo, benchmarks) is the separate ``payments_dev``
package, which nothing here imports.
"""

__version__ = "0.1.0"
