"""The Athena workflow's SQL and its routing. Athena cannot run here: its queries (``sql/athena.json``,
generated from ``sql/*.sql``) are checked to be what the generator writes, to parse as Trino, and to give,
run on duckdb over the normalised chunks and a ledger table laid out as the lake's, the very result of the
function's path."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from functions.reconcile.handler import handler as reconcile_handler
from payments.kernel.config import settings
from payments.reconciliation import athena, chunks, columnar, engine, lake, report
from payments.reconciliation.model import Bounds
from payments.reconciliation.service import ATHENA, DISTRIBUTED, OVERSIZED, SINGLE, Reconciler, reconcile_stream, route
from payments.reconciliation.sources import RECORD_TYPE_OF_KIND, InMemoryLedgerSource, LedgerEntry
from payments_dev import athena_sql
from tests.reconciliation.conftest import Aws, Context
from tests.reconciliation.test_adjustment_rows import ADJUSTMENTS, CHARGES, DAY, MODIFICATIONS, modification
from tests.reconciliation.test_adjustment_rows import settlement_file as adjustments_file

RUN = "0123456789abcdef"
KEY = "incoming/adyen/2026-11-30.csv"


def test_the_committed_queries_are_what_the_sql_generates() -> None:
    # Given the SQL files and the committed Trino queries / Then they agree (python -m payments_dev.athena_sql)
    committed = json.loads((Path(columnar.__file__).parent / "sql" / "athena.json").read_text(encoding="utf-8"))
    assert committed == athena_sql.render()
    # and every statement that returns rows is a query, each parsing as Trino, none with a duckdb-only construct
    assert set(committed) == set(columnar.statements()) - set(columnar.TABLES)
    for name, sql in committed.items():
        parsed = sqlglot.parse_one(sql, read="trino", error_level=ErrorLevel.RAISE)
        assert "IGNORE NULLS" not in sql and "read_parquet" not in sql.lower(), name
        tables = {t.name for t in parsed.find_all(sqlglot.exp.Table)}
        assert {athena.SETTLED_TABLE, athena.ADJUSTED_TABLE, athena.LEDGER_TABLE} <= tables, name


def test_the_queries_take_only_values_of_their_shape() -> None:
    rendered = athena.queries(run=RUN, psp="adyen", day=DAY, budget=7)
    carried = next(q["sql"] for q in rendered if q["name"] == "carried_over")
    assert f"run = '{RUN}'" in carried and "LIMIT 7" in carried and f"day = '{DAY}'" in carried
    assert not any("__" in q["sql"] for q in rendered)  # every placeholder replaced
    # a day unknown (no Settled row, no day in the key): nothing of the ledger is read
    assert "day = NULL" in athena.queries(run=RUN, psp="adyen", day=None, budget=7)[0]["sql"]
    for bad in ({"run": "x' OR 1=1 --"}, {"psp": "a'b"}, {"day": "2026-11-30' --"}):
        with pytest.raises(ValueError):
            athena.queries(**{"run": RUN, "psp": "adyen", "day": DAY, "budget": 7, **bad})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "distributed", "with_athena", "expected"),
    [
        (100, True, True, SINGLE),
        (600 * 1024**2, True, True, DISTRIBUTED),  # above the single pass, below Athena's threshold
        (3 * 1024**3, True, True, ATHENA),
        (3 * 1024**3, True, False, DISTRIBUTED),  # no lake (the local runtime): the Distributed Map keeps it
        (20 * 1024**3, True, True, ATHENA),  # above the Map's 8 GiB bound, within Athena's
        (20 * 1024**3, True, False, OVERSIZED),
        (65 * 1024**3, True, True, OVERSIZED),
        (600 * 1024**2, False, False, SINGLE),  # nothing configured: one function, as the tests' runtime
    ],
)
def test_the_route_by_size(size: int, distributed: bool, with_athena: bool, expected: str) -> None:
    assert route(size, Bounds(), distributed=distributed, athena=with_athena) == expected


def _ledger_rows(source: InMemoryLedgerSource) -> list[dict[str, Any]]:
    """The in-memory ledger as the lake's rows with their partitions (psp, day)."""
    kind_of = {record_type: kind for kind, record_type in RECORD_TYPE_OF_KIND.items()}
    rows = [
        {"txn_id": f"payin:{e.payment_order_id}", "kind": "PAYIN", "payment_order_id": e.payment_order_id,
         "psp_reference": e.psp_reference, "seller_account": e.seller_account, "currency": e.currency,
         "amount_minor": e.amount_minor, "commission_minor": e.commission_minor, "charged_at": e.charged_at,
         "booked_at": e.charged_at, "day": e.charged_at[:10]}
        for e in source.day_entries(DAY)
    ]  # fmt: skip
    rows += [
        {"txn_id": a.txn_id, "kind": kind_of[a.record_type], "payment_order_id": a.payment_order_id,
         "psp_reference": a.psp_reference, "original_psp_reference": a.original_psp_reference,
         "seller_account": a.seller_account, "currency": a.currency, "amount_minor": a.amount_minor,
         "booked_at": a.booked_at, "day": a.booked_at[:10]}
        for a in source.day_adjustments(DAY)
    ]  # fmt: skip
    return rows


