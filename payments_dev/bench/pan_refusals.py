"""How often the card-number policy (payments/kernel/pan.py) refuses honest values, and what it costs.

    .venv/bin/python -m payments_dev.bench.pan_refusals              # 10^6 values of each shape
    .venv/bin/python -m payments_dev.bench.pan_refusals --quick      # 2,000 of each (CI smoke)
    .venv/bin/python -m payments_dev.bench.pan_refusals --n 200000 --baseline none
    .venv/bin/python -m payments_dev.bench.pan_refusals --write     # and replace its section of docs/benchmarks.md

For each shape of value a client honestly sends (UUIDv4 and UUIDv7 Idempotency-Keys, UUIDs written
without dashes, ULIDs, SHA-1 and SHA-256 hex digests, 64-bit hex ids, ISO 8601 timestamps, date-stamped
ids, invoice-like ids, E.164 and national phone numbers) it generates
``n`` random values and counts those :func:`payments.kernel.pan.contains_pan` refuses; it also
generates ``n`` real card numbers (Luhn-valid, in a scheme's issuer range) disguised as people write
them (printed groupings, runs of spaces, no-break spaces, dashes, dots, slashes, underscores, other
digit scripts, with words, an expiry and a CVC around them), ``n`` card numbers glued to letters
(``card4111111111111111``, ``visa4111111111111111exp1226``) and ``n`` card numbers in a printed
grouping glued to a word (``card4111 1111 1111 1111``), every one of which must be refused.
The policy of an earlier commit (``--baseline``, read with ``git show``) is measured on the same
values, at most 10^5 of each, for comparison.

Then the per-request cost: the guard's card-number checks of one request (a 3-order checkout
body, its Idempotency-Key, its path), new policy and baseline alternated, median of several runs.

Exit status 1 if a target is missed: a refusal among UUIDs, ULIDs, hex digests or timestamps, more
than 1 in 10^4 among 64-bit hex ids (those made only of decimal digits are bare 16-digit numbers),
date-stamped ids, invoice-like ids or phone numbers, a disguised or glued card number let through.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Callable
from typing import Any

from payments.kernel import pan
from payments_dev.bench.common import ROOT, machine, median

Generator = Callable[[random.Random], str]

#: shapes that must never be refused, and shapes allowed at most one refusal in 10^4
ZERO = (
    "UUIDv4",
    "UUIDv7",
    "UUIDv4 without dashes",
    "ULID",
    "SHA-1 hex digest",
    "SHA-256 hex digest",
    "ISO 8601 timestamp",
)
#: (a 64-bit hex id made only of decimal digits, about 1 in 2,000, is a bare 16-digit number: one in
#: about forty of those is a card number to anyone)
RARE = ("64-bit hex id", "date-stamped id", "invoice-like id", "E.164 phone number", "national phone number")
MAX_RARE_RATE = 1e-4
DISGUISED = "disguised card number"
GLUED = "card number glued to letters"
GROUPED_GLUED = "grouped card number glued to a word"
#: shapes every value of which must be refused
CARDS = (DISGUISED, GLUED, GROUPED_GLUED)
QUICK_N = 2_000
BASELINE_MAX_N = 100_000

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EPOCH_MS = (
    int(dt.datetime(2015, 1, 1, tzinfo=dt.UTC).timestamp() * 1000),
    int(dt.datetime(2045, 1, 1, tzinfo=dt.UTC).timestamp() * 1000),
)


def uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def uuid7(rng: random.Random) -> str:
    """RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, 12 random bits, variant, 62 random bits."""
    ms = rng.randrange(*_EPOCH_MS)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def uuid4_hex(rng: random.Random) -> str:
    """A UUIDv4 written without dashes (32 hex characters), as ``uuid.uuid4().hex`` writes it."""
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def _hex(rng: random.Random, bits: int) -> str:
    """``bits`` random bits in hex, as digests and ``secrets.token_hex`` write them (one in five upper case)."""
    text = f"{rng.getrandbits(bits):0{bits // 4}x}"
    return text.upper() if rng.random() < 0.2 else text


def sha1_hex(rng: random.Random) -> str:
    """A SHA-1 digest in hex (40 characters): its bits are uniform, so random bits stand for it."""
    return _hex(rng, 160)


def sha256_hex(rng: random.Random) -> str:
    """A SHA-256 digest in hex (64 characters)."""
    return _hex(rng, 256)


def hex64(rng: random.Random) -> str:
    """A 64-bit random id in hex (16 characters: span ids, ``secrets.token_hex(8)``)."""
    return _hex(rng, 64)


def ulid(rng: random.Random) -> str:
    """A ULID: 48-bit Unix milliseconds and 80 random bits, 26 Crockford base32 characters."""
    value = (rng.randrange(*_EPOCH_MS) << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _instant(rng: random.Random) -> dt.datetime:
    seconds = rng.randrange(0, 4_102_444_800)  # 1970-01-01 .. 2100-01-01
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(microsecond=rng.randrange(1_000_000))


def iso_timestamp(rng: random.Random) -> str:
    """ISO 8601 dates and timestamps in the forms systems write: extended and basic, 0-9 fraction
    digits, Z or an offset, T or a space."""
    t = _instant(rng)
    shape = rng.randrange(8)
    fraction = (
        "." + "".join(rng.choice("0123456789") for _ in range(rng.choice((3, 6, 9)))) if rng.random() < 0.6 else ""
    )
    offset = rng.choice(("Z", "+00:00", f"{rng.choice('+-')}{rng.randrange(15):02d}:{rng.choice((0, 30, 45)):02d}"))
    if shape == 0:
        return t.date().isoformat()
    if shape == 1:
        return t.isoformat(timespec="microseconds")  # Python's own: 2026-12-02T10:11:12.123456+00:00
    if shape == 2:
        return t.strftime("%Y%m%dT%H%M%S") + fraction + rng.choice(("Z", "+0000", "+0530"))
    if shape == 3:
        return t.strftime("%Y-%m-%d %H:%M:%S") + fraction
    if shape == 4:
        return t.strftime("%Y-%m-%dT%H:%M") + offset
    return t.strftime("%Y-%m-%dT%H:%M:%S") + fraction + offset


def date_stamped_id(rng: random.Random) -> str:
    """Ids that carry a date and a sequence number (order-2026-12-02-000123 and its cousins)."""
    d = _instant(rng).date()
    y, m, dd, n = d.year, d.month, d.day, rng.randrange(10**6)
    prefix = rng.choice(("order", "ord", "ORD", "shp", "batch", "po", "txn"))
    sep = rng.choice("-_")
    return rng.choice(
        (
            f"{prefix}-{y}-{m:02d}-{dd:02d}-{n:06d}",
            f"{prefix}{sep}{y}{m:02d}{dd:02d}{sep}{n:06d}",
            f"{prefix}{sep}{y}{m:02d}{dd:02d}{n:06d}",
            f"{prefix}{y}{m:02d}{dd:02d}{n:06d}",  # glued to its prefix: ORD20261202000123
            f"{y}{m:02d}{dd:02d}-{n:06d}",
            f"{prefix}/{y}/{m:02d}/{dd:02d}/{n}",
            f"{prefix}-{y}.{m:02d}.{dd:02d}-{n:04d}",
        )
    )


def invoice_id(rng: random.Random) -> str:
    """Invoice-like ids: INV-123456789-12345 and the usual variants."""
    y = rng.randrange(1990, 2100)
    return rng.choice(
        (
            f"INV-{rng.randrange(10**9):09d}-{rng.randrange(10**5):05d}",
            f"INV-{y}-{rng.randrange(10**6):06d}",
            f"INV{rng.randrange(10**10):010d}",
            f"INV/{y}/{rng.randrange(10**5):05d}",
            f"{y}-INV-{rng.randrange(10**7)}",
            f"inv_{rng.randrange(10**9):09d}_{rng.randrange(10**5):05d}",
        )
    )


#: (country code, national significant number lengths): E.164 allows 15 digits in all
_COUNTRIES = (
    ("1", (10,)), ("44", (10,)), ("49", (10, 11)), ("33", (9,)), ("91", (10,)), ("86", (11,)), ("55", (10, 11)),
    ("81", (10,)), ("7", (10,)), ("61", (9,)), ("62", (9, 10, 11, 12)), ("234", (10,)), ("52", (10,)),
    ("39", (9, 10)), ("34", (9,)), ("43", (10, 11, 12, 13)), ("353", (9,)), ("65", (8,)), ("971", (9,)),
    ("27", (9,)), ("358", (9, 10, 11, 12)), ("880", (10,)), ("90", (10,)), ("380", (9,)),
)  # fmt: skip


def _nsn(rng: random.Random, length: int) -> str:
    return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(length - 1))


def e164(rng: random.Random) -> str:
    """+<country code><national number>, as E.164 writes it (no spaces)."""
    cc, lengths = rng.choice(_COUNTRIES)
    length = min(rng.choice(lengths), 15 - len(cc))
    return f"+{cc}{_nsn(rng, length)}"


def national_phone(rng: random.Random) -> str:
    """Phone numbers as people type them at home, and international with spaces."""
    d = [str(rng.randrange(10)) for _ in range(12)]
    s = "".join
    return rng.choice(
        (
            f"({s(d[:3])}) {s(d[3:6])}-{s(d[6:10])}",  # US
            f"{s(d[:3])}-{s(d[3:6])}-{s(d[6:10])}",
            f"{s(d[:3])}.{s(d[3:6])}.{s(d[6:10])}",
            f"1-{s(d[:3])}-{s(d[3:6])}-{s(d[6:10])}",
            f"0{s(d[:2])} {s(d[2:6])} {s(d[6:10])}",  # UK 020 7946 0958
            f"07{s(d[:3])} {s(d[3:9])}",  # UK mobile
            f"0{s(d[:3])} {s(d[3:11])}",  # DE 0151 12345678
            f"0{d[0]} {s(d[1:3])} {s(d[3:5])} {s(d[5:7])} {s(d[7:9])}",  # FR
            f"+{rng.choice(_COUNTRIES)[0]} {s(d[:3])} {s(d[3:6])} {s(d[6:10])}",
            f"00{rng.choice(_COUNTRIES)[0]} {s(d[:4])} {s(d[4:11])}",
            f"1{s(d[:2])}-{s(d[2:6])}-{s(d[6:10])}",  # CN mobile 138-1234-5678
        )
    )


# --- disguised card numbers --------------------------------------------------------------------
#: issuer prefixes and lengths to draw real-looking card numbers from (every scheme of the policy)
_CARD_SHAPES = tuple((low, high, tuple(sorted(lengths))) for low, high, lengths, _ in pan.ISSUER_RANGES)
_SCRIPTS = (0x30, 0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1D7CE)  # ASCII, full-width, Arabic-Indic, ...
_SEPARATOR_RUNS = (
    " ",
    "  ",
    "    ",
    "\u00a0",
    "\u202f",
    "-",
    "--",
    " - ",
    ".",
    "/",
    " / ",
    "_",
    "\u2013",
    "\u200b",
    "\u3000",
)
_GROUPINGS_BY_LENGTH = {sum(g): g for g in pan.GROUPINGS}
_CONTEXTS = (
    "{}",
    "card {}",
    "pan:{}",
    "po_{}",
    "{} 12/28",
    "{} 12/28 123",
    "1 {}",
    "my card is {}, thanks",
    "{}@example.com",
)


def card_number(rng: random.Random) -> str:
    """A Luhn-valid number in a scheme's issuer range, of a length that scheme issues."""
    low, high, lengths = rng.choice(_CARD_SHAPES)
    prefix = str(rng.randrange(int(low), int(high) + 1)).zfill(len(low))
    length = rng.choice(lengths)
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if pan.luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always passes Luhn")


