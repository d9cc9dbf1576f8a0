//! The Telegram stand-in's update queue and who receives what from it: each bot's
//! `allowed_updates` (given to `getUpdates` or `setWebhook`), remembered per bot
//! as the Bot API server remembers it, long polling with offsets, and webhook
//! delivery. The rules are those of tdlib's `telegram-bot-api` (`Client.cpp`):
//!
//! - `allowed_updates` omitted (or not a list of strings, which the server
//!   ignores) keeps the previous setting; names match in any case, unknown names
//!   are ignored, and a list with no known name (`[]` too) means the default: every
//!   type except `chat_member`, `message_reaction` and `message_reaction_count`.
//! - The setting is applied when an update arrives: an update of a type the bot
//!   does not allow is dropped for that bot, not kept for later. Allowing its type
//!   afterwards does not bring it back; updates queued before a narrowing are
//!   still delivered ("doesn't affect updates created before the call").
//!
//! The sandbox keeps one queue for all its bots; an update is dropped for the bots
//! that refuse it, and not queued at all when every bot that has polled or set a
//! webhook refuses it (as each bot's own queue on Telegram would not hold it).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{POLL_TIMEOUT_MAX, Params, Reply, World, bad_request, ok, refused};
use crate::Shared;

/// The Bot API server's update types, in its order (a bit each).
const UPDATE_TYPES: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "custom_event",
    "custom_query",
    "shipping_query",
    "pre_checkout_query",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "message_reaction",
    "message_reaction_count",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "purchased_paid_media",
    "managed_bot",
    "guest_message",
];

fn bit(kind: &str) -> u32 {
    UPDATE_TYPES
        .iter()
        .position(|t| *t == kind)
        .map_or(0, |i| 1 << i)
}

/// Every type but the three a bot must ask for by name.
fn default_mask() -> u32 {
    let all = (1u32 << UPDATE_TYPES.len()) - 1;
    all & !(bit("chat_member") | bit("message_reaction") | bit("message_reaction_count"))
}

/// The names of the types in `mask`.
fn names(mask: u32) -> Vec<String> {
    UPDATE_TYPES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, t)| (*t).to_owned())
        .collect()
}

/// What `allowed_updates` asks for: `None` keeps the previous setting.
fn requested(p: &Params) -> Option<u32> {
    let list = match p.0.get("allowed_updates")? {
        Value::Array(list) => list.clone(),
        // Form and query parameters carry the list as JSON text.
        Value::String(s) if s.is_empty() => return None,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(list)) => list,
            _ => return None,
        },
        _ => return None,
    };
    let mut mask = 0;
    for name in &list {
        // One entry that is not a string and the server ignores the whole list.
        mask |= bit(&name.as_str()?.to_ascii_lowercase());
    }
    Some(if mask == 0 { default_mask() } else { mask })
}

/// One queued update.
pub(super) struct Queued {
    pub(super) id: i64,
    update: Value,
    /// The bots whose `allowed_updates` left its type out when it arrived: they
    /// never receive it.
    dropped_for: Vec<i64>,
}

impl Queued {
    fn for_bot(&self, bot: i64) -> bool {
        !self.dropped_for.contains(&bot)
    }
}

impl World {
    /// Remembers `bot`'s `allowed_updates` (or the default, the first time).
    fn subscribe(&mut self, bot: i64, p: &Params) {
        let mask = requested(p);
        let entry = self.subscriptions.entry(bot).or_insert_with(default_mask);
        if let Some(mask) = mask {
            *entry = mask;
        }
    }

    /// Queues an update of `kind` (`{"update_id", kind: payload}`), dropped for the
    /// bots that do not allow `kind`; returns its id.
    pub(super) fn push_update(&mut self, kind: &str, payload: Value) -> i64 {
        let id = self.next_update();
        let b = bit(kind);
        let dropped_for: Vec<i64> = self
            .subscriptions
            .iter()
            .filter(|(_, mask)| **mask & b == 0)
            .map(|(bot, _)| *bot)
            .collect();
        self.dropped_updates += dropped_for.len() as u64;
        let nobody_wants_it =
            !self.subscriptions.is_empty() && dropped_for.len() == self.subscriptions.len();
        if !nobody_wants_it {
            let mut update = json!({"update_id": id});
            update[kind] = payload;
            self.updates.push_back(Queued {
                id,
                update,
                dropped_for,
            });
        }
        id
    }

    /// Updates waiting for `bot`.
    pub(super) fn pending_for(&self, bot: i64) -> usize {
        self.updates.iter().filter(|q| q.for_bot(bot)).count()
    }

    /// Each bot's `allowed_updates`, by name.
    pub(super) fn allowed_updates(&self) -> BTreeMap<i64, Vec<String>> {
        self.subscriptions
            .iter()
            .map(|(bot, mask)| (*bot, names(*mask)))
            .collect()
    }

