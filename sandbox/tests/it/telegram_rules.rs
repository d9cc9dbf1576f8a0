//! The Telegram stand-in's rules that the method descriptions alone do not carry,
//! held to the Bot API's documented behaviour and the server's own error sentences:
//! `allowed_updates` remembered per bot and applied when an update arrives,
//! `sendChatAction`'s actions (read from telegram-api.json), and `parse_mode`
//! (HTML, MarkdownV2, legacy Markdown, unknown modes) with the length limit counted
//! after parsing.

use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_sandbox::{
    self as sandbox, SandboxHandle, SandboxOptions, TelegramLimits, TelegramUser,
    TelegramUserAction,
};

use crate::openapi::{self, load};

const BOT_A: &str = "111111:bot-A-token";
const BOT_B: &str = "222222:bot-B-token";
const CHAT: i64 = 4242;

async fn sandbox() -> SandboxHandle {
    sandbox::start(SandboxOptions {
        telegram_rate: TelegramLimits::unlimited(),
        telegram_tokens: vec![BOT_A.into(), BOT_B.into()],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

async fn call(sb: &SandboxHandle, token: &str, method: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/bot{token}/{method}", sb.telegram_api_base()))
        .json(&body)
        .send()
        .await
        .expect("the sandbox answers");
    (r.status().as_u16(), r.json().await.expect("a JSON answer"))
}

/// The update types in a `getUpdates` answer, in order.
fn kinds(reply: &Value) -> Vec<&str> {
    reply["result"]
        .as_array()
        .expect("a list of updates")
        .iter()
        .map(|u| {
            u.as_object()
                .unwrap()
                .keys()
                .find(|k| *k != "update_id")
                .unwrap()
                .as_str()
        })
        .collect()
}

async fn poll(sb: &SandboxHandle, token: &str, body: Value) -> Vec<String> {
    let (status, reply) = call(sb, token, "getUpdates", body).await;
    assert_eq!(status, 200, "{reply}");
    kinds(&reply).into_iter().map(str::to_owned).collect()
}

/// A bot message with a button, and a user who writes and presses it.
async fn message_with_button(sb: &SandboxHandle) -> i32 {
    let markup = json!({"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]});
    let (status, sent) = call(
        sb,
        BOT_A,
        "sendMessage",
        json!({"chat_id": CHAT, "text": "pick", "reply_markup": markup}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    sent["result"]["message_id"].as_i64().unwrap() as i32
}

fn write(sb: &SandboxHandle, text: &str) {
    sb.telegram_user_action(TelegramUserAction::Message {
        chat_id: CHAT,
        from: TelegramUser::new(7, "Ana"),
        text: text.into(),
    })
    .expect("the chat exists");
}

fn press(sb: &SandboxHandle, message_id: i32) {
    sb.telegram_user_action(TelegramUserAction::PressButton {
        chat_id: CHAT,
        message_id,
        from: TelegramUser::new(7, "Ana"),
        callback_data: "go".into(),
    })
    .expect("the button exists");
}

#[tokio::test]
async fn allowed_updates_are_remembered_per_bot_and_applied_on_arrival() {
    let sb = sandbox().await;
    let message_id = message_with_button(&sb).await;

    // Bot A asks for messages only; bot B polls with the default.
    assert!(
        poll(&sb, BOT_A, json!({"allowed_updates": ["message"]}))
            .await
            .is_empty()
    );
    assert!(poll(&sb, BOT_B, json!({})).await.is_empty());
    let state = sb.state().telegram;
    assert_eq!(state.allowed_updates[&111111], vec!["message".to_owned()]);
    assert!(state.allowed_updates[&222222].contains(&"callback_query".to_owned()));

    write(&sb, "hello");
    press(&sb, message_id);
    // A's setting stays when omitted: it never sees the press, B does.
    assert_eq!(poll(&sb, BOT_A, json!({})).await, ["message"]);
    assert_eq!(
        poll(&sb, BOT_B, json!({})).await,
        ["message", "callback_query"]
    );
    assert_eq!(sb.state().telegram.dropped_updates, 1);

    // Allowing presses later does not bring the dropped one back (Telegram never
    // queued it for A); the next press arrives.
    assert_eq!(
        poll(
            &sb,
            BOT_A,
            json!({"allowed_updates": ["message", "callback_query"]})
        )
        .await,
        ["message"]
    );
    press(&sb, message_id);
    assert_eq!(
        poll(&sb, BOT_A, json!({})).await,
        ["message", "callback_query"]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn allowed_updates_are_read_leniently_as_the_server_reads_them() {
    let sb = sandbox().await;
    let message_id = message_with_button(&sb).await;
    let allowed = |sb: &SandboxHandle| sb.state().telegram.allowed_updates[&111111].clone();

    // Names in any case; unknown ones ignored.
    poll(
        &sb,
        BOT_A,
        json!({"allowed_updates": ["MESSAGE", "no_such_update"]}),
    )
    .await;
    assert_eq!(allowed(&sb), ["message"]);
    // Not a list of strings: ignored, the previous setting stays (no 400).
    let (status, reply) = call(&sb, BOT_A, "getUpdates", json!({"allowed_updates": "nope"})).await;
    assert_eq!(status, 200, "{reply}");
    poll(&sb, BOT_A, json!({"allowed_updates": ["message", 7]})).await;
    assert_eq!(allowed(&sb), ["message"]);
    // As a form parameter the list is JSON text.
    let r = reqwest::Client::new()
        .post(format!("{}/bot{BOT_A}/getUpdates", sb.telegram_api_base()))
        .form(&[("allowed_updates", "[\"callback_query\"]")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(allowed(&sb), ["callback_query"]);

    // `[]`, or only unknown names: the default, which leaves out three types.
    for list in [json!([]), json!(["no_such_update"])] {
        poll(&sb, BOT_A, json!({"allowed_updates": list})).await;
        let names = allowed(&sb);
        assert!(names.contains(&"message".to_owned()));
        assert!(names.contains(&"callback_query".to_owned()));
        for opt_in in ["chat_member", "message_reaction", "message_reaction_count"] {
            assert!(!names.contains(&opt_in.to_owned()), "{opt_in} is opt-in");
        }
    }
    press(&sb, message_id);
    assert_eq!(poll(&sb, BOT_A, json!({})).await, ["callback_query"]);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_webhook_takes_allowed_updates_too() {
    let sb = sandbox().await;
    let message_id = message_with_button(&sb).await;
    // Nothing listens there: deliveries fail and the updates stay queued.
    let (status, reply) = call(
        &sb,
        BOT_A,
        "setWebhook",
        json!({"url": "http://127.0.0.1:9/hook", "allowed_updates": ["message"]}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (_, info) = call(&sb, BOT_A, "getWebhookInfo", json!({})).await;
    assert_eq!(info["result"]["allowed_updates"], json!(["message"]));
    press(&sb, message_id);
    write(&sb, "hello");
    let (_, info) = call(&sb, BOT_A, "getWebhookInfo", json!({})).await;
    assert_eq!(info["result"]["pending_update_count"], 1, "{info}");
    assert_eq!(sb.state().telegram.dropped_updates, 1);
    // The webhook's setting is the bot's: getUpdates (after deleteWebhook) keeps it.
    call(&sb, BOT_A, "deleteWebhook", json!({})).await;
    assert_eq!(poll(&sb, BOT_A, json!({})).await, ["message"]);
    sb.shutdown().await;
}

/// The actions the description names ("typing for text messages, upload_photo
/// for photos, …").
fn documented_actions() -> Option<Vec<String>> {
    let dir = openapi::specs(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs"))?;
    let spec = load(&dir, "telegram-api.json");
    let field = spec["methods"]["sendChatAction"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "action")
        .unwrap()
        .clone();
    let description = field["description"].as_str().unwrap();
    let list = description
        .split(": ")
        .nth(1)
        .expect("a list after the colon");
    let actions: Vec<String> = list
        .split([',', ' ', '.'])
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .filter(|w| w.contains('_') || *w == "typing")
        .map(str::to_owned)
        .collect();
    Some(actions)
}

#[tokio::test]
async fn send_chat_action_takes_only_the_documented_actions() {
    let Some(actions) = documented_actions() else {
        return;
    };
    assert_eq!(actions.len(), 11, "the description's actions: {actions:?}");
    let sb = sandbox().await;
    for action in &actions {
        let (status, reply) = call(
            &sb,
            BOT_A,
            "sendChatAction",
            json!({"chat_id": CHAT, "action": action}),
        )
        .await;
        assert_eq!(
            (status, &reply["result"]),
            (200, &json!(true)),
            "{action}: {reply}"
        );
    }
    let shown = |sb: &SandboxHandle| {
        sb.state()
            .telegram
            .chats
            .iter()
            .find(|c| c.id == CHAT)
            .unwrap()
            .chat_actions
    };
    assert_eq!(shown(&sb), actions.len() as u64);
    for bad in [json!("dancing"), json!(""), json!(null)] {
        let (status, reply) = call(
            &sb,
            BOT_A,
            "sendChatAction",
            json!({"chat_id": CHAT, "action": bad}),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {reply}");
        assert_eq!(
            reply["description"],
            "Bad Request: wrong parameter action in request"
        );
    }
    // The action is read before the chat, as on Telegram.
    let (_, reply) = call(
        &sb,
        BOT_A,
        "sendChatAction",
        json!({"chat_id": 999, "action": "dancing"}),
    )
    .await;
    assert_eq!(
        reply["description"],
        "Bad Request: wrong parameter action in request"
    );
    assert_eq!(shown(&sb), actions.len() as u64, "refusals show nothing");
    sb.shutdown().await;
}

async fn send(sb: &SandboxHandle, text: &str, mode: &str) -> (u16, Value) {
    call(
        sb,
        BOT_A,
        "sendMessage",
        json!({"chat_id": CHAT, "text": text, "parse_mode": mode}),
    )
    .await
}

#[tokio::test]
async fn markdown_v2_is_parsed_and_refused_as_telegram_does() {
    let sb = sandbox().await;
    let (status, sent) = send(
        &sb,
        "*Deploy* _web\\-1_ __done__ ~old~ ||s|| `x.y` [log](https://example.com/run)\n>quoted",
        "MarkdownV2",
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let m = &sent["result"];
    assert_eq!(m["text"], "Deploy web-1 done old s x.y log\nquoted");
    let types: Vec<&str> = m["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "bold",
            "italic",
            "underline",
            "strikethrough",
            "spoiler",
            "code",
            "text_link",
            "blockquote"
        ]
    );
    assert_eq!(m["entities"][6]["url"], "https://example.com/run");

    for (text, error) in [
        (
            "Version 1.0",
            "Character '.' is reserved and must be escaped with the preceding '\\'",
        ),
        (
            "a - b",
            "Character '-' is reserved and must be escaped with the preceding '\\'",
        ),
        ("*bold", "Can't find end of Bold entity at byte offset 0"),
        (
            "[x](https://example.com",
            "Can't find end of a URL at byte offset 4",
        ),
    ] {
        let (status, reply) = send(&sb, text, "MarkdownV2").await;
        assert_eq!(status, 400, "{text}: {reply}");
        assert_eq!(
            reply["description"],
            format!("Bad Request: can't parse entities: {error}"),
            "{text}"
        );
    }
    // The same refusal on an edit.
    let id = m["message_id"].clone();
    let (status, reply) = call(
        &sb,
        BOT_A,
        "editMessageText",
        json!({"chat_id": CHAT, "message_id": id, "text": "1.0", "parse_mode": "MarkdownV2"}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    sb.shutdown().await;
}

#[tokio::test]
async fn parse_modes_other_than_telegrams_are_refused() {
    let sb = sandbox().await;
    // Legacy Markdown: `.` and `-` are plain text there.
    let (status, sent) = send(&sb, "*v1.0* - done", "Markdown").await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["result"]["text"], "v1.0 - done");
    assert_eq!(sent["result"]["entities"][0]["type"], "bold");
    let (_, reply) = send(&sb, "*v1.0", "Markdown").await;
    assert_eq!(
        reply["description"],
        "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 0"
    );
    // Modes are read in any case; "none" is no parsing.
    let (status, sent) = send(&sb, "<b>x</b>", "html").await;
    assert_eq!((status, &sent["result"]["text"]), (200, &json!("x")));
    let (status, sent) = send(&sb, "*x* 1.0", "None").await;
    assert_eq!((status, &sent["result"]["text"]), (200, &json!("*x* 1.0")));
    for mode in ["Markdown3", "md", "text"] {
        let (status, reply) = send(&sb, "hello", mode).await;
        assert_eq!(status, 400, "{mode}: {reply}");
        assert_eq!(reply["description"], "Bad Request: unsupported parse_mode");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn the_length_limit_is_counted_after_parsing() {
    let sb = sandbox().await;
    // 4096 visible characters from 8194 bytes of escaped MarkdownV2: accepted.
    let at_limit = format!("*{}*", "\\.".repeat(4096));
    let (status, sent) = send(&sb, &at_limit, "MarkdownV2").await;
    assert_eq!(status, 200, "{}", sent["description"]);
    assert_eq!(sent["result"]["entities"][0]["length"], 4096);
    let over = format!("*{}*", "\\.".repeat(4097));
    let (status, reply) = send(&sb, &over, "MarkdownV2").await;
    assert_eq!(status, 400);
    assert_eq!(reply["description"], "Bad Request: message is too long");
    // Entity offsets count UTF-16 units: an emoji is two.
    let (_, sent) = send(&sb, "😀 *x*", "MarkdownV2").await;
    assert_eq!(sent["result"]["entities"][0]["offset"], 3);
    sb.shutdown().await;
}
