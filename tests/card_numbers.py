"""Test helper: scan every DynamoDB table and every S3 object of a runtime for card numbers.

A finding is a card number in any form the request guard refuses
(:func:`payments.kernel.pan.contains_pan`: 13-19 digits in a scheme's issuer range passing Luhn,
contiguous or in a printed grouping with any separators, in any Unicode decimal digits). Findings
name the place (table, item key attribute names, attribute path; bucket and object key, cell),
never the digits.

The policy itself never takes the system's own timestamps, UUIDs, digests or ULIDs for card
numbers. Two kinds of value are still set aside, so the scan stays exact about everything a
client could have put there:

* ISO 8601 timestamps, hexadecimal digests of 32 or more characters and UUIDs are masked before
  the scan (a belt to the policy's braces: a change of the policy that started refusing them would
  show up in its own tests, not as a stored "card number" here);
* money attributes stored as numbers (``amount_minor``, totals, balances): sums of amounts,
  refused as card numbers at the edge only in the form the client wrote them.

CSV objects are scanned cell by cell (adjacent numeric columns are not one number); JSON
objects value by value; Parquet objects (the ledger's analytical copy) cell by cell through a
Parquet reader, never as the bytes of the file (its pages hold values side by side, with lengths
and other binary between them: read as text, two honest values can run into a "card number");
anything else line by line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from payments.kernel import aws
from payments.kernel.pan import contains_pan, walk

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_MONEY_NAME = re.compile(r"amount|total|debit|credit|balance|minor|sum|count|version|expiration|ttl", re.I)


def masked(text: str) -> str:
    """``text`` with the system's own timestamps, digests and UUIDs replaced by a letter."""
    for pattern in (_UUID, _TIMESTAMP, _HEX):
        text = pattern.sub("x", text)
    return text


def holds_card_number(text: str) -> bool:
    return contains_pan(masked(text))


def _walk_attribute(value: dict[str, Any], path: str, found: list[str]) -> None:
    ((kind, inner),) = value.items()
    name = path.rsplit(".", 1)[-1]
    if kind == "S":
        if holds_card_number(inner):
            found.append(path)
    elif kind == "SS":
        if any(holds_card_number(v) for v in inner):
            found.append(path)
    elif kind in ("N", "NS"):
        numbers = inner if kind == "NS" else [inner]
        if not _MONEY_NAME.search(name) and any(holds_card_number(n) for n in numbers):
            found.append(path)
    elif kind == "B":
        if holds_card_number(bytes(inner).decode("utf-8", "replace")):
            found.append(path)
    elif kind == "L":
        for index, item in enumerate(inner):
            _walk_attribute(item, f"{path}[{index}]", found)
    elif kind == "M":
        for key, item in inner.items():
            if holds_card_number(key):
                found.append(f"{path}.(key)")
            else:
                _walk_attribute(item, f"{path}.{key}", found)


def scan_tables() -> list[str]:
    """``table: item #n: attribute path`` of every stored string that holds a card number."""
    ddb = aws.client("dynamodb")
    found: list[str] = []
    for page in ddb.get_paginator("list_tables").paginate():
        for table in page["TableNames"]:
            for items in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                for number, item in enumerate(items["Items"]):
                    places: list[str] = []
                    for attribute, value in item.items():
                        if holds_card_number(attribute):
                            places.append("(attribute name)")
                        else:
                            _walk_attribute(value, attribute, places)
                    found.extend(f"{table}: item #{number}: {place}" for place in places)
    return found


def _parquet_places(key: str, data: bytes) -> list[str]:
    """``key: row n column name`` of every cell of a Parquet object that holds a card number (numbers in
    money columns set aside, as in the tables)."""
    import tempfile

    import duckdb

    with tempfile.NamedTemporaryFile(suffix=".parquet") as handle:
        handle.write(data)
        handle.flush()
        path = handle.name.replace("'", "''")
        with duckdb.connect(":memory:") as con:
            cursor = con.execute(f"SELECT * FROM read_parquet('{path}')")  # noqa: S608 - our temporary file
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
    found = []
    for number, row in enumerate(rows, start=1):
        for name, value in zip(names, row, strict=True):
            if value is None or (isinstance(value, int | float) and _MONEY_NAME.search(name)):
                continue
            if holds_card_number(str(value)):
                found.append(f"{key}: row {number} column {name}")
    return found


def _text_places(key: str, text: str) -> list[str]:
    if key.endswith(".json"):
        try:
            document = json.loads(text)
        except ValueError:
            pass
        else:
            # the request guard's own walk over keys and values
            return [f"{key}: {where}" for where, value in walk(document) if holds_card_number(value)]
    if key.endswith(".csv"):
        return [
            f"{key}: line {line} column {column}"
            for line, row in enumerate(csv.reader(io.StringIO(text)), start=1)
            for column, cell in enumerate(row, start=1)
            if holds_card_number(cell)
        ]
    return [f"{key}: line {line}" for line, row in enumerate(text.splitlines(), start=1) if holds_card_number(row)]


def scan_buckets() -> list[str]:
    """``bucket/key: place`` of every S3 object (or object key) that holds a card number."""
    s3 = aws.client("s3")
    found: list[str] = []
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if holds_card_number(key):
                    found.append(f"{name}: an object key")
                    continue
                data = s3.get_object(Bucket=name, Key=key)["Body"].read()
                places = (
                    _parquet_places(key, data)
                    if key.endswith(".parquet")
                    else _text_places(key, data.decode("utf-8", "replace"))
                )
                found.extend(f"{name}/{place}" for place in places)
    return found


def scan_runtime() -> list[str]:
    """Every place in every table and bucket of the current AWS endpoint that holds a card number."""
    return scan_tables() + scan_buckets()
