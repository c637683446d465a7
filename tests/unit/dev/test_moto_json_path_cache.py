"""moto's Step Functions engine parses each JSONPath once (payments_dev/local/moto_patches.py, part 6)."""

from __future__ import annotations

import copy

import jsonpath_ng
import jsonpath_ng.ext

from payments_dev.local import moto_patches

DATA = {
    "checkout_id": "chk_1",
    "payment_orders": [{"payment_order_id": "po_1"}, {"payment_order_id": "po_2"}],
    "result": {"status": "SUCCESS"},
}
PATHS = (
    "$",
    "$.checkout_id",
    "$.payment_orders",
    "$.payment_orders[0].payment_order_id",
    "$.payment_orders[*].payment_order_id",
    "$.result.status",
)


def test_extract_json_answers_as_before_and_parses_each_path_once() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    moto_patches.install()
    assert json_path.parse is not jsonpath_ng.ext.parse
    uncached = [_extract_with(jsonpath_ng.ext.parse, p) for p in PATHS]
    cached = [json_path.extract_json(p, copy.deepcopy(DATA)) for p in PATHS]
    assert cached == uncached
    assert json_path.parse(PATHS[1]) is json_path.parse(PATHS[1])


def test_result_path_writes_the_data_not_the_shared_path() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path

    moto_patches.install()
    first = result_path.parse("$.result").update_or_create({"a": 1}, {"status": "A"})
    second = result_path.parse("$.result").update_or_create({"a": 2}, {"status": "B"})
    assert (first, second) == ({"a": 1, "result": {"status": "A"}}, {"a": 2, "result": {"status": "B"}})
    assert result_path.parse("$.result") is result_path.parse("$.result")
    assert jsonpath_ng.parse("$.result").update_or_create({}, 1) == {"result": 1}


def _extract_with(parse, path: str):  # moto's extract_json with the uncached parser
    from moto.stepfunctions.parser.asl.utils import json_path

    real = json_path.parse
    json_path.parse = parse
    try:
        return json_path.extract_json(path, copy.deepcopy(DATA))
    finally:
        json_path.parse = real
