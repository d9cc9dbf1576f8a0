//! How conversations and turns are kept (migration 0008, tables `conversations`,
//! `turns`, `turn_files`), as `Store` methods written beside the data they
//! keep (the store module's own rule: sibling modules reach the pool through
//! `Store::pool`), so that the store never imports this domain. A turn is recorded before
//! anything is called, moves through its states with guarded updates (so it
//! is answered at most once), and keeps what was shown so far, so that a
//! turn cut short by a crash can be closed honestly at the next start.

use anyhow::Context;
use chrono::{DateTime, Utc};
use switchyard_routing::Platform;

use super::turn::{
    Author, ConversationId, Exchange, FileSource, IncomingFile, Place, Turn, TurnId, TurnRequest,
    TurnState, Usage,
};
use crate::store::{Store, from_millis, millis};

type TurnRow = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    i64,
);

/// `SELECT <every turn column> FROM turns <rest>`, as a literal (sqlx takes no built strings).
macro_rules! select_turns {
    ($rest:literal) => {
        concat!(
            "SELECT id, conversation_id, platform, channel, message_id, author_id, author_name, ",
            "author_is_bot, text, state, answer, messages, reason, prompt_tokens, completion_tokens, ",
            "received_at FROM turns ",
            $rest
        )
    };
}

fn platform(s: &str) -> anyhow::Result<Platform> {
    match s {
        "discord" => Ok(Platform::Discord),
        "telegram" => Ok(Platform::Telegram),
        other => anyhow::bail!("a stored turn names an unknown platform {other:?}"),
    }
}

fn turn_of(r: TurnRow) -> anyhow::Result<Turn> {
    let state = TurnState::parse(&r.9)
        .with_context(|| format!("a stored turn has an unknown state {:?}", r.9))?;
    Ok(Turn {
        id: TurnId(r.0),
        conversation: r.1.map(ConversationId),
        place: Place {
            platform: platform(&r.2)?,
            id: r.3,
        },
        message_id: r.4,
        author: Author {
            id: r.5,
            name: r.6,
            is_bot: r.7 != 0,
        },
        text: r.8,
        state,
        answer: r.10,
        messages: serde_json::from_str(&r.11).context("a stored turn's messages do not parse")?,
        reason: r.12,
        usage: Usage {
            prompt_tokens: r.13.max(0) as u64,
            completion_tokens: r.14.max(0) as u64,
        },
        received_at: from_millis(r.15),
    })
}

impl Store {
    /// Record a turn (state `received`). `false`: this message is already a
    /// turn (seen before), and nothing changed.
    pub async fn record_turn(
        &self,
        req: &TurnRequest,
        conversation: Option<&ConversationId>,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "INSERT INTO turns (id, conversation_id, platform, channel, message_id, author_id, author_name, \
             author_is_bot, text, state, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'received', $10) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(req.turn_id().as_str())
        .bind(conversation.map(ConversationId::as_str))
        .bind(req.place.platform.as_str())
        .bind(&req.place.id)
        .bind(&req.message_id)
        .bind(&req.author.id)
        .bind(&req.author.name)
        .bind(i64::from(req.author.is_bot))
        .bind(&req.text)
        .bind(millis(req.received_at))
        .execute(self.pool())
        .await
        .context("cannot record a turn")?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        for (position, f) in req.files.iter().enumerate() {
            let (kind, source) = f.source.parts();
            sqlx::query(
                "INSERT INTO turn_files (turn_id, position, name, content_type, size, source_kind, source) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (turn_id, position) DO NOTHING",
            )
            .bind(req.turn_id().as_str())
            .bind(position as i64)
            .bind(&f.name)
            .bind(&f.content_type)
            .bind(i64::try_from(f.size).unwrap_or(i64::MAX))
            .bind(kind)
            .bind(source)
            .execute(self.pool())
            .await
            .context("cannot record a turn's files")?;
        }
        Ok(true)
    }

