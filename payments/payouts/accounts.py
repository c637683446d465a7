"""Payout accounts: where a seller is paid, one bank account per (seller, currency).

``PUT /v1/sellers/{seller_account}/payout-account`` registers it (:func:`register`), ``GET`` shows
it (:func:`view`); the bank rail reads it with :meth:`PayoutAccountsRepository.for_payout` and a
returned payout flags it with :meth:`PayoutAccountsRepository.mark_invalid`.

The item (table ``payout_accounts``, ``pk`` = seller, ``sk`` = currency) never holds the IBAN in
clear: its AES-GCM ciphertext under a KMS data key, the data key's KMS ciphertext
(:mod:`payments.payouts.vault`), the masked form the API shows (``DE89 **** **** **** **30 00``) and
a keyed hash (HMAC-SHA-256 by a KMS HMAC key) that compares IBANs without decrypting them.

Every write is conditional on the item's ``version`` (absent for the first): a writer that read
version *n* writes *n + 1* only if the item is still at *n*, else it reads again and decides again.
So two concurrent requests never overwrite each other's change unseen: a PUT racing a
``mark_invalid`` of the same account cannot set it valid again behind its back.

Registering the same account again (the same IBAN, BIC and holder) writes nothing and answers the
account as it is: a client's retry is harmless, and an account marked invalid stays invalid until
the seller registers another account (another IBAN, or a corrected holder or BIC).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from payments.kernel import aws, dynamo
from payments.kernel.clock import now_iso
from payments.kernel.config import settings
from payments.kernel.errors import Conflict, NotFound
from payments.kernel.money import is_currency
from payments.payin.models import currency_field
from payments.payouts.bank_account import BIC_PATTERN, IBAN_PATTERN, checked_bic, checked_iban, mask
from payments.payouts.vault import Sealed, Vault, context_of

#: how often a write is tried again after another request changed the account in between
MAX_ATTEMPTS = 5
#: the account holder's name: what a SEPA credit transfer carries as the creditor's name (Max70Text)
HOLDER_MAX = 70
HOLDER_PATTERN = r"^\S(?:[^\t\n\r]*\S)?$"


def _iban(value: str) -> str:
    return str(checked_iban(value).compact)


def _bic(value: str | None, info: ValidationInfo) -> str | None:
    if value is None:
        return None
    iban = info.data.get("iban")  # present only if the IBAN itself passed
    return checked_bic(value, checked_iban(iban) if iban else None)


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(
            "must be an active ISO 4217 currency code such as EUR, USD or GBP (this one is withdrawn or unknown)"
        )
    return value


class PayoutAccountRequest(BaseModel):
    """Body of ``PUT /v1/sellers/{seller_account}/payout-account``."""

    # hide_input_in_errors: a validation error's text never repeats the IBAN, wherever it ends up
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)
    iban: Annotated[
        str,
        Field(
            min_length=15,
            max_length=49,
            pattern=IBAN_PATTERN,
            repr=False,
            examples=["DE89370400440532013000"],
            description=(
                "The account's IBAN, in capitals, electronic (DE89370400440532013000) or printed with single spaces "
                "(DE89 3704 0044 0532 0130 00). It must be valid (its country's length and format, its check digits, "
                "national check digits where its country has them) and its bank known to the bank registry "
                "(schwifty's), else 422 naming iban. Stored encrypted; never answered, logged or shown in full."
            ),
        ),
        AfterValidator(_iban),
    ]
    bic: (
        Annotated[
            str,
            Field(
                min_length=8,
                max_length=11,
                pattern=BIC_PATTERN,
                examples=["COBADEFFXXX"],
                description=(
                    "The bank's BIC (ISO 9362, 8 or 11 characters), optional: where the bank registry knows the "
                    "BICs of the IBAN's bank, it must be one of them (the same first 8 characters), else 422 naming bic."
                ),
            ),
            AfterValidator(_bic),
        ]
        | None
    ) = None
    account_holder: Annotated[
        str,
        Field(
            min_length=1,
            max_length=HOLDER_MAX,
            pattern=HOLDER_PATTERN,
            examples=["Books Ltd"],
            description=(
                f"The account holder's name as the bank knows it (the credit transfer's creditor name): 1-{HOLDER_MAX} "
                "characters, no tab or line break, not starting or ending with a space."
            ),
        ),
    ]
    currency: Annotated[
        str,
        currency_field("The currency paid out to this account: an active ISO 4217 code (one account per currency)."),
        AfterValidator(_currency),
    ]


class PayoutAccountOut(BaseModel):
    """A payout account as the API answers it: the IBAN masked."""

    seller_account: str
    currency: str
    iban: str = Field(
        description="The IBAN masked: its country, check digits and last four characters, e.g. "
        "DE89 **** **** **** **30 00"
    )
    bic: str | None = None
    account_holder: str
    #: false once a payout to it came back (returned by the seller's bank): register another account
    valid: bool = Field(
        description="False once a payout to this account was returned by the bank; payouts stop "
        "until the seller registers an account again."
    )
    invalid_reason: str | None = None
    version: int = Field(description="Increases at every change of the account.")
    updated_at: str


class PayoutAccountRecord(BaseModel):
    """The stored item (no IBAN in clear)."""

    seller_account: str
    currency: str
    version: int
    valid: bool = True
    invalid_reason: str | None = None
    invalidated_at: str | None = None
    iban_masked: str
    iban_country: str
    #: HMAC-SHA-256 of the compact IBAN by the KMS HMAC key, hex
    iban_mac: str
    iban_ciphertext: str
    iban_encrypted_key: str
    iban_key_arn: str
    bic: str | None = None
    account_holder: str
    created_at: str
    updated_at: str

    @property
    def sealed(self) -> Sealed:
        return Sealed(self.iban_ciphertext, self.iban_encrypted_key, self.iban_key_arn)

    def same_account(self, iban_mac: str, bic: str | None, account_holder: str) -> bool:
        return (self.iban_mac, self.bic, self.account_holder) == (iban_mac, bic, account_holder)

    def to_api(self) -> PayoutAccountOut:
        return PayoutAccountOut(
            seller_account=self.seller_account,
            currency=self.currency,
            iban=self.iban_masked,
            bic=self.bic,
            account_holder=self.account_holder,
            valid=self.valid,
            invalid_reason=self.invalid_reason,
            version=self.version,
            updated_at=self.updated_at,
        )


class PayoutDestination(BaseModel):
    """Where a payout goes, decrypted for the bank file (:meth:`PayoutAccountsRepository.for_payout`).
    Its ``repr`` and ``str`` show the masked IBAN only."""

    seller_account: str
    currency: str
    iban: str = Field(repr=False)
    iban_masked: str
    iban_mac: str
    bic: str | None
    account_holder: str
    version: int


class VersionConflict(Exception):
    """Another request changed the account between our read and our write."""


class PayoutAccountUnusable(Exception):
    """No payout can go to the seller's account in this currency: there is none, or it was marked invalid."""

    def __init__(self, seller_account: str, currency: str, reason: str):
        self.seller_account, self.currency, self.reason = seller_account, currency, reason
        super().__init__(f"no usable payout account for {currency}: {reason}")


