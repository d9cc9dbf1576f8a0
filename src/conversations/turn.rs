//! What a conversation is made of: the turn (one addressed message and its
//! answer), where it was said ([`Place`]), who said it ([`Author`]) and
//! where it is in its life ([`TurnState`]). Plain data, shared by the
//! store, the service and the platform shells.

use std::fmt;

use chrono::{DateTime, Utc};
use switchyard_routing::Platform;

/// A channel, thread or chat, by the platform's own id (decimal).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Place {
    pub platform: Platform,
    pub id: String,
}

impl Place {
    pub fn discord(id: u64) -> Place {
        Place {
            platform: Platform::Discord,
            id: id.to_string(),
        }
    }
    pub fn telegram(chat: i64) -> Place {
        Place {
            platform: Platform::Telegram,
            id: chat.to_string(),
        }
    }
    /// The conversation held in this place: `discord:<thread>` or `telegram:<chat>`.
    pub fn conversation_id(&self) -> ConversationId {
        ConversationId(format!("{}:{}", self.platform.as_str(), self.id))
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform.as_str(), self.id)
    }
}

/// `discord:<thread id>` or `telegram:<chat id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(pub String);

impl ConversationId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `turn_<platform>_<message id>`: one per platform message, so a message
/// seen twice (a gateway replay, a redelivered update) is one turn.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TurnId(pub String);

impl TurnId {
    pub fn for_message(platform: Platform, message_id: &str) -> TurnId {
        TurnId(format!("turn_{}_{message_id}", platform.as_str()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TurnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who wrote the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The platform's user id (decimal).
    pub id: String,
    pub name: String,
    /// A bot account (one of the fleet's, or another).
    pub is_bot: bool,
}

/// One addressed message, as a platform shell hands it over.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    /// Where it was posted: a channel, a thread or a chat.
    pub place: Place,
    /// The platform's id of the message (decimal).
    pub message_id: String,
    pub author: Author,
    /// The text, without the mention of the agent.
    pub text: String,
    /// Discord: posted in a channel (not a thread), so the answer opens a
    /// thread on the message.
    pub opens_thread: bool,
    pub received_at: DateTime<Utc>,
    /// Files the person attached to the message.
    pub files: Vec<IncomingFile>,
}

/// A file a person attached to a message, as the platform describes it.
/// Nothing is downloaded until the turn is answered, and then only from the
/// platform's own file host, bounded in size and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingFile {
    pub name: String,
    /// As the platform says (may be empty).
    pub content_type: String,
    /// As the platform says.
    pub size: u64,
    pub source: FileSource,
}

/// Where a file is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// Discord: the attachment's URL (checked against the CDN's host before any request).
    Url(String),
    /// Telegram: the file id (`getFile`, then the Bot API's file URL).
    TelegramFile(String),
}

impl FileSource {
    /// The kind and value as stored.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            FileSource::Url(u) => ("url", u),
            FileSource::TelegramFile(id) => ("telegram_file", id),
        }
    }
    pub fn from_parts(kind: &str, value: String) -> Option<FileSource> {
        match kind {
            "url" => Some(FileSource::Url(value)),
            "telegram_file" => Some(FileSource::TelegramFile(value)),
            _ => None,
        }
    }
}

impl IncomingFile {
    /// Whether the file is text the responder can be given to read.
    pub fn is_text(&self) -> bool {
        let t = self.content_type.split(';').next().unwrap_or("").trim();
        if t.starts_with("text/")
            || matches!(
                t,
                "application/json"
                    | "application/x-yaml"
                    | "application/yaml"
                    | "application/toml"
                    | "application/xml"
            )
        {
            return true;
        }
        let ext = self
            .name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        matches!(
            ext.as_str(),
            "txt"
                | "md"
                | "log"
                | "csv"
                | "json"
                | "yaml"
                | "yml"
                | "toml"
                | "diff"
                | "patch"
                | "rs"
                | "py"
                | "sh"
                | "ts"
                | "js"
                | "go"
                | "sql"
                | "xml"
                | "ini"
                | "conf"
        )
    }
}

impl TurnRequest {
    pub fn turn_id(&self) -> TurnId {
        TurnId::for_message(self.place.platform, &self.message_id)
    }
}

/// Where a turn is in its life (the `turns.state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TurnState {
    /// Recorded; nothing called yet.
    Received,
    /// The responder was called; the answer streams.
    Answering,
    /// Handed to another inbox; its `reply` item answers.
    WaitingReply,
    Answered,
    /// The responder failed; the thread says so.
    Failed,
    /// Refused before the responder was called (a budget, the bot-pair guard).
    Refused,
    /// The process died while answering; closed at the next start.
    Interrupted,
}

impl TurnState {
    pub const ALL: [TurnState; 7] = [
        TurnState::Received,
        TurnState::Answering,
        TurnState::WaitingReply,
        TurnState::Answered,
        TurnState::Failed,
        TurnState::Refused,
        TurnState::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TurnState::Received => "received",
            TurnState::Answering => "answering",
            TurnState::WaitingReply => "waiting_reply",
            TurnState::Answered => "answered",
            TurnState::Failed => "failed",
            TurnState::Refused => "refused",
            TurnState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<TurnState> {
        TurnState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A final state: the turn is over.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            TurnState::Received | TurnState::Answering | TurnState::WaitingReply
        )
    }
}

/// A stored turn.
#[derive(Debug, Clone)]
pub struct Turn {
    pub id: TurnId,
    pub conversation: Option<ConversationId>,
    pub place: Place,
    pub message_id: String,
    pub author: Author,
    pub text: String,
    pub state: TurnState,
    /// What was shown so far (the last edit), then the whole answer.
    pub answer: String,
    /// The platform messages the answer was posted as, in order.
    pub messages: Vec<String>,
    pub reason: Option<String>,
    pub usage: Usage,
    pub received_at: DateTime<Utc>,
}

/// What an answer cost, as the responder reported it (or estimated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn total(self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// One earlier exchange, for the responder's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub author: String,
    pub text: String,
    pub answer: String,
}
