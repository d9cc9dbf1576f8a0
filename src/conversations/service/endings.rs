//! How turns end: closed after a restart cut them short, failed or refused
//! with a sentence in the thread, and answered by a `reply` item (the
//! `inbox` responder) within its timeout.

use std::time::Duration;

use chrono::Utc;
use tracing::{info, warn};

use super::{Answerer, Conversations, INTERRUPTED, estimate_tokens};
use crate::conversations::records::TurnEnd;
use crate::conversations::stream;
use crate::conversations::turn::{Turn, TurnId, TurnState, Usage};
use crate::files::Attached;

impl Conversations {
    /// At start: learn the threads, close turns a crash cut short, answer
    /// turns recorded but never started, and wait again for replies.
    pub async fn recover(&self) -> anyhow::Result<()> {
        let threads = self.inner.store.conversation_threads().await?;
        self.inner
            .threads
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(threads);
        for turn in self.inner.store.turns_in(TurnState::Answering).await? {
            self.close_interrupted(turn).await;
        }
        for turn in self.inner.store.turns_in(TurnState::Received).await? {
            self.spawn_answer(turn.id);
        }
        for turn in self.inner.store.turns_in(TurnState::WaitingReply).await? {
            self.arm_reply_timeout(turn);
        }
        Ok(())
    }

    pub(super) async fn close_interrupted(&self, turn: Turn) {
        let place = self.answer_place(&turn);
        let mut messages = turn.messages.clone();
        let text = if let (Some(port), Some(last)) =
            (self.port(turn.place.platform), turn.messages.last())
        {
            // The last page as shown, with the sentence added (within the limit).
            let shown_pages = stream::pages(&turn.answer, port.max_chars());
            let last_page = shown_pages.last().cloned().unwrap_or_default();
            let closed = format!("{}\n\n{INTERRUPTED}", last_page.trim_end());
            let fits = closed.chars().count() <= port.max_chars();
            let r = if fits {
                port.edit(&place, last, &closed, false).await.map(|_| ())
            } else {
                port.post(&place, INTERRUPTED, None)
                    .await
                    .map(|id| messages.push(id))
            };
            if let Err(e) = r {
                warn!(turn = %turn.id, error = %e, "could not mark an interrupted answer");
            }
            format!("{}\n\n{INTERRUPTED}", turn.answer.trim_end())
        } else {
            if let Some(port) = self.port(turn.place.platform) {
                // The first page may have gone out just before the crash, unrecorded:
                // posted again under its key, Discord hands back that message,
                // which then says the answer was interrupted (no half-message stays).
                let note = format!("{}: {INTERRUPTED}", turn.author.name);
                let key = stream::page_key(&turn.id, 0);
                match port.post(&place, &note, Some(&key)).await {
                    Ok(id) => {
                        if let Err(e) = port.edit(&place, &id, &note, false).await {
                            warn!(turn = %turn.id, error = %e, "could not mark an interrupted answer");
                        }
                        messages.push(id)
                    }
                    Err(e) => {
                        warn!(turn = %turn.id, error = %e, "could not say an answer was interrupted")
                    }
                }
            }
            INTERRUPTED.to_string()
        };
        let end = TurnEnd {
            state: TurnState::Interrupted,
            answer: &text,
            messages: &messages,
            reason: Some("the agent stopped while answering"),
            usage: turn.usage,
            at: Utc::now(),
        };
        match self.inner.store.finish_turn(&turn.id, &end).await {
            Ok(_) => {
                self.inner.stats.ended(TurnState::Interrupted);
                info!(turn = %turn.id, "closed a turn a restart cut short");
            }
            Err(e) => {
                warn!(turn = %turn.id, error = format!("{e:#}"), "could not close an interrupted turn")
            }
        }
    }

    /// Post a sentence in the turn's place and end the turn in `state`.
    pub(super) async fn end_with_notice(
        &self,
        turn: &Turn,
        state: TurnState,
        notice: Option<&str>,
        reason: &str,
    ) {
        let mut messages = Vec::new();
        if let (Some(notice), Some(port)) = (notice, self.port(turn.place.platform)) {
            match port.post(&self.answer_place(turn), notice, None).await {
                Ok(id) => messages.push(id),
                Err(e) => warn!(turn = %turn.id, error = %e, "could not post a notice"),
            }
        }
        let end = TurnEnd {
            state,
            answer: notice.unwrap_or(""),
            messages: &messages,
            reason: Some(reason),
            usage: Usage::default(),
            at: Utc::now(),
        };
        if let Err(e) = self.inner.store.finish_turn(&turn.id, &end).await {
            warn!(turn = %turn.id, error = format!("{e:#}"), "could not end a turn");
        }
        self.inner.stats.ended(state);
    }

