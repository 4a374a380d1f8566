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