def disguised_card_number(rng: random.Random) -> str:
    digits = card_number(rng)
    grouping = _GROUPINGS_BY_LENGTH.get(len(digits))
    if len(digits) == 16 and rng.random() < 0.3:
        grouping = (8, 8)
    if grouping and rng.random() < 0.8:
        groups, at = [], 0
        for size in grouping:
            groups.append(digits[at : at + size])
            at += size
        separator = rng.choice(_SEPARATOR_RUNS)
        digits = separator.join(groups)
    base = rng.choice(_SCRIPTS)
    written = "".join(chr(base + int(c)) if c.isdigit() else c for c in digits)
    return rng.choice(_CONTEXTS).format(written)


#: words people glue a card number to, before and after it ("cc" is left out: "cc" and a 14-digit
#: Diners number make a 16-character hex word, the shape of a 64-bit random id, which the policy lets through)
_GLUED_CONTEXTS = (
    "card{}",
    "Card{}",
    "CARD{}",
    "visa{}exp1226",
    "x{}y",
    "pan{}",
    "number{}cvv123",
    "{}exp",
    "{}expires1228",
    "mycard{}thanks",
    "\u30ab\u30fc\u30c9{}",  # katakana "card"
    "karte{}",
)


def glued_card_number(rng: random.Random) -> str:
    """A card number written contiguously and glued to a word, in any digit script."""
    base = rng.choice(_SCRIPTS)
    written = "".join(chr(base + int(c)) for c in card_number(rng))
    return rng.choice(_GLUED_CONTEXTS).format(written)


