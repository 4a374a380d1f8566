"""The history reader on the embedded SQLite views file, on its own connection with
``query_only`` on, so time travel can never write to the views (WAL mode: it never blocks
the projector either).

``status_counts_as_of`` is one query: ``ROW_NUMBER()`` over each task's events in rank
order picks the top one by then, and a GROUP BY counts. Index 0002 covers every column it
reads, in (task_id, attempt) order.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from ledger.domain.statuses import TaskStatus
from ledger.projections.columns import TASK_EVENT_COLUMNS, history_from_row, utc_text
from ledger.projections.history import HistoryReader, precedence_sql
from ledger.projections.sqlite_files import FileIdentity, connect_views, file_identity
from ledger.projections.store import HistoryRow

__all__ = ["SqliteHistoryReader"]

_COLUMNS = ", ".join(f'"{c}"' for c in TASK_EVENT_COLUMNS)
_TASK_EVENTS = (
    f"SELECT {_COLUMNS} FROM task_event WHERE task_id = :task_id "
    'AND (:until IS NULL OR occurred_at <= :until) ORDER BY partition, "offset"'
)
# Timestamps are fixed-width UTC text (columns.utc_text): text order is time order, and
# event ids are canonical lowercase UUID text, which orders as the domain's UUID compare.
STATUS_COUNTS_AS_OF = (
    "SELECT status, count(*) FROM (SELECT status, ROW_NUMBER() OVER (PARTITION BY task_id "
    f"ORDER BY attempt DESC, {precedence_sql('status')} DESC, occurred_at DESC, event_id DESC) AS top "
    "FROM task_event WHERE occurred_at <= :at AND status IS NOT NULL) WHERE top = 1 GROUP BY status"
)


class SqliteHistoryReader(HistoryReader):
    """Reads ``task_event`` of the views file at ``path`` (which must exist with its tables,
    else ``ViewsNotCreated``: a reader that created an empty file would answer "no tasks"
    instead of "wrong path"). Reopens the file when a rebuild replaced it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._identity: FileIdentity = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is not None and file_identity(self.path) != self._identity:
            self.close()
        if self._conn is None:
            identity = file_identity(self.path)
            conn = connect_views(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._conn, self._identity = conn, identity
        return self._conn

    def _task_events(self, task_id: str, until: datetime | None) -> list[HistoryRow]:
        rows = self.conn.execute(_TASK_EVENTS, {"task_id": task_id, "until": until and utc_text(until)})
        return [history_from_row(r, periodic=False) for r in rows]

    def _status_counts_as_of(self, at: datetime) -> dict[TaskStatus, int]:
        rows = self.conn.execute(STATUS_COUNTS_AS_OF, {"at": utc_text(at)})
        return {TaskStatus(s): n for s, n in rows}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
