//! Messages addressed to the agent: one that @mentions it, replies to one of
//! its messages, or is posted in a thread it owns becomes a `chat` item in its
//! inbox (author, channel, text), and the agent reacts to acknowledge. Every
//! other message is ignored (the seeds' "respond only if mentioned or thread
//! owner").

use chrono::Utc;
use poise::serenity_prelude as serenity;
use serde_json::json;
use serenity::{FullEvent, Message, ReactionType};
use tracing::{info, warn};

use super::commands::{Data, Error};

/// The reaction that says "seen, queued".
pub const ACK_EMOJI: &str = "👀";

pub async fn on_event(
    fw: poise::FrameworkContext<'_, Data, Error>,
    event: &FullEvent,
) -> Result<(), Error> {
    if let FullEvent::Message { new_message } = event {
        let data = fw.user_data().await;
        if let Err(e) = on_message(fw.serenity_context, data, new_message).await {
            warn!(
                message = new_message.id.get(),
                error = format!("{e:#}"),
                "a message addressed to the agent was not queued"
            );
        }
    }
    Ok(())
}

/// Whether the message is for this bot.
pub fn addressed_to(msg: &Message, bot: u64, thread_owner: Option<u64>) -> bool {
    if msg.author.bot {
        return false;
    }
    msg.mentions.iter().any(|u| u.id.get() == bot)
        || msg
            .referenced_message
            .as_ref()
            .is_some_and(|m| m.author.id.get() == bot)
        || thread_owner == Some(bot)
}

fn thread_owner(ctx: &serenity::Context, msg: &Message) -> Option<u64> {
    let guild = ctx.cache.guild(msg.guild_id?)?;
    guild
        .threads
        .iter()
        .find(|t| t.id == msg.channel_id)
        .and_then(|t| t.owner_id)
        .map(|u| u.get())
}

/// The text without the mention of the bot itself.
fn text_of(msg: &Message, bot: u64) -> String {
    msg.content
        .replace(&format!("<@{bot}>"), "")
        .replace(&format!("<@!{bot}>"), "")
        .trim()
        .to_string()
}

async fn on_message(ctx: &serenity::Context, data: &Data, msg: &Message) -> anyhow::Result<()> {
    if !addressed_to(msg, data.bot_user, thread_owner(ctx, msg)) {
        return Ok(());
    }
    let config = data.fleet.config();
    let alias = config.discord.as_ref().and_then(|d| {
        d.channels
            .iter()
            .find(|(_, id)| **id == msg.channel_id.get())
            .map(|(a, _)| a.clone())
    });
    let item = json!({
        "kind": "chat",
        "platform": "discord",
        "author": {
            "id": msg.author.id.get().to_string(),
            "name": msg.author.global_name.clone().unwrap_or_else(|| msg.author.name.clone()),
        },
        "channel": {
            "id": msg.channel_id.get().to_string(),
            "alias": alias,
        },
        "message_id": msg.id.get().to_string(),
        "text": text_of(msg, data.bot_user),
        "received_at": Utc::now().to_rfc3339(),
    });
    let id = format!("chat-discord-{}", msg.id.get());
    crate::coord::drop_item(&config.fleet.workspace, data.fleet.agent(), &id, &item)?;
    info!(
        message = msg.id.get(),
        channel = msg.channel_id.get(),
        "a message for the agent is in its inbox"
    );
    msg.react(&ctx.http, ReactionType::Unicode(ACK_EMOJI.into()))
        .await?;
    Ok(())
}
