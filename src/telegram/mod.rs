//! The Telegram adapter for the human in the loop: approval prompts with
//! inline buttons ([`approvals`]), the answers taken by long polling with the
//! offset kept in the database ([`poll`]), and the chat commands
//! ([`commands`]); before the poller starts, [`check_token`] asks Telegram
//! once whether it knows the token (`getMe`). teloxide types stop in this
//! module; the rest of the runtime sees [`TelegramApprovals`], [`TokenCheck`]
//! and the project's own types. (Plain outgoing messages go through the
//! outbox's `TelegramSink`.)

pub mod approvals;
pub mod commands;
pub mod conversation;
pub mod poll;
pub mod webhook;

use std::time::Duration;

use anyhow::Context;
use teloxide::prelude::Requester as _;
use teloxide::types::ChatId;
use teloxide::{ApiError, Bot, RequestError};

use crate::config::{Config, Secret, TelegramSettings};
use crate::error::TokenCheck;

/// Long polls wait this long on the server; the HTTP timeout is above it.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// The Telegram side of approvals and commands on the agent that owns the token.
pub struct TelegramApprovals {
    pub(crate) bot: Bot,
    /// The number before the token's colon: the bot's id, not a secret.
    pub(crate) bot_id: i64,
    /// Where prompts go (`[approvals] chat`).
    pub(crate) chat: ChatId,
    pub(crate) approvers: Vec<i64>,
    /// The agent's `Fleet` (shared with the Discord shell): Telegram commands run over it.
    pub(crate) fleet: Option<crate::fleet::AgentFleet>,
    /// The outbox's Telegram limiter: prompts, their edits and command
    /// answers share the chats' limits with the outbox.
    pub(crate) limiter: Option<crate::delivery::TelegramLimiter>,
    /// The agent's conversations, when it has a responder.
    pub(crate) conversations: Option<crate::conversations::Conversations>,
    /// The configured chats (`[telegram.chats]`): turns come only from these.
    pub(crate) chats: Vec<i64>,
}

impl std::fmt::Debug for TelegramApprovals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramApprovals")
            .field("bot_id", &self.bot_id)
            .field("chat", &self.chat.0)
            .finish_non_exhaustive()
    }
}

/// Asks Telegram once whether it knows the token (`getMe`), before the poller
/// starts. Telegram answers 404 Not Found to what is not shaped like a token and
/// 401 Unauthorized to a well-formed one it does not know (teloxide reads both as
/// `InvalidToken`; the shape tells which it was). Anything else (no connection, a
/// timeout, a 5xx) is no verdict on the token.
pub async fn check_token(settings: &TelegramSettings, token: &Secret) -> TokenCheck {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            return TokenCheck::Unreachable {
                error: crate::delivery::http::describe_reqwest(&e),
            };
        }
    };
    let Ok(api) = url::Url::parse(&settings.api_base) else {
        return TokenCheck::Unreachable {
            error: format!("telegram.api_base {:?} is not a URL", settings.api_base),
        };
    };
    let bot = Bot::with_client(token.expose(), client).set_api_url(api);
    match bot.get_me().await {
        Ok(me) => TokenCheck::Accepted {
            bot: me.id.0.to_string(),
        },
        Err(RequestError::Api(ApiError::InvalidToken)) if is_token_shaped(token.expose()) => {
            TokenCheck::Refused {
                status: 401,
                reason: "401 Unauthorized".into(),
                hint: "check that it is the bot's current token (@BotFather's /token shows it; \
                       /revoke makes a new one and the old one stops working)"
                    .into(),
            }
        }
        Err(RequestError::Api(ApiError::InvalidToken)) => TokenCheck::Refused {
            status: 404,
            reason: "404 Not Found".into(),
            hint: "it is not shaped like <bot id>:<secret>: copy it from @BotFather again".into(),
        },
        Err(RequestError::Network(e)) => TokenCheck::Unreachable {
            error: crate::delivery::http::describe_reqwest(&e),
        },
        Err(e) => TokenCheck::Unreachable {
            error: e.to_string(),
        },
    }
}

