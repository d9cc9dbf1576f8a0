-- The fleet's shared state on PostgreSQL (fleet.coordination): the status
-- document that status.json holds in a workspace directory (heartbeats and
-- agent states, locks, mutes, the kill switch), in one row changed under its
-- row lock. `version` counts the changes, so that readers can tell whether
-- their copy is current without reading the document.
CREATE TABLE IF NOT EXISTS fleet_status (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    doc TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
