//! The Telegram Bot API stand-in (`/telegram/bot<token>/<method>`): the methods a
//! chat-ops bot uses, their parameters checked as the Bot API checks them (required,
//! types, lengths, HTML entities, inline keyboards), Telegram's error shape, the
//! broadcasting limits, and users the sandbox plays. Only the bots whose tokens
//! it knows are served (see `login.rs`). The update queue, `allowed_updates`,
//! long polling and webhooks are in `telegram/updates.rs`; `parse_mode` parsing
//! in `telegram_html.rs` and `telegram_markdown.rs`.

mod text;
mod updates;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::limits::{TelegramLimits, TokenBucket};
use super::login::TelegramAuth;
use super::model::{
    BotCommand, CallbackAnswer, ControlError, EnqueuedUpdate, TelegramChatState, TelegramMessage,
    TelegramState, TelegramUser, TelegramUserAction,
};
use super::{
    Fault, Platform, Reply, SandboxOptions, Seen, Shared, finish, lose_response, serve_fault,
};
use text::render_text;
pub(crate) use updates::{webhook_done, webhook_next};

const CALLBACK_DATA_MAX: usize = 64;
const CALLBACK_ANSWER_MAX: usize = 200;
const ANSWERS_KEPT: usize = 1000;
const POLL_TIMEOUT_MAX: u64 = 50;
/// Supergroup and channel ids are below this (`-100…`).
const SUPERGROUP_BELOW: i64 = -1_000_000_000_000;

struct Chat {
    name: String,
    messages: VecDeque<TelegramMessage>,
    /// Messages users wrote (the bot cannot edit them).
    user_messages: HashSet<i32>,
    next_message_id: i32,
    per_chat: Option<TokenBucket>,
    per_group: Option<TokenBucket>,
    /// Accepted `sendChatAction` calls ("typing…" shown).
    chat_actions: u64,
}

enum ActionKind {
    Honest,
    Forged,
}

struct PendingCallback {
    answered: bool,
}

pub(crate) struct World {
    chats: BTreeMap<i64, Chat>,
    limits: TelegramLimits,
    /// Per bot id (the token's number), all chats together.
    overall: HashMap<i64, TokenBucket>,
    updates: VecDeque<updates::Queued>,
    /// Each bot's `allowed_updates` (a bit per update type; see `updates.rs`).
    subscriptions: BTreeMap<i64, u32>,
    /// Updates not delivered to a bot because its `allowed_updates` left them out.
    dropped_updates: u64,
    next_update_id: i64,
    callbacks: HashMap<String, PendingCallback>,
    next_callback: u64,
    answers: VecDeque<CallbackAnswer>,
    commands: Vec<BotCommand>,
    /// The latest poller per bot: an older `getUpdates` still waiting loses with 409.
    pollers: HashMap<i64, u64>,
    /// The bot that last sent anything (the sender shown in updates).
    last_bot: i64,
    max_messages: usize,
    waiting_polls: usize,
    /// Set at shutdown so that long polls end at once.
    pub(crate) closing: bool,
    /// `setWebhook`: the URL and the secret sent in `X-Telegram-Bot-Api-Secret-Token`.
    webhook: Option<(String, Option<String>)>,
    /// The bot that set the webhook.
    webhook_bot: i64,
    webhook_failures: u64,
    /// Uploaded documents and photos, by file path (`getFile`, downloads).
    pub(crate) files: super::files::FileStore,
    /// `file_id` → the `file_path` `getFile` gives.
    file_paths: HashMap<String, String>,
    next_file: u64,
}

impl World {
    pub(crate) fn new(opts: &SandboxOptions) -> Self {
        let mut world = Self {
            chats: BTreeMap::new(),
            limits: opts.telegram_rate.clone(),
            overall: HashMap::new(),
            updates: VecDeque::new(),
            subscriptions: BTreeMap::new(),
            dropped_updates: 0,
            next_update_id: 100_000_001,
            callbacks: HashMap::new(),
            next_callback: 4_382_000_000_000_000_001,
            answers: VecDeque::new(),
            commands: Vec::new(),
            pollers: HashMap::new(),
            last_bot: 1,
            max_messages: opts.max_messages_per_conversation.max(1),
            waiting_polls: 0,
            files: super::files::FileStore::default(),
            file_paths: HashMap::new(),
            next_file: 1,
            closing: false,
            webhook: None,
            webhook_bot: 0,
            webhook_failures: 0,
        };
        for (id, name) in &opts.telegram_chats {
            world.add_chat(*id, name.clone());
        }
        world
    }

    pub(crate) fn add_chat(&mut self, id: i64, name: String) {
        self.chats
            .entry(id)
            .or_insert_with(|| Chat {
                name: String::new(),
                messages: VecDeque::new(),
                user_messages: HashSet::new(),
                next_message_id: 1,
                per_chat: None,
                per_group: None,
                chat_actions: 0,
            })
            .name = name;
    }

    pub(crate) fn snapshot(&self) -> TelegramState {
        TelegramState {
            chats: self
                .chats
                .iter()
                .map(|(id, c)| TelegramChatState {
                    id: *id,
                    name: c.name.clone(),
                    messages: c.messages.iter().cloned().collect(),
                    chat_actions: c.chat_actions,
                })
                .collect(),
            pending_updates: self.updates.len(),
            callback_answers: self.answers.iter().cloned().collect(),
            commands: self.commands.clone(),
            waiting_polls: self.waiting_polls,
            webhook_url: self.webhook.as_ref().map(|(u, _)| u.clone()),
            webhook_failures: self.webhook_failures,
            dropped_updates: self.dropped_updates,
            allowed_updates: self.allowed_updates(),
        }
    }

