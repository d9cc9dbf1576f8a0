-- Files that go out with a delivery (an event's `attachments`).
--
-- The bytes are read once, when the event is recorded, and kept here, so a
-- retry or a restart sends exactly those bytes, however the file on disk
-- changed since. One row per file, in the message's order. A file that
-- stayed behind (missing, too big for the platform) has no content and says
-- why in `left_behind`; the message names it.
CREATE TABLE delivery_files (
    delivery_id TEXT NOT NULL REFERENCES deliveries(id),
    position INTEGER NOT NULL,
    -- The workspace-relative path the item named.
    path TEXT NOT NULL,
    -- The name the platform shows (safe characters, unique in the message).
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    -- The file, base64 (portable across both backends' column types).
    content TEXT,
    left_behind TEXT,
    PRIMARY KEY (delivery_id, position)
);

-- How many rows of delivery_files a delivery has (0 for most): the outbox
-- loads files only where there are some, and never merges such a message
-- into a coalesced summary.
ALTER TABLE deliveries ADD COLUMN files INTEGER NOT NULL DEFAULT 0;