#: words glued to the first or the last group of a printed grouping: each holds a letter that is no hex digit
_GROUPED_GLUED_CONTEXTS = (
    "card{}",
    "Card:{}",
    "CARD{}",
    "visa{}",
    "Visa{}exp1226",
    "pan{}",
    "{}exp",
    "{}expires1228",
    "mycard{}thanks",
    "\u30ab\u30fc\u30c9{}",  # katakana "card"
    "karte{}",
    "number{}cvv",
)


def grouped_glued_card_number(rng: random.Random) -> str:
    """A card number in one of its printed groupings, with any separator run and digit script, its first
    or last group glued to a word (``card4111 1111 1111 1111``, ``Visa4111-1111-1111-1111exp1226``)."""
    while True:
        digits = card_number(rng)
        groupings = [g for g in pan.GROUPINGS if sum(g) == len(digits)]
        if groupings:
            break
    groups, at = [], 0
    for size in rng.choice(groupings):
        groups.append(digits[at : at + size])
        at += size
    base = rng.choice(_SCRIPTS)
    written = "".join(chr(base + int(c)) if c.isdigit() else c for c in rng.choice(_SEPARATOR_RUNS).join(groups))
    return rng.choice(_GROUPED_GLUED_CONTEXTS).format(written)


SHAPES: dict[str, Generator] = {
    "UUIDv4": uuid4,
    "UUIDv7": uuid7,
    "UUIDv4 without dashes": uuid4_hex,
    "ULID": ulid,
    "SHA-1 hex digest": sha1_hex,
    "SHA-256 hex digest": sha256_hex,
    "64-bit hex id": hex64,
    "ISO 8601 timestamp": iso_timestamp,
    "date-stamped id": date_stamped_id,
    "invoice-like id": invoice_id,
    "E.164 phone number": e164,
    "national phone number": national_phone,
    DISGUISED: disguised_card_number,
    GLUED: glued_card_number,
    GROUPED_GLUED: grouped_glued_card_number,
}


