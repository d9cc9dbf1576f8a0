//! Wire tests of the sandbox with the real clients: serenity's `Http` and teloxide's
//! `Bot` over HTTP on 127.0.0.1, plus the control endpoints over plain HTTP.

use std::time::Duration;

use serde_json::{Value, json};
use serenity::all::{
    ChannelId, CreateEmbed, CreateMessage, EditMessage, ExecuteWebhook, Http, HttpBuilder,
    MessageId, Nonce, Webhook,
};
use switchyard_sandbox::{
    self as sandbox, DiscordWebhook, Fault, Platform, Rate, SandboxHandle, SandboxOptions,
    TelegramUser, TelegramUserAction,
};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, ParseMode, UpdateKind};
use teloxide::{ApiError, RequestError};

const DISCORD_TOKEN: &str = "MTAxMjM0.fake.token";
const TELEGRAM_TOKEN: &str = "123456:TEST-token";
const SYSTEM: u64 = 1004;
const ALERTS: u64 = 1002;
const OPERATOR: i64 = 4242;
const GROUP: i64 = -100;

async fn sandbox() -> SandboxHandle {
    sandbox_with(|_| {}).await
}

/// A sandbox with the default limits changed by `tune`. Tests that exercise a limit
/// stretch its window to a minute, so that a slow machine cannot let it reset mid-test.
async fn sandbox_with(tune: impl FnOnce(&mut SandboxOptions)) -> SandboxHandle {
    let mut opts = SandboxOptions {
        discord_tokens: vec![DISCORD_TOKEN.into()],
        telegram_tokens: vec![TELEGRAM_TOKEN.into()],
        ..SandboxOptions::default()
    };
    opts.telegram_chats.push((GROUP, "ops".to_owned()));
    tune(&mut opts);
    sandbox::start(opts).await.expect("the sandbox starts")
}

