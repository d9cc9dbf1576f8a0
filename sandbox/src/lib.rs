//! Local stand-ins for the Discord REST API, the Telegram Bot API, GitHub and an
//! OpenAI-compatible Chat Completions endpoint, for tests, benchmarks and
//! `switchyard demo`.
//!
//! The sandbox is honest: it refuses what the real service would refuse (the
//! rules of the official API descriptions and the documented limits, encoded
//! here), with the real error shape, and counts it. It advertises and enforces
//! the platforms' rate limits, can inject faults, and can play a Telegram user.
//! Everything it holds is visible as a [`SandboxState`], in process through
//! [`SandboxHandle::state`] and over HTTP at `GET /_sandbox/state`.
//!
//! Only the bots whose tokens it knows are served ([`SandboxOptions::discord_tokens`],
//! [`SandboxOptions::telegram_tokens`], or `POST /_sandbox/tokens`); any other token
//! is refused exactly as the platform refuses it: Discord REST 401
//! `{"message": "401: Unauthorized", "code": 0}`, the gateway's Identify closed
//! with 4004 "Authentication failed.", Telegram 404 Not Found for a token not
//! shaped like `<bot id>:<secret>` and 401 Unauthorized for a well-formed unknown
//! one; each refusal is counted ([`PlatformStats::unauthorized`]). Tokens are
//! secrets: never logged, never in the state or the web view (the request log
//! redacts them), and `SandboxOptions`' `Debug` counts them instead of showing them.
//! A Discord client's login calls are served: `GET /users/@me` (the bot's user)
//! and `GET /oauth2/applications/@me` (its application); the bot's user id is
//! read from its token (the first segment is the id in base64), as Discord's are.
//!
//! Control endpoints (for a separate process): `GET /_sandbox/state`,
//! `POST /_sandbox/faults` (a [`Fault`]), `POST /_sandbox/reset`,
//! `POST /_sandbox/tokens` (`{"platform": "discord"|"telegram", "token": "..."}`:
//! 201 with the bot's id, 400 when it cannot be a token of that platform; a reset
//! keeps the tokens),
//! `POST /_sandbox/discord/webhooks` (a [`DiscordWebhook`]),
//! `POST /_sandbox/discord/channels` (`{id, name}`), `POST /_sandbox/telegram/chats`
//! (`{id, name}`), `POST /_sandbox/telegram/updates` (a [`TelegramUserAction`]),
//! `POST /_sandbox/discord/interactions` (a [`DiscordUserCommand`]; poll
//! `GET /_sandbox/discord/interactions/{id}`), `POST /_sandbox/discord/messages`
//! (a [`DiscordUserMessage`]), `POST /_sandbox/discord/disconnect`. The Discord
//! gateway is served at `/gateway` (see `gateway.rs`): READY lists the sandbox's
//! guild as unavailable, then `GUILD_CREATE` carries its text channels and active
//! threads (with `owner_id`), a thread started over REST is dispatched as
//! `THREAD_CREATE` (`newly_created: true`), and a played user message arrives as
//! `MESSAGE_CREATE` with its channel's (or thread's) id and the guild's. A played
//! message is also stored in its channel or thread, so that a bot can start a
//! thread on it or read it back.
//!
//! Discord REST (`/api/v10`): `POST /channels/{id}/messages`, `GET` and `PATCH
//! /channels/{id}/messages/{mid}` (edits counted in [`DiscordMessage::edits`]),
//! `GET /channels/{id}/messages` (`limit` 1–100, `before`, `after`, `around`;
//! newest first), `GET /channels/{id}`, `POST /channels/{id}/typing` (204, counted
//! in [`DiscordChannelState::typing`] / [`DiscordThreadState::typing`], its own
//! per-channel bucket [`DiscordLimits::channel_typing`]), `POST
//! /channels/{id}/messages/{mid}/threads`, webhooks, interactions, commands,
//! reactions.
//!
//! OpenAI-compatible Chat Completions (`/openai/v1`, a client's `base_url` is
//! [`SandboxHandle::openai_base_url`]; `openai.rs`): `POST /chat/completions`,
//! its body checked against OpenAI's description (400 and `{"error": {message,
//! type, param, code}}` otherwise, "Unrecognized request argument supplied" for
//! an unknown parameter), answered as a `chat.completion` or, with `stream:
//! true`, as `text/event-stream` chunks flushed one by one and ended by `data:
//! [DONE]` (a usage chunk first with `stream_options.include_usage`); `GET
//! /models`, `GET /models/{id}`. Keys ([`SandboxOptions::openai_api_keys`]; none:
//! no key needed) and models ([`SandboxOptions::openai_models`]; none: any) are
//! checked; faults for [`Platform::Openai`] apply. The default answer proves
//! what was passed: `persona: <first line of the first system message, or
//! "none"> · turns: <user messages> · you said: <last user message>`; token
//! counts are [`openai_token_estimate`] (a quarter of the characters, rounded
//! up, at least 1). Directives in the last user message change it (see
//! `openai_script.rs`): `[[sandbox:slow=MS]]`, `[[sandbox:chunk_ms=MS]]`,
//! `[[sandbox:chunk=N]]`, `[[sandbox:long=N]]`, `[[sandbox:answer=TEXT]]`,
//! `[[sandbox:status=CODE]]` or `[[sandbox:CODE]]` (429 with `retry-after`,
//! `[[sandbox:retry_after=S]]`), `[[sandbox:quota]]`, `[[sandbox:broken]]` (no
//! `finish_reason`, no `[DONE]`), `[[sandbox:reset]]` (the connection aborted),
//! `[[sandbox:garbage]]` (a `data:` line that is not JSON). Every completion
//! request is recorded in [`SandboxState::openai`] ([`OpenaiCompletion`]: model,
//! messages, user messages, the persona line, stream, max tokens, directives,
//! the answer, status), counted in [`SandboxStats::openai`].
//!
//! A web page for people: `GET /` (see [`view`]).

