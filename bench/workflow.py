"""Row "workflow": ``reader.workflow(task_id)`` on a workflow of 10,000 tasks (one big
group and its chord callback, as Celery records a ``chord(group of 10,000, callback)``),
inside the bench's views, next to a raw psycopg2 query returning the same rows.

The simulated events carry no canvas linkage, so the workflow is inserted into the bench
schema's ``task_meta`` with plain SQL (``add_workflow``): members each their own root, the
group's id on each, the callback sent by the last member, tagged with the group's id.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg2
from psycopg2 import sql

from bench.runctx import BenchRun
from bench.stats import summary_ms, timed
from ledger.bootstrap import build_view_reader
from ledger.projections.sql import NODE_COLUMNS

MEMBERS: Final = 10_000
SAMPLES: Final = 30
WARM_UP: Final = 3

_INSERT_MEMBERS = """
INSERT INTO {table} (task_id, name, status, retries, worker, date_pending, date_received, date_started, date_done,
                     runtime, last_event_id, first_seen, root_id, group_id, callback_id, queue)
SELECT %(prefix)s || g, 'bench.member', CASE WHEN g %% 97 = 0 THEN 'FAILURE' ELSE 'DONE' END, g %% 3,
       'celery@worker-' || (g %% 8), t, t + interval '5 ms', t + interval '6 ms', t + interval '50 ms', 0.044,
       md5(%(prefix)s || g)::uuid, t, %(prefix)s || g, %(group)s, %(callback)s, 'celery'
FROM generate_series(1, %(members)s) g, LATERAL (SELECT now() - interval '1 hour' + g * interval '1 ms' AS t) s
"""
_INSERT_CALLBACK = """
INSERT INTO {table} (task_id, name, status, retries, worker, date_pending, date_received, date_started, date_done,
                     runtime, last_event_id, first_seen, root_id, parent_id, group_id, queue)
VALUES (%(callback)s, 'bench.total', 'DONE', 0, 'celery@worker-0', now(), now(), now(), now(), 0.5,
        md5(%(callback)s)::uuid, now(), %(last)s, %(last)s, %(group)s, 'celery')
"""


def add_workflow(run: BenchRun, members: int = MEMBERS) -> dict[str, Any]:
    """Insert one chord of ``members`` header tasks and its callback; its ids and sizes."""
    prefix = f"wf-{run.run_id}-m"
    ids = {"prefix": prefix, "group": f"wf-{run.run_id}-g", "callback": f"wf-{run.run_id}-cb",
           "last": f"{prefix}{members}", "members": members}  # fmt: skip
    table = sql.Identifier(run.schema, "task_meta")
    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL(_INSERT_MEMBERS).format(table=table), ids)
            cur.execute(sql.SQL(_INSERT_CALLBACK).format(table=table), ids)
            cur.execute(sql.SQL("ANALYZE {}").format(table))
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(table))
            (rows,) = cur.fetchone() or (0,)
    finally:
        conn.close()
    return {**ids, "rows": rows}


def measure_workflow(run: BenchRun, members: int = MEMBERS) -> dict[str, Any]:
    """p50/p99 of the ledger's workflow query (from a member, from the callback) and of a
    raw query of the same rows (the group's tasks, node columns), on a 10,001-task workflow."""
    added = add_workflow(run, members)
    starts = [f"{added['prefix']}{1 + i * 997 % members}" for i in range(SAMPLES)] + [added["callback"]]
    reader = build_view_reader(run.settings)
    try:
        flow = reader.workflow(starts[0])
        assert flow is not None and len(flow.tasks) == members + 1, "the bench workflow was not found whole"
        ledger = timed(lambda start: reader.workflow(start), starts, WARM_UP)
    finally:
        reader.close()
    return {"workflow_tasks": members + 1, "view_rows": added["rows"], "ledger": summary_ms(ledger),
            "raw_sql": summary_ms(_raw(run, added["group"], len(starts), members))}  # fmt: skip



def _raw(run: BenchRun, group: str, samples: int, members: int) -> list[float]:
    """The same rows by what the bench knows of the shape: every task tagged with the group."""
    columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in NODE_COLUMNS)
    query = sql.SQL("SELECT {} FROM {} WHERE group_id = %s").format(columns, sql.Identifier(run.schema, "task_meta"))
    conn = psycopg2.connect(run.dsn)
    try:
        with conn.cursor() as cur:
            statement = query.as_string(cur)

            def select(_: str) -> None:
                cur.execute(statement, (group,))
                assert len(cur.fetchall()) == members + 1
                conn.commit()

            return timed(select, [group] * samples, WARM_UP)
    finally:
        conn.close()
