"""Row "query": ``get_task`` and a filtered list page through the query API on the built
views, next to a raw psycopg2 primary-key select, p50/p99.

The views of an N-event run hold about N/4.4 tasks; to measure at a realistic size the
table is topped up (default: to a million rows) with copies of its own rows under new task
ids, so the value distribution (statuses, names, workers, dates) stays the real one.
"""

from __future__ import annotations

import random
from typing import Any

import psycopg2
from psycopg2 import sql

from bench.runctx import BenchRun
from bench.stats import summary_ms, timed
from ledger.bootstrap import build_queries, build_view_reader
from ledger.domain.statuses import TaskStatus
from ledger.progress import Progress
from ledger.projections.store import TaskFilter
from ledger.simulate import TASK_NAMES

SAMPLES = 2000
WARM_UP = 200


_COPY_AS: dict[str, sql.Composable] = {
    "task_id": sql.SQL("t.task_id || '~' || g"),
    # the search document starts with the case-folded id (``domain.search``; bench ids are ASCII)
    "search_text": sql.SQL("lower(t.task_id || '~' || g) || substr(t.search_text, length(t.task_id) + 1)"),
}
"""How a copy's column differs from its original's; every other column is copied as is."""


def top_up(run: BenchRun, rows: int) -> dict[str, int]:
    """Bring ``task_meta`` to at least ``rows`` rows; returns the row counts. Columns are
    copied by name (whatever the migrations added), the id and what derives from it renewed."""
    conn = psycopg2.connect(run.dsn)
    table = sql.Identifier(run.schema, "task_meta")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
            (real,) = cur.fetchone() or (0,)
            copies = -(-max(0, rows - real) // max(real, 1))
            if copies:
                cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                            "AND table_name = 'task_meta' ORDER BY ordinal_position", (run.schema,))  # fmt: skip
                names = [name for (name,) in cur.fetchall()]
                values = [_COPY_AS.get(name, sql.SQL("t.") + sql.Identifier(name)) for name in names]
                insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} t, generate_series(1, %s) g LIMIT %s")
                columns = sql.SQL(", ").join(map(sql.Identifier, names))
                cur.execute(insert.format(table, columns, sql.SQL(", ").join(values), table), (copies, rows - real))
            cur.execute(sql.SQL("ANALYZE {}").format(table))
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
            (total,) = cur.fetchone() or (0,)
    finally:
        conn.close()
    return {"rows": total, "projected_rows": real}


def measure_queries(run: BenchRun, rows: int) -> dict[str, Any]:
    sizes = top_up(run, rows)
    ids = _sample_ids(run)
    store = build_view_reader(run.settings)
    queries = build_queries(run.settings, store)
    rng = random.Random(11)
    filters = [TaskFilter(statuses=(TaskStatus.FAILURE,)), TaskFilter(name=rng.choice(TASK_NAMES)),
               TaskFilter(statuses=(TaskStatus.DONE,), name=TASK_NAMES[0]), TaskFilter(worker="celery@worker-1"),
               TaskFilter()]  # fmt: skip
    pages = [filters[i % len(filters)] for i in range(SAMPLES // 4)]
    progress = Progress("query")
    progress.start(len(ids) * 2 + len(pages))
    try:
        get_task = timed(lambda i: queries.get_task(i), ids, WARM_UP, progress.update)
        raw = _raw_pk(run, ids, progress)
        listed = timed(lambda f: _two_pages(queries, f), pages, WARM_UP, lambda n: progress.update(2 * len(ids) + n))
    finally:
        progress.finish()
        store.close()
    return {**sizes, "get_task": summary_ms(get_task), "list_page": summary_ms(listed), "raw_pk": summary_ms(raw)}


def _two_pages(queries: Any, where: TaskFilter) -> None:
    """A first page, and the next one by its cursor: the two pages an operator sees."""
    page = queries.list_tasks(where, limit=50)
    if page.next_cursor:
        queries.list_tasks(where, cursor=page.next_cursor, limit=50)


def _sample_ids(run: BenchRun) -> list[str]:
    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT task_id FROM {} ORDER BY random() LIMIT %s").format(
                sql.Identifier(run.schema, "task_meta")), (SAMPLES,))  # fmt: skip
            ids = [t for (t,) in cur.fetchall()]
    finally:
        conn.close()
    random.Random(5).shuffle(ids)
    return ids or ["unknown-task"]



def _raw_pk(run: BenchRun, ids: list[str], progress: Progress) -> list[float]:
    conn = psycopg2.connect(run.dsn)
    statement = sql.SQL("SELECT * FROM {} WHERE task_id = %s").format(sql.Identifier(run.schema, "task_meta"))
    try:
        with conn.cursor() as cur:
            query = statement.as_string(cur)

            def select(task_id: str) -> object:
                cur.execute(query, (task_id,))
                row = cur.fetchone()
                conn.commit()
                return row

            return timed(select, ids, WARM_UP, lambda n: progress.update(len(ids) + n))
    finally:
        conn.close()