    /// `getWebhookInfo.allowed_updates`: shown only when not the default.
    pub(super) fn webhook_allowed_updates(&self, bot: i64) -> Option<Vec<String>> {
        let mask = *self.subscriptions.get(&bot)?;
        (mask != default_mask()).then(|| names(mask))
    }
}

pub(super) fn set_webhook(world: &mut World, bot: i64, p: &Params) -> Result<Reply, Reply> {
    let url = p.required_str("url")?;
    if url.is_empty() {
        world.webhook = None;
        return Ok(ok(json!(true)));
    }
    let parsed = url::Url::parse(&url).map_err(|_| bad_request("bad webhook: invalid URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad_request("bad webhook: unsupported URL protocol"));
    }
    let secret = p.str("secret_token")?;
    if let Some(s) = &secret {
        let valid = (1..=256).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(bad_request(
                "bad webhook: secret token contains unallowed characters",
            ));
        }
    }
    if p.bool("drop_pending_updates")?.unwrap_or(false) {
        world.updates.clear();
    }
    world.subscribe(bot, p);
    world.webhook = Some((url, secret));
    world.webhook_bot = bot;
    Ok(ok(json!(true)))
}

/// The next update to POST to the webhook, if one is set and an update waits.
pub(crate) fn webhook_next(world: &World) -> Option<(String, Option<String>, i64, Value)> {
    let (url, secret) = world.webhook.clone()?;
    let queued = world
        .updates
        .iter()
        .find(|q| q.for_bot(world.webhook_bot))?;
    Some((url, secret, queued.id, queued.update.clone()))
}

/// The webhook accepted update `id`: it is confirmed (or it failed: counted).
pub(crate) fn webhook_done(world: &mut World, id: i64, accepted: bool) {
    if accepted {
        world.updates.retain(|q| q.id != id);
    } else {
        world.webhook_failures += 1;
    }
}

pub(super) async fn get_updates(shared: &Shared, bot: i64, p: &Params) -> Reply {
    let (offset, limit, timeout) = match (p.int("offset"), p.int("limit"), p.int("timeout")) {
        (Ok(o), Ok(l), Ok(t)) => (
            o,
            l.unwrap_or(100).clamp(1, 100) as usize,
            t.unwrap_or(0).clamp(0, POLL_TIMEOUT_MAX as i64) as u64,
        ),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let generation = {
        let mut inner = shared.lock();
        let world = &mut inner.telegram;
        // As on Telegram: the webhook conflict first, and then the new setting.
        if world.webhook.is_some() {
            return refused(
                StatusCode::CONFLICT,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            );
        }
        world.subscribe(bot, p);
        let generation = world.pollers.get(&bot).copied().unwrap_or(0) + 1;
        world.pollers.insert(bot, generation);
        generation
    };
    // A newer poller ends an older one's wait (with 409).
    shared.updates.notify_waiters();
    loop {
        let notified = shared.updates.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut inner = shared.lock();
            let world = &mut inner.telegram;
            if world.pollers.get(&bot) != Some(&generation) {
                return refused(
                    StatusCode::CONFLICT,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                );
            }
            match offset {
                Some(o) if o < 0 => {
                    let keep = o.unsigned_abs() as usize;
                    while world.updates.len() > keep {
                        world.updates.pop_front();
                    }
                }
                Some(o) => world.updates.retain(|q| q.id >= o),
                None => {}
            }
            let batch: Vec<Value> = world
                .updates
                .iter()
                .filter(|q| q.for_bot(bot))
                .take(limit)
                .map(|q| q.update.clone())
                .collect();
            if !batch.is_empty() || world.closing || Instant::now() >= deadline {
                return ok(Value::Array(batch));
            }
        }
        shared.lock().telegram.waiting_polls += 1;
        let woken = tokio::time::timeout_at(deadline, notified).await;
        shared.lock().telegram.waiting_polls -= 1;
        if woken.is_err() {
            return ok(json!([]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        Params(v.as_object().unwrap().clone(), Vec::new())
    }

    #[test]
    fn allowed_updates_are_read_as_the_bot_api_server_reads_them() {
        let mask = |v: Value| requested(&params(json!({ "allowed_updates": v })));
        assert_eq!(mask(json!(["message"])), Some(bit("message")));
        assert_eq!(
            mask(json!("[\"MESSAGE\", \"callback_query\", \"no_such_type\"]")),
            Some(bit("message") | bit("callback_query"))
        );
        assert_eq!(mask(json!([])), Some(default_mask()));
        assert_eq!(mask(json!(["no_such_type"])), Some(default_mask()));
        // Ignored: the previous setting stays.
        assert_eq!(mask(json!("not json")), None);
        assert_eq!(mask(json!(["message", 1])), None);
        assert_eq!(requested(&params(json!({}))), None);
        assert!(!names(default_mask()).contains(&"chat_member".to_owned()));
        assert!(names(default_mask()).contains(&"callback_query".to_owned()));
    }
}
