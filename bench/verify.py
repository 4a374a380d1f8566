"""Exactly-once check after the "project" row: the figure only counts if every event was
applied once (history rows = distinct events) and the stored offsets reached the log's end."""

from __future__ import annotations

from typing import Any

import psycopg2
from psycopg2 import sql

from bench.data import RawRecord


def _event_ids(records: list[RawRecord]) -> set[bytes]:
    ids = set()
    for _, _, headers in records:
        for name, value in headers:
            if name == "ce_id":
                ids.add(value)
                break
    return ids


def check_exactly_once(run: Any, records: list[RawRecord]) -> dict[str, Any]:
    distinct = len(_event_ids(records))
    conn = psycopg2.connect(run.dsn)
    try:
        with conn, conn.cursor() as cur:
            counts = []
            for table in ("task_event", "periodic_task_event"):
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(run.schema, table)))
                counts.append((cur.fetchone() or (0,))[0])
            cur.execute(sql.SQL("SELECT coalesce(sum(next_offset), 0) FROM {} WHERE topic = %s").format(
                sql.Identifier(run.schema, "projection_offsets")), (run.topic,))  # fmt: skip
            offsets = int((cur.fetchone() or (0,))[0])
    finally:
        conn.close()
    history = sum(counts)
    return {"distinct_events": distinct, "history_rows": history, "stored_offsets": offsets,
            "records": len(records), "ok": history == distinct and offsets == len(records)}  # fmt: skip


DIGESTED_TABLES = ("task_meta", "task_event", "periodic_task_meta", "periodic_task_event", "worker_meta",
                   "failure_resolution", "series_counts")  # fmt: skip
"""The views a rebuild remakes (offsets aside: their ``updated_at`` is the time of writing)."""


def views_digest(run: Any, schema: str | None = None) -> dict[str, tuple[int, str]]:
    """Per view table (of the run's schema, or ``schema``): its row count and the sum of a
    64-bit hash of each row's text, which a rebuild that left out, added or changed any row
    would not keep."""
    conn = psycopg2.connect(run.dsn)
    digest: dict[str, tuple[int, str]] = {}
    try:
        with conn, conn.cursor() as cur:
            for table in DIGESTED_TABLES:
                cur.execute(sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} t")
                            .format(sql.Identifier(schema or run.schema, table)))  # fmt: skip
                count, total = cur.fetchone() or (0, "0")
                digest[table] = (int(count), str(total))
    finally:
        conn.close()
    return digest


def differing_tables(expected: dict[str, tuple[int, str]], found: dict[str, tuple[int, str]]) -> list[str]:
    """The view tables whose ``views_digest`` differs between two sets of views."""
    return sorted(table for table in expected if expected[table] != found[table])
