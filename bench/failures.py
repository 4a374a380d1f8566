"""Row "failure groups": ``ledger failures`` (``FailureQueries.groups``, its default window:
every failure, 50 groups, a 12-bucket trend, 5 examples each) and a window of the data's last
hour, next to one raw SQL statement answering the same groups, p50/p99.

The simulated fleet's failures carry one fixed message per exception type (16 groups in all);
a real fleet's messages carry ids, numbers and quoted values. So before measuring, each
failure's message is rewritten in place (plain SQL) from a catalogue of causes with varying
parts, skewed as real failures are (a few causes most of the time, a long tail), and its
fingerprint recomputed with the ledger's own rule (``domain.failures.fingerprint``, as the
projector stores it): the varying parts are masked, so 12 causes make 190 groups over 5 task
names (the tail: causes naming a column or an event type unquoted) among the ~18,000
failures of 1M events.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from bench.runctx import BenchRun
from bench.stats import repeated, summary_ms
from ledger.bootstrap import build_failure_queries
from ledger.domain.failures import fingerprint

SAMPLES = 100
WARM_UP = 10
CAUSES = (
    ("KeyError", "'{word}'"),
    ("ValueError", "invalid card number {n}"),
    ("ConnectionError", "smtp server {ip}:{port} refused"),
    ("TimeoutError", "request to http://api.internal/v1/orders/{n} timed out after {s}s"),
    ("DoesNotExist", "Order matching query does not exist: id={n}"),
    ("IntegrityError", 'duplicate key value violates unique constraint "order_pkey" DETAIL: Key (id)=({n})'),
    ("OSError", "[Errno 28] No space left on device: '/tmp/{hex}.png'"),
    ("HTTPError", "502 Server Error: Bad Gateway for url: https://pay.example/charges/{uuid}"),
    ("RuntimeError", "worker {hex} lost its lease at {time}"),
    ("MemoryError", "cannot allocate {n} bytes"),
    # the long tail: an unquoted name in the message is part of the cause (one group per name)
    ("ProgrammingError", "column {word} does not exist"),
    ("LookupError", "no handler for event {event} (id {n})"),
)
"""(exception type, message template): each one root cause per task name, except the last
two, one per word / event name."""
WORDS = ("customer_id", "sku", "amount", "currency", "email", "locale", "width", "height")
EVENTS = tuple(f"{thing}.{verb}" for thing in ("order", "invoice", "refund", "user", "cart")
               for verb in ("created", "updated", "deleted", "archived"))  # fmt: skip


def _message(template: str, rng: random.Random) -> str:
    return template.format(
        word=rng.choice(WORDS), event=rng.choice(EVENTS), n=rng.randint(1, 10_000_000),
        ip=f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}", port=rng.choice((25, 465, 587)),
        s=rng.choice((5, 10, 30)), hex=f"{rng.getrandbits(64):016x}",
        uuid=f"{rng.getrandbits(128):032x}", time=f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
    )  # fmt: skip


def vary_failures(run: BenchRun, *, seed: int = 13) -> dict[str, int]:
    """Rewrite every projected failure's message (varying parts, skewed causes) and its
    fingerprint; returns the failures and the groups they make."""
    rng = random.Random(seed)
    weights = [1 / (k + 1) for k in range(len(CAUSES))]
    table = sql.Identifier(run.schema, "task_event")
    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT event_id::text, payload::text FROM {} WHERE type = 'task.failed' "
                                "ORDER BY event_id").format(table))  # fmt: skip
            rows, fingerprints = [], set()
            for event_id, text in cur.fetchall():
                payload = json.loads(text)
                exc_type, template = rng.choices(CAUSES, weights)[0]
                payload.update(exc_type=exc_type, exc_message=_message(template, rng))
                found = fingerprint(payload.get("task_name"), exc_type, payload["exc_message"])
                fingerprints.add(found)
                rows.append((event_id, json.dumps(payload), found))
            execute_values(cur, sql.SQL("UPDATE {} t SET payload = v.payload::jsonb, fingerprint = v.fp "
                                        "FROM (VALUES %s) v(event_id, payload, fp) WHERE t.event_id = v.event_id::uuid")
                           .format(table).as_string(cur), rows, page_size=5000)  # fmt: skip
            cur.execute(sql.SQL("ANALYZE {}").format(table))
    finally:
        conn.close()
    return {"failures": len(rows), "groups": len(fingerprints)}


_RAW = """
WITH g AS (
    SELECT fingerprint, count(*) AS n, count(DISTINCT task_id) AS tasks, min(occurred_at) AS first_seen,
           max(occurred_at) AS last_seen
    FROM {events} e WHERE fingerprint IS NOT NULL AND {window}
    GROUP BY fingerprint ORDER BY last_seen DESC, fingerprint LIMIT 50
), axis AS (
    SELECT extract(epoch FROM coalesce(%(origin)s, min(first_seen))) AS lo,
           extract(epoch FROM greatest(now(), max(last_seen))) AS hi FROM g
)
SELECT g.*, (SELECT max(occurred_at) FROM {events} l WHERE l.fingerprint = g.fingerprint) AS last_failure_at,
       r.resolved_at, r.resolved_by, r.reopened_at, r.reopened_by,
       (SELECT array_agg(task_id) FROM (
            SELECT task_id FROM {events} e WHERE e.fingerprint = g.fingerprint AND {window}
            ORDER BY e.occurred_at DESC, e.task_id DESC LIMIT 5) x) AS examples,
       (SELECT payload FROM {events} e WHERE e.fingerprint = g.fingerprint AND {window}
            ORDER BY e.occurred_at DESC, e.task_id DESC LIMIT 1) AS sample,
       (SELECT array_agg(b || ':' || c) FROM (
            SELECT width_bucket(extract(epoch FROM e.occurred_at), axis.lo, axis.hi, 12) AS b, count(*) AS c
            FROM {events} e WHERE e.fingerprint = g.fingerprint AND {window} GROUP BY b) t) AS trend
