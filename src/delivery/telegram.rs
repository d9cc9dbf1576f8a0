//! The Telegram sink: teloxide's `Bot` calling `sendMessage` with HTML
//! parse mode, a long message split at 4096 characters, and Telegram's
//! limits kept ahead of time (1 message/s per chat, 20/min per group, 30/s
//! overall). Telegram has no idempotency key, so a send whose outcome is
//! unknown is reported as such by the outbox, never replayed. teloxide
//! types stop in this file.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use switchyard_routing::{Destination, Platform};
use teloxide::payloads::{SendDocumentSetters, SendMessageSetters, SendPhotoSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatId, InputFile, ParseMode};
use teloxide::{ApiError, Bot, RequestError};

use super::http::describe_reqwest;
use super::limiter::{RateLimiter, Rule};
use super::render;
use super::sink::{ChatSink, OutgoingMessage, SendError, SendErrorKind, Sent};
use crate::config::{Secret, TelegramSettings};
use crate::files::{FileData, TELEGRAM_MAX_PHOTO_BYTES};

/// Telegram's limits as (messages, window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelegramLimits {
    pub per_chat: (usize, Duration),
    /// Groups and channels (negative chat ids).
    pub per_group: (usize, Duration),
    pub overall: (usize, Duration),
}

impl Default for TelegramLimits {
    fn default() -> Self {
        TelegramLimits {
            per_chat: (1, Duration::from_secs(1)),
            per_group: (20, Duration::from_secs(60)),
            overall: (30, Duration::from_secs(1)),
        }
    }
}

/// Tuning of the Telegram sink.
#[derive(Debug, Clone)]
pub struct TelegramOptions {
    /// A request that has not answered by then is abandoned: its outcome is unknown.
    pub request_timeout: Duration,
    pub limits: TelegramLimits,
    /// Added to every window against network jitter.
    pub margin: Duration,
    /// How long since this bot last sent, by the agent's outbox (`None`:
    /// not known): a limiter starting after a restart or a takeover counts
    /// it toward its caution.
    pub quiet_for: Option<Duration>,
}

impl Default for TelegramOptions {
    fn default() -> Self {
        TelegramOptions {
            request_timeout: Duration::from_secs(15),
            limits: TelegramLimits::default(),
            margin: Duration::from_millis(50),
            quiet_for: None,
        }
    }
}

/// Delivers `telegram:<alias>` destinations to the configured chats.
pub struct TelegramSink {
    bot: Bot,
    chats: BTreeMap<String, ChatId>,
    limiter: std::sync::Arc<RateLimiter>,
    options: TelegramOptions,
}

/// The outbox's Telegram limiter, for the agent's other senders to the same
/// chats (approval prompts and their edits, command answers): each waits
/// its turn there, and every 429 is obeyed and counted.
#[derive(Clone)]
pub struct TelegramLimiter {
    limiter: std::sync::Arc<RateLimiter>,
    options: TelegramOptions,
    stats: std::sync::Arc<super::stats::DeliveryStats>,
}

impl TelegramLimiter {
    /// Wait until a message to (or an edit in) `chat` is allowed.
    pub async fn before_send(&self, chat: i64) {
        self.limiter
            .acquire(&rules(&self.options, ChatId(chat)))
            .await;
    }

    /// As [`TelegramLimiter::before_send`], behind every other sender
    /// waiting for `chat` (a streamed answer yields to prompts and alerts).
    pub async fn before_send_yielding(&self, chat: i64) {
        self.limiter
            .acquire_yielding(&rules(&self.options, ChatId(chat)))
            .await;
    }

    /// Telegram answered 429 for `chat`: count it, keep the chat closed for
    /// `retry_after`.
    pub fn after_429(&self, chat: i64, retry_after: Duration) {
        self.stats.on_429(switchyard_routing::Platform::Telegram);
        self.limiter
            .block(&format!("telegram:chat:{chat}"), retry_after);
    }
}

