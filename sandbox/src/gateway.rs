//! The Discord gateway stand-in (`ws://…/gateway`) and the REST routes that
//! belong to interactions: Hello, Identify (token checked), Ready (listing the
//! sandbox's guild as unavailable) then `GUILD_CREATE` (its channels and active
//! threads, so that a client's cache knows who owns a thread), heartbeat ACK,
//! Resume, `INTERACTION_CREATE` (with its `channel` object), `MESSAGE_CREATE`,
//! `MESSAGE_DELETE` and `THREAD_CREATE` dispatch shaped like the
//! documentation's examples; the interaction callback (once, within 3 s: 204,
//! or 200 and the callback object with `?with_response`), the follow-up
//! webhook and the edit of the original response; guild command registration
//! (bulk overwrite and list, validated against the OpenAPI
//! `ApplicationCommandCreateRequest` rules, creates counted per guild and day);
//! the record of reactions (checked by `discord/reactions.rs`). The sandbox plays a user through control endpoints:
//! run a slash command, post a message, drop the gateway connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::discord::PlayedAuthor;
use super::discord::{SANDBOX_GUILD, guild_create};
use super::model::{
    ControlError, DiscordUserCommand, DiscordUserMessage, GatewayConnection, GatewayState,
    InteractionResponse, InteractionState, Reaction, RegisteredCommands,
};
use super::{Inner, Reply, Shared};

/// How often the client is asked to beat. Short: tests notice a dead link quickly.
const HEARTBEAT_INTERVAL_MS: u64 = 5_000;
/// Discord invalidates an interaction's initial response after 3 s.
pub const INITIAL_RESPONSE_WINDOW: Duration = Duration::from_secs(3);
/// Discord's documented limit of command creates per guild and day.
pub const DAILY_CREATES_PER_GUILD: u32 = 200;
/// How many finished interactions are kept for polling.
const MAX_INTERACTIONS: usize = 5_000;

