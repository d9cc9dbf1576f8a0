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
use crate::conversations::{Accepted, Author, BoxFuture, ChatPort, Place, PortError, TurnRequest};
use crate::delivery::TelegramLimiter;

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
}

/// A message that is not a command: a turn, when the agent converses, the
/// chat is configured and the sender may talk to the agents.
pub async fn on_text(tg: &TelegramApprovals, m: &Message) {
    let Some(conversations) = &tg.conversations else {
        return;
    };
    let (Some(text), Some(from)) = (m.text(), m.from.as_ref()) else {
        return;
    };
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