def as_athena(
    queries: list[dict[str, str]],
    settled: list[Path],
    adjusted: Path,
    ledger: list[dict[str, Any]],
    target: Path,
    run: str = RUN,
    psp: str = "adyen",
) -> dict[str, list[Path]]:
    """Athena's part, on duckdb: the Glue tables (the run's Parquet, the lake's ledger rows with their partition
    columns), each Trino query written back as duckdb and unloaded to Parquet; {query name: its objects}."""
    files: dict[str, list[Path]] = {}
    with duckdb.connect(":memory:") as con:
        for table, paths in ((athena.SETTLED_TABLE, settled), (athena.ADJUSTED_TABLE, [adjusted])):
            con.execute(
                f"CREATE TABLE {table} AS SELECT *, '{run}' AS run FROM read_parquet(?)",  # noqa: S608
                [[str(p) for p in paths]],
            )
        spec = ", ".join(f"{name} {kind}" for name, kind in lake.COLUMNS)
        con.execute(f"CREATE TABLE {athena.LEDGER_TABLE} ({spec}, psp VARCHAR, day VARCHAR, ccy VARCHAR)")
        names = [name for name, _ in lake.COLUMNS]
        for row in ledger * 2:  # delivered twice: the copy is at least once
            con.execute(
                f"INSERT INTO {athena.LEDGER_TABLE} VALUES ({', '.join('?' * (len(names) + 3))})",  # noqa: S608
                [*(row.get(n) for n in names), psp, row["day"], row["currency"]],
            )
        for query in queries:
            (as_duckdb,) = sqlglot.transpile(query["sql"], read="trino", write="duckdb")
            (target / query["name"]).mkdir(parents=True)
            files[query["name"]] = [target / query["name"] / "part-0.parquet"]
            con.execute(f"COPY ({as_duckdb}) TO '{files[query['name']][0]}' (FORMAT PARQUET)")
    return files