    fn next_update(&mut self) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        id
    }

    pub(crate) fn enqueue(
        &mut self,
        action: TelegramUserAction,
    ) -> Result<EnqueuedUpdate, ControlError> {
        let now = unix_secs();
        let action_kind = if matches!(action, TelegramUserAction::ForgedPress { .. }) {
            ActionKind::Forged
        } else {
            ActionKind::Honest
        };
        match action {
            TelegramUserAction::Message {
                chat_id,
                from,
                text,
            } => {
                let chat_json = self
                    .chat_json(chat_id)
                    .ok_or(ControlError::UnknownChat(chat_id))?;
                let chat = self.chats.get_mut(&chat_id).expect("checked");
                let message_id = chat.next_message_id;
                chat.next_message_id += 1;
                chat.user_messages.insert(message_id);
                let mut message = json!({
                    "message_id": message_id, "from": user_json(&from), "chat": chat_json, "date": now, "text": text,
                });
                if text.starts_with('/') {
                    let len: usize = text
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .encode_utf16()
                        .count();
                    message["entities"] =
                        json!([{"type": "bot_command", "offset": 0, "length": len}]);
                }
                let update_id = self.push_update("message", message);
                Ok(EnqueuedUpdate {
                    update_id,
                    callback_query_id: None,
                    message_id: Some(message_id),
                })
            }
            TelegramUserAction::Document {
                chat_id,
                from,
                file,
                caption,
            } => {
                let chat_json = self
                    .chat_json(chat_id)
                    .ok_or(ControlError::UnknownChat(chat_id))?;
                let n = self.next_file;
                self.next_file += 1;
                let file_id = format!("BQACAgIAAx{n:06}");
                let content_type = file
                    .content_type
                    .clone()
                    .unwrap_or_else(|| super::files::guess_type(&file.filename));
                self.files.put(
                    file_id.clone(),
                    super::files::StoredFile {
                        content_type: content_type.clone(),
                        bytes: file.content.as_bytes().into(),
                        delay_ms: file.delay_ms,
                    },
                );
                self.file_paths.insert(
                    file_id.clone(),
                    format!("documents/file_{n}_{}", file.filename),
                );
                let chat = self.chats.get_mut(&chat_id).expect("checked");
                let message_id = chat.next_message_id;
                chat.next_message_id += 1;
                chat.user_messages.insert(message_id);
                let mut message = json!({
                    "message_id": message_id, "from": user_json(&from), "chat": chat_json, "date": now,
                    "document": {
                        "file_id": file_id, "file_unique_id": format!("AgAD{n:06}"), "file_name": file.filename,
                        "mime_type": content_type,
                        "file_size": file.claimed_size.unwrap_or(file.content.len() as u64),
                    },
                });
                if let Some(caption) = caption {
                    message["caption"] = json!(caption);
                }
                let update_id = self.push_update("message", message);
                Ok(EnqueuedUpdate {
                    update_id,
                    callback_query_id: None,
                    message_id: Some(message_id),
                })
            }
            TelegramUserAction::PressButton {
                chat_id,
                message_id,
                from,
                callback_data,
            }
            | TelegramUserAction::ForgedPress {
                chat_id,
                message_id,
                from,
                callback_data,
            } => {
                let forged = matches!(action_kind, ActionKind::Forged);
                let chat = self
                    .chats
                    .get(&chat_id)
                    .ok_or(ControlError::UnknownChat(chat_id))?;
                let message = chat
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.message_id == message_id)
                    .ok_or(ControlError::UnknownMessage {
                        chat_id,
                        message_id,
                    })?;
                let has_button = message
                    .reply_markup
                    .as_ref()
                    .and_then(|m| m.get("inline_keyboard"))
                    .and_then(Value::as_array)
                    .is_some_and(|rows| {
                        rows.iter().filter_map(Value::as_array).flatten().any(|b| {
                            b.get("callback_data").and_then(Value::as_str)
                                == Some(callback_data.as_str())
                        })
                    });
                if !has_button && !forged {
                    return Err(ControlError::NoSuchButton {
                        chat_id,
                        message_id,
                        callback_data,
                    });
                }
                let message_json = self.message_json(chat_id, message, self.last_bot);
                let id = self.next_callback.to_string();
                self.next_callback += 1;
                self.callbacks
                    .insert(id.clone(), PendingCallback { answered: false });
                let query = json!({
                    "id": id, "from": user_json(&from), "message": message_json,
                    "chat_instance": format!("{}", chat_id.unsigned_abs().wrapping_mul(2_654_435_761)),
                    "data": callback_data,
                });
                let update_id = self.push_update("callback_query", query);
                Ok(EnqueuedUpdate {
                    update_id,
                    callback_query_id: Some(id),
                    message_id: None,
                })
            }
        }
    }

    fn chat_json(&self, chat_id: i64) -> Option<Value> {
        let chat = self.chats.get(&chat_id)?;
        Some(if chat_id > 0 {
            json!({"id": chat_id, "type": "private", "first_name": chat.name, "username": chat.name})
        } else if chat_id < SUPERGROUP_BELOW {
            json!({"id": chat_id, "type": "supergroup", "title": chat.name})
        } else {
            json!({"id": chat_id, "type": "group", "title": chat.name})
        })
    }

    fn message_json(&self, chat_id: i64, m: &TelegramMessage, bot: i64) -> Value {
        let mut v = json!({
            "message_id": m.message_id,
            "from": bot_json(bot),
            "chat": self.chat_json(chat_id).unwrap_or(json!({"id": chat_id, "type": "private"})),
            "date": m.date,
        });
        match (&m.document, &m.photo) {
            (Some(doc), _) => v["document"] = doc.clone(),
            (None, Some(photo)) => v["photo"] = photo.clone(),
            (None, None) => v["text"] = json!(m.text),
        }
        if m.document.is_some() || m.photo.is_some() {
            if !m.text.is_empty() {
                v["caption"] = json!(m.text);
            }
        } else if !m.entities.is_empty() {
            v["entities"] = json!(m.entities);
        }
        // Only inline keyboards come back on the message.
        if let Some(markup) = m
            .reply_markup
            .as_ref()
            .filter(|r| r.get("inline_keyboard").is_some())
        {
            v["reply_markup"] = markup.clone();
        }
        if m.edited {
            v["edit_date"] = json!(unix_secs());
        }
        v
    }

    fn resolve_chat(&self, chat: &ChatRef) -> Option<i64> {
        match chat {
            ChatRef::Id(id) => self.chats.contains_key(id).then_some(*id),
            ChatRef::Username(name) => self
                .chats
                .iter()
                .find(|(_, c)| c.name.trim_start_matches('@').eq_ignore_ascii_case(name))
                .map(|(id, _)| *id),
        }
    }

    /// Applies the broadcasting limits to one message; `Err(wait)` when refused.
    fn take_send(&mut self, bot: i64, chat_id: i64, now: Instant) -> Result<(), Duration> {
        let limits = self.limits.clone();
        let tolerance = limits.jitter_tolerance;
        let overall = self
            .overall
            .entry(bot)
            .or_insert_with(|| TokenBucket::new(limits.overall, now));
        let mut wait = overall.wait(now, tolerance);
        let chat = self.chats.get_mut(&chat_id).expect("resolved");
        let per_chat = chat
            .per_chat
            .get_or_insert_with(|| TokenBucket::new(limits.per_chat, now));
        wait = wait.max(per_chat.wait(now, tolerance));
        if chat_id < 0 {
            let group = chat
                .per_group
                .get_or_insert_with(|| TokenBucket::new(limits.per_group, now));
            wait = wait.max(group.wait(now, tolerance));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if let Some(b) = chat.per_chat.as_mut() {
            b.spend();
        }
        if let Some(b) = chat.per_group.as_mut() {
            b.spend();
        }
        self.overall.get_mut(&bot).expect("inserted").spend();
        Ok(())
    }
}