impl TelegramSink {
    /// The limiter this sink sends through, for the agent's other senders.
    pub fn limits(&self, stats: std::sync::Arc<super::stats::DeliveryStats>) -> TelegramLimiter {
        TelegramLimiter {
            limiter: self.limiter.clone(),
            options: self.options.clone(),
            stats,
        }
    }

    pub fn new(
        settings: &TelegramSettings,
        token: Secret,
        options: TelegramOptions,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
            .build()
            .context("cannot build the HTTP client")?;
        let api = url::Url::parse(&settings.api_base)
            .with_context(|| format!("telegram.api_base {:?} is not a URL", settings.api_base))?;
        let bot = Bot::with_client(token.expose(), client).set_api_url(api);
        let chats = settings
            .chats
            .iter()
            .map(|(a, id)| (a.clone(), ChatId(*id)))
            .collect();
        Ok(TelegramSink {
            bot,
            chats,
            limiter: std::sync::Arc::new(RateLimiter::after_quiet(
                Duration::from_secs(1),
                options.quiet_for,
            )),
            options,
        })
    }

    fn rules(&self, chat: ChatId) -> Vec<Rule> {
        rules(&self.options, chat)
    }

    async fn send_parts(&self, chat: ChatId, m: &OutgoingMessage) -> Result<Sent, SendError> {
        let parts = render::telegram_parts(m.severity, &m.title, &m.body_with_notes(), &m.footer());
        let files: Vec<&FileData> = m.sent_files().collect();
        // The text's parts, then one part per file: a retry after a partial
        // send resumes at the first part that did not arrive.
        let total = (parts.len() + files.len()) as u32;
        let first = m.parts_sent.min(total);
        let mut ids = Vec::new();
        let texts = parts.into_iter().map(Part::Text);
        let uploads = files.into_iter().map(Part::File);
        for (i, part) in texts.chain(uploads).enumerate().skip(first as usize) {
            let i = i as u32;
            // The outbox waited for the first slot; later parts wait here.
            if i > first {
                self.limiter.acquire(&self.rules(chat)).await;
            }
            let sent = match part {
                Part::Text(text) => self
                    .bot
                    .send_message(chat, text)
                    .parse_mode(ParseMode::Html)
                    .await
                    .map(|msg| msg.id),
                Part::File(file) => send_file(&self.bot, chat, file).await.map(|msg| msg.id),
            };
            match sent {
                Ok(id) => ids.push(id.0.to_string()),
                Err(e) => {
                    let e = classify(e);
                    if let SendErrorKind::RateLimited { retry_after, .. } = e.kind {
                        self.limiter
                            .block(&format!("telegram:chat:{}", chat.0), retry_after);
                    }
                    return Err(e.with_parts(i));
                }
            }
        }
        Ok(Sent {
            message_id: ids.join(","),
            parts_sent: total,
        })
    }
}

/// One file: an image Telegram takes as a photo goes by `sendPhoto`
/// (shown inline), anything else by `sendDocument`; the caption names it.
pub async fn send_file(
    bot: &Bot,
    chat: ChatId,
    file: &FileData,
) -> Result<teloxide::types::Message, RequestError> {
    let input = InputFile::memory(file.bytes.to_vec()).file_name(file.name.clone());
    let caption = format!("📎 {}", file.path);
    if file.is_image()
        && file.size() <= TELEGRAM_MAX_PHOTO_BYTES
        && file.content_type != "image/gif"
    {
        bot.send_photo(chat, input).caption(caption).await
    } else {
        bot.send_document(chat, input).caption(caption).await
    }
}

enum Part<'a> {
    Text(String),
    File(&'a FileData),
}

