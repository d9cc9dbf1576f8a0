//! The sandbox's public data: the state snapshot ([`SandboxState`], also served as
//! JSON at `GET /_sandbox/state`), injectable faults ([`Fault`]) and the user
//! actions the sandbox can play on Telegram ([`TelegramUserAction`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which stand-in a fault, a statistic or a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Discord,
    Telegram,
    /// The OpenAI-compatible Chat Completions stand-in (`/openai/v1`).
    Openai,
}

/// A failure to inject. Faults hit the calls that change something (Discord: every
/// method but GET; Telegram: every method but `getUpdates`, `getMe`, `getWebhookInfo`
/// and `deleteWebhook`; OpenAI: `POST /chat/completions`), so that a count means
/// the same whether or not a poller runs.
/// Several faults queue up and are served in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The next `count` calls fail with `status` (e.g. 500, 502, 503); nothing is done.
    ServerErrors {
        platform: Platform,
        count: u32,
        status: u16,
    },
    /// The next `count` calls hang for `delay_ms`, then fail with 504; nothing is done.
    Timeouts {
        platform: Platform,
        count: u32,
        delay_ms: u64,
    },
    /// The next `count` calls are refused with 429 and `retry_after_ms`.
    RateLimitStorm {
        platform: Platform,
        count: u32,
        retry_after_ms: u64,
    },
    /// The next `count` calls take effect, but the answer is lost: a 504 after
    /// `delay_ms`. The ambiguous failure that Discord's `nonce` exists for.
    LostResponses {
        platform: Platform,
        count: u32,
        delay_ms: u64,
    },
}

impl Fault {
    pub fn platform(&self) -> Platform {
        match self {
            Fault::ServerErrors { platform, .. }
            | Fault::Timeouts { platform, .. }
            | Fault::RateLimitStorm { platform, .. }
            | Fault::LostResponses { platform, .. } => *platform,
        }
    }
    pub(crate) fn count(&self) -> u32 {
        match self {
            Fault::ServerErrors { count, .. }
            | Fault::Timeouts { count, .. }
            | Fault::RateLimitStorm { count, .. }
            | Fault::LostResponses { count, .. } => *count,
        }
    }
}

/// Counters of one platform's stand-in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformStats {
    /// Every API request received (control endpoints excluded).
    pub requests: u64,
    /// Answered with a 2xx.
    pub accepted: u64,
    /// Refused as invalid: 400, 401, 403, 404, 409 (what the real service would refuse).
    pub rejected: u64,
    /// 429s sent, whether from the limits or from a `RateLimitStorm`.
    pub rate_limited: u64,
    /// Requests that an injected fault answered.
    pub faults_served: u64,
    /// Refused for a token the sandbox does not know (or none): Discord's 401s and
    /// gateway Identifies closed with 4004, Telegram's 401s and its 404s for a
    /// malformed token. The requests among them are also counted in `rejected`.
    #[serde(default)]
    pub unauthorized: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStats {
    pub discord: PlatformStats,
    pub telegram: PlatformStats,
    #[serde(default)]
    pub openai: PlatformStats,
}

impl SandboxStats {
    pub fn of(&self, platform: Platform) -> &PlatformStats {
        match platform {
            Platform::Discord => &self.discord,
            Platform::Telegram => &self.telegram,
            Platform::Openai => &self.openai,
        }
    }
    pub(crate) fn of_mut(&mut self, platform: Platform) -> &mut PlatformStats {
        match platform {
            Platform::Discord => &mut self.discord,
            Platform::Telegram => &mut self.telegram,
            Platform::Openai => &mut self.openai,
        }
    }
}

/// One request as the sandbox saw it; secrets (tokens in paths) are redacted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub platform: Platform,
    pub method: String,
    /// The path with tokens replaced by `<token>`.
    pub path: String,
    /// The operation, e.g. `create_message` or `sendMessage`.
    pub route: String,
    pub status: u16,
    /// The refusal's description, when refused.
    pub error: Option<String>,
}

