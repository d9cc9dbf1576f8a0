//! The demo's conversation: the operator mentions `tech-lead` in #chat and
//! the answer streams into the thread it opens (from the sandbox's
//! OpenAI-compatible stand-in), edited as it grows; the web view shows it.

use std::time::Duration;

use switchyard_sandbox::{DiscordUserMessage, SandboxHandle};

use super::wait_until;
use crate::config::Config;

/// `tech-lead`'s bot user id: the number its demo token starts with.
const TECH_LEAD_BOT: u64 = 100_000_000_000_000_002;
const QUESTION: &str =
    "what are the fleet's agents doing? [[sandbox:long=600]] [[sandbox:chunk_ms=30]]";

pub(super) async fn talk(config: &Config, sandbox: &SandboxHandle) -> anyhow::Result<()> {
    println!("\ntalking to tech-lead: a mention in #chat");
    let discord = config.discord.as_ref();
    let (Some(chat), Some(operator)) = (
        discord.and_then(|d| d.channels.get("chat")).copied(),
        discord.and_then(|d| {
            d.access.operate.iter().find_map(|r| match r {
                switchyard_commands::AccessRule::User(id) => Some(*id),
                _ => None,
            })
        }),
    ) else {
        println!("  skipped: the fleet has no #chat channel or no operator");
        return Ok(());
    };
    let asked = sandbox.discord_user_message(DiscordUserMessage {
        user_id: operator,
        username: Some("operator".into()),
        channel_id: chat,
        content: format!("<@{TECH_LEAD_BOT}> {QUESTION}"),
        mentions: vec![TECH_LEAD_BOT],
        ..DiscordUserMessage::default()
    })?;
    // The thread started on the question has the question's id.
    let answer = wait_until(Duration::from_secs(20), "tech-lead's answer", || {
        let state = sandbox.state();
        let thread = state.discord.threads.iter().find(|t| t.id == asked)?;
        let m = thread.messages.first()?;
        (m.content.chars().count() >= 600).then(|| (thread.name.clone(), m.clone()))
    })
    .await?;
    let (thread, message) = answer;
    let preview: String = message.content.chars().take(100).collect();
    println!(
        "  answered in the thread {thread:?}, streamed as one message edited in place (edited: {}):",
        message.edited
    );
    println!("    {preview}…");
    Ok(())
}
