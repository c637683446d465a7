"""Writes ``payments/reconciliation/sql/athena.json``: the reconciliation's SQL as the Athena (Trino) queries
the large-day workflow runs (``stepfunctions/reconcile_athena.asl.json``), generated from the one source
(``payments/reconciliation/sql/*.sql``) with sqlglot, which the deployed function does not carry.

Each statement that returns rows becomes one query: the run's inputs (the Glue tables of the normalised
settlement rows and of the ledger's copy) and every statement that creates a table become its WITH clauses,
in order. The run's values are literals the function substitutes (:mod:`payments.reconciliation.athena`).

    python -m payments_dev.athena_sql      # rewrite the file after a change to the SQL (a test compares them)
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from payments.reconciliation import athena, columnar, lake

TARGET = Path(columnar.__file__).parent / "sql" / "athena.json"


def _columns(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(name for name, _ in columns)


#: the inputs, named as the statements read them, over the Glue tables (``infra/constructs/reconcile_athena.py``)
_RUN_ROWS = f"WHERE run = '{athena.RUN}'"
INPUTS = {
    "settled": f"SELECT {_columns(columnar.SETTLED_COLUMNS)} FROM {athena.SETTLED_TABLE} {_RUN_ROWS}",  # noqa: S608
    "adjusted": f"SELECT {_columns(columnar.ADJUSTED_COLUMNS)} FROM {athena.ADJUSTED_TABLE} {_RUN_ROWS}",  # noqa: S608
    "params": f"SELECT CAST('{athena.DAY}' AS VARCHAR) AS window_day",
    "ledger_copy": f"SELECT {_columns(lake.COLUMNS)} FROM {athena.LEDGER_TABLE} "  # noqa: S608
    f"WHERE psp = '{athena.PSP}' AND day = '{athena.DAY}'",
}


def render() -> dict[str, str]:
    """{statement name: Trino query} for every statement that returns rows, in the files' order."""
    sql = columnar.statements()
    tables = {
        name: sqlglot.parse_one(sql[name], read="duckdb", error_level=ErrorLevel.RAISE).expression
        for name in columnar.TABLES
    }
    queries: dict[str, str] = {}
    for name, text in sql.items():
        if name in columnar.TABLES:
            continue
        query = sqlglot.parse_one(text.replace("LIMIT ?", f"LIMIT {athena.BUDGET}"), read="duckdb")
        assert isinstance(query, exp.Select), name
        for alias, source in [*INPUTS.items(), *tables.items()]:
            query = query.with_(alias, as_=source, append=True)
        # the CTEs must come in dependency order: inputs, then the tables in the files' order
        (trino,) = sqlglot.transpile(
            query.sql("duckdb"), read="duckdb", write="trino", unsupported_level=ErrorLevel.RAISE
        )
        # duckdb's any_value skips NULLs; sqlglot writes Trino's arbitrary (which skips them too) with an
        # IGNORE NULLS that Trino accepts only in a window: drop it (the copies of a transaction are identical)
        tree = sqlglot.parse_one(trino, read="trino")
        for node in list(tree.find_all(exp.IgnoreNulls)):
            node.replace(node.this)
        queries[name] = tree.sql("trino")
    return queries


def main() -> None:
    TARGET.write_text(json.dumps(render(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