mod discord;
mod discord_rest;
mod discord_schema;
mod files;
mod gateway;
pub mod github;
mod limits;
mod login;
mod model;
mod openai;
mod openai_check;
mod openai_errors;
mod openai_schema;
mod openai_script;
mod openai_stream;
mod telegram;
mod telegram_html;
mod telegram_markdown;
pub mod view;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use gateway::{DAILY_CREATES_PER_GUILD, INITIAL_RESPONSE_WINDOW};
pub use limits::{DiscordLimits, Rate, TelegramLimits};
pub use model::{
    BotCommand, CallbackAnswer, ControlError, DiscordChannelState, DiscordMessage, DiscordState,
    DiscordThreadState, DiscordWebhook, DiscordWebhookState, EnqueuedUpdate, Fault, Platform,
    PlatformStats, RequestRecord, SandboxState, SandboxStats, TelegramChatState, TelegramMessage,
    TelegramState, TelegramUser, TelegramUserAction,
};
pub use model::{
    DiscordUserCommand, DiscordUserMessage, GatewayConnection, GatewayState, InteractionResponse,
    InteractionState, Reaction, RegisteredCommands, UserFile,
};
pub use openai::{OpenaiCompletion, OpenaiMessage, OpenaiState};
pub use openai_script::estimate_tokens as openai_token_estimate;

/// The channels a default sandbox has (`switchyard sandbox`, the demo): the seed 002 set.
pub const DEFAULT_DISCORD_CHANNELS: &[(u64, &str)] = &[
    (1001, "briefings"),
    (1002, "alerts"),
    (1003, "sub-agent-results"),
    (1004, "system"),
    (1005, "memory-updates"),
    (1006, "chat"),
];
/// The chat a default sandbox has: the operator's private chat.
pub const DEFAULT_TELEGRAM_CHATS: &[(i64, &str)] = &[(4242, "operator")];

