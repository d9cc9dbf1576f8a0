//! The port between the outbox and a chat platform: [`ChatSink`], what it
//! is given ([`OutgoingMessage`]) and how a send can end ([`Sent`],
//! [`SendError`]). The outbox decides what a failure means for the row
//! (retry, fail, ambiguous); the sink only says what happened on the wire.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use switchyard_routing::{Category, Destination, Platform, Severity};

use crate::files::{Attached, FileData, left_behind_line};
use crate::store::DeliveryRow;

/// A message ready to render, in the project's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub delivery_id: String,
    /// Deterministic per delivery and at most 25 characters: Discord's `nonce`.
    pub nonce: String,
    pub category: Category,
    pub severity: Severity,
    pub source: String,
    pub event_type: String,
    pub title: String,
    pub body: String,
    pub occurred_at: DateTime<Utc>,
    /// Parts of a split message already accepted by an earlier attempt.
    pub parts_sent: u32,
    /// The files that go with it, as kept with the delivery: sent, or named
    /// as left behind.
    pub files: Vec<Attached>,
}

impl OutgoingMessage {
    pub fn from_row(row: &DeliveryRow) -> Self {
        OutgoingMessage {
            delivery_id: row.id.clone(),
            nonce: nonce_for(&row.id),
            category: row.category.clone(),
            severity: row.severity,
            source: row.source.clone(),
            event_type: row.event_type.clone(),
            title: row.title.clone(),
            body: row.body.clone(),
            occurred_at: row.occurred_at,
            parts_sent: row.parts_sent,
            files: Vec::new(),
        }
    }

    /// The files that are sent.
    pub fn sent_files(&self) -> impl Iterator<Item = &FileData> {
        self.files.iter().filter_map(|f| match f {
            Attached::Read(f) => Some(f),
            Attached::LeftBehind { .. } => None,
        })
    }

    /// One line per file that stayed behind, saying why and where it is.
    pub fn left_behind_lines(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|f| match f {
                Attached::LeftBehind { path, why } => Some(left_behind_line(path, why)),
                Attached::Read(_) => None,
            })
            .collect()
    }

    /// The body with the left-behind lines under it.
    pub fn body_with_notes(&self) -> String {
        let notes = self.left_behind_lines();
        if notes.is_empty() {
            return self.body.clone();
        }
        let mut body = self.body.clone();
        if !body.is_empty() {
            body.push_str("\n\n");
        }
        body.push_str(&notes.join("\n"));
        body
    }

    /// The small line under a message: where it came from.
    pub fn footer(&self) -> String {
        format!("{} · {} · {}", self.source, self.event_type, self.category)
    }
}

/// Discord's nonce for a delivery: the id itself (ids are made to fit), or
/// a stable hash of it if an id ever grows past 25 characters.
pub fn nonce_for(delivery_id: &str) -> String {
    if delivery_id.len() <= 25 {
        return delivery_id.to_string();
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let h = delivery_id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("sy{h:016x}")
}

/// The platform accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The platform's id of the (first) message; several ids comma-separated when split.
    pub message_id: String,
    pub parts_sent: u32,
}

/// How a send failed, as far as the wire can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendErrorKind {
    /// 429: come back after `retry_after`. Not a failure of the message.
    RateLimited { retry_after: Duration, global: bool },
    /// It certainly did not arrive (refused connection, 5xx answer): try again.
    Transient,
    /// It may have arrived (timeout after the request went out).
    Unknown,
    /// The platform refused it; sending it again would be refused again.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: SendErrorKind,
    pub message: String,
    /// Parts of a split message that did arrive before the failure.
    pub parts_sent: u32,
}

impl SendError {
    pub fn new(kind: SendErrorKind, message: impl Into<String>) -> Self {
        SendError {
            kind,
            message: message.into(),
            parts_sent: 0,
        }
    }
    pub fn with_parts(mut self, parts_sent: u32) -> Self {
        self.parts_sent = parts_sent;
        self
    }
}

/// One chat platform, as the outbox sees it. Implemented by the Discord
/// and Telegram sinks and by in-memory fakes in tests.
pub trait ChatSink: Send + Sync + 'static {
    fn platform(&self) -> Platform;
    /// Whether this sink can deliver to the destination's alias at all.
    fn knows(&self, destination: &Destination) -> bool;
    /// Whether resending after an unknown outcome cannot post twice
    /// (true for Discord channels thanks to `enforce_nonce`).
    fn resend_is_safe(&self, destination: &Destination) -> bool;
    /// Messages per second `destination` takes when backed up, as its
    /// documented limits allow (what coalescing estimates a backlog with).
    fn drain_rate(&self, _destination: &Destination) -> f64 {
        1.0
    }
    /// Wait until the platform's limits allow the next message to `destination`.
    fn ready<'a>(&'a self, destination: &'a Destination) -> BoxFuture<'a, ()>;
    /// Send one message (all its parts).
    fn send<'a>(
        &'a self,
        destination: &'a Destination,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<Sent, SendError>>;
}

/// The sinks an agent has, one per platform.
#[derive(Clone, Default)]
pub struct Sinks {
    discord: Option<Arc<dyn ChatSink>>,
    telegram: Option<Arc<dyn ChatSink>>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks")
            .field("discord", &self.discord.is_some())
            .field("telegram", &self.telegram.is_some())
            .finish()
    }
}

impl Sinks {
    /// No sinks: every delivery fails with "no sink" until one is added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) the sink for its platform.
    pub fn with(mut self, sink: Arc<dyn ChatSink>) -> Self {
        match sink.platform() {
            Platform::Discord => self.discord = Some(sink),
            Platform::Telegram => self.telegram = Some(sink),
        }
        self
    }

    /// The sink for a destination's platform, if the agent has one.
    pub fn for_platform(&self, platform: Platform) -> Option<&Arc<dyn ChatSink>> {
        match platform {
            Platform::Discord => self.discord.as_ref(),
            Platform::Telegram => self.telegram.as_ref(),
        }
    }
}
