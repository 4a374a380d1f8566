"""Failure fingerprints: what varies per occurrence is masked, what names the cause is not."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.failures import FINGERPRINT_LENGTH, fingerprint, is_fingerprint, mask_message


@pytest.mark.parametrize(
    ("message", "masked"),
    [
        ("order 42 not found", "order <n> not found"),
        ("took 3.25s, limit 2", "took <n>s, limit <n>"),
        ("no user 'alice@example.com'", "no user '<str>'"),
        ('key "a b" missing', "key '<str>' missing"),
        ("run 0f8fad5b-d9cb-469f-a165-70867728950e failed", "run <uuid> failed"),
        ("<Foo object at 0x7f3a2c1b9d30>", "<Foo object at <addr>>"),
        ("sha 9f86d081884c7d65 mismatch", "sha <n> mismatch"),
        ("at 2026-11-28T09:06:28.123+00:00 and 2026-11-28", "at <time> and <time>"),
        ("  lots \n of\tspace ", "lots of space"),
        (None, ""),
        ("ConnectionRefused", "ConnectionRefused"),
        ("batch 12345678 and ab12cd34", "batch <n> and <n>"),
        ("deadbeef is a word here", "deadbeef is a word here"),
    ],
)
def test_masks(message: str | None, masked: str) -> None:
    assert mask_message(message) == masked


def test_a_very_long_message_counts_by_its_head() -> None:
    head = "x" * 1000
    assert fingerprint("t", "E", head + "a") == fingerprint("t", "E", head + "b")


_quoted = st.text(alphabet=st.characters(blacklist_characters="'\\\n", blacklist_categories=("Cs",)), max_size=20)
_KINDS = (
    st.integers(min_value=0, max_value=10**12).map(str),
    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    st.uuids().map(str),
    st.integers(min_value=0, max_value=2**64).map(hex),
    _quoted.map(lambda s: f"'{s}'"),
    st.datetimes().map(lambda d: d.isoformat()),
)
# two values of one kind: an id is a number in every occurrence of a failure, or a uuid in each
_pairs = st.sampled_from(_KINDS).flatmap(lambda kind: st.tuples(kind, kind))
_TEMPLATES = (
    "order {} not found in batch {}",
    "timeout after {} seconds talking to {}",
    "cannot decode {}: unexpected byte at {}",
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_TEMPLATES), _pairs, _pairs)
def test_messages_differing_only_in_masked_parts_share_a_fingerprint(
    template: str, first: tuple[str, str], second: tuple[str, str]
) -> None:
    one = fingerprint("app.tasks.sync", "KeyError", template.format(first[0], second[0]))
    assert fingerprint("app.tasks.sync", "KeyError", template.format(first[1], second[1])) == one


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_a_different_type_or_name_is_a_different_group(message: str, one: str, other: str) -> None:
    if one != other:
        assert fingerprint("t", one, message) != fingerprint("t", other, message)
        assert fingerprint(one, "E", message) != fingerprint(other, "E", message)


def test_different_causes_are_different_groups() -> None:
    assert fingerprint("t", "KeyError", "order 1 not found") != fingerprint("t", "KeyError", "user 1 not found")
    assert fingerprint(None, "E", "m") == fingerprint("", "E", "m")


def test_fingerprints_are_short_stable_hex() -> None:
    value = fingerprint("app.tasks.sync", "KeyError", f"run {uuid.UUID(int=1)}")
    assert value == fingerprint("app.tasks.sync", "KeyError", f"run {uuid.uuid4()}")
    assert len(value) == FINGERPRINT_LENGTH and is_fingerprint(value)
    assert not is_fingerprint(value.upper()) and not is_fingerprint(value[:-1]) and not is_fingerprint("z" * 16)
