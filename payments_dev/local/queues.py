"""The local runtime's SQS event source mapping: what Lambda does for an SQS-triggered function.

A poller thread long-polls the queue on the local AWS endpoint (moto), invokes the function with
the batch as an ``aws:sqs`` event through the in-process dispatcher, and deletes the messages that
succeeded: with ``ReportBatchItemFailures``, the records the function lists as failed stay on the
queue and come back after their visibility timeout; after ``maxReceiveCount`` receives the
queue's redrive policy moves them to the dead-letter queue. As in AWS, never silently dropped.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from payments.kernel import aws
from payments_dev.local.lambdas import DISPATCHER


class QueuePoller:
    def __init__(self, queue_url: str, queue_arn: str, function_name: str, batch_size: int = 10):
        self.queue_url, self.queue_arn, self.function_name, self.batch_size = (
            queue_url,
            queue_arn,
            function_name,
            batch_size,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sqs-{function_name}", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the endpoint is going away, or a transient error: poll again
                self._stop.wait(0.5)

    def poll_once(self) -> int:
        sqs = aws.client("sqs")
        response = sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=1, AttributeNames=["All"]
        )
        messages = response.get("Messages") or []
        if not messages:
            return 0
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }
        payload, errored = DISPATCHER.invoke(self.function_name, event)
        self.batches += 1
        if errored:
            return 0  # the whole batch comes back after the visibility timeout
        failed = {f["itemIdentifier"] for f in (json.loads(payload) or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(done)


def create_queue_with_dlq(
    sqs: Any, name: str, *, visibility_timeout: int = 2, max_receive_count: int = 8
) -> tuple[str, str]:
    """(queue URL, queue ARN) of a queue whose redrive policy moves a poisoned message to ``<name>-dlq``."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn
