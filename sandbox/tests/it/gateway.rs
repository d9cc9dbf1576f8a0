//! The Discord gateway and the channel routes a conversation uses, over a raw
//! WebSocket ([`crate::ws`]): READY lists the guild as unavailable, then
//! GUILD_CREATE brings its channels and active threads (each with its owner);
//! a thread started over REST is dispatched as THREAD_CREATE; a user's message
//! played into the thread arrives as MESSAGE_CREATE with the thread's id and the
//! guild's; the typing indicator is counted per thread and rate limited. Where
//! `../shared/specs/` is present the objects are also held against Discord's
//! OpenAPI description.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_sandbox::{self as sandbox, DiscordLimits, SandboxHandle, SandboxOptions};

use crate::openapi::{self, OpenApi, conformance_problems, load};
use crate::ws::Ws;

pub(crate) const TOKEN: &str = "MTAxMjM0.fake.token";
/// The user id in `TOKEN` (base64 of "101234").
pub(crate) const BOT: u64 = 101_234;
/// A second bot: base64 of "202468".
pub(crate) const OTHER_TOKEN: &str = "MjAyNDY4.fake.token";
pub(crate) const GUILD: &str = "900000000000000000";
pub(crate) const CHAT: u64 = 1006;
pub(crate) const OPERATOR: u64 = 555;

