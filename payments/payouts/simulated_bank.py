"""The simulated bank on S3: the bank bucket is its store, our pain.001 files its mail.

* :class:`S3BankStore` is :class:`~payments.payouts.bank.simulated.BankStore` over one bucket: every write
  is a conditional ``PutObject`` (``If-None-Match: *``), so a write repeated after a crash or by a second
  delivery of the same event changes nothing.
* :func:`answer_file`: a pain.001 landed under ``outgoing/pain001/`` (the S3 notification of the dev
  stage's simulated-bank function, or the local runtime's): the bank answers at once, its pain.002
  under ``incoming/bank/pain002/`` (which notifies the bank reconciliation).
* :func:`close_day`: the day's camt.053 under ``incoming/bank/camt053/`` (``payments bank close-day``, the
  dev stage's nightly schedule). The PSP's payout to the platform is booked as a credit when the simulated
  bank can know it: the PSP's settlement file of that day (``incoming/<psp>/<day>.csv`` in the settlement
  bucket) and its ``MerchantPayout`` row in EUR. A day without that file (not yet written) has no credit.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import ClientError

from payments.kernel import aws
from payments.kernel.config import Settings, settings
from payments.payouts.bank.pain001 import OUTGOING_PREFIX, Debtor
from payments.payouts.bank.simulated import BankReply, PspCredit, SimulatedBank
from payments.reconciliation.adyen import column_index, parse_row, split_line
from payments.reconciliation.model import RowError, UnreadableFile
from payments.reconciliation.settlement import settlement_key

OUTGOING = OUTGOING_PREFIX  # our payout files (payments.payouts.bank.pain001)
#: the largest pain.001 the simulated bank reads (a night's payout run is far below)
MAX_PAYMENT_FILE_BYTES = 32 * 1024 * 1024


def _missing(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3BankStore:
    """The simulated bank's store on one S3 bucket."""

    def __init__(self, bucket: str, s3: Any = None):
        self.bucket = bucket
        self.s3 = s3 or aws.client("s3")

    def put_new(self, key: str, body: bytes) -> bool:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def get(self, key: str) -> bytes | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as err:
            if _missing(err):
                return None
            raise
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)


def bank(config: Settings | None = None, s3: Any = None) -> SimulatedBank:
    """The simulated bank of the stage: the platform's account (the payout debtor) on the bank bucket."""
    config = config or settings()
    return SimulatedBank(S3BankStore(config.bank_bucket, s3), Debtor.from_settings(config))


def answer_file(
    key: str, config: Settings | None = None, s3: Any = None, at: datetime | None = None
) -> BankReply | None:
    """Answer the pain.001 at ``key`` of the bank bucket; None when it is not one to answer (or gone)."""
    config = config or settings()
    if not key.startswith(OUTGOING) or not key.endswith(".xml"):
        return None
    client = s3 or aws.client("s3")
    try:
        head = client.head_object(Bucket=config.bank_bucket, Key=key)
    except ClientError as err:
        if _missing(err):
            return None
        raise
    the_bank = bank(config, client)
    if head["ContentLength"] > MAX_PAYMENT_FILE_BYTES:
        content = b"<oversized/>"  # refused whole as unreadable (FF01), never read
    else:
        content = S3BankStore(config.bank_bucket, client).get(key) or b""
    received = head.get("LastModified") or datetime.now(UTC)
    return the_bank.receive(content, at or received.astimezone(UTC))


def psp_credits(day: date, config: Settings | None = None, s3: Any = None) -> list[PspCredit]:
    """The ``MerchantPayout`` rows of the PSP's settlement file of ``day`` (none when there is no such file)."""
    config = config or settings()
    key = settlement_key(day.isoformat(), config.psp_name)
    client = s3 or aws.client("s3")
    try:
        body = client.get_object(Bucket=config.settlement_bucket, Key=key)["Body"]
    except ClientError as err:
        if _missing(err):
            return []
        raise
    try:
        lines = (raw.decode("utf-8") for raw in body.iter_lines(chunk_size=1024 * 1024))
        try:
            layout = column_index(next(csv.reader([next(lines, "").removeprefix("\ufeff")]), []))
        except UnreadableFile:
            return []
        credits: list[PspCredit] = []
        for n, line in enumerate(lines, start=2):
            if "MerchantPayout" not in line:
                continue
            try:
                row = parse_row(split_line(line), layout, n)
            except RowError:
                continue  # a row the reconciliation rejects announces nothing
            if row.record_type == "MerchantPayout" and row.net_debit > row.net_credit:
                reference = f"{config.psp_name}-{row.batch_number or day.isoformat()}-{row.net_currency}"
                credits.append(
                    PspCredit(reference[:35], row.net_debit - row.net_credit, row.net_currency, config.psp_name)
                )
        return credits
    finally:
        body.close()


def close_day(day: date, config: Settings | None = None, s3: Any = None) -> tuple[str, bytes]:
    """Close ``day`` at the simulated bank: its camt.053 (key, content); closing it again writes nothing new."""
    config = config or settings()
    client = s3 or aws.client("s3")
    return bank(config, client).close_day(day, psp_credits(day, config, client))
