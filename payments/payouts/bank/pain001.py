"""The bank rail: payouts written as SEPA credit-transfer files (ISO 20022 ``pain.001.001.09``).

A file is written with ``sepaxml`` (``SepaTransfer``, schema ``pain.001.001.09``), which validates it on
export against the XSD it ships: a file that breaks the schema is never returned (:class:`PaymentFileRefused`).
Each payout is one ``CdtTrfTxInf`` with ``EndToEndId`` = ``payout_id`` (so ``payout_id`` is at most 35
characters, the schema's ``Max35Text``); ``NbOfTxs`` and ``CtrlSum`` are sepaxml's, checked again here against
the payouts given. The debtor is the platform's account, from the settings (:meth:`Debtor.from_settings`).

``MsgId`` is derived from the run, never drawn at random: ``PO`` + the run's execution date (``YYYYMMDD``) +
``-`` + the first 20 hex digits of SHA-256 over the run id and each payout's id, amount, currency and IBAN in
``payout_id`` order. ``CreDtTm`` is the run's own timestamp and the payment-information ids are ``MsgId`` +
``-`` + a counter. So a retried run over the same payouts writes the very same bytes (and a bank that already
has the file refuses the repeat as a duplicate), while a file with other content always has another ``MsgId``.
Which payouts belong to a run is the caller's to fix once (a payout joins exactly one run).

Only EUR has a rail: :func:`rail_for` answers ``None`` for another currency, and :func:`write_payout_file`
refuses it with :class:`NoPayoutRail` ("no payout rail for USD"). A US rail (ACH, NACHA files) fills the
:class:`PayoutRail` protocol later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaTransfer
from sepaxml.validation import ValidationError as SepaValidationError

from payments.kernel.config import Settings
from payments.kernel.ids import IDENTIFIER_PATTERN
from payments.kernel.pan import digest_id
from payments.payouts.bank.pain001_reader import read_pain001

SCHEMA = "pain.001.001.09"
EUR = "EUR"
#: the schema's Max35Text: EndToEndId carries payout_id
MAX_END_TO_END_ID = 35
#: payouts per file: a bound of ours (a night of every seller of a large marketplace), far below a bank's
MAX_PAYOUTS_PER_FILE = 50_000
#: the largest single payout in minor units (the schema's 18 digits with 5 decimals hold far more)
MAX_PAYOUT_MINOR = 999_999_999_99
#: where a run's file is written in the stage's bank bucket
OUTGOING_PREFIX = "outgoing/pain001/"

IBAN_WORDS = "must be a valid IBAN such as DE89370400440532013000 (country, check digits and account number)"
BIC_WORDS = "must be a valid BIC such as COBADEFFXXX (8 or 11 letters and digits)"


class NoPayoutRail(ValueError):
    """No rail pays out this currency (yet): the money stays available."""

    def __init__(self, currency: str):
        super().__init__(f"no payout rail for {currency}")
        self.currency = currency


class PaymentFileRefused(ValueError):
    """The file would not be valid against the schema, or does not add up: it is not written."""


def normalise_iban(value: str) -> str:
    try:
        return str(IBAN(value).compact)
    except SchwiftyException:
        raise ValueError(IBAN_WORDS) from None


def normalise_bic(value: str) -> str:
    try:
        return str(BIC(value).compact)
    except SchwiftyException:
        raise ValueError(BIC_WORDS) from None


def masked_iban(iban: str) -> str:
    """The IBAN as it may be shown or logged: country and check digits and the last four characters, the
    rest masked, in groups of four (``DE89 **** **** **** **30 00``)."""
    compact = iban.replace(" ", "").upper()
    if len(compact) <= 8:
        return "*" * len(compact)
    shown = compact[:4] + "*" * (len(compact) - 8) + compact[-4:]
    return " ".join(shown[i : i + 4] for i in range(0, len(shown), 4))


class Debtor(BaseModel):
    """The platform's own account, which every payout is paid from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=70)
    iban: str
    bic: str | None = None

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        return normalise_iban(value)

    @field_validator("bic")
    @classmethod
    def _bic(cls, value: str | None) -> str | None:
        return None if value is None else normalise_bic(value)

    @classmethod
    def from_settings(cls, settings: Settings) -> Debtor:
        return cls(
            name=settings.payout_debtor_name,
            iban=settings.payout_debtor_iban,
            bic=settings.payout_debtor_bic or None,
        )


class PayoutInstruction(BaseModel):
    """One payout to pay: to whom (the seller's payout account), how much, and what the seller reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payout_id: str = Field(min_length=1, max_length=MAX_END_TO_END_ID, pattern=IDENTIFIER_PATTERN)
    account_holder: str = Field(min_length=1, max_length=70)
    iban: str
    bic: str | None = None
    amount_minor: StrictInt = Field(gt=0, le=MAX_PAYOUT_MINOR)
    currency: str = Field(min_length=3, max_length=3)
    remittance: str = Field(min_length=1, max_length=140)

    @field_validator("payout_id", mode="before")
    @classmethod
    def _payout_id(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_END_TO_END_ID:
            raise ValueError(f"must be at most {MAX_END_TO_END_ID} characters: it is the SEPA EndToEndId")
        return value

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        return normalise_iban(value)

    @field_validator("bic")
    @classmethod
    def _bic(cls, value: str | None) -> str | None:
        return None if value is None else normalise_bic(value)

    def __repr__(self) -> str:  # never the IBAN in full, wherever the object is printed or logged
        return (
            f"PayoutInstruction(payout_id={self.payout_id!r}, iban={masked_iban(self.iban)!r}, "
            f"amount_minor={self.amount_minor}, currency={self.currency!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class PaymentFile:
    """One file for the bank: its ``MsgId``, where it goes, its bytes and its control figures."""

    msg_id: str
    key: str
    content: bytes
    number_of_transactions: int
    control_sum_minor: int
    currency: str
    end_to_end_ids: tuple[str, ...]


class PayoutRail(Protocol):
    """A way to pay sellers in one currency: it writes the run's file for its bank."""

    currency: str

    def write(
        self, run_id: str, created_at: datetime, execution_date: date, payouts: Sequence[PayoutInstruction]
    ) -> PaymentFile: ...


