-- Tasks handed to container workers, their attempts and their records
-- (intent -> receipt -> verification, seed 001). Portable SQL: the same file
-- serves SQLite and PostgreSQL (TEXT ids, BIGINT epoch milliseconds, JSON as TEXT).
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    risk_score INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_state ON tasks (state);

CREATE TABLE task_records (
    task_id TEXT NOT NULL REFERENCES tasks (id),
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, kind)
);
