//! `[discord]`: the API endpoint, the guild, channel and webhook aliases,
//! and who may use which commands.

use std::collections::BTreeMap;

use switchyard_commands::AccessList;

use super::raw::RawDiscord;
use super::validator::Validator;

pub(super) const DISCORD_PUBLIC_API: &str = "https://discord.com/api/v10";

#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub api_base: String,
    pub guild_id: Option<u64>,
    pub channels: BTreeMap<String, u64>,
    pub webhooks: BTreeMap<String, String>,
    pub access: AccessList,
}

impl DiscordSettings {
    /// Any `api_base` other than Discord's own is a stand-in: serenity then
    /// goes through its proxy setting with its own limiter off, and
    /// switchyard's limiter does the work (INTEGRATION-NOTES §3).
    pub fn is_proxied(&self) -> bool {
        self.api_base.trim_end_matches('/') != DISCORD_PUBLIC_API
    }
    /// The origin serenity's `proxy` replaces `https://discord.com` with.
    pub fn proxy_origin(&self) -> String {
        let base = self.api_base.trim_end_matches('/');
        base.strip_suffix("/api/v10").unwrap_or(base).to_string()
    }
}

pub(super) fn discord(v: &mut Validator, d: RawDiscord) -> DiscordSettings {
    DiscordSettings {
        api_base: v.url("discord.api_base", d.api_base, DISCORD_PUBLIC_API),
        guild_id: d
            .guild_id
            .as_deref()
            .and_then(|g| v.snowflake("discord.guild_id", g)),
        channels: d
            .channels
            .iter()
            .filter_map(|(alias, id)| {
                v.alias(&format!("discord.channels.{alias}"), alias);
                v.snowflake(&format!("discord.channels.{alias}"), id)
                    .map(|id| (alias.clone(), id))
            })
            .collect(),
        webhooks: d
            .webhooks
            .into_iter()
            .inspect(|(alias, env)| {
                v.alias(&format!("discord.webhooks.{alias}"), alias);
                v.env_name(&format!("discord.webhooks.{alias}"), env);
                if d.channels.contains_key(alias) {
                    v.problem(
                        &format!("discord.webhooks.{alias}"),
                        "is also a channel alias: a destination is either a bot channel or a webhook",
                    );
                }
            })
            .collect(),
        access: v.access("discord.access", &d.access),
    }
}