/// What the socket task writes.
enum Out {
    Text(String),
    Close(u16, &'static str),
}

struct Conn {
    id: u64,
    /// Set by Identify or Resume; until then the connection receives nothing.
    session: Option<String>,
    bot: u64,
    tx: mpsc::UnboundedSender<Out>,
}

struct Session {
    bot: u64,
    seq: u64,
    /// The gateway intents of its Identify (a Resume keeps them).
    intents: u64,
}

/// `GUILD_MESSAGES`: message events in guild channels.
const GUILD_MESSAGES: u64 = 1 << 9;
/// `MESSAGE_CONTENT` (privileged): the content of messages that neither
/// mention the bot nor are its own.
const MESSAGE_CONTENT: u64 = 1 << 15;
/// Every intent Discord defines (bits 0–25); a bit above is "Invalid intent(s)".
const KNOWN_INTENTS: u64 = (1 << 26) - 1;

/// What a connection with `intents` is sent of a dispatch, as Discord filters
/// it: guild message events only with `GUILD_MESSAGES`, and without
/// `MESSAGE_CONTENT` a message's content, embeds, attachments and components
/// are empty unless the bot wrote it or is mentioned in it. `None`: not sent.
fn as_seen_by(event: &str, d: &Value, bot: u64, intents: u64) -> Option<Value> {
    if !matches!(
        event,
        "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE"
    ) {
        return Some(d.clone());
    }
    if d.get("guild_id").is_some_and(|g| !g.is_null()) && intents & GUILD_MESSAGES == 0 {
        return None;
    }
    if event == "MESSAGE_DELETE" || intents & MESSAGE_CONTENT != 0 {
        return Some(d.clone());
    }
    let me = bot.to_string();
    let own = d["author"]["id"].as_str() == Some(me.as_str());
    let mentioned = d["mentions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|u| u["id"].as_str() == Some(me.as_str())));
    let mut d = d.clone();
    if !own && !mentioned {
        d["content"] = json!("");
        for field in ["embeds", "attachments", "components"] {
            if d.get(field).is_some() {
                d[field] = json!([]);
            }
        }
    }
    Some(d)
}

struct Interaction {
    id: u64,
    token: String,
    application_id: u64,
    channel_id: u64,
    command: String,
    user_id: u64,
    dispatched: Instant,
    acknowledged: bool,
    responses: Vec<InteractionResponse>,
}

/// Where a played slash command runs when the request names no channel.
const DEFAULT_COMMAND_CHANNEL: u64 = 1_006;

#[derive(Default)]
pub(crate) struct World {
    conns: Vec<Conn>,
    sessions: HashMap<String, Session>,
    next_id: u64,
    identifies: u64,
    resumes: u64,
    interactions: BTreeMap<u64, Interaction>,
    by_token: HashMap<String, u64>,
    commands: BTreeMap<(u64, u64), Vec<Value>>,
    /// (guild, day number) → creates counted.
    creates: HashMap<(u64, u64), u32>,
    reactions: Vec<Reaction>,
}

fn day_number() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

impl World {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        // Snowflake-sized ids, so clients that expect them are not surprised.
        1_100_000_000_000_000_000 + self.next_id
    }

    pub(crate) fn snapshot(&self) -> GatewayState {
        GatewayState {
            connections: self
                .conns
                .iter()
                .filter_map(|c| {
                    c.session.as_ref().map(|s| GatewayConnection {
                        bot_id: c.bot,
                        session_id: s.clone(),
                    })
                })
                .collect(),
            identifies: self.identifies,
            resumes: self.resumes,
            interactions: self.interactions.values().map(Interaction::state).collect(),
            registered: self
                .commands
                .iter()
                .map(|((app, guild), cmds)| RegisteredCommands {
                    application_id: *app,
                    guild_id: *guild,
                    commands: cmds.clone(),
                })
                .collect(),
            creates_today: self
                .creates
                .iter()
                .filter(|((_, day), _)| *day == day_number())
                .map(|((g, _), n)| (g.to_string(), *n))
                .collect(),
            reactions: self.reactions.clone(),
        }
    }

    pub(crate) fn interaction(&self, id: u64) -> Option<InteractionState> {
        self.interactions.get(&id).map(Interaction::state)
    }

    /// Sends a dispatch to one connection, with its session's next sequence number.
    fn dispatch(&mut self, conn: usize, event: &str, d: Value) -> bool {
        let Some(session) = self.conns[conn].session.clone() else {
            return false;
        };
        let Some(s) = self.sessions.get_mut(&session) else {
            return false;
        };
        s.seq += 1;
        let frame = json!({"op": 0, "t": event, "s": s.seq, "d": d});
        self.conns[conn]
            .tx
            .send(Out::Text(frame.to_string()))
            .is_ok()
    }

    /// Sends a dispatch to every identified connection, as its intents let it see it.
    pub(crate) fn broadcast(&mut self, event: &str, d: &Value) {
        for conn in 0..self.conns.len() {
            let Some(intents) = self.conns[conn]
                .session
                .as_ref()
                .and_then(|s| self.sessions.get(s))
                .map(|s| s.intents)
            else {
                continue;
            };
            if let Some(seen) = as_seen_by(event, d, self.conns[conn].bot, intents) {
                self.dispatch(conn, event, seen);
            }
        }
    }

    fn target_conn(&self, bot: Option<u64>) -> Result<usize, ControlError> {
        self.conns
            .iter()
            .position(|c| c.session.is_some() && bot.is_none_or(|b| b == c.bot))
            .ok_or_else(|| {
                ControlError::Gateway(match bot {
                    Some(b) => format!("no bot with user id {b} is connected to the gateway"),
                    None => "no bot is connected to the gateway".into(),
                })
            })
    }

    /// Plays a user running a slash command; returns the interaction id.
    /// Plays a user running a slash command; `channel` is the channel object
    /// the interaction carries (`None` when the sandbox does not have it).
    pub(crate) fn run_command(
        &mut self,
        cmd: DiscordUserCommand,
        channel: Option<Value>,
    ) -> Result<u64, ControlError> {
        let conn = self.target_conn(cmd.bot_id)?;
        let app = self.conns[conn].bot;
        let id = self.next();
        let token = format!("itok{id}x{:016x}", rand::random::<u64>());
        let channel_id = cmd.channel_id.unwrap_or(DEFAULT_COMMAND_CHANNEL);
        let guild_id = cmd.guild_id.unwrap_or(SANDBOX_GUILD);
        let user = user_json(cmd.user_id, cmd.username.as_deref(), false);
        let mut options: Vec<Value> = cmd
            .options
            .iter()
            .map(|(name, value)| {
                let mut o = option_json(name, value);
                if cmd.focused.as_deref() == Some(name.as_str()) {
                    // Autocomplete sends what is typed so far as a string.
                    o["type"] = json!(3);
                    o["focused"] = json!(true);
                }
                o
            })
            .collect();
        if let Some(sub) = &cmd.subcommand {
            options = vec![json!({"type": 1, "name": sub, "options": options})];
        }
        let d = json!({
            "id": id.to_string(),
            "application_id": app.to_string(),
            "type": if cmd.focused.is_some() { 4 } else { 2 },
            "token": token,
            "version": 1,
            "guild_id": guild_id.to_string(),
            "channel_id": channel_id.to_string(),
            "member": {
                "user": user,
                "roles": cmd.roles.iter().map(u64::to_string).collect::<Vec<_>>(),
                "premium_since": null,
                "permissions": "2147483647",
                "pending": false,
                "nick": null,
                "mute": false,
                "deaf": false,
                "flags": 0,
                "joined_at": "2017-03-13T19:19:14.040000+00:00",
            },
            "data": {
                "id": (1_200_000_000_000_000_000u64 + cmd.command.len() as u64).to_string(),
                "name": cmd.command,
                "type": 1,
                "options": options,
                "guild_id": guild_id.to_string(),
            },
            "app_permissions": "442368",
            "guild_locale": "en-US",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id.to_string()},
            "context": 0,
            "attachment_size_limit": 8_388_608,
        });
        let mut d = d;
        if let Some(channel) = channel {
            d["channel"] = channel;
        }
        self.interactions.insert(
            id,
            Interaction {
                id,
                token: token.clone(),
                application_id: app,
                channel_id,
                command: cmd.command.clone(),
                user_id: cmd.user_id,
                dispatched: Instant::now(),
                acknowledged: false,
                responses: Vec::new(),
            },
        );
        self.by_token.insert(token, id);
        while self.interactions.len() > MAX_INTERACTIONS {
            if let Some((_, old)) = self.interactions.pop_first() {
                self.by_token.remove(&old.token);
            }
        }
        if !self.dispatch(conn, "INTERACTION_CREATE", d) {
            return Err(ControlError::Gateway(
                "the gateway connection closed before the interaction was sent".into(),
            ));
        }
        Ok(id)
    }

