"""The PSP adapter interface: what the executor needs from a payment service provider.

A real PSP adapter (Adyen, Stripe, ...) implements :class:`PaymentServiceProvider`;
the default is :class:`payments.psp.simulator.SimulatedPsp`. Every call carries
the idempotency key ``payment_order_id``: the PSP holds at most one charge per key.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from payments.kernel.money import Money


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str  # our payment_order_id; the PSP's "merchant reference"
    amount_minor: int
    currency: str
    token: str  # a PSP card token, never a card number
    #: the buyer the token is stored under at the PSP (Adyen: ``shopperReference``); None when unknown
    shopper_reference: str | None = None
    #: when the order first went to the PSP with this key (ISO UTC): a PSP whose keys expire (Adyen)
    #: must not resend a key older than it keeps it. None: this is the first attempt.
    first_attempt_at: str | None = None

    @property
    def money(self) -> Money:
        """What to charge, as Money (raises InvalidAmount on a currency that is not active ISO 4217)."""
        return Money(self.amount_minor, self.currency)


@dataclass(frozen=True)
class Approved:
    psp_reference: str
    charged_at: str  # ISO timestamp at the PSP; its UTC day is the settlement day


@dataclass(frozen=True)
class Declined:
    reason: str  # machine-readable: card_declined, insufficient_funds, ...


ChargeOutcome = Approved | Declined


class PaymentServiceProvider(Protocol):
    def charge(self, request: ChargeRequest) -> ChargeOutcome:
        """Charge the card, deduplicated by ``request.idempotency_key``.

        Raises :class:`payments.kernel.errors.PspUnavailable` when nothing was charged and a
        retry may work, and :class:`payments.kernel.errors.PspOutcomeUnknown` when the call
        may have charged (timeout, lost answer).
        """
        ...

    def lookup(self, idempotency_key: str) -> ChargeOutcome | None:
        """The outcome the PSP recorded for this key, or None if it never saw it."""
        ...


def default_psp() -> PaymentServiceProvider:
    """The PSP the settings name (``PAYMENTS_PSP``): ``simulator`` (default) or ``adyen``."""
    from payments.kernel.config import settings

    name = settings().payments_psp
    if name == "adyen":
        from payments.psp.adyen import AdyenSettings

        # one adapter per container and configuration (its library client is reused across invocations)
        return _adyen_psp(AdyenSettings.from_env().model_dump_json())
    if name != "simulator":
        raise ValueError(f"PAYMENTS_PSP={name!r}: expected 'simulator' or 'adyen'")
    from payments.psp.simulator import SimulatedPsp

    return SimulatedPsp()


#: the module of each adapter ``PAYMENTS_PSP`` may name
ADAPTER_MODULES = {"simulator": "payments.psp.simulator", "adyen": "payments.psp.adyen"}


def import_adapter() -> None:
    """Import the adapter the settings name (its PSP library with it) without building it. The executor calls
    this at cold start, where a SnapStart snapshot keeps it, rather than have its first charge pay the import;
    a name it does not know is left to :func:`default_psp` to refuse, at the invocation, as before."""
    from payments.kernel.config import settings

    module = ADAPTER_MODULES.get(settings().payments_psp)
    if module is not None:
        importlib.import_module(module)


@lru_cache(maxsize=4)
def _adyen_psp(configuration: str) -> PaymentServiceProvider:
    """The adapter of one configuration (the settings model's JSON: hashable, validated once)."""
    from payments.psp.adyen import AdyenPsp, AdyenSettings

    return AdyenPsp(AdyenSettings.model_validate_json(configuration))