class PayoutAccountsRepository:
    """The ``payout_accounts`` table. Records in, records out; the vault seals and opens IBANs."""

    def __init__(self, vault: Vault | None = None, table: str | None = None):
        self.vault = vault or Vault()
        self.table = table or settings().payout_accounts_table

    @property
    def client(self) -> Any:
        return aws.client("dynamodb")

    @staticmethod
    def _key(seller_account: str, currency: str) -> dict[str, Any]:
        return dynamo.to_item({"pk": seller_account, "sk": currency})

    def get(self, seller_account: str, currency: str) -> PayoutAccountRecord | None:
        item = dynamo.get_item(self.client, self.table, self._key(seller_account, currency))
        return PayoutAccountRecord.model_validate(item) if item else None

    def of_seller(self, seller_account: str) -> list[PayoutAccountRecord]:
        """The seller's accounts, one per currency, in currency order."""
        with dynamo.transient_as_store_unavailable():
            items = dynamo.query_all(
                self.client,
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": seller_account}},
                ConsistentRead=True,
            )
            return [PayoutAccountRecord.model_validate(i) for i in items]

    def save(self, record: PayoutAccountRecord, expected_version: int | None) -> None:
        """Put ``record`` if the stored account is still at ``expected_version`` (None: there is none yet),
        else :class:`VersionConflict` (nothing written)."""
        item = dynamo.to_item({"pk": record.seller_account, "sk": record.currency, **record.model_dump()})
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        if not dynamo.conditional_write(self.client.put_item, TableName=self.table, Item=item, **condition):
            raise VersionConflict(record.seller_account)

    def mark_invalid(
        self, seller_account: str, currency: str, reason: str, *, iban_mac: str | None = None
    ) -> PayoutAccountRecord | None:
        """Flag the account invalid (a payout to it was returned), once: an account already invalid keeps its
        first reason. ``iban_mac`` (the returned payout's :attr:`PayoutDestination.iban_mac`): flag it only if
        it is still that IBAN, not an account the seller registered since. None when there is no account."""
        for _ in range(MAX_ATTEMPTS):
            current = self.get(seller_account, currency)
            if current is None:
                return None
            if not current.valid or (iban_mac is not None and current.iban_mac != iban_mac):
                return current
            at = now_iso()
            flagged = current.model_copy(
                update={
                    "valid": False,
                    "invalid_reason": reason,
                    "invalidated_at": at,
                    "version": current.version + 1,
                    "updated_at": at,
                }
            )
            applied = dynamo.conditional_write(
                self.client.update_item,
                TableName=self.table,
                Key=self._key(seller_account, currency),
                UpdateExpression="SET valid = :false, invalid_reason = :reason, invalidated_at = :at, "
                "version = :next, updated_at = :at",
                ConditionExpression="version = :expected",
                ExpressionAttributeValues=dynamo.to_values(
                    {
                        ":false": False,
                        ":reason": reason,
                        ":at": at,
                        ":next": flagged.version,
                        ":expected": current.version,
                    }
                ),
            )
            if applied:
                return flagged
        raise Conflict("the payout account kept changing while it was being marked invalid; retry")

    def usable(self, seller_account: str, currency: str) -> PayoutAccountRecord:
        """The seller's account in ``currency`` if a payout may go to it (its IBAN not decrypted: the API checks
        with this); :class:`PayoutAccountUnusable` if there is none or it is marked invalid."""
        record = self.get(seller_account, currency)
        if record is None:
            raise PayoutAccountUnusable(seller_account, currency, f"the seller has no payout account for {currency}")
        if not record.valid:
            raise PayoutAccountUnusable(
                seller_account,
                currency,
                f"the payout account for {currency} is marked invalid ({record.invalid_reason})",
            )
        return record

    def for_payout(self, seller_account: str, currency: str) -> PayoutDestination:
        """The seller's account in ``currency``, its IBAN decrypted for the bank file; :class:`PayoutAccountUnusable`
        if there is none or it is marked invalid."""
        record = self.usable(seller_account, currency)
        iban = self.vault.open(record.sealed, context_of(seller_account, currency))
        return PayoutDestination(
            seller_account=seller_account,
            currency=currency,
            iban=iban,
            iban_masked=record.iban_masked,
            iban_mac=record.iban_mac,
            bic=record.bic,
            account_holder=record.account_holder,
            version=record.version,
        )