    /// Drops every gateway connection without a clean close, as a network fault would.
    pub(crate) fn disconnect(&mut self) -> usize {
        let n = self.conns.len();
        for c in self.conns.drain(..) {
            let _ = c.tx.send(Out::Close(4000, "sandbox: connection dropped"));
        }
        n
    }
}

/// Plays a user running a slash command in a channel (the interaction carries
/// the channel's object when the sandbox has that channel, as Discord's do).
pub(crate) fn run_command(inner: &mut Inner, cmd: DiscordUserCommand) -> Result<u64, ControlError> {
    let channel = inner
        .discord
        .interaction_channel(cmd.channel_id.unwrap_or(DEFAULT_COMMAND_CHANNEL));
    inner.gateway.run_command(cmd, channel)
}

/// Plays a user posting a message: stored in its channel or thread when the
/// sandbox has it (so that a bot can start a thread on it or read it back),
/// then dispatched to every connected bot (each decides by the mentions whether
/// it is addressed). Returns the message id.
pub(crate) fn post_message(
    inner: &mut Inner,
    msg: DiscordUserMessage,
    origin: &str,
) -> Result<u64, ControlError> {
    let world = &mut inner.gateway;
    if !world.conns.iter().any(|c| c.session.is_some()) {
        return Err(ControlError::Gateway(
            "no bot is connected to the gateway".into(),
        ));
    }
    let id = inner.discord.message_id();
    inner.discord.post_user_message(
        msg.channel_id,
        id,
        PlayedAuthor {
            id: msg.user_id,
            name: msg.username.as_deref(),
            bot: msg.bot,
        },
        &msg.content,
    );
    let attachments: Vec<Value> = msg
        .attachments
        .iter()
        .map(|f| {
            let aid = inner.discord.message_id();
            let content_type = f
                .content_type
                .clone()
                .unwrap_or_else(|| super::files::guess_type(&f.filename));
            inner.discord.files.put(
                format!("{}/{aid}", msg.channel_id),
                super::files::StoredFile {
                    content_type: content_type.clone(),
                    bytes: f.content.as_bytes().into(),
                    delay_ms: f.delay_ms,
                },
            );
            let url = f.url.clone().unwrap_or_else(|| {
                format!("{origin}/attachments/{}/{aid}/{}", msg.channel_id, f.filename)
            });
            json!({
                "id": aid.to_string(), "filename": f.filename, "content_type": content_type,
                "size": f.claimed_size.unwrap_or(f.content.len() as u64), "url": url, "proxy_url": url,
            })
        })
        .collect();
    let guild_id = msg.guild_id.unwrap_or(SANDBOX_GUILD);
    let mentions: Vec<Value> = msg
        .mentions
        .iter()
        .map(|u| user_json(*u, None, true))
        .collect();
    let mut d = json!({
        "id": id.to_string(),
        "channel_id": msg.channel_id.to_string(),
        "guild_id": guild_id.to_string(),
        "author": user_json(msg.user_id, msg.username.as_deref(), msg.bot),
        "member": {"roles": [], "joined_at": "2017-03-13T19:19:14.040000+00:00", "deaf": false, "mute": false, "flags": 0},
        "content": msg.content,
        "timestamp": super::discord::timestamp_now(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": mentions,
        "mention_roles": [],
        "attachments": attachments,
        "embeds": [],
        "reactions": [],
        "pinned": false,
        "type": if msg.reply_to.is_some() { 19 } else { 0 },
    });
    if let Some(reply_to) = msg.reply_to {
        d["message_reference"] = json!({
            "type": 0,
            "message_id": reply_to.to_string(),
            "channel_id": msg.channel_id.to_string(),
            "guild_id": guild_id.to_string(),
        });
        // Discord includes the message replied to, with its author.
        let mut referenced = d.clone();
        let obj = referenced.as_object_mut().expect("an object");
        obj.remove("message_reference");
        obj.remove("member");
        obj.insert("id".into(), json!(reply_to.to_string()));
        obj.insert("type".into(), json!(0));
        obj.insert("content".into(), json!(""));
        obj.insert("mentions".into(), json!([]));
        let author = msg.reply_to_author.unwrap_or(0);
        let is_bot = world.conns.iter().any(|c| c.bot == author);
        obj.insert("author".into(), user_json(author, None, is_bot));
        d["referenced_message"] = referenced;
    }
    world.broadcast("MESSAGE_CREATE", &d);
    Ok(id)
}

impl Interaction {
    fn state(&self) -> InteractionState {
        InteractionState {
            id: self.id,
            command: self.command.clone(),
            user_id: self.user_id,
            channel_id: self.channel_id,
            responses: self.responses.clone(),
        }
    }

    fn record(&mut self, kind: &str, status: u16, body: Value) {
        self.responses.push(InteractionResponse {
            kind: kind.to_string(),
            status,
            after_micros: self.dispatched.elapsed().as_micros() as u64,
            body,
        });
    }
}

fn user_json(id: u64, name: Option<&str>, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": name.map_or_else(|| format!("user{id}"), str::to_string),
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": bot,
        "public_flags": 0,
    })
}