/// A message in a Discord channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscordMessage {
    pub id: u64,
    pub content: String,
    pub embeds: Vec<Value>,
    pub components: Vec<Value>,
    pub nonce: Option<Value>,
    pub edited: bool,
    /// How many accepted edits it has had (a streamed answer grows by edits).
    #[serde(default)]
    pub edits: u32,
    /// The webhook that posted it, if one did.
    pub webhook_id: Option<u64>,
    /// RFC 3339.
    pub timestamp: String,
    pub edited_timestamp: Option<String>,
    /// Who posted it: the bot's user id (from its token), or the user the sandbox
    /// played (`POST /_sandbox/discord/messages`); `None` for a webhook's message.
    #[serde(default)]
    pub author_id: Option<u64>,
    /// The played user's name; bots' messages have none.
    #[serde(default)]
    pub author_name: Option<String>,
    /// Whether the author is a bot (every message a bot token posted, and
    /// played messages marked `bot`).
    #[serde(default)]
    pub author_bot: bool,
    /// Its files, as Discord's attachment objects (`filename`, `size`,
    /// `content_type`, `url` on the sandbox).
    #[serde(default)]
    pub attachments: Vec<Value>,
}

impl DiscordMessage {
    /// Whether one of its embeds has this title (how the status board is recognised).
    pub fn has_embed_title(&self, title: &str) -> bool {
        self.embeds
            .iter()
            .any(|e| e["title"].as_str() == Some(title))
    }

    /// What a reader sees: the content, then each embed's title, description and fields.
    pub fn text(&self) -> String {
        let mut parts = vec![self.content.clone()];
        for e in &self.embeds {
            for key in ["title", "description"] {
                if let Some(t) = e.get(key).and_then(Value::as_str) {
                    parts.push(t.to_string());
                }
            }
            for f in e
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for key in ["name", "value"] {
                    if let Some(t) = f.get(key).and_then(Value::as_str) {
                        parts.push(t.to_string());
                    }
                }
            }
        }
        for a in &self.attachments {
            if let Some(name) = a.get("filename").and_then(Value::as_str) {
                parts.push(format!("📎 {name}"));
            }
        }
        parts.retain(|p| !p.is_empty());
        parts.join("\n")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscordChannelState {
    pub id: u64,
    pub name: String,
    /// Oldest first; bounded (the oldest are dropped past the sandbox's cap).
    pub messages: Vec<DiscordMessage>,
    /// Accepted `POST /channels/{id}/typing` calls (the typing indicator shown).
    #[serde(default)]
    pub typing: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordWebhookState {
    pub id: u64,
    pub channel_id: u64,
    pub name: String,
}

/// A public thread started from a message (`POST /channels/{id}/messages/{mid}/threads`).
/// Messages are posted to it by its id, as to a channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscordThreadState {
    pub id: u64,
    /// The channel the starter message is in.
    pub parent_id: u64,
    /// The message the thread was started from (its id equals Discord's rule: the
    /// thread's id is the message's id).
    pub starter_message_id: u64,
    pub name: String,
    pub auto_archive_duration: u32,
    /// Oldest first; bounded like a channel's.
    pub messages: Vec<DiscordMessage>,
    /// The bot that started it (its user id): the thread's `owner_id`.
    #[serde(default)]
    pub owner_id: u64,
    /// Accepted `POST /channels/{id}/typing` calls in the thread.
    #[serde(default)]
    pub typing: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscordState {
    /// Text channels only; a thread's messages are in `threads`, not in its parent.
    pub channels: Vec<DiscordChannelState>,
    /// Registered webhooks (tokens are not shown).
    pub webhooks: Vec<DiscordWebhookState>,
    #[serde(default)]
    pub threads: Vec<DiscordThreadState>,
}

impl DiscordState {
    /// The threads started in a channel, oldest first.
    pub fn threads_in(&self, parent_id: u64) -> Vec<&DiscordThreadState> {
        self.threads
            .iter()
            .filter(|t| t.parent_id == parent_id)
            .collect()
    }

    /// A thread by its id.
    pub fn thread(&self, id: u64) -> Option<&DiscordThreadState> {
        self.threads.iter().find(|t| t.id == id)
    }

    /// A channel by its id (text channels only; see [`DiscordState::thread`]).
    pub fn channel(&self, id: u64) -> Option<&DiscordChannelState> {
        self.channels.iter().find(|c| c.id == id)
    }
}

/// A message the bot sent to a Telegram chat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TelegramMessage {
    pub message_id: i32,
    /// The text as the user sees it (entities parsed out).
    pub text: String,
    /// The text as the bot sent it (with markup).
    pub source_text: String,
    pub parse_mode: Option<String>,
    pub entities: Vec<Value>,
    pub reply_markup: Option<Value>,
    pub edited: bool,
    /// How many accepted edits it has had (a streamed answer grows by edits).
    #[serde(default)]
    pub edits: u32,
    /// Unix seconds.
    pub date: i64,
    /// A document sent with `sendDocument` (the Bot API's `Document`); `text` is its caption.
    #[serde(default)]
    pub document: Option<Value>,
    /// A photo sent with `sendPhoto` (an array of `PhotoSize`); `text` is its caption.
    #[serde(default)]
    pub photo: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TelegramChatState {
    pub id: i64,
    pub name: String,
    pub messages: Vec<TelegramMessage>,
    /// Accepted `sendChatAction` calls (the "typing…" indicator shown).
    #[serde(default)]
    pub chat_actions: u64,
}

/// An `answerCallbackQuery` call, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotCommand {
    pub command: String,
    pub description: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TelegramState {
    pub chats: Vec<TelegramChatState>,
    /// Updates queued and not yet confirmed by a `getUpdates` offset.
    pub pending_updates: usize,
    pub callback_answers: Vec<CallbackAnswer>,
    /// The last `setMyCommands` list.
    pub commands: Vec<BotCommand>,
    /// `getUpdates` calls waiting for an update right now.
    pub waiting_polls: usize,
    /// The URL set with `setWebhook`: updates are POSTed there instead of
    /// being served to `getUpdates`.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Webhook posts that failed (refused or unanswered) and were retried.
    #[serde(default)]
    pub webhook_failures: u64,
    /// Updates a bot never received because its `allowed_updates` left their
    /// type out when they arrived (Telegram drops them; counted once per bot).
    #[serde(default)]
    pub dropped_updates: u64,
    /// Each bot's `allowed_updates` (by bot id), as last set by `getUpdates` or
    /// `setWebhook`; a bot that never polled is not listed (it has the default).
    #[serde(default)]
    pub allowed_updates: BTreeMap<i64, Vec<String>>,
}

/// A snapshot of everything the sandbox holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxState {
    pub discord: DiscordState,
    pub telegram: TelegramState,
    pub stats: SandboxStats,
    /// The last requests (a bounded ring), oldest first.
    pub recent_requests: Vec<RequestRecord>,
    /// The Discord gateway: connections, interactions and their answers, registered commands.
    #[serde(default)]
    pub gateway: GatewayState,
    /// The OpenAI stand-in: the completion requests it answered or refused.
    #[serde(default)]
    pub openai: crate::OpenaiState,
}

impl SandboxState {
    /// The messages of a Discord channel (empty when the channel is unknown).
    pub fn discord_messages(&self, channel_id: u64) -> &[DiscordMessage] {
        self.discord
            .channels
            .iter()
            .find(|c| c.id == channel_id)
            .map_or(&[], |c| &c.messages)
    }

