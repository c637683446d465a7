"""Lambda entry point of the events' enrichment: the step of each table's EventBridge pipe between its DynamoDB
stream and the stage's bus (``payments-<stage>``).

EventBridge Pipes invokes it with a JSON array of stream records (the pipe's batch) and sends each element of
the JSON array it answers to the bus as one event: here, the CloudEvents envelope of each change the records
show (:func:`payments.events.changes.changes_of`), in the records' order; a record that shows no change of the
contract adds nothing. A failure raises: the pipe retries the batch, then sends it to its dead-letter queue; a
retried batch answers the same envelopes (same ids, same sequences), which consumers drop as repeats.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.events.changes import changes_of, stage_of
from payments.kernel import config
from payments.kernel.config import settings
from payments.kernel.observability import count, entry_point
from payments.payin.repository import PaymentsRepository

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.EVENTS)


def envelopes(records: list[dict[str, Any]], repo: PaymentsRepository | None = None) -> list[dict[str, Any]]:
    """The envelopes (``model_dump(mode="json")``) of the changes ``records`` show, in order."""
    stage = stage_of(settings().payments_stage)
    payments = repo or PaymentsRepository()
    out = [
        event.model_dump(mode="json")
        for record in records
        for event in changes_of(record, stage=stage, orders_of=payments.orders_of)
    ]
    count("EventsEnriched", len(out))
    return out


@entry_point
def handler(event: list[dict[str, Any]], context: LambdaContext) -> list[dict[str, Any]]:
    if not isinstance(event, list):  # a pipe's enrichment receives the batch as a JSON array
        raise TypeError("the events' enrichment expects a JSON array of DynamoDB stream records")
    return envelopes(event)