def _on_athena(text: str, source: InMemoryLedgerSource, bounds: Bounds, tmp: Path) -> engine.Result:
    """The workflow's steps with duckdb in Athena's place: chunks normalised to Parquet, the queries (Trino,
    written back as duckdb) unloaded to Parquet, the result read back by the finishing step's code."""
    data = text.encode()
    plan = chunks.plan_chunks(io.BytesIO(data), bounds)
    assert len(plan.chunks) > 1  # the rows really are cut into chunks
    partials, settled = [], []
    for chunk in plan.chunks:
        partial, entries = chunks.process_chunk(io.BytesIO(data[chunk.start : chunk.end]), chunk, plan, bounds)
        partials.append(partial)
        settled.append(tmp / f"chunk-{chunk.index:05d}.parquet")
        athena.write_settled(entries, settled[-1])
    total = chunks.add_up(partials, plan, bounds)
    adjusted = tmp / "adjusted.parquet"
    athena.write_adjusted(total.adjustments, adjusted)
    day = engine.window_day(total.days, DAY)
    queries = athena.queries(run=RUN, psp="adyen", day=day, budget=bounds.max_point_lookups)
    files = as_athena(queries, settled, adjusted, _ledger_rows(source), tmp / "results")
    results = athena.Results(files)
    try:
        return columnar.outcomes(results, total, source, bounds, day)
    finally:
        results.close()


def _source(adjustments: list[Any]) -> InMemoryLedgerSource:
    entries = [
        LedgerEntry(c["psp_reference"], c["merchant_reference"], "seller_books", c["currency"], c["amount_minor"],
                    c["charged_at"])
        for c in CHARGES
    ]  # fmt: skip
    entries.append(LedgerEntry("psp_00000000000000c9", "po_9", "seller_books", "EUR", 900, f"{DAY}T23:50:00.000Z"))
    return InMemoryLedgerSource(entries, adjustments)


def test_the_athena_workflow_gives_the_function_s_report(tmp_path: Path) -> None:
    # Given a day's charges (one never settled) and modifications: one duplicated, one the ledger lacks, one
    # whose amount differs, and a ledger refund the file lacks
    modifications = [
        *MODIFICATIONS,
        MODIFICATIONS[0],
        modification("Chargeback", "dsp_00000000000000d7", "po_2", "psp_00000000000000c2", 300, currency="EUR"),
    ]
    adjustments = [replace(ADJUSTMENTS[0], amount_minor=999), *ADJUSTMENTS[1:]]
    adjustments.append(replace(ADJUSTMENTS[3], txn_id="refund:rf_8", psp_reference="psp_00000000000000r8"))
    text = adjustments_file(modifications)
    bounds = replace(Bounds(), chunk_bytes=400)
    # When the function reconciles it, and the Athena workflow's steps do
    expected, digest = reconcile_stream(io.BytesIO(text.encode()), _source(adjustments), bounds, None, DAY)
    result = _on_athena(text, _source(adjustments), bounds, tmp_path)
    # Then the results are equal, and so the reports, byte for byte, with every kind of outcome in them
    assert result == expected
    assert report.to_json(report.build(KEY, digest, result, None)) == report.to_json(
        report.build(KEY, digest, expected, None)
    )
    kinds = {(m.kind, m.record_type) for m in result.mismatches}
    assert {
        ("DUPLICATE_IN_SETTLEMENT", "Refunded"),
        ("MISSING_IN_LEDGER", "Chargeback"),
        ("AMOUNT_MISMATCH", "Refunded"),
        ("MISSING_IN_SETTLEMENT", "Refunded"),
        ("MISSING_IN_SETTLEMENT", None),
    } <= kinds
    assert result.matched > 0


# --- the steps through S3 and the handler (moto), Athena played by duckdb -------------------------------------


class _Sfn:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> None:
        self.started.append(stateMachineArn)


def test_a_file_above_the_threshold_starts_the_athena_workflow(cloud: Aws) -> None:
    # Given a file above a small Athena threshold, both state machines configured
    key = f"incoming/adyen/{DAY}.csv"
    cloud.put(key, adjustments_file().encode())
    sfn = _Sfn()
    bounds = replace(Bounds(), max_single_pass_bytes=10, athena_above_bytes=20)
    reconciler = Reconciler(
        ledger=_source(ADJUSTMENTS),
        bounds=bounds,
        state_machine_arn="arn:map",
        athena_state_machine_arn="arn:athena",
        sfn=sfn,
    )
    # When it arrives / Then the Athena workflow is started, not the Distributed Map, and nothing is written yet
    assert reconciler.reconcile_object(key).status == "DISTRIBUTED"
    assert sfn.started == ["arn:athena"]
    assert not cloud.exists(f"reports/{key}.json")