    /// Messages posted to every Discord channel and Telegram chat.
    pub fn total_messages(&self) -> usize {
        self.discord
            .channels
            .iter()
            .map(|c| c.messages.len())
            .sum::<usize>()
            + self
                .telegram
                .chats
                .iter()
                .map(|c| c.messages.len())
                .sum::<usize>()
    }

    /// The messages of a Telegram chat (empty when the chat is unknown).
    pub fn telegram_messages(&self, chat_id: i64) -> &[TelegramMessage] {
        self.telegram
            .chats
            .iter()
            .find(|c| c.id == chat_id)
            .map_or(&[], |c| &c.messages)
    }
}

/// A Telegram user the sandbox plays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelegramUser {
    pub id: i64,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl TelegramUser {
    pub fn new(id: i64, first_name: impl Into<String>) -> Self {
        Self {
            id,
            first_name: first_name.into(),
            username: None,
        }
    }
}

/// Something a user does in Telegram, queued as an update for `getUpdates`
/// (`POST /_sandbox/telegram/updates`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TelegramUserAction {
    /// The user writes `text` in `chat_id` (a command when it starts with `/`).
    Message {
        chat_id: i64,
        from: TelegramUser,
        text: String,
    },
    /// The user sends a file (a `document`) with an optional caption.
    Document {
        chat_id: i64,
        from: TelegramUser,
        file: UserFile,
        #[serde(default)]
        caption: Option<String>,
    },
    /// The user presses the inline button carrying `callback_data` under the bot's
    /// message `message_id` in `chat_id`. Refused when that message has no such button.
    PressButton {
        chat_id: i64,
        message_id: i32,
        from: TelegramUser,
        callback_data: String,
    },
    /// A modified client presses a button under `message_id` carrying
    /// `callback_data` the message never had. Telegram passes such data through
    /// unchecked; the bot must refuse it.
    ForgedPress {
        chat_id: i64,
        message_id: i32,
        from: TelegramUser,
        callback_data: String,
    },
}