def register(seller_account: str, request: PayoutAccountRequest, repo: PayoutAccountsRepository) -> PayoutAccountOut:
    """Register (or replace) the seller's payout account in the request's currency; the same account again
    writes nothing. Each attempt reads the account and writes conditionally on what it read."""
    currency = request.currency
    mac = repo.vault.fingerprint(request.iban)
    sealed: Sealed | None = None
    for _ in range(MAX_ATTEMPTS):
        current = repo.get(seller_account, currency)
        if current is not None and current.same_account(mac, request.bic, request.account_holder):
            return current.to_api()
        sealed = sealed or repo.vault.seal(request.iban, context_of(seller_account, currency))
        at = now_iso()
        record = PayoutAccountRecord(
            seller_account=seller_account,
            currency=currency,
            version=current.version + 1 if current else 1,
            iban_masked=mask(request.iban),
            iban_country=request.iban[:2],
            iban_mac=mac,
            iban_ciphertext=sealed.ciphertext,
            iban_encrypted_key=sealed.encrypted_key,
            iban_key_arn=sealed.key_arn,
            bic=request.bic,
            account_holder=request.account_holder,
            created_at=current.created_at if current else at,
            updated_at=at,
        )
        try:
            repo.save(record, current.version if current else None)
        except VersionConflict:
            continue
        return record.to_api()
    raise Conflict("the payout account kept changing while it was being registered; retry")


def view(seller_account: str, currency: str | None, repo: PayoutAccountsRepository) -> PayoutAccountOut:
    """The seller's account in ``currency``; without one, the seller's only account."""
    if currency is not None:
        found = repo.get(seller_account, currency)
        if found is None:
            raise NotFound(f"no payout account for {currency}")
        return found.to_api()
    accounts = repo.of_seller(seller_account)
    if not accounts:
        raise NotFound("no payout account")
    if len(accounts) > 1:
        raise SeveralAccounts([a.currency for a in accounts])
    return accounts[0].to_api()


class SeveralAccounts(Exception):
    """A GET without ``currency`` for a seller with accounts in several currencies."""

    def __init__(self, currencies: list[str]):
        self.currencies = currencies
        super().__init__(", ".join(currencies))
