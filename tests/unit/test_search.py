"""The search rules (``domain.search``): the document, the terms, the kwarg values, and the
one-line errors every entry point shows."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.search import kwarg_value, search_document, search_terms
from ledger.projections.store import TaskFilter


def test_the_document_holds_each_field_on_its_own_line_case_folded() -> None:
    document = search_document("ID-1", "App.Add", [1, "É"], {"b": 2, "a": None}, {"ok": True}, "KeyError", "Boom")
    assert document == 'id-1\napp.add\n[1,"é"]\n{"a":null,"b":2}\n{"ok":true}\nkeyerror\nboom'
    assert search_document("t", None, None, None, None, None, None) == "t\n\n\n\n\n\n"


def test_terms_are_split_on_whitespace_folded_and_deduplicated() -> None:
    assert search_terms("  Timeout\tUSER timeout  Straße", "q") == ("timeout", "user", "strasse")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("42", 42), ("4.5", 4.5), ("true", True), ("null", None), ('"42"', "42"), ("alice", "alice"), ("", "")],
)
def test_a_kwarg_value_reads_as_a_json_scalar_or_else_as_text(raw: str, value: object) -> None:
    assert kwarg_value(raw, "--kwarg") == value and type(kwarg_value(raw, "--kwarg")) is type(value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"text": "ab"}, "text: each term needs at least 3 characters, got 'ab'"),
        ({"text": "   "}, "text: needs at least one term"),
        ({"text": "a\x00bc"}, "text: must not contain NUL"),
        ({"kwargs": (("user-id", 1),)}, "kwargs: the key must be a Python identifier"),
        ({"kwargs": (("k", [1]),)}, "kwargs: only a scalar can be matched"),
        ({"kwargs": (("k", float("nan")),)}, "kwargs: the value must be a finite number"),
        ({"runtime_above": -1.0}, "runtime_above: must be a number of seconds, 0 or more"),
        ({"runtime_above": 2.0, "runtime_below": 2.0}, "runtime_below: must be greater than runtime_above"),
    ],
)
def test_a_filter_breaking_a_rule_names_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        TaskFilter(**fields)


def test_cli_and_http_names_appear_in_their_messages() -> None:
    with pytest.raises(ValueError, match=r"^q: at most 10 terms, got 11$"):
        search_terms(" ".join(f"term{i}" for i in range(11)), "q")
    with pytest.raises(ValueError, match=r"^kwarg.user_id: only a scalar can be matched"):
        kwarg_value("[42]", "kwarg.user_id")
