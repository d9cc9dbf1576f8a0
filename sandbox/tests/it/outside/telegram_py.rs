//! python-telegram-bot and aiogram against the sandbox's Telegram: one scripted
//! session each (`sandbox/tests/outside/ptb.py`, `aiogram_client.py`), the user's
//! message and button presses played by the test when the script asks for them
//! (`NEED …` on its stdout, `OK` back on its stdin), then the sandbox's state
//! checked for what the script did.
//!
//! Both libraries take a custom API address (ptb's `base_url`, aiogram's
//! `TelegramAPIServer.from_base`). One refusal cannot be seen through aiogram: it
//! checks a token's shape itself, so a malformed token never reaches the
//! sandbox's 404; the aiogram session says so in a `NOTE` line, checked below.

use std::time::Duration;

use switchyard_sandbox::{
    self as sandbox, Fault, Platform, SandboxHandle, SandboxOptions, SandboxState, TelegramLimits,
    TelegramUser, TelegramUserAction,
};

use super::run_session;

const BOT_ID: i64 = 5_550_001;
const CHAT: i64 = 4242;
const USER: i64 = 7;

async fn sandbox(token: &str) -> SandboxHandle {
    sandbox::start(SandboxOptions {
        // Scripts send back to back; the 429 is injected when they ask for it.
        telegram_rate: TelegramLimits::unlimited(),
        telegram_chats: vec![(CHAT, "operator".into())],
        telegram_tokens: vec![token.into()],
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

/// Plays what a `NEED …` line asks for; the answer to write back.
fn play(sb: &SandboxHandle, line: &str) -> Option<String> {
    let rest = line.strip_prefix("NEED ")?;
    let (what, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let user = || TelegramUser::new(USER, "Ana");
    match what {
        "message" => {
            sb.telegram_user_action(TelegramUserAction::Message {
                chat_id: CHAT,
                from: user(),
                text: args.to_owned(),
            })
            .expect("the chat exists");
        }
        "press" => {
            let (message_id, data) = args.split_once(' ').expect("press <message id> <data>");
            sb.telegram_user_action(TelegramUserAction::PressButton {
                chat_id: CHAT,
                message_id: message_id.parse().expect("a message id"),
                from: user(),
                callback_data: data.to_owned(),
            })
            .expect("the button exists");
        }
        "429" => sb.inject(Fault::RateLimitStorm {
            platform: Platform::Telegram,
            count: 1,
            retry_after_ms: args.parse::<u64>().expect("seconds") * 1000,
        }),
        other => panic!("the script asks for {other:?}, which the test does not play"),
    }
    Some("OK".into())
}

async fn session(script: &str) -> Option<(String, SandboxState)> {
    let token = format!("{BOT_ID}:outside-client-secret");
    let sb = sandbox(&token).await;
    let env = [
        ("TG_API", sb.telegram_api_base()),
        ("TG_TOKEN", token.clone()),
        ("TG_BOT_ID", BOT_ID.to_string()),
        ("TG_CHAT", CHAT.to_string()),
    ];
    let stdout = run_session(script, &env, Duration::from_secs(90), |line| {
        play(&sb, line)
    })
    .await;
    let state = sb.state();
    sb.shutdown().await;
    Some((stdout?, state))
}

/// What both sessions leave behind in the sandbox.
fn check_common(state: &SandboxState, approve: &str) {
    let chat = state
        .telegram
        .chats
        .iter()
        .find(|c| c.id == CHAT)
        .expect("the chat");
    let texts: Vec<&str> = chat.messages.iter().map(|m| m.text.as_str()).collect();
    let edited = chat
        .messages
        .iter()
        .find(|m| m.text == "edited")
        .expect("the edited message");
    assert_eq!(
        (edited.edits, edited.parse_mode.as_deref()),
        (1, Some("HTML")),
        "one edit: the repeated one was not modified"
    );
    assert!(
        texts.contains(&"Deploy web-1 done."),
        "MarkdownV2 stored parsed: {texts:?}"
    );
    let ask = chat
        .messages
        .iter()
        .find(|m| m.reply_markup.is_some())
        .expect("the keyboard message");
    assert!(
        ask.reply_markup
            .as_ref()
            .unwrap()
            .to_string()
            .contains(approve),
        "{:?}",
        ask.reply_markup
    );
    // The 429 stopped "too fast"; the retry went through.
    assert!(!texts.contains(&"too fast"), "{texts:?}");
    assert!(texts.contains(&"after waiting"), "{texts:?}");
    assert_eq!(
        chat.chat_actions, 1,
        "typing once; the unknown action refused"
    );
    let answers: Vec<Option<&str>> = state
        .telegram
        .callback_answers
        .iter()
        .map(|a| a.text.as_deref())
        .collect();
    assert_eq!(answers, [Some("Approved")]);
    // The press made while callback_query was left out was dropped, not queued.
    assert_eq!(state.telegram.dropped_updates, 1);
    assert_eq!(state.stats.telegram.faults_served, 1, "the one 429");
}

#[tokio::test]
async fn python_telegram_bot_runs_a_session_against_the_sandbox() {
    let Some((stdout, state)) = session("ptb.py").await else {
        return;
    };
    assert!(stdout.lines().any(|l| l == "DONE"), "{stdout}");
    check_common(&state, "approve:1");
    assert_eq!(
        state.telegram.allowed_updates[&BOT_ID],
        ["message", "callback_query"],
        "ptb's last getUpdates asked for both"
    );
    // The unknown token (401) and the malformed one (404), both InvalidToken.
    assert_eq!(state.stats.telegram.unauthorized, 2);
}

#[tokio::test]
async fn aiogram_runs_a_session_against_the_sandbox() {
    let Some((stdout, state)) = session("aiogram_client.py").await else {
        return;
    };
    assert!(stdout.lines().any(|l| l == "DONE"), "{stdout}");
    assert!(
        stdout.contains("NOTE a malformed token is refused by aiogram"),
        "aiogram cannot send a malformed token: said explicitly\n{stdout}"
    );
    check_common(&state, "approve:2");
    assert_eq!(state.telegram.allowed_updates[&BOT_ID], ["message"]);
    // Only the unknown token reached the sandbox.
    assert_eq!(state.stats.telegram.unauthorized, 1);
}
