//! The Discord REST stand-in (`/api/v10`): messages in channels, edits, deletes
//! (a bot's own messages), reactions (checked in [`reactions`]), webhook
//! executions, public threads started from a message (posted to by their id, as
//! to a channel), the gateway URL; `MessageCreateRequest` validation with Discord's
//! error shapes; the per-route buckets (advertised in `X-RateLimit-*`) and the
//! global per-bot limit; the bot's user and application (`/users/@me`,
//! `/oauth2/applications/@me`). Only the bots whose tokens it knows are served
//! (see `login.rs`). The channel and guild objects, the typing indicator and
//! the reads of a channel (get it, list its messages) are in [`channels`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::discord_schema::{self as schema, Errors};
use super::limits::{DiscordLimits, FixedWindow, Rate, TokenBucket, WindowStatus};
use super::model::{
    ControlError, DiscordChannelState, DiscordMessage, DiscordState, DiscordThreadState,
    DiscordWebhook, DiscordWebhookState,
};
use super::{
    Inner, Platform, Reply, SandboxOptions, Seen, Shared, finish, lose_response, query_pairs,
    serve_fault,
};

mod channels;
pub(crate) mod ids;
pub(crate) mod reactions;
pub(crate) use channels::{PlayedAuthor, guild_create};

/// Discord's epoch (2015-01-01) in Unix milliseconds, for snowflakes.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
/// How long `enforce_nonce` remembers a nonce ("a few minutes" in Discord's docs).
const NONCE_WINDOW: Duration = Duration::from_secs(5 * 60);
const NONCE_MAX: usize = 25;
const EMBED_TOTAL_MAX: usize = 6000;
/// `ThreadAutoArchiveDuration` in the OpenAPI description (minutes).
const AUTO_ARCHIVE_DURATIONS: [u64; 4] = [60, 1440, 4320, 10080];
const THREAD_NAME_MAX: usize = 100;
/// Discord's channel type of a public thread.
const PUBLIC_THREAD: u64 = 11;
/// The guild the sandbox's channels are in (the gateway's default guild).
pub(crate) const SANDBOX_GUILD: u64 = 900_000_000_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BucketKind {
    CreateMessage,
    EditMessage,
    ExecuteWebhook,
    StartThread,
    Typing,
    Reaction,
    DeleteMessage,
}

impl BucketKind {
    /// Discord's bucket hash is per route, shared by every channel (the channel is the
    /// "major parameter" that splits it).
    fn hash(self) -> &'static str {
        match self {
            BucketKind::CreateMessage => "80c17d2f203122d936070c88c8d10f33",
            BucketKind::EditMessage => "f9b5a3b0d8e6c4a2a1e3f5d7c9b1a3e5",
            BucketKind::ExecuteWebhook => "3c2e5d6f8a9b0c1d2e3f4a5b6c7d8e9f",
            BucketKind::StartThread => "7a1d3e5f7b9c1d3e5f7a9b1c3d5e7f9a",
            BucketKind::Typing => "b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3",
            BucketKind::Reaction => "5e7a9c1b3d5f7e9a1c3b5d7f9e1a3c5b",
            BucketKind::DeleteMessage => "d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1",
        }
    }
}

struct Channel {
    name: String,
    messages: VecDeque<DiscordMessage>,
    /// nonce → (message id, when), for `enforce_nonce`.
    nonces: HashMap<String, (u64, Instant)>,
    /// Set when this "channel" is a thread.
    thread: Option<ThreadInfo>,
    /// Accepted typing indicators.
    typing: u64,
}

struct ThreadInfo {
    parent_id: u64,
    starter_message_id: u64,
    auto_archive_duration: u32,
    /// The bot that started it.
    owner_id: u64,
    /// RFC 3339: `thread_metadata.archive_timestamp` and `create_timestamp`.
    created: String,
}

pub(crate) struct World {
    channels: BTreeMap<u64, Channel>,
    webhooks: BTreeMap<u64, DiscordWebhook>,
    buckets: HashMap<(BucketKind, u64), FixedWindow>,
    /// Keyed by the bot's user id (derived from the token), never by the token.
    global: HashMap<u64, TokenBucket>,
    limits: DiscordLimits,
    last_snowflake: u64,
    max_messages: usize,
    /// The bytes of uploaded attachments, by `{channel}/{attachment id}`.
    pub(crate) files: super::files::FileStore,
}

impl World {
    pub(crate) fn new(opts: &SandboxOptions) -> Self {
        let mut world = Self {
            channels: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            buckets: HashMap::new(),
            global: HashMap::new(),
            limits: opts.discord_rate.clone(),
            last_snowflake: 0,
            max_messages: opts.max_messages_per_conversation.max(1),
            files: super::files::FileStore::default(),
        };
        for (id, name) in &opts.discord_channels {
            world.add_channel(*id, name.clone());
        }
        for webhook in &opts.discord_webhooks {
            // A webhook for an unknown channel is a mistake in the options; say so.
            if let Err(error) = world.register_webhook(webhook.clone()) {
                tracing::warn!(%error, "sandbox webhook not registered");
            }
        }
        world
    }

    pub(crate) fn add_channel(&mut self, id: u64, name: String) {
        self.channels
            .entry(id)
            .or_insert_with(|| Channel {
                name: String::new(),
                messages: VecDeque::new(),
                nonces: HashMap::new(),
                thread: None,
                typing: 0,
            })
            .name = name;
    }

    pub(crate) fn register_webhook(&mut self, webhook: DiscordWebhook) -> Result<(), ControlError> {
        if !self.channels.contains_key(&webhook.channel_id) {
            return Err(ControlError::UnknownChannel(webhook.channel_id));
        }
        self.webhooks.insert(webhook.id, webhook);
        Ok(())
    }