fn option_json(name: &str, value: &Value) -> Value {
    let kind = match value {
        Value::Bool(_) => 5,
        Value::Number(n) if n.is_i64() || n.is_u64() => 4,
        Value::Number(_) => 10,
        _ => 3,
    };
    json!({"type": kind, "name": name, "value": value})
}

// ---------------------------------------------------------------------------
// The WebSocket.

pub(crate) async fn upgrade(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| run(shared, socket))
}

async fn run(shared: Arc<Shared>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_id = {
        let mut inner = shared.lock();
        let id = inner.gateway.next();
        inner.gateway.conns.push(Conn {
            id,
            session: None,
            bot: 0,
            tx: tx.clone(),
        });
        id
    };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}});
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => on_frame(&shared, conn_id, &tx, text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    break;
                }
                None => break,
            },
        }
    }
    shared.lock().gateway.conns.retain(|c| c.id != conn_id);
}

fn on_frame(shared: &Shared, conn_id: u64, tx: &mpsc::UnboundedSender<Out>, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        let _ = tx.send(Out::Close(4002, "Decode error"));
        return;
    };
    let d = &frame["d"];
    let mut guard = shared.lock();
    let inner = &mut *guard;
    let world = &mut inner.gateway;
    let Some(pos) = world.conns.iter().position(|c| c.id == conn_id) else {
        return;
    };
    match frame["op"].as_u64() {
        Some(1) => {
            let _ = tx.send(Out::Text(json!({"op": 11}).to_string()));
        }
        Some(2) => {
            let token = d["token"].as_str().unwrap_or("").trim();
            let token = token.strip_prefix("Bot ").unwrap_or(token);
            if !shared.tokens.admits_discord(token) {
                let _ = tx.send(Out::Close(4004, "Authentication failed."));
                return;
            }
            if world.conns[pos].session.is_some() {
                let _ = tx.send(Out::Close(4005, "Already authenticated."));
                return;
            }
            // Intents are required since API v8; bits Discord does not define are refused.
            let Some(intents) = d["intents"].as_u64().filter(|i| i & !KNOWN_INTENTS == 0) else {
                let _ = tx.send(Out::Close(4013, "Invalid intent(s)."));
                return;
            };
            let bot = super::discord::ids::bot_user_id(token);
            world.identifies += 1;
            let session = format!("sess-{}", world.next());
            world.sessions.insert(
                session.clone(),
                Session {
                    bot,
                    seq: 0,
                    intents,
                },
            );
            world.conns[pos].session = Some(session.clone());
            world.conns[pos].bot = bot;
            let url = format!("ws://{}/gateway", shared.addr);
            let name = format!("bot{bot}");
            // As Discord does: READY lists the guild as unavailable, GUILD_CREATE follows.
            world.dispatch(
                pos,
                "READY",
                json!({
                    "v": 10,
                    "user": {"id": bot.to_string(), "username": name, "discriminator": "0",
                             "global_name": null, "avatar": null, "bot": true, "verified": true, "flags": 0},
                    "guilds": [{"id": SANDBOX_GUILD.to_string(), "unavailable": true}],
                    "session_id": session,
                    "resume_gateway_url": url,
                    "shard": [0, 1],
                    "application": {"id": bot.to_string(), "flags": 0},
                }),
            );
            world.dispatch(
                pos,
                "GUILD_CREATE",
                guild_create(&inner.discord, bot, &name),
            );
        }
        Some(6) => {
            let token = d["token"].as_str().unwrap_or("");
            let token = token.strip_prefix("Bot ").unwrap_or(token);
            let session = d["session_id"].as_str().unwrap_or("").to_string();
            let bot = super::discord::ids::bot_user_id(token);
            match world.sessions.get(&session) {
                Some(s) if s.bot == bot && !token.is_empty() => {
                    world.resumes += 1;
                    world.conns[pos].session = Some(session);
                    world.conns[pos].bot = bot;
                    world.dispatch(pos, "RESUMED", json!({"_trace": ["sandbox"]}));
                }
                _ => {
                    let _ = tx.send(Out::Text(json!({"op": 9, "d": false}).to_string()));
                }
            }
        }
        // Presence and voice updates, member requests: accepted, ignored.
        Some(3 | 4 | 8) => {}
        _ => {
            let _ = tx.send(Out::Close(4001, "Unknown opcode."));
        }
    }
}

// ---------------------------------------------------------------------------
// REST routes owned by interactions (called from the Discord REST entry, `discord_rest.rs`).

