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