fn unix_secs() -> i64 {
    super::unix_now() as i64
}

fn user_json(u: &TelegramUser) -> Value {
    let mut v = json!({"id": u.id, "is_bot": false, "first_name": u.first_name});
    if let Some(name) = &u.username {
        v["username"] = json!(name);
    }
    v
}

fn bot_json(bot: i64) -> Value {
    json!({"id": bot, "is_bot": true, "first_name": "Switchyard Sandbox", "username": format!("sandbox_{bot}_bot")})
}

fn error_body(status: u16, reason: &str, retry_after: Option<f64>) -> Value {
    match retry_after {
        Some(secs) => {
            let n = secs.ceil().max(1.0) as u64;
            json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {n}"),
                   "parameters": {"retry_after": n}})
        }
        None => json!({"ok": false, "error_code": status, "description": reason}),
    }
}

fn refused(status: StatusCode, description: impl Into<String>) -> Reply {
    let description = description.into();
    Reply::refused(
        status,
        json!({"ok": false, "error_code": status.as_u16(), "description": description}),
        description,
    )
}

fn bad_request(description: impl Into<String>) -> Reply {
    refused(
        StatusCode::BAD_REQUEST,
        format!("Bad Request: {}", description.into()),
    )
}

fn too_many(wait: Duration) -> Reply {
    let mut reply = Reply::json(
        StatusCode::TOO_MANY_REQUESTS,
        error_body(429, "", Some(wait.as_secs_f64())),
    );
    reply.error = Some(format!(
        "rate limited, retry after {:.3} s",
        wait.as_secs_f64()
    ));
    reply
}

fn ok(result: Value) -> Reply {
    Reply::ok(json!({"ok": true, "result": result}))
}

/// A parameter's type as the Bot API documents it.
#[derive(Clone, Copy)]
enum Param {
    Int,
    Str,
    Bool,
    /// An integer or `@username`.
    ChatId,
    /// A JSON object (or a string holding one).
    Object,
    /// A JSON array (or a string holding one).
    Array,
}