FROM g CROSS JOIN axis LEFT JOIN {resolutions} r ON r.fingerprint = g.fingerprint
ORDER BY g.last_seen DESC, g.fingerprint
"""
"""The same answer as ``FailureQueries.groups`` in one statement: counts per group, the latest
failure ever and the decisions (open or resolved), 5 newest examples, the newest payload (the
message shown) and a 12-bucket trend."""


def measure_failures(run: BenchRun) -> dict[str, Any]:
    sizes = vary_failures(run)
    queries = build_failure_queries(run.settings)
    latest = _latest_failure(run)
    last_hour = latest - timedelta(hours=1)
    try:
        shown = len(queries.groups())
        default = repeated(lambda: queries.groups(), SAMPLES, WARM_UP)
        hour = repeated(lambda: queries.groups(since=last_hour), SAMPLES, WARM_UP)
        in_hour = len(queries.groups(since=last_hour))
    finally:
        queries.reader.close()
    raw, raw_hour = _raw(run, None), _raw(run, last_hour)
    return {**sizes, "groups_shown": shown, "groups_in_last_hour": in_hour, "ledger": summary_ms(default),
            "raw_sql": summary_ms(raw), "ledger_last_hour": summary_ms(hour),
            "raw_sql_last_hour": summary_ms(raw_hour)}  # fmt: skip


def _latest_failure(run: BenchRun) -> datetime:
    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT max(occurred_at) FROM {} WHERE fingerprint IS NOT NULL").format(
                sql.Identifier(run.schema, "task_event")))  # fmt: skip
            (latest,) = cur.fetchone() or (None,)
    finally:
        conn.close()
    if latest is None:
        raise RuntimeError("failure groups: no failure in the bench's views")
    return latest  # type: ignore[no-any-return]


def _raw(run: BenchRun, since: datetime | None) -> list[float]:
    conn = psycopg2.connect(run.dsn)
    window = sql.SQL("(%(since)s IS NULL OR e.occurred_at >= %(since)s)")
    statement = sql.SQL(_RAW).format(events=sql.Identifier(run.schema, "task_event"), window=window,
                                     resolutions=sql.Identifier(run.schema, "failure_resolution"))  # fmt: skip
    params = {"since": since, "origin": since}
    try:
        with conn.cursor() as cur:
            query = statement.as_string(cur)

            def select() -> object:
                cur.execute(query, params)
                rows = cur.fetchall()
                conn.commit()
                return rows

            return repeated(select, SAMPLES, WARM_UP)
    finally:
        conn.close()

