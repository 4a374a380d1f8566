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