/// The documented parameters of the methods served (Bot API 10.1), checked for type
/// before a call runs; parameters not listed are ignored, as the Bot API ignores them.
const METHOD_PARAMS: &[(&str, &[(&str, Param)])] = {
    use Param::*;
    &[
        (
            "sendmessage",
            &[
                ("business_connection_id", Str),
                ("chat_id", ChatId),
                ("message_thread_id", Int),
                ("direct_messages_topic_id", Int),
                ("text", Str),
                ("parse_mode", Str),
                ("entities", Array),
                ("link_preview_options", Object),
                ("disable_notification", Bool),
                ("protect_content", Bool),
                ("allow_paid_broadcast", Bool),
                ("message_effect_id", Str),
                ("suggested_post_parameters", Object),
                ("reply_parameters", Object),
                ("reply_markup", Object),
            ],
        ),
        (
            "editmessagetext",
            &[
                ("business_connection_id", Str),
                ("chat_id", ChatId),
                ("message_id", Int),
                ("inline_message_id", Str),
                ("text", Str),
                ("parse_mode", Str),
                ("entities", Array),
                ("link_preview_options", Object),
                ("rich_message", Object),
                ("reply_markup", Object),
            ],
        ),
        (
            "editmessagereplymarkup",
            &[
                ("business_connection_id", Str),
                ("chat_id", ChatId),
                ("message_id", Int),
                ("inline_message_id", Str),
                ("reply_markup", Object),
            ],
        ),
        (
            "answercallbackquery",
            &[
                ("callback_query_id", Str),
                ("text", Str),
                ("show_alert", Bool),
                ("url", Str),
                ("cache_time", Int),
            ],
        ),
        (
            "setmycommands",
            &[
                ("commands", Array),
                ("scope", Object),
                ("language_code", Str),
            ],
        ),
        (
            "getmycommands",
            &[("scope", Object), ("language_code", Str)],
        ),
        (
            "deletemycommands",
            &[("scope", Object), ("language_code", Str)],
        ),
        (
            "getupdates",
            &[
                ("offset", Int),
                ("limit", Int),
                ("timeout", Int),
                // Not `allowed_updates`: the server ignores one it cannot read
                // (the previous setting stays), it never refuses it.
            ],
        ),
        ("deletewebhook", &[("drop_pending_updates", Bool)]),
        (
            "setwebhook",
            &[
                ("url", Str),
                ("ip_address", Str),
                ("max_connections", Int),
                ("drop_pending_updates", Bool),
                ("secret_token", Str),
            ],
        ),
        (
            "sendchataction",
            &[
                ("business_connection_id", Str),
                ("chat_id", ChatId),
                ("message_thread_id", Int),
                ("action", Str),
            ],
        ),
    ]
};

fn check_param_types(method: &str, p: &Params) -> Result<(), Reply> {
    let Some((_, params)) = METHOD_PARAMS.iter().find(|(m, _)| *m == method) else {
        return Ok(());
    };
    for (name, ty) in *params {
        match ty {
            Param::Int => p.int(name).map(drop)?,
            Param::Str => p.str(name).map(drop)?,
            Param::Bool => p.bool(name).map(drop)?,
            Param::ChatId => p.chat_id(name).map(drop)?,
            Param::Object => {
                if p.json(name)?.is_some_and(|v| !v.is_object()) {
                    return Err(Params::type_error(name, "Object"));
                }
            }
            Param::Array => {
                if p.json(name)?.is_some_and(|v| !v.is_array()) {
                    return Err(Params::type_error(name, "Array"));
                }
            }
        }
    }
    Ok(())
}

/// Methods that only read or set up polling: faults do not hit them.
fn fault_exempt(method: &str) -> bool {
    matches!(
        method,
        "getupdates" | "getme" | "getwebhookinfo" | "deletewebhook"
    )
}

pub(crate) async fn entry(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rest = uri.path().strip_prefix("/telegram/").unwrap_or("");
    if let Some(download) = rest.strip_prefix("file/bot") {
        return download_file(&shared, download);
    }
    let (token, api_method) = match rest.strip_prefix("bot").and_then(|r| r.split_once('/')) {
        Some((token, m)) if !m.is_empty() && !m.contains('/') => (token, m),
        _ => {
            let seen = Seen {
                platform: Platform::Telegram,
                method: method.to_string(),
                path: "/telegram/<unrecognised>".to_owned(),
                route: "unknown".to_owned(),
            };
            return finish(&shared, seen, refused(StatusCode::NOT_FOUND, "Not Found"));
        }
    };
    let seen = Seen {
        platform: Platform::Telegram,
        method: method.to_string(),
        path: format!("/telegram/bot<token>/{api_method}"),
        route: api_method.to_owned(),
    };
    let lower = api_method.to_ascii_lowercase();
    let reply = handle(&shared, token, &lower, uri.query(), &headers, &body).await;
    finish(&shared, seen, reply)
}

/// `GET /telegram/file/bot<token>/<file_path>`: a file's bytes, for a known token.
fn download_file(shared: &Shared, rest: &str) -> Response {
    let Some((token, path)) = rest.split_once('/') else {
        return super::files::file_response(None);
    };
    if let TelegramAuth::Refused(reply) = shared.tokens.telegram(token) {
        return (reply.status, axum::Json(reply.body.unwrap_or_default())).into_response();
    }
    // Clients encode the path's `/` as %2F (teloxide pushes it as one segment); Telegram takes both.
    let path = super::discord::percent_decode(path);
    let file = shared.lock().telegram.file_at(&path);
    super::files::file_response(file)
}

