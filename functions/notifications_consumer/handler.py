"""SQS consumer of stored PSP notifications (Powertools batch processing, partial failures).

Each message names a stored notification; :func:`payments.notifications.apply.process` applies
it once. A record that raises (a transient failure, a reversal whose chargeback has not
arrived yet, or a dispute event whose charge is not settled here yet) is reported as a batch
item failure (a batch whose every record failed raises, which SQS treats alike): SQS delivers it
again later, and after the queue's ``maxReceiveCount`` moves it to the dead-letter queue (alarmed).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions import registry
from payments.kernel import config
from payments.kernel.observability import entry_point
from payments.notifications.apply import process
from payments.notifications.store import NotificationStore

#: validated once, at cold start: in a deployed stage a missing variable of this function fails here, named
config.load(registry.NOTIFICATIONS_CONSUMER)

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> str:
    notification_id = json.loads(record.body)["notification_id"]
    from payments.refunds.repository import RefundsRepository

    return process(notification_id, NotificationStore(), RefundsRepository())


@entry_point
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
