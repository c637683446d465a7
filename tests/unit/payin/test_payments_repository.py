"""PaymentsRepository: atomic create, forward-only statuses (payments/payin/repository.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError

from payments.kernel import clock
from payments.kernel.errors import Conflict, NotFound, StatusConflict
from payments.payin.repository import PaymentsRepository
from payments.payin.status import OrderStatus, PaymentStatus
from tests.unit.conftest import Repos, order_record, payment_record, store_checkout


def _items(ddb: Any) -> list[dict[str, Any]]:
    return ddb.scan(TableName="payments")["Items"]


def _statuses(order: Any) -> list[str]:
    return [h["status"] for h in order.status_history]


# --- create ---------------------------------------------------------------------------------
def test_create_stores_the_payment_and_its_orders(repos: Repos, ddb: Any) -> None:
    # Given a checkout with two orders
    payment = payment_record("chk_1", ["po_1", "po_2"])
    orders = [
        order_record("po_1", "chk_1", amount_minor=1999),
        order_record("po_2", "chk_1", seller="seller_toys", amount_minor=500),
    ]
    # When it is created
    outcome = repos.payments.create(payment, orders)
    # Then it is new, and the payment and both orders are stored, NOT_STARTED with a one-entry history
    assert outcome.created is True
    assert len(_items(ddb)) == 3
    stored = repos.payments.get("chk_1")
    assert (stored.status, stored.is_payment_done, stored.payment_order_ids) == (
        PaymentStatus.PENDING,
        False,
        ["po_1", "po_2"],
    )
    assert stored.created_at and stored.created_at == stored.updated_at
    got = repos.payments.orders_of(stored)
    assert [(o.payment_order_id, o.seller_account, o.amount_minor, o.status) for o in got] == [
        ("po_1", "seller_books", 1999, OrderStatus.NOT_STARTED),
        ("po_2", "seller_toys", 500, OrderStatus.NOT_STARTED),
    ]
    assert [_statuses(o) for o in got] == [["NOT_STARTED"], ["NOT_STARTED"]]


def test_create_again_with_the_same_fingerprint_returns_the_stored_payment(repos: Repos, ddb: Any) -> None:
    # Given a stored checkout
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")], fingerprint="a" * 64)
    first = repos.payments.get("chk_1")
    # When the same request is stored again (a retry)
    outcome = repos.payments.create(payment_record("chk_1", ["po_1"], "a" * 64), [order_record("po_1", "chk_1")])
    # Then nothing new is created and the earlier record is returned
    assert outcome.created is False
    assert outcome.payment == first
    assert len(_items(ddb)) == 2


def test_create_with_the_same_checkout_id_and_another_body_is_a_conflict_on_checkout_id(repos: Repos, ddb: Any) -> None:
    # Given a stored checkout
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")], fingerprint="a" * 64)
    # When another request uses the same checkout id with new order ids
    with pytest.raises(Conflict) as raised:
        repos.payments.create(payment_record("chk_1", ["po_9"], "b" * 64), [order_record("po_9", "chk_1")])
    # Then the conflict names checkout_id and the new order is not stored
    assert raised.value.field == "checkout_id"
    assert repos.payments.find_order("po_9") is None
    assert len(_items(ddb)) == 2


def test_reusing_a_payment_order_id_in_another_checkout_stores_nothing_of_it(repos: Repos, ddb: Any) -> None:
    # Given a stored checkout holding po_1
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")], fingerprint="a" * 64)
    before = sorted(str(i) for i in _items(ddb))
    # When a second checkout reuses po_1 as its second order
    orders = [
        order_record("po_new", "chk_2"),
        order_record("po_1", "chk_2", amount_minor=1),
        order_record("po_other", "chk_2"),
    ]
    with pytest.raises(Conflict) as raised:
        repos.payments.create(payment_record("chk_2", ["po_new", "po_1", "po_other"], "b" * 64), orders)
    # Then the conflict names that order's path, and nothing of the second checkout is stored
    assert raised.value.field == "payment_orders[1].payment_order_id"
    assert repos.payments.find("chk_2") is None
    assert repos.payments.find_order("po_new") is None and repos.payments.find_order("po_other") is None
    assert repos.payments.get_order("po_1").checkout_id == "chk_1"
    assert repos.payments.get_order("po_1").amount_minor == 1999
    assert sorted(str(i) for i in _items(ddb)) == before


def test_unknown_payment_and_order_are_not_found(repos: Repos) -> None:
    # Given an empty table / When reading unknown ids / Then NotFound (get) or None (find)
    assert repos.payments.find("chk_x") is None
    with pytest.raises(NotFound):
        repos.payments.get("chk_x")
    with pytest.raises(NotFound):
        repos.payments.get_order("po_x")


# --- move_order ---------------------------------------------------------------------------------
def test_order_moves_not_started_executing_success_with_its_history(repos: Repos) -> None:
    # Given a stored order
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    # When it moves to EXECUTING, then to SUCCESS with a PSP reference
    executing = repos.payments.move_order("po_1", OrderStatus.EXECUTING)
    done = repos.payments.move_order(
        "po_1", OrderStatus.SUCCESS, psp_reference="psp_1", charged_at="2026-11-30T10:00:00.000Z"
    )
    # Then each move is stored and appended to the history
    assert executing.status is OrderStatus.EXECUTING
    assert (done.status, done.psp_reference, done.charged_at) == (
        OrderStatus.SUCCESS,
        "psp_1",
        "2026-11-30T10:00:00.000Z",
    )
    assert _statuses(repos.payments.get_order("po_1")) == ["NOT_STARTED", "EXECUTING", "SUCCESS"]
    assert done.anomalies == []


def test_repeating_success_with_the_same_psp_reference_is_a_no_op(repos: Repos) -> None:
    # Given an order in SUCCESS with psp_1
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_order("po_1", OrderStatus.EXECUTING)
    first = repos.payments.move_order(
        "po_1", OrderStatus.SUCCESS, psp_reference="psp_1", charged_at="2026-11-30T10:00:00.000Z"
    )
    # When the same SUCCESS arrives again (a retried step)
    again = repos.payments.move_order(
        "po_1", OrderStatus.SUCCESS, psp_reference="psp_1", charged_at="2026-11-30T10:00:00.000Z"
    )
    # Then nothing changes: same record, no extra history, no anomaly
    assert again == first
    assert _statuses(again) == ["NOT_STARTED", "EXECUTING", "SUCCESS"]
    assert again.anomalies == []


def test_success_to_failed_is_refused_recorded_as_an_anomaly_and_status_stays(repos: Repos) -> None:
    # Given an order in SUCCESS
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_order("po_1", OrderStatus.EXECUTING)
    repos.payments.move_order("po_1", OrderStatus.SUCCESS, psp_reference="psp_1", charged_at="2026-11-30T10:00:00.000Z")
    # When a late FAILED signal arrives
    with pytest.raises(StatusConflict):
        repos.payments.move_order("po_1", OrderStatus.FAILED, failure_reason="card_declined")
    # Then the order is still SUCCESS, unchanged, with the refusal recorded as an anomaly
    order = repos.payments.get_order("po_1")
    assert (order.status, order.psp_reference, order.failure_reason) == (OrderStatus.SUCCESS, "psp_1", None)
    assert _statuses(order) == ["NOT_STARTED", "EXECUTING", "SUCCESS"]
    assert [a["what"] for a in order.anomalies] == ["refused SUCCESS -> FAILED"]


def test_success_with_another_psp_reference_is_refused_as_an_anomaly(repos: Repos) -> None:
    # Given an order in SUCCESS with psp_1
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_order("po_1", OrderStatus.SUCCESS, psp_reference="psp_1", charged_at="2026-11-30T10:00:00.000Z")
    # When a SUCCESS with another PSP reference arrives (a second charge?)
    with pytest.raises(StatusConflict):
        repos.payments.move_order(
            "po_1", OrderStatus.SUCCESS, psp_reference="psp_2", charged_at="2026-11-30T10:00:01.000Z"
        )
    # Then the first reference stays and the signal is an anomaly
    order = repos.payments.get_order("po_1")
    assert order.psp_reference == "psp_1"
    assert [a["what"] for a in order.anomalies] == ["refused SUCCESS -> SUCCESS (psp_reference psp_2)"]


def test_failed_to_executing_is_refused(repos: Repos) -> None:
    # Given a FAILED order
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_order("po_1", OrderStatus.FAILED, failure_reason="card_declined")
    # When something tries to execute it again / Then it is refused and stays FAILED
    with pytest.raises(StatusConflict):
        repos.payments.move_order("po_1", OrderStatus.EXECUTING)
    order = repos.payments.get_order("po_1")
    assert (order.status, order.failure_reason) == (OrderStatus.FAILED, "card_declined")
    assert _statuses(order) == ["NOT_STARTED", "FAILED"]


def test_executing_back_to_not_started_is_refused_as_a_status_conflict(repos: Repos) -> None:
    # Given an EXECUTING order
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_order("po_1", OrderStatus.EXECUTING)
    # When something tries to move it back to NOT_STARTED
    # Then it is refused like every other backward move (StatusConflict, recorded as an anomaly)
    with pytest.raises(StatusConflict):
        repos.payments.move_order("po_1", OrderStatus.NOT_STARTED)
    order = repos.payments.get_order("po_1")
    assert order.status is OrderStatus.EXECUTING
    assert _statuses(order) == ["NOT_STARTED", "EXECUTING"]
    assert [a["what"] for a in order.anomalies] == ["refused EXECUTING -> NOT_STARTED"]


def test_moving_an_unknown_order_is_not_found(repos: Repos) -> None:
    # Given no such order / When it is moved / Then NotFound, and nothing is created
    with pytest.raises(NotFound):
        repos.payments.move_order("po_missing", OrderStatus.EXECUTING)
    assert repos.payments.find_order("po_missing") is None


def test_flag_attention_parks_the_order_with_a_reason(repos: Repos) -> None:
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.flag_attention("po_1", "wallet step: StoreUnavailable: throttled")
    order = repos.payments.get_order("po_1")
    assert (order.needs_attention, order.attention_reason) == (True, "wallet step: StoreUnavailable: throttled")


# --- move_payment ----------------------------------------------------------------------------------
def test_payment_moves_forward_and_a_repeat_of_the_same_status_is_allowed(repos: Repos) -> None:
    # Given a PENDING payment
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    # When it moves PENDING -> PROCESSING -> SUCCEEDED, then SUCCEEDED again
    assert repos.payments.move_payment("chk_1", PaymentStatus.PROCESSING) is True
    assert repos.payments.move_payment("chk_1", PaymentStatus.PROCESSING) is True
    assert repos.payments.move_payment("chk_1", PaymentStatus.SUCCEEDED) is True
    first_final = repos.payments.get("chk_1").finalized_at
    assert repos.payments.move_payment("chk_1", PaymentStatus.SUCCEEDED) is True
    # Then it is SUCCEEDED and finalized_at was set once
    payment = repos.payments.get("chk_1")
    assert payment.status is PaymentStatus.SUCCEEDED
    assert first_final is not None and payment.finalized_at == first_final


@pytest.mark.parametrize(
    "target", [PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.FAILED, PaymentStatus.PARTIALLY_FAILED]
)
def test_a_final_payment_does_not_move(repos: Repos, target: PaymentStatus) -> None:
    # Given a SUCCEEDED payment
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_payment("chk_1", PaymentStatus.SUCCEEDED)
    # When it is asked to move elsewhere / Then it refuses (False) and stays SUCCEEDED
    assert repos.payments.move_payment("chk_1", target) is False
    assert repos.payments.get("chk_1").status is PaymentStatus.SUCCEEDED


def test_processing_payment_does_not_go_back_to_pending(repos: Repos) -> None:
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_payment("chk_1", PaymentStatus.PROCESSING)
    # PENDING is entered only at creation: re-entering it from PROCESSING is refused
    assert repos.payments.move_payment("chk_1", PaymentStatus.PENDING) is False
    assert repos.payments.get("chk_1").status is PaymentStatus.PROCESSING


def test_is_payment_done_only_goes_from_false_to_true(repos: Repos) -> None:
    # Given a PROCESSING payment
    store_checkout(repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD")])
    repos.payments.move_payment("chk_1", PaymentStatus.PROCESSING)
    assert repos.payments.get("chk_1").is_payment_done is False
    # When it is finalized done, then finalized again without "done"
    assert repos.payments.move_payment("chk_1", PaymentStatus.SUCCEEDED, is_payment_done=True) is True
    assert repos.payments.move_payment("chk_1", PaymentStatus.SUCCEEDED, is_payment_done=False) is True
    # Then it stays done
    assert repos.payments.get("chk_1").is_payment_done is True


def test_moving_an_unknown_payment_changes_nothing(repos: Repos, ddb: Any) -> None:
    # Given no payment / When moved / Then False and no item appears
    assert repos.payments.move_payment("chk_x", PaymentStatus.PROCESSING) is False
    assert _items(ddb) == []


def test_repository_reads_its_table_name_from_settings(ddb: Any) -> None:
    # Given the default settings / When a repository is built / Then it uses the "payments" table
    assert PaymentsRepository().table == "payments"


class TokenHonouringClient:
    """The moto client, plus what moto leaves out: DynamoDB's ClientRequestToken contract for
    TransactWriteItems. Within the 10-minute window, the same token with the same items succeeds
    without writing again, and the same token with other items fails with
    IdempotentParameterMismatchException (AWS API reference, TransactWriteItems)."""

    def __init__(self, inner: Any):
        self._inner = inner
        self._seen: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        token = kwargs.get("ClientRequestToken")
        if token is not None and token in self._seen:
            if self._seen[token] != kwargs["TransactItems"]:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "IdempotentParameterMismatchException",
                            "Message": "token reused with other parameters",
                        }
                    },
                    "TransactWriteItems",
                )
            return {}
        result = self._inner.transact_write_items(**kwargs)
        if token is not None:
            self._seen[token] = kwargs["TransactItems"]
        return result


def test_a_retried_create_within_the_token_window_returns_the_stored_payment(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB's ClientRequestToken behaviour, and a clock that moves between calls
    ticks = itertools.count()
    monkeypatch.setattr(clock, "now_iso", lambda: f"2026-11-30T10:00:{next(ticks):02d}.000Z")
    repo = PaymentsRepository(client=TokenHonouringClient(ddb))
    repo.create(payment_record("chk_1", ["po_1"], "a" * 64), [order_record("po_1", "chk_1")])
    # When the same request is stored again a few seconds later (the caller's retry after a
    # failure further on, e.g. StartExecution throttled)
    outcome = repo.create(payment_record("chk_1", ["po_1"], "a" * 64), [order_record("po_1", "chk_1")])
    # Then it is recognised as the earlier payment, as it is without the token
    assert outcome.created is False
    assert outcome.payment.created_at == "2026-11-30T10:00:00.000Z"


# --- orders_of under throttling ---------------------------------------------------------------
class _Throttled:
    """A DynamoDB client whose BatchGetItem leaves every key unprocessed, as under throttling."""

    def __init__(self, real: Any):
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # boto3's parameter name
        return {"Responses": {}, "UnprocessedKeys": RequestItems}


def test_orders_of_a_throttled_read_is_store_unavailable_never_not_found(
    repos: Repos, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stored checkout whose order reads stay unprocessed (throttled)
    from payments.kernel import dynamo
    from payments.kernel.errors import StoreUnavailable

    store_checkout(
        repos.payments, "chk_1", [("po_1", "seller_books", 1999, "USD"), ("po_2", "seller_toys", 500, "USD")]
    )
    stored = repos.payments.get("chk_1")
    monkeypatch.setattr(dynamo.time, "sleep", lambda _: None)
    monkeypatch.setattr(repos.payments, "ddb", _Throttled(ddb))
    # When its orders are read / Then the read is unavailable (a 503 to retry), not a missing order (404)
    with pytest.raises(StoreUnavailable):
        repos.payments.orders_of(stored)
