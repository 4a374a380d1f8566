"""The raw baselines of rows "project" and "replay": a kafka-python consumer reading the
topic and doing nothing else, and psycopg2 COPY of the rows the projector ended with."""

from __future__ import annotations

import io
import time

import psycopg2
from kafka import KafkaConsumer, TopicPartition
from psycopg2 import sql

from bench.runctx import BenchRun
from bench.stats import rate
from ledger.progress import Progress
from ledger.projections.postgres import PostgresViewWriter

_MiB = 1 << 20
COPIED_TABLES = ("task_event", "task_meta", "periodic_task_event", "periodic_task_meta")


def consume_raw(run: BenchRun, total: int) -> dict[str, float]:
    """Read ``total`` records of the topic from offset 0, with the fetch settings the
    ledger's consumers use, touching nothing but the count."""
    consumer = KafkaConsumer(
        bootstrap_servers=run.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_bytes=64 * _MiB, max_partition_fetch_bytes=16 * _MiB, max_poll_records=20_000,
        receive_buffer_bytes=4 * _MiB, metrics_enabled=False,
    )  # fmt: skip
    progress = Progress("raw-cons")
    progress.start(total)
    try:
        partitions = consumer.partitions_for_topic(run.topic) or set()
        consumer.assign([TopicPartition(run.topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        started, seen = time.perf_counter(), 0
        while seen < total:
            for batch in consumer.poll(timeout_ms=1000).values():
                seen += len(batch)
            progress.update(seen)
        seconds = time.perf_counter() - started
    finally:
        progress.finish()
        consumer.close(autocommit=False)
    return {"events_per_s": rate(total, seconds), "seconds": round(seconds, 3)}


def copy_raw(run: BenchRun, total: int) -> dict[str, float]:
    """COPY the views' final rows (history and current rows, what the projector wrote for
    ``total`` events) into an empty copy of the schema, indexes included, in one transaction.
    Reading them out is not timed."""
    target = run.scratch_schema("rawcopy")
    with PostgresViewWriter(run.dsn, target) as views:
        views.migrate()
    conn = psycopg2.connect(run.dsn)
    progress = Progress("raw-copy")
    progress.start(total)
    try:
        dumps = {table: _dump(conn, run.schema, table) for table in COPIED_TABLES}
        started = time.perf_counter()
        with conn, conn.cursor() as cur:
            for table, data in dumps.items():
                statement = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(target, table))
                cur.copy_expert(statement.as_string(cur), data)
        seconds = time.perf_counter() - started
        progress.update(total)
    finally:
        progress.finish()
        conn.close()
    return {"events_per_s": rate(total, seconds), "seconds": round(seconds, 3)}


def _dump(conn: psycopg2.extensions.connection, schema: str, table: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with conn, conn.cursor() as cur:
        statement = sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(schema, table))
        cur.copy_expert(statement.as_string(cur), buffer)
    buffer.seek(0)
    return buffer
