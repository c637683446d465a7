"""Domain errors.

The class names of the ``Transient`` family are the names that
``stepfunctions/payment.asl.json`` retries (``ErrorEquals``): a Lambda that raises
one of them fails with that ``errorType`` and Step Functions retries it with
backoff and jitter. Anything else is final for that step and is caught.
"""

from typing import TypeVar

T = TypeVar("T")


class PaymentError(Exception):
    """Base class of every domain error."""


# --- transient: the step is retried by the state machine -------------------
class TransientError(PaymentError):
    """A dependency failed in a way that a later retry may fix."""


class PspUnavailable(TransientError):
    """The PSP could not be reached or answered 5xx; nothing was charged."""


class PspOutcomeUnknown(TransientError):
    """The PSP call may or may not have charged (timeout, lost answer).

    Never resolved by charging again blindly: the retry asks the PSP by the
    idempotency key first, and the PSP itself deduplicates on that key.
    """


class PspAwaitingNotification(PaymentError):
    """The PSP holds the charge but decides it later (Adyen ``Received``/``Pending``), or its outcome
    can no longer be asked for safely (the idempotency key is too old to resend).

    Final for the execute step, on purpose not retried: the order is parked (NEEDS_ATTENTION,
    still EXECUTING) and the PSP's AUTHORISATION notification settles it. Never resolved by
    charging again.
    """


class StoreUnavailable(TransientError):
    """DynamoDB throttled or failed transiently."""


# --- final: caught by the state machine, recorded, surfaced ------------------
class InvariantViolation(PaymentError):
    """A money invariant would be broken; the step refuses and asks for a human."""


class StatusConflict(PaymentError):
    """A late or duplicate signal tried to move a status backwards or sideways."""


class PspRequestInvalid(PaymentError):
    """The PSP rejected the request itself (bad credentials, a malformed request, an idempotency key
    reused with another body): nothing was processed, and repeating it unchanged cannot help."""


class NotFound(PaymentError):
    pass


def must_exist(found: T | None, message: str) -> T:
    """``found`` itself, or :class:`NotFound` (``message``) when it is None: a ``find`` made a ``get``."""
    if found is None:
        raise NotFound(message)
    return found


class Conflict(PaymentError):
    """A create collided with an existing resource (same id, other content)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class InvalidRequest(PaymentError):
    """A request that passed schema validation but breaks a rule across fields."""

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors
