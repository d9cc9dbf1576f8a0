//! Discord's channel and guild objects as the sandbox shows them, and the
//! channel routes that are not message writes: the typing indicator
//! (`POST /channels/{id}/typing`), `GET /channels/{id}` and
//! `GET /channels/{id}/messages`. Also the messages the sandbox plays for a
//! user, stored in their channel so that a bot can start a thread on one or
//! read it back, as on Discord.
//!
//! The shapes follow the OpenAPI description (`GuildChannelResponse`,
//! `ThreadResponse`, `GuildResponse`, `GuildRoleResponse`,
//! `GuildMemberResponse`) plus the documented extra fields of `GUILD_CREATE`
//! (`joined_at`, `large`, `member_count`, `members`, `channels`, `threads`, …),
//! and include every field serenity 0.12's `Guild` and `GuildChannel` require.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{
    Channel, DiscordMessage, PUBLIC_THREAD, Reply, SANDBOX_GUILD, World, invalid_form_body,
    message_json, plain_error, timestamp_now, too_many,
};
use crate::discord_schema::Errors;
use crate::limits::WindowStatus;

/// A text channel's type.
const GUILD_TEXT: u64 = 0;
/// Who owns the sandbox's guild: a person, not one of the bots.
const GUILD_OWNER: u64 = 900_000_000_000_000_001;
/// `joined_at` of every member: the bots joined long ago.
const JOINED_AT: &str = "2017-03-13T19:19:14.040000+00:00";
/// What `@everyone` may do: ADMINISTRATOR (1 << 3) with the usual text
/// permissions, so that a client computing permissions from its cache (serenity
/// does before some calls) finds the bots allowed, as an invited bot with the
/// right role would be.
const EVERYONE_PERMISSIONS: u64 = (1 << 3) | (1 << 10) | (1 << 11) | (1 << 35) | (1 << 38);
/// `GET /channels/{id}/messages`: the documented default and maximum `limit`.
const LIST_DEFAULT: usize = 50;
const LIST_MAX: u64 = 100;

impl World {
    /// The channel object an interaction carries as `channel` (the
    /// channel's or thread's object, with the permissions the bot has there).
    pub(crate) fn interaction_channel(&self, id: u64) -> Option<Value> {
        let mut channel = channel_json(id, self.channels.get(&id)?);
        channel["permissions"] = json!(EVERYONE_PERMISSIONS.to_string());
        Some(channel)
    }
}

/// The channel object of a text channel or of a thread (`ThreadResponse`).
pub(super) fn channel_json(id: u64, c: &Channel) -> Value {
    let last_message_id = c.messages.back().map(|m| m.id.to_string());
    match &c.thread {
        Some(t) => json!({
            "id": id.to_string(),
            "type": PUBLIC_THREAD,
            "guild_id": SANDBOX_GUILD.to_string(),
            "parent_id": t.parent_id.to_string(),
            "owner_id": t.owner_id.to_string(),
            "name": c.name,
            "last_message_id": last_message_id,
            "rate_limit_per_user": 0,
            "message_count": c.messages.len(),
            "member_count": 1,
            "total_message_sent": c.messages.len(),
            "flags": 0,
            "thread_metadata": {
                "archived": false,
                "auto_archive_duration": t.auto_archive_duration,
                "archive_timestamp": t.created,
                "create_timestamp": t.created,
                "locked": false,
            },
        }),
        None => json!({
            "id": id.to_string(),
            "type": GUILD_TEXT,
            "guild_id": SANDBOX_GUILD.to_string(),
            "name": c.name,
            "position": 0,
            "parent_id": null,
            "topic": null,
            "nsfw": false,
            "last_message_id": last_message_id,
            "rate_limit_per_user": 0,
            "permission_overwrites": [],
            "flags": 0,
        }),
    }
}

/// The `GUILD_CREATE` payload for `bot`: the sandbox's guild with its text
/// channels and active threads, the bot as a member, `@everyone` as the one role.
pub(crate) fn guild_create(world: &World, bot: u64, bot_name: &str) -> Value {
    let (threads, channels): (Vec<_>, Vec<_>) = world
        .channels
        .iter()
        .map(|(id, c)| (c.thread.is_some(), channel_json(*id, c)))
        .partition(|(thread, _)| *thread);
    let channels: Vec<Value> = channels.into_iter().map(|(_, c)| c).collect();
    let threads: Vec<Value> = threads.into_iter().map(|(_, t)| t).collect();
    let everyone = json!({
        "id": SANDBOX_GUILD.to_string(),
        "name": "@everyone",
        "permissions": EVERYONE_PERMISSIONS.to_string(),
        "position": 0,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "managed": false,
        "mentionable": false,
        "icon": null,
        "unicode_emoji": null,
        "flags": 0,
    });
    let member = json!({
        "user": {
            "id": bot.to_string(), "username": bot_name, "discriminator": "0",
            "global_name": null, "avatar": null, "bot": true, "public_flags": 0,
            "flags": 0, "primary_guild": null,
        },
        "roles": [],
        "joined_at": JOINED_AT,
        "nick": null,
        "avatar": null,
        "banner": null,
        "premium_since": null,
        "communication_disabled_until": null,
        "pending": false,
        "flags": 0,
        "mute": false,
        "deaf": false,
    });
    let mut guild = json!({
        "id": SANDBOX_GUILD.to_string(),
        "name": "switchyard sandbox",
        "icon": null,
        "description": null,
        "home_header": null,
        "splash": null,
        "discovery_splash": null,
        "features": [],
        "banner": null,
        "owner_id": GUILD_OWNER.to_string(),
        "application_id": null,
        "region": "deprecated",
        "afk_channel_id": null,
        "afk_timeout": 300,
        "system_channel_id": null,
        "system_channel_flags": 0,
        "widget_enabled": false,
        "widget_channel_id": null,
        "verification_level": 0,
        "roles": [everyone],
        "default_message_notifications": 1,
        "mfa_level": 0,
        "explicit_content_filter": 0,
        "max_presences": null,
        "max_members": 250_000,
        "max_stage_video_channel_users": 50,
        "max_video_channel_users": 25,
        "vanity_url_code": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "rules_channel_id": null,
        "safety_alerts_channel_id": null,
        "public_updates_channel_id": null,
        "premium_progress_bar_enabled": false,
        "nsfw": false,
        "nsfw_level": 0,
        "emojis": [],
        "stickers": [],
        "incidents_data": null,
    });
    // The documented extra fields of GUILD_CREATE (a second literal: one would
    // exceed the json! macro's recursion limit).
    let extra = json!({
        "joined_at": JOINED_AT,
        "large": false,
        "unavailable": false,
        "member_count": 2,
        "voice_states": [],
        "members": [member],
        "channels": channels,
        "threads": threads,
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    });
    if let (Some(guild), Value::Object(extra)) = (guild.as_object_mut(), extra) {
        guild.extend(extra);
    }
    guild
}

