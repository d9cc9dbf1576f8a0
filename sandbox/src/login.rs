//! Who may call: the bot tokens the sandbox knows, and the refusal of every
//! other one, worded as each platform words it.
//!
//! The known tokens come from [`SandboxOptions::discord_tokens`] and
//! [`SandboxOptions::telegram_tokens`], or are registered at run time with
//! `POST /_sandbox/tokens` (`{"platform": "discord"|"telegram", "token": "..."}`).
//! Any other token is refused as the platform refuses it:
//!
//! - Discord REST: 401 `{"message": "401: Unauthorized", "code": 0}` (no token
//!   at all is refused the same way);
//! - the Discord gateway: an Identify is closed with 4004 "Authentication failed.";
//! - Telegram: a token not shaped like `<bot id>:<secret>` is 404
//!   `{"ok":false,"error_code":404,"description":"Not Found"}` (no such URL), a
//!   well-formed unknown one 401 `{"ok":false,"error_code":401,"description":"Unauthorized"}`.
//!
//! Each refusal is counted in [`PlatformStats::unauthorized`](crate::PlatformStats::unauthorized).
//! Tokens are secrets: they live here only, are never logged, never in the state
//! or the web view, and `Debug` shows how many there are. They are configuration,
//! not state: [`reset`](crate::SandboxHandle::reset) keeps those registered at run time.
//!
//! Also here: what a Discord client asks at login, `GET /users/@me` (the bot's
//! user) and `GET /oauth2/applications/@me` (its application), both for the
//! bot the token names ([`bot_user_id`](crate::discord::ids::bot_user_id)).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::ControlError;
use super::{Reply, SandboxOptions, Shared};

/// The bot tokens that exist, and how many requests were refused for want of one.
pub(crate) struct KnownTokens {
    sets: Mutex<Sets>,
    discord_refused: AtomicU64,
    telegram_refused: AtomicU64,
}

#[derive(Default)]
struct Sets {
    discord: HashSet<String>,
    telegram: HashSet<String>,
}

impl std::fmt::Debug for KnownTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sets = self.lock();
        f.debug_struct("KnownTokens")
            .field("discord", &sets.discord.len())
            .field("telegram", &sets.telegram.len())
            .finish_non_exhaustive()
    }
}

/// How a Telegram request's token fares.
pub(crate) enum TelegramAuth {
    /// Known: the bot's id (the number before the colon).
    Bot(i64),
    /// Refused, with the reply Telegram gives.
    Refused(Reply),
}

impl KnownTokens {
    /// The tokens of the options; those that cannot be tokens are left out, with a warning.
    pub(crate) fn new(opts: &SandboxOptions) -> Self {
        let known = Self {
            sets: Mutex::new(Sets::default()),
            discord_refused: AtomicU64::new(0),
            telegram_refused: AtomicU64::new(0),
        };
        for token in &opts.discord_tokens {
            if let Err(error) = known.add_discord(token) {
                tracing::warn!(%error, "sandbox Discord token not registered");
            }
        }
        for token in &opts.telegram_tokens {
            if let Err(error) = known.add_telegram(token) {
                tracing::warn!(%error, "sandbox Telegram token not registered");
            }
        }
        known
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sets> {
        self.sets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a Discord bot token; returns the bot's user id.
    pub(crate) fn add_discord(&self, token: &str) -> Result<u64, ControlError> {
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(ControlError::MalformedToken(
                "a Discord bot token is one word (without the \"Bot \" prefix)",
            ));
        }
        self.lock().discord.insert(token.to_owned());
        Ok(super::discord::ids::bot_user_id(token))
    }

    /// Registers a Telegram bot token; returns the bot's id.
    pub(crate) fn add_telegram(&self, token: &str) -> Result<i64, ControlError> {
        let bot = telegram_bot_id(token).ok_or(ControlError::MalformedToken(
            "a Telegram bot token is shaped like <bot id>:<secret> (digits, a colon, then letters, digits, _ or -)",
        ))?;
        self.lock().telegram.insert(token.to_owned());
        Ok(bot)
    }

    /// Whether a Discord token exists (without the "Bot " prefix); a refusal is counted.
    pub(crate) fn admits_discord(&self, token: &str) -> bool {
        let known = self.lock().discord.contains(token);
        if !known {
            self.discord_refused.fetch_add(1, Ordering::Relaxed);
        }
        known
    }

    /// The bot a Discord REST request speaks for (`Authorization: Bot <token>`),
    /// or `None` (counted) when the token is missing or unknown.
    pub(crate) fn discord_bot(&self, headers: &HeaderMap) -> Option<u64> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bot "))
            .map(str::trim)
            .unwrap_or("");
        self.admits_discord(token)
            .then(|| super::discord::ids::bot_user_id(token))
    }

