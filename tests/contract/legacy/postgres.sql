-- version 0 runner
-- The runner's own table (it lived in PostgresViewStore.migrate, not in a file).
CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
-- version 1 views
-- The views of the seed (TaskMeta, PeriodicTaskMeta), their histories and consumed offsets.
CREATE TABLE task_meta (
    task_id        text PRIMARY KEY,
    name           text,
    status         text NOT NULL,
    result         jsonb,
    traceback      text,
    exc_type       text,
    exc_message    text,
    retries        integer NOT NULL,
    args           jsonb,
    kwargs         jsonb,
    worker         text,
    eta            timestamptz,
    date_pending   timestamptz,
    date_received  timestamptz,
    date_started   timestamptz,
    date_done      timestamptz NOT NULL,
    runtime        double precision,
    last_event_id  uuid NOT NULL,
    last_offset    bigint
);
CREATE INDEX task_meta_done_idx ON task_meta (date_done DESC, task_id DESC);
CREATE INDEX task_meta_status_idx ON task_meta (status, date_done DESC, task_id DESC);
CREATE INDEX task_meta_name_idx ON task_meta (name, date_done DESC, task_id DESC);
CREATE INDEX task_meta_worker_idx ON task_meta (worker, date_done DESC, task_id DESC);

CREATE TABLE task_event (
    event_id     uuid PRIMARY KEY,
    task_id      text NOT NULL,
    type         text NOT NULL,
    status       text,
    attempt      integer NOT NULL,
    occurred_at  timestamptz NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    payload      jsonb NOT NULL
);
CREATE INDEX task_event_task_idx ON task_event (task_id, partition, "offset");
CREATE INDEX task_event_time_idx ON task_event (occurred_at, task_id);

CREATE TABLE periodic_task_meta (
    name              text PRIMARY KEY,
    task              text,
    interval_seconds  double precision,
    enabled           boolean NOT NULL,
    last_run_at       timestamptz,
    total_run_count   integer NOT NULL,
    last_run_task_id  text,
    config_at         timestamptz,
    config_event_id   uuid,
    last_event_id     uuid NOT NULL,
    registered_at     timestamptz,
    registered_event_id uuid,
    last_run_event_id uuid
);

CREATE TABLE periodic_task_event (
    event_id     uuid PRIMARY KEY,
    name         text NOT NULL,
    type         text NOT NULL,
    task_id      text,
    occurred_at  timestamptz NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    payload      jsonb NOT NULL
);
CREATE INDEX periodic_task_event_name_idx ON periodic_task_event (name, occurred_at);
CREATE INDEX periodic_task_event_run_idx ON periodic_task_event (task_id);

CREATE TABLE projection_offsets (
    projection   text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

-- version 2 history_index
-- Time travel (ledger.projections.history): "what was each task's status at T?" ranks each
-- task's events by (attempt, precedence, occurred_at, event_id). This index hands them over
-- presorted by (task_id, attempt, occurred_at) with status and event_id included, so the
-- as-of query is an index-only scan (no heap visits, no full sort). Time-bounded reads of
-- one task's history use it too. 0001's task_event_time_idx (occurred_at, task_id) already
-- serves range scans by time.
CREATE INDEX IF NOT EXISTS task_event_rank_idx ON task_event (task_id, attempt, occurred_at) INCLUDE (status, event_id);

-- version 3 first_seen
-- Keyset pages on an immutable key (issue 12): first_seen is the occurred_at of the task's
-- first event in log order and never changes once the task exists. date_done moves with
-- every status change (backwards too, from a worker whose clock is behind), so pages ordered
-- by it repeated or skipped tasks that changed during a walk. Existing rows take it from
-- their stored history (what a rebuild computes), else from their earliest known date.
ALTER TABLE task_meta ADD COLUMN first_seen timestamptz;
UPDATE task_meta t SET first_seen = COALESCE(
    (SELECT e.occurred_at FROM task_event e WHERE e.task_id = t.task_id ORDER BY e.partition, e."offset" LIMIT 1),
    t.date_pending, t.date_received, t.date_started, t.date_done
);
ALTER TABLE task_meta ALTER COLUMN first_seen SET NOT NULL;

-- list_tasks orders by (first_seen, task_id), after an optional status, name or worker
-- equality. task_meta_done_idx (date_done, task_id) stays: since/until, expiry and the
-- stuck-task prefilter select on date_done.
DROP INDEX task_meta_status_idx;
DROP INDEX task_meta_name_idx;
DROP INDEX task_meta_worker_idx;
CREATE INDEX task_meta_first_seen_idx ON task_meta (first_seen DESC, task_id DESC);
CREATE INDEX task_meta_status_first_seen_idx ON task_meta (status, first_seen DESC, task_id DESC);
CREATE INDEX task_meta_name_first_seen_idx ON task_meta (name, first_seen DESC, task_id DESC);
CREATE INDEX task_meta_worker_first_seen_idx ON task_meta (worker, first_seen DESC, task_id DESC);

-- version 4 exc_args
-- The exception's args of the latest failure or retry (issue 12): what Celery's result
-- backends store as exc_message, so task_state() reads like one. Rows from before have none
-- (their events carried no args): readers fall back to [exc_message], as a rebuild would.
ALTER TABLE task_meta ADD COLUMN IF NOT EXISTS exc_args jsonb;

