//! The Discord side of conversations: the [`ChatPort`] that opens a thread
//! on a mention, shows the typing indicator, posts and edits the streamed
//! answer, every request through the outbox's limiter (a 429 is obeyed,
//! counted and retried).

use std::sync::Arc;

use poise::serenity_prelude as serenity;
use serenity::{ChannelId, CreateAllowedMentions, EditMessage, Http, MessageId};

use crate::conversations::{BoxFuture, ChatPort, FileSource, IncomingFile, Place, PortError};
use crate::delivery::{ChannelBucket, DiscordLimiter, DiscordSink, SendErrorKind};
use crate::files::FileData;

/// Discord's limit on a message's content.
pub const MAX_CHARS: usize = 2000;
/// How often a request refused with a 429 is tried again.
const ATTEMPTS: u32 = 5;

pub struct DiscordChat {
    sink: Arc<DiscordSink>,
    http: Arc<Http>,
    limits: DiscordLimiter,
}

impl DiscordChat {
    pub fn new(sink: Arc<DiscordSink>, limits: DiscordLimiter) -> DiscordChat {
        DiscordChat {
            http: sink.http(),
            sink,
            limits,
        }
    }
}

impl DiscordChat {
    /// One post (text, and files if any), a 429 waited out and tried again.
    async fn post_retrying(
        &self,
        channel: u64,
        text: &str,
        files: &[&FileData],
        once: Option<&str>,
    ) -> Result<String, PortError> {
        let nonce = once.map(crate::delivery::sink::nonce_for);
        for _ in 0..ATTEMPTS {
            match self
                .sink
                .post_files_once(channel, text, files, nonce.clone())
                .await
            {
                Ok(m) => return Ok(m.to_string()),
                Err(e) => match e.kind {
                    SendErrorKind::RateLimited { retry_after, .. } => {
                        tokio::time::sleep(retry_after).await
                    }
                    _ => return Err(PortError(e.message)),
                },
            }
        }
        Err(PortError("Discord kept answering 429".into()))
    }
}

fn id(place: &Place) -> Result<u64, PortError> {
    place
        .id
        .parse()
        .map_err(|_| PortError(format!("{place} is not a Discord channel")))
}

fn is_429(e: &serenity::Error) -> bool {
    matches!(e, serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r)) if r.status_code.as_u16() == 429)
}

impl ChatPort for DiscordChat {
    fn max_chars(&self) -> usize {
        MAX_CHARS
    }

    fn open_thread<'a>(
        &'a self,
        channel: &'a Place,
        message: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Place, PortError>> {
        Box::pin(async move {
            let channel = id(channel)?;
            let message: u64 = message
                .parse()
                .map_err(|_| PortError(format!("{message} is not a Discord message id")))?;
            for _ in 0..ATTEMPTS {
                match self.sink.start_thread(channel, message, name).await {
                    Ok(thread) => return Ok(Place::discord(thread)),
                    Err(e) => match e.kind {
                        SendErrorKind::RateLimited { retry_after, .. } => {
                            tokio::time::sleep(retry_after).await
                        }
                        // A thread started from a message has the message's id:
                        // one started before a crash is the same thread.
                        _ if e.message.contains("160004") => return Ok(Place::discord(message)),
                        _ => return Err(PortError(e.message)),
                    },
                }
            }
            Err(PortError("Discord kept answering 429 to the thread".into()))
        })
    }

    fn typing<'a>(&'a self, place: &'a Place) -> BoxFuture<'a, Result<(), PortError>> {
        Box::pin(async move {
            let channel = id(place)?;
            self.limits.before_typing(channel).await;
            self.http
                .broadcast_typing(ChannelId::new(channel))
                .await
                .map_err(|e| {
                    self.limits.after_error(channel, ChannelBucket::Post, &e);
                    PortError(e.to_string())
                })
        })
    }

    fn post<'a>(
        &'a self,
        place: &'a Place,
        text: &'a str,
        once: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, PortError>> {
        Box::pin(async move {
            let channel = id(place)?;
            self.post_retrying(channel, text, &[], once).await
        })
    }

    fn edit<'a>(
        &'a self,
        place: &'a Place,
        message: &'a str,
        text: &'a str,
        yielding: bool,
    ) -> BoxFuture<'a, Result<(), PortError>> {
        Box::pin(async move {
            let channel = id(place)?;
            let message: u64 = message
                .parse()
                .map_err(|_| PortError(format!("{message} is not a Discord message id")))?;
            let edit = EditMessage::new()
                .content(text)
                .allowed_mentions(CreateAllowedMentions::new());
            for _ in 0..ATTEMPTS {
                if yielding {
                    self.limits.before_edit_yielding(channel).await;
                } else {
                    self.limits.before_edit(channel).await;
                }
                match self
                    .http
                    .edit_message(
                        ChannelId::new(channel),
                        MessageId::new(message),
                        &edit,
                        Vec::new(),
                    )
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) if is_429(&e) => {
                        self.limits.after_error(channel, ChannelBucket::Edit, &e)
                    }
                    Err(e) => {
                        self.limits.after_error(channel, ChannelBucket::Edit, &e);
                        return Err(PortError(e.to_string()));
                    }
                }
            }
            Err(PortError("Discord kept answering 429 to the edit".into()))
        })
    }

    fn post_files<'a>(
        &'a self,
        place: &'a Place,
        files: &'a [FileData],
        once: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<String>, PortError>> {
        Box::pin(async move {
            let channel = id(place)?;
            let names: Vec<String> = files.iter().map(|f| format!("📎 {}", f.path)).collect();
            let refs: Vec<&FileData> = files.iter().collect();
            let id = self
                .post_retrying(channel, &names.join("\n"), &refs, once)
                .await?;
            Ok(vec![id])
        })
    }

    fn fetch_file<'a>(
        &'a self,
        file: &'a IncomingFile,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, PortError>> {
        Box::pin(async move {
            match &file.source {
                FileSource::Url(url) => self
                    .sink
                    .fetch_attachment(url, max_bytes)
                    .await
                    .map_err(PortError),
                FileSource::TelegramFile(_) => Err(PortError(
                    "a Telegram file is not fetched through Discord".into(),
                )),
            }
        })
    }
}
