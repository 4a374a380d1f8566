-- version 0 runner
-- The runner's own table (it lived in SqliteViewStore._apply_migrations, not in a file).
CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL DEFAULT CURRENT_TIMESTAMP);
-- version 1 views
-- The views of the seed (TaskMeta, PeriodicTaskMeta), their histories and consumed offsets.
CREATE TABLE task_meta (
    task_id        text PRIMARY KEY,
    name           text,
    status         text NOT NULL,
    result         text,
    traceback      text,
    exc_type       text,
    exc_message    text,
    retries        integer NOT NULL,
    args           text,
    kwargs         text,
    worker         text,
    eta            text,
    date_pending   text,
    date_received  text,
    date_started   text,
    date_done      text NOT NULL,
    runtime        real,
    last_event_id  text NOT NULL,
    last_offset    bigint
);
CREATE INDEX task_meta_done_idx ON task_meta (date_done, task_id);
CREATE INDEX task_meta_status_idx ON task_meta (status, date_done, task_id);
CREATE INDEX task_meta_name_idx ON task_meta (name, date_done, task_id);
CREATE INDEX task_meta_worker_idx ON task_meta (worker, date_done, task_id);

CREATE TABLE task_event (
    event_id     text PRIMARY KEY,
    task_id      text NOT NULL,
    type         text NOT NULL,
    status       text,
    attempt      integer NOT NULL,
    occurred_at  text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    payload      text NOT NULL
);
CREATE INDEX task_event_task_idx ON task_event (task_id, partition, "offset");
CREATE INDEX task_event_time_idx ON task_event (occurred_at, task_id);

CREATE TABLE periodic_task_meta (
    name              text PRIMARY KEY,
    task              text,
    interval_seconds  real,
    enabled           integer NOT NULL,
    last_run_at       text,
    total_run_count   integer NOT NULL,
    last_run_task_id  text,
    config_at         text,
    config_event_id   text,
    last_event_id     text NOT NULL,
    registered_at     text,
    registered_event_id text,
    last_run_event_id text
);

CREATE TABLE periodic_task_event (
    event_id     text PRIMARY KEY,
    name         text NOT NULL,
    type         text NOT NULL,
    task_id      text,
    occurred_at  text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    payload      text NOT NULL
);
CREATE INDEX periodic_task_event_name_idx ON periodic_task_event (name, occurred_at);
CREATE INDEX periodic_task_event_run_idx ON periodic_task_event (task_id);

CREATE TABLE projection_offsets (
    projection   text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    updated_at   text NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (projection, topic, partition)
);

-- version 2 history_index
-- Time travel (ledger.projections.history): "what was each task's status at T?" ranks each
-- task's events by (attempt, precedence, occurred_at, event_id). SQLite has no INCLUDE, so
-- status and event_id are trailing key columns: the window query reads this covering
-- index in (task_id, attempt) order without touching the table. 0001's
-- task_event_time_idx (occurred_at, task_id) already serves range scans by time.
CREATE INDEX IF NOT EXISTS task_event_rank_idx ON task_event (task_id, attempt, occurred_at, status, event_id);

-- version 3 first_seen
-- Keyset pages on an immutable key (issue 12): first_seen is the occurred_at of the task's
-- first event in log order and never changes once the task exists. date_done moves with
-- every status change (backwards too, from a worker whose clock is behind), so pages ordered
-- by it repeated or skipped tasks that changed during a walk. Existing rows take it from
-- their stored history (what a rebuild computes), else from their earliest known date.
-- SQLite adds a NOT NULL column only with a default: the column is nullable here, and
-- every row the store writes sets it.
ALTER TABLE task_meta ADD COLUMN first_seen text;
UPDATE task_meta SET first_seen = COALESCE(
    (SELECT e.occurred_at FROM task_event e WHERE e.task_id = task_meta.task_id ORDER BY e.partition, e."offset" LIMIT 1),
    date_pending, date_received, date_started, date_done
);

-- list_tasks orders by (first_seen, task_id), after an optional status, name or worker
-- equality. task_meta_done_idx (date_done, task_id) stays: since/until, expiry and the
-- stuck-task prefilter select on date_done.
DROP INDEX task_meta_status_idx;
DROP INDEX task_meta_name_idx;
DROP INDEX task_meta_worker_idx;
CREATE INDEX task_meta_first_seen_idx ON task_meta (first_seen, task_id);
CREATE INDEX task_meta_status_first_seen_idx ON task_meta (status, first_seen, task_id);
CREATE INDEX task_meta_name_first_seen_idx ON task_meta (name, first_seen, task_id);
CREATE INDEX task_meta_worker_first_seen_idx ON task_meta (worker, first_seen, task_id);

-- version 4 exc_args
-- The exception's args of the latest failure or retry (issue 12): what Celery's result
-- backends store as exc_message, so task_state() reads like one. Rows from before have none
-- (their events carried no args): readers fall back to [exc_message], as a rebuild would.
ALTER TABLE task_meta ADD COLUMN exc_args text;

