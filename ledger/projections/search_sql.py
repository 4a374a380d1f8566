"""The queries of one page of a free-text search, written once for both databases.

The rule (``domain.search``) is one condition per term on the stored document
(``Database.contains``); what differs is only how an index proposes candidates. A page is
tried two ways, in order, and both give exactly the rows the rule selects in list order:

1. a *probe*: the next ``PROBE_ROWS`` rows in list order that meet the other filters, and
   among them those whose document holds every term. A search that matches many tasks
   fills a page there, at a bounded cost whatever the database estimates;
2. else the whole query, the index proposing candidates: the terms are rare among recent
   tasks, so the candidates are few (or the other filters are what is selective).

Why not leave the choice to the planner: PostgreSQL multiplies the estimates of two terms
as if independent ("card" and "number" always come together), and then sorts tens of
thousands of matches for one page (180 ms at 1M rows, against 3 ms for the walk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, FromClause, Select, UnaryExpression, select

from ledger.projections.schema import task_meta
from ledger.projections.sql import TASK_COLUMNS, Database
from ledger.projections.store import TaskOrder

__all__ = ["PROBE_ROWS", "ordered", "search_pages"]

PROBE_ROWS: Final = 5000
"""Rows the probe reads at most: a few milliseconds; a search matching 1 % of tasks fills a page there."""


def ordered(table: FromClause, order: TaskOrder) -> tuple[UnaryExpression[Any], ...]:
    """The ORDER BY of a listing in ``order`` over ``table`` (``task_meta`` or a subquery of
    it): its key, then the task id, in one direction, as the indexes hold them."""
    key, task_id = table.c[order.key], table.c.task_id
    return (key.desc(), task_id.desc()) if order.descending else (key.asc(), task_id.asc())


def search_pages(database: Database, terms: Sequence[str], clauses: Sequence[ColumnElement[bool]],
                 limit: int, order: TaskOrder) -> list[Select[Any]]:  # fmt: skip
    """The probe, then the whole query, in ``order``: run them in order until one returns
    ``limit`` rows (the last one's answer stands however many it returns)."""
    t = task_meta.c
    walk = (
        select(*TASK_COLUMNS, t.search_text).where(*clauses)
        .order_by(*ordered(task_meta, order)).limit(max(PROBE_ROWS, limit)).subquery("walk")
    )  # fmt: skip
    probe = (
        select(*(walk.c[column.name] for column in TASK_COLUMNS))
        .where(*(database.contains(walk.c.search_text, term) for term in terms))
        .order_by(*ordered(walk, order)).limit(limit)
    )  # fmt: skip
    candidates = database.text_candidates(terms)
    whole = (
        select(*TASK_COLUMNS)
        .where(*clauses, *([candidates] if candidates is not None else []),
               *(database.contains(t.search_text, term) for term in terms))
        .order_by(*ordered(task_meta, order)).limit(limit)
    )  # fmt: skip
    return [probe, whole]