pub(crate) async fn sandbox(discord_rate: DiscordLimits) -> SandboxHandle {
    sandbox::start(SandboxOptions {
        discord_rate,
        // The bots these tests play: the sandbox refuses every other token.
        discord_tokens: vec![TOKEN.into(), OTHER_TOKEN.into()],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

/// Connects and identifies; returns the socket, READY's `d` and GUILD_CREATE's `d`.
pub(crate) async fn identify(sb: &SandboxHandle, token: &str) -> (Ws, Value, Value) {
    let mut ws = Ws::connect(sb.addr(), "/gateway").await;
    let hello = ws.recv_json().await;
    assert_eq!(hello["op"], 10, "{hello}");
    ws.send_json(&json!({"op": 2, "d": {
        "token": token, "intents": 33_281,
        "properties": {"os": "linux", "browser": "test", "device": "test"},
    }}))
    .await;
    let ready = ws.recv_json().await;
    assert_eq!(ready["t"], "READY", "the first dispatch is READY: {ready}");
    let guild = ws.recv_json().await;
    assert_eq!(
        guild["t"], "GUILD_CREATE",
        "READY is followed by GUILD_CREATE"
    );
    (ws, ready["d"].clone(), guild["d"].clone())
}

/// A request as the bot: the status, the headers and the JSON body.
pub(crate) async fn call(
    sb: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", sb.discord_api_base()))
        .header("Authorization", format!("Bot {TOKEN}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// A request as the bot: the status and the JSON body.
pub(crate) async fn rest(
    sb: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, body) = call(sb, method, path, body).await;
    (status, body)
}

pub(crate) async fn play(sb: &SandboxHandle, channel_id: u64, content: &str) -> u64 {
    let r = reqwest::Client::new()
        .post(format!("http://{}/_sandbox/discord/messages", sb.addr()))
        .json(
            &json!({"user_id": OPERATOR, "username": "ops", "channel_id": channel_id,
                      "content": content, "mentions": [BOT]}),
        )
        .send()
        .await
        .expect("control call");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["message_id"].as_str().unwrap().parse().unwrap()
}

/// Holds `value` against a schema of Discord's OpenAPI description, when present.
pub(crate) fn conforms(api: Option<&OpenApi>, value: &Value, schema: &str) {
    let Some(api) = api else { return };
    let mut problems = Vec::new();
    conformance_problems(api, value, &api.schemas[schema], schema, &mut problems);
    assert!(
        problems.is_empty(),
        "does not fit {schema}:\n{}\n{value:#}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn a_conversation_thread_is_known_to_the_bots_caches_and_its_messages_arrive() {
    let spec = openapi::specs(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs"))
        .map(|dir| load(&dir, "discord-openapi.json"));
    let api = spec.as_ref().map(|s| OpenApi {
        schemas: s["components"]["schemas"].as_object().unwrap(),
    });
    let sb = sandbox(DiscordLimits::unlimited()).await;

    let (mut ws, ready, guild) = identify(&sb, TOKEN).await;
    assert_eq!(ready["guilds"], json!([{"id": GUILD, "unavailable": true}]));
    assert_eq!(guild["id"], GUILD);
    assert_eq!(guild["unavailable"], false);
    let channels = guild["channels"].as_array().unwrap();
    for (id, name) in sandbox::DEFAULT_DISCORD_CHANNELS {
        let c = channels
            .iter()
            .find(|c| c["id"].as_str() == Some(id.to_string().as_str()))
            .unwrap_or_else(|| panic!("channel {id} not in GUILD_CREATE: {guild}"));
        assert_eq!(
            (c["name"].as_str(), c["type"].as_u64()),
            (Some(*name), Some(0))
        );
        assert_eq!(c["guild_id"], GUILD);
        conforms(api.as_ref(), c, "GuildChannelResponse");
    }
    assert_eq!(guild["threads"], json!([]));
    let members = guild["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["user"]["id"], BOT.to_string());
    conforms(api.as_ref(), &members[0], "GuildMemberResponse");
    conforms(api.as_ref(), &guild["roles"][0], "GuildRoleResponse");
    conforms(api.as_ref(), &guild, "GuildResponse");

    // A person mentions the bot in #chat.
    let question = play(&sb, CHAT, "<@101234> how are the disks?").await;
    let created = ws.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["id"], question.to_string());
    assert_eq!(
        (created["channel_id"].as_str(), created["guild_id"].as_str()),
        (Some("1006"), Some(GUILD))
    );
    // The bot opens a thread on that message: every connected bot hears of it.
    let (status, thread) = rest(
        &sb,
        reqwest::Method::POST,
        &format!("/channels/{CHAT}/messages/{question}/threads"),
        Some(json!({"name": "how are the disks?", "auto_archive_duration": 60})),
    )
    .await;
    assert_eq!(status, 201, "{thread}");
    let event = ws.dispatch("THREAD_CREATE").await;
    assert_eq!(event["newly_created"], true);
    assert_eq!(
        event["id"],
        question.to_string(),
        "the thread takes the message's id"
    );
    assert_eq!(
        (
            event["type"].as_u64(),
            event["owner_id"].as_str(),
            event["parent_id"].as_str(),
            event["guild_id"].as_str()
        ),
        (Some(11), Some("101234"), Some("1006"), Some(GUILD))
    );
    assert_eq!(event["thread_metadata"]["auto_archive_duration"], 60);
    assert_eq!(event["thread_metadata"]["archived"], false);
    conforms(api.as_ref(), &event, "ThreadResponse");

    // The person answers in the thread: the message carries the thread and the guild.
    let follow_up = play(&sb, question, "and the memory?").await;
    let created = ws.dispatch("MESSAGE_CREATE").await;
    assert_eq!(created["id"], follow_up.to_string());
    assert_eq!(created["channel_id"], question.to_string());
    assert_eq!(created["guild_id"], GUILD);
    assert_eq!(created["author"]["bot"], false);

    // A bot connecting later finds the thread, and its owner, in GUILD_CREATE.
    let (_other, _, guild) = identify(&sb, OTHER_TOKEN).await;
    let threads = guild["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 1, "{guild}");
    assert_eq!(threads[0]["id"], question.to_string());
    assert_eq!(threads[0]["owner_id"], BOT.to_string());
    assert_eq!(threads[0]["message_count"], 1);
    conforms(api.as_ref(), &threads[0], "ThreadResponse");
    assert!(
        !guild["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"].as_str() == Some(question.to_string().as_str())),
        "a thread is not listed among the channels"
    );

    // The thread reads back over REST: the channel object and its history.
    let (status, got) = rest(
        &sb,
        reqwest::Method::GET,
        &format!("/channels/{question}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(got["owner_id"], BOT.to_string());
    let (status, history) = rest(
        &sb,
        reqwest::Method::GET,
        &format!("/channels/{question}/messages?limit=10"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history[0]["content"], "and the memory?");
    assert_eq!(history[0]["author"]["id"], OPERATOR.to_string());
    assert_eq!(history[0]["author"]["username"], "ops");
    let (status, _) = rest(
        &sb,
        reqwest::Method::GET,
        &format!("/channels/{question}/messages?limit=101"),
        None,
    )
    .await;
    assert_eq!(status, 400, "limit is 1-100");
    // The question itself is in #chat, so that the thread could be started on it.
    let state = sb.state();
    let asked = state.discord_messages(CHAT);
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].id, asked[0].author_id, asked[0].author_bot),
        (question, Some(OPERATOR), false)
    );
    assert_eq!(state.discord.thread(question).unwrap().owner_id, BOT);

    // Typing while the answer is on its way: counted in the thread.
    for _ in 0..2 {
        let (status, body) = rest(
            &sb,
            reqwest::Method::POST,
            &format!("/channels/{question}/typing"),
            None,
        )
        .await;
        assert_eq!((status, body), (204, Value::Null));
    }
    let (status, body) = rest(&sb, reqwest::Method::POST, "/channels/4040/typing", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], 10003);
    let state = sb.state();
    assert_eq!(state.discord.thread(question).unwrap().typing, 2);
    assert_eq!(state.discord.channel(CHAT).unwrap().typing, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn typing_has_a_per_channel_bucket_like_the_other_channel_writes() {
    let sb = sandbox(DiscordLimits::default()).await;
    let limit = DiscordLimits::default().channel_typing.count;
    let mut statuses = Vec::new();
    for _ in 0..=limit {
        let (status, _) = rest(&sb, reqwest::Method::POST, "/channels/1004/typing", None).await;
        statuses.push(status);
    }
    // One more than the bucket holds: the last is refused, in Discord's shape.
    let mut expected = vec![204; limit as usize];
    expected.push(429);
    assert_eq!(statuses, expected);
    // Another channel has a bucket of its own.
    let (status, _) = rest(&sb, reqwest::Method::POST, "/channels/1001/typing", None).await;
    assert_eq!(status, 204);
    let state = sb.state();
    assert_eq!(
        state.discord.channel(1004).unwrap().typing,
        u64::from(limit)
    );
    assert_eq!(state.stats.discord.rate_limited, 1);
    sb.shutdown().await;
}
