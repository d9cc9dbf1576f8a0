//! The two ports a conversation needs: a [`Responder`] that writes the
//! answer (a model endpoint, a program), and a [`ChatPort`] that shows it
//! (the Discord or Telegram adapter). Both are object-safe so the
//! composition root can pick them from the configuration.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

use super::turn::{IncomingFile, Place, Usage};
use crate::files::FileData;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who speaks in a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: String,
}

/// What the responder is given: the system context, the history, the question.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub messages: Vec<PromptMessage>,
}

impl Prompt {
    pub fn chars(&self) -> usize {
        self.messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum()
    }
}

/// Why a responder gave no (whole) answer. The text is for the people in
/// the thread: it never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponderError {
    #[error("the model endpoint could not be reached ({0})")]
    Unreachable(String),
    #[error("the model endpoint refused the request (HTTP {status}: {detail})")]
    Refused { status: u16, detail: String },
    #[error("the model endpoint is rate-limiting us{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs().max(1))).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("the model endpoint failed (HTTP {0})")]
    ServerError(u16),
    #[error("no answer within {}s", .0.as_secs())]
    TimedOut(Duration),
    #[error("the answer's stream broke off ({0})")]
    Broken(String),
    #[error("the model endpoint sent something that is not an answer ({0})")]
    Garbage(String),
    #[error("the answering command {0}")]
    CommandFailed(String),
}

impl ResponderError {
    /// The short name used in logs and metrics.
    /// Every value [`ResponderError::kind`] takes.
    pub const KINDS: [&'static str; 8] = [
        "unreachable",
        "refused",
        "rate_limited",
        "server_error",
        "timed_out",
        "broken_stream",
        "garbage",
        "command_failed",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            ResponderError::Unreachable(_) => "unreachable",
            ResponderError::Refused { .. } => "refused",
            ResponderError::RateLimited { .. } => "rate_limited",
            ResponderError::ServerError(_) => "server_error",
            ResponderError::TimedOut(_) => "timed_out",
            ResponderError::Broken(_) => "broken_stream",
            ResponderError::Garbage(_) => "garbage",
            ResponderError::CommandFailed(_) => "command_failed",
        }
    }
}

/// Writes answers. `respond` sends the answer's text into `out` as it
/// arrives (pieces, in order) and returns what it cost.
pub trait Responder: Send + Sync + 'static {
    fn respond(
        &self,
        prompt: Prompt,
        out: mpsc::Sender<String>,
    ) -> BoxFuture<'static, Result<Usage, ResponderError>>;
}

/// A platform request failed (after the adapter's own retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

/// Shows answers on one platform. Every call waits for the platform's rate
/// limits inside the adapter (the outbox's limiter).
pub trait ChatPort: Send + Sync + 'static {
    /// The longest message the platform takes, in characters.
    fn max_chars(&self) -> usize;
    /// Open a thread on `message` in `channel`; returns the thread's place.
    /// Opening it again (after a crash) returns the same thread.
    fn open_thread<'a>(
        &'a self,
        channel: &'a Place,
        message: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Place, PortError>>;
    /// Show the typing indicator (it lasts a few seconds).
    fn typing<'a>(&'a self, place: &'a Place) -> BoxFuture<'a, Result<(), PortError>>;
    /// Post a message; returns its id. `once`: a key that makes a repeat
    /// of this post (after a crash) return the first one where the
    /// platform can (Discord's nonce); Telegram cannot, and posts again.
    fn post<'a>(
        &'a self,
        place: &'a Place,
        text: &'a str,
        once: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, PortError>>;
    /// Replace a posted message's text. `yielding`: a streamed edit, which
    /// lets every other sender to the same place go first.
    fn edit<'a>(
        &'a self,
        place: &'a Place,
        message: &'a str,
        text: &'a str,
        yielding: bool,
    ) -> BoxFuture<'a, Result<(), PortError>>;
    /// Post files (a `reply` item's attachments) after the answer's text;
    /// returns the ids of the messages they went out as. `once` as for
    /// [`ChatPort::post`].
    fn post_files<'a>(
        &'a self,
        place: &'a Place,
        files: &'a [FileData],
        once: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<String>, PortError>> {
        let _ = (place, files, once);
        Box::pin(async { Err(PortError("this platform cannot post files".into())) })
    }
    /// Download a file a person attached, from the platform's own file host
    /// only, at most `max_bytes` (more is an error, not a cut). The caller
    /// bounds the time.
    fn fetch_file<'a>(
        &'a self,
        file: &'a IncomingFile,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, PortError>> {
        let _ = max_bytes;
        Box::pin(async move {
            Err(PortError(format!(
                "files cannot be fetched from {}",
                file.source.parts().0
            )))
        })
    }
}
