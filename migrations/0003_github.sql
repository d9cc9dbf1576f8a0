-- GitHub monitor (issue 7): the task registry, what the monitor remembers
-- per task, and the ETag cache that makes an unchanged pass free.
-- Portable SQL: the same file serves SQLite and PostgreSQL.

CREATE TABLE github_tasks (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    repo TEXT NOT NULL,
    branch TEXT NOT NULL,
    status TEXT NOT NULL,
    -- the registry entry (seed 001's active-tasks.json fields), verbatim JSON
    record TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX github_tasks_agent ON github_tasks (agent, status);

CREATE TABLE github_monitor_state (
    task_id TEXT PRIMARY KEY REFERENCES github_tasks (id) ON DELETE CASCADE,
    -- status message text, ready ping head sha, last failure, escalation (JSON)
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE github_etags (
    url TEXT PRIMARY KEY,
    etag TEXT NOT NULL,
    body TEXT NOT NULL,
    fetched_at BIGINT NOT NULL
);
