"""The search parameters of ``GET /tasks`` (free text ``q``, ``kwarg.<key>=<value>``, queue,
root, parent, runtime bounds, retried), as one dependency: each is checked by the domain's
rule (``domain.search``) and a bad one is a 422 naming it, like every other parameter."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Depends, Query, Request
from pydantic import AfterValidator

from ledger.domain.search import check_kwarg, check_runtimes, kwarg_value, search_terms
from ledger.http.params import Text, invalid

__all__ = ["KWARG_PREFIX", "SearchDep"]

KWARG_PREFIX: Final = "kwarg."


def _text(value: str) -> str:
    search_terms(value, "q")
    return value


_Q: Final = (
    "free text: every term (3+ characters) occurs, any case, in the task's id, name, args, kwargs, result or exception"
)
SearchText = Annotated[str, AfterValidator(_text)]
Seconds = Annotated[float | None, Query(ge=0, allow_inf_nan=False, description="seconds, a strict bound")]


def search_params(
    request: Request,
    q: Annotated[SearchText | None, Query(description=_Q)] = None,
    queue: Text | None = None,
    root_id: Text | None = None,
    parent_id: Text | None = None,
    runtime_above: Seconds = None,
    runtime_below: Seconds = None,
    retried: Annotated[bool, Query(description="only tasks that retried at least once")] = False,
) -> dict[str, Any]:
    """``kwarg.<key>=<value>`` parameters are read from the query string itself (their names
    vary): the value is a JSON scalar when it reads as one (``42``, ``true``, ``"42"``), else text."""
    kwargs: list[tuple[str, Any]] = []
    for name, raw in request.query_params.multi_items():
        if name.startswith(KWARG_PREFIX):
            try:
                kwargs.append(check_kwarg(name.removeprefix(KWARG_PREFIX), kwarg_value(raw, name), name))
            except ValueError as exc:
                raise invalid(("query", name), str(exc), raw) from None
    try:
        check_runtimes(runtime_above, runtime_below, ("runtime_above", "runtime_below"))
    except ValueError as exc:
        raise invalid(("query", "runtime_below"), str(exc), runtime_below) from None
    return {"text": q, "kwargs": tuple(kwargs), "queue": queue, "root_id": root_id, "parent_id": parent_id,
            "runtime_above": runtime_above, "runtime_below": runtime_below, "retried": retried}  # fmt: skip


SearchDep = Annotated[dict[str, Any], Depends(search_params)]
