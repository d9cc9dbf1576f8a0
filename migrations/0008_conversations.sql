-- Conversations and their turns (DESIGN 4.7).
--
-- A conversation is where an agent talks with people: a Discord thread it
-- opened (or owns), or a Telegram chat. Its id is `discord:<thread id>` or
-- `telegram:<chat id>`.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    -- The thread or chat the answers go to.
    place TEXT NOT NULL,
    -- The channel a Discord thread was opened in (NULL for a Telegram chat).
    parent TEXT,
    opened_by TEXT NOT NULL,
    opened_at INTEGER NOT NULL
);

-- A turn is one addressed message and its answer. Its id is made from the
-- platform's message id, so the same message is one turn however often it
-- is seen: it is answered at most once.
--
-- state: `received` (recorded, nothing called yet), `answering` (the
-- responder was called; `messages` lists what was posted so far),
-- `waiting_reply` (handed to another agent or program, which answers with a
-- `reply` item), `answered`, `failed` (`reason` says why, and the thread
-- says so), `refused` (a budget or the bot-pair guard; the thread says so),
-- `interrupted` (the process died while answering; closed at start).
CREATE TABLE turns (
    id TEXT PRIMARY KEY,
    -- NULL until the thread of a mention in a channel exists.
    conversation_id TEXT REFERENCES conversations(id),
    platform TEXT NOT NULL,
    -- Where the message was posted (a channel, a thread or a chat).
    channel TEXT NOT NULL,
    message_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    author_is_bot INTEGER NOT NULL DEFAULT 0,
    text TEXT NOT NULL,
    state TEXT NOT NULL,
    -- The answer as shown so far (the last edit), then the whole answer.
    answer TEXT NOT NULL DEFAULT '',
    -- JSON array of the platform message ids the answer was posted as.
    messages TEXT NOT NULL DEFAULT '[]',
    reason TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE INDEX turns_by_conversation ON turns (conversation_id, received_at);
CREATE INDEX turns_by_state ON turns (state, received_at);
CREATE INDEX turns_by_finish ON turns (finished_at);