    pub(crate) fn snapshot(&self) -> DiscordState {
        DiscordState {
            channels: self
                .channels
                .iter()
                .filter(|(_, c)| c.thread.is_none())
                .map(|(id, c)| DiscordChannelState {
                    id: *id,
                    name: c.name.clone(),
                    messages: c.messages.iter().cloned().collect(),
                    typing: c.typing,
                })
                .collect(),
            webhooks: self
                .webhooks
                .values()
                .map(|w| DiscordWebhookState {
                    id: w.id,
                    channel_id: w.channel_id,
                    name: w.name.clone(),
                })
                .collect(),
            threads: self
                .channels
                .iter()
                .filter_map(|(id, c)| {
                    let t = c.thread.as_ref()?;
                    Some(DiscordThreadState {
                        id: *id,
                        parent_id: t.parent_id,
                        starter_message_id: t.starter_message_id,
                        name: c.name.clone(),
                        auto_archive_duration: t.auto_archive_duration,
                        messages: c.messages.iter().cloned().collect(),
                        owner_id: t.owner_id,
                        typing: c.typing,
                    })
                })
                .collect(),
        }
    }

    fn next_snowflake(&mut self) -> u64 {
        let ms = (super::unix_now() * 1000.0) as u64;
        let candidate = ms.saturating_sub(DISCORD_EPOCH_MS) << 22;
        self.last_snowflake = candidate.max(self.last_snowflake + 1);
        self.last_snowflake
    }

    fn bucket(&mut self, kind: BucketKind, major: u64, now: Instant) -> WindowStatus {
        let rate = match kind {
            BucketKind::CreateMessage => self.limits.channel_messages,
            BucketKind::EditMessage => self.limits.channel_edits,
            BucketKind::ExecuteWebhook => self.limits.webhook_executions,
            // Not documented separately; Discord counts thread creation like a post.
            BucketKind::StartThread => self.limits.channel_messages,
            BucketKind::Typing => self.limits.channel_typing,
            BucketKind::Reaction => self.limits.channel_reactions,
            // Deletes have a bucket of their own on Discord, at the edits' pace.
            BucketKind::DeleteMessage => self.limits.channel_edits,
        };
        self.buckets
            .entry((kind, major))
            .or_insert_with(|| FixedWindow::new(rate, now))
            .take(now)
    }

    fn global_wait(&mut self, bot: u64, now: Instant) -> Duration {
        let rate: Rate = self.limits.global;
        let bucket = self
            .global
            .entry(bot)
            .or_insert_with(|| TokenBucket::new(rate, now));
        let wait = bucket.wait(now, Duration::ZERO);
        if wait.is_zero() {
            bucket.spend();
        }
        wait
    }

    fn push_message(&mut self, channel_id: u64, message: DiscordMessage) {
        let max = self.max_messages;
        let channel = self
            .channels
            .get_mut(&channel_id)
            .expect("checked by the caller");
        if channel.messages.len() >= max {
            channel.messages.pop_front();
        }
        channel.messages.push_back(message);
    }
}

/// The operation a request asks for.
enum Route {
    Gateway,
    GatewayBot,
    CurrentUser,
    CurrentApplication,
    CreateMessage(u64),
    GetMessage(u64, u64),
    EditMessage(u64, u64),
    DeleteMessage(u64, u64),
    StartThread(u64, u64),
    Typing(u64),
    GetChannel(u64),
    ListMessages(u64),
    GetWebhook(u64, String),
    ExecuteWebhook(u64, String),
}

impl Route {
    fn name(&self) -> &'static str {
        match self {
            Route::Gateway => "get_gateway",
            Route::GatewayBot => "get_bot_gateway",
            Route::CurrentUser => "get_my_user",
            Route::CurrentApplication => "get_my_oauth2_application",
            Route::CreateMessage(..) => "create_message",
            Route::GetMessage(..) => "get_message",
            Route::EditMessage(..) => "update_message",
            Route::DeleteMessage(..) => "delete_message",
            Route::StartThread(..) => "create_thread_from_message",
            Route::Typing(..) => "trigger_typing_indicator",
            Route::GetChannel(..) => "get_channel",
            Route::ListMessages(..) => "list_messages",
            Route::GetWebhook(..) => "get_webhook_by_token",
            Route::ExecuteWebhook(..) => "execute_webhook",
        }
    }
}

fn error_body(status: u16, reason: &str, retry_after: Option<f64>) -> Value {
    match retry_after {
        Some(secs) => {
            json!({"message": "You are being rate limited.", "retry_after": secs, "global": false, "code": 0})
        }
        None => json!({"message": format!("{status}: {reason}"), "code": 0}),
    }
}

pub(crate) fn plain_error(status: StatusCode, code: u32, message: &str) -> Reply {
    Reply::refused(status, json!({"message": message, "code": code}), message)
}

fn snowflake_error(field: &str, raw: &str) -> Reply {
    let mut errors = Errors::new();
    errors.add(
        &[field.to_owned()],
        "NUMBER_TYPE_COERCE",
        &format!("Value \"{raw}\" is not snowflake."),
    );
    invalid_form_body(errors.tree)
}

fn invalid_form_body(errors: Value) -> Reply {
    let summary = first_error(&errors).unwrap_or_default();
    Reply::refused(
        StatusCode::BAD_REQUEST,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": errors}),
        format!("Invalid Form Body: {summary}"),
    )
}

/// `path.to.field: message` of the first error in an `errors` tree, for the log.
pub(crate) fn first_error(errors: &Value) -> Option<String> {
    let obj = errors.as_object()?;
    for (key, value) in obj {
        if key == "_errors" {
            let message = value.get(0)?.get("message")?.as_str()?;
            return Some(message.to_owned());
        }
        if let Some(inner) = first_error(value) {
            return Some(if inner.contains(": ") || obj.contains_key("_errors") {
                format!("{key}.{inner}")
            } else {
                format!("{key}: {inner}")
            });
        }
    }
    None
}

