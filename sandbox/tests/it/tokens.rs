//! Only the tokens the sandbox knows are served; every other one is refused
//! exactly as Discord (REST 401, gateway close 4004) and Telegram (404 for a
//! malformed token, 401 for an unknown one) refuse it, and counted. Tokens
//! registered at run time work like configured ones; none ever shows in the state.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchyard_sandbox::{self as sandbox, SandboxHandle, SandboxOptions};
use tokio_tungstenite::tungstenite::Message;

/// The first segment is "101234" in base64: the bot's user id.
const DISCORD_TOKEN: &str = "MTAxMjM0.known.token";
const DISCORD_BOT: u64 = 101_234;
/// Shaped like a Discord token and for the same bot id, but not one the sandbox knows.
const DISCORD_UNKNOWN: &str = "MTAxMjM0.other.token";
const TELEGRAM_TOKEN: &str = "123456:KNOWN-token_0123456789";
const TELEGRAM_UNKNOWN: &str = "123456:OTHER-token_0123456789";
const TELEGRAM_MALFORMED: &str = "garbage";
const CHANNEL: u64 = 1004;
const CHAT: i64 = 4242;

async fn sandbox_knowing(discord: &[&str], telegram: &[&str]) -> SandboxHandle {
    sandbox::start(SandboxOptions {
        discord_tokens: discord.iter().map(|t| t.to_string()).collect(),
        telegram_tokens: telegram.iter().map(|t| t.to_string()).collect(),
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

/// A Discord REST call; `token` `None` sends no Authorization header.
async fn discord(
    sb: &SandboxHandle,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req =
        reqwest::Client::new().request(method, format!("{}{path}", sb.discord_api_base()));
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bot {token}"));
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.expect("the sandbox answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn telegram(sb: &SandboxHandle, token: &str, method: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/bot{token}/{method}", sb.telegram_api_base()))
        .json(&body)
        .send()
        .await
        .expect("the sandbox answers");
    let status = r.status().as_u16();
    (status, r.json().await.expect("Telegram answers JSON"))
}

#[tokio::test]
async fn discord_rest_refuses_an_unknown_or_missing_token_with_401() {
    let sb = sandbox_knowing(&[DISCORD_TOKEN], &[]).await;
    let unauthorized = json!({"message": "401: Unauthorized", "code": 0});
    let post = format!("/channels/{CHANNEL}/messages");
    let calls: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (
            reqwest::Method::POST,
            post.clone(),
            Some(json!({"content": "hi"})),
        ),
        (reqwest::Method::GET, "/users/@me".into(), None),
        (
            reqwest::Method::GET,
            "/oauth2/applications/@me".into(),
            None,
        ),
        (reqwest::Method::GET, "/gateway/bot".into(), None),
        (
            reqwest::Method::GET,
            format!("/applications/{DISCORD_BOT}/guilds/900000000000000000/commands"),
            None,
        ),
    ];
    let mut refused = 0;
    for (method, path, body) in &calls {
        for token in [Some("garbage"), Some(DISCORD_UNKNOWN), None] {
            let (status, answer) = discord(&sb, method.clone(), path, token, body.clone()).await;
            assert_eq!(
                (status, &answer),
                (401, &unauthorized),
                "{method} {path} with {token:?}"
            );
            refused += 1;
        }
        let (status, answer) =
            discord(&sb, method.clone(), path, Some(DISCORD_TOKEN), body.clone()).await;
        assert_eq!(
            status, 200,
            "{method} {path} with the known token: {answer}"
        );
    }
    let state = sb.state();
    let texts: Vec<String> = state
        .discord_messages(CHANNEL)
        .iter()
        .map(|m| m.text())
        .collect();
    assert_eq!(
        texts,
        vec!["hi".to_owned()],
        "only the known bot's post landed"
    );
    assert_eq!(state.stats.discord.unauthorized, refused);
    assert_eq!(
        state.stats.discord.rejected, refused,
        "refusals are rejections too"
    );
    assert_eq!(state.stats.discord.accepted, calls.len() as u64);
}

#[tokio::test]
async fn the_login_routes_answer_for_the_bot_the_token_names() {
    let sb = sandbox_knowing(&[DISCORD_TOKEN], &[]).await;
    let (status, user) = discord(
        &sb,
        reqwest::Method::GET,
        "/users/@me",
        Some(DISCORD_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["id"], DISCORD_BOT.to_string(), "{user}");
    assert_eq!(user["bot"], true, "{user}");
    let (status, app) = discord(
        &sb,
        reqwest::Method::GET,
        "/oauth2/applications/@me",
        Some(DISCORD_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{app}");
    // The application id is the bot's, as in the gateway's READY.
    assert_eq!(app["id"], DISCORD_BOT.to_string(), "{app}");
    assert_eq!(app["bot"]["id"], DISCORD_BOT.to_string(), "{app}");
    let (status, _) = discord(
        &sb,
        reqwest::Method::POST,
        "/users/@me",
        Some(DISCORD_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 405, "only GET");
}

/// Connects to the gateway, reads Hello, sends Identify with `token`, and
/// returns the next frame the gateway sends.
async fn identify(sb: &SandboxHandle, token: &str) -> Message {
    let url = format!("ws://{}/gateway?v=10&encoding=json", sb.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the gateway accepts the connection");
    let hello = ws.next().await.expect("a frame").expect("hello");
    let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
    assert_eq!(hello["op"], 10, "{hello}");
    let frame = json!({"op": 2, "d": {"token": token, "intents": 513, "properties": {"os": "linux", "browser": "test", "device": "test"}}});
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("identify sent");
    ws.next().await.expect("an answer").expect("a frame")
}

#[tokio::test]
async fn gateway_identify_with_an_unknown_token_is_closed_with_4004() {
    let sb = sandbox_knowing(&[DISCORD_TOKEN], &[]).await;
    for token in [DISCORD_UNKNOWN, "garbage", "Bot garbage"] {
        match identify(&sb, token).await {
            Message::Close(Some(close)) => {
                assert_eq!(u16::from(close.code), 4004, "{token}");
                assert_eq!(close.reason.as_str(), "Authentication failed.", "{token}");
            }
            other => panic!("{token}: expected close 4004, got {other:?}"),
        }
    }
    assert_eq!(sb.state().gateway.identifies, 0);
    assert_eq!(sb.state().stats.discord.unauthorized, 3);

    let ready = identify(&sb, DISCORD_TOKEN).await;
    let ready: Value = serde_json::from_str(ready.to_text().expect("a text frame")).unwrap();
    assert_eq!(ready["t"], "READY", "{ready}");
    assert_eq!(ready["d"]["user"]["id"], DISCORD_BOT.to_string(), "{ready}");
    assert_eq!(sb.state().gateway.identifies, 1);
}

#[tokio::test]
async fn telegram_refuses_a_malformed_token_with_404_and_an_unknown_one_with_401() {
    let sb = sandbox_knowing(&[], &[TELEGRAM_TOKEN]).await;
    let send = json!({"chat_id": CHAT, "text": "hello"});
    for method in ["getMe", "sendMessage", "getUpdates"] {
        let (status, answer) = telegram(&sb, TELEGRAM_MALFORMED, method, send.clone()).await;
        assert_eq!(
            (status, answer),
            (
                404,
                json!({"ok": false, "error_code": 404, "description": "Not Found"})
            ),
            "{method}"
        );
        let (status, answer) = telegram(&sb, TELEGRAM_UNKNOWN, method, send.clone()).await;
        assert_eq!(
            (status, answer),
            (
                401,
                json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
            ),
            "{method}"
        );
    }
    assert!(
        sb.state().telegram_messages(CHAT).is_empty(),
        "a refused call sends nothing"
    );
    let (status, me) = telegram(&sb, TELEGRAM_TOKEN, "getMe", json!({})).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["result"]["id"], 123_456, "{me}");
    let (status, sent) = telegram(&sb, TELEGRAM_TOKEN, "sendMessage", send).await;
    assert_eq!(status, 200, "{sent}");
    let stats = sb.state().stats.telegram;
    assert_eq!(stats.unauthorized, 6);
    assert_eq!(stats.rejected, 6);
}

#[tokio::test]
async fn a_registered_token_works_and_an_unregistered_one_is_refused() {
    let sb = sandbox_knowing(&[], &[]).await;
    let client = reqwest::Client::new();
    let control = format!("http://{}/_sandbox/tokens", sb.addr());

    // Before registration, nothing is known.
    let (status, _) = discord(
        &sb,
        reqwest::Method::GET,
        "/users/@me",
        Some(DISCORD_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = telegram(&sb, TELEGRAM_TOKEN, "getMe", json!({})).await;
    assert_eq!(status, 401);

    let r = client
        .post(&control)
        .json(&json!({"platform": "discord", "token": DISCORD_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<Value>().await.unwrap()["bot_id"],
        DISCORD_BOT.to_string()
    );
    let r = client
        .post(&control)
        .json(&json!({"platform": "telegram", "token": TELEGRAM_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["bot_id"], 123_456);
    // In process too.
    assert_eq!(sb.register_discord_token("MTAx.in.process"), Ok(101));

    let (status, user) = discord(
        &sb,
        reqwest::Method::GET,
        "/users/@me",
        Some(DISCORD_TOKEN),
        None,
    )
    .await;
    assert_eq!(
        (status, user["id"].clone()),
        (200, json!(DISCORD_BOT.to_string()))
    );
    let (status, user) = discord(
        &sb,
        reqwest::Method::GET,
        "/users/@me",
        Some("MTAx.in.process"),
        None,
    )
    .await;
    assert_eq!((status, user["id"].clone()), (200, json!("101")));
    let (status, _) = telegram(&sb, TELEGRAM_TOKEN, "getMe", json!({})).await;
    assert_eq!(status, 200);
    // Those not registered are still refused.
    let (status, _) = discord(
        &sb,
        reqwest::Method::GET,
        "/users/@me",
        Some(DISCORD_UNKNOWN),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = telegram(&sb, TELEGRAM_UNKNOWN, "getMe", json!({})).await;
    assert_eq!(status, 401);

    // What cannot be a token is not registered, and the answer does not repeat it.
    for (platform, token) in [("telegram", "not a token"), ("discord", "two words")] {
        let r = client
            .post(&control)
            .json(&json!({"platform": platform, "token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{platform}");
        let text = r.text().await.unwrap();
        assert!(!text.contains(token), "{text}");
    }

    // Tokens are configuration: a reset keeps them (and zeroes the counters).
    let r = client
        .post(format!("http://{}/_sandbox/reset", sb.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(sb.state().stats.discord.unauthorized, 0);
    let (status, _) = discord(
        &sb,
        reqwest::Method::GET,
        "/users/@me",
        Some(DISCORD_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = telegram(&sb, TELEGRAM_TOKEN, "getMe", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tokens_stay_out_of_the_state_the_request_log_and_debug() {
    let opts = SandboxOptions {
        discord_tokens: vec![DISCORD_TOKEN.into()],
        telegram_tokens: vec![TELEGRAM_TOKEN.into()],
        ..SandboxOptions::default()
    };
    let shown = format!("{opts:?}");
    let sb = sandbox::start(opts).await.expect("the sandbox starts");
    discord(
        &sb,
        reqwest::Method::POST,
        &format!("/channels/{CHANNEL}/messages"),
        Some(DISCORD_TOKEN),
        Some(json!({"content": "x"})),
    )
    .await;
    discord(
        &sb,
        reqwest::Method::GET,
        "/users/@me",
        Some(DISCORD_UNKNOWN),
        None,
    )
    .await;
    telegram(
        &sb,
        TELEGRAM_TOKEN,
        "sendMessage",
        json!({"chat_id": CHAT, "text": "x"}),
    )
    .await;
    telegram(&sb, TELEGRAM_UNKNOWN, "getMe", json!({})).await;
    let state = reqwest::get(format!("http://{}/_sandbox/state", sb.addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        state.contains("/telegram/bot<token>/sendMessage"),
        "the calls are logged: {state}"
    );
    let secrets = [
        DISCORD_TOKEN,
        DISCORD_UNKNOWN,
        TELEGRAM_TOKEN,
        TELEGRAM_UNKNOWN,
        "KNOWN-token",
        "OTHER-token",
        "known.token",
    ];
    for secret in secrets {
        assert!(!state.contains(secret), "{secret} in the state");
        assert!(!shown.contains(secret), "{secret} in Debug: {shown}");
    }
}
