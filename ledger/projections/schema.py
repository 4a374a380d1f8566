"""The views' tables, declared once for PostgreSQL and SQLite (SQLAlchemy Core).

A column whose storage differs per database says so in its type (``sqltypes``); indexes
stand beside their tables. This is the schema as the migrations (``migrations/versions``)
leave it; the queries of both databases are built from these objects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Double, Index, Integer, MetaData, Table, Text, func

from ledger.projections.sqltypes import JsonDocument, JsonValue, Status, UtcTimestamp, Uuid

__all__ = ["DESCENDANT", "PRIMARY_KEYS", "SEARCH_TABLES", "failure_resolution", "metadata", "periodic_task_event",
           "periodic_task_meta", "projection_offsets", "series_counts", "task_event", "task_meta",
           "worker_meta"]  # fmt: skip

metadata = MetaData()

task_meta = Table(
    "task_meta",
    metadata,
    Column("task_id", Text, primary_key=True),
    Column("name", Text),
    Column("status", Status, nullable=False),
    Column("result", JsonValue),
    Column("traceback", Text),
    Column("exc_type", Text),
    Column("exc_message", Text),
    Column("retries", Integer, nullable=False),
    Column("args", JsonValue),
    Column("kwargs", JsonValue),
    Column("worker", Text),
    Column("eta", UtcTimestamp),
    Column("date_pending", UtcTimestamp),
    Column("date_received", UtcTimestamp),
    Column("date_started", UtcTimestamp),
    Column("date_done", UtcTimestamp, nullable=False),
    Column("runtime", Double),
    Column("last_event_id", Uuid, nullable=False),
    Column("last_offset", BigInteger),
    # NOT NULL on PostgreSQL; nullable on SQLite, which adds a NOT NULL column only with a
    # default (migration 0003). Every row the writers store sets it.
    Column("first_seen", UtcTimestamp, nullable=False),
    Column("exc_args", JsonValue),
    # migration 0005: workflow linkage, routing and the fold's durations
    Column("root_id", Text),
    Column("parent_id", Text),
    Column("group_id", Text),
    Column("callback_id", Text),
    Column("queue", Text),
    Column("exchange", Text),
    Column("routing_key", Text),
    Column("expires", UtcTimestamp),
    Column("queue_wait", Double),
    Column("start_delay", Double),
    Column("total_time", Double),
    # migration 0007: the free-text search document (``domain.search.search_document``)
    Column("search_text", Text),
)
# since/until, expiry and the stuck-task prefilter select on date_done; pages are keyset
# walks (``TaskOrder``, either direction: a btree serves both) on (first_seen, task_id),
# after an optional status, name, worker or queue equality, or on (date_done, task_id),
# after an optional status equality (0010); a name, worker or queue with the ``changed``
# order walks task_meta_done_idx and filters (it reads until a page is full)
Index("task_meta_done_idx", task_meta.c.date_done.desc(), task_meta.c.task_id.desc())
Index("task_meta_status_done_idx", task_meta.c.status, task_meta.c.date_done.desc(), task_meta.c.task_id.desc())
Index("task_meta_first_seen_idx", task_meta.c.first_seen.desc(), task_meta.c.task_id.desc())
for _column in ("status", "name", "worker", "queue"):
    Index(f"task_meta_{_column}_first_seen_idx", task_meta.c[_column], task_meta.c.first_seen.desc(),
          task_meta.c.task_id.desc())  # fmt: skip
# a workflow follows roots to the tasks under them, and groups to their members; the
# ``parent_id`` filter of a page asks for a task's children. A task that is its own root (a
# standalone task: most of them) is found by its id, so the root index holds only the tasks
# under another (0009): a probe of a root with nothing under it then touches no row.
DESCENDANT = task_meta.c.root_id != task_meta.c.task_id
"""The predicate of ``task_meta_descendants_idx``: a query states it for the index to serve."""
Index("task_meta_descendants_idx", task_meta.c.root_id, postgresql_where=DESCENDANT, sqlite_where=DESCENDANT)
for _column in ("parent_id", "group_id"):
    Index(f"task_meta_{_column}_idx", task_meta.c[_column])
# search (0007): on PostgreSQL a trigram index of the document (pg_trgm, installed in schema
# public: one per database) and a containment index of kwargs; on SQLite an FTS5 trigram
# table over the document (``task_search``, external content kept by triggers), which
# SQLAlchemy cannot declare: the migration creates it
# (0013: each flushes its pending list at 256 kB, not 4 MB: the flush is a batch's tail)
Index("task_meta_search_idx", task_meta.c.search_text, postgresql_using="gin",
      postgresql_ops={"search_text": "public.gin_trgm_ops"},
      postgresql_with={"gin_pending_list_limit": 256}).ddl_if(dialect="postgresql")  # fmt: skip
Index("task_meta_kwargs_idx", task_meta.c.kwargs, postgresql_using="gin",
      postgresql_ops={"kwargs": "jsonb_path_ops"},
      postgresql_with={"gin_pending_list_limit": 256}).ddl_if(dialect="postgresql")  # fmt: skip
SEARCH_TABLES = ("task_search", "task_search_data", "task_search_idx", "task_search_docsize", "task_search_config")
"""SQLite's FTS5 table and its shadow tables (not in ``metadata``)."""