fn parse_route(method: &Method, path: &str) -> Result<Route, Reply> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = |raw: &str, field: &str| raw.parse::<u64>().map_err(|_| snowflake_error(field, raw));
    let not_allowed = || plain_error(StatusCode::METHOD_NOT_ALLOWED, 0, "405: Method Not Allowed");
    match segments.as_slice() {
        ["gateway"] if method == Method::GET => Ok(Route::Gateway),
        ["gateway", "bot"] if method == Method::GET => Ok(Route::GatewayBot),
        ["gateway"] | ["gateway", "bot"] => Err(not_allowed()),
        ["channels", channel] => match *method {
            Method::GET => Ok(Route::GetChannel(id(channel, "channel_id")?)),
            _ => Err(not_allowed()),
        },
        ["channels", channel, "typing"] => match *method {
            Method::POST => Ok(Route::Typing(id(channel, "channel_id")?)),
            _ => Err(not_allowed()),
        },
        ["users", "@me"] if method == Method::GET => Ok(Route::CurrentUser),
        ["oauth2", "applications", "@me"] if method == Method::GET => Ok(Route::CurrentApplication),
        ["users", "@me"] | ["oauth2", "applications", "@me"] => Err(not_allowed()),
        ["channels", channel, "messages"] => match *method {
            Method::POST => Ok(Route::CreateMessage(id(channel, "channel_id")?)),
            Method::GET => Ok(Route::ListMessages(id(channel, "channel_id")?)),
            _ => Err(not_allowed()),
        },
        ["channels", channel, "messages", message] => match *method {
            Method::GET => Ok(Route::GetMessage(
                id(channel, "channel_id")?,
                id(message, "message_id")?,
            )),
            Method::PATCH => Ok(Route::EditMessage(
                id(channel, "channel_id")?,
                id(message, "message_id")?,
            )),
            Method::DELETE => Ok(Route::DeleteMessage(
                id(channel, "channel_id")?,
                id(message, "message_id")?,
            )),
            _ => Err(not_allowed()),
        },
        ["channels", channel, "messages", message, "threads"] => match *method {
            Method::POST => Ok(Route::StartThread(
                id(channel, "channel_id")?,
                id(message, "message_id")?,
            )),
            _ => Err(not_allowed()),
        },
        ["webhooks", webhook, token] => match *method {
            Method::GET => Ok(Route::GetWebhook(
                id(webhook, "webhook_id")?,
                (*token).to_owned(),
            )),
            Method::POST => Ok(Route::ExecuteWebhook(
                id(webhook, "webhook_id")?,
                (*token).to_owned(),
            )),
            _ => Err(not_allowed()),
        },
        _ => Err(plain_error(StatusCode::NOT_FOUND, 0, "404: Not Found")),
    }
}

/// The path for the request log, with the webhook token hidden.
fn redacted(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        [pre @ .., "webhooks", id, _token] => format!("{}/webhooks/{id}/<token>", pre.join("/")),
        [pre @ .., "webhooks", id, _token, "messages", m] => {
            format!("{}/webhooks/{id}/<token>/messages/{m}", pre.join("/"))
        }
        [pre @ .., "interactions", id, _token, "callback"] => {
            format!("{}/interactions/{id}/<token>/callback", pre.join("/"))
        }
        _ => path.to_owned(),
    }
}

fn rate_headers(reply: Reply, kind: BucketKind, status: &WindowStatus) -> Reply {
    let reset = super::unix_now() + status.reset_after.as_secs_f64();
    reply
        .header("x-ratelimit-limit", status.limit)
        .header("x-ratelimit-remaining", status.remaining)
        .header("x-ratelimit-reset", format!("{reset:.3}"))
        .header(
            "x-ratelimit-reset-after",
            format!("{:.3}", status.reset_after.as_secs_f64()),
        )
        .header("x-ratelimit-bucket", kind.hash())
}

/// A 429 as Discord sends it: the body's `retry_after` in seconds (ms
/// precision), `Retry-After` in whole seconds, `X-RateLimit-Scope`, and
/// `X-RateLimit-Global` on the global limit. A route's 429 also carries its
/// bucket's `X-RateLimit-*` (added by [`rate_headers`]); a global one has no
/// bucket. `Via` is what every answer through Discord's front carries, and
/// what clients such as discord.py look for before they trust a 429 as
/// Discord's (one without it is taken for a proxy's or Cloudflare's ban).
fn too_many(retry_after: Duration, global: bool, scope: &str) -> Reply {
    let secs = (retry_after.as_secs_f64() * 1000.0).ceil() / 1000.0;
    let reply = Reply::refused(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "You are being rate limited.", "retry_after": secs, "global": global, "code": 0}),
        format!("rate limited ({scope}), retry after {secs:.3} s"),
    )
    .header("retry-after", retry_after.as_secs_f64().ceil().max(1.0) as u64)
    .header("x-ratelimit-scope", scope)
    .header("via", "1.1 google");
    if global {
        reply.header("x-ratelimit-global", "true")
    } else {
        reply
    }
}

