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