async fn handle(
    shared: &Shared,
    token: &str,
    method: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    // The token first: a refused call does nothing, not even take a fault meant for a bot.
    let bot = match shared.tokens.telegram(token) {
        TelegramAuth::Bot(bot) => bot,
        TelegramAuth::Refused(reply) => return reply,
    };
    let fault = if fault_exempt(method) {
        None
    } else {
        shared.lock().take_fault(Platform::Telegram)
    };
    let mut lost = None;
    if let Some(fault) = fault {
        if let Fault::LostResponses { delay_ms, .. } = fault {
            lost = Some(delay_ms);
        } else if let Some(reply) = serve_fault(&fault, error_body).await {
            return reply;
        }
    }
    let params = match Params::collect(query, headers, body) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    if let Err(reply) = check_param_types(method, &params) {
        return reply;
    }
    let reply = if method == "getupdates" {
        updates::get_updates(shared, bot, &params).await
    } else {
        let mut inner = shared.lock();
        let world = &mut inner.telegram;
        world.last_bot = bot;
        call(world, bot, method, &params).unwrap_or_else(|reply| reply)
    };
    match lost {
        Some(delay_ms) => lose_response(delay_ms, error_body).await,
        None => reply,
    }
}

fn call(world: &mut World, bot: i64, method: &str, p: &Params) -> Result<Reply, Reply> {
    match method {
        "getme" => Ok(ok(json!({
            "id": bot, "is_bot": true, "first_name": "Switchyard Sandbox", "username": format!("sandbox_{bot}_bot"),
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        }))),
        "getwebhookinfo" => {
            let mut info = json!({
                "url": world.webhook.as_ref().map_or("", |(u, _)| u.as_str()),
                "has_custom_certificate": false, "pending_update_count": world.pending_for(bot),
            });
            if let Some(allowed) = world.webhook_allowed_updates(bot) {
                info["allowed_updates"] = json!(allowed);
            }
            Ok(ok(info))
        }
        "setwebhook" => updates::set_webhook(world, bot, p),
        "deletewebhook" => {
            world.webhook = None;
            if p.bool("drop_pending_updates")?.unwrap_or(false) {
                world.updates.clear();
            }
            Ok(ok(json!(true)))
        }
        "sendmessage" => send_message(world, bot, p),
        "senddocument" => send_file(world, bot, p, Upload::Document),
        "sendphoto" => send_file(world, bot, p, Upload::Photo),
        "getfile" => get_file(world, p),
        "getchat" => {
            // A ChatFullInfo: the Chat's fields and the ones the Bot API requires besides.
            let id = resolve(world, p)?;
            let mut chat = world.chat_json(id).expect("resolved");
            chat["accent_color_id"] = json!(0);
            chat["max_reaction_count"] = json!(11);
            chat["accepted_gift_types"] = json!({
                "unlimited_gifts": false, "limited_gifts": false, "unique_gifts": false,
                "premium_subscription": false, "gifts_from_channels": false,
            });
            Ok(ok(chat))
        }
        "editmessagetext" => edit_message(world, bot, p, true),
        "editmessagereplymarkup" => edit_message(world, bot, p, false),
        "answercallbackquery" => answer_callback_query(world, p),
        "setmycommands" => set_my_commands(world, p),
        "getmycommands" => Ok(ok(json!(world.commands))),
        "deletemycommands" => {
            world.commands.clear();
            Ok(ok(json!(true)))
        }
        "sendchataction" => {
            // The action is checked before the chat, as the Bot API server does.
            let shown = text::chat_action(p)?;
            let chat_id = resolve(world, p)?;
            if let Some(chat) = world.chats.get_mut(&chat_id).filter(|_| shown) {
                chat.chat_actions += 1;
            }
            Ok(ok(json!(true)))
        }
        _ => Err(refused(StatusCode::NOT_FOUND, "Not Found")),
    }
}

/// The target chat of a call (`chat_id`: an integer or `@username`).
fn resolve(world: &World, p: &Params) -> Result<i64, Reply> {
    let chat = p
        .chat_id("chat_id")?
        .ok_or_else(|| bad_request("chat_id is empty"))?;
    world
        .resolve_chat(&chat)
        .ok_or_else(|| bad_request("chat not found"))
}

/// Validates `reply_markup`; returns it as JSON.
fn reply_markup(p: &Params) -> Result<Option<Value>, Reply> {
    let Some(markup) = p.json("reply_markup")? else {
        return Ok(None);
    };
    let Some(obj) = markup.as_object() else {
        return Err(bad_request("field \"reply_markup\" must be of type Object"));
    };
    if let Some(keyboard) = obj.get("inline_keyboard") {
        let rows = keyboard
            .as_array()
            .ok_or_else(|| bad_request("field \"inline_keyboard\" must be of type Array"))?;
        for row in rows {
            let buttons = row.as_array().ok_or_else(|| {
                bad_request("field \"inline_keyboard\" must be an Array of Arrays")
            })?;
            for button in buttons {
                check_button(button)?;
            }
        }
    } else if !(obj.contains_key("keyboard")
        || obj.contains_key("remove_keyboard")
        || obj.contains_key("force_reply"))
    {
        return Err(bad_request("can't parse reply keyboard markup JSON object"));
    }
    Ok(Some(markup))
}