/// `DELETE /channels/{id}/messages/{mid}`: a bot deletes its own messages
/// (another's needs Manage Messages, which the sandbox's bots do not have).
fn delete_message(
    world: &mut World,
    channel_id: u64,
    message_id: u64,
    bot: u64,
    status: WindowStatus,
) -> Reply {
    if let Some(wait) = status.refused {
        return too_many(wait, false, "user");
    }
    let channel = world.channels.get_mut(&channel_id).expect("checked");
    let Some(at) = channel.messages.iter().position(|m| m.id == message_id) else {
        return plain_error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    if channel.messages[at].author_id != Some(bot) {
        return plain_error(StatusCode::FORBIDDEN, 50013, "Missing Permissions");
    }
    channel.messages.remove(at);
    Reply::no_content()
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a REST write tells the connected bots (an event name and its data),
/// sent while the sandbox's lock is held. Passed in by the REST front door
/// (`discord_rest.rs`), which hands it to the gateway: the gateway builds on
/// this module's world, so this module must not call the gateway itself.
pub(crate) type Dispatch = fn(&mut Inner, &str, &Value);

/// The request log's entry for a Discord REST request (webhook and interaction
/// tokens hidden), under the route's name.
pub(crate) fn seen(method: &Method, uri: &Uri, route: &str) -> Seen {
    Seen {
        platform: Platform::Discord,
        method: method.to_string(),
        path: redacted(uri.path()),
        route: route.to_owned(),
    }
}

/// Answers and logs a REST request that is not the gateway's (`path` is the
/// part after `/api/v10`); `dispatch` carries the events its writes cause.
pub(crate) async fn serve(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    dispatch: Dispatch,
) -> Response {
    let route = parse_route(method, path);
    let seen = seen(method, uri, route.as_ref().map_or("unknown", Route::name));
    let reply = match route {
        Err(reply) => reply,
        Ok(route) => handle(shared, method, route, uri.query(), headers, body, dispatch).await,
    };
    finish(shared, seen, reply)
}

async fn handle(
    shared: &Shared,
    method: &Method,
    route: Route,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    dispatch: Dispatch,
) -> Reply {
    let fault = if *method == Method::GET {
        None
    } else {
        shared.lock().take_fault(Platform::Discord)
    };
    let mut lost = None;
    if let Some(fault) = fault {
        if let super::Fault::LostResponses { delay_ms, .. } = fault {
            lost = Some(delay_ms);
        } else if let Some(reply) = serve_fault(&fault, error_body).await {
            return if let super::Fault::RateLimitStorm { retry_after_ms, .. } = fault {
                let mut r = too_many(Duration::from_millis(retry_after_ms), false, "shared");
                r.fault = true;
                r
            } else {
                reply
            };
        }
    }
    let reply = handle_route(shared, route, query, headers, body, dispatch);
    match lost {
        Some(delay_ms) => lose_response(delay_ms, error_body).await,
        None => reply,
    }
}

fn handle_route(
    shared: &Shared,
    route: Route,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    dispatch: Dispatch,
) -> Reply {
    let now = Instant::now();
    // Webhook routes carry their own token; everything else needs a bot's the sandbox knows.
    let bot = match &route {
        Route::GetWebhook(..) | Route::ExecuteWebhook(..) => None,
        _ => match shared.tokens.discord_bot(headers) {
            Some(bot) => Some(bot),
            None => return plain_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized"),
        },
    };
    let mut inner = shared.lock();
    let world = &mut inner.discord;
    if let Some(bot) = bot {
        let wait = world.global_wait(bot, now);
        if !wait.is_zero() {
            return too_many(wait, true, "global");
        }
    }
    match route {
        Route::Gateway => Reply::ok(json!({"url": format!("ws://{}/gateway", shared.addr)})),
        Route::GatewayBot => Reply::ok(json!({
            "url": format!("ws://{}/gateway", shared.addr),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        })),
        Route::CurrentUser => Reply::ok(super::login::current_user_json(
            bot.expect("authenticated route"),
        )),
        Route::CurrentApplication => Reply::ok(super::login::application_json(
            bot.expect("authenticated route"),
        )),
        Route::CreateMessage(channel_id) => {
            let bot = bot.expect("authenticated route");
            if !world.channels.contains_key(&channel_id) {
                return plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let status = world.bucket(BucketKind::CreateMessage, channel_id, now);
            let reply = create_message(world, channel_id, bot, status, headers, body, now);
            if reply.status == StatusCode::OK
                && let Some(message) = &reply.body
            {
                dispatch(&mut inner, "MESSAGE_CREATE", &in_guild(message));
            }
            rate_headers(reply, BucketKind::CreateMessage, &status)
        }
        Route::GetMessage(channel_id, message_id) => {
            let bot = bot.expect("authenticated route");
            let Some(channel) = world.channels.get(&channel_id) else {
                return plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            };
            match channel.messages.iter().rev().find(|m| m.id == message_id) {
                Some(m) => Reply::ok(message_json(channel_id, m, bot, None)),
                None => plain_error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
            }
        }
        Route::EditMessage(channel_id, message_id) => {
            let bot = bot.expect("authenticated route");
            if !world.channels.contains_key(&channel_id) {
                return plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let status = world.bucket(BucketKind::EditMessage, channel_id, now);
            let reply = edit_message(world, channel_id, message_id, bot, status, headers, body);
            if reply.status == StatusCode::OK
                && let Some(message) = &reply.body
            {
                dispatch(&mut inner, "MESSAGE_UPDATE", &in_guild(message));
            }
            rate_headers(reply, BucketKind::EditMessage, &status)
        }
        Route::DeleteMessage(channel_id, message_id) => {
            let bot = bot.expect("authenticated route");
            if !world.channels.contains_key(&channel_id) {
                return plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let status = world.bucket(BucketKind::DeleteMessage, channel_id, now);
            let reply = delete_message(world, channel_id, message_id, bot, status);
            if reply.status == StatusCode::NO_CONTENT {
                let event = json!({
                    "id": message_id.to_string(),
                    "channel_id": channel_id.to_string(),
                    "guild_id": SANDBOX_GUILD.to_string(),
                });
                dispatch(&mut inner, "MESSAGE_DELETE", &event);
            }
            rate_headers(reply, BucketKind::DeleteMessage, &status)
        }
        Route::StartThread(channel_id, message_id) => {
            let bot = bot.expect("authenticated route");
            if !world.channels.contains_key(&channel_id) {
                return plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let status = world.bucket(BucketKind::StartThread, channel_id, now);
            let reply = start_thread(world, channel_id, message_id, bot, status, body);
            if reply.status == StatusCode::CREATED
                && let Some(thread) = &reply.body
            {
                // Every connected bot's cache learns of it, as on Discord.
                let mut event = thread.clone();
                event["newly_created"] = json!(true);
                dispatch(&mut inner, "THREAD_CREATE", &event);
            }
            rate_headers(reply, BucketKind::StartThread, &status)
        }
        Route::Typing(channel_id) => {
            if !world.channels.contains_key(&channel_id) {
                return plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            let status = world.bucket(BucketKind::Typing, channel_id, now);
            let reply = channels::typing(world, channel_id, status);
            rate_headers(reply, BucketKind::Typing, &status)
        }
        Route::GetChannel(channel_id) => channels::get_channel(world, channel_id),
        Route::ListMessages(channel_id) => {
            let bot = bot.expect("authenticated route");
            channels::list_messages(world, channel_id, bot, query)
        }
        Route::GetWebhook(webhook_id, token) => match world.webhooks.get(&webhook_id) {
            None => plain_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"),
            Some(w) if w.token != token => {
                plain_error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token")
            }
            Some(w) => Reply::ok(json!({
                "id": w.id.to_string(), "type": 1, "guild_id": null, "channel_id": w.channel_id.to_string(),
                "name": w.name, "avatar": null, "token": w.token, "application_id": null
            })),
        },
        Route::ExecuteWebhook(webhook_id, token) => {
            let (channel_id, name) = match world.webhooks.get(&webhook_id) {
                None => return plain_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"),
                Some(w) if w.token != token => {
                    return plain_error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
                }
                Some(w) => (w.channel_id, w.name.clone()),
            };
            let wait = query_pairs(query)
                .iter()
                .any(|(k, v)| k == "wait" && v == "true");
            let status = world.bucket(BucketKind::ExecuteWebhook, webhook_id, now);
            let reply = execute_webhook(
                world, channel_id, webhook_id, &name, wait, status, headers, body,
            );
            if reply.status.is_success() {
                let posted = world.channels[&channel_id]
                    .messages
                    .back()
                    .map(|m| message_json(channel_id, m, webhook_id, Some(&name)));
                if let Some(message) = posted {
                    dispatch(&mut inner, "MESSAGE_CREATE", &in_guild(&message));
                }
            }
            rate_headers(reply, BucketKind::ExecuteWebhook, &status)
        }
    }
}

/// The most bytes of files one message may carry (Discord's default upload limit, 10 MiB).
pub(crate) const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The most files one message may carry.
const MAX_FILES: usize = 10;

/// One `files[n]` part of a message request.
pub(crate) struct Upload {
    index: usize,
    filename: String,
    content_type: String,
    data: Vec<u8>,
}

/// The JSON object of a message request: JSON, or multipart with
/// `payload_json` and `files[n]` parts. Refuses what Discord refuses: a file
/// part that is not `files[0]`..`files[9]`, one named twice or without a file
/// name, and more than 10 MiB of files (413).
fn request_object(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Map<String, Value>, Vec<Upload>), Reply> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let invalid_json = || {
        plain_error(
            StatusCode::BAD_REQUEST,
            50109,
            "The request body contains invalid JSON.",
        )
    };
    let form_error = |field: &str, code: &str, text: &str| {
        let mut errors = Errors::new();
        errors.add(&[field.to_owned()], code, text);
        invalid_form_body(errors.tree)
    };
    let mut uploads: Vec<Upload> = Vec::new();
    let json_bytes = if content_type.starts_with("multipart/form-data") {
        let parts = super::multipart_parts(content_type, body).ok_or_else(invalid_json)?;
        let mut payload = None;
        for p in parts {
            if p.name == "payload_json" {
                payload = Some(p.data);
                continue;
            }
            let Some(index) = p
                .name
                .strip_prefix("files[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if index >= MAX_FILES {
                return Err(form_error(
                    "attachments",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 10 or fewer in length.",
                ));
            }
            if uploads.iter().any(|u| u.index == index) {
                return Err(form_error(
                    &p.name,
                    "ATTACHMENT_DUPLICATE",
                    "This file is given twice.",
                ));
            }
            let Some(filename) = p.filename.filter(|f| !f.is_empty()) else {
                return Err(form_error(
                    &p.name,
                    "BASE_TYPE_REQUIRED",
                    "A file name is required.",
                ));
            };
            let content_type = p
                .content_type
                .unwrap_or_else(|| super::files::guess_type(&filename));
            uploads.push(Upload {
                index,
                filename,
                content_type,
                data: p.data,
            });
        }
        if uploads.iter().map(|u| u.data.len()).sum::<usize>() > MAX_UPLOAD_BYTES {
            return Err(plain_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                40005,
                "Request entity too large",
            ));
        }
        uploads.sort_by_key(|u| u.index);
        payload.unwrap_or_else(|| b"{}".to_vec())
    } else {
        body.to_vec()
    };
    let obj = match serde_json::from_slice::<Value>(if json_bytes.is_empty() {
        b"{}"
    } else {
        &json_bytes
    }) {
        Ok(Value::Object(obj)) => obj,
        _ => return Err(invalid_json()),
    };
    Ok((obj, uploads))
}

/// `attachments` (when given) names the uploaded parts by their index:
/// checked after the schema, so a malformed entry is reported at its field.
fn check_listed(obj: &Map<String, Value>, uploads: &[Upload]) -> Result<(), Reply> {
    let form_error = |field: &str, code: &str, text: &str| {
        let mut errors = Errors::new();
        errors.add(&[field.to_owned()], code, text);
        invalid_form_body(errors.tree)
    };
    if let Some(listed) = obj.get("attachments").and_then(Value::as_array) {
        for (i, a) in listed.iter().enumerate() {
            let id = a.get("id").and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
            match id {
                Some(id) if uploads.iter().any(|u| u.index as u64 == id) => {}
                _ => {
                    return Err(form_error(
                        &format!("attachments.{i}.id"),
                        "ATTACHMENT_NOT_FOUND",
                        "Unknown attachment: no files[n] part has this id.",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Keep a message's uploads and describe them as Discord's attachment
/// objects, their URLs on the sandbox's own address (`Host`).
fn keep_uploads(
    world: &mut World,
    channel_id: u64,
    uploads: Vec<Upload>,
    listed: Option<&Value>,
    headers: &HeaderMap,
) -> Vec<Value> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    uploads
        .into_iter()
        .map(|u| {
            let id = world.next_snowflake();
            let description = listed
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter().find(|a| {
                        a.get("id").and_then(|v| {
                            v.as_u64()
                                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        }) == Some(u.index as u64)
                    })
                })
                .and_then(|a| a.get("description"))
                .cloned()
                .unwrap_or(Value::Null);
            let url = format!("http://{host}/attachments/{channel_id}/{id}/{}", u.filename);
            let v = json!({
                "id": id.to_string(),
                "filename": u.filename,
                "description": description,
                "content_type": u.content_type,
                "size": u.data.len(),
                "url": url,
                "proxy_url": url,
            });
            world.files.put(
                format!("{channel_id}/{id}"),
                super::files::StoredFile {
                    content_type: u.content_type,
                    bytes: u.data.into(),
                    delay_ms: 0,
                },
            );
            v
        })
        .collect()
}

/// Which request a body is validated as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Create,
    Edit,
    Webhook,
}

fn create_message(
    world: &mut World,
    channel_id: u64,
    bot: u64,
    status: WindowStatus,
    headers: &HeaderMap,
    body: &[u8],
    now: Instant,
) -> Reply {
    if let Some(wait) = status.refused {
        return too_many(wait, false, "user");
    }
    let (obj, files) = match request_object(headers, body) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    if let Err(reply) =
        validate(&obj, Form::Create, files.len()).and_then(|()| check_listed(&obj, &files))
    {
        return reply;
    }
    let nonce = obj.get("nonce").filter(|n| !n.is_null()).cloned();
    let enforce = obj
        .get("enforce_nonce")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let nonce_key = nonce.as_ref().map(|n| match n {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    if let (true, Some(key)) = (enforce, &nonce_key) {
        let channel = world.channels.get_mut(&channel_id).expect("checked");
        channel
            .nonces
            .retain(|_, (_, at)| now.duration_since(*at) < NONCE_WINDOW);
        if let Some((earlier, _)) = channel.nonces.get(key)
            && let Some(m) = channel.messages.iter().rev().find(|m| m.id == *earlier)
        {
            // Discord's documented behaviour: the earlier message, not a second post.
            return Reply::ok(message_json(channel_id, m, bot, None));
        }
    }
    let attachments = keep_uploads(world, channel_id, files, obj.get("attachments"), headers);
    let message = DiscordMessage {
        attachments,
        id: world.next_snowflake(),
        content: obj
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        embeds: embeds_out(&obj),
        components: array(&obj, "components"),
        nonce,
        edited: false,
        edits: 0,
        webhook_id: None,
        timestamp: timestamp_now(),
        edited_timestamp: None,
        author_id: Some(bot),
        author_name: None,
        author_bot: true,
    };
    let reply = Reply::ok(message_json(channel_id, &message, bot, None));
    if let Some(key) = nonce_key {
        world
            .channels
            .get_mut(&channel_id)
            .expect("checked")
            .nonces
            .insert(key, (message.id, now));
    }
    world.push_message(channel_id, message);
    reply
}

fn edit_message(
    world: &mut World,
    channel_id: u64,
    message_id: u64,
    bot: u64,
    status: WindowStatus,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    if let Some(wait) = status.refused {
        return too_many(wait, false, "user");
    }
    let (obj, files) = match request_object(headers, body) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    if let Err(reply) = validate(&obj, Form::Edit, files.len()) {
        return reply;
    }
    let channel = world.channels.get_mut(&channel_id).expect("checked");
    let Some(message) = channel
        .messages
        .iter_mut()
        .rev()
        .find(|m| m.id == message_id)
    else {
        return plain_error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    if message.webhook_id.is_some() || message.author_id.is_some_and(|a| a != bot) {
        return plain_error(
            StatusCode::FORBIDDEN,
            50005,
            "Cannot edit a message authored by another user",
        );
    }
    let mut edited = message.clone();
    if let Some(content) = obj.get("content") {
        edited.content = content.as_str().unwrap_or("").to_owned();
    }
    if obj.contains_key("embeds") {
        edited.embeds = embeds_out(&obj);
    }
    if obj.contains_key("components") {
        edited.components = array(&obj, "components");
    }
    if edited.content.is_empty() && edited.embeds.is_empty() && edited.components.is_empty() {
        return plain_error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        );
    }
    edited.edited = true;
    edited.edits = edited.edits.saturating_add(1);
    edited.edited_timestamp = Some(timestamp_now());
    *message = edited;
    Reply::ok(message_json(channel_id, message, bot, None))
}

/// `CreateTextThreadWithMessageRequest`: `name` (1–100) is required;
/// `auto_archive_duration` is null or one of 60/1440/4320/10080 (default 1440);
/// `rate_limit_per_user` is 0–21600. The thread takes the message's id, as on Discord,
/// so a message has at most one thread.
fn start_thread(
    world: &mut World,
    channel_id: u64,
    message_id: u64,
    bot: u64,
    status: WindowStatus,
    body: &[u8],
) -> Reply {
    if let Some(wait) = status.refused {
        return too_many(wait, false, "user");
    }
    let obj = match serde_json::from_slice::<Value>(if body.is_empty() { b"{}" } else { body }) {
        Ok(Value::Object(obj)) => obj,
        _ => {
            return plain_error(
                StatusCode::BAD_REQUEST,
                50109,
                "The request body contains invalid JSON.",
            );
        }
    };
    let mut e = Errors::new();
    let name = match obj.get("name") {
        None | Some(Value::Null) => {
            e.add(
                &["name".to_owned()],
                "BASE_TYPE_REQUIRED",
                "This field is required",
            );
            String::new()
        }
        Some(Value::String(n)) => {
            let len = n.chars().count();
            if len == 0 || len > THREAD_NAME_MAX {
                e.add(
                    &["name".to_owned()],
                    "BASE_TYPE_BAD_LENGTH",
                    &format!("Must be between 1 and {THREAD_NAME_MAX} in length."),
                );
            }
            n.clone()
        }
        Some(_) => {
            e.add(
                &["name".to_owned()],
                "BASE_TYPE_STRING",
                "Must be a string.",
            );
            String::new()
        }
    };
    let auto_archive = match obj.get("auto_archive_duration") {
        None | Some(Value::Null) => 1440,
        Some(v) => match v.as_u64().filter(|d| AUTO_ARCHIVE_DURATIONS.contains(d)) {
            Some(d) => d,
            None => {
                e.add(
                    &["auto_archive_duration".to_owned()],
                    "BASE_TYPE_CHOICES",
                    &format!("Value must be one of {AUTO_ARCHIVE_DURATIONS:?}."),
                );
                1440
            }
        },
    };
    match obj.get("rate_limit_per_user") {
        None | Some(Value::Null) => {}
        Some(v) if v.as_u64().is_some_and(|r| r <= 21600) => {}
        Some(_) => e.add(
            &["rate_limit_per_user".to_owned()],
            "NUMBER_TYPE_MAX",
            "Must be between 0 and 21600.",
        ),
    }
    if e.any {
        return invalid_form_body(e.tree);
    }
    let parent = world.channels.get(&channel_id).expect("checked");
    if parent.thread.is_some() {
        return plain_error(
            StatusCode::BAD_REQUEST,
            50024,
            "Cannot execute action on this channel type",
        );
    }
    if !parent.messages.iter().any(|m| m.id == message_id) {
        return plain_error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    }
    if world.channels.contains_key(&message_id) {
        return plain_error(
            StatusCode::BAD_REQUEST,
            160004,
            "A thread has already been created for this message",
        );
    }
    world.channels.insert(
        message_id,
        Channel {
            name,
            messages: VecDeque::new(),
            nonces: HashMap::new(),
            thread: Some(ThreadInfo {
                parent_id: channel_id,
                starter_message_id: message_id,
                auto_archive_duration: auto_archive as u32,
                owner_id: bot,
                created: timestamp_now(),
            }),
            typing: 0,
        },
    );
    let thread = &world.channels[&message_id];
    Reply::json(
        StatusCode::CREATED,
        channels::channel_json(message_id, thread),
    )
}

#[allow(clippy::too_many_arguments)]
fn execute_webhook(
    world: &mut World,
    channel_id: u64,
    webhook_id: u64,
    webhook_name: &str,
    wait: bool,
    status: WindowStatus,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    if let Some(retry) = status.refused {
        return too_many(retry, false, "shared");
    }
    let (obj, files) = match request_object(headers, body) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    if let Err(reply) =
        validate(&obj, Form::Webhook, files.len()).and_then(|()| check_listed(&obj, &files))
    {
        return reply;
    }
    let username = obj
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or(webhook_name)
        .to_owned();
    let attachments = keep_uploads(world, channel_id, files, obj.get("attachments"), headers);
    let message = DiscordMessage {
        attachments,
        id: world.next_snowflake(),
        content: obj
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        embeds: embeds_out(&obj),
        components: array(&obj, "components"),
        nonce: None,
        edited: false,
        edits: 0,
        webhook_id: Some(webhook_id),
        timestamp: timestamp_now(),
        edited_timestamp: None,
        author_id: None,
        author_name: None,
        author_bot: true,
    };
    let reply = if wait {
        Reply::ok(message_json(
            channel_id,
            &message,
            webhook_id,
            Some(&username),
        ))
    } else {
        Reply::no_content()
    };
    world.push_message(channel_id, message);
    reply
}

fn array(obj: &Map<String, Value>, key: &str) -> Vec<Value> {
    obj.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Embeds as Discord returns them: `type` defaults to `rich`.
fn embeds_out(obj: &Map<String, Value>) -> Vec<Value> {
    array(obj, "embeds")
        .into_iter()
        .map(|mut e| {
            if let Some(o) = e.as_object_mut() {
                o.entry("type").or_insert_with(|| json!("rich"));
                o.retain(|_, v| !v.is_null());
            }
            e
        })
        .collect()
}

pub(crate) fn timestamp_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// A message as the gateway dispatches it: the REST object with its guild.
fn in_guild(message: &Value) -> Value {
    let mut message = message.clone();
    message["guild_id"] = json!(SANDBOX_GUILD.to_string());
    message
}

/// A message as Discord returns it (every field `MessageResponse` requires and
/// serenity's `Message` needs). The author is the webhook (named `username`),
/// else the message's own author, else `author_id` (the bot asking).
fn message_json(
    channel_id: u64,
    m: &DiscordMessage,
    author_id: u64,
    username: Option<&str>,
) -> Value {
    let id = m.webhook_id.or(m.author_id).unwrap_or(author_id);
    let default_name = if m.author_bot {
        "switchyard-sandbox".to_owned()
    } else {
        format!("user{id}")
    };
    let author = json!({
        "id": id.to_string(),
        "username": username.or(m.author_name.as_deref()).unwrap_or(&default_name),
        "discriminator": "0000",
        "avatar": null,
        "bot": m.author_bot,
        "public_flags": 0,
        "flags": 0,
        "global_name": null,
        "primary_guild": null,
    });
    let mut v = json!({
        "id": m.id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": m.content,
        "timestamp": m.timestamp,
        "edited_timestamp": m.edited_timestamp,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": m.attachments,
        "embeds": m.embeds,
        "pinned": false,
        "type": 0,
        "flags": 0,
        "components": m.components,
    });
    if let Some(nonce) = &m.nonce {
        v["nonce"] = nonce.clone();
    }
    if let Some(webhook_id) = m.webhook_id {
        v["webhook_id"] = json!(webhook_id.to_string());
    }
    v
}

/// Discord's rules for a message body (`MessageCreateRequest`, the edit and the
/// webhook execution): the schema table, then the rules that span fields.
fn validate(obj: &Map<String, Value>, form: Form, files: usize) -> Result<(), Reply> {
    let mut e = Errors::new();
    let fields = match form {
        Form::Create => schema::CREATE,
        Form::Edit => schema::EDIT,
        Form::Webhook => schema::WEBHOOK,
    };
    schema::check_object(obj, fields, &mut Vec::new(), &mut e);
    if form == Form::Create {
        let nonce_path = ["nonce".to_owned()];
        match obj.get("nonce") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.is_i64() => {}
            Some(Value::String(s)) if s.chars().count() > NONCE_MAX => {
                e.add(
                    &nonce_path,
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 25 or fewer in length.",
                );
            }
            Some(Value::String(_)) => {}
            Some(_) => e.add(
                &nonce_path,
                "NONCE_TYPE_INVALID",
                "Nonce must be an integer or a string.",
            ),
        }
    }
    let embeds = obj
        .get("embeds")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if embeds.iter().map(schema::embed_size).sum::<usize>() > EMBED_TOTAL_MAX {
        e.add(
            &["embeds".to_owned()],
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        );
    }
    if e.any {
        return Err(invalid_form_body(e.tree));
    }
    let non_empty = |key: &str| {
        obj.get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    let has_content = obj
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let has_poll = obj.get("poll").is_some_and(Value::is_object);
    let empty = !has_content
        && embeds.is_empty()
        && !non_empty("sticker_ids")
        && !non_empty("components")
        && !non_empty("attachments")
        && !has_poll
        && files == 0;
    if empty && form != Form::Edit {
        return Err(plain_error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn refusal(v: Value, form: Form) -> Value {
        validate(&obj(v), form, 0)
            .expect_err("refused")
            .body
            .unwrap()
    }

    #[test]
    fn content_over_2000_is_invalid_form_body() {
        let body = refusal(json!({"content": "x".repeat(2001)}), Form::Create);
        assert_eq!(body["code"], 50035);
        assert_eq!(
            body["errors"]["content"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert!(validate(&obj(json!({"content": "x".repeat(2000)})), Form::Create, 0).is_ok());
    }

    #[test]
    fn empty_message_is_refused_with_50006() {
        let body = refusal(
            json!({"content": "", "tts": false, "embeds": [], "sticker_ids": [], "attachments": []}),
            Form::Create,
        );
        assert_eq!(body["code"], 50006);
    }

    #[test]
    fn embed_limits_point_at_the_field() {
        let fields: Vec<Value> = (0..26)
            .map(|i| json!({"name": format!("n{i}"), "value": "v"}))
            .collect();
        let body = refusal(
            json!({"embeds": [{"title": "t", "fields": fields}]}),
            Form::Create,
        );
        assert_eq!(
            body["errors"]["embeds"]["0"]["fields"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        let body = refusal(
            json!({"embeds": [{"fields": [{"name": "n", "value": "v".repeat(1025)}]}]}),
            Form::Create,
        );
        assert!(body["errors"]["embeds"]["0"]["fields"]["0"]["value"]["_errors"].is_array());
        let big = "d".repeat(4000);
        let body = refusal(
            json!({"embeds": [{"description": big}, {"description": big}]}),
            Form::Create,
        );
        assert_eq!(
            body["errors"]["embeds"]["_errors"][0]["code"],
            "MAX_EMBED_SIZE_EXCEEDED"
        );
    }

    #[test]
    fn nonce_must_be_int_or_short_string() {
        assert!(validate(&obj(json!({"content": "a", "nonce": 12})), Form::Create, 0).is_ok());
        assert!(
            validate(
                &obj(json!({"content": "a", "nonce": "x".repeat(25)})),
                Form::Create,
                0
            )
            .is_ok()
        );
        assert!(
            validate(
                &obj(json!({"content": "a", "nonce": "x".repeat(26)})),
                Form::Create,
                0
            )
            .is_err()
        );
        assert!(validate(&obj(json!({"content": "a", "nonce": 1.5})), Form::Create, 0).is_err());
    }

    #[test]
    fn webhook_tokens_are_redacted_from_the_log() {
        assert_eq!(
            redacted("/api/v10/webhooks/12/secret"),
            "/api/v10/webhooks/12/<token>"
        );
    }
}