/// Handles the routes this module owns; `None` lets the REST stand-in handle the request.
pub(crate) fn rest(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<(&'static str, Reply)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut inner = shared.lock();
    let world = &mut inner.gateway;
    match (method.clone(), segs.as_slice()) {
        (Method::POST, ["interactions", id, token, "callback"]) => {
            let with_response = super::query_pairs(query)
                .iter()
                // A query boolean: discord.py sends "1", others "true".
                .any(|(k, v)| k == "with_response" && (v == "1" || v.eq_ignore_ascii_case("true")));
            Some((
                "interaction_callback",
                callback(world, id, token, body, with_response),
            ))
        }
        (Method::POST, ["webhooks", _app, token]) if world.by_token.contains_key(*token) => {
            let id = world.by_token[*token];
            Some((
                "interaction_followup",
                followup(world, id, "followup", body),
            ))
        }
        (Method::PATCH, ["webhooks", _app, token, "messages", "@original"]) => {
            let reply = match world.by_token.get(*token).copied() {
                Some(id) => followup(world, id, "edit_original", body),
                None => unknown_interaction(),
            };
            Some(("interaction_edit_original", reply))
        }
        (
            Method::PUT,
            [
                "channels",
                channel,
                "messages",
                message,
                "reactions",
                emoji,
                "@me",
            ],
        ) => {
            let Some(bot) = bearer_bot(shared, headers) else {
                return Some(("add_my_message_reaction", unauthorized()));
            };
            let (reply, accepted) = super::discord::reactions::add(
                &mut inner.discord,
                channel,
                message,
                emoji,
                Instant::now(),
            );
            if let Some(r) = accepted {
                inner.gateway.reactions.push(Reaction {
                    channel_id: r.channel_id,
                    message_id: r.message_id,
                    emoji: r.emoji,
                    user_id: bot,
                });
            }
            Some(("add_my_message_reaction", reply))
        }
        (m, ["applications", app, "guilds", guild, "commands"]) => {
            let Some(_bot) = bearer_bot(shared, headers) else {
                return Some(("guild_commands", unauthorized()));
            };
            let (Ok(app), Ok(guild)) = (app.parse::<u64>(), guild.parse::<u64>()) else {
                return Some((
                    "guild_commands",
                    super::discord::plain_error(
                        StatusCode::NOT_FOUND,
                        10002,
                        "Unknown Application",
                    ),
                ));
            };
            let reply = match m {
                Method::GET => Reply::ok(Value::Array(
                    world
                        .commands
                        .get(&(app, guild))
                        .cloned()
                        .unwrap_or_default(),
                )),
                Method::PUT => bulk_overwrite(world, app, guild, body),
                _ => super::discord::plain_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    0,
                    "405: Method Not Allowed",
                ),
            };
            Some(("guild_commands", reply))
        }
        _ => None,
    }
}

fn unauthorized() -> Reply {
    super::discord::plain_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized")
}

fn unknown_interaction() -> Reply {
    super::discord::plain_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction")
}

/// The bot a request speaks for, when the sandbox knows its token.
fn bearer_bot(shared: &Shared, headers: &HeaderMap) -> Option<u64> {
    shared.tokens.discord_bot(headers)
}

/// The interaction callback: 204, or with `?with_response=true` 200 and the
/// `InteractionCallbackResponse` (the interaction, and for a message the
/// message it made).
fn callback(world: &mut World, id: &str, token: &str, body: &[u8], with_response: bool) -> Reply {
    let Some(interaction) = id
        .parse::<u64>()
        .ok()
        .and_then(|id| world.interactions.get_mut(&id))
        .filter(|i| i.token == token)
    else {
        return unknown_interaction();
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return super::discord::plain_error(
            StatusCode::BAD_REQUEST,
            50109,
            "The request body contains invalid JSON.",
        );
    };
    if interaction.dispatched.elapsed() > INITIAL_RESPONSE_WINDOW {
        interaction.record("callback_too_late", 404, body);
        return unknown_interaction();
    }
    if interaction.acknowledged {
        interaction.record("callback_again", 400, body);
        return super::discord::plain_error(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        );
    }
    match body["type"].as_u64() {
        Some(1 | 4 | 5 | 6 | 7 | 8 | 9 | 12) => {}
        _ => {
            interaction.record("callback_invalid", 400, body);
            return super::discord::plain_error(
                StatusCode::BAD_REQUEST,
                50035,
                "Invalid Form Body (type: Value is not a valid interaction callback type)",
            );
        }
    }
    interaction.acknowledged = true;
    let kind = body["type"].as_u64().unwrap_or(0);
    if !with_response {
        interaction.record("callback", 204, body);
        return Reply::no_content();
    }
    let message_id = 1_300_000_000_000_000_000 + interaction.id % 1_000_000_000_000;
    let mut answer = json!({
        "interaction": {
            "id": interaction.id.to_string(),
            "type": 2,
            "activity_instance_id": null,
            "response_message_id": message_id.to_string(),
            "response_message_loading": kind == 5,
            "response_message_ephemeral": body["data"]["flags"].as_u64().unwrap_or(0) & 64 != 0,
            "channel_id": interaction.channel_id.to_string(),
            "guild_id": super::discord::SANDBOX_GUILD.to_string(),
        }
    });
    if matches!(kind, 4 | 7) {
        let data = &body["data"];
        answer["resource"] = json!({
            "type": kind,
            "message": {
                "id": message_id.to_string(),
                "channel_id": interaction.channel_id.to_string(),
                "type": 20,
                "content": data["content"].as_str().unwrap_or(""),
                "embeds": data.get("embeds").cloned().unwrap_or(json!([])),
                "components": data.get("components").cloned().unwrap_or(json!([])),
                "attachments": [],
                "mentions": [],
                "mention_roles": [],
                "mention_everyone": false,
                "pinned": false,
                "tts": false,
                "flags": data["flags"].as_u64().unwrap_or(0),
                "timestamp": super::discord::timestamp_now(),
                "edited_timestamp": null,
                "author": super::login::current_user_json(interaction.application_id),
                "application_id": interaction.application_id.to_string(),
                "webhook_id": interaction.application_id.to_string(),
            }
        });
    }
    interaction.record("callback", 200, body);
    Reply::ok(answer)
}

