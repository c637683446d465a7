"""The reconciliation of a day too large for one function, on Athena (``stepfunctions/reconcile_athena.asl.json``).

The same SQL as the function's duckdb (``sql/*.sql``), as Trino queries generated from it
(``sql/athena.json``, written by ``payments_dev/athena_sql.py``; a test compares it with a fresh generation):

1. the file is cut into chunks (:mod:`.chunks`) and each chunk normalised by our reader into its partial
   (JSON) and its Settled rows as Parquet under ``work/<run>/settled/``: the Glue table
   :data:`SETTLED_TABLE`, whose partition ``run`` is injected (partition projection: no partition to add);
2. the partials add up; the adjustment rows go to ``work/<run>/adjusted/`` (:data:`ADJUSTED_TABLE`) and
   :func:`queries` renders the run's queries: literals checked here, never text from the file;
3. Athena runs each as ``UNLOAD (...) TO <prefix> WITH (format = 'PARQUET')`` in the lake's workgroup;
4. :class:`Results` reads the unloaded Parquet with duckdb, in each statement's order, and
   :func:`.columnar.outcomes` turns the rows into the result: the same code as the function's path.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from payments.reconciliation import columnar, engine
from payments.reconciliation.model import Bounds

#: the Glue tables of the run's normalised rows (in the lake's database) and of the ledger's copy
SETTLED_TABLE, ADJUSTED_TABLE, LEDGER_TABLE = "settlement_rows", "settlement_adjustments", "ledger"
#: the placeholders of the generated queries, replaced by :func:`queries`
RUN, DAY, PSP, BUDGET = "__RUN__", "__DAY__", "__PSP__", 987654321
#: where a run's rows go in the settlement bucket (``work/<run>/``: the distributed path's prefix)
SETTLED_PREFIX, ADJUSTED_PREFIX = "settled/", "adjusted/"
#: where the lake's workgroup unloads the workflow's results (``s3://<lake bucket>/<prefix><run>/<query>/...``)
RESULTS_PREFIX = "athena-results/reconcile/"
#: the column each statement's rows are ordered by (an unloaded result is several objects, in no order);
#: the statements not named here are counts, or sets whose order nothing depends on
ORDER_BY = {
    "findings": "met_key",
    "sellers": "first_met",
    "adjustment_outcomes": "line",
    "adjustments_missing_in_settlement": "txn_id",
}

_RUN = re.compile(r"[0-9a-f]{16}")
_PSP = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@cache
def generated() -> dict[str, str]:
    """``sql/athena.json``: {statement name: Trino query with placeholders}."""
    text = resources.files("payments.reconciliation").joinpath("sql/athena.json").read_text(encoding="utf-8")
    loaded: dict[str, str] = json.loads(text)
    return loaded


def queries(*, run: str, psp: str, day: str | None, budget: int) -> list[dict[str, str]]:
    """The run's queries, ``[{"name", "sql"}]`` in order. Every value is checked against its shape first."""
    if not _RUN.fullmatch(run) or not _PSP.fullmatch(psp) or (day is not None and not _DAY.fullmatch(day)):
        raise ValueError(f"not a run, PSP and day: {run!r}, {psp!r}, {day!r}")
    day_literal = "NULL" if day is None else f"'{day}'"
    rendered = []
    for name, text in generated().items():
        sql = (
            text.replace(f"'{RUN}'", f"'{run}'")
            .replace(f"'{PSP}'", f"'{psp}'")
            .replace(f"'{DAY}'", day_literal)
            .replace(f"LIMIT {BUDGET}", f"LIMIT {int(budget)}")
        )
        rendered.append({"name": name, "sql": sql})
    return rendered


def write_settled(entries: Sequence[engine.SettledEntry], path: Path) -> None:
    """A chunk's Settled rows as one Parquet object of :data:`SETTLED_TABLE`'s columns (through the same
    tab-separated file the function's path gives duckdb)."""
    rows = columnar.EntryFile(path.with_suffix(".tsv"))
    try:
        rows.extend(entries)
    finally:
        rows.close()
    _copy(columnar._read_tsv(rows.path, dict(columnar.SETTLED_COLUMNS)), path)
    rows.path.unlink()


def write_adjusted(adjustments: Sequence[engine.AdjustmentEntry], path: Path) -> None:
    """The file's adjustment rows as one Parquet object of :data:`ADJUSTED_TABLE`'s columns."""
    quoted = path.with_suffix(".csv")
    with open(quoted, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(adjustments)
    _copy(columnar._read_quoted(quoted, dict(columnar.ADJUSTED_COLUMNS)), path)
    quoted.unlink()


def _copy(source: str, path: Path) -> None:
    import duckdb

    with duckdb.connect(":memory:", config={"threads": 1}) as con:
        con.execute(f"COPY (SELECT * FROM {source}) TO {columnar.literal(str(path))} (FORMAT PARQUET)")  # noqa: S608 - our own file


class _Empty:
    """The rows of a statement that unloaded none."""

    def fetchone(self) -> None:
        return None

    def fetchmany(self, size: int = 1) -> list[Any]:
        return []

    def fetchall(self) -> list[Any]:
        return []


class Results:
    """A :data:`.columnar.Query` over the Parquet objects Athena unloaded, {statement name: local paths}: each
    statement's rows in its order (:data:`ORDER_BY`). The parameters were filled in when the query ran."""

    def __init__(self, files: dict[str, list[Path]], memory_limit: str = Bounds().columnar_memory_limit):
        import duckdb

        self.files = files
        self.con = duckdb.connect(":memory:", config={"threads": 1, "memory_limit": memory_limit})

    def __call__(self, name: str, *params: Any) -> Any:
        if name not in generated():
            raise KeyError(f"no query {name!r}")
        paths = [str(p) for p in self.files.get(name, [])]
        if not paths:
            return _Empty()
        order = f" ORDER BY {ORDER_BY[name]}" if name in ORDER_BY else ""
        return self.con.execute(f"SELECT * FROM read_parquet({columnar.literal(paths)}){order}")  # noqa: S608 - our own names

    def close(self) -> None:
        self.con.close()


def download(s3: Any, location: str, target: Path) -> list[Path]:
    """Every object under an ``s3://bucket/prefix/`` location (one statement's unloaded result), downloaded."""
    parsed = urlparse(location)
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    paths: list[Path] = []
    target.mkdir(parents=True, exist_ok=True)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            path = target / f"{len(paths):05d}.parquet"
            s3.download_file(bucket, obj["Key"], str(path))
            paths.append(path)
    return paths
