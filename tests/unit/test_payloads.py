"""JsonPolicy: the shortcut for values already made of JSON types gives exactly what the
round trip through ``json`` gives, and leaves every other value to it."""

from __future__ import annotations

import logging
from collections import OrderedDict, namedtuple
from decimal import Decimal
from enum import IntEnum
from typing import Any

import pytest

from ledger.payloads import NOT_PLAIN, JsonPolicy, NotSerializable


class Colour(IntEnum):
    RED = 1


class Text(str):
    pass


Point = namedtuple("Point", "x y")


def _nested(levels: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(levels):
        value = [value]
    return value


def _circular() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


PLAIN: list[Any] = [
    None, True, False, 0, -1, 2**63, -(2**63), 10**30, 1.5, -0.0, [-0.0], 1e308, "", "text", "é日本",
    (1, 2), [(1, (2, (3,)))], ((),), {"a": (1,)}, {"a": [1, {"b": None}], "c": "é"}, [], {}, [[]],
    _nested(50), {"k": [True, 0, 0.0, "0"]},
]  # fmt: skip
"""Made of JSON types: the shortcut answers, with what the round trip answers."""
ROUND_TRIP: list[Any] = [
    [10**30], [10**5000], float("nan"), [float("nan")], float("inf"), [float("-inf")], {"a": 1e309 * 0},
    "a\x00b", ["a\x00b"], {"k\x00": "v"}, {"k": "v\x00"}, ["\\u0000"], {"\\u0000": 1},
    ["\ud83d\ude00"], ["\ud800"], {"\ud83d\ude00": 1},
    {1: "a", "1": "b"}, {None: 1, True: 2, False: 3, 1.5: 4, 2: 5}, {float("nan"): 1}, {(1,): 2},
    {1, 2}, [{1, 2}], b"x", [b"x"], Decimal("1.5"), [Decimal("1.5")], 1j, {"x": 1j}, object(),
    [Colour.RED], {Colour.RED: 1}, Point(1, 2), [Point(1, 2)], Text("x"), [Text("x")], {Text("k"): 1},
    OrderedDict(a=1), [OrderedDict(a=1)], _nested(150), _circular(),
]  # fmt: skip
"""Everything the round trip decides: not JSON, changed by it, or beyond the shortcut."""


def _logged(caplog: pytest.LogCaptureFixture, call: Any) -> tuple[str, list[str]]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="ledger.sdk"):
        answer = call()
    return _shown(answer), [record.getMessage() for record in caplog.records]


def _shown(value: Any) -> str:
    """repr, with types (-0.0 and 0.0, 1 and 1.0 and True differ) and without an address."""
    return repr(value).split(" at 0x")[0]


@pytest.mark.parametrize("value", PLAIN + ROUND_TRIP)
def test_value_is_what_the_round_trip_gives(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    policy = JsonPolicy()
    assert _logged(caplog, lambda: policy.value("f", value)) == _logged(caplog, lambda: policy._round_trip("f", value))


@pytest.mark.parametrize("value", PLAIN)
def test_plain_values_skip_the_round_trip_and_are_copies(value: Any) -> None:
    plain = JsonPolicy.plain(value)
    assert plain is not NOT_PLAIN and _shown(plain) == _shown(JsonPolicy()._round_trip("f", value))
    if isinstance(value, list | tuple | dict) and value:
        assert plain is not value


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_other_values_are_left_to_the_round_trip(value: Any) -> None:
    assert JsonPolicy.plain(value) is NOT_PLAIN


def test_strict_mode_still_raises_for_what_the_round_trip_refuses() -> None:
    strict = JsonPolicy(strict=True)
    assert strict.value("f", {"a": (1, [2.5])}) == {"a": [1, [2.5]]}
    with pytest.raises(NotSerializable, match=r"^f: contains a NUL character"):
        strict.value("f", ["a\x00b"])
    with pytest.raises(NotSerializable, match=r"^f: dict is not JSON"):
        strict.value("f", {"x": float("inf")})


BACKSLASH = "\\"


@pytest.mark.parametrize(
    ("value", "stored", "warned"),
    [
        (["a\x00b"], ["a\ufffdb"], "a NUL character"),
        ({"k\x00": "v"}, {"k\ufffd": "v"}, "a NUL character"),
        ([f"a{BACKSLASH}u0000b"], [f"a{BACKSLASH}u0000b"], None),  # only spells a NUL: kept
        ([f"{BACKSLASH}\x00"], [f"{BACKSLASH}\ufffd"], "a NUL character"),  # a backslash, then a real NUL
        ([f"{BACKSLASH * 2}u0000"], [f"{BACKSLASH * 2}u0000"], None),
        (["\ud83d\ude00 ok"], ["\ufffd\ufffd ok"], "a surrogate"),
        ({"\ud800": ["x\udfff"]}, {"\ufffd": ["x\ufffd"]}, "a surrogate"),
        (["é日本😀"], ["é日本😀"], None),
    ],
)
def test_what_the_views_cannot_store_becomes_u_fffd_and_nothing_else_changes(
    value: Any, stored: Any, warned: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    answer, messages = _logged(caplog, lambda: JsonPolicy().value("f", value))
    assert answer == _shown(stored)
    assert messages == ([] if warned is None else [m for m in messages if m.startswith(f"ledger: f contains {warned}")])
    assert (warned is None) is (messages == [])


def test_strict_mode_refuses_a_surrogate() -> None:
    with pytest.raises(NotSerializable, match=r"^f: contains a surrogate \(no Unicode character\)"):
        JsonPolicy(strict=True).value("f", ["\ud800"])


def test_a_surrogate_in_a_celery_repr_no_longer_breaks_the_encoding() -> None:
    from ledger.codec import PLAIN
    from ledger.contrib.celery_events import CeleryEventTranslator
    from ledger.wire import encode

    event = CeleryEventTranslator().translate({"type": "task-succeeded", "uuid": "t1", "timestamp": 1.0,
                                               "hostname": "celery@h", "result": "'\\ud83d\\ude00!'"})  # fmt: skip
    assert event is not None and event.result == "\ufffd\ufffd!"
    assert "\ufffd\ufffd!" in encode(event, PLAIN).value.decode()