/// What was queued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueuedUpdate {
    pub update_id: i64,
    /// Set for a button press: the id the bot must answer.
    pub callback_query_id: Option<String>,
    /// Set for a text message: its id in the chat.
    pub message_id: Option<i32>,
}

/// A Discord webhook the sandbox accepts executions for.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordWebhook {
    pub id: u64,
    pub token: String,
    pub channel_id: u64,
    #[serde(default = "default_webhook_name")]
    pub name: String,
}

fn default_webhook_name() -> String {
    "Sandbox Webhook".to_owned()
}

impl std::fmt::Debug for DiscordWebhook {
    // The token is a secret: never in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordWebhook")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("channel_id", &self.channel_id)
            .field("name", &self.name)
            .finish()
    }
}

impl DiscordWebhook {
    pub fn new(id: u64, token: impl Into<String>, channel_id: u64) -> Self {
        Self {
            id,
            token: token.into(),
            channel_id,
            name: default_webhook_name(),
        }
    }
}

/// Why a control request (playing a user, registering a webhook) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error(
        "Telegram chat {0} does not exist in the sandbox; add it to SandboxOptions::telegram_chats"
    )]
    UnknownChat(i64),
    #[error(
        "Discord channel {0} does not exist in the sandbox; add it to SandboxOptions::discord_channels"
    )]
    UnknownChannel(u64),
    #[error("message {message_id} does not exist in Telegram chat {chat_id}")]
    UnknownMessage { chat_id: i64, message_id: i32 },
    #[error(
        "message {message_id} in chat {chat_id} has no inline button with callback_data {callback_data:?}"
    )]
    NoSuchButton {
        chat_id: i64,
        message_id: i32,
        callback_data: String,
    },
    /// The Discord gateway cannot do what was asked (no bot connected, ...).
    #[error("{0}")]
    Gateway(String),
    /// What was to be registered as a bot token cannot be one (the token is not repeated).
    #[error("not a bot token: {0}")]
    MalformedToken(&'static str),
}

/// A bot connected to the sandbox's Discord gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayConnection {
    pub bot_id: u64,
    pub session_id: String,
}

/// One answer to an interaction, as the sandbox received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InteractionResponse {
    /// `callback`, `followup`, `edit_original`; refused ones are `callback_too_late`,
    /// `callback_again`, `callback_invalid`, `followup_unacknowledged`.
    pub kind: String,
    /// The HTTP status the sandbox answered with.
    pub status: u16,
    /// Time since `INTERACTION_CREATE` was sent, in microseconds.
    pub after_micros: u64,
    pub body: Value,
}

/// An interaction the sandbox dispatched, and what came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InteractionState {
    pub id: u64,
    pub command: String,
    pub user_id: u64,
    pub channel_id: u64,
    pub responses: Vec<InteractionResponse>,
}

impl InteractionState {
    /// The body of the first accepted callback.
    pub fn callback(&self) -> Option<&InteractionResponse> {
        self.responses.iter().find(|r| r.kind == "callback")
    }

