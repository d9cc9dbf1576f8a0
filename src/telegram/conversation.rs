//! The Telegram side of conversations: a non-command message from a
//! permitted user in a configured chat (or a reply to the bot) is a turn
//! of that chat's conversation, and the [`ChatPort`] shows the streamed
//! answer (`sendChatAction` typing, `sendMessage`, `editMessageText`),
//! every request through the outbox's limiter. Streamed edits yield to
//! every other sender to the chat, so an approval prompt is never held
//! behind a long answer.

use chrono::Utc;
use switchyard_commands::Caller;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{ChatAction, Message, MessageId};
use tracing::{info, warn};

use super::TelegramApprovals;
use crate::conversations::{
    Accepted, Author, BoxFuture, ChatPort, FileSource, IncomingFile, Place, PortError, TurnRequest,
};
use crate::delivery::TelegramLimiter;
use crate::files::FileData;

/// Telegram's limit on a message's text.
pub const MAX_CHARS: usize = 4096;
const ATTEMPTS: u32 = 5;

pub struct TelegramChat {
    bot: Bot,
    limiter: Option<TelegramLimiter>,
}

impl TelegramChat {
    /// The same bot and limiter as the approval prompts.
    pub fn new(tg: &TelegramApprovals) -> TelegramChat {
        TelegramChat {
            bot: tg.bot.clone(),
            limiter: tg.limiter.clone(),
        }
    }

    async fn before_send(&self, chat: i64, yielding: bool) {
        match (&self.limiter, yielding) {
            (Some(l), true) => l.before_send_yielding(chat).await,
            (Some(l), false) => l.before_send(chat).await,
            (None, _) => {}
        }
    }

    fn after_429(&self, chat: i64, retry_after: std::time::Duration) {
        if let Some(l) = &self.limiter {
            l.after_429(chat, retry_after);
        }
    }
}

fn chat(place: &Place) -> Result<ChatId, PortError> {
    place
        .id
        .parse()
        .map(ChatId)
        .map_err(|_| PortError(format!("{place} is not a Telegram chat")))
}

impl ChatPort for TelegramChat {
    fn max_chars(&self) -> usize {
        MAX_CHARS
    }

    fn open_thread<'a>(
        &'a self,
        channel: &'a Place,
        _message: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Place, PortError>> {
        // A Telegram chat is one conversation: no thread is opened.
        Box::pin(async move { Ok(channel.clone()) })
    }

    fn typing<'a>(&'a self, place: &'a Place) -> BoxFuture<'a, Result<(), PortError>> {
        Box::pin(async move {
            let chat = chat(place)?;
            self.before_send(chat.0, true).await;
            self.bot
                .send_chat_action(chat, ChatAction::Typing)
                .await
                .map(|_| ())
                .map_err(|e| PortError(e.to_string()))
        })
    }

    fn post<'a>(
        &'a self,
        place: &'a Place,
        text: &'a str,
        _once: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, PortError>> {
        Box::pin(async move {
            let chat = chat(place)?;
            for _ in 0..ATTEMPTS {
                self.before_send(chat.0, false).await;
                match self.bot.send_message(chat, text).await {
                    Ok(m) => return Ok(m.id.0.to_string()),
                    Err(RequestError::RetryAfter(s)) => self.after_429(chat.0, s.duration()),
                    Err(e) => return Err(PortError(e.to_string())),
                }
            }
            Err(PortError("Telegram kept answering 429".into()))
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
            let chat = chat(place)?;
            let id: i32 = message
                .parse()
                .map_err(|_| PortError(format!("{message} is not a Telegram message id")))?;
            for _ in 0..ATTEMPTS {
                self.before_send(chat.0, yielding).await;
                match self.bot.edit_message_text(chat, MessageId(id), text).await {
                    Ok(_) => return Ok(()),
                    Err(RequestError::RetryAfter(s)) => self.after_429(chat.0, s.duration()),
                    Err(RequestError::Api(teloxide::ApiError::MessageNotModified)) => return Ok(()),
                    Err(e) => return Err(PortError(e.to_string())),
                }
            }
            Err(PortError("Telegram kept answering 429 to the edit".into()))
        })
    }