/// What a teloxide error means for the message. Texts never carry the
/// request URL (it contains the bot token).
fn classify(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::new(
            SendErrorKind::RateLimited {
                retry_after: s.duration(),
                global: false,
            },
            format!("429 from Telegram: retry after {}s", s.seconds()),
        ),
        RequestError::Network(e) => {
            let kind = if e.is_connect() {
                SendErrorKind::Transient
            } else {
                SendErrorKind::Unknown
            };
            SendError::new(kind, describe_reqwest(&e))
        }
        RequestError::Api(ApiError::Unknown(text)) => {
            // Telegram reports its own server trouble with these descriptions.
            let lower = text.to_ascii_lowercase();
            let kind = if lower.contains("gateway timeout") {
                SendErrorKind::Unknown
            } else if lower.contains("internal server error")
                || lower.contains("bad gateway")
                || lower.contains("service unavailable")
                || lower.starts_with("too many requests")
            {
                SendErrorKind::Transient
            } else {
                SendErrorKind::Rejected
            };
            SendError::new(kind, format!("Telegram: {text}"))
        }
        RequestError::Api(api) => SendError::new(
            SendErrorKind::Rejected,
            format!("Telegram refused it: {api}"),
        ),
        RequestError::MigrateToChatId(id) => SendError::new(
            SendErrorKind::Rejected,
            format!(
                "the group became a supergroup with id {}: put that id in [telegram.chats]",
                id.0
            ),
        ),
        // An answer came that was not the Bot API's JSON (a proxy's error page?): it may have been processed.
        RequestError::InvalidJson { raw, .. } => SendError::new(
            SendErrorKind::Unknown,
            format!(
                "Telegram answered with something that is not its JSON: {}",
                render::truncate(&raw, 200)
            ),
        ),
        RequestError::Io(e) => SendError::new(SendErrorKind::Transient, format!("I/O error: {e}")),
    }
}

impl ChatSink for TelegramSink {
    fn platform(&self) -> Platform {
        Platform::Telegram
    }

    fn knows(&self, dest: &Destination) -> bool {
        self.chats.contains_key(&dest.alias)
    }

    fn resend_is_safe(&self, _dest: &Destination) -> bool {
        false
    }

    fn drain_rate(&self, dest: &Destination) -> f64 {
        let l = &self.options.limits;
        let rate = |(n, w): (usize, Duration)| n as f64 / w.as_secs_f64().max(0.001);
        match self.chats.get(&dest.alias) {
            Some(chat) if chat.0 < 0 => rate(l.per_chat).min(rate(l.per_group)),
            _ => rate(l.per_chat),
        }
    }

    fn ready<'a>(&'a self, dest: &'a Destination) -> BoxFuture<'a, ()> {
        async move {
            if let Some(chat) = self.chats.get(&dest.alias) {
                self.limiter.acquire(&self.rules(*chat)).await;
            }
        }
        .boxed()
    }

    fn send<'a>(
        &'a self,
        dest: &'a Destination,
        m: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        async move {
            match self.chats.get(&dest.alias) {
                Some(chat) => self.send_parts(*chat, m).await,
                None => Err(SendError::new(
                    SendErrorKind::Rejected,
                    format!("{dest} is not a configured chat"),
                )),
            }
        }
        .boxed()
    }
}

/// Telegram's documented limits for one message to `chat`: overall, per
/// chat, and per group.
fn rules(options: &TelegramOptions, chat: ChatId) -> Vec<Rule> {
    let l = &options.limits;
    let m = options.margin;
    let mut rules = vec![
        Rule::Window {
            lane: "telegram:all".into(),
            limit: l.overall.0,
            window: l.overall.1 + m,
        },
        Rule::Window {
            lane: format!("telegram:chat:{}", chat.0),
            limit: l.per_chat.0,
            window: l.per_chat.1 + m,
        },
    ];
    if chat.0 < 0 {
        rules.push(Rule::Window {
            lane: format!("telegram:group:{}", chat.0),
            limit: l.per_group.0,
            window: l.per_group.1 + m,
        });
    }
    rules
}
