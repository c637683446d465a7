"""The simulated bank's answers against the ISO 20022 message models.

The official XSDs of pain.002.001.10 and camt.053.001.08 are not available as package data here; what is,
on PyPI, is ``pyiso20022``: dataclasses generated from those XSDs (element names and nesting, required
elements, types, code lists, lengths and patterns). Each file the bank writes is parsed strictly by
``xsdata`` into them (an unknown element or attribute, a missing required element or a value its type
refuses fails) and then checked against their constraints. Weaker than XSD validation in one respect:
the order of sibling elements is not checked.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

pyiso20022 = pytest.importorskip("pyiso20022")
pytest.importorskip("xsdata")

import pyiso20022.camt.camt_053_001_08 as camt053  # noqa: E402
import pyiso20022.pain.pain_002_001_10 as pain002  # noqa: E402
from xsdata.formats.dataclass.parsers import XmlParser  # noqa: E402
from xsdata.formats.dataclass.parsers.config import ParserConfig  # noqa: E402

from payments.payouts.bank.pain001 import Debtor, PayoutInstruction, write_payout_file  # noqa: E402
from payments.payouts.bank.simulated import (  # noqa: E402
    TEST_IBAN_PAID,
    TEST_IBAN_REJECTED,
    TEST_IBAN_RETURNED,
    MemoryBankStore,
    SimulatedBank,
)

PARSER = XmlParser(
    config=ParserConfig(
        fail_on_unknown_properties=True, fail_on_unknown_attributes=True, fail_on_converter_warnings=True
    )
)
DEBTOR = Debtor(name="Marketplace Ltd", iban="DE82370400440123456789", bic="COBADEFFXXX")
AT = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def _validator() -> Any:
    """pyiso20022's constraint check, loaded from its file: its package ``tools`` imports pandas and lxml
    for unrelated spreadsheet exports on import."""
    path = Path(pyiso20022.__file__).parent / "tools" / "validation.py"
    spec = importlib.util.spec_from_file_location("pyiso20022_validation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.validate_message


validate_message = _validator()


def conforms(content: bytes, model: Any) -> list[str]:
    document = PARSER.from_bytes(content, model.Document)
    result = validate_message(document, strict=True)
    return [f"{e.field_name}: {e.message}" for e in result.errors]


def payout(n: int, iban: str) -> PayoutInstruction:
    return PayoutInstruction(
        payout_id=f"pt_{n}",
        account_holder="Books Ltd",
        iban=iban,
        amount_minor=1000 * n,
        currency="EUR",
        remittance="r",
    )


@pytest.fixture
def bank_files() -> dict[str, bytes]:
    bank = SimulatedBank(MemoryBankStore(), DEBTOR, opening_minor=100_000)
    content = write_payout_file(
        "EUR",
        DEBTOR,
        "run-1",
        AT,
        date(2026, 12, 7),
        [payout(1, TEST_IBAN_PAID), payout(2, TEST_IBAN_REJECTED), payout(3, TEST_IBAN_RETURNED)],
    ).content
    files = {
        "pain002 answer": bank.receive(content, AT).content,
        "pain002 duplicate": bank.receive(content, AT).content,
        "pain002 refused file": bank.receive(content.replace(b"SLEV", b"NOPE"), AT).content,
    }
    files["camt053 debits"] = bank.close_day(date(2026, 12, 7))[1]
    files["camt053 return"] = bank.close_day(date(2026, 12, 8))[1]
    return files


def test_every_file_the_bank_writes_conforms_to_its_iso_model(bank_files: dict[str, bytes]) -> None:
    for name, content in bank_files.items():
        model = pain002 if name.startswith("pain002") else camt053
        assert conforms(content, model) == [], name


def test_the_check_fails_on_what_breaks_the_model(bank_files: dict[str, bytes]) -> None:
    answer = bank_files["pain002 answer"]
    # an element the message does not have
    with pytest.raises(Exception, match="Unknown property"):
        conforms(answer.replace(b"<TxSts>ACCP</TxSts>", b"<TxSts>ACCP</TxSts><Bogus/>", 1), pain002)
    # a required element missing (the group header's CreDtTm)
    with pytest.raises(TypeError, match="cre_dt_tm"):
        conforms(re.sub(rb"<CreDtTm>[^<]*</CreDtTm>", b"", answer, count=1), pain002)
    # a MsgId longer than Max35Text
    assert conforms(answer.replace(b"<MsgId>ST", b"<MsgId>" + b"X" * 40, 1), pain002) != []
