"""Row "search": a first page of ``list_tasks`` with search filters over ``task_meta`` topped
up to a million rows, through the query API, next to raw SQL of the same result (the same
conditions written by hand, the same order and limit), p50/p99.

The simulated tasks carry one kwarg (``priority``, three values); to have a kwarg that hits
few rows, ``USER_ROWS`` rows get a ``user_id`` (one of ``USERS``) here, their search
document recomputed by the ledger's own rule (``domain.search``), as the projector would.
Four kinds of search, each with varying values so no single answer sits in a cache:
free text hitting few rows (a fragment of a task id), free text hitting many (a word of
one task name in five), a kwarg filter (a user id: a few rows), and a combination (text,
a kwarg and a status).
"""

from __future__ import annotations

import json
import random
from typing import Any, Final

import psycopg2
from psycopg2 import sql

from bench.query import top_up
from bench.runctx import BenchRun
from bench.stats import summary_ms, timed
from ledger.bootstrap import build_queries, build_view_reader
from ledger.domain.search import search_document
from ledger.domain.statuses import TaskStatus
from ledger.projections.store import TaskFilter

SAMPLES: Final = 40
"""Per kind of search: each a first page, through the ledger and as raw SQL."""
WARM_UP: Final = 5
PAGE: Final = 50
USER_ROWS: Final = 20_000
USERS: Final = 5_000
_WORDS: Final = ("charge", "send", "build", "resize", "reindex")


def measure_search(run: BenchRun, rows: int = 1_000_000) -> dict[str, Any]:
    sizes = top_up(run, rows)
    conn = psycopg2.connect(run.dsn)
    try:
        _add_user_ids(conn, run.schema)
        kinds = _searches(conn, run.schema)
        store = build_view_reader(run.settings)
        queries = build_queries(run.settings, store)
        try:
            ledger: dict[str, list[float]] = {}
            raw: dict[str, list[float]] = {}
            matches: dict[str, int] = {}
            for kind, filters in kinds.items():
                ledger[kind] = timed(lambda f: queries.list_tasks(f, limit=PAGE), filters, WARM_UP)
                raw[kind] = timed(lambda f: _raw_page(conn, run.schema, f), filters, WARM_UP)
                matches[kind] = _count(conn, run.schema, filters[0])
        finally:
            store.close()
    finally:
        conn.close()
    every_ledger = [d for durations in ledger.values() for d in durations]
    every_raw = [d for durations in raw.values() for d in durations]
    return {
        **sizes,
        "ledger": summary_ms(every_ledger),
        "raw_sql": summary_ms(every_raw),
        "kinds": {
            kind: {
                "ledger": summary_ms(ledger[kind]),
                "raw_sql": summary_ms(raw[kind]),
                "matches_of_first": matches[kind],
            }
            for kind in kinds
        },
    }


def _add_user_ids(conn: Any, schema: str) -> None:
    """``user_id`` into the kwargs of ``USER_ROWS`` rows (spread over the table), with their
    search documents recomputed; done once (rows that have one are left alone)."""
    table = sql.Identifier(schema, "task_meta")
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE kwargs ? 'user_id'").format(table))
        if (cur.fetchone() or (0,))[0]:
            return
        cur.execute(sql.SQL(
            "SELECT task_id, name, args, kwargs, result, exc_type, exc_message FROM {} ORDER BY md5(task_id) LIMIT %s"
        ).format(table), (USER_ROWS,))  # fmt: skip
        rng = random.Random(17)
        ids, kwargs, documents = [], [], []
        for task_id, name, args, old_kwargs, result, exc_type, exc_message in cur.fetchall():
            new_kwargs = {**(old_kwargs or {}), "user_id": rng.randrange(USERS)}
            ids.append(task_id)
            kwargs.append(json.dumps(new_kwargs))
            documents.append(search_document(task_id, name, args, new_kwargs, result, exc_type, exc_message))
        cur.execute(sql.SQL(
            "UPDATE {} t SET kwargs = v.kwargs::jsonb, search_text = v.doc "
            "FROM unnest(%s::text[], %s::text[], %s::text[]) AS v(id, kwargs, doc) WHERE t.task_id = v.id"
        ).format(table), (ids, kwargs, documents))  # fmt: skip
        cur.execute(sql.SQL("ANALYZE {}").format(table))


def _searches(conn: Any, schema: str) -> dict[str, list[TaskFilter]]:
    rng = random.Random(23)
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT task_id FROM {} WHERE task_id NOT LIKE '%%~%%' ORDER BY md5(task_id) LIMIT %s")
                    .format(sql.Identifier(schema, "task_meta")), (SAMPLES,))  # fmt: skip
        ids = [task_id for (task_id,) in cur.fetchall()]
    statuses = (TaskStatus.FAILURE, TaskStatus.DONE, TaskStatus.RETRY)
    return {
        "text_few": [TaskFilter(text=task_id[9:23]) for task_id in ids],
        "text_many": [TaskFilter(text=_WORDS[i % len(_WORDS)]) for i in range(SAMPLES)],
        "kwarg": [TaskFilter(kwargs=(("user_id", rng.randrange(USERS)),)) for _ in range(SAMPLES)],
        "combined": [
            TaskFilter(
                text=_WORDS[i % len(_WORDS)],
                kwargs=(("priority", ("low", "high")[i % 2]),),
                statuses=(statuses[i % 3],),
            )
            for i in range(SAMPLES)
        ],
    }


def _raw_where(where: TaskFilter) -> tuple[sql.Composable, list[Any]]:
    """The filter's conditions as hand-written SQL (only what ``_searches`` uses)."""
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    for term in where.terms:  # the sampled terms hold no LIKE wildcard
        conditions.append(sql.SQL("search_text LIKE %s"))
        params.append(f"%{term}%")
    for key, value in where.kwargs:
        conditions.append(sql.SQL("kwargs @> %s::jsonb"))
        params.append(json.dumps({key: value}))
    if where.statuses:
        conditions.append(sql.SQL("status = ANY(%s)"))
        params.append([s.value for s in where.statuses])
    return sql.SQL(" AND ").join(conditions), params


def _raw_page(conn: Any, schema: str, where: TaskFilter) -> list[Any]:
    condition, params = _raw_where(where)
    query = sql.SQL("SELECT * FROM {} WHERE {} ORDER BY first_seen DESC, task_id DESC LIMIT %s").format(
        sql.Identifier(schema, "task_meta"), condition)  # fmt: skip
    with conn, conn.cursor() as cur:
        cur.execute(query, [*params, PAGE + 1])
        return cur.fetchall()


def _count(conn: Any, schema: str, where: TaskFilter) -> int:
    condition, params = _raw_where(where)
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(schema, "task_meta"), condition),
                    params)  # fmt: skip
        return int((cur.fetchone() or (0,))[0])

