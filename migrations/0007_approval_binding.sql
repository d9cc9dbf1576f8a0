-- Approvals bound to what they decide (hardening: a decision cannot be
-- forged into the inbox).
--
-- `origin` says who made the request: `task` (this agent's task pipeline,
-- the only origin whose decision may run a task), `peer` (forwarded by
-- another agent of the fleet under the fleet secret), or `inbox` (an
-- `approval_request` item or the shell). `forwarded_to` is the agent a
-- request was handed to, so that only its decision is taken.
ALTER TABLE approvals ADD COLUMN origin TEXT NOT NULL DEFAULT 'inbox';
ALTER TABLE approvals ADD COLUMN forwarded_to TEXT;
-- Rows made before this migration: the pipeline's ids were `apr_task_<task>`.
UPDATE approvals SET origin = 'task' WHERE task_id IS NOT NULL AND id = 'apr_task_' || task_id AND reply_to IS NULL;
UPDATE approvals SET origin = 'peer' WHERE reply_to IS NOT NULL;

-- The approval a parked task waits on: set by the pipeline when it parks the
-- task, so a decision applies to this task only, and to this attempt only.
ALTER TABLE tasks ADD COLUMN approval_id TEXT;
UPDATE tasks SET approval_id = 'apr_task_' || id WHERE state = 'awaiting_approval';

-- Where a parked task's inbox item was filed (its name in done/), so that the
-- item ends where the task ends: done/, or failed/ when blocked or failed.
ALTER TABLE tasks ADD COLUMN item_file TEXT;
