"""Celery's repr texts read back: ``read_plain`` gives what ``literal_eval`` and
``JsonPolicy.plain`` give, or leaves the text to them; ``ReprReader`` remembers, bounded."""

from __future__ import annotations

import ast
import random
from typing import Any

import pytest

from ledger.contrib import celery_reprs
from ledger.contrib.celery_reprs import ReprReader, read_plain
from ledger.payloads import NOT_PLAIN, JsonPolicy

SAFEREPR = [
    "()", "(1,)", "(42, 'eur')", "[]", "[1, 2.5, -3, -0.0, 1e-05, True, False, None]", "{}", "{'retry': True}",
    "{'order': 42, 'total': 12.5, 'lines': [('sku-1', 2), ('sku-2', 1)]}", "'ok'", '"it\'s"', "None", "0",
    "-7", "18446744073709551615", "('é', '日本', 'say \"hi\"')", "[[[]]]", "{'a': {'b': {'c': ()}}}", " (1, 2) ",
    "(1)", "((1, 2))", "[1, 2,]", "{'a': 1, 'a': 2}", "{'a': 1,}",
]  # fmt: skip
"""Texts of plain data (what ``saferepr`` writes, and some Python reads the same way)."""
LEFT = [
    "", " ", "(,)", "[1,,2]", "{1, 2}", "{1: 'a'}", "{'a'}", "1, 2", "(1, 2", "[1, 2))", "b'x'", "u'x'", "'a' 'b'",
    "'a\\nb'", "'\\x00'", "'\\\\u0000'", "'a\x00b'", "'\ud83d\ude00'", "1e999", "[-1e999]", "18446744073709551616",
    "9" * 5000, "1j", "0x10", "1_000", "01", "1.", ".5", "- 1", "+1", "-(1)", "NaN", "true", "null", "Ellipsis",
    "<Order 7>", "{'when': datetime.datetime(2024, 1, 1, 0, 0)}", "\t1", "1\n", "[1,\n2]", "(1\u00a0)",
    "[" * 101 + "]" * 101, "[" * 300 + "]" * 300,
]  # fmt: skip
"""Texts ``read_plain`` leaves to ``literal_eval``: no literal, not plain, or beyond it."""


def _ruled(text: str) -> Any:
    """The rule itself: ``literal_eval``, then ``JsonPolicy.plain``."""
    try:
        return JsonPolicy.plain(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return NOT_PLAIN


@pytest.mark.parametrize("text", SAFEREPR)
def test_texts_of_plain_data_are_read_as_the_rule_reads_them(text: str) -> None:
    value = read_plain(text)
    assert value is not NOT_PLAIN and repr(value) == repr(_ruled(text))


@pytest.mark.parametrize("text", LEFT)
def test_other_texts_are_left_to_the_rule(text: str) -> None:
    assert read_plain(text) is NOT_PLAIN


def test_random_texts_are_read_as_the_rule_reads_them_or_left_to_it() -> None:
    atoms = ["0", "-0", "01", "1.5", "-0.0", "1e5", "1e999", "1.", "1_0", "1j", "18446744073709551616", "True",
             "None", "true", "NaN", "'a'", "''", '""', "'it''s'", '"it\'s"', "'\\n'", "'é'", "'\x7f'", "'\t'",
             "b'x'", "x", "'('", "'{'", "..."]  # fmt: skip
    rng = random.Random(16)

    def text(depth: int = 0) -> str:
        if depth > 3 or rng.random() < 0.4:
            return rng.choice(atoms)
        opener, closer = rng.choice(["()", "[]", "{}"])
        pair = opener == "{" and rng.random() < 0.8
        items = [f"{text(depth + 1)}: {text(depth + 1)}" if pair else text(depth + 1) for _ in range(rng.randint(0, 3))]
        return opener + rng.choice([", ", ",", " ,", ",,"]).join(items) + rng.choice(["", ",", " "]) + closer

    read = 0
    for _ in range(5000):
        sample = text()
        value = read_plain(sample)
        if value is not NOT_PLAIN:
            read += 1
            assert repr(value) == repr(_ruled(sample)), sample
    assert read > 500  # the shortcut is taken, not only left


def test_the_reader_remembers_plain_values_only_and_boundedly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celery_reprs, "_REMEMBERED", 3)
    reader = ReprReader(JsonPolicy())
    assert [reader.read("result", f"[{i}]") for i in range(5)] == [[0], [1], [2], [3], [4]]
    assert list(reader._known) == ["[2]", "[3]", "[4]"]
    assert reader.read("result", "'" + "x" * 5000 + "'") == "x" * 5000  # too long to remember
    assert reader.read("result", "(1, b'x')") == "(1, b'x')"  # not JSON: the policy's fallback
    assert reader.read("result", "<Order 7>") == "<Order 7>"  # no literal: the text
    assert reader.read("result", (1, 2)) == [1, 2]  # no text: the policy's value
    assert list(reader._known) == ["[2]", "[3]", "[4]"]
    assert reader.read("result", "[2]") == [2] and list(reader._known) == ["[3]", "[4]", "[2]"]