    /// The text the user finally sees: the last accepted answer's content and
    /// embed titles, descriptions and fields. A deferral (type 5) carries none.
    pub fn text(&self) -> String {
        let Some(last) = self
            .responses
            .iter()
            .rev()
            .find(|r| r.status < 300 && r.body.get("type").and_then(Value::as_u64) != Some(5))
        else {
            return String::new();
        };
        let data = if last.kind == "callback" {
            &last.body["data"]
        } else {
            &last.body
        };
        let mut parts = vec![data["content"].as_str().unwrap_or("").to_string()];
        for e in data["embeds"].as_array().into_iter().flatten() {
            for k in ["title", "description"] {
                if let Some(t) = e[k].as_str() {
                    parts.push(t.to_string());
                }
            }
            for f in e["fields"].as_array().into_iter().flatten() {
                parts.push(format!(
                    "{}: {}",
                    f["name"].as_str().unwrap_or(""),
                    f["value"].as_str().unwrap_or("")
                ));
            }
        }
        parts.retain(|p| !p.is_empty());
        parts.join("\n")
    }

    /// The autocomplete choices offered (callback type 8), by value.
    pub fn choices(&self) -> Vec<String> {
        self.callback()
            .and_then(|c| c.body["data"]["choices"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c["value"].as_str().map(str::to_string))
            .collect()
    }

    /// Whether the user's answer is shown only to them (flag 64).
    pub fn ephemeral(&self) -> bool {
        self.responses.iter().any(|r| {
            r.status < 300
                && (r.body["data"]["flags"].as_u64().unwrap_or(0) & 64 != 0
                    || r.body["flags"].as_u64().unwrap_or(0) & 64 != 0)
        })
    }
}

/// The commands an application registered on one guild.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisteredCommands {
    pub application_id: u64,
    pub guild_id: u64,
    pub commands: Vec<Value>,
}

/// A reaction a bot added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub channel_id: u64,
    pub message_id: u64,
    pub emoji: String,
    pub user_id: u64,
}

/// The gateway's part of the sandbox state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayState {
    pub connections: Vec<GatewayConnection>,
    pub identifies: u64,
    pub resumes: u64,
    pub interactions: Vec<InteractionState>,
    pub registered: Vec<RegisteredCommands>,
    /// Command creates counted today, by guild id.
    pub creates_today: std::collections::BTreeMap<String, u32>,
    pub reactions: Vec<Reaction>,
}

/// The sandbox plays a user running a slash command
/// (`POST /_sandbox/discord/interactions`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscordUserCommand {
    pub user_id: u64,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub roles: Vec<u64>,
    pub command: String,
    #[serde(default)]
    pub subcommand: Option<String>,
    /// Option name → value (string, boolean or integer).
    #[serde(default)]
    pub options: Vec<(String, Value)>,
    #[serde(default)]
    pub channel_id: Option<u64>,
    #[serde(default)]
    pub guild_id: Option<u64>,
    /// Which connected bot receives it (by user id); the first connected one when absent.
    #[serde(default)]
    pub bot_id: Option<u64>,
    /// The option being typed: makes it an autocomplete interaction (type 4)
    /// whose answer (callback type 8) lists the choices.
    #[serde(default)]
    pub focused: Option<String>,
}

/// The sandbox plays a user posting a message (`POST /_sandbox/discord/messages`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscordUserMessage {
    pub user_id: u64,
    #[serde(default)]
    pub username: Option<String>,
    pub channel_id: u64,
    pub content: String,
    /// User ids mentioned (the bot's user id to address it).
    #[serde(default)]
    pub mentions: Vec<u64>,
    /// The message this one replies to.
    #[serde(default)]
    pub reply_to: Option<u64>,
    /// Who wrote the message replied to (a bot's user id to reply to that bot).
    #[serde(default)]
    pub reply_to_author: Option<u64>,
    #[serde(default)]
    pub guild_id: Option<u64>,
    /// The author is a bot (to play another bot of the fleet talking).
    #[serde(default)]
    pub bot: bool,
    /// Files the user attaches.
    #[serde(default)]
    pub attachments: Vec<UserFile>,
}

/// A file a played user attaches (Discord) or sends (Telegram).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFile {
    pub filename: String,
    #[serde(default)]
    pub content_type: Option<String>,
    /// The file's bytes, as text.
    #[serde(default)]
    pub content: String,
    /// A size to claim instead of the real one (a client that lies).
    #[serde(default)]
    pub claimed_size: Option<u64>,
    /// Serve the bytes only after this long (a slow CDN).
    #[serde(default)]
    pub delay_ms: u64,
    /// Point the attachment at this URL instead of the sandbox (a file on another host).
    #[serde(default)]
    pub url: Option<String>,
}