def _history(name: str, *columns: Column[Any], added: tuple[Column[Any], ...] = ()) -> Table:
    """A history table: one row per applied event, ``columns`` after its id, then when it
    occurred, its log position and its JSON, then the columns ``added`` by later migrations
    (where ``ADD COLUMN`` puts them)."""
    return Table(
        name,
        metadata,
        Column("event_id", Uuid, primary_key=True),
        *columns,
        Column("occurred_at", UtcTimestamp, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("payload", JsonDocument, nullable=False),
        *added,
    )


task_event = _history(
    "task_event",
    Column("task_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("status", Text),
    Column("attempt", Integer, nullable=False),
    # a failure's group (``domain.failures.fingerprint``), set by the projector on task.failed
    # rows only (migration 0006)
    added=(Column("fingerprint", Text),),
)
Index("task_event_task_idx", task_event.c.task_id, task_event.c.partition, task_event.c.offset)
Index("task_event_time_idx", task_event.c.occurred_at, task_event.c.task_id)
# time travel ranks each task's events by (attempt, precedence of status, occurred_at,
# event_id): the index hands them over presorted by (task_id, attempt) and covers every
# column the as-of query reads (an index-only scan). PostgreSQL carries status and event_id
# as INCLUDE columns; SQLite has no INCLUDE, so they are trailing key columns there.
Index("task_event_rank_idx", task_event.c.task_id, task_event.c.attempt, task_event.c.occurred_at,
      postgresql_include=["status", "event_id"]).ddl_if(dialect="postgresql")  # fmt: skip
Index("task_event_rank_idx", task_event.c.task_id, task_event.c.attempt, task_event.c.occurred_at,
      task_event.c.status, task_event.c.event_id).ddl_if(dialect="sqlite")  # fmt: skip

# failure groups: partial indexes over the failures only (a small part of the history); a
# window's groups are read from the first, one group's failures from the second
Index("task_event_failure_time_idx", task_event.c.occurred_at, task_event.c.fingerprint, task_event.c.task_id,
      postgresql_where=task_event.c.fingerprint.is_not(None), sqlite_where=task_event.c.fingerprint.is_not(None))
Index("task_event_failure_group_idx", task_event.c.fingerprint, task_event.c.occurred_at, task_event.c.task_id,
      postgresql_where=task_event.c.fingerprint.is_not(None), sqlite_where=task_event.c.fingerprint.is_not(None))

# an operator's decisions on a failure group (migrations 0006, 0011): its latest resolution
# (``failures.resolved``) and its latest reopen (``failures.reopened``), either absent. The
# group is resolved when its resolution is at or after both its latest failure and its
# latest reopen (``domain.failures.is_open``).
failure_resolution = Table(
    "failure_resolution",
    metadata,
    Column("fingerprint", Text, primary_key=True),
    Column("resolved_at", UtcTimestamp),
    Column("resolved_by", Text),
    Column("reopened_at", UtcTimestamp),
    Column("reopened_by", Text),
)

# trends (migration 0008): how many history rows of each counted status (``domain.series.
# COUNTED``) occurred in each minute (``minute``: its start in whole seconds since the epoch).
# Kept equal to that GROUP BY over task_event by every batch (its new rows added, an expired
# task's removed rows subtracted, in the same transaction), so a series over a day reads
# 1,440 minutes instead of every event of the day; a rebuild gives the same rows.
series_counts = Table(
    "series_counts",
    metadata,
    Column("minute", BigInteger, primary_key=True),
    Column("status", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# workers (migration 0012): one row per worker hostname (``domain.workers.WorkerState``),
# merged from its worker.* events by an upsert whose every column moves one way only, so
# the order events are read in never matters and a rebuild gives the same rows. Heartbeats
# come every few seconds per worker: they update this row and keep no history.
worker_meta = Table(
    "worker_meta",
    metadata,
    Column("hostname", Text, primary_key=True),
    Column("first_seen", UtcTimestamp, nullable=False),
    Column("last_seen", UtcTimestamp, nullable=False),
    Column("last_heartbeat", UtcTimestamp),
    Column("offline_at", UtcTimestamp),
    Column("freq", Double),
    Column("sw_ident", Text),
    Column("sw_ver", Text),
    Column("sw_sys", Text),
    Column("loadavg", JsonValue),
    Column("processed", BigInteger),
    Column("active", Integer),
    Column("pid", Integer, nullable=False),
    Column("last_event_id", Uuid, nullable=False),
)

periodic_task_meta = Table(
    "periodic_task_meta",
    metadata,
    Column("name", Text, primary_key=True),
    Column("task", Text),
    Column("interval_seconds", Double),
    Column("enabled", Boolean, nullable=False),
    Column("last_run_at", UtcTimestamp),
    Column("total_run_count", Integer, nullable=False),
    Column("last_run_task_id", Text),
    Column("config_at", UtcTimestamp),
    Column("config_event_id", Uuid),
    Column("last_event_id", Uuid, nullable=False),
    Column("registered_at", UtcTimestamp),
    Column("registered_event_id", Uuid),
    Column("last_run_event_id", Uuid),
)

periodic_task_event = _history(
    "periodic_task_event",
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("task_id", Text),
)
Index("periodic_task_event_name_idx", periodic_task_event.c.name, periodic_task_event.c.occurred_at)
Index("periodic_task_event_run_idx", periodic_task_event.c.task_id)

projection_offsets = Table(
    "projection_offsets",
    metadata,
    Column("projection", Text, primary_key=True),
    Column("topic", Text, primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", UtcTimestamp, nullable=False, server_default=func.current_timestamp()),
)

PRIMARY_KEYS = {table: metadata.tables[table].primary_key.columns[0].name
                for table in ("task_meta", "periodic_task_meta", "task_event", "periodic_task_event",
                              "failure_resolution", "worker_meta")}  # fmt: skip
"""The tables a rebuild compares row by row, each with its primary key."""
