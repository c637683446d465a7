"""The card-number refusal benchmark (payments_dev/bench/pan_refusals.py) runs, and fails when a target is missed."""

from __future__ import annotations

import pytest

from payments.kernel import pan
from payments_dev.bench import pan_refusals


def test_a_quick_run_meets_every_target_and_prints_every_shape(capsys: pytest.CaptureFixture[str]) -> None:
    # When the benchmark runs at its CI size, without the git baseline
    status = pan_refusals.main(["--n", "300", "--baseline", "none"])
    # Then every target is met and every shape has its row
    out = capsys.readouterr().out
    assert status == 0, out
    for shape in pan_refusals.SHAPES:
        assert f"| {shape} | 300 |" in out


def test_a_policy_that_refuses_honest_values_or_lets_a_card_through_misses_its_targets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a policy that refuses everything, and one that refuses nothing
    for policy, missed_shape in ((lambda text: True, "UUIDv4"), (lambda text: False, pan_refusals.DISGUISED)):
        monkeypatch.setattr(pan, "contains_pan", policy)
        # When measured / Then the run reports the missed target, and exits 1
        result = pan_refusals.run(50, baseline=None, cost_runs=1)
        assert any(line.startswith(missed_shape + ":") for line in pan_refusals.misses(result))
        assert pan_refusals.main(["--n", "50", "--baseline", "none"]) == 1


def test_every_disguised_card_number_is_a_card_number_of_the_policy() -> None:
    # Given the generator of disguised card numbers / Then each is Luhn-valid, in an issuer range, and found
    import random

    rng = random.Random(7)
    for _ in range(2_000):
        digits = pan_refusals.card_number(rng)
        assert pan.is_card_number(digits), digits
        assert pan.contains_pan(pan_refusals.disguised_card_number(rng))


def test_every_glued_card_number_is_a_card_number_glued_to_a_word() -> None:
    # Given the generator of card numbers glued to letters / Then each has a letter next to its digits,
    # and the policy finds it
    import random

    rng = random.Random(11)
    for _ in range(2_000):
        text = pan_refusals.glued_card_number(rng)
        assert any(c.isalpha() for c in text)
        assert pan.contains_pan(text), text


def test_a_policy_that_ignores_glued_card_numbers_misses_its_target(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a policy that lets a card number glued to letters through (the word is always "machine-made")
    monkeypatch.setattr(pan, "machine_random", lambda word: True)
    # When measured / Then the glued row misses its target, the disguised row does not
    missed = pan_refusals.misses(pan_refusals.run(200, baseline=None, cost_runs=1))
    assert any(line.startswith(pan_refusals.GLUED + ":") for line in missed), missed
    assert not any(line.startswith(pan_refusals.DISGUISED + ":") for line in missed), missed


def test_every_grouped_glued_card_number_is_a_printed_grouping_glued_to_a_word() -> None:
    # Given the generator of card numbers in a printed grouping glued to a word / Then each holds several digit
    # groups, and the policy finds it
    import random
    import re

    rng = random.Random(13)
    for _ in range(2_000):
        text = pan_refusals.grouped_glued_card_number(rng)
        assert len(re.findall(r"\d+", text)) >= 2 and any(c.isalpha() for c in text), text
        assert pan.contains_pan(text), text


def test_a_policy_that_never_joins_a_glued_group_to_a_grouping_misses_its_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a policy whose glued first and last groups never join a printed grouping
    monkeypatch.setattr(pan, "_joins_grouping", lambda text, start, end: False)
    # When measured / Then the grouped glued row misses its target, the disguised row does not
    missed = pan_refusals.misses(pan_refusals.run(200, baseline=None, cost_runs=1))
    assert any(line.startswith(pan_refusals.GROUPED_GLUED + ":") for line in missed), missed
    assert not any(line.startswith(pan_refusals.DISGUISED + ":") for line in missed), missed