/// Whether the bot can reach chat `id` (`getChat`): its title or name, or
/// what to fix. For `switchyard doctor`.
pub async fn check_chat(
    settings: &TelegramSettings,
    token: &Secret,
    id: i64,
) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| crate::delivery::http::describe_reqwest(&e))?;
    let api = url::Url::parse(&settings.api_base)
        .map_err(|_| format!("telegram.api_base {:?} is not a URL", settings.api_base))?;
    let bot = Bot::with_client(token.expose(), client).set_api_url(api);
    match bot.get_chat(teloxide::types::ChatId(id)).await {
        Ok(chat) => Ok(chat
            .title()
            .map(str::to_owned)
            .or_else(|| chat.username().map(|u| format!("@{u}")))
            .or_else(|| chat.first_name().map(str::to_owned))
            .unwrap_or_else(|| format!("chat {id}"))),
        Err(RequestError::Api(ApiError::ChatNotFound)) => Err(format!(
            "Telegram has no chat {id} for this bot (chat not found): add the bot to the group, or have the person send it /start first; a group's id is negative"
        )),
        Err(RequestError::Network(e)) => Err(crate::delivery::http::describe_reqwest(&e)),
        Err(e) => Err(e.to_string()),
    }
}

/// Telegram's token shape: digits, a colon, then letters, digits, `_` or `-`.
fn is_token_shaped(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

impl TelegramApprovals {
    pub fn new(config: &Config, token: &Secret) -> anyhow::Result<TelegramApprovals> {
        let settings = config.telegram.as_ref().context(
            "this agent has a Telegram token but the configuration has no [telegram] section",
        )?;
        let chat = *settings
            .chats
            .get(&config.approvals.chat)
            .with_context(|| {
                format!(
                    "[approvals] chat {:?} is not in [telegram.chats]; prompts need a chat",
                    config.approvals.chat
                )
            })?;
        // Telegram refuses such a token at start-up already; this is for when it could not be asked.
        let bot_id = token
            .expose()
            .split_once(':')
            .and_then(|(id, _)| id.parse::<i64>().ok())
            .ok_or_else(|| {
                let variable = config
                    .telegram_owner()
                    .and_then(|o| o.telegram_token_env.clone())
                    .unwrap_or_else(|| "the Telegram token variable".into());
                crate::error::bad_input(format!(
                    "the Telegram token in {variable} does not look like <bot id>:<secret>; copy it from @BotFather again"
                ))
            })?;
        let client = reqwest::Client::builder()
            .timeout(POLL_TIMEOUT + Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        let api = url::Url::parse(&settings.api_base)
            .with_context(|| format!("telegram.api_base {:?} is not a URL", settings.api_base))?;
        Ok(TelegramApprovals {
            bot: Bot::with_client(token.expose(), client).set_api_url(api),
            bot_id,
            chat: ChatId(chat),
            approvers: settings.approvers.clone(),
            fleet: None,
            limiter: None,
            conversations: None,
            chats: settings.chats.values().copied().collect(),
        })
    }

    /// The `Fleet` this bot's commands run over.
    pub fn with_fleet(mut self, fleet: crate::fleet::AgentFleet) -> TelegramApprovals {
        self.fleet = Some(fleet);
        self
    }

    pub fn with_limiter(
        mut self,
        limiter: Option<crate::delivery::TelegramLimiter>,
    ) -> TelegramApprovals {
        self.limiter = limiter;
        self
    }

    /// The conversations Telegram messages are turns of.
    pub fn with_conversations(
        mut self,
        conversations: Option<crate::conversations::Conversations>,
    ) -> TelegramApprovals {
        self.conversations = conversations;
        self
    }

    /// Wait for a send slot in `chat` (no limiter: at once).
    pub(crate) async fn before_send(&self, chat: i64) {
        if let Some(l) = &self.limiter {
            l.before_send(chat).await;
        }
    }

    /// Telegram said 429 for `chat`: count it and keep the chat closed.
    pub(crate) fn after_429(&self, chat: i64, retry_after: Duration) {
        if let Some(l) = &self.limiter {
            l.after_429(chat, retry_after);
        }
    }

    /// Who may press Approve: the live list once the fleet is wired (a
    /// reload may change it), the configured one before.
    pub(crate) fn is_approver(&self, user_id: i64) -> bool {
        match &self.fleet {
            Some(f) => f.access().get().telegram_approvers.contains(&user_id),
            None => self.approvers.contains(&user_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_shape_tells_telegrams_404_from_its_401() {
        assert!(is_token_shaped("123456:AAbc-def_0"));
        for malformed in [
            "garbage",
            "123456:",
            ":abc",
            "12a:abc",
            "123456:not a token",
            "+1:abc",
        ] {
            assert!(!is_token_shaped(malformed), "{malformed}");
        }
    }
}
