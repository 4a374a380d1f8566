-- Time travel (ledger.projections.history): "what was each task's status at T?" ranks each
-- task's events by (attempt, precedence, occurred_at, event_id). SQLite has no INCLUDE, so
-- status and event_id are trailing key columns: the window query reads this covering
-- index in (task_id, attempt) order without touching the table. 0001's
-- task_event_time_idx (occurred_at, task_id) already serves range scans by time.
CREATE INDEX IF NOT EXISTS task_event_rank_idx ON task_event (task_id, attempt, occurred_at, status, event_id);
