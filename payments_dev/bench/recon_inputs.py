"""The reconciliation benchmark's inputs: one Adyen Settlement Details Report and the ledger's Parquet copy.

Written once per (size, seed), outside every measured process, by duckdb SQL (10M rows in seconds), and
deterministic: every value is arithmetic on the row's index and the seed, nothing is drawn from a clock.

The day is :data:`DAY` at the PSP ``adyen``; the file is the one our readers take
(:data:`payments.reconciliation.adyen.COLUMNS`, ``Creation Date`` local to ``TimeZone`` ``CET``, amounts
with the currency's two decimals). The ledger copy is :mod:`payments.reconciliation.lake`'s layout and
columns: ``ledger/psp=adyen/day=<day>/ccy=<ccy>/<object>.parquet``, one row per ledger transaction,
in booking order (not in PSP-reference order).

What differs between the two sides (per 2,000 charges of the day, in slots ``k`` of the charge's index):

====  ======================================================================================
k     the charge
====  ======================================================================================
0     booked with 1 minor unit more than settled (``AMOUNT_MISMATCH``)
1     booked in another currency (``CURRENCY_MISMATCH``)
2, 3  booked, not in the file (``MISSING_IN_SETTLEMENT``)
4     settled, never booked (``MISSING_IN_LEDGER``, after a lookup by merchant reference)
5     its row repeated identically (``DUPLICATE_IN_SETTLEMENT``, the first row matches)
6     repeated with another amount (``DUPLICATE_IN_SETTLEMENT``, the first row matches)
7     booked under another payment order (``MISSING_IN_LEDGER``)
====  ======================================================================================

Besides: carry-over rows (one per 4,000 charges) charged the day before and booked on that day (every
fifth with another amount), a day-before ledger partition of charges settled earlier, refunds (one per 500
charges: one in ten never booked, one in ten booked but not in the file, one in ten with another amount,
one in ten repeated), chargebacks (one per 2,000, every fourth reversed, one in eight booked but not in the
file), ``Fee`` and ``MerchantPayout`` rows, three currencies, and repeated deliveries of the ledger copy
(one charge in 1,000 written again in a second object of its partition: readers keep one row per
``txn_id``). The mismatches stay below the engine's bounds (``Bounds.max_mismatches``, 100,000; point
lookups, 10,000) at 10M rows, so that every contender reports every one of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from payments.reconciliation import adyen, lake

DAY = "2026-11-30"
BEFORE = "2026-11-29"
PSP = "adyen"
ZONE = "CET"  # UTC+1 in November: a Creation Date one hour ahead of the UTC charge
PERIOD = 2_000
MULTIPLIER = 2_654_435_761  # odd: i -> (i * MULTIPLIER + seed) mod 2**34 is a bijection (unique references)
INPUTS_VERSION = 1  # bump when the generated content changes: cached inputs are then written anew


@dataclass(frozen=True)
class Inputs:
    settlement: Path
    ledger: list[Path]
    rows: int  # data lines of the file
    settled_rows: int  # of which Settled

    @classmethod
    def load(cls, folder: Path) -> Inputs:
        meta = json.loads((folder / "inputs.json").read_text())
        return cls(
            folder / meta["settlement"], [folder / p for p in meta["ledger"]], meta["rows"], meta["settled_rows"]
        )


def folder_for(out: Path, charges: int, seed: int) -> Path:
    return out / f"recon-v{INPUTS_VERSION}-{charges}-s{seed}"


def ensure(out: Path, charges: int, seed: int) -> Inputs:
    """The inputs for ``charges`` charges of the day: generated unless already there (complete)."""
    folder = folder_for(out, charges, seed)
    if not (folder / "inputs.json").exists():
        generate(folder, charges, seed)
    return Inputs.load(folder)


def _money(column: str) -> str:
    """Minor units (BIGINT) as Adyen's text with two decimals: 1999 -> '19.99'."""
    return f"(({column}) // 100)::VARCHAR || '.' || lpad((({column}) % 100)::VARCHAR, 2, '0')"


def _stamp(day: str, seconds: str, shift_seconds: int = 0, iso: bool = False) -> str:
    """A timestamp ``seconds`` after midnight of ``day`` (plus ``shift_seconds``) as text."""
    fmt = "%Y-%m-%dT%H:%M:%S.000Z" if iso else "%Y-%m-%d %H:%M:%S"
    return f"strftime(TIMESTAMP '{day} 00:00:00' + to_seconds(({seconds}) + {shift_seconds}), '{fmt}')"