# --- the policies --------------------------------------------------------------------------------
def baseline_policy(revision: str) -> types.ModuleType | None:
    """payments/kernel/pan.py as of ``revision`` (``git show``), or None if git cannot read it."""
    try:
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:payments/kernel/pan.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType(f"pan_{revision}")
    exec(compile(source, f"{revision}:payments/kernel/pan.py", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


def refusals(check: Callable[[str], bool], generate: Generator, n: int, seed: int) -> tuple[int, list[str]]:
    """How many of ``n`` generated values ``check`` refuses, and up to 3 examples (not card numbers)."""
    rng = random.Random(seed)
    refused, examples = 0, []
    for _ in range(n):
        value = generate(rng)
        if check(value):
            refused += 1
            if len(examples) < 3:
                examples.append(value)
    return refused, examples


def _request(rng: random.Random) -> tuple[dict[str, Any], str, str]:
    """A 3-order checkout body, its Idempotency-Key and its path, as the guard sees them."""
    orders = [
        {
            "payment_order_id": f"po_{ulid(rng).lower()}",
            "seller_account": f"seller_{rng.randrange(10**6)}",
            "amount": f"{rng.randrange(1, 10**5)}.{rng.randrange(100):02d}",
            "currency": "USD",
        }
        for _ in range(3)
    ]
    body = {
        "checkout_id": f"chk_{ulid(rng).lower()}",
        "buyer_info": {"buyer_id": f"buyer_{rng.randrange(10**6)}", "email": "shopper@example.com"},
        "payment_method": {"type": "card", "token": "tok_visa"},
        "payment_orders": orders,
    }
    return body, uuid4(rng), "/v1/payments"


def per_request_us(policy: Any, requests: list[tuple[dict[str, Any], str, str]]) -> float:
    """CPU microseconds of the guard's card-number checks per request (body, key, path)."""
    started = time.process_time()  # CPU time: the machine is shared
    for body, key, path in requests:
        policy.find_pans(body)
        policy.contains_pan(key)
        policy.contains_pan(path)
    return (time.process_time() - started) / len(requests) * 1e6


def run(n: int, seed: int = 2026, baseline: str | None = "7374d8a", cost_runs: int = 7) -> dict[str, Any]:
    """Refusals per shape (new policy, and the baseline's on at most 10^5 values), and the per-request cost."""
    old = baseline_policy(baseline) if baseline else None
    old_n = min(n, BASELINE_MAX_N)
    shapes: dict[str, Any] = {}
    for index, (name, generate) in enumerate(SHAPES.items()):
        started = time.perf_counter()
        refused, examples = refusals(pan.contains_pan, generate, n, seed + index)
        row: dict[str, Any] = {"n": n, "refused": refused, "seconds": time.perf_counter() - started}
        if name not in CARDS:
            row["examples"] = examples
        if old is not None:
            row["baseline_n"] = old_n
            row["baseline_refused"] = refusals(old.contains_pan, generate, old_n, seed + index)[0]
        shapes[name] = row
    rng = random.Random(seed)
    requests = [_request(rng) for _ in range(2_000 if n > QUICK_N else 200)]
    cost: dict[str, Any] = {"new_us": []}
    if old is not None:
        cost["baseline_us"] = []
    for _ in range(cost_runs):  # alternated: the machine is shared
        cost["new_us"].append(per_request_us(pan, requests))
        if old is not None:
            cost["baseline_us"].append(per_request_us(old, requests))
    return {"n": n, "seed": seed, "baseline": baseline if old is not None else None, "shapes": shapes, "cost": cost}


def misses(result: dict[str, Any]) -> list[str]:
    """The targets a result misses."""
    missed = []
    for name, row in result["shapes"].items():
        rate = row["refused"] / row["n"]
        if name in ZERO and row["refused"]:
            missed.append(f"{name}: {row['refused']} refused, target 0")
        elif name in RARE and rate > MAX_RARE_RATE:
            missed.append(f"{name}: {rate:.2e} refused, target <= {MAX_RARE_RATE:.0e}")
        elif name in CARDS and row["refused"] != row["n"]:
            missed.append(f"{name}: {row['n'] - row['refused']} let through, target 0")
    return missed


def report(result: dict[str, Any]) -> str:
    baseline = result["baseline"]
    head = f"| shape | n | refused | rate | target | {'baseline ' + baseline + ' (rate, n)' if baseline else ''} |"
    lines = [head, "|---|---|---|---|---|---|"]
    for name, row in result["shapes"].items():
        target = "0" if name in ZERO else f"<= {MAX_RARE_RATE:.0e}" if name in RARE else "100 %"
        old = (
            f"{row['baseline_refused'] / row['baseline_n']:.3%} of {row['baseline_n']:,}" if "baseline_n" in row else ""
        )
        lines.append(
            f"| {name} | {row['n']:,} | {row['refused']:,} | {row['refused'] / row['n']:.3%} | {target} | {old} |"
        )
    cost = result["cost"]
    new = median(cost["new_us"])
    line = f"per request (3-order checkout body, Idempotency-Key, path): {new:.1f} us"
    if "baseline_us" in cost:
        old_us = median(cost["baseline_us"])
        line += f", baseline {old_us:.1f} us ({new / old_us:.2f}x)"
    return "\n".join([*lines, "", line + f", median of {len(cost['new_us'])} alternated runs"])


#: the heading of this benchmark's section of docs/benchmarks.md (the suite's run.py keeps it when it rewrites the file)
DOC_SECTION = "## Card-number policy: refusals of honest values"


def doc_section(result: dict[str, Any], seconds: float) -> str:
    info = machine()
    when = dt.datetime.now(dt.UTC)
    return "\n".join(
        [
            DOC_SECTION,
            "",
            f"Run {when:%Y-%m-%d %H:%M} UTC, `python -m payments_dev.bench.pan_refusals --n {result['n']}` "
            f"({seconds / 60:.1f} min); machine: {info['cpu']}, {info['cores']} cores, {info['implementation']} "
            f"{info['python']}. Generated by that command with `--write`: do not edit by hand. Each shape is "
            "generated at random (seeded) in the forms clients send it (`payments_dev/bench/pan_refusals.py` "
            "says which); the disguised card numbers are real-looking numbers of every scheme of the policy, "
            "in every printed grouping, with runs of separators, other digit scripts and words around them, and "
            "written contiguously or in a printed grouping, glued to a word (`card4111111111111111`, "
            "`card4111 1111 1111 1111`). "
            "The baseline is the policy before (Luhn over any digit groups joined by up to three separators). "
            "The per-request cost is CPU time of the guard's card-number checks of one request (a 3-order "
            "checkout body, its Idempotency-Key, its path), the two policies alternated.",
            "",
            report(result),
            "",
        ]
    )


def write_section(section: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    if DOC_SECTION in text:
        start = text.index(DOC_SECTION)
        following = text.find("\n## ", start + len(DOC_SECTION))
        text = text[:start] + section + (text[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refusal rate of the card-number policy over honest values")
    parser.add_argument("--n", type=int, default=1_000_000, help="values per shape (default 10^6)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} values per shape (CI smoke)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--baseline", default="7374d8a", help="git revision of the policy to compare with, or 'none'")
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    n = QUICK_N if args.quick else args.n
    started = time.monotonic()
    result = run(n, args.seed, None if args.baseline == "none" else args.baseline, cost_runs=3 if args.quick else 7)
    print(report(result))
    if args.write:
        write_section(doc_section(result, time.monotonic() - started))
    for name, row in result["shapes"].items():
        if row.get("examples"):
            print(f"refused {name} (examples): {', '.join(row['examples'])}")
    missed = misses(result)
    for line in missed:
        print(f"TARGET MISSED: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