/// What the sandbox serves and how strictly. (`Debug` counts the tokens,
/// never shows them: see `login.rs`.)
#[derive(Clone)]
pub struct SandboxOptions {
    /// Where to listen; `127.0.0.1:0` in tests.
    pub listen: SocketAddr,
    /// Channels that exist (id, name); any other id is 404 Unknown Channel.
    pub discord_channels: Vec<(u64, String)>,
    /// Webhooks that exist (more can be registered at run time).
    pub discord_webhooks: Vec<DiscordWebhook>,
    /// Chats that exist (id, name); ids < 0 are groups. Any other is "chat not found".
    pub telegram_chats: Vec<(i64, String)>,
    pub discord_rate: DiscordLimits,
    pub telegram_rate: TelegramLimits,
    /// How many requests the ring of recent requests keeps.
    pub request_log: usize,
    /// How many messages each channel or chat keeps (the oldest are dropped).
    pub max_messages_per_conversation: usize,
    /// The Telegram user the web view's buttons press as (and its message box
    /// writes as, by default), unless the page is opened as `/?as=USER_ID`.
    pub telegram_approver: Option<i64>,
    /// API keys the OpenAI stand-in accepts (`Authorization: Bearer KEY`); empty:
    /// no key is needed, as with a local Ollama or llama.cpp server.
    pub openai_api_keys: Vec<String>,
    /// Models the OpenAI stand-in serves; empty: any model name is accepted.
    pub openai_models: Vec<String>,
    /// The Discord bot tokens that exist (without the `Bot ` prefix); any other is
    /// refused (401, gateway close 4004). More with [`SandboxHandle::register_discord_token`].
    pub discord_tokens: Vec<String>,
    /// The Telegram bot tokens that exist (`<bot id>:<secret>`); any other is
    /// refused (401, or 404 when malformed). More with [`SandboxHandle::register_telegram_token`].
    pub telegram_tokens: Vec<String>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            discord_channels: DEFAULT_DISCORD_CHANNELS
                .iter()
                .map(|(id, name)| (*id, (*name).to_owned()))
                .collect(),
            discord_webhooks: Vec::new(),
            telegram_chats: DEFAULT_TELEGRAM_CHATS
                .iter()
                .map(|(id, name)| (*id, (*name).to_owned()))
                .collect(),
            discord_rate: DiscordLimits::default(),
            telegram_rate: TelegramLimits::default(),
            request_log: 1024,
            max_messages_per_conversation: 10_000,
            telegram_approver: None,
            openai_api_keys: Vec::new(),
            openai_models: Vec::new(),
            discord_tokens: Vec::new(),
            telegram_tokens: Vec::new(),
        }
    }
}

/// The length Telegram checks against its 4096 limit for an HTML message:
/// the text after entities are parsed (or why the HTML would be refused).
pub fn telegram_html_text_len(html: &str) -> Result<usize, String> {
    telegram_html::parse(html).map(|p| p.text.chars().count())
}

/// State shared by every request handler.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Woken when a Telegram update is queued or a poller takes over.
    pub(crate) updates: Notify,
    pub(crate) addr: SocketAddr,
    opts: SandboxOptions,
    /// GitHub's stand-in, served under `/github`; it keeps its own state.
    github: github::GithubSandbox,
    /// The bot tokens that exist: configuration, kept across a reset.
    pub(crate) tokens: login::KnownTokens,
}

pub(crate) struct Inner {
    pub(crate) discord: discord::World,
    pub(crate) telegram: telegram::World,
    pub(crate) gateway: gateway::World,
    pub(crate) openai: openai::World,
    stats: SandboxStats,
    faults: VecDeque<(Fault, u32)>,
    requests: VecDeque<RequestRecord>,
    request_seq: u64,
}

impl Inner {
    fn new(opts: &SandboxOptions) -> Self {
        Self {
            discord: discord::World::new(opts),
            telegram: telegram::World::new(opts),
            gateway: gateway::World::default(),
            openai: openai::World::new(opts),
            stats: SandboxStats::default(),
            faults: VecDeque::new(),
            requests: VecDeque::with_capacity(opts.request_log.min(4096)),
            request_seq: 0,
        }
    }

