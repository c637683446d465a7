"""The events' catalogue as files: docs/events/schemas/<type>.json and docs/events/asyncapi.yaml.

    .venv/bin/python -m payments_dev.events_catalogue            # list the stale files (exit 1 if any)
    .venv/bin/python -m payments_dev.events_catalogue --write    # write the files (make events-catalogue)

Both are generated from the models (:mod:`payments_dev.events_schemas`): the JSON Schemas (draft 2020-12) one per
type, and an AsyncAPI 3.0 document of the stage's bus with one message and one ``receive`` operation per type,
each message with an example event built from the models. tests/unit/events/test_catalogue_files.py fails when
the committed files differ from what this module makes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml

from payments.events.envelope import CloudEvent, EventType, sequence_of
from payments.events.models import DATA_MODELS, AttentionEventOut, DisputeOut, ReconciliationOut
from payments.payin.models import AttentionOut, PaymentOrderOut, PaymentOut
from payments.payin.status import AttentionKind, OrderStatus, PaymentStatus
from payments.payouts.models import PayoutOut
from payments.payouts.outcomes import PayoutStatus
from payments.refunds.models import RefundOut, RefundStatus
from payments_dev.events_schemas import DESCRIPTIONS, data_schemas, envelope, schemas

ROOT = Path(__file__).resolve().parents[1]
EVENTS_DOCS = ROOT / "docs" / "events"
SCHEMAS_DIR = EVENTS_DOCS / "schemas"
ASYNCAPI = EVENTS_DOCS / "asyncapi.yaml"
CHANNEL = "bus"

INFO = """\
What the marketplace hears: every state change of a payment, an order, a refund, a dispute, a payout, an
attention flag and a reconciliation, published once on the stage's Amazon EventBridge bus `payments-{stage}`.

**Transport.** AsyncAPI has no EventBridge binding, so the bus is described here. Each event is an EventBridge
event whose `detail` is a CloudEvents 1.0 envelope in JSON format (structured mode): the message's payload
below. The EventBridge event's own fields are the message's headers: `detail-type` is the CloudEvents `type`
and `source` the CloudEvents `source` (`urn:payments:<stage>`), so that a rule matches either without reading
the envelope, e.g. `{"source": ["urn:payments:prod"], "detail-type": ["payments.payment.succeeded"]}`. A
target that receives the whole EventBridge event finds the envelope under `detail`; a rule's input path `$.detail`
delivers the envelope alone.

