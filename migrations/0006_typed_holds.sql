-- A held message says what holds it, in columns of their own: a mute
-- (hold_kind 'mute', mute_id) or its category's digest window (hold_kind
-- 'digest', digest_category). Before this, a digest hold was written into
-- mute_id as 'digest:<category>'; those rows are converted here, so messages
-- held by an older release are still released afterwards.
-- Portable SQL: the table is rebuilt (SQLite cannot drop NOT NULL in place).

CREATE TABLE held_messages_typed (
    delivery_id      TEXT PRIMARY KEY REFERENCES deliveries (id),
    hold_kind        TEXT NOT NULL CHECK (hold_kind IN ('mute', 'digest')),
    mute_id          TEXT,
    digest_category  TEXT,
    event_id         TEXT NOT NULL REFERENCES events (event_id),
    destination      TEXT NOT NULL,
    held_at          BIGINT NOT NULL,
    released_at      BIGINT,
    CHECK ((hold_kind = 'mute' AND mute_id IS NOT NULL AND digest_category IS NULL)
        OR (hold_kind = 'digest' AND digest_category IS NOT NULL AND mute_id IS NULL))
);

INSERT INTO held_messages_typed
    (delivery_id, hold_kind, mute_id, digest_category, event_id, destination, held_at, released_at)
SELECT delivery_id,
       CASE WHEN mute_id LIKE 'digest:%' THEN 'digest' ELSE 'mute' END,
       CASE WHEN mute_id LIKE 'digest:%' THEN NULL ELSE mute_id END,
       CASE WHEN mute_id LIKE 'digest:%' THEN substr(mute_id, 8) ELSE NULL END,
       event_id, destination, held_at, released_at
FROM held_messages;

DROP TABLE held_messages;
ALTER TABLE held_messages_typed RENAME TO held_messages;

CREATE INDEX held_messages_mute ON held_messages (mute_id, released_at);
CREATE INDEX held_messages_digest ON held_messages (digest_category, released_at);

-- The outbox row of a digest hold kept the same string in its mute_id.
UPDATE deliveries SET mute_id = NULL WHERE mute_id LIKE 'digest:%';