    /// The next fault for `platform`, consuming one of its count.
    pub(crate) fn take_fault(&mut self, platform: Platform) -> Option<Fault> {
        let pos = self
            .faults
            .iter()
            .position(|(f, left)| f.platform() == platform && *left > 0)?;
        let (fault, left) = &mut self.faults[pos];
        *left -= 1;
        let fault = fault.clone();
        if *left == 0 {
            self.faults.remove(pos);
        }
        Some(fault)
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An answer on its way out, with what the statistics need to know about it.
pub(crate) struct Reply {
    pub status: StatusCode,
    /// `None` is an empty body (204).
    pub body: Option<Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The refusal's description, for the request log.
    pub error: Option<String>,
    /// Answered by an injected fault.
    pub fault: bool,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
            error: None,
            fault: false,
        }
    }
    pub fn ok(body: Value) -> Self {
        Self::json(StatusCode::OK, body)
    }
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
            error: None,
            fault: false,
        }
    }
    pub fn refused(status: StatusCode, body: Value, error: impl Into<String>) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
            error: Some(error.into()),
            fault: false,
        }
    }
    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }
    pub fn into_fault(mut self) -> Self {
        self.fault = true;
        self
    }
}

/// Where a request went, for the request log (tokens already redacted).
pub(crate) struct Seen {
    pub platform: Platform,
    pub method: String,
    pub path: String,
    pub route: String,
}

/// Counts the request, logs it in the ring, and turns the reply into a response.
pub(crate) fn finish(shared: &Shared, seen: Seen, reply: Reply) -> Response {
    let status = reply.status;
    record(shared, seen, status, reply.error, reply.fault);
    let mut response = match reply.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    response.headers_mut().extend(reply.headers);
    response
}

/// Counts a request and logs it in the ring (for answers that are not a
/// [`Reply`], such as a stream).
pub(crate) fn record(
    shared: &Shared,
    seen: Seen,
    status: StatusCode,
    error: Option<String>,
    fault: bool,
) {
    {
        let mut inner = shared.lock();
        let stats = inner.stats.of_mut(seen.platform);
        stats.requests += 1;
        if fault {
            stats.faults_served += 1;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            stats.rate_limited += 1;
        } else if status.is_success() {
            stats.accepted += 1;
        } else if status.is_client_error() {
            stats.rejected += 1;
        }
        inner.request_seq += 1;
        let record = RequestRecord {
            seq: inner.request_seq,
            platform: seen.platform,
            method: seen.method,
            path: seen.path,
            route: seen.route,
            status: status.as_u16(),
            error,
        };
        tracing::debug!(
            platform = ?record.platform, route = %record.route, status = record.status,
            error = record.error.as_deref().unwrap_or(""), "sandbox request"
        );
        if shared.opts.request_log > 0 {
            if inner.requests.len() >= shared.opts.request_log {
                inner.requests.pop_front();
            }
            inner.requests.push_back(record);
        }
    }
}

/// Serves a fault, or returns `None` when none is due (or `LostResponses`, which the
/// caller applies after doing the work). `body_for` renders a platform's error body.
pub(crate) async fn serve_fault(
    fault: &Fault,
    error_body: impl Fn(u16, &str, Option<f64>) -> Value,
) -> Option<Reply> {
    match fault {
        Fault::ServerErrors { status, .. } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Server Error");
            Some(Reply::json(status, error_body(status.as_u16(), reason, None)).into_fault())
        }
        Fault::Timeouts { delay_ms, .. } => {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
            Some(
                Reply::json(
                    StatusCode::GATEWAY_TIMEOUT,
                    error_body(504, "Gateway Timeout", None),
                )
                .into_fault(),
            )
        }
        Fault::RateLimitStorm { retry_after_ms, .. } => {
            let secs = *retry_after_ms as f64 / 1000.0;
            Some(
                Reply::json(
                    StatusCode::TOO_MANY_REQUESTS,
                    error_body(429, "Too Many Requests", Some(secs)),
                )
                .into_fault(),
            )
        }
        Fault::LostResponses { .. } => None,
    }
}

/// After the work was done under a `LostResponses` fault: the answer the client gets.
pub(crate) async fn lose_response(
    delay_ms: u64,
    error_body: impl Fn(u16, &str, Option<f64>) -> Value,
) -> Reply {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Reply::json(
        StatusCode::GATEWAY_TIMEOUT,
        error_body(504, "Gateway Timeout", None),
    )
    .into_fault()
}

