-- The exception's args of the latest failure or retry (issue 12): what Celery's result
-- backends store as exc_message, so task_state() reads like one. Rows from before have none
-- (their events carried no args): readers fall back to [exc_message], as a rebuild would.
ALTER TABLE task_meta ADD COLUMN exc_args text;
