"""The simulated PSP's nightly job: write one UTC day's Settlement Details Report to S3.

The report goes to ``s3://<settlement_bucket>/incoming/<psp_name>/<YYYY-MM-DD>.csv``,
which triggers reconciliation. It is produced from the PSP's own record of
charges (:meth:`SimulatedPsp.charges_for_day`) and of refunds, chargebacks and their
reversals (:meth:`SimulatedPsp.modifications_for_day`: ``Refunded``, ``Chargeback``,
``ChargebackReversed`` rows), never from our ledger: that is the point of reconciling. The rows are streamed into a spooled temporary file
(memory up to 8 MiB, then disk) and uploaded; writing the same day twice writes
the same bytes (charges come in index order, the batch number is the day's).
"""

from __future__ import annotations

import tempfile
from datetime import date
from typing import IO, Any

from payments.kernel import aws
from payments.kernel.config import settings
from payments.psp.simulator import SimulatedPsp
from payments.reconciliation import adyen

SPOOL_BYTES = 8 * 1024 * 1024


def settlement_key(day: str, psp_name: str | None = None) -> str:
    return f"incoming/{psp_name or settings().psp_name}/{day}.csv"


def settle_day(
    day: str, *, psp: SimulatedPsp | None = None, s3: Any = None, bucket: str | None = None
) -> tuple[str, int]:
    """Write the day's file; returns (S3 key, data rows written)."""
    date.fromisoformat(day)  # a malformed day is a caller error: raise before writing anything
    psp = psp or SimulatedPsp()
    key = settlement_key(day)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b") as spool:
        rows = adyen.write_report(psp.charges_for_day(day), day, _Utf8(spool), psp.modifications_for_day(day))
        spool.seek(0)
        (s3 or aws.client("s3")).upload_fileobj(
            spool, bucket or settings().settlement_bucket, key, ExtraArgs={"ContentType": "text/csv"}
        )
    return key, rows


class _Utf8:
    """The text side of a binary file, for ``csv.writer`` (which only calls ``write``)."""

    def __init__(self, binary: IO[bytes]):
        self._binary = binary

    def write(self, text: str) -> int:
        self._binary.write(text.encode("utf-8"))
        return len(text)
