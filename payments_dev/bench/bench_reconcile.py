"""The reconciliation benchmark: ours against pandas, polars and duckdb on identical files (a script, not a test).

    .venv/bin/python -m payments_dev.bench.bench_reconcile                     # 1M and 10M charges (make bench)
    .venv/bin/python -m payments_dev.bench.bench_reconcile --sizes 1000000 --repeats 1
    .venv/bin/python -m payments_dev.bench.bench_reconcile --quick             # 10,000 charges, once (CI)

Inputs: for each size one Adyen Settlement Details Report and the ledger's Parquet copy
(:mod:`payments_dev.bench.recon_inputs`), generated once, deterministically (``--seed``), by a process of its
own before any contender runs, and reused by every contender and every repeat (``payments_dev/bench/out/``).

Contenders, each in a fresh child process that measures itself: CPU seconds (``getrusage(RUSAGE_SELF)``, user +
system, from before the contender's imports to its answer: the interpreter's own start-up is left out) and peak
RSS (``VmHWM`` of ``/proc/self/status``, the high-water mark of the child's own address space; ``ru_maxrss`` is
recorded beside it, but on Linux it starts from the parent's high-water mark at fork, whatever ran there). Each
reads the file and the Parquet objects and answers the outcome counts and the per-currency totals:

* ``ours``: :func:`payments.reconciliation.columnar.reconcile_local`, end to end, exactly as the product calls it.
  Where it does not exist the bench says ``ours: not available (<ImportError>)`` and exits non-zero: there is no
  stand-in.
* ``pandas``: only the needed columns, text as strings, amounts as ``int64`` minor units (never a float).
* ``polars``: one thread (``POLARS_MAX_THREADS=1``), lazy scans.
* ``duckdb``: one thread; and again with ``memory_limit='200MB'`` (spilling to the work folder).

The matching semantics every baseline implements (the engine's, :mod:`payments.reconciliation.engine`, for the
inputs generated here; ``tests/unit/dev/test_bench_reconcile.py`` checks them against the engine itself):

* window day: the UTC day (``Creation Date`` minus the ``TimeZone``'s offset) of most ``Settled`` rows (ties: the
  later); the ledger's rows kept once per ``txn_id``; the day is the copy's ``day=`` partition.
* ``Settled`` rows by PSP reference, in line order: the first against the window day's ``PAYIN`` of that
  reference; the others ``DUPLICATE_IN_SETTLEMENT``. Same order, currency and amount: matched; another order:
  ``MISSING_IN_LEDGER``; another currency: ``CURRENCY_MISMATCH``; another amount: ``AMOUNT_MISMATCH``. A first row
  with no such ``PAYIN`` that day (a carry-over) is looked up by its merchant reference among every day's
  ``PAYIN``: the same reference is compared as above, anything else is ``MISSING_IN_LEDGER``. The day's ``PAYIN``
  no row took: ``MISSING_IN_SETTLEMENT``.
* ``Refunded``, ``Chargeback``, ``ChargebackReversed``, ``SecondChargeback`` rows: identified by the transaction id
  they name (``refund:<Modification Merchant Reference>``, ``chargeback:<Modification Reference>``, ...), repeats
  ``DUPLICATE_IN_SETTLEMENT``; found among the window day's adjustments by (record type, Modification Reference),
  else by transaction id on any day; compared by order, payment, modification reference, currency and amount (a
  Gross Debit for refunds and chargebacks, a Gross Credit for reversals). The day's adjustments no row found:
  ``MISSING_IN_SETTLEMENT``.
* account rows (``Fee``, ``MerchantPayout``, ...) are recorded; any other record type is ``MISSING_IN_LEDGER``.
* totals per currency: the engine's fields (:data:`TOTAL_FIELDS`).

The bench fails (exit 1) when the contenders' counts or totals differ, naming the contender and the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the repository
OUT = ROOT / "payments_dev" / "bench" / "out"
PSP = "adyen"

BASELINES = ("pandas", "polars", "duckdb", "duckdb-200MB")
CONTENDERS = ("ours", *BASELINES)
#: the issue's targets for ours: (charges, CPU seconds, peak MiB)
TARGETS = {1_000_000: (3.0, 512.0), 10_000_000: (60.0, 1536.0)}
QUICK_CHARGES = 10_000
DEFAULT_SEED = 26
NOT_AVAILABLE = 3  # a child's exit status: the contender cannot be imported
#: a child's exit status: a baseline ran out of the memory it was limited to (its answer: the row says so)
OUT_OF_MEMORY = 4

# The vocabulary the baselines need, written out here so that a baseline child imports no module of ours (its
# CPU and memory are its library's); the unit test checks each against payments.reconciliation.
KINDS = (
    "MISSING_IN_LEDGER",
    "MISSING_IN_SETTLEMENT",
    "AMOUNT_MISMATCH",
    "CURRENCY_MISMATCH",
    "DUPLICATE_IN_SETTLEMENT",
)
SETTLED = ("Settled", "SettledBulk")
#: the settlement record types the ledger books, and the ledger ``kind`` of each
ADJUSTMENT_KINDS = {
    "Refunded": "REFUND",
    "Chargeback": "CHARGEBACK",
    "ChargebackReversed": "CHARGEBACK_REVERSED",
    "SecondChargeback": "SECOND_CHARGEBACK",
}
CREDIT_ADJUSTMENTS = ("ChargebackReversed",)  # the adjustments whose amount is a Gross Credit
ACCOUNT_TYPES = (
    "Fee",
    "MiscCosts",
    "PaymentCost",
    "MerchantPayout",
    "DepositCorrection",
    "InvoiceDeduction",
    "Balancetransfer",
    "ReserveAdjustment",
    "CashOutInstruction",
)
#: the TimeZone abbreviations the generated files use, minutes east of UTC (adyen.ABBREVIATIONS' values)
ZONE_OFFSETS = {"UTC": 0, "GMT": 0, "CET": 60, "CEST": 120}
#: the generated currencies; each has two decimals at Adyen and in ISO 4217 (a baseline refuses any other)
TWO_DECIMALS = ("EUR", "GBP", "USD")
TOTAL_FIELDS = (
    "gross_credit",
    "gross_debit",
    "net_credit",
    "net_debit",
    "commission",
    "markup",
    "scheme_fees",
    "interchange",
    "payout",
    "fee",
    "refunded",
    "chargeback",
    "chargeback_reversed",
    "second_chargeback",
    "refunded_reversed",
)
#: record type -> (totals field, sign of net debit - net credit)
TYPED_TOTALS = {
    "MerchantPayout": ("payout", 1),
    "Fee": ("fee", 1),
    "Refunded": ("refunded", 1),
    "Chargeback": ("chargeback", 1),
    "SecondChargeback": ("second_chargeback", 1),
    "ChargebackReversed": ("chargeback_reversed", -1),
    "RefundedReversed": ("refunded_reversed", -1),
}
AMOUNT_COLUMNS = {
    "Gross Debit (GC)": "gd",
    "Gross Credit (GC)": "gc",
    "Net Debit (NC)": "nd",
    "Net Credit (NC)": "nc",
    "Commission (NC)": "commission",
    "Markup (NC)": "markup",
    "Scheme Fees (NC)": "scheme_fees",
    "Interchange (NC)": "interchange",
}
TEXT_COLUMNS = {
    "Psp Reference": "psp",
    "Merchant Reference": "po",
    "Creation Date": "created",
    "TimeZone": "zone",
    "Type": "type",
    "Modification Reference": "modref",
    "Modification Merchant Reference": "mmr",
    "Gross Currency": "gccy",
    "Net Currency": "nccy",
}
LEDGER_COLUMNS = (
    "txn_id",
    "kind",
    "payment_order_id",
    "psp_reference",
    "original_psp_reference",
    "currency",
    "amount_minor",
)


class Disagreement(Exception):
    """Two contenders answered differently on the same inputs."""


def day_of(path: Path) -> str:
    """The ``day=`` partition of a ledger copy object (lake's layout)."""
    for part in path.parts:
        if part.startswith("day="):
            return part[4:]
    raise ValueError(f"{path} is not in the ledger copy's layout (no day= partition)")


def outcome(rows: int, recorded: int, matched: int, kinds: dict[str, int], totals: dict[str, dict[str, int]]) -> dict:
    return {
        "rows": int(rows),
        "recorded": int(recorded),
        "matched": int(matched),
        "kinds": {k: int(kinds.get(k, 0)) for k in KINDS},
        "totals": {ccy: {f: int(totals[ccy].get(f, 0)) for f in TOTAL_FIELDS} for ccy in sorted(totals)},
    }


# --- ours ------------------------------------------------------------------------------------------------


def run_ours(settlement: Path, ledger: list[Path], work: Path) -> dict:
    from payments.reconciliation.columnar import reconcile_local

    result = reconcile_local(settlement, ledger, psp=PSP, work_dir=work)
    if result.mismatches_omitted:
        raise Disagreement(f"ours omitted {result.mismatches_omitted} mismatches: the kinds cannot be counted")
    kinds: dict[str, int] = {}
    for mismatch in result.mismatches:
        kinds[str(mismatch.kind)] = kinds.get(str(mismatch.kind), 0) + 1
    return outcome(result.rows, result.recorded, result.matched, kinds, result.totals)


# --- pandas ----------------------------------------------------------------------------------------------


def run_pandas(settlement: Path, ledger: list[Path], work: Path) -> dict:
    import pandas as pd

    names = {**TEXT_COLUMNS, **AMOUNT_COLUMNS}
    f = pd.read_csv(settlement, usecols=list(names), dtype=dict.fromkeys(names, str), keep_default_na=False)
    f = f.rename(columns=names)
    f["line"] = f.index + 2  # the header is line 1 (the generated file has no blank or multi-line rows)
    for column in AMOUNT_COLUMNS.values():
        text = f[column]
        filled = text != ""
        if not (text[filled].str[-3] == ".").all():
            raise ValueError(f"{column}: an amount without two decimals")
        f[column] = text.str.replace(".", "", regex=False).where(filled, "0").astype("int64")
    currencies = (set(f["gccy"]) | set(f["nccy"])) - {""}
    if not currencies <= set(TWO_DECIMALS):
        raise ValueError(f"currencies other than {TWO_DECIMALS}: {sorted(currencies)}")
    offsets = f["zone"].map(ZONE_OFFSETS)
    if offsets.isna().any():
        raise ValueError("an unknown TimeZone")

    settled = f[f["type"].isin(SETTLED)]
    utc = pd.to_datetime(settled["created"], format="%Y-%m-%d %H:%M:%S") - pd.to_timedelta(
        offsets[settled.index], unit="m"
    )
    per_day = utc.dt.normalize().value_counts()
    window = max(per_day.items(), key=lambda kv: (kv[1], kv[0]))[0].strftime("%Y-%m-%d") if len(per_day) else None

    frames = [pd.read_parquet(p, columns=list(LEDGER_COLUMNS)).assign(day=day_of(p)) for p in ledger]
    led = pd.concat(frames, ignore_index=True).drop_duplicates("txn_id")
    payins = led[led["kind"] == "PAYIN"]
    day_payins = payins[payins["day"] == window]

    kinds = dict.fromkeys(KINDS, 0)
    first = ~settled["psp"].duplicated()
    kinds["DUPLICATE_IN_SETTLEMENT"] += int((~first).sum())
    firsts = settled.loc[first, ["psp", "po", "gccy", "gc"]]
    joined = firsts.merge(
        day_payins[["psp_reference", "payment_order_id", "currency", "amount_minor"]],
        left_on="psp",
        right_on="psp_reference",
        how="outer",
        indicator=True,
    )
    kinds["MISSING_IN_SETTLEMENT"] += int((joined["_merge"] == "right_only").sum())
    matched = _pandas_compare(joined[joined["_merge"] == "both"], kinds)
    carried = joined.loc[joined["_merge"] == "left_only", ["psp", "po", "gccy", "gc"]].merge(
        payins[["psp_reference", "payment_order_id", "currency", "amount_minor"]],
        left_on="po",
        right_on="payment_order_id",
        how="left",
    )
    found = carried["psp_reference"] == carried["psp"]
    kinds["MISSING_IN_LEDGER"] += int((~found).sum())
    matched += _pandas_compare(carried[found], kinds)

    adjustments = f[f["type"].isin(list(ADJUSTMENT_KINDS))].copy()
    credit = adjustments["type"].isin(CREDIT_ADJUSTMENTS)
    adjustments["amount"] = (adjustments["gd"] - adjustments["gc"]).where(
        ~credit, adjustments["gc"] - adjustments["gd"]
    )
    refund = adjustments["type"] == "Refunded"
    dispute_txn = adjustments["type"].map(ADJUSTMENT_KINDS).str.lower() + ":" + adjustments["modref"]
    adjustments["txn"] = ("refund:" + adjustments["mmr"]).where(refund & (adjustments["mmr"] != ""), None)
    adjustments.loc[~refund & (adjustments["modref"] != ""), "txn"] = dispute_txn
    identity = adjustments["txn"].fillna(adjustments["type"] + "#" + adjustments["modref"])
    unique = ~identity.duplicated()
    kinds["DUPLICATE_IN_SETTLEMENT"] += int((~unique).sum())
    rows = adjustments[unique]
    booked = led[led["kind"].isin(list(ADJUSTMENT_KINDS.values()))].copy()
    booked["record_type"] = booked["kind"].map({v: k for k, v in ADJUSTMENT_KINDS.items()})
    day_booked = booked[booked["day"] == window]
    keyed = rows.assign(key=rows["modref"].where(rows["modref"] != "", None)).merge(
        day_booked.add_prefix("k_"), left_on=["type", "key"], right_on=["k_record_type", "k_psp_reference"], how="left"
    )
    keyed = keyed.merge(booked.add_prefix("t_"), left_on="txn", right_on="t_txn_id", how="left")
    by_key = keyed["k_txn_id"].notna()
    led_of = {
        c: keyed[f"k_{c}"].where(by_key, keyed[f"t_{c}"])
        for c in ("txn_id", "record_type", "psp_reference", "original_psp_reference", "payment_order_id")
    }
    led_of["currency"] = keyed["k_currency"].where(by_key, keyed["t_currency"])
    led_of["amount_minor"] = keyed["k_amount_minor"].where(by_key, keyed["t_amount_minor"])
    none = led_of["txn_id"].isna() | (led_of["record_type"] != keyed["type"])
    original = led_of["original_psp_reference"].fillna("")
    other = (led_of["payment_order_id"] != keyed["po"]) | ((original != "") & (original != keyed["psp"]))
    led_psp = led_of["psp_reference"].fillna("")
    other |= (led_psp != "") & (keyed["modref"] != "") & (led_psp != keyed["modref"])
    missing = none | other
    currency = ~missing & (led_of["currency"] != keyed["gccy"])
    amount = ~missing & ~currency & (led_of["amount_minor"] != keyed["amount"])
    kinds["MISSING_IN_LEDGER"] += int(missing.sum())
    kinds["CURRENCY_MISMATCH"] += int(currency.sum())
    kinds["AMOUNT_MISMATCH"] += int(amount.sum())
    matched += int((~missing & ~currency & ~amount).sum())
    kinds["MISSING_IN_SETTLEMENT"] += int((~day_booked["txn_id"].isin(set(led_of["txn_id"].dropna()))).sum())

    account = f["type"].isin(ACCOUNT_TYPES)
    other_types = ~account & ~f["type"].isin(SETTLED) & ~f["type"].isin(list(ADJUSTMENT_KINDS))
    kinds["MISSING_IN_LEDGER"] += int(other_types.sum())

    gross_ccy = f["gccy"].where(f["gccy"] != "", f["nccy"])
    net_ccy = f["nccy"].where(f["nccy"] != "", gross_ccy)
    totals: dict[str, dict[str, int]] = {}
    for ccy, sums in f[["gc", "gd"]].groupby(gross_ccy).sum().iterrows():
        totals.setdefault(str(ccy), {}).update(gross_credit=int(sums["gc"]), gross_debit=int(sums["gd"]))
    net = f[["nc", "nd", "commission", "markup", "scheme_fees", "interchange"]].copy()
    debit = f["nd"] - f["nc"]
    for record_type, (name, sign) in TYPED_TOTALS.items():
        net[name] = debit.where(f["type"] == record_type, 0) * sign
    for ccy, sums in net.groupby(net_ccy).sum().iterrows():
        mine = totals.setdefault(str(ccy), {})
        mine.update(net_credit=int(sums["nc"]), net_debit=int(sums["nd"]))
        mine.update({c: int(sums[c]) for c in net.columns if c not in ("nc", "nd")})
    return outcome(len(f), int(account.sum()), matched, kinds, totals)


def _pandas_compare(pairs: Any, kinds: dict[str, int]) -> int:
    """Settled rows and their ledger charges: the kinds counted, the matches returned."""
    other = pairs["po"] != pairs["payment_order_id"]
    currency = ~other & (pairs["gccy"] != pairs["currency"])
    amount = ~other & ~currency & (pairs["gc"] != pairs["amount_minor"])
    kinds["MISSING_IN_LEDGER"] += int(other.sum())
    kinds["CURRENCY_MISMATCH"] += int(currency.sum())
    kinds["AMOUNT_MISMATCH"] += int(amount.sum())
    return int((~other & ~currency & ~amount).sum())


# --- polars ----------------------------------------------------------------------------------------------


def run_polars(settlement: Path, ledger: list[Path], work: Path) -> dict:
    os.environ["POLARS_MAX_THREADS"] = "1"  # before the import: the pool's size is read once
    import polars as pl

    names = {**TEXT_COLUMNS, **AMOUNT_COLUMNS}
    scan = pl.scan_csv(
        settlement, schema_overrides=dict.fromkeys(names, pl.String), infer_schema=False, row_index_name="row"
    )
    amounts = []
    for column, short in AMOUNT_COLUMNS.items():
        text = pl.col(column).fill_null("")
        amounts.append(
            pl.when(text == "")
            .then(0)
            .when(text.str.slice(-3, 1) == ".")
            .then(text.str.replace(".", "", literal=True).cast(pl.Int64, strict=False))
            .otherwise(None)
            .alias(short)
        )
    f = scan.select(
        (pl.col("row") + 2).alias("line"),
        *[pl.col(c).fill_null("").alias(s) for c, s in TEXT_COLUMNS.items()],
        *amounts,
    ).collect()
    if f.select(pl.any_horizontal([pl.col(c).is_null().any() for c in AMOUNT_COLUMNS.values()])).item():
        raise ValueError("an amount without two decimals")
    currencies = (set(f["gccy"].unique()) | set(f["nccy"].unique())) - {""}
    if not currencies <= set(TWO_DECIMALS):
        raise ValueError(f"currencies other than {TWO_DECIMALS}: {sorted(currencies)}")
    if not set(f["zone"].unique()) <= set(ZONE_OFFSETS):
        raise ValueError("an unknown TimeZone")

    settled = f.filter(pl.col("type").is_in(SETTLED))
    utc_day = (
        pl.col("created").str.to_datetime("%Y-%m-%d %H:%M:%S")
        - pl.duration(minutes=pl.col("zone").replace_strict(ZONE_OFFSETS, return_dtype=pl.Int64))
    ).dt.date()
    days = settled.select(utc_day.alias("day")).group_by("day").len().sort(["len", "day"], descending=True)
    window = str(days["day"][0]) if days.height else None

    led = (
        pl.concat(
            [pl.scan_parquet(p).select(LEDGER_COLUMNS).with_columns(pl.lit(day_of(p)).alias("day")) for p in ledger]
        )
        .unique("txn_id", keep="first", maintain_order=True)
        .collect()
    )
    payins = led.filter(pl.col("kind") == "PAYIN").select(
        "psp_reference", "payment_order_id", "currency", "amount_minor", "day"
    )
    kinds = dict.fromkeys(KINDS, 0)
    firsts = settled.unique("psp", keep="first", maintain_order=True).select("psp", "po", "gccy", "gc")
    kinds["DUPLICATE_IN_SETTLEMENT"] += settled.height - firsts.height
    day_payins = payins.filter(pl.col("day") == window).drop("day")
    joined = firsts.join(day_payins, left_on="psp", right_on="psp_reference", how="full", coalesce=False)
    kinds["MISSING_IN_SETTLEMENT"] += joined.filter(pl.col("psp").is_null()).height
    matched = _polars_compare(joined.filter(pl.col("psp").is_not_null() & pl.col("psp_reference").is_not_null()), kinds)
    carried = (
        joined.filter(pl.col("psp_reference").is_null())
        .select("psp", "po", "gccy", "gc")
        .join(payins.drop("day"), left_on="po", right_on="payment_order_id", how="left", coalesce=False)
    )
    found = carried.filter(pl.col("psp_reference") == pl.col("psp"))
    kinds["MISSING_IN_LEDGER"] += carried.height - found.height
    matched += _polars_compare(found, kinds)

    lower = {k: v.lower() for k, v in ADJUSTMENT_KINDS.items()}
    adjustments = (
        f.filter(pl.col("type").is_in(list(ADJUSTMENT_KINDS)))
        .with_columns(
            pl.when(pl.col("type").is_in(CREDIT_ADJUSTMENTS))
            .then(pl.col("gc") - pl.col("gd"))
            .otherwise(pl.col("gd") - pl.col("gc"))
            .alias("amount"),
            pl.when(pl.col("type") == "Refunded")
            .then(pl.when(pl.col("mmr") != "").then(pl.lit("refund:") + pl.col("mmr")))
            .when(pl.col("modref") != "")
            .then(pl.col("type").replace_strict(lower, return_dtype=pl.String) + ":" + pl.col("modref"))
            .alias("txn"),
            pl.when(pl.col("modref") != "").then(pl.col("modref")).alias("key"),
        )
        .with_columns(pl.coalesce("txn", pl.col("type") + "#" + pl.col("modref")).alias("identity"))
    )
    rows = adjustments.unique("identity", keep="first", maintain_order=True)
    kinds["DUPLICATE_IN_SETTLEMENT"] += adjustments.height - rows.height
    booked = led.filter(pl.col("kind").is_in(list(ADJUSTMENT_KINDS.values()))).with_columns(
        pl.col("kind").replace_strict({v: k for k, v in ADJUSTMENT_KINDS.items()}).alias("record_type")
    )
    day_booked = booked.filter(pl.col("day") == window)
    keyed = rows.join(
        day_booked.select(pl.all().name.prefix("k_")),
        left_on=["type", "key"],
        right_on=["k_record_type", "k_psp_reference"],
        how="left",
        coalesce=False,
    ).join(booked.select(pl.all().name.prefix("t_")), left_on="txn", right_on="t_txn_id", how="left", coalesce=False)
    by_key = pl.col("k_txn_id").is_not_null()
    fields = ("txn_id", "record_type", "psp_reference", "original_psp_reference", "payment_order_id", "currency")
    keyed = keyed.with_columns(
        *[pl.when(by_key).then(pl.col(f"k_{c}")).otherwise(pl.col(f"t_{c}")).alias(f"l_{c}") for c in fields],
        pl.when(by_key).then(pl.col("k_amount_minor")).otherwise(pl.col("t_amount_minor")).alias("l_amount"),
    )
    original, led_psp = pl.col("l_original_psp_reference").fill_null(""), pl.col("l_psp_reference").fill_null("")
    missing = (
        pl.col("l_txn_id").is_null()
        | (pl.col("l_record_type") != pl.col("type"))
        | (pl.col("l_payment_order_id") != pl.col("po"))
        | ((original != "") & (original != pl.col("psp")))
        | ((led_psp != "") & (pl.col("modref") != "") & (led_psp != pl.col("modref")))
    ).fill_null(True)
    currency = ~missing & (pl.col("l_currency") != pl.col("gccy"))
    amount = ~missing & ~currency & (pl.col("l_amount") != pl.col("amount"))
    got = keyed.select(
        missing.sum().alias("m"),
        currency.sum().alias("c"),
        amount.sum().alias("a"),
        (~missing & ~currency & ~amount).sum().alias("ok"),
    ).row(0, named=True)
    kinds["MISSING_IN_LEDGER"] += got["m"]
    kinds["CURRENCY_MISMATCH"] += got["c"]
    kinds["AMOUNT_MISMATCH"] += got["a"]
    matched += got["ok"]
    taken = keyed["l_txn_id"].drop_nulls()
    kinds["MISSING_IN_SETTLEMENT"] += day_booked.filter(~pl.col("txn_id").is_in(taken.implode())).height

    account = f.filter(pl.col("type").is_in(ACCOUNT_TYPES)).height
    known = (*ACCOUNT_TYPES, *SETTLED, *ADJUSTMENT_KINDS)
    kinds["MISSING_IN_LEDGER"] += f.filter(~pl.col("type").is_in(known)).height

    gross_ccy = pl.when(pl.col("gccy") != "").then(pl.col("gccy")).otherwise(pl.col("nccy"))
    f = f.with_columns(gross_ccy.alias("g")).with_columns(
        pl.when(pl.col("nccy") != "").then(pl.col("nccy")).otherwise(pl.col("g")).alias("n"),
        (pl.col("nd") - pl.col("nc")).alias("debit"),
    )
    totals: dict[str, dict[str, int]] = {}
    for row in f.group_by("g").agg(pl.col("gc").sum(), pl.col("gd").sum()).iter_rows(named=True):
        totals.setdefault(row["g"], {}).update(gross_credit=row["gc"], gross_debit=row["gd"])
    typed = [
        (pl.when(pl.col("type") == t).then(pl.col("debit") * sign).otherwise(0)).sum().alias(name)
        for t, (name, sign) in TYPED_TOTALS.items()
    ]
    net = f.group_by("n").agg(
        pl.col("nc").sum().alias("net_credit"),
        pl.col("nd").sum().alias("net_debit"),
        *[pl.col(c).sum() for c in ("commission", "markup", "scheme_fees", "interchange")],
        *typed,
    )
    for row in net.iter_rows(named=True):
        totals.setdefault(row.pop("n"), {}).update(row)
    return outcome(f.height, account, matched, kinds, totals)


def _polars_compare(pairs: Any, kinds: dict[str, int]) -> int:
    import polars as pl

    other = pl.col("po") != pl.col("payment_order_id")
    currency = ~other & (pl.col("gccy") != pl.col("currency"))
    amount = ~other & ~currency & (pl.col("gc") != pl.col("amount_minor"))
    got = pairs.select(
        other.sum().alias("o"), currency.sum().alias("c"), amount.sum().alias("a"), pl.len().alias("n")
    ).row(0, named=True)
    kinds["MISSING_IN_LEDGER"] += got["o"]
    kinds["CURRENCY_MISMATCH"] += got["c"]
    kinds["AMOUNT_MISMATCH"] += got["a"]
    return int(got["n"] - got["o"] - got["c"] - got["a"])


# --- duckdb ----------------------------------------------------------------------------------------------


def _sql_list(values: Any) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def duckdb_sql(settlement: Path, ledger: list[Path]) -> list[str]:
    """The statements of the duckdb baseline, the last one answering one row of counts."""
    # a plain two-decimal amount (the cast rejects anything but digits), exactly as minor units
    money = (
        'CASE WHEN "{c}" IS NULL THEN 0 WHEN strpos("{c}", \'.\') = length("{c}") - 2 '
        "THEN CAST(replace(\"{c}\", '.', '') AS BIGINT) ELSE error('{c}: an amount without two decimals') END"
    )
    columns = ", ".join(
        [f"coalesce(\"{c}\", '') AS {s}" for c, s in TEXT_COLUMNS.items()]
        + [f"{money.format(c=c)} AS {s}" for c, s in AMOUNT_COLUMNS.items()]
    )
    zones = ", ".join(f"('{z}', {m})" for z, m in ZONE_OFFSETS.items())
    files = ", ".join(f"('{p}', '{day_of(p)}')" for p in ledger)
    kinds = ", ".join(f"('{k}', '{t}')" for t, k in ADJUSTMENT_KINDS.items())
    typed = ", ".join(
        f"sum(CASE WHEN type = '{t}' THEN (nd - nc) * {sign} ELSE 0 END) AS {name}"
        for t, (name, sign) in TYPED_TOTALS.items()
    )
    return [
        f"""CREATE TEMP TABLE f AS
            SELECT row_number() OVER () + 1 AS line, {columns}
            FROM read_csv('{settlement}', header = true, delim = ',', quote = '"', auto_detect = false,
                          columns = {{{", ".join(f"'{c}': 'VARCHAR'" for c in _csv_header(settlement))}}})""",
        f"CREATE TEMP TABLE zone(zone VARCHAR, minutes INTEGER); INSERT INTO zone VALUES {zones}",
        f"CREATE TEMP TABLE kinds(kind VARCHAR, record_type VARCHAR); INSERT INTO kinds VALUES {kinds}",
        f"CREATE TEMP TABLE files(path VARCHAR, day VARCHAR); INSERT INTO files VALUES {files}",
        f"""CREATE TEMP TABLE led AS
            SELECT DISTINCT ON (txn_id) l.{", l.".join(LEDGER_COLUMNS)}, files.day
            FROM read_parquet([{_sql_list(str(p) for p in ledger)}], filename = true) l
            JOIN files ON files.path = l.filename""",
        f"""CREATE TEMP TABLE window_day AS
            SELECT day FROM (
              SELECT CAST(strptime(created, '%Y-%m-%d %H:%M:%S') - to_minutes(zone.minutes) AS DATE)::VARCHAR AS day
              FROM f JOIN zone USING (zone) WHERE type IN ({_sql_list(SETTLED)}))
            GROUP BY day ORDER BY count(*) DESC, day DESC LIMIT 1""",
        # each PSP reference's first Settled row against the window day's charge of that reference
        f"""CREATE TEMP TABLE joined AS
            SELECT s.*, d.psp_reference, d.payment_order_id, d.currency, d.amount_minor
            FROM (SELECT psp, po, gccy, gc FROM f WHERE type IN ({_sql_list(SETTLED)})
                  QUALIFY row_number() OVER (PARTITION BY psp ORDER BY line) = 1) s
            FULL JOIN (SELECT psp_reference, payment_order_id, currency, amount_minor FROM led
                       WHERE kind = 'PAYIN' AND day = (SELECT day FROM window_day)) d
                 ON s.psp = d.psp_reference""",
        # the first rows without a charge that day (carry-overs): their charge by merchant reference, any day
        """CREATE TEMP TABLE carried AS
            SELECT c.psp, c.po, c.gccy, c.gc, p.psp_reference, p.payment_order_id, p.currency, p.amount_minor
            FROM (SELECT psp, po, gccy, gc FROM joined WHERE psp_reference IS NULL) c
                 LEFT JOIN (SELECT * FROM led WHERE kind = 'PAYIN') p ON p.payment_order_id = c.po""",
        """CREATE TEMP VIEW pairs AS
            SELECT * FROM joined WHERE psp IS NOT NULL AND psp_reference IS NOT NULL
            UNION ALL SELECT * FROM carried""",
        f"""CREATE TEMP TABLE adj AS
            SELECT *, coalesce(txn, type || '#' || modref) AS identity FROM (
              SELECT f.line, f.type, f.modref, f.mmr, f.po, f.psp, f.gccy,
                     CASE WHEN f.type IN ({_sql_list(CREDIT_ADJUSTMENTS)}) THEN gc - gd ELSE gd - gc END AS amount,
                     CASE WHEN f.type = 'Refunded' THEN CASE WHEN mmr <> '' THEN 'refund:' || mmr END
                          WHEN modref <> '' THEN lower(k.kind) || ':' || modref END AS txn
              FROM f JOIN kinds k ON k.record_type = f.type)""",
        """CREATE TEMP TABLE booked AS
            SELECT led.*, k.record_type FROM led JOIN kinds k USING (kind)""",
        """CREATE TEMP TABLE adj_led AS
            SELECT a.*, coalesce(kb.txn_id, tb.txn_id) AS l_txn, coalesce(kb.record_type, tb.record_type) AS l_type,
                   CASE WHEN kb.txn_id IS NOT NULL THEN kb.psp_reference ELSE tb.psp_reference END AS l_psp,
                   CASE WHEN kb.txn_id IS NOT NULL THEN kb.original_psp_reference ELSE tb.original_psp_reference END
                       AS l_original,
                   CASE WHEN kb.txn_id IS NOT NULL THEN kb.payment_order_id ELSE tb.payment_order_id END AS l_po,
                   CASE WHEN kb.txn_id IS NOT NULL THEN kb.currency ELSE tb.currency END AS l_ccy,
                   CASE WHEN kb.txn_id IS NOT NULL THEN kb.amount_minor ELSE tb.amount_minor END AS l_amount
            FROM (SELECT * FROM adj QUALIFY row_number() OVER (PARTITION BY identity ORDER BY line) = 1) a
            LEFT JOIN (SELECT * FROM booked WHERE day = (SELECT day FROM window_day)) kb
                 ON a.modref <> '' AND kb.record_type = a.type AND kb.psp_reference = a.modref
            LEFT JOIN booked tb ON tb.txn_id = a.txn""",
        """CREATE TEMP TABLE adj_outcome AS
            SELECT CASE
                     WHEN l_txn IS NULL OR l_type <> type OR l_po <> po
                          OR (coalesce(l_original, '') <> '' AND l_original <> psp)
                          OR (coalesce(l_psp, '') <> '' AND modref <> '' AND l_psp <> modref) THEN 'MISSING_IN_LEDGER'
                     WHEN l_ccy <> gccy THEN 'CURRENCY_MISMATCH'
                     WHEN l_amount <> amount THEN 'AMOUNT_MISMATCH'
                     ELSE 'MATCHED' END AS outcome
            FROM adj_led""",
        """CREATE TEMP TABLE charge_counts AS
            SELECT count_if(psp_reference = psp AND po = payment_order_id AND gccy = currency AND gc = amount_minor)
                       AS matched,
                   count_if(payment_order_id IS NULL OR psp_reference <> psp OR po <> payment_order_id)
                       AS missing_in_ledger,
                   count_if(psp_reference = psp AND po = payment_order_id AND gccy = currency AND gc <> amount_minor)
                       AS amount_mismatch,
                   count_if(psp_reference = psp AND po = payment_order_id AND gccy <> currency) AS currency_mismatch
            FROM pairs""",
        f"""SELECT
              (SELECT count(*) FROM f) AS rows,
              (SELECT count(*) FROM f WHERE type IN ({_sql_list(ACCOUNT_TYPES)})) AS recorded,
              (SELECT matched FROM charge_counts)
                + (SELECT count(*) FROM adj_outcome WHERE outcome = 'MATCHED') AS matched,
              (SELECT missing_in_ledger FROM charge_counts)
                + (SELECT count(*) FROM adj_outcome WHERE outcome = 'MISSING_IN_LEDGER')
                + (SELECT count(*) FROM f WHERE type NOT IN ({_sql_list((*ACCOUNT_TYPES, *SETTLED, *ADJUSTMENT_KINDS))}))
                AS missing_in_ledger,
              (SELECT count(*) FROM joined WHERE psp IS NULL)
                + (SELECT count(*) FROM booked WHERE day = (SELECT day FROM window_day)
                                                 AND txn_id NOT IN (SELECT l_txn FROM adj_led WHERE l_txn IS NOT NULL))
                AS missing_in_settlement,
              (SELECT amount_mismatch FROM charge_counts)
                + (SELECT count(*) FROM adj_outcome WHERE outcome = 'AMOUNT_MISMATCH') AS amount_mismatch,
              (SELECT currency_mismatch FROM charge_counts)
                + (SELECT count(*) FROM adj_outcome WHERE outcome = 'CURRENCY_MISMATCH') AS currency_mismatch,
              (SELECT count(*) FROM f WHERE type IN ({_sql_list(SETTLED)}))
                - (SELECT count(*) FROM joined WHERE psp IS NOT NULL)
                + (SELECT count(*) - count(DISTINCT identity) FROM adj) AS duplicate_in_settlement""",
        """SELECT g AS ccy, sum(gc) AS gross_credit, sum(gd) AS gross_debit FROM
              (SELECT CASE WHEN gccy <> '' THEN gccy ELSE nccy END AS g, gc, gd FROM f) GROUP BY g ORDER BY g""",
        f"""SELECT n AS ccy, sum(nc) AS net_credit, sum(nd) AS net_debit, sum(commission) AS commission,
                   sum(markup) AS markup, sum(scheme_fees) AS scheme_fees, sum(interchange) AS interchange, {typed}
            FROM (SELECT *, CASE WHEN nccy <> '' THEN nccy WHEN gccy <> '' THEN gccy ELSE nccy END AS n FROM f)
            GROUP BY n ORDER BY n""",
    ]


def _csv_header(settlement: Path) -> list[str]:
    with open(settlement, encoding="utf-8") as handle:
        return handle.readline().rstrip("\n").split(",")


def run_duckdb(settlement: Path, ledger: list[Path], work: Path, memory_limit: str | None = None) -> dict:
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")  # as ours: its bar on stdout would mix with the answer
    con.execute("SET threads = 1")
    con.execute("SET preserve_insertion_order = true")  # row_number() OVER () is the file's order
    con.execute(f"SET temp_directory = '{work}'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    statements = duckdb_sql(settlement, ledger)
    for statement in statements[:-3]:
        con.execute(statement)
    bad = con.execute(_duckdb_checks()).fetchone()
    if bad and bad[0]:
        raise ValueError(str(bad[0]))
    counts = con.execute(statements[-3]).fetchone()
    assert counts is not None
    names = [d[0] for d in con.description]
    got = dict(zip(names, counts, strict=True))
    totals: dict[str, dict[str, int]] = {}
    for statement in statements[-2:]:
        cursor = con.execute(statement)
        columns = [d[0] for d in cursor.description]
        for row in cursor.fetchall():
            values = dict(zip(columns, row, strict=True))
            totals.setdefault(values.pop("ccy"), {}).update({k: int(v) for k, v in values.items()})
    con.close()
    kinds = {k: got[k.lower()] for k in KINDS}
    return outcome(got["rows"], got["recorded"], got["matched"], kinds, totals)


def _duckdb_checks() -> str:
    return f"""SELECT CASE
        WHEN EXISTS (SELECT 1 FROM f WHERE zone NOT IN ({_sql_list(ZONE_OFFSETS)})) THEN 'an unknown TimeZone'
        WHEN EXISTS (SELECT 1 FROM f WHERE (gccy <> '' AND gccy NOT IN ({_sql_list(TWO_DECIMALS)}))
                                        OR (nccy <> '' AND nccy NOT IN ({_sql_list(TWO_DECIMALS)})))
            THEN 'a currency without two decimals' END"""


CONTENDER_FUNCTIONS: dict[str, Callable[[Path, list[Path], Path], dict]] = {
    "ours": run_ours,
    "pandas": run_pandas,
    "polars": run_polars,
    "duckdb": run_duckdb,
    "duckdb-200MB": lambda s, ledger, w: run_duckdb(s, ledger, w, memory_limit="200MB"),
}


# --- the measured child ----------------------------------------------------------------------------------


def _vm_hwm_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child(name: str, inputs: Path) -> int:
    """One contender, once: its CPU from before its imports to its answer, its peak RSS; JSON on stdout."""
    meta = json.loads((inputs / "inputs.json").read_text())
    settlement, ledger = inputs / meta["settlement"], [inputs / p for p in meta["ledger"]]
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as work:
        try:
            answer = CONTENDER_FUNCTIONS[name](settlement, ledger, Path(work))
        except ImportError as err:
            print(json.dumps({"not_available": f"{type(err).__name__}: {err}"}))
            return NOT_AVAILABLE
        except Exception as err:
            # a baseline held to a memory limit may not finish within it (duckdb-200MB at 10M rows, where the file's
            # order must be kept): that is its result, said in its row. Ours running out of memory is a failure.
            if name == "ours" or type(err).__name__ != "OutOfMemoryException":
                raise
            print(json.dumps({"out_of_memory": f"{type(err).__name__}: {str(err).splitlines()[0]}"[:300]}))
            return OUT_OF_MEMORY
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    print(
        json.dumps(
            {
                "cpu_seconds": cpu,
                "seconds": seconds,
                # VmHWM: the high-water mark of this process's own address space. ru_maxrss (kept beside it) is
                # the same figure on Linux except that it starts from the parent's high-water mark at fork
                "peak_mib": _vm_hwm_mib() or usage.ru_maxrss / 1024,
                "ru_maxrss_mib": usage.ru_maxrss / 1024,
                "outcome": answer,
            }
        )
    )
    return 0


def measure(name: str, inputs: Path) -> dict:
    """One run of one contender in a fresh interpreter."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "payments_dev.bench.bench_reconcile", "--child", name, "--inputs", str(inputs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode in (NOT_AVAILABLE, OUT_OF_MEMORY):
        return json.loads(last)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(last)


def generate(charges: int, seed: int, out: Path) -> Path:
    """The inputs of one size, written by a process of their own (so that this one stays small)."""
    code = (
        "import sys; from pathlib import Path; from payments_dev.bench import recon_inputs as r; "
        "print(r.ensure(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])).settlement.parent)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(out), str(charges), str(seed)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"generating {charges} charges failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def compare(outcomes: dict[str, dict]) -> list[str]:
    """Every difference between the contenders' answers, against the first one's (empty: they agree)."""
    names = list(outcomes)
    if not names:
        return []
    reference_name = names[0]
    reference = outcomes[reference_name]
    problems = []
    for name in names[1:]:
        got = outcomes[name]
        for key in ("rows", "recorded", "matched"):
            if got[key] != reference[key]:
                problems.append(f"{name} {key} {got[key]} != {reference_name} {key} {reference[key]}")
        for kind in KINDS:
            if got["kinds"][kind] != reference["kinds"][kind]:
                problems.append(
                    f"{name} {kind} {got['kinds'][kind]} != {reference_name} {kind} {reference['kinds'][kind]}"
                )
        if got["totals"] != reference["totals"]:
            for ccy in sorted(set(got["totals"]) | set(reference["totals"])):
                mine, theirs = got["totals"].get(ccy), reference["totals"].get(ccy)
                if mine != theirs:
                    problems.append(f"{name} totals {ccy} {mine} != {reference_name} totals {ccy} {theirs}")
    return problems


def run_size(charges: int, repeats: int, seed: int, contenders: tuple[str, ...], out: Path) -> dict:
    """Every contender ``repeats`` times on the same inputs, alternated (a, b, c, ..., then the reverse order)."""
    inputs = generate(charges, seed, out)
    meta = json.loads((inputs / "inputs.json").read_text())
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    missing: dict[str, str] = {}
    out_of_memory: dict[str, str] = {}
    for repeat in range(repeats):
        order = contenders if repeat % 2 == 0 else tuple(reversed(contenders))
        for name in order:
            if name in missing or name in out_of_memory:
                continue
            got = measure(name, inputs)
            if "not_available" in got:
                missing[name] = got["not_available"]
                continue
            if "out_of_memory" in got:
                out_of_memory[name] = got["out_of_memory"]
                continue
            runs[name].append(got)
    answered = {name: r[0]["outcome"] for name, r in runs.items() if r}
    for name, r in runs.items():
        for later in r[1:]:
            if later["outcome"] != r[0]["outcome"]:
                raise Disagreement(f"{name} answered differently in two runs on the same inputs")
    summary = {
        name: {
            "cpu_seconds": statistics.median(x["cpu_seconds"] for x in r),
            "seconds": statistics.median(x["seconds"] for x in r),
            "peak_mib": statistics.median(x["peak_mib"] for x in r),
            "ru_maxrss_mib": statistics.median(x["ru_maxrss_mib"] for x in r),
            "cpu_runs": [round(x["cpu_seconds"], 3) for x in r],
        }
        for name, r in runs.items()
        if r
    }
    return {
        "charges": charges,
        "rows": meta["rows"],
        "settled_rows": meta["settled_rows"],
        "file_mib": (inputs / meta["settlement"]).stat().st_size / 2**20,
        "ledger_mib": sum((inputs / p).stat().st_size for p in meta["ledger"]) / 2**20,
        "repeats": repeats,
        "summary": summary,
        "outcomes": answered,
        "missing": missing,
        "out_of_memory": out_of_memory,
        "disagreements": compare(answered),
    }


def report(results: list[dict]) -> tuple[str, list[str], bool]:
    """The markdown table, the target lines and whether everything held (agreement, ours present)."""
    lines = [
        "| settlement rows (Settled) | contender | CPU s (median) | peak RSS MiB | wall s | ours / it, CPU | ours / it, RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    targets: list[str] = []
    ok = True
    for res in results:
        s = res["summary"]
        ours = s.get("ours")
        for name in CONTENDERS:
            if name not in s and name not in res["missing"] and name not in res.get("out_of_memory", {}):
                continue
            label = f"{res['rows']:,} ({res['settled_rows']:,})"
            if name in res["missing"]:
                lines.append(f"| {label} | {name} | not available ({res['missing'][name]}) | | | | |")
                continue
            if name in res.get("out_of_memory", {}):
                lines.append(
                    f"| {label} | {name} | out of memory at its limit ({res['out_of_memory'][name]}) | | | | |"
                )
                continue
            m = s[name]
            cpu_ratio = f"{ours['cpu_seconds'] / m['cpu_seconds']:.2f}" if ours and name != "ours" else ""
            rss_ratio = f"{ours['peak_mib'] / m['peak_mib']:.2f}" if ours and name != "ours" else ""
            lines.append(
                f"| {label} | {name} | {m['cpu_seconds']:.2f} | {m['peak_mib']:.0f} | {m['seconds']:.2f} "
                f"| {cpu_ratio} | {rss_ratio} |"
            )
        if res["missing"]:
            ok = False
        if res["disagreements"]:
            ok = False
        target = TARGETS.get(res["charges"])
        if target and ours:
            cpu_limit, mib_limit = target
            verdict = "PASS" if ours["cpu_seconds"] <= cpu_limit and ours["peak_mib"] <= mib_limit else "FAIL"
            targets.append(
                f"{verdict}: ours at {res['charges']:,} charges: {ours['cpu_seconds']:.2f} s CPU (target <= {cpu_limit:g} s), "
                f"{ours['peak_mib']:.0f} MiB peak (target <= {mib_limit:g} MiB)"
            )
        elif target:
            targets.append(f"FAIL: ours at {res['charges']:,} charges: not measured (not available)")
    return "\n".join(lines), targets, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CHARGES:,} charges, once (what CI runs)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="charges of the day")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each contender per size (medians)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.inputs)
    if args.quick:
        args.sizes, args.repeats = [QUICK_CHARGES], 1
    results = []
    for charges in args.sizes:
        print(
            f"reconciliation bench: {charges:,} charges, {args.repeats} run(s) of each contender ...", file=sys.stderr
        )
        results.append(run_size(charges, args.repeats, args.seed, tuple(args.contenders), args.out))
    table, targets, ok = report(results)
    print(table)
    print()
    for line in targets:
        print(line)
    for res in results:
        for name, why in res["missing"].items():
            print(f"{name}: not available ({why})")
        for problem in res["disagreements"]:
            print(f"DISAGREE at {res['charges']:,} charges: {problem}")
        if not res["disagreements"] and len(res["outcomes"]) > 1:
            first = next(iter(res["outcomes"].values()))
            print(
                f"agree at {res['charges']:,} charges ({', '.join(res['outcomes'])}): rows {first['rows']:,}, "
                f"matched {first['matched']:,}, recorded {first['recorded']}, "
                + ", ".join(f"{k} {v:,}" for k, v in first["kinds"].items())
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
