"""Row "tasks page": the dashboard's tasks page (``GET /ui/tasks``, first page of 50,
rendered HTML) through the application in process, so the figure is the server's time
(routing, the query, the template), over ``task_meta`` topped up to a million rows; next
to raw SQL of the same page of rows. Three views an operator opens most: no filter, a
status, a status and a time range."""

from __future__ import annotations

from typing import Any, Final

import psycopg2
from fastapi.testclient import TestClient
from psycopg2 import sql

from bench.query import top_up
from bench.runctx import BenchRun
from bench.stats import summary_ms, timed
from ledger.http.app import create_app

SAMPLES: Final = 30
WARM_UP: Final = 3
PAGE: Final = 50
VIEWS: Final = {  # name: (query string, the raw page's condition)
    "all": ("", "TRUE"),
    "failures": ("status=FAILURE", "status = 'FAILURE'"),
    "failures_last_day": ("status=FAILURE&range=24h", "status = 'FAILURE' AND date_done >= now() - interval '1 day'"),
}


def measure_tasks_page(run: BenchRun, rows: int = 1_000_000) -> dict[str, Any]:
    sizes = top_up(run, rows)
    ledger: dict[str, list[float]] = {}
    raw: dict[str, list[float]] = {}
    with TestClient(create_app(run.settings)) as client:

        def page(query: str) -> None:
            response = client.get(f"/ui/tasks?{query}")
            assert response.status_code == 200 and "<table" in response.text, response.text[:300]

        for name, (query, _) in VIEWS.items():
            ledger[name] = timed(page, [query] * SAMPLES, WARM_UP)
    conn = psycopg2.connect(run.dsn)
    try:
        for name, (_, condition) in VIEWS.items():
            raw[name] = timed(lambda c: _raw_page(conn, run.schema, c), [condition] * SAMPLES, WARM_UP)
    finally:
        conn.close()
    return {
        **sizes,
        "ledger": summary_ms([d for durations in ledger.values() for d in durations]),
        "raw_sql": summary_ms([d for durations in raw.values() for d in durations]),
        "views": {name: {"ledger": summary_ms(ledger[name]), "raw_sql": summary_ms(raw[name])} for name in VIEWS},
    }


def _raw_page(conn: Any, schema: str, condition: str) -> list[Any]:
    query = sql.SQL("SELECT * FROM {} WHERE {} ORDER BY first_seen DESC, task_id DESC LIMIT %s").format(
        sql.Identifier(schema, "task_meta"), sql.SQL(condition))  # fmt: skip
    with conn, conn.cursor() as cur:
        cur.execute(query, [PAGE + 1])
        return cur.fetchall()
