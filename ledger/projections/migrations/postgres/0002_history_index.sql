-- Time travel (ledger.projections.history): "what was each task's status at T?" ranks each
-- task's events by (attempt, precedence, occurred_at, event_id). This index hands them over
-- presorted by (task_id, attempt, occurred_at) with status and event_id included, so the
-- as-of query is an index-only scan (no heap visits, no full sort). Time-bounded reads of
-- one task's history use it too. 0001's task_event_time_idx (occurred_at, task_id) already
-- serves range scans by time.
CREATE INDEX IF NOT EXISTS task_event_rank_idx ON task_event (task_id, attempt, occurred_at) INCLUDE (status, event_id);
