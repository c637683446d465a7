"""A seeded mutation fuzzer for the reconciliation engine: it must never raise on input.

    .venv/bin/python -m payments_dev.bench.fuzz_reconcile --files 100000        # the big run (nice it)
    .venv/bin/python -m payments_dev.bench.fuzz_reconcile --files 1000 --seed 7   # what CI runs (tests/)

Every mutated file must end in a report or a quarantine (:class:`UnreadableFile`, with a
reason); any other exception is a finding, printed with the seed that reproduces it. Seeds
are our own small fixtures (tests/fixtures/settlements and the quirks of issue 15: Adyen
CSV with time zones, account rows and adjustments; MT940 with bank headers; BAI2 with
continuations; camt.053). Mutations, one to three stacked: byte flips, truncation,
duplicated / deleted / swapped lines, swapped or deleted CSV columns, a huge field, a BOM,
CR or CRLF line ends, empty, binary noise, inserted quotes and separators, digits replaced.
Every tenth file is reconciled twice and the two reports must be byte-identical.

It lives in payments_dev/bench/ (never bundled into a Lambda asset: infra/bundling.py bundles payments/
and functions/ only).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from payments.reconciliation import report
from payments.reconciliation.model import Bounds, UnreadableFile
from payments.reconciliation.service import reconcile_stream
from payments.reconciliation.sources import LedgerEntry

ROOT = Path(__file__).resolve().parents[2]  # the repository
FIXTURES = ROOT / "tests" / "fixtures" / "settlements"

_ADYEN_HEADER = (
    "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,"
    "Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),"
    "Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,"
    "Modification Merchant Reference,Batch Number\n"
)
OWN_SEEDS: dict[str, bytes] = {
    "adyen-quirks": (
        _ADYEN_HEADER
        + "Co,Shop,1111111111111111,o1,visa,2026-03-07 10:00:00,PST,Settled,1111111111111111,USD,,10.00,1,USD,,9.70,,.30,,,visa,,7\n"
        + "Co,Shop,2222222222222222,o2,visa,2026-11-01 01:30:00,PDT,Settled,2,JPY,,3158,0.0067,USD,,1.88,,0,0.1,0.04,jcb,,7\n"
        + 'Co,Shop,3333333333333333,o3,visa,2026-03-02 10:00:00,CEST,Refunded,4444444444444444,USD,1.00,"",1,USD,1.00,"",,,,,visa,,7\n'
        + "Co,Shop,3333333333333333,o3,visa,2026-03-02 10:00:00,BST,ChargebackReversed,5,USD,,52,1,USD,,51.89,,.11,,,visa,,7\n"
        + "Co,Shop,,,,2026-03-02 11:00:00,CET,Fee,Transaction Fees  March 01,,,,,USD,0.09,,,,,,,,7\n"
        + 'Co,Shop,,,,2026-03-02 12:00:00,CET,MerchantPayout,"payout, batch 7",,,,,USD,9.61,,,,,,,,7'
    ).encode(),
    "mt940-headers": (
        b"ABNANL2A\n940\nABNANL2A\n:20:S1\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C261129EUR100,00\n"
        b":61:2611301130RC10,00NTRFNONREF\n:86:REVERSAL\n:61:2611301130C20,00NTRFNONREF//REF\n:86:PAYMENT\n"
        b":62F:C261130EUR110,00\n-\n\x01\n{1:F01ASNBNL21XXXX0000000000}{2:O940ASNBNL21XXXXN}{3:}{4:\n:20:0000000000\n"
        b":25:NL81ASNB9999999999\n:28C:0000\n0\n:60F:C200101EUR444,29\n:61:2001010101D65,00NOVBNL47INGB9999999999\nhr jansen\n"
        b":86:NL47INGB9999999999 hr jansen\n:62F:C200101EUR379,29\n-}{5:}\n-\x03\n"
    ),
    "bai2-continuations": (
        b"01,122099999,123456789,040621,0200,1,65,,2/   02,031001234,122099999,1,040620,2359,,2/\n"
        b"03,9876543210,,010,-500000,,,100,1000000,,,400,2000000,,,190/\n88,500000,,,040/\n88,-1500000,,/\n"
        b"16,115,1000000,S,,200000,800000,,,LOCK BOX/  16,495,2000000,,,,TRANSFER/\n49,4500000,6/\n"
        b"03,107049932,USD,,,,,060,6865898,,,100,1912,1,,400,000,0,/\n16,165,1912,,SPB1,1111,ACH Credit Payment\n88,EREF: 1111\n"
        b"49,,3/\n98,4500000,2,8/\n99,4500000,1,10/\n"
    ),
    "mt940-cp852": (
        ":20:STARTUMS\n:25:UBRTHUHB/1234/HUF\n:28C:0072\n:60F:C180417HUF100,00\n:61:180417CF10,00N527\n"
        "Csoportos átutalás jóváírása\n:86:Díj, jutalék\n:62F:C180417HUF110,00\n"
    ).encode("cp852"),
}


class EmptyLedger:
    def day_entries(self, day: str) -> Any:
        return iter(())

    def find(self, payment_order_id: str) -> LedgerEntry | None:
        return None

    def day_adjustments(self, day: str) -> Any:
        return iter(())

    def find_adjustment(self, txn_id: str) -> None:
        return None


class Payouts:
    def find_payout(self, currency: str, amount_minor: int) -> dict[str, Any] | None:
        return {"source_key": "x", "currency": currency} if amount_minor % 7 == 0 else None


def seeds() -> dict[str, bytes]:
    found = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*"))}
    found.update(OWN_SEEDS)
    return found


# --- mutations -------------------------------------------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(out))
        out[i] = rng.choice(
            (out[i] ^ (1 << rng.randrange(8)), rng.randrange(256), ord(rng.choice(',/:;"\n\r-+.0123456789')))
        )
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def duplicate_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(i, lines[rng.randrange(len(lines))])
    return b"\n".join(lines)


def delete_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def swap_lines(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


def swap_columns(rng: random.Random, data: bytes) -> bytes:
    lines = [line.split(b",") for line in _lines(data)]
    width = max(len(fields) for fields in lines)
    i, j = rng.randrange(width), rng.randrange(width)
    every = rng.random() < 0.5  # the whole column (a reordered layout) or one line's fields
    for n, fields in enumerate(lines):
        if (every or n == rng.randrange(len(lines))) and i < len(fields) and j < len(fields):
            fields[i], fields[j] = fields[j], fields[i]
    return b"\n".join(b",".join(fields) for fields in lines)


def delete_column(rng: random.Random, data: bytes) -> bytes:
    lines = [line.split(b",") for line in _lines(data)]
    i = rng.randrange(max(len(fields) for fields in lines))
    return b"\n".join(b",".join(f for k, f in enumerate(fields) if k != i) for fields in lines)


def huge_field(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    filler = rng.choice((b"9", b"A", b",", b'"', b" ", b"\xc3\xa9"))
    return data[:at] + filler * rng.choice((100, 5_000, 70_000)) + data[at:]


def bom(rng: random.Random, data: bytes) -> bytes:
    return rng.choice((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) + data


def line_ends(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\n", rng.choice((b"\r\n", b"\r", b"\n\n", b"\r\r\n")))


def empty(rng: random.Random, data: bytes) -> bytes:
    return rng.choice((b"", b"\n", b" \r\n\t", b"\xef\xbb\xbf"))


def binary(rng: random.Random, data: bytes) -> bytes:
    noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 512)))
    return rng.choice((noise, data[: len(data) // 2] + noise, noise + data))


def insert_punctuation(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return (
        data[:at]
        + rng.choice((b'"', b",", b"/", b":61:", b":20:", b"\n88,", b"<", b"&", b"\x00", b"-", b"=cmd|"))
        + data[at:]
    )


def replace_digits(rng: random.Random, data: bytes) -> bytes:
    digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
    if not digits:
        return data
    out = bytearray(data)
    for i in rng.sample(digits, min(len(digits), rng.randint(1, 6))):
        out[i] = rng.choice(b"0123456789.,-+ e")
    return bytes(out)


MUTATIONS = (
    flip, truncate, duplicate_line, delete_line, swap_lines, swap_columns, delete_column,
    huge_field, bom, line_ends, empty, binary, insert_punctuation, replace_digits,
)  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    applied = []
    for _ in range(rng.randint(1, 3)):
        mutation = rng.choice(MUTATIONS)
        data = mutation(rng, data)
        applied.append(mutation.__name__)
    return data, applied


# --- the run ---------------------------------------------------------------------------------


def reconcile_once(data: bytes, bounds: Bounds) -> str:
    try:
        result, digest = reconcile_stream(io.BytesIO(data), EmptyLedger(), bounds, Payouts(), "2026-11-30")  # type: ignore[arg-type]
    except UnreadableFile as err:
        return "QUARANTINED " + err.reason
    built = report.build("fuzz", digest, result, None)
    report.to_html(built), report.to_csv(built)  # the Lambda writes all three renderings
    return report.to_json(built)


def run(files: int, seed: int, out: Any = sys.stdout) -> dict[str, Any]:
    corpus = seeds()
    names = sorted(corpus)
    bounds = Bounds(max_bank_statement_bytes=1024 * 1024)
    outcomes: Counter[str] = Counter()
    findings: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n in range(files):
        rng = random.Random(f"{seed}:{n}")
        name = rng.choice(names)
        data, applied = mutate(rng, corpus[name])
        try:
            first = reconcile_once(data, bounds)
            if n % 10 == 0 and reconcile_once(data, bounds) != first:
                raise AssertionError("two reports of the same bytes differ")
            outcomes["quarantined" if first.startswith("QUARANTINED") else "reported"] += 1
        except Exception as err:  # noqa: BLE001 - every other exception is what the fuzzer hunts
            outcomes["uncaught"] += 1
            findings.append(
                {
                    "file": n,
                    "seed": seed,
                    "base": name,
                    "mutations": applied,
                    "error": f"{type(err).__name__}: {err}"[:300],
                    "where": traceback.format_exc().strip().splitlines()[-3:],
                }
            )
            print(
                f"UNCAUGHT file {n} (seed {seed}, base {name}, {applied}): {type(err).__name__}: {err}"[:400], file=out
            )
        if out is not None and files >= 10_000 and (n + 1) % 10_000 == 0:
            print(f"  {n + 1} files, {dict(outcomes)}, {time.perf_counter() - started:.0f} s", file=out, flush=True)
    elapsed = time.perf_counter() - started
    summary = {"files": files, "seed": seed, "seconds": round(elapsed, 1), **dict(outcomes), "findings": findings}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="a tiny run: 200 files")
    args = parser.parse_args(argv)
    summary = run(200 if args.quick else args.files, args.seed)
    print(
        f"{summary['files']} mutated files in {summary['seconds']} s: {summary.get('reported', 0)} reported, "
        f"{summary.get('quarantined', 0)} quarantined, {summary.get('uncaught', 0)} uncaught exceptions"
    )
    return 1 if summary.get("uncaught") else 0


if __name__ == "__main__":
    sys.exit(main())
