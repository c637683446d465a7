"""Every ``payments ...`` line of the docs' code blocks names a command that exists, with options it has.

Each such line of a fenced code block in README.md and docs/runbook.md is run as ``payments <command>
--help`` (in-process, the real parser): an unknown command fails the help itself (argparse's usage
error), and every ``--option`` the line shows must be in that help. Comments, placeholders and what
follows a pipe are left out.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from payments.ops.cli import main, parser

ROOT = Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", ROOT / "docs" / "runbook.md"]
#: where a shell line stops being the payments command
_ENDS = {"|", "||", "&&", ";", ">", ">>", "2>&1", "2>/dev/null"}
_FENCE = re.compile(r"^\s*```")
_COMMAND = re.compile(r"^\s*(?:\$\s+)?(?:\.venv/bin/)?payments(?:\s|$)")


def documented_lines() -> list[tuple[str, int, str]]:
    """(file, line number, text) of each ``payments ...`` command line inside a fenced code block."""
    found = []
    for doc in DOCS:
        inside = False
        for number, text in enumerate(doc.read_text().splitlines(), start=1):
            if _FENCE.match(text):
                inside = not inside
                continue
            if inside and _COMMAND.match(text):
                found.append((doc.relative_to(ROOT).as_posix(), number, text.strip()))
    return found


def words_and_options(line: str) -> tuple[list[str], list[str]]:
    """The command words (``attention``, ``resolve``) and the options (``--note``) of a documented line."""
    tokens: list[str] = []
    for token in shlex.split(line, comments=True)[1:]:
        if token in _ENDS:
            break
        tokens.append(token.strip("[]"))
    options = [t.split("=", 1)[0] for t in tokens if t.startswith("-")]
    words: list[str] = []
    current = parser()
    root_options = {s: a for a in current._actions for s in a.option_strings}
    rest = iter(tokens)
    for token in rest:
        if token.startswith("-"):
            if not words and token in root_options and root_options[token].nargs != 0:
                next(rest, None)  # a root option's value: payments --endpoint URL stuck
            continue
        subcommands = [a for a in current._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subcommands:
            break  # an argument (an id, a file): the command is complete
        words.append(token)  # an unknown one fails --help below
        chosen = subcommands[0].choices.get(token)  # type: ignore[union-attr]
        if chosen is None:
            break
        current = chosen
    return words, options


def help_of(words: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``payments WORDS --help``: its exit code, and what it printed (the help, or the usage error)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main([*words, "--help"])
    printed = capsys.readouterr()
    return int(ended.value.code or 0), printed.out + printed.err


def missing_options(words: list[str], options: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The options that neither ``payments WORDS --help`` nor ``payments --help`` shows."""
    shown = help_of(words, capsys)[1] + help_of([], capsys)[1]
    return [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", shown)]


LINES = documented_lines()


def test_the_docs_show_operator_commands() -> None:
    # the extraction itself: the README's operator block and the runbook's sections are found
    shown = {" ".join(words_and_options(text)[0]) for _, _, text in LINES}
    assert {"stuck", "attention resolve", "mismatches list", "mismatches resolve", "verify", "resume"} <= shown, shown
    assert {file for file, _, _ in LINES} == {"README.md", "docs/runbook.md"}


@pytest.mark.parametrize(("file", "number", "text"), LINES, ids=[f"{f}:{n}" for f, n, _ in LINES])
def test_each_documented_command_exists_with_its_options(
    file: str, number: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    words, options = words_and_options(text)
    code, printed = help_of(words, capsys)
    assert code == 0, f"{file}:{number}: payments {' '.join(words)} is no command: {printed}"
    unknown = missing_options(words, options, capsys)
    assert not unknown, f"{file}:{number}: payments {' '.join(words)} has no option {', '.join(unknown)}: {text}"


def test_an_unknown_command_or_option_fails_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    # a command that does not exist: its help is a usage error
    words, _ = words_and_options("payments mismatches close ID --note TEXT")
    assert words == ["mismatches", "close"] and help_of(words, capsys)[0] == 2
    # an option the command does not have (and a comment that is no part of the line)
    words, options = words_and_options(".venv/bin/payments stuck --older-than 15m --since 2h  # see --overdue-only")
    assert words == ["stuck"] and options == ["--older-than", "--since"]
    assert missing_options(words, options, capsys) == ["--since"]
    # a root option before the command, its value skipped; what follows a pipe left out
    words, options = words_and_options("payments --endpoint aws stuck --output json | jq .payments")
    assert words == ["stuck"] and options == ["--endpoint", "--output"]
    assert missing_options(words, options, capsys) == []
