"""The trends rollup (``schema.series_counts``): counted transitions per minute, kept equal
to the same GROUP BY over ``task_event`` in the transaction that changes ``task_event``.

A batch adds the counts of the history rows it appends (the planner has already dropped
duplicate appends, and a redelivered batch is refused with its offsets, so nothing counts
twice) and subtracts those of the rows an expiry deletes; a minute whose count reaches 0
is removed. A rebuild writes the same batches' rows, so it gives the same counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from typing import Any

from sqlalchemy import Connection, Insert, Select, Table, delete, func, literal, select

from ledger.domain.series import COUNTED, epoch_seconds
from ledger.projections.schema import series_counts, task_event
from ledger.projections.sql import Database
from ledger.projections.store import HistoryRow

__all__ = ["MINUTE", "apply_counts", "expired_counts", "history_counts", "minute_of"]

MINUTE = 60
_COUNTED = frozenset(s.value for s in COUNTED)
_c = series_counts.c


def minute_of(database: Database, column: Any) -> Any:
    """A timestamp column's minute as the rollup keys it (whole seconds, floored to 60)."""
    return database.whole_seconds(column) // literal(MINUTE) * literal(MINUTE)


def history_counts(rows: Iterable[HistoryRow]) -> Counter[tuple[int, str]]:
    """(minute, status) → history rows of a counted status."""
    return Counter((epoch_seconds(r.occurred_at) // MINUTE * MINUTE, r.status) for r in rows if r.status in _COUNTED)


def counts_by_minute(database: Database) -> Select[Any]:
    """The GROUP BY over ``task_event`` the rollup equals (migration 0008 fills it with this)."""
    e = task_event.c
    minute = minute_of(database, e.occurred_at).label("minute")
    return select(minute, e.status, func.count()).where(e.status.in_(sorted(_COUNTED))).group_by(minute, e.status)


def expired_counts(conn: Connection, database: Database, task_ids: Collection[str]) -> Counter[tuple[int, str]]:
    """The counts of the history rows of ``task_ids`` (about to be deleted by an expiry)."""
    e = task_event.c
    minute = minute_of(database, e.occurred_at).label("minute")
    query = (
        select(minute, e.status, func.count())
        .where(database.members(e.task_id, task_ids), e.status.in_(sorted(_COUNTED)))
        .group_by(minute, e.status)
    )
    return Counter({(m, s): n for m, s, n in conn.execute(query)})


def apply_counts(conn: Connection, insert: Callable[[Table], Insert], deltas: Counter[tuple[int, str]]) -> None:
    """Add ``deltas`` (negative to subtract) to the rollup; drop minutes left at 0."""
    changed = [{"minute": m, "status": s, "count": n} for (m, s), n in sorted(deltas.items()) if n]
    if not changed:
        return
    statement = insert(series_counts)
    upsert = statement.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=[_c.minute, _c.status],
        set_={"count": _c.count + statement.excluded["count"]},  # type: ignore[attr-defined]
    )
    conn.execute(upsert, changed)
    if any(n < 0 for n in deltas.values()):
        conn.execute(delete(series_counts).where(_c.count == 0))