fn followup(world: &mut World, id: u64, kind: &str, body: &[u8]) -> Reply {
    let message_id = world.next();
    let Some(interaction) = world.interactions.get_mut(&id) else {
        return unknown_interaction();
    };
    if !interaction.acknowledged {
        interaction.record(&format!("{kind}_unacknowledged"), 400, Value::Null);
        return super::discord::plain_error(
            StatusCode::BAD_REQUEST,
            40060,
            "The interaction has not been acknowledged: answer the callback first.",
        );
    }
    let body = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    interaction.record(kind, 200, body.clone());
    let obj = body.as_object().cloned().unwrap_or_default();
    let get = |k: &str| obj.get(k).cloned().unwrap_or(json!([]));
    Reply::ok(json!({
        "id": message_id.to_string(),
        "channel_id": interaction.channel_id.to_string(),
        "author": user_json(interaction.application_id, None, true),
        "content": obj.get("content").cloned().unwrap_or(json!("")),
        "timestamp": super::discord::timestamp_now(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": get("embeds"),
        "components": get("components"),
        "pinned": false,
        "type": 20,
        "flags": obj.get("flags").cloned().unwrap_or(json!(0)),
        "webhook_id": interaction.application_id.to_string(),
        "application_id": interaction.application_id.to_string(),
    }))
}

// ---------------------------------------------------------------------------
// Command registration.

fn bulk_overwrite(world: &mut World, app: u64, guild: u64, body: &[u8]) -> Reply {
    let Ok(Value::Array(requested)) = serde_json::from_slice::<Value>(body) else {
        return super::discord::plain_error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (the body must be an array of application commands)",
        );
    };
    let mut errors = Map::new();
    // The OpenAPI body allows 130 (100 slash, 15 user, 15 message commands).
    let chat_input = requested
        .iter()
        .filter(|c| c["type"].as_u64().unwrap_or(1) == 1)
        .count();
    if requested.len() > 130 || chat_input > 100 {
        errors.insert(
            "_errors".into(),
            json!([{"code": "BASE_TYPE_MAX_LENGTH", "message": "At most 100 slash commands and 130 commands in all."}]),
        );
    }
    for (i, cmd) in requested.iter().enumerate() {
        let mut e = Map::new();
        validate_command(cmd, &mut e);
        if !e.is_empty() {
            errors.insert(i.to_string(), Value::Object(e));
        }
    }
    let mut names: Vec<&str> = requested
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        errors.insert(
            "_errors".into(),
            json!([{"code": "APPLICATION_COMMANDS_DUPLICATE_NAME", "message": "Application command names must be unique"}]),
        );
    }
    if !errors.is_empty() {
        let first = super::discord::first_error(&Value::Object(errors.clone()))
            .unwrap_or_else(|| "invalid command".into());
        return Reply::refused(
            StatusCode::BAD_REQUEST,
            json!({"message": "Invalid Form Body", "code": 50035, "errors": errors}),
            format!("Invalid Form Body: {first}"),
        );
    }
    let existing = world
        .commands
        .get(&(app, guild))
        .cloned()
        .unwrap_or_default();
    let new_names: Vec<String> = requested
        .iter()
        .filter_map(|c| c["name"].as_str())
        .filter(|n| !existing.iter().any(|e| e["name"].as_str() == Some(*n)))
        .map(str::to_string)
        .collect();
    let key = (guild, day_number());
    let used = world.creates.get(&key).copied().unwrap_or(0);
    if used + new_names.len() as u32 > DAILY_CREATES_PER_GUILD {
        return Reply::refused(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"message": "Max number of daily application command creates has been reached (200)", "code": 30034, "retry_after": 86_400.0, "global": false}),
            "daily application command creates exhausted (200 per guild)",
        );
    }
    world.creates.insert(key, used + new_names.len() as u32);
    let mut stored = Vec::new();
    for cmd in requested {
        let name = cmd["name"].as_str().unwrap_or("").to_string();
        let id = existing
            .iter()
            .find(|e| e["name"].as_str() == Some(name.as_str()))
            .and_then(|e| e["id"].as_str().map(str::to_string))
            .unwrap_or_else(|| world.next().to_string());
        let mut obj = cmd.as_object().cloned().unwrap_or_default();
        obj.insert("id".into(), json!(id));
        obj.insert("application_id".into(), json!(app.to_string()));
        obj.insert("guild_id".into(), json!(guild.to_string()));
        obj.insert("version".into(), json!(world.next().to_string()));
        obj.entry("type").or_insert(json!(1));
        obj.entry("description").or_insert(json!(""));
        obj.entry("default_member_permissions")
            .or_insert(Value::Null);
        obj.entry("nsfw").or_insert(json!(false));
        stored.push(Value::Object(obj));
    }
    world.commands.insert((app, guild), stored.clone());
    Reply::ok(Value::Array(stored))
}

