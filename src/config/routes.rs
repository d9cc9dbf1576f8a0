//! `[routing]` and `[[routes]]`: the routing table, where unmatched events
//! go, repeat suppression and digests; and the check that a destination
//! names a configured alias, which `[approvals]` uses too.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_routing::{Category, Destination, Platform, Router, RuleSpec};

use super::discord::DiscordSettings;
use super::raw::RawRouting;
use super::telegram::TelegramSettings;
use super::validator::Validator;

#[derive(Debug, Clone)]
pub struct RoutingSettings {
    pub unmatched: Destination,
    pub repeat_interval: Duration,
    pub digest: BTreeMap<Category, Duration>,
    pub status_board: bool,
    pub mute_notice_lead: Duration,
}

/// The aliases a destination may name: `[discord.channels]`,
/// `[discord.webhooks]` and `[telegram.chats]`.
#[derive(Clone, Copy)]
pub(super) struct Destinations<'a> {
    pub(super) discord: Option<&'a DiscordSettings>,
    pub(super) telegram: Option<&'a TelegramSettings>,
}

impl Destinations<'_> {
    fn known(&self, dest: &Destination) -> bool {
        match dest.platform {
            Platform::Discord => self.discord.is_some_and(|d| {
                d.channels.contains_key(&dest.alias) || d.webhooks.contains_key(&dest.alias)
            }),
            Platform::Telegram => self
                .telegram
                .is_some_and(|t| t.chats.contains_key(&dest.alias)),
        }
    }

    /// Reports `dest` under `key` when it names no configured alias.
    pub(super) fn check(&self, v: &mut Validator, key: &str, dest: &Destination) {
        if !self.known(dest) {
            let section = match dest.platform {
                Platform::Discord => "[discord.channels] or [discord.webhooks]",
                Platform::Telegram => "[telegram.chats]",
            };
            v.problem(
                key,
                format!(
                    "{dest} names no configured alias: add `{}` to {section}",
                    dest.alias
                ),
            );
        }
    }
}

/// `[routing]` and `[[routes]]` (absent: the default rules), checked together:
/// the rules compile against the unmatched destination.
pub(super) fn routing(
    v: &mut Validator,
    raw: RawRouting,
    routes: Option<Vec<RuleSpec>>,
    dests: Destinations<'_>,
) -> (RoutingSettings, Vec<RuleSpec>) {
    let unmatched = match raw
        .unmatched
        .as_deref()
        .unwrap_or("discord:system")
        .parse::<Destination>()
    {
        Ok(d) => {
            dests.check(v, "routing.unmatched", &d);
            d
        }
        Err(e) => {
            v.problem("routing.unmatched", e.to_string());
            Destination::discord("system")
        }
    };
    let routes = routes.unwrap_or_else(RuleSpec::defaults);
    for (i, rule) in routes.iter().enumerate() {
        for dest in &rule.to {
            dests.check(v, &format!("routes[{i}].to"), dest);
        }
    }
    if let Err(errors) = Router::new(routes.clone(), unmatched.clone()) {
        for e in errors {
            v.problem("routes", e.to_string());
        }
    }
    let digest = raw
        .digest
        .iter()
        .map(|(cat, window)| {
            let category: Category = cat.parse().unwrap_or_else(|never| match never {});
            let key = format!("routing.digest.{cat}");
            if !category.is_known() {
                v.problem(&key, "is not a known category");
            }
            if matches!(category, Category::ActionRequired | Category::Alert) {
                v.problem(
                    &key,
                    "alerts and action_required are never digested: they go out at once",
                );
            }
            (category, v.duration(&key, Some(window.clone()), "1m"))
        })
        .collect();
    let routing = RoutingSettings {
        unmatched,
        repeat_interval: v.duration("routing.repeat_interval", raw.repeat_interval, "10m"),
        digest,
        status_board: raw.status_board.unwrap_or(true),
        mute_notice_lead: v.duration("routing.mute_notice_lead", raw.mute_notice_lead, "10m"),
    };
    (routing, routes)
}
