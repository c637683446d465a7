"""``sql/adjustments.sql`` on duckdb: which adjustment row takes which ledger adjustment of the window day.
(Athena runs the same statements as Trino; tests/reconciliation/test_columnar.py transpiles them.)"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from payments.reconciliation import columnar, lake

DAY = "2026-11-30"


def run(rows: list[tuple[Any, ...]], ledger: list[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The statements in order over ``adjusted`` rows and ``ledger_copy`` items: (outcome, line, ledger txn) per
    row, and the ledger transactions left missing in the settlement."""
    sql = columnar.statements()
    with duckdb.connect(":memory:") as con:
        spec = ", ".join(f"{name} {kind}" for name, kind in columnar.ADJUSTED_COLUMNS)
        con.execute(f"CREATE TABLE adjusted ({spec})")
        for row in rows:
            con.execute("INSERT INTO adjusted VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(row))
        spec = ", ".join(f"{name} {kind}" for name, kind in lake.COLUMNS)
        con.execute(f"CREATE TABLE ledger_copy ({spec})")
        for item in ledger:
            con.execute(
                f"INSERT INTO ledger_copy VALUES ({', '.join('?' * len(lake.COLUMNS))})",  # noqa: S608 - placeholders
                [item.get(name) for name, _ in lake.COLUMNS],
            )
        con.execute("CREATE TABLE params AS SELECT CAST(? AS VARCHAR) AS window_day", [DAY])
        for name in ("ledger_adjustments", "adjustment_rows", "adjustment_claims"):
            con.execute(sql[name])
        outcomes = [(o[0], o[3], o[11]) for o in con.execute(sql["adjustment_outcomes"]).fetchall()]
        missing = [m[0] for m in con.execute(sql["adjustments_missing_in_settlement"]).fetchall()]
    return outcomes, missing


def refund_row(line: int, modification: str, refund_id: str, amount: int = 100) -> tuple[Any, ...]:
    return ("Refunded", modification, line, "po_1", "P1", refund_id, "EUR", amount)


def refund(refund_id: str, modification: str, day: str = DAY) -> dict[str, Any]:
    return {
        "txn_id": f"refund:{refund_id}",
        "kind": "REFUND",
        "payment_order_id": "po_1",
        "psp_reference": modification,
        "original_psp_reference": "P1",
        "seller_account": "s1",
        "currency": "EUR",
        "amount_minor": 100,
        "booked_at": f"{day}T10:00:00.000Z",
    }


def test_a_row_takes_its_adjustment_by_key_and_a_repeated_row_is_a_duplicate() -> None:
    # Given two identical rows of one refund and a row that differs only in amount, and the ledger's refund
    rows = [refund_row(2, "M1", "r1"), refund_row(3, "M1", "r1"), refund_row(4, "M1", "r1", amount=5)]
    outcomes, missing = run(rows, [refund("r1", "M1"), refund("r1", "M1")])  # delivered twice
    # Then the first takes it, the others are duplicates (identical or not), nothing is missing
    assert outcomes == [("TAKEN", 2, "refund:r1"), ("DUPLICATE", 3, None), ("DUPLICATE", 4, None)]
    assert missing == []


def test_a_row_that_lost_its_key_takes_its_transaction_id() -> None:
    # Given two rows under one modification reference (the PSP repeated it), each naming its own refund id,
    # and the ledger's two refunds, the second booked under another reference
    rows = [refund_row(2, "M1", "r1"), refund_row(3, "M1", "r2")]
    outcomes, missing = run(rows, [refund("r1", "M1"), refund("r2", "M2")])
    # Then the key goes to the first row, and the second takes its refund by id: nothing missing
    assert outcomes == [("TAKEN", 2, "refund:r1"), ("TAKEN", 3, "refund:r2")]
    assert missing == []


def test_an_adjustment_is_taken_once_and_a_row_whose_id_was_taken_is_looked_up() -> None:
    # Given two refunds under one key (of several, the key names the last by id) and two rows naming that key
    rows = [refund_row(2, "M1", "r1"), refund_row(3, "M1", "r2")]
    outcomes, missing = run(rows, [refund("r1", "M1"), refund("r2", "M1")])
    # Then the first row takes r2 by key; the second's own r2 is taken: it is looked up; r1 was taken by nobody
    assert outcomes == [("TAKEN", 2, "refund:r2"), ("LOOKUP", 3, None)]
    assert missing == ["refund:r1"]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (refund_row(2, "M9", "r9"), "LOOKUP"),  # names a refund not booked on the day: looked up by id
        (refund_row(2, "M9", ""), "UNKNOWN"),  # names no refund id and no key of the day
        (("Chargeback", "", 2, "po_1", "P1", "", "EUR", 100), "UNKNOWN"),  # a dispute step without its reference
    ],
)
def test_a_row_without_an_adjustment_of_the_day(row: tuple[Any, ...], expected: str) -> None:
    # Given the ledger's refund of the day, and a row that does not name it
    outcomes, missing = run([row], [refund("r1", "M1"), refund("r0", "M0", day="2026-11-29")])
    # Then the row is looked up or unknown, and the day's refund is missing in the settlement (not the other day's)
    assert outcomes == [(expected, 2, None)]
    assert missing == ["refund:r1"]