/// `POST /channels/{id}/typing`: 204, counted per channel. Discord does not
/// document this route's bucket; the sandbox gives it a per-channel bucket of its
/// own, as it does every channel write ([`crate::DiscordLimits::channel_typing`]).
pub(super) fn typing(world: &mut World, channel_id: u64, status: WindowStatus) -> Reply {
    if let Some(wait) = status.refused {
        return too_many(wait, false, "user");
    }
    let channel = world.channels.get_mut(&channel_id).expect("checked");
    channel.typing += 1;
    Reply::no_content()
}

/// `GET /channels/{id}`.
pub(super) fn get_channel(world: &World, channel_id: u64) -> Reply {
    match world.channels.get(&channel_id) {
        Some(c) => Reply::ok(channel_json(channel_id, c)),
        None => plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"),
    }
}

/// `GET /channels/{id}/messages?limit=&before=&after=&around=`: newest first, as
/// Discord answers; `limit` is 1–100 (default 50).
pub(super) fn list_messages(
    world: &World,
    channel_id: u64,
    bot: u64,
    query: Option<&str>,
) -> Reply {
    let Some(channel) = world.channels.get(&channel_id) else {
        return plain_error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    };
    let mut e = Errors::new();
    let mut limit = LIST_DEFAULT;
    let (mut before, mut after, mut around) = (None, None, None);
    for (key, value) in super::query_pairs(query) {
        let path = [key.clone()];
        match key.as_str() {
            "limit" => match value.parse::<u64>() {
                Ok(n) if (1..=LIST_MAX).contains(&n) => limit = n as usize,
                Ok(_) => e.add(
                    &path,
                    "NUMBER_TYPE_MAX",
                    &format!("int value should be between 1 and {LIST_MAX}."),
                ),
                Err(_) => e.add(&path, "NUMBER_TYPE_COERCE", "Value is not int."),
            },
            "before" | "after" | "around" => match value.parse::<u64>() {
                Ok(id) => match key.as_str() {
                    "before" => before = Some(id),
                    "after" => after = Some(id),
                    _ => around = Some(id),
                },
                Err(_) => e.add(
                    &path,
                    "NUMBER_TYPE_COERCE",
                    &format!("Value \"{value}\" is not snowflake."),
                ),
            },
            _ => {}
        }
    }
    if e.any {
        return invalid_form_body(e.tree);
    }
    // Oldest first in the channel; Discord answers newest first.
    let all: Vec<&DiscordMessage> = channel.messages.iter().collect();
    let picked: Vec<&DiscordMessage> = if let Some(id) = around {
        let pos = all.partition_point(|m| m.id < id);
        let start = pos.saturating_sub(limit / 2);
        all.iter().skip(start).take(limit).copied().collect()
    } else if let Some(id) = after {
        all.iter()
            .filter(|m| m.id > id)
            .take(limit)
            .copied()
            .collect()
    } else {
        let upto = before.unwrap_or(u64::MAX);
        let older: Vec<&DiscordMessage> = all.iter().filter(|m| m.id < upto).copied().collect();
        older[older.len().saturating_sub(limit)..].to_vec()
    };
    let body: Vec<Value> = picked
        .iter()
        .rev()
        .map(|m| message_json(channel_id, m, bot, None))
        .collect();
    Reply::ok(Value::Array(body))
}

/// Who the sandbox plays, for [`World::post_user_message`].
pub(crate) struct PlayedAuthor<'a> {
    pub id: u64,
    pub name: Option<&'a str>,
    pub bot: bool,
}

impl World {
    /// A fresh message id (a snowflake of now), for a message the sandbox plays.
    pub(crate) fn message_id(&mut self) -> u64 {
        self.next_snowflake()
    }

    /// Stores a message the sandbox plays for a user in its channel or thread,
    /// when that exists (the gateway dispatches it either way). Returns whether
    /// it was stored.
    pub(crate) fn post_user_message(
        &mut self,
        channel_id: u64,
        id: u64,
        author: PlayedAuthor<'_>,
        content: &str,
    ) -> bool {
        if !self.channels.contains_key(&channel_id) {
            return false;
        }
        let message = DiscordMessage {
            attachments: Vec::new(),
            id,
            content: content.to_owned(),
            embeds: Vec::new(),
            components: Vec::new(),
            nonce: None,
            edited: false,
            edits: 0,
            webhook_id: None,
            timestamp: timestamp_now(),
            edited_timestamp: None,
            author_id: Some(author.id),
            author_name: author.name.map(str::to_owned),
            author_bot: author.bot,
        };
        self.push_message(channel_id, message);
        true
    }
}
