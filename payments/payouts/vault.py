"""The IBAN at rest: envelope encryption under a KMS key, and a keyed hash for equality.

* :meth:`Vault.seal`: KMS ``GenerateDataKey`` (AES-256) under the stage's payout-accounts key; the
  IBAN is encrypted here with AES-256-GCM under that data key, and only the data key's KMS
  ciphertext is kept beside it. The encryption context (``purpose``, ``seller_account``,
  ``currency``) binds both to their item: KMS refuses to decrypt the data key under another context
  (and logs the context in CloudTrail), and it is the GCM's associated data as well, so a sealed IBAN
  copied to another seller's item cannot be opened there.
* :meth:`Vault.open`: KMS ``Decrypt`` of the data key (same context), then AES-GCM. Only what builds
  a bank file needs it: the API that registers accounts is never granted ``kms:Decrypt``.
* :meth:`Vault.fingerprint`: KMS ``GenerateMac`` (HMAC-SHA-256) with a dedicated HMAC key, which never
  leaves KMS: two IBANs are compared by their keyed hashes, and a hash cannot be reversed by trying
  the (few) IBANs of a bank without that key.

Locally the same calls go to moto's KMS. Nothing here logs; no exception carries the IBAN.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.kernel import aws
from payments.kernel.config import settings

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

PURPOSE = "payout-account"
NONCE_BYTES = 12  # AES-GCM's standard nonce; a fresh data key per seal, so a random nonce never repeats under a key
MAC_ALGORITHM: Final = "HMAC_SHA_256"


def context_of(seller_account: str, currency: str) -> dict[str, str]:
    """The KMS encryption context (and GCM associated data) of one payout account."""
    return {"purpose": PURPOSE, "seller_account": seller_account, "currency": currency}


def _associated_data(context: dict[str, str]) -> bytes:
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Sealed:
    """An encrypted IBAN: the GCM nonce and ciphertext, and its data key encrypted by KMS (base64 text each)."""

    ciphertext: str
    encrypted_key: str
    #: the ARN of the KMS key that encrypted the data key
    key_arn: str

    def __repr__(self) -> str:
        return f"Sealed(key_arn={self.key_arn!r})"


class Vault:
    def __init__(self, key_id: str | None = None, mac_key_id: str | None = None, kms: KMSClient | None = None):
        self.key_id = key_id or settings().payout_accounts_key
        self.mac_key_id = mac_key_id or settings().payout_accounts_mac_key
        self._kms = kms

    @property
    def kms(self) -> KMSClient:
        return self._kms or aws.client("kms")

    def seal(self, plaintext: str, context: dict[str, str]) -> Sealed:
        key = self.kms.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key["Plaintext"]).encrypt(nonce, plaintext.encode(), _associated_data(context))
        return Sealed(
            ciphertext=base64.b64encode(nonce + sealed).decode(),
            encrypted_key=base64.b64encode(key["CiphertextBlob"]).decode(),
            key_arn=key["KeyId"],
        )

    def open(self, sealed: Sealed, context: dict[str, str]) -> str:
        key = self.kms.decrypt(
            CiphertextBlob=base64.b64decode(sealed.encrypted_key), EncryptionContext=context, KeyId=sealed.key_arn
        )
        data = base64.b64decode(sealed.ciphertext)
        return (
            AESGCM(key["Plaintext"]).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _associated_data(context)).decode()
        )

    def fingerprint(self, plaintext: str) -> str:
        """The keyed hash (HMAC-SHA-256 by the KMS HMAC key) of ``plaintext``, hex."""
        mac = self.kms.generate_mac(KeyId=self.mac_key_id, MacAlgorithm=MAC_ALGORITHM, Message=plaintext.encode())
        return mac["Mac"].hex()