/// A running sandbox. Dropping it leaves the server running until the runtime ends;
/// call [`SandboxHandle::shutdown`] to stop it.
pub struct SandboxHandle {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT/api/v10`, the Discord `api_base`.
    pub fn discord_api_base(&self) -> String {
        format!("http://{}/api/v10", self.shared.addr)
    }

    /// `http://127.0.0.1:PORT`, what serenity's `HttpBuilder::proxy` takes (it adds `/api/v10`).
    pub fn discord_proxy(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `http://127.0.0.1:PORT/telegram`, the Telegram `api_base` (teloxide's `set_api_url`).
    pub fn telegram_api_base(&self) -> String {
        format!("http://{}/telegram", self.shared.addr)
    }

    /// `http://127.0.0.1:PORT/github`, the GitHub `api_base`.
    pub fn github_api_base(&self) -> String {
        format!("http://{}/github", self.shared.addr)
    }

    /// `http://127.0.0.1:PORT/openai/v1`, an OpenAI client's `base_url`.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/openai/v1", self.shared.addr)
    }

    /// GitHub's stand-in: its control API (move a PR through stages, review
    /// threads, PR body and files, a fake agent's push, outages, limits).
    pub fn github(&self) -> github::GithubSandbox {
        self.shared.github.clone()
    }

    /// A snapshot of channels, chats, statistics and recent requests.
    pub fn state(&self) -> SandboxState {
        snapshot(&self.shared)
    }

    /// Queues a fault (served after those already queued for the same platform).
    pub fn inject(&self, fault: Fault) {
        inject(&self.shared, fault);
    }

    /// Drops every fault still queued; messages and counters stay.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Forgets messages, updates, statistics, faults and rate-limit counters; back to the
    /// options (the bot tokens registered since stay: they are configuration).
    pub fn reset(&self) {
        reset(&self.shared);
    }

    /// Registers a webhook executions can be posted to.
    pub fn register_webhook(&self, webhook: DiscordWebhook) -> Result<(), ControlError> {
        self.shared.lock().discord.register_webhook(webhook)
    }

    /// Plays a Telegram user: queues the update `getUpdates` will return.
    pub fn telegram_user_action(
        &self,
        action: TelegramUserAction,
    ) -> Result<EnqueuedUpdate, ControlError> {
        let queued = self.shared.lock().telegram.enqueue(action)?;
        self.shared.updates.notify_waiters();
        Ok(queued)
    }

    /// Plays a Discord user running a slash command; returns the interaction id to poll.
    pub fn discord_run_command(&self, cmd: DiscordUserCommand) -> Result<u64, ControlError> {
        gateway::run_command(&mut self.shared.lock(), cmd)
    }

    /// An interaction and the answers received so far.
    pub fn discord_interaction(&self, id: u64) -> Option<InteractionState> {
        self.shared.lock().gateway.interaction(id)
    }

    /// Plays a Discord user posting a message; returns its id.
    pub fn discord_user_message(&self, msg: DiscordUserMessage) -> Result<u64, ControlError> {
        let origin = format!("http://{}", self.shared.addr);
        gateway::post_message(&mut self.shared.lock(), msg, &origin)
    }

    /// Drops every gateway connection (the bots should resume); returns how many.
    pub fn discord_disconnect(&self) -> usize {
        self.shared.lock().gateway.disconnect()
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Long polls would hold a graceful shutdown up to their timeout: end them now.
        self.shared.lock().telegram.closing = true;
        self.shared.updates.notify_waiters();
        let _ = (&mut self.task).await;
    }
}

fn snapshot(shared: &Shared) -> SandboxState {
    let inner = shared.lock();
    let mut stats = inner.stats;
    (stats.discord.unauthorized, stats.telegram.unauthorized) = shared.tokens.refused();
    SandboxState {
        discord: inner.discord.snapshot(),
        telegram: inner.telegram.snapshot(),
        stats,
        recent_requests: inner.requests.iter().cloned().collect(),
        gateway: inner.gateway.snapshot(),
        openai: inner.openai.snapshot(),
    }
}

fn inject(shared: &Shared, fault: Fault) {
    tracing::info!(?fault, "sandbox fault injected");
    let count = fault.count();
    if count > 0 {
        shared.lock().faults.push_back((fault, count));
    }
}

fn reset(shared: &Shared) {
    *shared.lock() = Inner::new(&shared.opts);
    shared.tokens.reset_counts();
    shared.updates.notify_waiters();
}

/// Binds `opts.listen` and serves in a background task.
pub async fn start(opts: SandboxOptions) -> anyhow::Result<SandboxHandle> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("could not listen on {} for the sandbox", opts.listen))?;
    let addr = listener
        .local_addr()
        .context("the sandbox's listening socket has no address")?;
    let shared = Arc::new(Shared {
        tokens: login::KnownTokens::new(&opts),
        inner: Mutex::new(Inner::new(&opts)),
        updates: Notify::new(),
        addr,
        opts,
        github: github::GithubSandbox::new(),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(deliver_webhooks(Arc::downgrade(&shared)));
    let app = router(shared.clone());
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the sandbox server stopped");
        }
    });
    tracing::info!(%addr, "sandbox listening");
    Ok(SandboxHandle {
        shared,
        stop: Some(stop),
        task,
    })
}

