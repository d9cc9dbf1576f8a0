-- Approvals: a human's yes or no before risky work (DESIGN.md 4.4).
-- One row per request. The Telegram owner prompts, decides and notifies; an
-- agent without Telegram keeps its own row, forwards the request to the owner
-- and records the decision that comes back. Portable SQL, epoch milliseconds.

CREATE TABLE approvals (
    id                 TEXT PRIMARY KEY,
    summary            TEXT NOT NULL,
    detail             TEXT NOT NULL,
    task_id            TEXT,
    requested_by       TEXT NOT NULL,
    risk               INTEGER NOT NULL,
    reasons            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    status             TEXT NOT NULL,
    decided_by         TEXT,
    decided_at         BIGINT,
    required_approvers INTEGER NOT NULL,
    -- The secret the buttons carry (callback_data); never shown or logged.
    token              TEXT NOT NULL,
    -- The agent whose inbox gets the approval_decision (requests forwarded to us).
    reply_to           TEXT,
    -- When this agent handed the request to the Telegram owner (requests we forwarded).
    forwarded_at       BIGINT,
    chat_id            BIGINT,
    message_id         BIGINT,
    prompt_attempts    INTEGER NOT NULL DEFAULT 0,
    prompt_next_at     BIGINT NOT NULL DEFAULT 0,
    prompt_error       TEXT,
    reminded_at        BIGINT,
    escalated_at       BIGINT,
    -- Set once the decision is shown (message edited) and the requester notified.
    finalized_at       BIGINT,
    updated_at         BIGINT NOT NULL
);

CREATE UNIQUE INDEX approvals_token ON approvals (token);
CREATE INDEX approvals_status ON approvals (status, expires_at);

-- Who voted what. Two distinct approvers are two rows.
CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    voter       TEXT NOT NULL,
    voter_name  TEXT NOT NULL,
    decision    TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (approval_id, voter)
);

-- The next getUpdates offset per bot (the number before the token's colon):
-- a restart neither loses nor replays updates.
CREATE TABLE telegram_offsets (
    bot_id     BIGINT PRIMARY KEY,
    next_offset BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The approvals' audit trail is the audit table with the approval id as target.
CREATE INDEX audit_target ON audit (target, at);
