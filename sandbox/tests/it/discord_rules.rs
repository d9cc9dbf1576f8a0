//! Discord's refusals that a client meets in ordinary use, one test per rule:
//! a reaction on an unknown channel (404 10003) or message (404 10008) or with
//! an emoji that is not one (400 10014), and the per-channel reaction bucket;
//! every header the documentation lists on a 429 (a route's and the global
//! limit's); a bot deletes its own message (`MESSAGE_DELETE` to the bots) and
//! only its own; the interaction callback's `?with_response` (200 and the
//! `InteractionCallbackResponse`) and the interaction's `channel` object; the
//! gateway's intents (no guild message events without `GUILD_MESSAGES`, no
//! text of others' messages without `MESSAGE_CONTENT` unless the bot is
//! mentioned, undefined bits refused with 4013), and a bot's own posts and
//! edits dispatched to the bots.
//! Shapes are held against Discord's OpenAPI description where present.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sandbox::{DiscordLimits, Rate, SandboxHandle};

use crate::gateway::{BOT, CHAT, OTHER_TOKEN, TOKEN, call, conforms, identify, play, sandbox};
use crate::openapi::{self, OpenApi, load};
use crate::ws::Ws;

fn spec() -> Option<Value> {
    openapi::specs(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs"))
        .map(|dir| load(&dir, "discord-openapi.json"))
}

/// Past the reaction bucket's 250 ms window.
async fn next_window() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn reactions_are_refused_as_discord_refuses_them_and_rate_limited_per_channel() {
    let sb = sandbox(DiscordLimits::default()).await;
    let (_ws, _, _) = identify(&sb, TOKEN).await;
    let message = play(&sb, CHAT, "react to me").await;
    let put = |channel: u64, message: u64, emoji: &str| {
        format!("/channels/{channel}/messages/{message}/reactions/{emoji}/@me")
    };
    let eyes = "%F0%9F%91%80";

    let (status, headers, _) =
        call(&sb, reqwest::Method::PUT, &put(CHAT, message, eyes), None).await;
    assert_eq!(status, 204);
    assert_eq!(
        headers["x-ratelimit-limit"], "1",
        "one reaction per window per channel"
    );
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    // A second reaction in the same channel at once: the bucket refuses it.
    let (status, headers, body) = call(
        &sb,
        reqwest::Method::PUT,
        &put(CHAT, message, "%E2%9C%85"),
        None,
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["global"], false);
    assert!(body["retry_after"].as_f64().unwrap() <= 0.25, "{body}");
    assert_eq!(headers["x-ratelimit-scope"], "user");

    next_window().await;
    let (status, _, body) = call(
        &sb,
        reqwest::Method::PUT,
        &put(CHAT, 123_456_789, eyes),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (404, Some(10008)),
        "unknown message: {body}"
    );
    let (status, _, body) = call(
        &sb,
        reqwest::Method::PUT,
        &put(987_654_321, message, eyes),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (404, Some(10003)),
        "unknown channel: {body}"
    );
    for emoji in ["eyes", "%3Aeyes%3A", "smile%3A123456789012345678", "x"] {
        next_window().await;
        let (status, _, body) =
            call(&sb, reqwest::Method::PUT, &put(CHAT, message, emoji), None).await;
        assert_eq!(
            (status, body["code"].as_u64()),
            (400, Some(10014)),
            "{emoji}: {body}"
        );
        assert_eq!(body["message"], "Unknown Emoji");
    }
    let unauthenticated = reqwest::Client::new()
        .put(format!(
            "{}{}",
            sb.discord_api_base(),
            put(CHAT, message, eyes)
        ))
        .header("Authorization", "Bot garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let state = sb.state();
    let reactions: Vec<(&str, u64, u64)> = state
        .gateway
        .reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.message_id, r.user_id))
        .collect();
    assert_eq!(
        reactions,
        [("👀", message, BOT)],
        "only the first was accepted"
    );
    sb.shutdown().await;
}

/// The headers the OpenAPI description lists on `ClientRatelimitedResponse`
/// (the bucket's), or the documented five when the description is absent.
fn bucket_headers(spec: Option<&Value>) -> Vec<String> {
    let documented = [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-RateLimit-Reset-After",
        "X-RateLimit-Bucket",
    ];
    match spec {
        Some(spec) => spec["components"]["responses"]["ClientRatelimitedResponse"]["headers"]
            .as_object()
            .expect("the 429 response lists its headers")
            .keys()
            .cloned()
            .collect(),
        None => documented.iter().map(|h| (*h).to_owned()).collect(),
    }
}

