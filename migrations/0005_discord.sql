-- The Discord adapter's small persistent state, by key: the hash of the
-- command set last registered per application and guild (registration is
-- skipped when unchanged: Discord allows 200 creates per guild per day) and
-- the status board's message id per channel (edited in place across restarts).

CREATE TABLE discord_state (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