def test_the_athena_steps_through_s3_write_the_function_s_report_and_clean_up(cloud: Aws, tmp_path: Path) -> None:
    # Given a file in the bucket, the lake bucket for Athena's results, a ledger
    key = f"incoming/adyen/{DAY}.csv"
    cloud.put(key, adjustments_file().encode())
    lake_bucket = settings().ledger_lake_bucket
    cloud.s3.create_bucket(Bucket=lake_bucket)
    source = _source([replace(ADJUSTMENTS[0], amount_minor=1), *ADJUSTMENTS[1:]])
    reconciler = Reconciler(ledger=source, bounds=replace(Bounds(), chunk_bytes=400))
    # When the workflow's function steps run (those that need no ledger through the handler, as the state machine
    # runs them), Athena's queries run on duckdb in between
    plan = reconciler.plan(key, for_athena=True)
    assert len(plan["chunks"]) > 1
    event = {"bucket": cloud.bucket, "key": key, "plan": plan}
    for chunk in plan["chunks"]:
        reconcile_handler({**event, "action": "normalise_chunk", "chunk": chunk}, Context())
    prepared = reconcile_handler({**event, "action": "athena_prepare"}, Context())
    assert prepared["quarantined"] is False and prepared["window_day"] == DAY
    run = plan["run_prefix"].removeprefix("work/").rstrip("/")
    downloaded = tmp_path / "work"
    settled = athena.download(cloud.s3, f"s3://{cloud.bucket}/work/{run}/settled/", downloaded / "settled")
    (adjusted,) = athena.download(cloud.s3, f"s3://{cloud.bucket}/work/{run}/adjusted/", downloaded / "adjusted")
    files = as_athena(
        prepared["queries"], settled, adjusted, _ledger_rows(source), tmp_path / "unloaded", run, settings().psp_name
    )
    results = []
    for name, (path,) in files.items():
        location = f"{prepared['results_prefix']}{name}/attempt-1/"
        cloud.s3.put_object(
            Bucket=lake_bucket, Key=location.removeprefix(f"s3://{lake_bucket}/") + "part-0", Body=path.read_bytes()
        )
        results.append({"name": name, "location": location, "execution_id": name})
    outcome = reconciler.athena_finish(key, plan, results)
    by_athena = cloud.get(f"reports/{key}.json")
    # Then the report is byte for byte the function's, and the run's work objects are gone
    assert outcome["status"] == reconciler.reconcile_object(key).status == "RECONCILED"
    assert cloud.get(f"reports/{key}.json") == by_athena
    assert json.loads(by_athena)["mismatches"]  # the amount that differs, at least
    assert cloud.s3.list_objects_v2(Bucket=cloud.bucket, Prefix="work/").get("KeyCount", 0) == 0


def test_a_truncated_file_is_quarantined_when_the_partials_add_up(cloud: Aws) -> None:
    # Given a file whose last line ends early (no newline), cut into chunks
    key = f"incoming/adyen/{DAY}.csv"
    cloud.put(key, adjustments_file().encode()[:-25])
    reconciler = Reconciler(ledger=_source(ADJUSTMENTS), bounds=replace(Bounds(), chunk_bytes=400))
    plan = reconciler.plan(key, for_athena=True)
    for chunk in plan["chunks"]:
        reconciler.normalise_chunk(key, plan, chunk)
    # When PrepareQueries adds them up / Then the file is quarantined, with its report, and no query is rendered
    prepared = reconciler.athena_prepare(key, plan)
    assert prepared["quarantined"] is True and prepared["outcome"]["status"] == "QUARANTINED"
    assert "queries" not in prepared and cloud.exists(f"reports/{key}.json")