    pub(super) async fn fail(&self, id: &TurnId, reason: &str, shown: Option<(&[String], &str)>) {
        let Ok(Some(turn)) = self.inner.store.turn(id).await else {
            return;
        };
        if turn.state.is_final() {
            return;
        }
        let notice = format!("⚠️ I could not answer: {reason}. Ask again in a moment. (turn {id})");
        let mut messages: Vec<String> = shown.map(|(m, _)| m.to_vec()).unwrap_or_default();
        if let Some(port) = self.port(turn.place.platform) {
            match port.post(&self.answer_place(&turn), &notice, None).await {
                Ok(m) => messages.push(m),
                Err(e) => warn!(turn = %id, error = %e, "could not say a turn failed"),
            }
        }
        let answer = shown.map_or(String::new(), |(_, t)| t.to_string());
        let end = TurnEnd {
            state: TurnState::Failed,
            answer: &answer,
            messages: &messages,
            reason: Some(reason),
            usage: Usage::default(),
            at: Utc::now(),
        };
        if let Err(e) = self.inner.store.finish_turn(id, &end).await {
            warn!(turn = %id, error = format!("{e:#}"), "could not record a failed turn");
        }
        self.inner.stats.ended(TurnState::Failed);
    }

    pub(super) fn arm_reply_timeout(&self, turn: Turn) {
        let Answerer::Inbox(handoff) = self.answerer() else {
            return;
        };
        let deadline =
            turn.received_at + chrono::Duration::from_std(handoff.timeout()).unwrap_or_default();
        let this = self.clone();
        tokio::spawn(async move {
            let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            if let Ok(Some(t)) = this.inner.store.turn(&turn.id).await
                && t.state == TurnState::WaitingReply
            {
                this.inner.stats.responder_error("no_reply");
                let secs = this.reply_timeout().as_secs();
                this.fail(&turn.id, &format!("no reply came within {secs}s"), None)
                    .await;
            }
        });
    }

    fn reply_timeout(&self) -> Duration {
        match &self.answerer() {
            Answerer::Inbox(h) => h.timeout(),
            Answerer::Stream(_) => Duration::ZERO,
        }
    }

    /// A `reply` item's answer to turn `to`, with the files it attaches
    /// (read already; fitted here to the turn's platform).
    pub async fn reply(
        &self,
        to: &str,
        text: &str,
        attached: &[Attached],
    ) -> Result<TurnId, ReplyRefused> {
        let id = TurnId(to.to_string());
        let turn = match self.inner.store.turn(&id).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(ReplyRefused::UnknownTurn),
            Err(e) => return Err(ReplyRefused::Internal(format!("{e:#}"))),
        };
        if turn.state != TurnState::WaitingReply {
            return Err(ReplyRefused::Late(turn.state));
        }
        let Some(port) = self.port(turn.place.platform) else {
            return Err(ReplyRefused::Internal(
                "the platform adapter is not connected".into(),
            ));
        };
        let place = self.answer_place(&turn);
        let fitted = crate::files::fit(turn.place.platform, attached);
        let mut shown = text.to_string();
        let mut files = Vec::new();
        for f in fitted {
            match f {
                Attached::Read(f) => files.push(f),
                Attached::LeftBehind { path, why } => {
                    shown.push('\n');
                    shown.push_str(&crate::files::left_behind_line(&path, &why));
                }
            }
        }
        let text = shown.as_str();
        let mut messages = Vec::new();
        for (i, page) in stream::pages(text, port.max_chars())
            .into_iter()
            .enumerate()
        {
            match port
                .post(&place, &page, Some(&stream::page_key(&id, i)))
                .await
            {
                Ok(m) => messages.push(m),
                Err(e) => {
                    return Err(ReplyRefused::Internal(format!(
                        "could not post the reply: {e}"
                    )));
                }
            }
        }
        if !files.is_empty() {
            match port
                .post_files(&place, &files, Some(&format!("{}_files", id.as_str())))
                .await
            {
                Ok(ids) => messages.extend(ids),
                Err(e) => {
                    return Err(ReplyRefused::Internal(format!(
                        "could not post the reply's files: {e}"
                    )));
                }
            }
        }
        let usage = Usage {
            prompt_tokens: 0,
            completion_tokens: estimate_tokens(text.chars().count()),
        };
        let end = TurnEnd {
            state: TurnState::Answered,
            answer: text,
            messages: &messages,
            reason: None,
            usage,
            at: Utc::now(),
        };
        match self.inner.store.finish_turn(&id, &end).await {
            Ok(true) => {
                self.inner.stats.answered(usage, 0);
                Ok(id)
            }
            Ok(false) => Err(ReplyRefused::Late(TurnState::Answered)),
            Err(e) => Err(ReplyRefused::Internal(format!("{e:#}"))),
        }
    }
}

/// Why a `reply` item was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyRefused {
    #[error("no turn has this id: check `to` (it is the turn id the chat item carried)")]
    UnknownTurn,
    #[error("the turn is already {}: the reply came too late", .0.as_str())]
    Late(TurnState),
    #[error("{0}")]
    Internal(String),
}
