-- Files a person attached to an addressed message (a turn), as the platform
-- described them. The bytes are not kept: they are fetched, bounded, when
-- the turn is answered.
CREATE TABLE turn_files (
    turn_id TEXT NOT NULL REFERENCES turns(id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- `url` (a Discord attachment URL) or `telegram_file` (a file id).
    source_kind TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (turn_id, position)
);