    /// The files attached to a turn's message, in order.
    pub async fn turn_files(&self, id: &TurnId) -> anyhow::Result<Vec<IncomingFile>> {
        let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
            "SELECT name, content_type, size, source_kind, source FROM turn_files WHERE turn_id = $1 ORDER BY position",
        )
        .bind(id.as_str())
        .fetch_all(self.pool())
        .await
        .context("cannot read a turn's files")?;
        rows.into_iter()
            .map(|(name, content_type, size, kind, source)| {
                let source = FileSource::from_parts(&kind, source).with_context(|| {
                    format!("a stored file has an unknown source kind {kind:?}")
                })?;
                Ok(IncomingFile {
                    name,
                    content_type,
                    size: size.max(0) as u64,
                    source,
                })
            })
            .collect()
    }

    /// Open the conversation held in `place` (nothing if it exists).
    pub async fn open_conversation(
        &self,
        place: &Place,
        parent: Option<&str>,
        opened_by: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<ConversationId> {
        let id = place.conversation_id();
        sqlx::query(
            "INSERT INTO conversations (id, platform, place, parent, opened_by, opened_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(place.platform.as_str())
        .bind(&place.id)
        .bind(parent)
        .bind(opened_by)
        .bind(millis(now))
        .execute(self.pool())
        .await
        .context("cannot open a conversation")?;
        Ok(id)
    }

    /// Whether this agent holds a conversation in `place` (a thread it opened).
    pub async fn has_conversation(&self, place: &Place) -> anyhow::Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM conversations WHERE id = $1")
            .bind(place.conversation_id().as_str())
            .fetch_optional(self.pool())
            .await
            .context("cannot read conversations")?;
        Ok(row.is_some())
    }

    /// The Discord threads this agent holds conversations in.
    pub async fn conversation_threads(&self) -> anyhow::Result<Vec<u64>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT place FROM conversations WHERE platform = 'discord'")
                .fetch_all(self.pool())
                .await
                .context("cannot read conversations")?;
        Ok(rows.into_iter().filter_map(|(p,)| p.parse().ok()).collect())
    }

    pub async fn set_turn_conversation(
        &self,
        turn: &TurnId,
        conversation: &ConversationId,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE turns SET conversation_id = $1 WHERE id = $2")
            .bind(conversation.as_str())
            .bind(turn.as_str())
            .execute(self.pool())
            .await
            .context("cannot store a turn's conversation")?;
        Ok(())
    }

    /// Move a turn from `from` to `to`; `false` when it was not in `from`
    /// (another path got there first, so this one must not act).
    pub async fn move_turn(
        &self,
        turn: &TurnId,
        from: TurnState,
        to: TurnState,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE turns SET state = $1, started_at = COALESCE(started_at, $2) WHERE id = $3 AND state = $4",
        )
        .bind(to.as_str())
        .bind(millis(now))
        .bind(turn.as_str())
        .bind(from.as_str())
        .execute(self.pool())
        .await
        .context("cannot update a turn")?;
        Ok(r.rows_affected() == 1)
    }

    /// What an answering turn shows so far.
    pub async fn turn_progress(
        &self,
        turn: &TurnId,
        shown: &str,
        messages: &[String],
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE turns SET answer = $1, messages = $2 WHERE id = $3 AND state = 'answering'",
        )
        .bind(shown)
        .bind(serde_json::to_string(messages).unwrap_or_else(|_| "[]".into()))
        .bind(turn.as_str())
        .execute(self.pool())
        .await
        .context("cannot store a turn's progress")?;
        Ok(())
    }

    /// End a turn that is not over yet. `false`: it was already over.
    pub async fn finish_turn(&self, turn: &TurnId, end: &TurnEnd<'_>) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE turns SET state = $1, answer = $2, messages = $3, reason = $4, prompt_tokens = $5, \
             completion_tokens = $6, finished_at = $7 \
             WHERE id = $8 AND state IN ('received', 'answering', 'waiting_reply')",
        )
        .bind(end.state.as_str())
        .bind(end.answer)
        .bind(serde_json::to_string(end.messages).unwrap_or_else(|_| "[]".into()))
        .bind(end.reason)
        .bind(end.usage.prompt_tokens as i64)
        .bind(end.usage.completion_tokens as i64)
        .bind(millis(end.at))
        .bind(turn.as_str())
        .execute(self.pool())
        .await
        .context("cannot finish a turn")?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn turn(&self, id: &TurnId) -> anyhow::Result<Option<Turn>> {
        let row: Option<TurnRow> = sqlx::query_as(select_turns!("WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .context("cannot read a turn")?;
        row.map(turn_of).transpose()
    }

    /// Every turn in `state`, oldest first.
    pub async fn turns_in(&self, state: TurnState) -> anyhow::Result<Vec<Turn>> {
        let rows: Vec<TurnRow> =
            sqlx::query_as(select_turns!("WHERE state = $1 ORDER BY received_at, id"))
                .bind(state.as_str())
                .fetch_all(self.pool())
                .await
                .context("cannot read turns")?;
        rows.into_iter().map(turn_of).collect()
    }

    /// The last `limit` answered exchanges of a conversation before `before`, oldest first.
    pub async fn history(
        &self,
        conversation: &ConversationId,
        before: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<Vec<Exchange>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT author_name, text, answer FROM turns WHERE conversation_id = $1 AND state = 'answered' \
             AND received_at < $2 ORDER BY received_at DESC, id DESC LIMIT $3",
        )
        .bind(conversation.as_str())
        .bind(millis(before))
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await
        .context("cannot read a conversation's history")?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|(author, text, answer)| Exchange {
                author,
                text,
                answer,
            })
            .collect())
    }

    /// Tokens spent by turns finished since `since` (in one conversation, or all).
    pub async fn tokens_since(
        &self,
        since: DateTime<Utc>,
        conversation: Option<&ConversationId>,
    ) -> anyhow::Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM turns \
             WHERE finished_at >= $1 AND ($2 IS NULL OR conversation_id = $2)",
        )
        .bind(millis(since))
        .bind(conversation.map(ConversationId::as_str))
        .fetch_one(self.pool())
        .await
        .context("cannot sum the tokens spent")?;
        Ok(n.max(0) as u64)
    }

    /// The fleet's memory log as this agent saw it: the last `limit`
    /// `memory_update` events (title and body), oldest first.
    pub async fn memory_log(&self, limit: usize) -> anyhow::Result<Vec<String>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT title, payload FROM events WHERE category = 'memory_update' \
             ORDER BY occurred_at DESC, event_id DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await
        .context("cannot read the memory log")?;
        Ok(rows
            .into_iter()
            .rev()
            .map(|(title, payload)| {
                let body = serde_json::from_str::<serde_json::Value>(&payload)
                    .ok()
                    .and_then(|v| v.get("body").and_then(|b| b.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                if body.is_empty() {
                    title
                } else {
                    format!("{title}: {body}")
                }
            })
            .collect())
    }

    /// How many turns are in each state (for `/metrics` and `status`).
    pub async fn turn_counts(&self) -> anyhow::Result<Vec<(TurnState, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM turns GROUP BY state")
                .fetch_all(self.pool())
                .await
                .context("cannot count turns")?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| Some((TurnState::parse(&s)?, n.max(0) as u64)))
            .collect())
    }
}

/// How a turn ended.
#[derive(Debug, Clone)]
pub struct TurnEnd<'a> {
    pub state: TurnState,
    pub answer: &'a str,
    pub messages: &'a [String],
    pub reason: Option<&'a str>,
    pub usage: Usage,
    pub at: DateTime<Utc>,
}