fn check_button(button: &Value) -> Result<(), Reply> {
    let b = button.as_object().ok_or_else(|| {
        bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    })?;
    match b.get("text") {
        Some(Value::String(t)) if !t.is_empty() => {}
        Some(Value::String(_)) => return Err(bad_request("BUTTON_TEXT_INVALID")),
        _ => {
            return Err(bad_request(
                "can't parse inline keyboard button: Field \"text\" must be of type String",
            ));
        }
    }
    const ACTIONS: &[&str] = &[
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    ];
    let actions = ACTIONS.iter().filter(|a| b.contains_key(**a)).count();
    if actions == 0 {
        return Err(bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ));
    }
    if let Some(data) = b.get("callback_data") {
        let len = data.as_str().map_or(0, str::len);
        if !(1..=CALLBACK_DATA_MAX).contains(&len) {
            return Err(bad_request("BUTTON_DATA_INVALID"));
        }
    }
    if let Some(url) = b.get("url") {
        let valid = url.as_str().and_then(|u| url::Url::parse(u).ok()).is_some();
        if !valid {
            return Err(bad_request("inline keyboard button URL is invalid"));
        }
    }
    Ok(())
}

fn send_message(world: &mut World, bot: i64, p: &Params) -> Result<Reply, Reply> {
    let chat_id = resolve(world, p)?;
    let (text, source, parse_mode, entities) = render_text(p)?;
    let markup = reply_markup(p)?;
    for flag in [
        "disable_notification",
        "protect_content",
        "allow_paid_broadcast",
    ] {
        p.bool(flag)?;
    }
    p.int("message_thread_id")?;
    if let Err(wait) = world.take_send(bot, chat_id, Instant::now()) {
        return Err(too_many(wait));
    }
    let max = world.max_messages;
    let chat = world.chats.get_mut(&chat_id).expect("resolved");
    let message = TelegramMessage {
        document: None,
        photo: None,
        message_id: chat.next_message_id,
        text,
        source_text: source,
        parse_mode,
        entities,
        reply_markup: markup,
        edited: false,
        edits: 0,
        date: unix_secs(),
    };
    chat.next_message_id += 1;
    if chat.messages.len() >= max {
        chat.messages.pop_front();
    }
    chat.messages.push_back(message.clone());
    Ok(ok(world.message_json(chat_id, &message, bot)))
}

/// What an upload method sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upload {
    Document,
    Photo,
}

/// Telegram's limits for uploads by a bot (the Bot API reference: photos
/// up to 10 MB, other files up to 50 MB; captions 0-1024 characters).
const MAX_PHOTO_BYTES: usize = 10 * 1000 * 1000;
const MAX_DOCUMENT_BYTES: usize = 50 * 1000 * 1000;
const MAX_CAPTION_CHARS: usize = 1024;

/// `sendDocument` / `sendPhoto` with the file uploaded as multipart
/// (`InputFile`): the part named as the parameter, or `attach://NAME`.
/// A file id or URL names a file the sandbox does not have: refused.
fn send_file(world: &mut World, bot: i64, p: &Params, kind: Upload) -> Result<Reply, Reply> {
    let chat_id = resolve(world, p)?;
    let field = match kind {
        Upload::Document => "document",
        Upload::Photo => "photo",
    };
    let attach = p.str(field)?;
    let part = match attach.as_deref() {
        Some(reference) => match reference.strip_prefix("attach://") {
            Some(name) => p.1.iter().find(|f| f.name == name),
            None => return Err(bad_request("wrong file identifier/HTTP URL specified")),
        },
        None => p.1.iter().find(|f| f.name == field),
    };
    let Some(part) = part else {
        return Err(bad_request(format!("there is no {field} in the request")));
    };
    if part.data.is_empty() {
        return Err(bad_request("file must be non-empty"));
    }
    let limit = match kind {
        Upload::Document => MAX_DOCUMENT_BYTES,
        Upload::Photo => MAX_PHOTO_BYTES,
    };
    if part.data.len() > limit {
        return Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
        ));
    }
    let image = super::files::image_kind(&part.data);
    if kind == Upload::Photo && image.is_none() {
        return Err(bad_request("IMAGE_PROCESS_FAILED"));
    }
    let caption = p.str("caption")?.unwrap_or_default();
    if caption.chars().count() > MAX_CAPTION_CHARS {
        return Err(bad_request("message caption is too long"));
    }
    for flag in ["disable_notification", "protect_content"] {
        p.bool(flag)?;
    }
    if let Err(wait) = world.take_send(bot, chat_id, Instant::now()) {
        return Err(too_many(wait));
    }
    let n = world.next_file;
    world.next_file += 1;
    let file_id = format!("BQACAgIAAx{n:06}");
    let unique = format!("AgAD{n:06}");
    let name = part.filename.clone().unwrap_or_else(|| "file".into());
    let content_type = image
        .map(str::to_owned)
        .or_else(|| part.content_type.clone())
        .unwrap_or_else(|| super::files::guess_type(&name));
    let file_path = match kind {
        Upload::Document => format!("documents/file_{n}_{name}"),
        Upload::Photo => format!("photos/file_{n}.png"),
    };
    world.files.put(
        file_id.clone(),
        super::files::StoredFile {
            content_type: content_type.clone(),
            bytes: part.data.clone().into(),
            delay_ms: 0,
        },
    );
    world.file_paths.insert(file_id.clone(), file_path);
    let size = part.data.len();
    let (document, photo) = match kind {
        Upload::Document => (
            Some(json!({
                "file_id": file_id, "file_unique_id": unique, "file_name": name,
                "mime_type": content_type, "file_size": size,
            })),
            None,
        ),
        Upload::Photo => {
            let (width, height) = png_size(&part.data).unwrap_or((1, 1));
            (
                None,
                Some(json!([{
                    "file_id": file_id, "file_unique_id": unique,
                    "width": width, "height": height, "file_size": size,
                }])),
            )
        }
    };
    let max = world.max_messages;
    let chat = world.chats.get_mut(&chat_id).expect("resolved");
    let message = TelegramMessage {
        message_id: chat.next_message_id,
        text: caption.clone(),
        source_text: caption,
        parse_mode: None,
        entities: Vec::new(),
        reply_markup: None,
        edited: false,
        edits: 0,
        date: unix_secs(),
        document,
        photo,
    };
    chat.next_message_id += 1;
    if chat.messages.len() >= max {
        chat.messages.pop_front();
    }
    chat.messages.push_back(message.clone());
    Ok(ok(world.message_json(chat_id, &message, bot)))
}