fn err(code: &str, message: impl Into<String>) -> Value {
    json!({"_errors": [{"code": code, "message": message.into()}]})
}

/// `name`: 1–32 characters of lowercase letters, digits, `-` and `_` (CHAT_INPUT).
fn name_ok(name: &str) -> bool {
    let n = name.chars().count();
    (1..=32).contains(&n)
        && name.chars().all(|c| {
            c == '-' || c == '_' || c.is_numeric() || (c.is_alphabetic() && !c.is_uppercase())
        })
}

fn validate_command(cmd: &Value, e: &mut Map<String, Value>) {
    let Some(obj) = cmd.as_object() else {
        e.insert("_errors".into(), json!([{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"}]));
        return;
    };
    let kind = obj.get("type").and_then(Value::as_u64).unwrap_or(1);
    match obj.get("name").and_then(Value::as_str) {
        None => {
            e.insert(
                "name".into(),
                err("BASE_TYPE_REQUIRED", "This field is required"),
            );
        }
        Some(n) if kind == 1 && !name_ok(n) => {
            e.insert(
                "name".into(),
                err(
                    "APPLICATION_COMMAND_INVALID_NAME",
                    format!("Command name is invalid: {n:?}"),
                ),
            );
        }
        Some(_) => {}
    }
    if kind == 1 {
        check_description(obj, e);
    }
    check_options(obj.get("options"), e, 0);
}

fn check_description(obj: &Map<String, Value>, e: &mut Map<String, Value>) {
    let d = obj.get("description").and_then(Value::as_str).unwrap_or("");
    let n = d.chars().count();
    if !(1..=100).contains(&n) {
        e.insert(
            "description".into(),
            err(
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ),
        );
    }
}

fn check_options(options: Option<&Value>, e: &mut Map<String, Value>, depth: u32) {
    let Some(options) = options.and_then(Value::as_array) else {
        return;
    };
    let mut oe = Map::new();
    if options.len() > 25 {
        oe.insert(
            "_errors".into(),
            json!([{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 25 or fewer in length."}]),
        );
    }
    let mut seen_optional = false;
    for (i, o) in options.iter().enumerate() {
        let mut ie = Map::new();
        let Some(obj) = o.as_object() else { continue };
        let kind = obj.get("type").and_then(Value::as_u64).unwrap_or(0);
        if !(1..=11).contains(&kind) {
            ie.insert(
                "type".into(),
                err("BASE_TYPE_CHOICES", "Value must be one of {1, 2, ..., 11}."),
            );
        }
        match obj.get("name").and_then(Value::as_str) {
            Some(n) if name_ok(n) => {}
            _ => {
                ie.insert(
                    "name".into(),
                    err("APPLICATION_COMMAND_INVALID_NAME", "Option name is invalid"),
                );
            }
        }
        check_description(obj, &mut ie);
        let required = obj
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if kind > 2 {
            if required && seen_optional {
                ie.insert(
                    "required".into(),
                    err(
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    ),
                );
            }
            seen_optional |= !required;
        } else if depth < 2 {
            check_options(obj.get("options"), &mut ie, depth + 1);
        }
        if !ie.is_empty() {
            oe.insert(i.to_string(), Value::Object(ie));
        }
    }
    if !oe.is_empty() {
        e.insert("options".into(), Value::Object(oe));
    }
}

// ---------------------------------------------------------------------------
// Control endpoints.

type Control = Result<Response, (StatusCode, axum::Json<Value>)>;

fn control_error(e: ControlError) -> (StatusCode, axum::Json<Value>) {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": e.to_string()})),
    )
}

pub(crate) async fn control_interaction(
    State(shared): State<Arc<Shared>>,
    axum::Json(cmd): axum::Json<DiscordUserCommand>,
) -> Control {
    let id = run_command(&mut shared.lock(), cmd).map_err(control_error)?;
    Ok(axum::Json(json!({"interaction_id": id.to_string()})).into_response())
}

pub(crate) async fn control_interaction_get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u64>,
) -> Control {
    match shared.lock().gateway.interaction(id) {
        Some(s) => Ok(axum::Json(s).into_response()),
        None => Err((
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no interaction {id}")})),
        )),
    }
}

pub(crate) async fn control_message(
    State(shared): State<Arc<Shared>>,
    axum::Json(msg): axum::Json<DiscordUserMessage>,
) -> Control {
    let origin = format!("http://{}", shared.addr);
    let id = post_message(&mut shared.lock(), msg, &origin).map_err(control_error)?;
    Ok(axum::Json(json!({"message_id": id.to_string()})).into_response())
}

pub(crate) async fn control_disconnect(State(shared): State<Arc<Shared>>) -> Response {
    let n = shared.lock().gateway.disconnect();
    axum::Json(json!({"dropped": n})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(cmd: Value) -> Map<String, Value> {
        let mut e = Map::new();
        validate_command(&cmd, &mut e);
        e
    }

    #[test]
    fn command_names_and_descriptions_follow_the_openapi_rules() {
        assert!(errors_of(json!({"name": "status", "description": "The fleet"})).is_empty());
        assert!(errors_of(json!({"name": "Status", "description": "x"})).contains_key("name"));
        assert!(
            errors_of(json!({"name": "x".repeat(33), "description": "x"})).contains_key("name")
        );
        assert!(errors_of(json!({"name": "ok", "description": ""})).contains_key("description"));
        assert!(
            errors_of(json!({"name": "ok", "description": "d".repeat(101)}))
                .contains_key("description")
        );
    }

    #[test]
    fn required_options_come_first_and_there_are_at_most_25() {
        let opt = |name: &str, required: bool| json!({"type": 3, "name": name, "description": "d", "required": required});
        let bad = errors_of(json!({"name": "mute", "description": "d",
            "options": [opt("a", false), opt("b", true)]}));
        assert!(bad["options"]["1"].get("required").is_some(), "{bad:?}");
        let many: Vec<Value> = (0..26).map(|i| opt(&format!("o{i}"), false)).collect();
        let bad = errors_of(json!({"name": "big", "description": "d", "options": many}));
        assert!(bad["options"].get("_errors").is_some(), "{bad:?}");
    }

    fn world_with_interaction() -> (World, u64, String) {
        let mut w = World::default();
        let id = w.next();
        let token = "itok-test".to_string();
        w.interactions.insert(
            id,
            Interaction {
                id,
                token: token.clone(),
                application_id: 7,
                channel_id: 1,
                command: "status".into(),
                user_id: 2,
                dispatched: Instant::now(),
                acknowledged: false,
                responses: Vec::new(),
            },
        );
        w.by_token.insert(token.clone(), id);
        (w, id, token)
    }

    #[test]
    fn an_interaction_is_answered_once_and_followed_up_only_after() {
        let (mut w, id, token) = world_with_interaction();
        let early = followup(&mut w, id, "followup", b"{}");
        assert_eq!(early.status, StatusCode::BAD_REQUEST);
        let wrong = callback(
            &mut w,
            &id.to_string(),
            "other-token",
            br#"{"type":4}"#,
            false,
        );
        assert_eq!(wrong.status, StatusCode::NOT_FOUND);
        let bad = callback(&mut w, &id.to_string(), &token, br#"{"type":42}"#, false);
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let first = callback(&mut w, &id.to_string(), &token, br#"{"type":5}"#, false);
        assert_eq!(first.status, StatusCode::NO_CONTENT);
        let again = callback(&mut w, &id.to_string(), &token, br#"{"type":4}"#, false);
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert_eq!(again.body.unwrap()["code"], 40060);
        let later = followup(&mut w, id, "followup", br#"{"content":"done"}"#);
        assert_eq!(later.status, StatusCode::OK);
        let kinds: Vec<String> = w.interactions[&id]
            .responses
            .iter()
            .map(|r| r.kind.clone())
            .collect();
        assert_eq!(
            kinds,
            [
                "followup_unacknowledged",
                "callback_invalid",
                "callback",
                "callback_again",
                "followup"
            ]
        );
    }

    #[test]
    fn with_response_answers_200_with_the_interaction_and_its_message() {
        let (mut w, id, token) = world_with_interaction();
        let body = br#"{"type":4,"data":{"content":"hello","flags":64}}"#;
        let answer = callback(&mut w, &id.to_string(), &token, body, true);
        assert_eq!(answer.status, StatusCode::OK);
        let answer = answer.body.unwrap();
        assert_eq!(answer["interaction"]["id"], id.to_string());
        assert_eq!(answer["interaction"]["type"], 2);
        assert_eq!(answer["interaction"]["response_message_ephemeral"], true);
        assert_eq!(answer["resource"]["type"], 4);
        assert_eq!(answer["resource"]["message"]["content"], "hello");
        assert_eq!(
            answer["resource"]["message"]["id"],
            answer["interaction"]["response_message_id"]
        );
        let (mut w, id, token) = world_with_interaction();
        let deferred = callback(&mut w, &id.to_string(), &token, br#"{"type":5}"#, true);
        let deferred = deferred.body.unwrap();
        assert_eq!(deferred["interaction"]["response_message_loading"], true);
        assert!(deferred.get("resource").is_none(), "{deferred}");
    }

    #[test]
    fn a_callback_after_3_seconds_is_an_unknown_interaction() {
        let (mut w, id, token) = world_with_interaction();
        w.interactions.get_mut(&id).unwrap().dispatched =
            Instant::now() - INITIAL_RESPONSE_WINDOW - Duration::from_millis(1);
        let late = callback(&mut w, &id.to_string(), &token, br#"{"type":4}"#, false);
        assert_eq!(late.status, StatusCode::NOT_FOUND);
        assert_eq!(late.body.unwrap()["code"], 10062);
    }

    #[test]
    fn emoji_in_the_path_are_decoded() {
        assert_eq!(crate::discord::percent_decode("%F0%9F%91%80"), "👀");
        assert_eq!(crate::discord::percent_decode("ok"), "ok");
    }
}