    /// The bot a Telegram request (`/bot<token>/<method>`) speaks for, or Telegram's refusal (counted).
    pub(crate) fn telegram(&self, token: &str) -> TelegramAuth {
        let refused = |status: StatusCode, description: &str| {
            self.telegram_refused.fetch_add(1, Ordering::Relaxed);
            TelegramAuth::Refused(Reply::refused(
                status,
                json!({"ok": false, "error_code": status.as_u16(), "description": description}),
                description,
            ))
        };
        match telegram_bot_id(token) {
            // Not a token at all: Telegram serves no such URL.
            None => refused(StatusCode::NOT_FOUND, "Not Found"),
            Some(bot) if self.lock().telegram.contains(token) => TelegramAuth::Bot(bot),
            Some(_) => refused(StatusCode::UNAUTHORIZED, "Unauthorized"),
        }
    }

    /// Refusals so far: (Discord, Telegram).
    pub(crate) fn refused(&self) -> (u64, u64) {
        (
            self.discord_refused.load(Ordering::Relaxed),
            self.telegram_refused.load(Ordering::Relaxed),
        )
    }

    /// Zeroes the refusal counters (the statistics are reset); the tokens stay.
    pub(crate) fn reset_counts(&self) {
        self.discord_refused.store(0, Ordering::Relaxed);
        self.telegram_refused.store(0, Ordering::Relaxed);
    }
}

/// Tokens are secrets: `Debug` says how many there are, not what they are.
impl std::fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxOptions")
            .field("listen", &self.listen)
            .field("discord_channels", &self.discord_channels)
            .field("discord_webhooks", &self.discord_webhooks)
            .field("telegram_chats", &self.telegram_chats)
            .field("discord_rate", &self.discord_rate)
            .field("telegram_rate", &self.telegram_rate)
            .field("request_log", &self.request_log)
            .field(
                "max_messages_per_conversation",
                &self.max_messages_per_conversation,
            )
            .field("telegram_approver", &self.telegram_approver)
            .field("discord_tokens", &self.discord_tokens.len())
            .field("telegram_tokens", &self.telegram_tokens.len())
            .field("openai_api_keys", &self.openai_api_keys.len())
            .field("openai_models", &self.openai_models)
            .finish()
    }
}

impl super::SandboxHandle {
    /// Registers a Discord bot token (without the `Bot ` prefix); returns the bot's user id.
    pub fn register_discord_token(&self, token: &str) -> Result<u64, ControlError> {
        self.shared.tokens.add_discord(token)
    }

    /// Registers a Telegram bot token (`<bot id>:<secret>`); returns the bot's id.
    pub fn register_telegram_token(&self, token: &str) -> Result<i64, ControlError> {
        self.shared.tokens.add_telegram(token)
    }
}

/// A Telegram bot token's shape: `<bot id>:<secret>`. Returns the bot id.
pub(crate) fn telegram_bot_id(token: &str) -> Option<i64> {
    let (id, secret) = token.split_once(':')?;
    let valid_secret = !secret.is_empty()
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let valid_id = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    let id = id.parse::<i64>().ok().filter(|id| *id > 0 && valid_id)?;
    valid_secret.then_some(id)
}

/// The bot's user, as `GET /users/@me` answers (Discord's user object; the
/// gateway's READY names the same user).
pub(crate) fn current_user_json(bot: u64) -> Value {
    json!({
        "id": bot.to_string(),
        "username": format!("bot{bot}"),
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": true,
        "system": false,
        "mfa_enabled": false,
        "banner": null,
        "accent_color": null,
        "locale": "en-US",
        "verified": true,
        "email": null,
        "flags": 0,
        "premium_type": 0,
        "public_flags": 0,
        "primary_guild": null,
    })
}

