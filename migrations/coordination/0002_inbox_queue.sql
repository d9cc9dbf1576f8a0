-- Each agent's inbox as a queue (fleet.coordination): one row per drop of an
-- item. A claim takes the oldest ready row (or one whose lease lapsed) with
-- FOR UPDATE SKIP LOCKED and counts the attempt; the holder renews
-- `lease_until` while it works, and ends the row done or failed with the
-- result or the reason (JSON text). `drop_id` names one drop: an import of
-- the same drop-box file again (after a crash) finds its row instead of
-- queueing the item twice. As in an inbox directory, one item id waits or
-- runs at a time per agent.
CREATE TABLE IF NOT EXISTS inbox_items (
    drop_id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'running', 'done', 'failed')),
    attempt INTEGER NOT NULL DEFAULT 0,
    first_claimed_at TIMESTAMPTZ,
    lease_host TEXT,
    lease_pid INTEGER,
    lease_incarnation TEXT,
    lease_until TIMESTAMPTZ,
    result TEXT,
    -- The drop-box it came from (host and workspace), or NULL when it was queued directly.
    dropbox TEXT,
    queued_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    finished_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS inbox_items_one_waiting_per_id
    ON inbox_items (agent, id) WHERE state IN ('ready', 'running');
CREATE INDEX IF NOT EXISTS inbox_items_queue
    ON inbox_items (agent, queued_at) WHERE state IN ('ready', 'running');
