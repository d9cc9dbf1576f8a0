//! The `inbox` responder: a turn is handed to another inbox (a peer agent,
//! or a program such as a coding agent reading `<workspace>/inbox/<to>/`)
//! as a `chat` item; the answer comes back as a `reply` item in this
//! agent's inbox (`{"kind": "reply", "to": "<turn id>", "text": "..."}`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::conversations::{Handoff, Prompt, Turn};

pub struct InboxHandoff {
    pub workspace: PathBuf,
    pub from: String,
    pub to: String,
    pub timeout: Duration,
}

/// The `chat` item a hand-off drops.
#[derive(Serialize)]
struct ChatItem<'a> {
    kind: &'static str,
    id: &'a str,
    from: &'a str,
    /// The inbox the `reply` goes to.
    reply_to: &'a str,
    author: &'a str,
    text: &'a str,
    /// What a model responder would have been given (persona, status, history, question).
    prompt: Vec<PromptLine<'a>>,
    reply_within_secs: u64,
}

#[derive(Serialize)]
struct PromptLine<'a> {
    role: &'static str,
    content: &'a str,
}

impl Handoff for InboxHandoff {
    fn hand_off(&self, turn: &Turn, prompt: &Prompt) -> anyhow::Result<()> {
        let item = ChatItem {
            kind: "chat",
            id: turn.id.as_str(),
            from: &self.from,
            reply_to: &self.from,
            author: &turn.author.name,
            text: &turn.text,
            prompt: prompt
                .messages
                .iter()
                .map(|m| PromptLine {
                    role: m.role.as_str(),
                    content: &m.content,
                })
                .collect(),
            reply_within_secs: self.timeout.as_secs(),
        };
        let value = serde_json::to_value(&item)?;
        crate::coord::drop_item(&self.workspace, &self.to, turn.id.as_str(), &value)?;
        Ok(())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
}
