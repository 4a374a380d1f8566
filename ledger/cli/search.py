"""What ``ledger tasks`` adds for search: ``--kwarg KEY=VALUE`` pairs and the search part of
its filter, each checked by the domain's rule (``domain.search``) under the option's name."""

from __future__ import annotations

from typing import Any, Final

from ledger.domain.search import Scalar, check_kwarg, check_runtimes, kwarg_value, search_terms

__all__ = ["KWARG_HELP", "SEARCH_HELP", "search_fields"]

SEARCH_HELP: Final = "free text: every term (3+ characters) in id, name, args, kwargs, result or exception, any case"
KWARG_HELP: Final = "KEY=VALUE the kwargs hold, e.g. user_id=42 (a JSON scalar, else text; repeatable)"


def parse_kwargs(pairs: list[str], option: str = "--kwarg") -> tuple[tuple[str, Scalar], ...]:
    """``["user_id=42", "plan=pro"]`` → ``(("user_id", 42), ("plan", "pro"))``."""
    parsed = []
    for pair in pairs:
        key, separator, raw = pair.partition("=")
        if not separator:
            raise ValueError(f"{option}: expected KEY=VALUE, e.g. user_id=42, got {pair!r}")
        parsed.append(check_kwarg(key, kwarg_value(raw, option), option))
    return tuple(parsed)


def search_fields(text: str | None, kwargs: list[str] | None, runtime_above: float | None,
                  runtime_below: float | None) -> dict[str, Any]:  # fmt: skip
    """The ``TaskFilter`` fields of the search options, with errors naming the options."""
    if text is not None:
        search_terms(text, "--search")
    check_runtimes(runtime_above, runtime_below, ("--runtime-above", "--runtime-below"))
    return {"text": text, "kwargs": parse_kwargs(kwargs or []), "runtime_above": runtime_above,
            "runtime_below": runtime_below}  # fmt: skip
