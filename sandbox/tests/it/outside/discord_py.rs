//! discord.py against the sandbox's Discord: one scripted session
//! (`sandbox/tests/outside/discord_py.py`): a refused token at login, then log
//! in over REST and the gateway (READY, `GUILD_CREATE`), send, edit, react
//! (and the three refusals of a reaction), a thread, a delete, guild commands,
//! an interaction answered (`?with_response`), a user's mention, and a 429
//! waited out. The user's command and message are played by the test when the
//! script asks (`NEED …`), then the sandbox's state is checked for what the
//! script did.
//!
//! discord.py takes no API address: the script sets its REST base and gateway
//! URL through the library's class attributes (it says so at its top). It asks
//! for a compressed gateway (`compress=zlib-stream`); the sandbox answers in
//! plain text frames, which discord.py also reads.

use std::time::Duration;

use switchyard_sandbox::{
    self as sandbox, DiscordLimits, DiscordUserCommand, DiscordUserMessage, Fault, Platform,
    SandboxHandle, SandboxOptions, SandboxState,
};

use super::run_session;

/// "5550002" in base64: the bot's user id, as in a real token's first part.
const TOKEN: &str = "NTU1MDAwMg.outside.discord-client";
const BOT_ID: u64 = 5_550_002;
const CHANNEL: u64 = 1_400_000_000_000_000_001;
const GUILD: u64 = 900_000_000_000_000_000;
const USER: u64 = 77;

async fn sandbox() -> SandboxHandle {
    sandbox::start(SandboxOptions {
        discord_channels: vec![(CHANNEL, "general".into())],
        discord_tokens: vec![TOKEN.into()],
        // The documented limits: discord.py reads the buckets and paces itself.
        discord_rate: DiscordLimits::default(),
        ..SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

/// Plays what a `NEED …` line asks for; the answer to write back.
fn play(sb: &SandboxHandle, line: &str) -> Option<String> {
    let rest = line.strip_prefix("NEED ")?;
    let words: Vec<&str> = rest.split(' ').collect();
    match words.as_slice() {
        ["command", name] => {
            sb.discord_run_command(DiscordUserCommand {
                user_id: USER,
                username: Some("ana".into()),
                command: (*name).to_owned(),
                channel_id: Some(CHANNEL),
                ..DiscordUserCommand::default()
            })
            .expect("the bot is connected");
        }
        ["message", bot, text @ ..] => {
            let bot: u64 = bot.parse().expect("the bot's id");
            sb.discord_user_message(DiscordUserMessage {
                user_id: USER,
                username: Some("ana".into()),
                channel_id: CHANNEL,
                content: format!("<@{bot}> {}", text.join(" ")),
                mentions: vec![bot],
                ..DiscordUserMessage::default()
            })
            .expect("the bot is connected");
        }
        ["429", secs] => sb.inject(Fault::RateLimitStorm {
            platform: Platform::Discord,
            count: 1,
            retry_after_ms: secs.parse::<u64>().expect("seconds") * 1000,
        }),
        other => panic!("the script asks for {other:?}, which the test does not play"),
    }
    Some("OK".into())
}

async fn session() -> Option<(String, SandboxState)> {
    let sb = sandbox().await;
    let env = [
        ("DC_API", sb.discord_api_base()),
        ("DC_GATEWAY", format!("ws://{}/gateway", sb.addr())),
        ("DC_TOKEN", TOKEN.to_owned()),
        ("DC_GUILD", GUILD.to_string()),
        ("DC_CHANNEL", CHANNEL.to_string()),
    ];
    let stdout = run_session("discord_py.py", &env, Duration::from_secs(120), |line| {
        play(&sb, line)
    })
    .await;
    let state = sb.state();
    sb.shutdown().await;
    Some((stdout?, state))
}

#[tokio::test]
async fn discord_py_runs_a_session_against_the_sandbox() {
    let Some((stdout, state)) = session().await else {
        return;
    };
    assert!(stdout.lines().any(|l| l == "DONE"), "{stdout}");
    let channel = state
        .discord
        .channels
        .iter()
        .find(|c| c.id == CHANNEL)
        .expect("the channel");
    let texts: Vec<&str> = channel
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert!(texts.contains(&"edited by discord.py"), "{texts:?}");
    assert!(texts.contains(&"after waiting"), "{texts:?}");
    assert!(
        !texts.contains(&"to be deleted"),
        "the deleted message is gone: {texts:?}"
    );
    let thread = state
        .discord
        .threads
        .iter()
        .find(|t| t.name == "discord.py thread")
        .expect("the thread");
    assert_eq!(thread.owner_id, BOT_ID);
    assert_eq!(thread.messages.len(), 1);
    // One reaction accepted; the unknown emoji, message and channel were not.
    let reactions: Vec<(&str, u64)> = state
        .gateway
        .reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.user_id))
        .collect();
    assert_eq!(reactions, [("👀", BOT_ID)]);
    let registered = &state.gateway.registered;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].commands[0]["name"], "ping");
    let interaction = &state.gateway.interactions[0];
    let callback = interaction
        .callback()
        .expect("the interaction was answered");
    assert_eq!(
        callback.status, 200,
        "with_response: 200 and the callback object"
    );
    assert_eq!(interaction.text(), "pong");
    assert_eq!(state.stats.discord.faults_served, 1, "the one 429");
    // The garbage token at login, and nothing else.
    assert_eq!(state.stats.discord.unauthorized, 1);
}