/// Telegram webhook delivery: while a webhook is set, queued updates are
/// POSTed to it one at a time, in order, with the secret header; an update
/// stays queued until the bot answers 2xx, as Telegram does. Ends with the sandbox.
async fn deliver_webhooks(shared: std::sync::Weak<Shared>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    loop {
        let Some(s) = shared.upgrade() else { return };
        let next = {
            let inner = s.lock();
            if inner.telegram.closing {
                return;
            }
            telegram::webhook_next(&inner.telegram)
        };
        let Some((url, secret, id, update)) = next else {
            let _ = tokio::time::timeout(Duration::from_millis(50), s.updates.notified()).await;
            continue;
        };
        let mut request = client.post(&url).json(&update);
        if let Some(secret) = &secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let accepted = matches!(request.send().await, Ok(r) if r.status().is_success());
        telegram::webhook_done(&mut s.lock().telegram, id, accepted);
        drop(s);
        if !accepted {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Serves until `shutdown` completes (for `switchyard sandbox`).
pub async fn serve(opts: SandboxOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let handle = start(opts).await?;
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sandbox/state", get(control_state))
        .route("/_sandbox/faults", post(control_fault))
        .route("/_sandbox/reset", post(control_reset))
        .route("/_sandbox/tokens", post(login::control_token))
        .route("/_sandbox/discord/webhooks", post(control_webhook))
        .route("/_sandbox/discord/channels", post(control_channel))
        .route("/_sandbox/telegram/chats", post(control_chat))
        .route("/_sandbox/telegram/updates", post(control_updates))
        .route("/gateway", get(gateway::upgrade))
        .route(
            "/_sandbox/discord/interactions",
            post(gateway::control_interaction),
        )
        .route(
            "/_sandbox/discord/interactions/{id}",
            get(gateway::control_interaction_get),
        )
        .route("/_sandbox/discord/messages", post(gateway::control_message))
        .route(
            "/_sandbox/discord/disconnect",
            post(gateway::control_disconnect),
        )
        .route("/api/v10/{*rest}", any(discord_rest::entry))
        .route(
            "/attachments/{channel}/{id}/{name}",
            get(files::discord_attachment),
        )
        .route(
            "/_sandbox/telegram/files/{file_id}",
            get(files::telegram_file),
        )
        .route("/telegram/{*rest}", any(telegram::entry))
        .route("/openai/{*rest}", any(openai::entry))
        .nest_service("/github", github::router(shared.github.clone()))
        .merge(view::routes())
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "404: Not Found", "code": 0})),
            )
        })
        // Uploads go up to Telegram's 50 MB; the platforms' own limits are
        // enforced by the handlers, with the platforms' own answers.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

type Control = Result<Response, (StatusCode, axum::Json<Value>)>;

fn control_error(e: ControlError) -> (StatusCode, axum::Json<Value>) {
    let status = match e {
        ControlError::NoSuchButton { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::NOT_FOUND,
    };
    (status, axum::Json(json!({"error": e.to_string()})))
}

async fn control_state(State(shared): State<Arc<Shared>>) -> axum::Json<SandboxState> {
    axum::Json(snapshot(&shared))
}

async fn control_fault(
    State(shared): State<Arc<Shared>>,
    axum::Json(fault): axum::Json<Fault>,
) -> StatusCode {
    inject(&shared, fault);
    StatusCode::NO_CONTENT
}

async fn control_reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    reset(&shared);
    StatusCode::NO_CONTENT
}