/// A PNG's width and height, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || !bytes.starts_with(b"\x89PNG") {
        return None;
    }
    let w = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
    Some((w, h))
}

/// `getFile`: where a file the sandbox holds can be downloaded
/// (`/telegram/file/bot<token>/<file_path>`).
fn get_file(world: &mut World, p: &Params) -> Result<Reply, Reply> {
    let file_id = p.required_str("file_id")?;
    let (Some(file), Some(path)) = (world.files.get(&file_id), world.file_paths.get(&file_id))
    else {
        return Err(bad_request("invalid file_id"));
    };
    Ok(ok(json!({
        "file_id": file_id, "file_unique_id": format!("u{file_id}"),
        "file_size": file.bytes.len(), "file_path": path,
    })))
}

impl World {
    /// The bytes at a `file_path` that `getFile` gave out.
    pub(crate) fn file_at(&self, path: &str) -> Option<super::files::StoredFile> {
        let id = self
            .file_paths
            .iter()
            .find(|(_, p)| p.as_str() == path)
            .map(|(id, _)| id.clone())?;
        self.files.get(&id)
    }
}

fn edit_message(world: &mut World, bot: i64, p: &Params, text: bool) -> Result<Reply, Reply> {
    if p.str("inline_message_id")?.is_some() {
        return Err(bad_request(
            "inline messages are not supported by the sandbox",
        ));
    }
    let chat_id = resolve(world, p)?;
    let message_id = p
        .int("message_id")?
        .ok_or_else(|| bad_request("message identifier is not specified"))?;
    let rendered = if text { Some(render_text(p)?) } else { None };
    let markup = reply_markup(p)?;
    let chat = world.chats.get_mut(&chat_id).expect("resolved");
    let Some(message) = chat
        .messages
        .iter_mut()
        .rev()
        .find(|m| i64::from(m.message_id) == message_id)
    else {
        return Err(if chat.user_messages.contains(&(message_id as i32)) {
            bad_request("message can't be edited")
        } else {
            bad_request("message to edit not found")
        });
    };
    let mut edited = message.clone();
    if let Some((text, source, parse_mode, entities)) = rendered {
        edited.text = text;
        edited.source_text = source;
        edited.parse_mode = parse_mode;
        edited.entities = entities;
    }
    // Telegram drops the inline keyboard when an edit does not repeat it.
    edited.reply_markup = markup;
    if edited.text == message.text
        && edited.entities == message.entities
        && edited.reply_markup == message.reply_markup
    {
        return Err(bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    edited.edited = true;
    edited.edits = edited.edits.saturating_add(1);
    *message = edited.clone();
    Ok(ok(world.message_json(chat_id, &edited, bot)))
}

fn answer_callback_query(world: &mut World, p: &Params) -> Result<Reply, Reply> {
    let id = p
        .str("callback_query_id")?
        .ok_or_else(|| bad_request("callback_query_id is empty"))?;
    let text = p.str("text")?;
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > CALLBACK_ANSWER_MAX)
    {
        return Err(bad_request("MESSAGE_TOO_LONG"));
    }
    let show_alert = p.bool("show_alert")?.unwrap_or(false);
    p.int("cache_time")?;
    p.str("url")?;
    match world.callbacks.get_mut(&id) {
        Some(pending) if !pending.answered => pending.answered = true,
        _ => {
            return Err(bad_request(
                "query is too old and response timeout expired or query ID is invalid",
            ));
        }
    }
    if world.answers.len() >= ANSWERS_KEPT {
        world.answers.pop_front();
    }
    world.answers.push_back(CallbackAnswer {
        callback_query_id: id,
        text,
        show_alert,
    });
    Ok(ok(json!(true)))
}

fn set_my_commands(world: &mut World, p: &Params) -> Result<Reply, Reply> {
    let commands = p
        .json("commands")?
        .ok_or_else(|| bad_request("commands is empty"))?;
    let Value::Array(commands) = commands else {
        return Err(bad_request("field \"commands\" must be of type Array"));
    };
    if commands.len() > 100 {
        return Err(bad_request("too many commands"));
    }
    let mut parsed = Vec::with_capacity(commands.len());
    for c in &commands {
        let command = c.get("command").and_then(Value::as_str).unwrap_or("");
        let description = c.get("description").and_then(Value::as_str).unwrap_or("");
        let valid = (1..=32).contains(&command.chars().count())
            && command
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(bad_request("BOT_COMMAND_INVALID"));
        }
        if !(1..=256).contains(&description.chars().count()) {
            return Err(bad_request("BOT_COMMAND_DESCRIPTION_INVALID"));
        }
        parsed.push(BotCommand {
            command: command.to_owned(),
            description: description.to_owned(),
        });
    }
    p.json("scope")?;
    p.str("language_code")?;
    world.commands = parsed;
    Ok(ok(json!(true)))
}