/// Waits until the sandbox's state satisfies `ready` (ordering, not timing).
async fn until(sb: &SandboxHandle, ready: impl Fn(&sandbox::SandboxState) -> bool) {
    for _ in 0..1000 {
        if ready(&sb.state()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the sandbox never reached the expected state: {:?}",
        sb.state().telegram
    );
}

fn discord(sb: &SandboxHandle) -> Http {
    HttpBuilder::new(DISCORD_TOKEN)
        .proxy(sb.discord_proxy())
        .ratelimiter_disabled(true)
        .build()
}

fn telegram(sb: &SandboxHandle) -> Bot {
    Bot::new(TELEGRAM_TOKEN).set_api_url(url::Url::parse(&sb.telegram_api_base()).unwrap())
}

/// The Discord error inside a serenity error, if it is one.
fn discord_error(e: &serenity::Error) -> (u16, isize, String) {
    match e {
        serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => (
            r.status_code.as_u16(),
            r.error.code,
            r.error.message.clone(),
        ),
        other => panic!("expected an unsuccessful request, got {other:?}"),
    }
}

#[tokio::test]
async fn discord_send_edit_and_get_with_serenity() {
    let sb = sandbox().await;
    let http = discord(&sb);
    let sent = ChannelId::new(SYSTEM)
        .send_message(
            &http,
            CreateMessage::new()
                .content("deploy finished")
                .embed(CreateEmbed::new().title("web-1")),
        )
        .await
        .expect("posted");
    assert_eq!(sent.content, "deploy finished");
    assert_eq!(sent.embeds[0].title.as_deref(), Some("web-1"));
    assert_eq!(
        sent.author.id.get(),
        101_234,
        "the bot's id comes from its token"
    );

    let edited = ChannelId::new(SYSTEM)
        .edit_message(
            &http,
            sent.id,
            EditMessage::new().content("deploy finished (edited)"),
        )
        .await
        .expect("edited");
    assert!(edited.edited_timestamp.is_some());
    let fetched = http
        .get_message(ChannelId::new(SYSTEM), sent.id)
        .await
        .expect("fetched");
    assert_eq!(fetched.content, "deploy finished (edited)");

    let state = sb.state();
    let messages = state.discord_messages(SYSTEM);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].edited);
    assert_eq!(messages[0].id, sent.id.get());
    assert_eq!(state.stats.discord.accepted, 3);

    let missing = http
        .get_message(ChannelId::new(SYSTEM), MessageId::new(1))
        .await
        .unwrap_err();
    assert_eq!(
        discord_error(&missing),
        (404, 10008, "Unknown Message".to_owned())
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn discord_refuses_what_discord_refuses() {
    let sb = sandbox().await;
    let http = discord(&sb);
    // The raw call skips serenity's own length check, as a bug in our renderer would.
    let too_long = http
        .send_message(
            ChannelId::new(SYSTEM),
            vec![],
            &json!({"content": "x".repeat(2001)}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        discord_error(&too_long),
        (400, 50035, "Invalid Form Body".to_owned())
    );
    if let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) = &too_long {
        assert_eq!(r.error.errors[0].path, "content");
        assert_eq!(r.error.errors[0].code, "BASE_TYPE_MAX_LENGTH");
    }

    let empty = http
        .send_message(ChannelId::new(SYSTEM), vec![], &json!({"content": ""}))
        .await
        .unwrap_err();
    assert_eq!(discord_error(&empty).1, 50006);

    let unknown = ChannelId::new(999)
        .send_message(&http, CreateMessage::new().content("hi"))
        .await
        .unwrap_err();
    assert_eq!(
        discord_error(&unknown),
        (404, 10003, "Unknown Channel".to_owned())
    );

    let anonymous = reqwest::Client::new()
        .post(format!(
            "{}/channels/{SYSTEM}/messages",
            sb.discord_api_base()
        ))
        .json(&json!({"content": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.json::<Value>().await.unwrap(),
        json!({"message": "401: Unauthorized", "code": 0})
    );

    let state = sb.state();
    assert_eq!(state.stats.discord.rejected, 4);
    assert_eq!(state.stats.discord.accepted, 0);
    assert!(state.discord_messages(SYSTEM).is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn discord_channel_bucket_is_advertised_then_enforced() {
    let sb =
        sandbox_with(|o| o.discord_rate.channel_messages = Rate::new(5, Duration::from_secs(60)))
            .await;
    let client = reqwest::Client::new();
    let url = format!("{}/channels/{ALERTS}/messages", sb.discord_api_base());
    for expected_remaining in (0..5).rev() {
        let r = client
            .post(&url)
            .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
            .json(&json!({"content": "alert"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "5");
        assert_eq!(
            r.headers()["x-ratelimit-remaining"],
            expected_remaining.to_string().as_str()
        );
        assert!(r.headers().contains_key("x-ratelimit-reset-after"));
        assert!(r.headers().contains_key("x-ratelimit-bucket"));
    }
    // The sixth, through serenity: a 429 it surfaces as an error.
    let http = discord(&sb);
    let err = ChannelId::new(ALERTS)
        .send_message(&http, CreateMessage::new().content("one too many"))
        .await
        .unwrap_err();
    assert_eq!(
        discord_error(&err),
        (429, 0, "You are being rate limited.".to_owned())
    );

    let r = client
        .post(&url)
        .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
        .json(&json!({"content": "and another"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ratelimit-scope"], "user");
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "You are being rate limited.");
    assert_eq!(body["global"], false);
    let retry_after = body["retry_after"].as_f64().unwrap();
    assert!(
        retry_after > 0.0 && retry_after <= 60.0,
        "retry_after {retry_after}"
    );

    // Another channel has its own bucket.
    ChannelId::new(SYSTEM)
        .send_message(&http, CreateMessage::new().content("fine"))
        .await
        .unwrap();
    let state = sb.state();
    assert_eq!(state.stats.discord.rate_limited, 2);
    assert_eq!(state.discord_messages(ALERTS).len(), 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn discord_global_limit_answers_429_global() {
    let sb = sandbox_with(|o| o.discord_rate.global = Rate::new(50, Duration::from_secs(60))).await;
    let client = reqwest::Client::new();
    let url = format!("{}/channels/{SYSTEM}/messages/1", sb.discord_api_base());
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let r = client
            .get(&url)
            .header("Authorization", format!("Bot {DISCORD_TOKEN}"))
            .send()
            .await
            .unwrap();
        statuses.push((
            r.status().as_u16(),
            r.headers().get("x-ratelimit-global").cloned(),
            r.json::<Value>().await.unwrap(),
        ));
    }
    let limited: Vec<_> = statuses.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(limited.len(), 10, "the ten over the limit are refused");
    let (_, global_header, body) = limited[0];
    assert_eq!(global_header.as_ref().unwrap(), "true");
    assert_eq!(body["global"], true);
    sb.shutdown().await;
}

#[tokio::test]
async fn discord_webhook_posts_into_its_channel() {
    let sb = sandbox().await;
    let http = discord(&sb);
    let (id, token) = (1_234_567_890_123_456_789u64, "T".repeat(68));
    sb.register_webhook(DiscordWebhook::new(id, token.clone(), ALERTS))
        .unwrap();
    let webhook = Webhook::from_url(
        &http,
        &format!("https://discord.com/api/webhooks/{id}/{token}"),
    )
    .await
    .expect("the webhook is found through the proxy");
    let posted = webhook
        .execute(
            &http,
            true,
            ExecuteWebhook::new().content("via webhook").username("ci"),
        )
        .await
        .expect("executed")
        .expect("wait=true returns the message");
    assert_eq!(posted.author.name, "ci");
    assert_eq!(posted.webhook_id.map(|w| w.get()), Some(id));
    // wait=false answers 204 and still posts.
    let none = http
        .execute_webhook(
            id.into(),
            None,
            &token,
            false,
            vec![],
            &json!({"content": "raw"}),
        )
        .await
        .expect("executed");
    assert!(none.is_none());
    let bad = http
        .execute_webhook(
            id.into(),
            None,
            "wrong",
            true,
            vec![],
            &json!({"content": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(discord_error(&bad).1, 50027);

    let state = sb.state();
    let contents: Vec<&str> = state
        .discord_messages(ALERTS)
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(contents, ["via webhook", "raw"]);
    assert!(
        state
            .recent_requests
            .iter()
            .all(|r| !r.path.contains(&token)),
        "webhook tokens are redacted"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn discord_nonce_makes_a_retry_after_a_lost_response_safe() {
    let sb = sandbox().await;
    let http = discord(&sb);
    let send = || {
        ChannelId::new(SYSTEM).send_message(
            &http,
            CreateMessage::new()
                .content("exactly once")
                .nonce(Nonce::String("evt_1".into()))
                .enforce_nonce(true),
        )
    };
    sb.inject(Fault::LostResponses {
        platform: Platform::Discord,
        count: 1,
        delay_ms: 10,
    });
    let lost = send().await.unwrap_err();
    assert_eq!(discord_error(&lost).0, 504);
    let retried = send().await.expect("the retry succeeds");
    let again = send().await.expect("and again");
    assert_eq!(retried.id, again.id);
    let state = sb.state();
    assert_eq!(
        state.discord_messages(SYSTEM).len(),
        1,
        "posted once despite three attempts"
    );
    assert_eq!(state.discord_messages(SYSTEM)[0].id, retried.id.get());
    assert_eq!(state.stats.discord.faults_served, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn discord_faults_are_served_then_service_is_normal_again() {
    let sb = sandbox().await;
    let http = discord(&sb);
    sb.inject(Fault::ServerErrors {
        platform: Platform::Discord,
        count: 2,
        status: 503,
    });
    sb.inject(Fault::RateLimitStorm {
        platform: Platform::Discord,
        count: 1,
        retry_after_ms: 1500,
    });
    let send = || ChannelId::new(SYSTEM).send_message(&http, CreateMessage::new().content("hello"));
    assert_eq!(discord_error(&send().await.unwrap_err()).0, 503);
    assert_eq!(discord_error(&send().await.unwrap_err()).0, 503);
    assert_eq!(
        discord_error(&send().await.unwrap_err()),
        (429, 0, "You are being rate limited.".to_owned())
    );
    send().await.expect("normal again");
    let stats = sb.state().stats.discord;
    assert_eq!(
        (stats.faults_served, stats.rate_limited, stats.accepted),
        (3, 1, 1)
    );
    assert_eq!(sb.state().discord_messages(SYSTEM).len(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn telegram_prompt_press_answer_and_edit_with_teloxide() {
    let sb = sandbox().await;
    let bot = telegram(&sb);
    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.id.0, 123_456);
    let keyboard = InlineKeyboardMarkup::new(vec![vec![
        InlineKeyboardButton::callback("Approve", "apr:1:yes"),
        InlineKeyboardButton::callback("Deny", "apr:1:no"),
    ]]);
    let prompt = bot
        .send_message(
            ChatId(OPERATOR),
            "<b>Deploy web-1?</b> risk 75 &amp; rising",
        )
        .parse_mode(ParseMode::Html)
        .reply_markup(keyboard)
        .await
        .expect("sent");
    assert_eq!(prompt.text(), Some("Deploy web-1? risk 75 & rising"));

    let queued = sb
        .telegram_user_action(TelegramUserAction::PressButton {
            chat_id: OPERATOR,
            message_id: prompt.id.0,
            from: TelegramUser::new(777, "Ana"),
            callback_data: "apr:1:yes".into(),
        })
        .unwrap();
    let updates = bot.get_updates().timeout(5).await.expect("getUpdates");
    assert_eq!(updates.len(), 1);
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else {
        panic!("a callback query: {:?}", updates[0])
    };
    assert_eq!(query.data.as_deref(), Some("apr:1:yes"));
    assert_eq!(query.from.id.0, 777);
    assert_eq!(Some(query.id.0.clone()), queued.callback_query_id);
    assert_eq!(query.regular_message().map(|m| m.id), Some(prompt.id));

    bot.answer_callback_query(query.id.clone())
        .text("Approved")
        .await
        .expect("answered");
    let twice = bot
        .answer_callback_query(query.id.clone())
        .await
        .unwrap_err();
    assert!(matches!(twice, RequestError::Api(_)), "{twice:?}");
    bot.edit_message_text(ChatId(OPERATOR), prompt.id, "Approved by Ana")
        .await
        .expect("edited");
    let same = bot
        .edit_message_text(ChatId(OPERATOR), prompt.id, "Approved by Ana")
        .await
        .unwrap_err();
    assert!(
        matches!(same, RequestError::Api(ApiError::MessageNotModified)),
        "{same:?}"
    );

    // The offset confirms the update: it is not delivered again.
    let next = bot
        .get_updates()
        .offset(updates[0].id.as_offset())
        .timeout(0)
        .await
        .unwrap();
    assert!(next.is_empty());

    let state = sb.state();
    let message = &state.telegram_messages(OPERATOR)[0];
    assert_eq!(message.text, "Approved by Ana");
    assert!(message.edited);
    assert!(
        message.reply_markup.is_none(),
        "an edit without reply_markup removes the buttons, as on Telegram"
    );
    assert_eq!(state.telegram.callback_answers.len(), 1);
    assert_eq!(
        state.telegram.callback_answers[0].text.as_deref(),
        Some("Approved")
    );
    assert_eq!(state.telegram.pending_updates, 0);
    sb.shutdown().await;
}

#[tokio::test]
async fn telegram_refuses_malformed_html_and_long_callback_data() {
    let sb = sandbox().await;
    let bot = telegram(&sb);
    let html = bot
        .send_message(ChatId(OPERATOR), "<b>unclosed")
        .parse_mode(ParseMode::Html)
        .await
        .unwrap_err();
    match html {
        RequestError::Api(ApiError::CantParseEntities(e)) => {
            assert!(
                e.contains("Can't find end tag corresponding to start tag \"b\""),
                "{e}"
            )
        }
        other => panic!("expected can't parse entities, got {other:?}"),
    }
    let keyboard = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        "A",
        "x".repeat(65),
    )]]);
    let data = bot
        .send_message(ChatId(OPERATOR), "pick")
        .reply_markup(keyboard)
        .await
        .unwrap_err();
    assert!(
        matches!(data, RequestError::Api(ApiError::ButtonDataInvalid)),
        "{data:?}"
    );
    let unknown_chat = bot.send_message(ChatId(5), "hi").await.unwrap_err();
    assert!(
        matches!(unknown_chat, RequestError::Api(ApiError::ChatNotFound)),
        "{unknown_chat:?}"
    );
    let commands = bot
        .set_my_commands(vec![teloxide::types::BotCommand::new("Bad-Command", "no")])
        .await
        .unwrap_err();
    assert!(matches!(commands, RequestError::Api(_)), "{commands:?}");
    bot.set_my_commands(vec![teloxide::types::BotCommand::new(
        "status",
        "Fleet status",
    )])
    .await
    .expect("valid");

    let state = sb.state();
    assert!(state.telegram_messages(OPERATOR).is_empty());
    assert_eq!(state.stats.telegram.rejected, 4);
    assert_eq!(state.telegram.commands[0].command, "status");
    sb.shutdown().await;
}

#[tokio::test]
async fn telegram_rate_limits_answer_retry_after() {
    let sb =
        sandbox_with(|o| o.telegram_rate.per_chat = Rate::new(1, Duration::from_secs(60))).await;
    let bot = telegram(&sb);
    bot.send_message(ChatId(OPERATOR), "first")
        .await
        .expect("first");
    let second = bot
        .send_message(ChatId(OPERATOR), "second")
        .await
        .unwrap_err();
    assert!(
        matches!(second, RequestError::RetryAfter(s) if s.seconds() >= 1),
        "{second:?}"
    );
    // Another chat is not affected by the per-chat limit.
    bot.send_message(ChatId(GROUP), "group")
        .await
        .expect("another chat");

    sb.inject(Fault::RateLimitStorm {
        platform: Platform::Telegram,
        count: 1,
        retry_after_ms: 3000,
    });
    let storm = bot.send_message(ChatId(GROUP), "storm").await.unwrap_err();
    assert!(
        matches!(storm, RequestError::RetryAfter(s) if s.seconds() == 3),
        "{storm:?}"
    );

    let raw = reqwest::Client::new()
        .post(format!(
            "{}/bot{TELEGRAM_TOKEN}/sendMessage",
            sb.telegram_api_base()
        ))
        .json(&json!({"chat_id": OPERATOR, "text": "third"}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["error_code"], 429);
    let n = body["parameters"]["retry_after"].as_u64().unwrap();
    assert_eq!(
        body["description"],
        format!("Too Many Requests: retry after {n}")
    );

    let stats = sb.state().stats.telegram;
    assert_eq!(
        (stats.rate_limited, stats.faults_served, stats.accepted),
        (3, 1, 2)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn telegram_long_poll_wakes_on_a_message_and_a_newer_poller_wins() {
    let sb = sandbox().await;
    let bot = telegram(&sb);
    let poll = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(10).await }
    });
    until(&sb, |s| s.telegram.waiting_polls == 1).await;
    sb.telegram_user_action(TelegramUserAction::Message {
        chat_id: OPERATOR,
        from: TelegramUser::new(777, "Ana"),
        text: "/status".into(),
    })
    .unwrap();
    let updates = poll
        .await
        .unwrap()
        .expect("the long poll returns the message");
    let UpdateKind::Message(m) = &updates[0].kind else {
        panic!("a message")
    };
    assert_eq!(m.text(), Some("/status"));
    assert_eq!(m.from.as_ref().map(|u| u.id.0), Some(777));

    // Two pollers of one token: the older is terminated with 409, as on Telegram.
    let offset = updates[0].id.as_offset();
    let older = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().offset(offset).timeout(10).await }
    });
    until(&sb, |s| s.telegram.waiting_polls == 1).await;
    let newer = bot
        .get_updates()
        .offset(offset)
        .timeout(0)
        .await
        .expect("the newer poll");
    assert!(newer.is_empty());
    let older = older.await.unwrap().unwrap_err();
    assert!(
        matches!(
            older,
            RequestError::Api(ApiError::TerminatedByOtherGetUpdates)
        ),
        "{older:?}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn telegram_error_shapes_and_case_insensitive_methods() {
    let sb = sandbox().await;
    let client = reqwest::Client::new();
    let base = sb.telegram_api_base();
    let call = |path: String, body: Value| {
        let client = client.clone();
        async move {
            let r = client.post(path).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Telegram serves no URL for what is not shaped like a token (404), and
    // refuses a well-formed token it does not know (401).
    let (status, body) = call(format!("{base}/botnot-a-token/getMe"), json!({})).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"ok": false, "error_code": 404, "description": "Not Found"})
        )
    );
    let (status, body) = call(format!("{base}/bot123456:UNKNOWN-token/getMe"), json!({})).await;
    assert_eq!(
        (status, body),
        (
            401,
            json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
        )
    );
    let (status, body) = call(
        format!("{base}/bot{TELEGRAM_TOKEN}/noSuchMethod"),
        json!({}),
    )
    .await;
    assert_eq!((status, body["error_code"].clone()), (404, json!(404)));
    let (status, body) = call(
        format!("{base}/bot{TELEGRAM_TOKEN}/SENDMESSAGE"),
        json!({"chat_id": OPERATOR}),
    )
    .await;
    assert_eq!(
        (status, body["description"].clone()),
        (400, json!("Bad Request: message text is empty"))
    );
    let (status, body) = call(
        format!("{base}/bot{TELEGRAM_TOKEN}/sendmessage"),
        json!({"text": "hi"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].clone()),
        (400, json!("Bad Request: chat_id is empty"))
    );

    sb.inject(Fault::ServerErrors {
        platform: Platform::Telegram,
        count: 1,
        status: 502,
    });
    let (status, body) = call(
        format!("{base}/bot{TELEGRAM_TOKEN}/sendMessage"),
        json!({"chat_id": OPERATOR, "text": "hi"}),
    )
    .await;
    assert_eq!(
        (status, body["ok"].clone(), body["error_code"].clone()),
        (502, json!(false), json!(502))
    );
    // Form encoding and @username work too, as on the real API.
    let r = client
        .post(format!("{base}/bot{TELEGRAM_TOKEN}/sendMessage"))
        .form(&[("chat_id", "@operator"), ("text", "via form")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sb.state().telegram_messages(OPERATOR)[0].text, "via form");
    sb.shutdown().await;
}

#[tokio::test]
async fn control_endpoints_work_over_http() {
    let sb = sandbox().await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", sb.addr());
    let r = client
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"kind": "server_errors", "platform": "discord", "count": 1, "status": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let http = discord(&sb);
    let err = ChannelId::new(SYSTEM)
        .send_message(&http, CreateMessage::new().content("x"))
        .await
        .unwrap_err();
    assert_eq!(discord_error(&err).0, 500);

    let bot = telegram(&sb);
    let sent = bot
        .send_message(ChatId(OPERATOR), "choose")
        .reply_markup(InlineKeyboardMarkup::new(vec![vec![
            InlineKeyboardButton::callback("Go", "go"),
        ]]))
        .await
        .unwrap();
    let r = client
        .post(format!("{base}/_sandbox/telegram/updates"))
        .json(
            &json!({"kind": "press_button", "chat_id": OPERATOR, "message_id": sent.id.0,
                      "from": {"id": 9, "first_name": "Bo"}, "callback_data": "nope"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "a button that is not on the message cannot be pressed"
    );
    let r = client
        .post(format!("{base}/_sandbox/telegram/updates"))
        .json(
            &json!({"kind": "press_button", "chat_id": OPERATOR, "message_id": sent.id.0,
                      "from": {"id": 9, "first_name": "Bo"}, "callback_data": "go"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/_sandbox/discord/webhooks"))
        .json(&json!({"id": 55, "token": "tok", "channel_id": SYSTEM}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let state: sandbox::SandboxState = client
        .get(format!("{base}/_sandbox/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state.stats.discord.faults_served, 1);
    assert_eq!(state.telegram.pending_updates, 1);
    assert_eq!(state.telegram_messages(OPERATOR).len(), 1);
    assert_eq!(state.discord.webhooks[0].id, 55);

    let r = client
        .post(format!("{base}/_sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let state = sb.state();
    assert!(state.telegram_messages(OPERATOR).is_empty());
    assert_eq!(state.stats, Default::default());
    assert_eq!(state.telegram.pending_updates, 0);
    sb.shutdown().await;
}
