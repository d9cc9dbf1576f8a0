//! Messages addressed to the agent: one that @mentions it, replies to one of
//! its messages, or is posted in a thread it owns (one it opened for a
//! conversation, or one the cache says it owns) is handed to the neutral
//! conversation handler with its caller, and the agent reacts to
//! acknowledge. Every other message is ignored (the seeds' "respond only if
//! mentioned or thread owner"); so is every message when the agent has no
//! responder.

use chrono::Utc;
use poise::serenity_prelude as serenity;
use serenity::{FullEvent, Message, ReactionType};
use switchyard_commands::Caller;
use tracing::{info, warn};

use super::commands::{Data, Error};
use crate::conversations::{Accepted, Author, FileSource, IncomingFile, Place, TurnRequest};
use crate::delivery::ChannelBucket;

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
                discord_message = new_message.id.get(),
                error = format!("{e:#}"),
                "a message addressed to the agent was not taken"
            );
        }
    }
    Ok(())
}

/// Whether the message is for this bot. Its own messages never are; other
/// bots' are (the fleet's bots may ask each other; the bot-pair guard
/// bounds how much).
pub fn addressed_to(msg: &Message, bot: u64, owns_thread: bool) -> bool {
    if msg.author.id.get() == bot {
        return false;
    }
    msg.mentions.iter().any(|u| u.id.get() == bot)
        || msg
            .referenced_message
            .as_ref()
            .is_some_and(|m| m.author.id.get() == bot)
        || owns_thread
}

/// The thread the message was posted in, as the cache knows it: `None`
/// when it is not a thread; `Some(owner)` when it is.
fn cached_thread(ctx: &serenity::Context, msg: &Message) -> Option<Option<u64>> {
    let guild = ctx.cache.guild(msg.guild_id?)?;
    guild
        .threads
        .iter()
        .find(|t| t.id == msg.channel_id)
        .map(|t| t.owner_id.map(|u| u.get()))
}

/// The text without the mention of the bot itself.
fn text_of(msg: &Message, bot: u64) -> String {
    msg.content
        .replace(&format!("<@{bot}>"), "")
        .replace(&format!("<@!{bot}>"), "")
        .trim()
        .to_string()
}

/// The 👀 reaction, in the channel's reaction bucket (Discord refuses a
/// second reaction in a channel within ~250 ms: a burst of mentions would
/// otherwise be answered with 429s).
async fn acknowledge(ctx: &serenity::Context, data: &Data, msg: &Message) -> anyhow::Result<()> {
    let channel = msg.channel_id.get();
    if let Some(limits) = &data.limits {
        limits.before_reaction(channel).await;
    }
    let reacted = msg
        .react(&ctx.http, ReactionType::Unicode(ACK_EMOJI.into()))
        .await;
    if let (Err(e), Some(limits)) = (&reacted, &data.limits) {
        limits.after_error(channel, ChannelBucket::Reaction, e);
    }
    reacted?;
    Ok(())
}

async fn on_message(ctx: &serenity::Context, data: &Data, msg: &Message) -> anyhow::Result<()> {
    let Some(conversations) = &data.conversations else {
        return Ok(());
    };
    let channel = msg.channel_id.get();
    let ours = conversations.owns_thread(channel);
    let thread = cached_thread(ctx, msg);
    let owner = ours || thread == Some(Some(data.bot_user));
    if !addressed_to(msg, data.bot_user, owner) {
        return Ok(());
    }
    let caller = Caller {
        platform: switchyard_routing::Platform::Discord,
        user_id: msg.author.id.get(),
        display_name: msg
            .author
            .global_name
            .clone()
            .unwrap_or_else(|| msg.author.name.clone()),
        roles: msg
            .member
            .as_ref()
            .map(|m| m.roles.iter().map(|r| r.get()).collect())
            .unwrap_or_default(),
    };
    let request = TurnRequest {
        place: Place::discord(channel),
        message_id: msg.id.get().to_string(),
        author: Author {
            id: caller.user_id.to_string(),
            name: caller.display_name.clone(),
            is_bot: msg.author.bot,
        },
        text: text_of(msg, data.bot_user),
        // A thread (ours or one the cache knows) goes on; a channel opens one.
        opens_thread: !owner && thread.is_none(),
        received_at: Utc::now(),
        files: msg
            .attachments
            .iter()
            .map(|a| IncomingFile {
                name: a.filename.clone(),
                content_type: a.content_type.clone().unwrap_or_default(),
                size: u64::from(a.size),
                source: FileSource::Url(a.url.clone()),
            })
            .collect(),
    };
    match conversations.accept(request, &caller).await? {
        Accepted::Queued(turn) => {
            info!(turn = %turn, discord_channel = channel, "a message for the agent is a turn");
            acknowledge(ctx, data, msg).await?;
        }
        Accepted::Duplicate(turn) => {
            info!(turn = %turn, "a message seen before; not answered again")
        }
        Accepted::NotPermitted => {
            info!(
                discord_user = caller.user_id,
                "a message from someone who may not talk to the agents; ignored"
            );
        }
    }
    Ok(())
}
