"""Row "series": a day of 1-minute buckets (the data's last 24 hours: the simulated events
span a few hours, so every event counts) through the ledger's query API, next to raw SQL
that computes the same result from the history and task rows directly (no rollup),
p50/p99; plus the same series for one task name (the path that reads the history).

Run it before the "query" row's top-up (``query.top_up`` copies task rows without events:
they would add their runtimes to the percentiles of both sides).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql

from bench.runctx import BenchRun
from bench.stats import repeated, summary_ms
from ledger.bootstrap import build_series_queries, build_view_reader
from ledger.domain.series import COUNTED, PERCENTILES, Axis, SeriesPoint, axis, build_points
from ledger.simulate import TASK_NAMES

SAMPLES = 20
WARM_UP = 3
_RAW = """
SELECT (floor(date_part('epoch', occurred_at))::bigint - %(origin)s) / %(width)s, status, count(*)
  FROM {event} WHERE occurred_at >= %(start)s AND occurred_at < %(end)s AND status = ANY(%(statuses)s)
 GROUP BY 1, 2;
SELECT (floor(date_part('epoch', date_done))::bigint - %(origin)s) / %(width)s, {runtime}
  FROM {meta} WHERE date_done >= %(start)s AND date_done < %(end)s AND status IN ('DONE', 'FAILURE')
   AND runtime IS NOT NULL GROUP BY 1;
SELECT (floor(date_part('epoch', date_received))::bigint - %(origin)s) / %(width)s, {wait}
  FROM {meta} WHERE date_received >= %(start)s AND date_received < %(end)s AND queue_wait IS NOT NULL GROUP BY 1
"""


def measure_series(run: BenchRun) -> dict[str, Any]:
    until, events = _last_day(run)
    since = until - timedelta(hours=24)
    reader = build_view_reader(run.settings)
    queries = build_series_queries(run.settings, reader)
    try:
        ledger = repeated(lambda: queries.series("1m", since, until).points, SAMPLES, WARM_UP)
        by_name = repeated(lambda: queries.series("1m", since, until, name=TASK_NAMES[0]).points, SAMPLES, WARM_UP)
        same = queries.series("1m", since, until).points == _raw_points(run, axis(60, since, until))
        raw = repeated(lambda: _raw_points(run, axis(60, since, until)), SAMPLES, WARM_UP)
    finally:
        reader.close()
    sizes = {"events": events["all"], "window_events": events["window"], "buckets": 1440, "same_result": same}
    return {"ledger": summary_ms(ledger), "raw_sql": summary_ms(raw), "ledger_by_name": summary_ms(by_name), **sizes}


def _last_day(run: BenchRun) -> tuple[datetime, dict[str, int]]:
    """The end of the window (just after the last event) and the history's sizes."""
    table = sql.Identifier(run.schema, "task_event")
    with psycopg2.connect(run.dsn) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT max(occurred_at), count(*) FROM {}").format(table))
        last, total = cur.fetchone() or (None, 0)
        assert last is not None, "the bench's views hold no events"
        until = last + timedelta(microseconds=1)
        cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE occurred_at >= %s").format(table),
                    (until - timedelta(hours=24),))  # fmt: skip
        (window,) = cur.fetchone() or (0,)
    conn.close()
    return until, {"all": total, "window": window}


def _raw_points(run: BenchRun, window: Axis) -> list[SeriesPoint]:
    """The same series by hand: three plain statements over task_event and task_meta."""

    def picks(column: str) -> sql.Composable:
        pick = sql.SQL("percentile_disc({}) WITHIN GROUP (ORDER BY {})")
        return sql.SQL(", ").join(pick.format(sql.Literal(s / 100), sql.Identifier(column)) for s in PERCENTILES)

    statement = sql.SQL(_RAW).format(event=sql.Identifier(run.schema, "task_event"),
                                     meta=sql.Identifier(run.schema, "task_meta"), runtime=picks("runtime"),
                                     wait=picks("queue_wait"))  # fmt: skip
    params = {"origin": window.origin, "width": window.width, "start": window.start, "end": window.end,
              "statuses": [s.value for s in COUNTED]}  # fmt: skip
    results = []
    with psycopg2.connect(run.dsn) as conn, conn.cursor() as cur:
        for part in statement.as_string(cur).split(";"):
            cur.execute(part, params)
            results.append(cur.fetchall())
    conn.close()
    counts, runtimes, waits = results
    return build_points(window, counts, runtimes, waits)