**Delivery.** At least once. `id` is the same for every delivery of one change: drop an `id` already seen.
`sequence` increases per `subject` (the resource's id) and compares as a string: drop an event whose `sequence`
is not above the last one seen for its `subject`. An event exists only for a change that committed.

**Data.** `data` is the resource as the API answers it (amounts are decimal strings in major units, never
numbers); it never holds a card number, and an IBAN only masked. The schemas are closed: a field is added to
the schema in the same change that adds it to the event, and a consumer should accept fields it does not know.
"""


def _stamp(minute: int) -> str:
    return f"2026-03-02T14:{minute:02d}:31.412Z"


def _order(order_id: str, status: OrderStatus, **fields: Any) -> PaymentOrderOut:
    done = status is OrderStatus.SUCCESS
    defaults: dict[str, Any] = {
        "seller_account": "seller_lisbon_ceramics",
        "amount": "49.90",
        "currency": "EUR",
        "psp_reference": "psp_4c1e9a07b2d85f36" if done else None,
        "wallet_updated": done,
        "ledger_updated": done,
        "failure_reason": None if done else "Refused",
    }
    return PaymentOrderOut(payment_order_id=order_id, status=status, **{**defaults, **fields})


def _payment(status: PaymentStatus) -> PaymentOut:
    orders = {
        PaymentStatus.SUCCEEDED: [
            _order("po_7Q2M4", OrderStatus.SUCCESS),
            _order(
                "po_7Q2M5",
                OrderStatus.SUCCESS,
                seller_account="seller_porto_prints",
                amount="12.00",
                psp_reference="psp_90d3b6e1a4f27c58",
            ),
        ],
        PaymentStatus.PARTIALLY_FAILED: [
            _order("po_8R3N1", OrderStatus.SUCCESS),
            _order("po_8R3N2", OrderStatus.FAILED, seller_account="seller_porto_prints", amount="12.00"),
        ],
        PaymentStatus.FAILED: [_order("po_9S4P1", OrderStatus.FAILED)],
    }[status]
    checkout = {"po_7Q2M4": "chk_7Q2M", "po_8R3N1": "chk_8R3N", "po_9S4P1": "chk_9S4P"}[orders[0].payment_order_id]
    return PaymentOut(checkout_id=checkout, status=status, is_payment_done=True, payment_orders=orders)


def _refund(status: RefundStatus, returned: bool = False) -> RefundOut:
    refused = status is RefundStatus.FAILED
    return RefundOut(
        refund_id="rf_2B6K9",
        payment_order_id="po_7Q2M4",
        amount="19.90",
        currency="EUR",
        status=status,
        psp_reference=None if refused else "psp_e27a40c9d1b38f65",
        failure_reason="Refund amount exceeds what is left to refund" if refused else None,
        reason="damaged in transit",
        needs_attention=returned,
        attention=AttentionOut(
            kind=AttentionKind.PERSON,
            reason="REFUNDED_REVERSED: the scheme sent the refund back",
            since=_stamp(20),
        )
        if returned
        else None,
    )


def _dispute(step: Literal["chargeback", "reversed", "second_chargeback"]) -> DisputeOut:
    return DisputeOut(
        dispute_reference="psp_5f08c2d9e61b7a34",
        payment_order_id="po_7Q2M4",
        currency="EUR",
        step=step,
        chargeback_amount="49.90",
        reversed_amount="49.90" if step != "chargeback" else None,
        second_chargeback_amount="49.90" if step == "second_chargeback" else None,
        booked_at="2026-03-02T14:05:00.000Z",
    )


def _payout(status: PayoutStatus) -> PayoutOut:
    return PayoutOut(
        payout_id="pyt_3C8L2",
        seller_account="seller_lisbon_ceramics",
        amount="1250.00",
        currency="EUR",
        status=status,
        failure_reason="AC01" if status is PayoutStatus.FAILED else None,
        return_reason="AC04" if status is PayoutStatus.RETURNED else None,
        created_at="2026-03-02T09:00:00.000Z",
    )


def _attention(open_: bool) -> AttentionEventOut:
    return AttentionEventOut(
        resource="refund",
        resource_id="rf_2B6K9",
        open=open_,
        kind=AttentionKind.PERSON,
        reason="REFUNDED_REVERSED: the scheme sent the refund back",
        flagged_at=_stamp(20),
        resolved_at=None if open_ else _stamp(48),
        resolved_by=None if open_ else "ops.maria",
        resolution=None if open_ else "Refunded the shopper by bank transfer",
    )


RECONCILIATION = ReconciliationOut(
    source_key="incoming/adyen/2026-03-01.csv",
    format="adyen_settlement_details",
    sha256=hashlib.sha256(b"the settlement details report of 2026-03-01").hexdigest(),
    settlement_day="2026-03-01",
    rows=1204,
    matched=1202,
    mismatches=2,
    rejected=0,
    clean=False,
    report_key="reports/incoming/adyen/2026-03-01.csv.json",
)


def example_data() -> dict[EventType, Any]:
    """A realistic ``data`` of every type, built from its model."""
    return {
        EventType.PAYMENT_SUCCEEDED: _payment(PaymentStatus.SUCCEEDED),
        EventType.PAYMENT_PARTIALLY_FAILED: _payment(PaymentStatus.PARTIALLY_FAILED),
        EventType.PAYMENT_FAILED: _payment(PaymentStatus.FAILED),
        EventType.PAYMENT_ORDER_SUCCEEDED: _order("po_7Q2M4", OrderStatus.SUCCESS),
        EventType.PAYMENT_ORDER_FAILED: _order("po_9S4P1", OrderStatus.FAILED),
        EventType.ATTENTION_RAISED: _attention(True),
        EventType.ATTENTION_RESOLVED: _attention(False),
        EventType.REFUND_SUCCEEDED: _refund(RefundStatus.SUCCEEDED),
        EventType.REFUND_FAILED: _refund(RefundStatus.FAILED),
        EventType.REFUND_RETURNED: _refund(RefundStatus.SUCCEEDED, returned=True),
        EventType.DISPUTE_CHARGEBACK: _dispute("chargeback"),
        EventType.DISPUTE_REVERSED: _dispute("reversed"),
        EventType.DISPUTE_SECOND_CHARGEBACK: _dispute("second_chargeback"),
        EventType.PAYOUT_SUBMITTED: _payout(PayoutStatus.SUBMITTED),
        EventType.PAYOUT_PAID: _payout(PayoutStatus.PAID),
        EventType.PAYOUT_FAILED: _payout(PayoutStatus.FAILED),
        EventType.PAYOUT_RETURNED: _payout(PayoutStatus.RETURNED),
        EventType.RECONCILIATION_COMPLETED: RECONCILIATION,
    }


def _subject(type_: EventType, data: Any) -> str:
    if isinstance(data, AttentionEventOut):
        return data.resource_id
    if isinstance(data, ReconciliationOut):
        return data.source_key
    key = {
        "payment": "checkout_id",
        "payment_order": "payment_order_id",
        "refund": "refund_id",
        "dispute": "dispute_reference",
        "payout": "payout_id",
    }[type_.resource]
    return str(getattr(data, key))


def example_events(stage: str = "prod") -> dict[EventType, dict[str, Any]]:
    """An event of every type as published (the envelope dumped to JSON), its data built from the models."""
    events = {}
    for index, (type_, data) in enumerate(example_data().items()):
        event = CloudEvent.of(
            stage=stage,
            type_=type_,
            subject=_subject(type_, data),
            sequence=sequence_of(str(49_600_000_000_000_000_000_000 + 1_000 * index)),
            time=_stamp(index),
            data=data.model_dump(mode="json"),
        )
        events[type_] = event.model_dump(mode="json")
    return events


def _message_name(type_: EventType) -> str:
    return type_.value.removeprefix("payments.").replace(".", "_")


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the bus: one channel, one message and one ``receive`` operation per type."""
    models = list(dict.fromkeys(DATA_MODELS.values()))
    references, definitions = data_schemas(models, "#/components/schemas/{model}")
    examples = example_events()
    channel_ref = f"#/channels/{CHANNEL}"
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for type_ in EventType:
        name = _message_name(type_)
        messages[name] = {
            "name": type_.value,
            "title": type_.value,
            "summary": DESCRIPTIONS[type_],
            "contentType": "application/cloudevents+json",
            "headers": {
                "type": "object",
                "description": "The EventBridge event's fields around its detail",
                "properties": {
                    "detail-type": {"const": type_.value, "description": "The CloudEvents type"},
                    "source": {
                        "type": "string",
                        "pattern": "^urn:payments:[a-z0-9-]+$",
                        "description": "The CloudEvents source",
                    },
                },
                "required": ["detail-type", "source"],
            },
            "payload": envelope(type_, references[DATA_MODELS[type_]]),
            "correlationId": {
                "description": "The resource the event is about: order and de-duplicate by it",
                "location": "$message.payload#/subject",
            },
            "examples": [
                {
                    "name": name,
                    "headers": {"detail-type": type_.value, "source": examples[type_]["source"]},
                    "payload": examples[type_],
                }
            ],
        }
        operations[f"receive_{name}"] = {
            "action": "receive",
            "channel": {"$ref": channel_ref},
            "summary": DESCRIPTIONS[type_],
            "messages": [{"$ref": f"{channel_ref}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Payments events",
            "version": metadata.version("serverless-payments"),
            "description": INFO,
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": {
            CHANNEL: {
                "address": "payments-{stage}",
                "title": "The stage's EventBridge bus",
                "description": "Every event of the stage: EventBridge events whose detail is the CloudEvent.",
                "parameters": {"stage": {"description": "The deployment stage", "examples": ["dev", "prod"]}},
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": operations,
        "components": {"messages": messages, "schemas": definitions},
    }


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line text as literal blocks, as a person would write it."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def rendered() -> dict[Path, str]:
    """Every file of the catalogue and its text."""
    files = {
        SCHEMAS_DIR / f"{type_.value}.json": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for type_, schema in schemas().items()
    }
    files[ASYNCAPI] = "# Generated from the models by `make events-catalogue`: do not edit by hand.\n" + yaml.dump(
        asyncapi_document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120
    )
    return files


def stale() -> list[Path]:
    """The catalogue's files that differ from what the models make, are missing, or are left over."""
    files = rendered()
    changed = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
    extra = sorted(p for p in SCHEMAS_DIR.glob("*") if p not in files) if SCHEMAS_DIR.is_dir() else []
    return changed + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--write", action="store_true", help="write the files (and remove left-over schemas)")
    args = parser.parse_args(argv)
    if not args.write:
        outdated = stale()
        for path in outdated:
            print(path.relative_to(ROOT))
        return 1 if outdated else 0
    files = rendered()
    SCHEMAS_DIR.mkdir(parents=True, exist_ok=True)
    for path in SCHEMAS_DIR.glob("*.json"):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.write_text(text)
    print(f"wrote {len(files)} files under {EVENTS_DOCS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