async fn control_webhook(
    State(shared): State<Arc<Shared>>,
    axum::Json(webhook): axum::Json<DiscordWebhook>,
) -> Control {
    let url = format!(
        "http://{}/api/v10/webhooks/{}/{}",
        shared.addr, webhook.id, webhook.token
    );
    shared
        .lock()
        .discord
        .register_webhook(webhook)
        .map_err(control_error)?;
    Ok((StatusCode::CREATED, axum::Json(json!({"url": url}))).into_response())
}

#[derive(Deserialize)]
struct NewConversation<Id> {
    id: Id,
    name: String,
}

async fn control_channel(
    State(shared): State<Arc<Shared>>,
    axum::Json(c): axum::Json<NewConversation<u64>>,
) -> StatusCode {
    shared.lock().discord.add_channel(c.id, c.name);
    StatusCode::CREATED
}

async fn control_chat(
    State(shared): State<Arc<Shared>>,
    axum::Json(c): axum::Json<NewConversation<i64>>,
) -> StatusCode {
    shared.lock().telegram.add_chat(c.id, c.name);
    StatusCode::CREATED
}

async fn control_updates(
    State(shared): State<Arc<Shared>>,
    axum::Json(action): axum::Json<TelegramUserAction>,
) -> Control {
    let queued = shared
        .lock()
        .telegram
        .enqueue(action)
        .map_err(control_error)?;
    shared.updates.notify_waiters();
    Ok((StatusCode::CREATED, axum::Json(queued)).into_response())
}

/// Query parameters parsed leniently (serenity sends `?&wait=true`).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Now as Unix time in seconds (fractional).
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One part of a `multipart/form-data` body.
pub(crate) struct Part {
    pub name: String,
    pub filename: Option<String>,
    /// The part's own `Content-Type`, if it gave one.
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// The parts of a `multipart/form-data` body. Only what the
/// clients send (serenity's `payload_json` + `files[n]`, teloxide's uploads) is needed.
pub(crate) fn multipart_parts(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, &delimiter)?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let rest_body = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest_body, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest_body[..header_end]).into_owned();
        let content = &rest_body[header_end + 4..];
        let end = find(content, &delimiter)?;
        let data = content[..end]
            .strip_suffix(b"\r\n")
            .unwrap_or(&content[..end])
            .to_vec();
        let disposition = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        let attr = |key: &str| {
            disposition.split(';').map(str::trim).find_map(|p| {
                p.strip_prefix(key)
                    .and_then(|v| v.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_owned())
            })
        };
        let content_type = headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        });
        parts.push(Part {
            name: attr("name").unwrap_or_default(),
            filename: attr("filename"),
            content_type,
            data,
        });
        rest = &content[end + delimiter.len()..];
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_query_parsing_accepts_a_leading_ampersand() {
        assert_eq!(
            query_pairs(Some("&wait=true")),
            vec![("wait".to_owned(), "true".to_owned())]
        );
    }

    #[test]
    fn multipart_parts_are_split() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\"}\r\n--XX\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"log.txt\"\r\nContent-Type: text/plain\r\n\r\nabc\r\n--XX--\r\n";
        let parts = multipart_parts("multipart/form-data; boundary=XX", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "payload_json");
        assert_eq!(parts[0].data, b"{\"content\":\"hi\"}");
        assert_eq!(parts[1].filename.as_deref(), Some("log.txt"));
    }

    #[test]
    fn faults_are_served_in_order_and_counted_down() {
        let mut inner = Inner::new(&SandboxOptions::default());
        inner.faults.push_back((
            Fault::ServerErrors {
                platform: Platform::Discord,
                count: 2,
                status: 500,
            },
            2,
        ));
        assert!(inner.take_fault(Platform::Telegram).is_none());
        assert!(inner.take_fault(Platform::Discord).is_some());
        assert!(inner.take_fault(Platform::Discord).is_some());
        assert!(inner.take_fault(Platform::Discord).is_none());
    }
}