def message_id(run_id: str, execution_date: date, payouts: Sequence[PayoutInstruction]) -> str:
    """The file's ``MsgId``: the same for the same run over the same payouts (see the module's text)."""
    lines = "".join(
        f"\n{p.payout_id}|{p.amount_minor}|{p.currency}|{p.iban}" for p in sorted(payouts, key=lambda p: p.payout_id)
    )
    return digest_id(f"PO{execution_date:%Y%m%d}-", run_id + lines, 20)


class _RunTransfer(SepaTransfer):  # type: ignore[misc]  # sepaxml ships no type information
    """sepaxml's transfer with the run's ``MsgId``, ``CreDtTm`` and payment-information ids instead of
    random ones and the local clock (sepaxml sets them in its header and batch steps)."""

    def __init__(self, config: dict[str, Any], msg_id: str, created_at: datetime):
        self._run_msg_id = msg_id
        self._run_created = created_at
        super().__init__(config, schema=SCHEMA)
        self.msg_id = msg_id

    def _create_header(self) -> None:
        super()._create_header()
        header = self._xml.find("CstmrCdtTrfInitn").find("GrpHdr")
        header.find("MsgId").text = self._run_msg_id
        header.find("CreDtTm").text = self._run_created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _finalize_batch(self) -> None:
        super()._finalize_batch()
        for number, node in enumerate(self._xml.iter("PmtInfId"), start=1):
            node.text = f"{self._run_msg_id}-{number}"


def _figures(content: bytes) -> tuple[str, int, int]:
    """(MsgId, NbOfTxs, CtrlSum in minor units) as written in the group header of sepaxml's output."""
    written = read_pain001(content)
    if written.problems:
        raise PaymentFileRefused("the written file does not add up: " + "; ".join(written.problems))
    return written.msg_id, written.number_of_transactions, written.control_sum_minor or 0


class SepaCreditTransferRail:
    """EUR payouts as SEPA credit transfers, one ``pain.001.001.09`` file per run, from ``debtor``."""

    currency = EUR

    def __init__(self, debtor: Debtor):
        self.debtor = debtor

    def write(
        self, run_id: str, created_at: datetime, execution_date: date, payouts: Sequence[PayoutInstruction]
    ) -> PaymentFile:
        if not payouts:
            raise PaymentFileRefused("a payment file holds at least one payout")
        if len(payouts) > MAX_PAYOUTS_PER_FILE:
            raise PaymentFileRefused(f"more than {MAX_PAYOUTS_PER_FILE} payouts in one file")
        other = sorted({p.currency for p in payouts if p.currency != EUR})
        if other:
            raise NoPayoutRail(other[0])
        ids = [p.payout_id for p in payouts]
        if len(set(ids)) != len(ids):
            raise PaymentFileRefused("a payout_id appears twice in the run: each payout is paid once")
        if created_at.tzinfo is None:
            raise PaymentFileRefused("the run's timestamp must be timezone-aware (UTC)")
        msg_id = message_id(run_id, execution_date, payouts)
        config: dict[str, Any] = {"name": self.debtor.name, "IBAN": self.debtor.iban, "batch": True, "currency": EUR}
        if self.debtor.bic:
            config["BIC"] = self.debtor.bic
        transfer = _RunTransfer(config, msg_id, created_at)
        for p in sorted(payouts, key=lambda p: p.payout_id):
            payment: dict[str, Any] = {
                "name": p.account_holder,
                "IBAN": p.iban,
                "amount": p.amount_minor,
                "execution_date": execution_date,
                "description": p.remittance,
                "endtoend_id": p.payout_id,
            }
            if p.bic:
                payment["BIC"] = p.bic
            transfer.add_payment(payment)
        try:
            content: bytes = transfer.export(validate=True)
        except SepaValidationError as err:
            cause = err.__cause__
            detail = getattr(cause, "reason", None) or type(cause).__name__
            raise PaymentFileRefused(f"the file is not valid against the {SCHEMA} schema: {detail}") from None
        total = sum(p.amount_minor for p in payouts)
        written_id, count, control = _figures(content)
        if (written_id, count, control) != (msg_id, len(payouts), total):
            raise PaymentFileRefused(
                f"the file's header says {count} transactions for {control} cents, the run has {len(payouts)} "
                f"for {total}"
            )
        return PaymentFile(
            msg_id=msg_id,
            key=f"{OUTGOING_PREFIX}{msg_id}.xml",
            content=content,
            number_of_transactions=count,
            control_sum_minor=control,
            currency=EUR,
            end_to_end_ids=tuple(sorted(ids)),
        )


def rail_for(currency: str, debtor: Debtor) -> PayoutRail | None:
    """The rail that pays ``currency``, or None (only EUR has one)."""
    return SepaCreditTransferRail(debtor) if currency == EUR else None


def write_payout_file(
    currency: str,
    debtor: Debtor,
    run_id: str,
    created_at: datetime,
    execution_date: date,
    payouts: Sequence[PayoutInstruction],
) -> PaymentFile:
    rail = rail_for(currency, debtor)
    if rail is None:
        raise NoPayoutRail(currency)
    return rail.write(run_id, created_at, execution_date, payouts)