/// The application's owner the sandbox makes up (bots answer for their team or owner).
const OWNER_ID: u64 = 1_000_000_000_000_000_001;

/// The bot's application, as `GET /oauth2/applications/@me` answers. The
/// application id is the bot's user id, as for the gateway's READY.
pub(crate) fn application_json(bot: u64) -> Value {
    json!({
        "id": bot.to_string(),
        "name": format!("bot{bot}"),
        "icon": null,
        "description": "",
        "type": null,
        "bot": current_user_json(bot),
        "rpc_origins": [],
        "bot_public": false,
        "bot_require_code_grant": false,
        // 32 bytes in hex, as Discord's verify keys are; derived from the id, not secret.
        "verify_key": format!("{bot:064x}"),
        "flags": 0,
        "flags_new": "0",
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "owner": {
            "id": OWNER_ID.to_string(), "username": "sandbox-owner", "discriminator": "0",
            "global_name": null, "avatar": null, "public_flags": 0, "flags": 0,
            "primary_guild": null,
        },
        "approximate_guild_count": 1,
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "team": null,
        "eligible_oauth2_scopes": ["bot", "applications.commands"],
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TokenPlatform {
    Discord,
    Telegram,
}

#[derive(Deserialize)]
pub(crate) struct NewToken {
    platform: TokenPlatform,
    token: String,
}

/// `POST /_sandbox/tokens`: 201 with the bot's id (not a secret), or 400 when it
/// cannot be a token of that platform.
pub(crate) async fn control_token(
    State(shared): State<Arc<Shared>>,
    axum::Json(new): axum::Json<NewToken>,
) -> Response {
    let added = match new.platform {
        TokenPlatform::Discord => shared
            .tokens
            .add_discord(&new.token)
            .map(|id| json!({"platform": "discord", "bot_id": id.to_string()})),
        TokenPlatform::Telegram => shared
            .tokens
            .add_telegram(&new.token)
            .map(|id| json!({"platform": "telegram", "bot_id": id})),
    };
    match added {
        Ok(body) => (StatusCode::CREATED, axum::Json(body)).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(discord: &[&str], telegram: &[&str]) -> KnownTokens {
        KnownTokens::new(&SandboxOptions {
            discord_tokens: discord.iter().map(|t| t.to_string()).collect(),
            telegram_tokens: telegram.iter().map(|t| t.to_string()).collect(),
            ..SandboxOptions::default()
        })
    }

    #[test]
    fn telegram_token_shape_is_checked() {
        assert_eq!(telegram_bot_id("123456:TEST-token"), Some(123_456));
        assert_eq!(telegram_bot_id("nope"), None);
        assert_eq!(telegram_bot_id("12:"), None);
        assert_eq!(telegram_bot_id("+12:abc"), None);
        assert_eq!(telegram_bot_id("0:abc"), None);
        assert_eq!(telegram_bot_id("12:a b"), None);
    }

    #[test]
    fn only_known_tokens_are_admitted_and_refusals_are_counted() {
        let k = known(&["MTAx.a.b"], &["123:abc"]);
        assert!(k.admits_discord("MTAx.a.b"));
        assert!(!k.admits_discord("MTAx.a.c"));
        assert!(matches!(k.telegram("123:abc"), TelegramAuth::Bot(123)));
        let TelegramAuth::Refused(r) = k.telegram("123:abd") else {
            panic!("an unknown token was admitted")
        };
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let TelegramAuth::Refused(r) = k.telegram("garbage") else {
            panic!("a malformed token was admitted")
        };
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(k.refused(), (1, 2));
        k.reset_counts();
        assert_eq!(k.refused(), (0, 0));
        assert!(k.admits_discord("MTAx.a.b"), "a reset keeps the tokens");
    }

    #[test]
    fn what_cannot_be_a_token_is_not_registered() {
        let k = known(&["two words", ""], &["garbage"]);
        assert!(!k.admits_discord("two words"));
        assert!(!k.admits_discord(""));
        assert!(k.add_telegram("garbage").is_err());
        assert!(k.add_discord("Bot x").is_err());
    }

    #[test]
    fn debug_shows_counts_not_tokens() {
        let k = known(&["MTAx.secret.value"], &["123:secretvalue"]);
        let shown = format!("{k:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("discord: 1"), "{shown}");
    }
}