#[tokio::test]
async fn every_429_carries_the_headers_discord_documents() {
    let spec = spec();
    let sb = sandbox(DiscordLimits::default()).await;
    let post = format!("/channels/{CHAT}/messages");
    let mut last = None;
    for i in 0..6 {
        last = Some(
            call(
                &sb,
                reqwest::Method::POST,
                &post,
                Some(json!({"content": format!("m{i}")})),
            )
            .await,
        );
    }
    let (status, headers, body) = last.unwrap();
    assert_eq!(status, 429, "the sixth post in 5 s: {body}");
    let mut wanted = bucket_headers(spec.as_ref());
    // The rate-limit page: Retry-After and the scope on every 429; `Via` is
    // what clients check to tell Discord's 429 from a proxy's.
    wanted.extend(["Retry-After", "X-RateLimit-Scope", "Via"].map(String::from));
    for name in &wanted {
        assert!(
            headers.contains_key(name.to_ascii_lowercase().as_str()),
            "a route's 429 lacks {name}: {headers:?}"
        );
    }
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(body["retry_after"].as_f64().unwrap() > 0.0);
    sb.shutdown().await;

    let sb = sandbox(DiscordLimits {
        global: Rate::per_second(2),
        ..DiscordLimits::unlimited()
    })
    .await;
    let mut last = None;
    for i in 0..3 {
        last = Some(
            call(
                &sb,
                reqwest::Method::POST,
                &post,
                Some(json!({"content": format!("g{i}")})),
            )
            .await,
        );
    }
    let (status, headers, body) = last.unwrap();
    assert_eq!(status, 429, "the third request in a second: {body}");
    assert_eq!(body["global"], true);
    for name in [
        "retry-after",
        "x-ratelimit-global",
        "x-ratelimit-scope",
        "via",
    ] {
        assert!(
            headers.contains_key(name),
            "the global 429 lacks {name}: {headers:?}"
        );
    }
    assert_eq!(headers["x-ratelimit-scope"], "global");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_bot_deletes_its_own_messages_and_the_bots_are_told() {
    let sb = sandbox(DiscordLimits::unlimited()).await;
    let (mut ws, _, _) = identify(&sb, TOKEN).await;
    let (status, _, sent) = call(
        &sb,
        reqwest::Method::POST,
        &format!("/channels/{CHAT}/messages"),
        Some(json!({"content": "oops"})),
    )
    .await;
    assert_eq!(status, 200);
    let id = sent["id"].as_str().unwrap().to_owned();
    let path = format!("/channels/{CHAT}/messages/{id}");
    let (status, headers, _) = call(&sb, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert!(headers.contains_key("x-ratelimit-bucket"));
    let deleted = ws.dispatch("MESSAGE_DELETE").await;
    assert_eq!(deleted["id"], id.as_str());
    assert_eq!(deleted["channel_id"], CHAT.to_string());
    let (status, _, body) = call(&sb, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (404, Some(10008)),
        "deleted twice: {body}"
    );
    let theirs = play(&sb, CHAT, "a person's message").await;
    let (status, _, body) = call(
        &sb,
        reqwest::Method::DELETE,
        &format!("/channels/{CHAT}/messages/{theirs}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (403, Some(50013)),
        "another's message: {body}"
    );
    let (status, _, body) = call(
        &sb,
        reqwest::Method::DELETE,
        &format!("/channels/987654321/messages/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (404, Some(10003)),
        "{body}"
    );
    let texts: Vec<String> = sb
        .state()
        .discord
        .channels
        .iter()
        .find(|c| c.id == CHAT)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.content.clone())
        .collect();
    assert!(!texts.contains(&"oops".to_owned()), "{texts:?}");
    sb.shutdown().await;
}

#[tokio::test]
async fn an_interaction_carries_its_channel_and_with_response_answers_the_callback_object() {
    let spec = spec();
    let api = spec.as_ref().map(|s| OpenApi {
        schemas: s["components"]["schemas"].as_object().unwrap(),
    });
    let sb = sandbox(DiscordLimits::unlimited()).await;
    let (mut ws, _, _) = identify(&sb, TOKEN).await;
    let played = reqwest::Client::new()
        .post(format!(
            "http://{}/_sandbox/discord/interactions",
            sb.addr()
        ))
        .json(&json!({"user_id": 555, "command": "status", "channel_id": CHAT}))
        .send()
        .await
        .unwrap();
    assert_eq!(played.status(), 200);
    let interaction = ws.dispatch("INTERACTION_CREATE").await;
    let channel = &interaction["channel"];
    assert_eq!(channel["id"], CHAT.to_string(), "{interaction}");
    assert_eq!(channel["type"], 0);
    assert!(channel["permissions"].is_string(), "{channel}");
    let path = format!(
        "/interactions/{}/{}/callback?with_response=true",
        interaction["id"].as_str().unwrap(),
        interaction["token"].as_str().unwrap()
    );
    let (status, _, body) = call(
        &sb,
        reqwest::Method::POST,
        &path,
        Some(json!({"type": 4, "data": {"content": "all green"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    conforms(api.as_ref(), &body, "InteractionCallbackResponse");
    assert_eq!(body["interaction"]["id"], interaction["id"]);
    assert_eq!(body["resource"]["message"]["content"], "all green");
    sb.shutdown().await;
}

/// Connects and identifies with `intents`; the socket after READY and GUILD_CREATE.
async fn identify_with(sb: &SandboxHandle, token: &str, intents: u64) -> Ws {
    let mut ws = Ws::connect(sb.addr(), "/gateway").await;
    assert_eq!(ws.recv_json().await["op"], 10);
    ws.send_json(&json!({"op": 2, "d": {
        "token": token, "intents": intents,
        "properties": {"os": "linux", "browser": "test", "device": "test"},
    }}))
    .await;
    ws.dispatch("READY").await;
    ws.dispatch("GUILD_CREATE").await;
    ws
}

/// The message events a connection was sent before the answer to a
/// heartbeat (sent now: the gateway answers in order, after what it queued).
async fn messages_until_ack(ws: &mut Ws) -> Vec<Value> {
    ws.send_json(&json!({"op": 1, "d": null})).await;
    let mut seen = Vec::new();
    loop {
        let frame = ws.recv_json().await;
        if frame["op"] == 11 {
            return seen;
        }
        if frame["op"] == 0
            && frame["t"]
                .as_str()
                .is_some_and(|t| t.starts_with("MESSAGE_"))
        {
            seen.push(frame);
        }
    }
}

#[tokio::test]
async fn the_gateway_sends_messages_as_the_intents_allow() {
    const GUILDS: u64 = 1;
    const GUILD_MESSAGES: u64 = 1 << 9;
    const MESSAGE_CONTENT: u64 = 1 << 15;
    let sb = sandbox(DiscordLimits::unlimited()).await;
    let mut without_content = identify_with(&sb, TOKEN, GUILDS | GUILD_MESSAGES).await;
    let mut with_content =
        identify_with(&sb, OTHER_TOKEN, GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT).await;

    // A person's message that mentions nobody.
    play_mentioning(&sb, CHAT, "deploy is green", &[]).await;
    let seen = messages_until_ack(&mut without_content).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]["d"]["content"], "",
        "no MESSAGE_CONTENT: the text is withheld"
    );
    let seen = messages_until_ack(&mut with_content).await;
    assert_eq!(seen[0]["d"]["content"], "deploy is green");
    // One that mentions the bot without the intent: it sees the text.
    play_mentioning(&sb, CHAT, "are you there?", &[BOT]).await;
    let seen = messages_until_ack(&mut without_content).await;
    assert_eq!(seen[0]["d"]["content"], "are you there?");
    messages_until_ack(&mut with_content).await;

    // A bot's post and its edit reach the other bots, as on Discord; the
    // author sees its own text whatever its intents.
    let (status, _, sent) = call(
        &sb,
        reqwest::Method::POST,
        &format!("/channels/{CHAT}/messages"),
        Some(json!({"content": "from the bot"})),
    )
    .await;
    assert_eq!(status, 200);
    let own = messages_until_ack(&mut without_content).await;
    assert_eq!(
        (own[0]["t"].as_str(), own[0]["d"]["content"].as_str()),
        (Some("MESSAGE_CREATE"), Some("from the bot"))
    );
    let other = messages_until_ack(&mut with_content).await;
    assert_eq!(other[0]["d"]["id"], sent["id"]);
    assert_eq!(other[0]["d"]["guild_id"], crate::gateway::GUILD);
    let (status, _, _) = call(
        &sb,
        reqwest::Method::PATCH,
        &format!("/channels/{CHAT}/messages/{}", sent["id"].as_str().unwrap()),
        Some(json!({"content": "edited"})),
    )
    .await;
    assert_eq!(status, 200);
    let other = messages_until_ack(&mut with_content).await;
    assert_eq!(
        (other[0]["t"].as_str(), other[0]["d"]["content"].as_str()),
        (Some("MESSAGE_UPDATE"), Some("edited"))
    );

    // Without GUILD_MESSAGES no guild message event arrives at all.
    let mut guilds_only = identify_with(&sb, OTHER_TOKEN, GUILDS).await;
    play_mentioning(&sb, CHAT, "anyone?", &[]).await;
    assert!(messages_until_ack(&mut guilds_only).await.is_empty());

    // Bits Discord does not define are refused at Identify.
    let mut ws = Ws::connect(sb.addr(), "/gateway").await;
    ws.recv_json().await;
    ws.send_json(
        &json!({"op": 2, "d": {"token": TOKEN, "intents": 1u64 << 40,
        "properties": {"os": "linux", "browser": "test", "device": "test"}}}),
    )
    .await;
    assert_eq!(ws.recv().await, Err(4013), "Invalid intent(s)");
    sb.shutdown().await;
}

/// Plays a person's message in `channel` mentioning `mentions`.
async fn play_mentioning(sb: &SandboxHandle, channel: u64, content: &str, mentions: &[u64]) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/_sandbox/discord/messages", sb.addr()))
        .json(
            &json!({"user_id": 555, "username": "ops", "channel_id": channel,
                      "content": content, "mentions": mentions}),
        )
        .send()
        .await
        .expect("control call");
    assert_eq!(r.status(), 200);
}