/// A chat reference: an id, or `@username`.
enum ChatRef {
    Id(i64),
    Username(String),
}

/// A call's parameters, from the query string, a JSON body, a form or multipart,
/// read with the Bot API's leniency (numbers may come as strings and the reverse;
/// JSON-typed parameters may come serialised in a string).
struct Params(Map<String, Value>, Vec<super::Part>);

impl Params {
    fn collect(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Self, Reply> {
        let mut map = Map::new();
        let mut files = Vec::new();
        for (k, v) in super::query_pairs(query) {
            map.insert(k, Value::String(v));
        }
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("multipart/form-data") {
            let parts = super::multipart_parts(content_type, body)
                .ok_or_else(|| bad_request("can't parse multipart/form-data body"))?;
            for part in parts {
                if part.filename.is_none() {
                    let value = String::from_utf8_lossy(&part.data).into_owned();
                    map.insert(part.name, Value::String(value));
                } else {
                    files.push(part);
                }
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in super::query_pairs(Some(&String::from_utf8_lossy(body))) {
                map.insert(k, Value::String(v));
            }
        } else if !body.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(obj)) => map.extend(obj),
                _ => return Err(bad_request("can't parse JSON object")),
            }
        }
        map.retain(|_, v| !v.is_null());
        Ok(Self(map, files))
    }

    fn type_error(name: &str, ty: &str) -> Reply {
        bad_request(format!("field \"{name}\" must be of type {ty}"))
    }

    fn str(&self, name: &str) -> Result<Option<String>, Reply> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(Self::type_error(name, "String")),
        }
    }

    fn required_str(&self, name: &str) -> Result<String, Reply> {
        self.str(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad_request(format!("{name} is empty")))
    }

    fn int(&self, name: &str) -> Result<Option<i64>, Reply> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| Self::type_error(name, "Integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| Self::type_error(name, "Integer")),
            Some(_) => Err(Self::type_error(name, "Integer")),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, Reply> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" || s == "0" => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(_) => Err(Self::type_error(name, "Boolean")),
        }
    }

    /// An object or array, given as JSON or as a JSON string.
    fn json(&self, name: &str) -> Result<Option<Value>, Reply> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v @ (Value::Object(_) | Value::Array(_))) => Ok(Some(v.clone())),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(Some(v)),
                _ => Err(bad_request(format!("can't parse {name} JSON object"))),
            },
            Some(_) => Err(bad_request(format!("can't parse {name} JSON object"))),
        }
    }

    fn chat_id(&self, name: &str) -> Result<Option<ChatRef>, Reply> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(|id| Some(ChatRef::Id(id)))
                .ok_or_else(|| bad_request("chat not found")),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => {
                if let Some(name) = s.strip_prefix('@') {
                    Ok(Some(ChatRef::Username(name.to_owned())))
                } else {
                    s.trim()
                        .parse()
                        .map(|id| Some(ChatRef::Id(id)))
                        .map_err(|_| bad_request("chat not found"))
                }
            }
            Some(_) => Err(Self::type_error(name, "Integer or String")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        Params(v.as_object().unwrap().clone(), Vec::new())
    }

    fn description(r: Reply) -> String {
        r.body.unwrap()["description"].as_str().unwrap().to_owned()
    }

    #[test]
    fn callback_data_over_64_bytes_is_refused() {
        let p = params(
            json!({"reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "x".repeat(65)}]]}}),
        );
        assert_eq!(
            description(reply_markup(&p).unwrap_err()),
            "Bad Request: BUTTON_DATA_INVALID"
        );
        let p = params(
            json!({"reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "x".repeat(64)}]]}}),
        );
        assert!(reply_markup(&p).is_ok());
    }

    #[test]
    fn text_limits_apply_after_entity_parsing() {
        let p =
            params(json!({"text": format!("<b>{}</b>", "x".repeat(4096)), "parse_mode": "HTML"}));
        assert!(render_text(&p).is_ok());
        let p = params(json!({"text": "x".repeat(4097)}));
        assert_eq!(
            description(render_text(&p).unwrap_err()),
            "Bad Request: message is too long"
        );
        let p = params(json!({"text": "<b> </b>", "parse_mode": "HTML"}));
        assert_eq!(
            description(render_text(&p).unwrap_err()),
            "Bad Request: message text is empty"
        );
    }

    #[test]
    fn per_chat_limit_refuses_the_second_message_in_a_second() {
        let mut world = World::new(&SandboxOptions::default());
        let t0 = Instant::now();
        assert!(world.take_send(1, 4242, t0).is_ok());
        let wait = world
            .take_send(1, 4242, t0 + Duration::from_millis(100))
            .unwrap_err();
        assert!(wait > Duration::from_millis(800));
        assert!(
            world
                .take_send(1, 4242, t0 + Duration::from_secs(1))
                .is_ok()
        );
    }
}