def generate(folder: Path, charges: int, seed: int) -> None:
    """Write the file and the ledger copy into ``folder`` (then ``inputs.json``, last: a folder without it
    is incomplete and is written again)."""
    import duckdb

    if charges < PERIOD:
        raise ValueError(f"at least {PERIOD} charges, so that every kind of difference is there")
    folder.mkdir(parents=True, exist_ok=True)
    n, s = charges, seed
    carry, refunds, disputes = max(1, n // 4_000), max(10, n // 500), max(8, n // 2_000)
    earlier = n // 50  # charges of the day before, settled by an earlier file: in the ledger only
    batch = adyen.batch_number(DAY)
    shift = 3600  # CET
    with duckdb.connect(":memory:") as con:
        con.execute("SET threads = 2")
        con.execute("SET preserve_insertion_order = true")
        # --- the day's charges and the day before's --------------------------------------------------
        con.execute(f"""
            CREATE TABLE charge AS
            SELECT i, (i * 7919 + {s} * 104729) % {PERIOD} AS k,
                   '88' || lpad(((i * {MULTIPLIER} + {s}) % 17179869184)::VARCHAR, 14, '0') AS psp,
                   'po_' || lpad(i::VARCHAR, 10, '0') AS po,
                   'co_' || lpad(i::VARCHAR, 10, '0') AS checkout,
                   'seller_' || (i % 997)::VARCHAR AS seller,
                   CASE (i * 13) % 10 WHEN 8 THEN 'GBP' WHEN 9 THEN 'USD' ELSE 'EUR' END AS ccy,
                   100 + (i * 7919 + {s}) % 49900 AS amount,
                   i * 86400 // {n} AS second
            FROM range({n}) t(i)
        """)
        con.execute(f"""
            CREATE TABLE before AS
            SELECT j, '87' || lpad(((j * {MULTIPLIER} + {s}) % 17179869184)::VARCHAR, 14, '0') AS psp,
                   'po_b' || lpad(j::VARCHAR, 9, '0') AS po, 'co_b' || lpad(j::VARCHAR, 9, '0') AS checkout,
                   'seller_' || (j % 997)::VARCHAR AS seller, 'EUR' AS ccy, 250 + (j * 104729 + {s}) % 30000 AS amount,
                   j * 86400 // {carry + earlier} AS second, j < {carry} AS carried
            FROM range({carry + earlier}) t(j)
        """)
        # --- the file's rows, in the order Adyen writes them (by creation, modifications after) ------
        settled = """
            SELECT {order} AS pos, '{account}' AS merchant_account, psp, po, {created} AS created,
                   'Settled' AS type, NULL AS modref, ccy, NULL AS gd, {gross} AS gc,
                   NULL AS nd, {gross} - 10 - ({gross}) * 60 // 10000 - ({gross}) * 12 // 10000
                                - ({gross}) * 80 // 10000 AS nc,
                   10 AS commission, ({gross}) * 60 // 10000 AS markup, ({gross}) * 12 // 10000 AS scheme,
                   ({gross}) * 80 // 10000 AS interchange, NULL AS mmr
        """
        day_rows = settled.format(
            order="1000000000 + i", account="PaymentsMarketplaceECOM", created=_stamp(DAY, "second", shift),
            gross="amount",
        )  # fmt: skip
        carried_rows = settled.format(
            order="j", account="PaymentsMarketplaceECOM", created=_stamp(BEFORE, "second", shift), gross="amount"
        )
        repeated = settled.format(
            order="3000000000 + i", account="PaymentsMarketplaceECOM", created=_stamp(DAY, "second", shift),
            gross="amount + CASE WHEN k = 6 THEN 100 ELSE 0 END",
        )  # fmt: skip
        con.execute(f"""
            CREATE TABLE adjustment AS
            SELECT 'Refunded' AS type, r AS n, '86' || lpad(((r * {MULTIPLIER} + {s}) % 17179869184)::VARCHAR, 14, '0') AS psp,
                   'po_r' || lpad(r::VARCHAR, 9, '0') AS po,
                   '85' || lpad(((r * {MULTIPLIER} + {s} + 1) % 17179869184)::VARCHAR, 14, '0') AS modref,
                   'rf_' || lpad(r::VARCHAR, 9, '0') AS mmr, 'refund:rf_' || lpad(r::VARCHAR, 9, '0') AS txn_id,
                   'REFUND' AS kind, CASE r % 7 WHEN 3 THEN 'GBP' ELSE 'EUR' END AS ccy, 50 + (r * 37) % 5000 AS amount,
                   r % 10 AS slot, r * 86400 // {refunds} AS second
            FROM range({refunds}) t(r)
            UNION ALL
            SELECT 'Chargeback', b, '83' || lpad(((b * {MULTIPLIER} + {s}) % 17179869184)::VARCHAR, 14, '0'),
                   'po_d' || lpad(b::VARCHAR, 9, '0'),
                   '84' || lpad(((b * {MULTIPLIER} + {s} + 1) % 17179869184)::VARCHAR, 14, '0'), NULL,
                   'chargeback:84' || lpad(((b * {MULTIPLIER} + {s} + 1) % 17179869184)::VARCHAR, 14, '0'),
                   'CHARGEBACK', 'EUR', 500 + (b * 53) % 20000, CASE WHEN b % 8 = 1 THEN 1 ELSE 5 END,
                   b * 86400 // {disputes}
            FROM range({disputes}) t(b)
            UNION ALL
            SELECT 'ChargebackReversed', b, '83' || lpad(((b * {MULTIPLIER} + {s}) % 17179869184)::VARCHAR, 14, '0'),
                   'po_d' || lpad(b::VARCHAR, 9, '0'),
                   '84' || lpad(((b * {MULTIPLIER} + {s} + 1) % 17179869184)::VARCHAR, 14, '0'), NULL,
                   'chargeback_reversed:84' || lpad(((b * {MULTIPLIER} + {s} + 1) % 17179869184)::VARCHAR, 14, '0'),
                   'CHARGEBACK_REVERSED', 'EUR', 500 + (b * 53) % 20000, 5, 43200 + b * 43200 // {disputes}
            FROM range({disputes}) t(b) WHERE b % 4 = 0
        """)
        # slot: 0 never booked, 1 booked but not in the file, 2 booked with 1 more, 3 its row repeated
        adjustment_rows = f"""
            SELECT 4000000000 + c * 100000000 + dense_rank() OVER (ORDER BY type DESC, n) AS pos,
                   'PaymentsMarketplaceECOM' AS merchant_account, psp, po, {_stamp(DAY, "second", shift)} AS created,
                   type, modref, ccy,
                   CASE WHEN type = 'ChargebackReversed' THEN NULL ELSE amount END AS gd,
                   CASE WHEN type = 'ChargebackReversed' THEN amount END AS gc,
                   CASE WHEN type = 'Chargeback' THEN amount + 1000 WHEN type = 'Refunded' THEN amount END AS nd,
                   CASE WHEN type = 'ChargebackReversed' THEN amount END AS nc,
                   NULL AS commission, CASE WHEN type = 'Chargeback' THEN 1000 END AS markup,
                   NULL AS scheme, NULL AS interchange, mmr
            FROM adjustment, range(CASE WHEN slot = 3 THEN 2 ELSE 1 END) copies(c)
            WHERE slot <> 1
        """
        con.execute(f"""
            CREATE TABLE file_rows AS
            SELECT * FROM ({day_rows} FROM charge WHERE k NOT IN (2, 3))
            UNION ALL SELECT * FROM ({carried_rows} FROM before WHERE carried)
            UNION ALL SELECT * FROM ({repeated} FROM charge WHERE k IN (5, 6))
            UNION ALL SELECT * FROM ({adjustment_rows})
        """)
        # the account's own rows: two fees per currency, then the payout of the batch's net per currency
        con.execute(f"""
            INSERT INTO file_rows
            SELECT 5000000000 + f * 10 + c, 'PaymentsMarketplaceECOM', NULL, NULL, '{DAY} 23:00:0' || f::VARCHAR,
                   'Fee', NULL, NULL, NULL, NULL, 1234 + f * 100, NULL, NULL, NULL, NULL, NULL, NULL
            FROM range(2) t(f), range(1, 4) u(c)
        """)
        # fees have no gross currency: set their net currency afterwards (the INSERT above keeps columns in order)
        con.execute("ALTER TABLE file_rows ADD COLUMN net_ccy VARCHAR")
        con.execute("UPDATE file_rows SET net_ccy = ccy")
        con.execute("""
            UPDATE file_rows SET net_ccy = CASE (pos - 5000000000) % 10 WHEN 1 THEN 'EUR' WHEN 2 THEN 'GBP' ELSE 'USD' END
            WHERE type = 'Fee'
        """)
        con.execute(f"""
            INSERT INTO file_rows
            SELECT 6000000000 + row_number() OVER (ORDER BY net_ccy), NULL, NULL, NULL, '{DAY} 23:59:59', 'MerchantPayout',
                   'payout-{batch}-' || net_ccy, NULL, NULL, NULL, net, NULL, NULL, NULL, NULL, NULL, NULL, net_ccy
            FROM (SELECT net_ccy, sum(coalesce(nc, 0) - coalesce(nd, 0)) AS net FROM file_rows GROUP BY net_ccy)
            WHERE net > 0
        """)
        out_columns = {
            "Company Account": f"'{adyen.COMPANY_ACCOUNT}'",
            "Merchant Account": "merchant_account",
            "Psp Reference": "psp",
            "Merchant Reference": "po",
            "Payment Method": "CASE WHEN psp IS NULL THEN NULL ELSE 'visa' END",
            "Creation Date": "created",
            "TimeZone": f"'{ZONE}'",
            "Type": "type",
            "Modification Reference": "modref",
            "Gross Currency": "ccy",
            "Gross Debit (GC)": _money("gd"),
            "Gross Credit (GC)": _money("gc"),
            "Exchange Rate": "'1'",
            "Net Currency": "net_ccy",
            "Net Debit (NC)": _money("nd"),
            "Net Credit (NC)": _money("nc"),
            "Commission (NC)": _money("commission"),
            "Markup (NC)": _money("markup"),
            "Scheme Fees (NC)": _money("scheme"),
            "Interchange (NC)": _money("interchange"),
            "Payment Method Variant": "CASE WHEN psp IS NULL THEN NULL ELSE 'visacredit' END",
            "Modification Merchant Reference": "mmr",
            "Batch Number": f"'{batch}'",
        }
        assert tuple(out_columns) == adyen.COLUMNS
        select = ", ".join(f'{expr} AS "{name}"' for name, expr in out_columns.items())
        settlement = folder / f"settlement_detail_report_batch_{batch}.csv"
        con.execute(f"""
            COPY (SELECT {select} FROM file_rows ORDER BY pos)
            TO '{settlement}' (FORMAT csv, HEADER true, DELIMITER ',', QUOTE '"')
        """)
        counts = con.execute("SELECT count(*), count(*) FILTER (type = 'Settled') FROM file_rows").fetchone()
        assert counts is not None
        # --- the ledger copy: one row per transaction, lake.COLUMNS, in booking order -------------------
        other_order = "CASE WHEN k = 7 THEN 'po_x' || lpad(i::VARCHAR, 9, '0') ELSE po END"
        con.execute(f"""
            CREATE TABLE ledger AS
            SELECT 1000000000 + i AS pos, '{DAY}' AS day, 'payin:' || po AS txn_id, 'PAYIN' AS kind,
                   {other_order} AS payment_order_id, checkout AS checkout_id, psp AS psp_reference,
                   NULL AS original_psp_reference, seller AS seller_account,
                   CASE WHEN k = 1 THEN (CASE ccy WHEN 'EUR' THEN 'GBP' ELSE 'EUR' END) ELSE ccy END AS currency,
                   amount + (k = 0)::INT AS amount_minor,
                   10 + amount * 1000 // 10000 AS commission_minor,
                   {_stamp(DAY, "second", iso=True)} AS charged_at, {_stamp(DAY, "second", 2, iso=True)} AS booked_at
            FROM charge WHERE k <> 4
            UNION ALL
            SELECT j, '{BEFORE}', 'payin:' || po, 'PAYIN', po, checkout, psp, NULL, seller, ccy,
                   amount + (carried AND j % 5 = 4)::INT, 10 + amount * 1000 // 10000,
                   {_stamp(BEFORE, "second", iso=True)}, {_stamp(BEFORE, "second", 2, iso=True)}
            FROM before
            UNION ALL
            SELECT 2000000000 + second * 10 + n % 10, '{DAY}', txn_id, kind, po, 'co_a' || lpad(n::VARCHAR, 9, '0'),
                   modref, psp, 'seller_' || (n % 997)::VARCHAR, ccy, amount + (slot = 2)::INT, 0, NULL,
                   {_stamp(DAY, "second", 5, iso=True)}
            FROM adjustment WHERE slot <> 0
        """)
        ledger: list[Path] = []
        partitions = con.execute("SELECT DISTINCT day, currency FROM ledger ORDER BY day, currency").fetchall()
        columns = ", ".join(f'CAST("{name}" AS {kind}) AS "{name}"' for name, kind in lake.COLUMNS)
        for day, currency in partitions:
            part = lake.Partition(PSP, day, currency)
            target = folder / part.prefix
            target.mkdir(parents=True, exist_ok=True)
            where = f"day = '{day}' AND currency = '{currency}'"
            objects = [
                ("part-00000.parquet", where),
                # a repeated delivery of some of the partition's transactions (at-least-once streams)
                ("part-00001.parquet", f"{where} AND kind = 'PAYIN' AND pos % 1000 = 17"),
            ]
            for name, condition in objects:
                if not con.execute(f"SELECT count(*) FROM ledger WHERE {condition}").fetchone()[0]:  # type: ignore[index]
                    continue  # no empty objects: a delivery has rows
                con.execute(f"""
                    COPY (SELECT {columns} FROM ledger WHERE {condition} ORDER BY pos)
                    TO '{target / name}' (FORMAT parquet, COMPRESSION zstd)
                """)
                ledger.append(target / name)
    meta = {
        "settlement": settlement.name,
        "ledger": [str(p.relative_to(folder)) for p in ledger],
        "rows": counts[0],
        "settled_rows": counts[1],
        "charges": charges,
        "seed": seed,
    }
    (folder / "inputs.json").write_text(json.dumps(meta, indent=1))