    fn post_files<'a>(
        &'a self,
        place: &'a Place,
        files: &'a [FileData],
        _once: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<String>, PortError>> {
        Box::pin(async move {
            let chat = chat(place)?;
            let mut ids = Vec::new();
            for f in files {
                let mut tries = 0;
                loop {
                    self.before_send(chat.0, false).await;
                    match crate::delivery::telegram::send_file(&self.bot, chat, f).await {
                        Ok(m) => {
                            ids.push(m.id.0.to_string());
                            break;
                        }
                        Err(RequestError::RetryAfter(s)) if tries < ATTEMPTS => {
                            tries += 1;
                            self.after_429(chat.0, s.duration());
                        }
                        Err(e) => return Err(PortError(e.to_string())),
                    }
                }
            }
            Ok(ids)
        })
    }

    fn fetch_file<'a>(
        &'a self,
        file: &'a IncomingFile,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Vec<u8>, PortError>> {
        Box::pin(async move {
            let FileSource::TelegramFile(id) = &file.source else {
                return Err(PortError(
                    "only Telegram's own files are fetched through Telegram".into(),
                ));
            };
            // getFile, then the Bot API's file URL (on the configured API
            // host: nothing else is ever asked).
            let meta = self
                .bot
                .get_file(teloxide::types::FileId(id.clone()))
                .await
                .map_err(|e| PortError(format!("getFile failed: {e}")))?;
            if u64::from(meta.size) > max_bytes {
                return Err(PortError(format!(
                    "the file is larger than {max_bytes} bytes"
                )));
            }
            use futures_util::StreamExt as _;
            use teloxide::net::Download as _;
            let mut stream = self.bot.download_file_stream(&meta.path);
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| PortError(crate::delivery::http::describe_reqwest(&e)))?;
                if out.len() as u64 + chunk.len() as u64 > max_bytes {
                    return Err(PortError(format!(
                        "the file is larger than {max_bytes} bytes"
                    )));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        })
    }
}

/// A message that is not a command: a turn, when the agent converses, the
/// chat is configured and the sender may talk to the agents.
pub async fn on_text(tg: &TelegramApprovals, m: &Message) {
    let Some(conversations) = &tg.conversations else {
        return;
    };
    let files = files_of(m);
    let text = m.text().or(m.caption()).unwrap_or_default();
    let Some(from) = m.from.as_ref() else {
        return;
    };
    if text.is_empty() && files.is_empty() {
        return;
    }
    if !tg.chats.contains(&m.chat.id.0) {
        return;
    }
    let caller = Caller {
        platform: switchyard_routing::Platform::Telegram,
        user_id: from.id.0,
        display_name: from
            .username
            .as_ref()
            .map_or_else(|| from.first_name.clone(), |u| format!("@{u}")),
        roles: Vec::new(),
    };
    let request = TurnRequest {
        place: Place::telegram(m.chat.id.0),
        message_id: format!("{}_{}", m.chat.id.0, m.id.0),
        author: Author {
            id: from.id.0.to_string(),
            name: caller.display_name.clone(),
            is_bot: from.is_bot,
        },
        text: text.to_string(),
        opens_thread: false,
        received_at: Utc::now(),
        files,
    };
    match conversations.accept(request, &caller).await {
        Ok(Accepted::Queued(turn)) => {
            info!(turn = %turn, "a Telegram message for the agent is a turn")
        }
        Ok(Accepted::Duplicate(_)) => {}
        Ok(Accepted::NotPermitted) => {
            info!(
                telegram_user = from.id.0,
                "a message from someone who may not talk to the agents; ignored"
            )
        }
        Err(e) => warn!(
            error = format!("{e:#}"),
            "a Telegram message for the agent was not taken"
        ),
    }
}

/// A document or photo on the message, as the Bot API describes it.
fn files_of(m: &Message) -> Vec<IncomingFile> {
    let mut files = Vec::new();
    if let Some(doc) = m.document() {
        files.push(IncomingFile {
            name: doc.file_name.clone().unwrap_or_else(|| "file".into()),
            content_type: doc
                .mime_type
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default(),
            size: u64::from(doc.file.size),
            source: FileSource::TelegramFile(doc.file.id.to_string()),
        });
    }
    if let Some(best) = m.photo().and_then(|sizes| sizes.last()) {
        files.push(IncomingFile {
            name: "photo.jpg".into(),
            content_type: "image/jpeg".into(),
            size: u64::from(best.file.size),
            source: FileSource::TelegramFile(best.file.id.to_string()),
        });
    }
    files
}
