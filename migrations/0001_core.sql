-- switchyard core tables: events, the outbox (deliveries), held messages, audit.
-- Portable SQL (SQLite and PostgreSQL): TEXT ids made by the application,
-- BIGINT epoch milliseconds, INTEGER counters, JSON kept as TEXT.

CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    category     TEXT NOT NULL,
    severity     TEXT NOT NULL,
    source       TEXT NOT NULL,
    title        TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    recorded_at  BIGINT NOT NULL,
    payload      TEXT NOT NULL
);

CREATE INDEX events_recorded ON events (recorded_at);

-- One row per message to send. `seq` orders the outbox: per destination,
-- rows go out in seq order. What is rendered is copied here at enqueue time
-- so that notices and coalesced summaries (which have no event) look the same.
CREATE TABLE deliveries (
    id                  TEXT PRIMARY KEY,
    seq                 BIGINT NOT NULL,
    event_id            TEXT REFERENCES events (event_id),
    destination         TEXT NOT NULL,
    rule                TEXT NOT NULL,
    state               TEXT NOT NULL,
    category            TEXT NOT NULL,
    severity            TEXT NOT NULL,
    source              TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    title               TEXT NOT NULL,
    body                TEXT NOT NULL,
    occurred_at         BIGINT NOT NULL,
    mute_id             TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    parts_sent          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    last_error          TEXT,
    platform_message_id TEXT,
    coalesced_into      TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    sent_at             BIGINT
);

CREATE INDEX deliveries_queue ON deliveries (destination, state, seq);
CREATE INDEX deliveries_state ON deliveries (state);
CREATE INDEX deliveries_event ON deliveries (event_id);

-- Deliveries held by a mute, until the mute ends and they are summarised.
CREATE TABLE held_messages (
    delivery_id  TEXT PRIMARY KEY REFERENCES deliveries (id),
    mute_id      TEXT NOT NULL,
    event_id     TEXT NOT NULL REFERENCES events (event_id),
    destination  TEXT NOT NULL,
    held_at      BIGINT NOT NULL,
    released_at  BIGINT
);

CREATE INDEX held_messages_mute ON held_messages (mute_id, released_at);

CREATE TABLE audit (
    id       TEXT PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    detail   TEXT NOT NULL
);

CREATE INDEX audit_at ON audit (at);
