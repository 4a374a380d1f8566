"""The history reader on PostgreSQL (psycopg2), on its own read-only autocommit connection
so a long as-of scan neither holds the projector's connection nor sits idle in a
transaction.

``status_counts_as_of`` is one ``DISTINCT ON`` query: per task the top-ranked event by
then, then a GROUP BY. Index 0002 (task_id, attempt, occurred_at) INCLUDE (status,
event_id) lets it read the events presorted by (task_id, attempt) from the index alone;
only the few events of one task's latest attempt are sorted further.
"""

from __future__ import annotations

from datetime import datetime

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from ledger.domain.statuses import TaskStatus
from ledger.projections.columns import TASK_EVENT_COLUMNS, history_from_row
from ledger.projections.history import HistoryReader, precedence_sql
from ledger.projections.store import HistoryRow, ViewStoreUnavailable

__all__ = ["PostgresHistoryReader"]

_COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in TASK_EVENT_COLUMNS)
_TASK_EVENTS = sql.SQL(
    'SELECT {} FROM task_event WHERE task_id = %(task_id)s AND (%(until)s::timestamptz IS NULL '
    'OR occurred_at <= %(until)s) ORDER BY partition, "offset"'
).format(_COLUMNS)
# task_id DESC as well: a backward scan of the 0002 index then yields every sort key but the
# precedence presorted, and DISTINCT ON only needs task_id first, in either direction.
STATUS_COUNTS_AS_OF = (
    "SELECT status, count(*) FROM (SELECT DISTINCT ON (task_id) status FROM task_event "
    "WHERE occurred_at <= %(at)s AND status IS NOT NULL "
    f"ORDER BY task_id DESC, attempt DESC, {precedence_sql('status')} DESC, occurred_at DESC, event_id DESC"
    ") AS top GROUP BY status"
)


class PostgresHistoryReader(HistoryReader):
    """Reads ``task_event`` in ``schema`` (the views' schema, or a rebuild's)."""

    def __init__(self, dsn: str, schema: str = "ledger", *, connect_timeout: int = 10) -> None:
        self.dsn, self.schema = dsn, schema
        self._connect_timeout = connect_timeout
        self._conn: psycopg2.extensions.connection | None = None

    @property
    def conn(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg2.connect(self.dsn, connect_timeout=self._connect_timeout)
            except psycopg2.OperationalError as exc:
                where = psycopg2.extensions.parse_dsn(self.dsn)
                target = f"{where.get('host', 'localhost')}:{where.get('port', 5432)}/{where.get('dbname', '')}"
                raise ViewStoreUnavailable(f"PostgreSQL at {target} is not reachable: {exc}".strip()) from exc
            conn.set_session(readonly=True, autocommit=True)
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            self._conn = conn
        return self._conn

    def _task_events(self, task_id: str, until: datetime | None) -> list[HistoryRow]:
        with self.conn.cursor() as cur:
            cur.execute(_TASK_EVENTS, {"task_id": task_id, "until": until})
            return [history_from_row(r, periodic=False) for r in cur.fetchall()]

    def _status_counts_as_of(self, at: datetime) -> dict[TaskStatus, int]:
        with self.conn.cursor() as cur:
            cur.execute(STATUS_COUNTS_AS_OF, {"at": at})
            return {TaskStatus(s): n for s, n in cur.fetchall()}

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None
