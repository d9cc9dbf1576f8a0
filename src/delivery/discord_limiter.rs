//! The outbox's Discord limiter as the agent's other writers use it (the
//! status board, the kept GitHub messages, the conversations' posts, edits
//! and typing): the same lanes as the outbox's sends, so every request
//! waits its turn and every 429 is obeyed and counted.

use std::sync::Arc;
use std::time::Duration;

use poise::serenity_prelude as serenity;
use serenity::{ChannelId, HttpError};
use switchyard_routing::Platform;

use super::limiter::{RateLimiter, Rule};

pub(super) const GLOBAL_LANE: &str = "discord:global";

/// Tuning of the Discord sink; the defaults are Discord's documented limits.
#[derive(Debug, Clone)]
pub struct DiscordOptions {
    /// A request that has not answered by then is abandoned (its outcome is unknown).
    pub request_timeout: Duration,
    /// Discord's global limit: requests per second per bot.
    pub global_per_second: usize,
    /// Webhook executions per webhook (their headers are not visible through serenity).
    pub webhook_limit: (usize, Duration),
    /// Added to every fixed window, so that network jitter between us and
    /// the server cannot make two requests land closer than the limit allows.
    pub margin: Duration,
    /// How long since this bot last sent, by the agent's outbox (`None`:
    /// not known): a limiter starting after a restart or a takeover waits
    /// only what is left of the channel buckets' reset since then.
    pub quiet_for: Option<Duration>,
}

impl Default for DiscordOptions {
    fn default() -> Self {
        DiscordOptions {
            request_timeout: Duration::from_secs(15),
            global_per_second: 50,
            webhook_limit: (5, Duration::from_secs(5)),
            margin: Duration::from_millis(50),
            quiet_for: None,
        }
    }
}

/// A channel bucket's usual reset: what a restarted limiter waits before
/// the first message to a channel whose bucket it has not learned.
pub(super) const CHANNEL_BUCKET_RESET: Duration = Duration::from_secs(5);

pub(super) fn channel_lane(channel: ChannelId) -> String {
    format!("discord:channel:{channel}")
}

/// Which of a channel's buckets a request used (each has a lane of its own,
/// so that a 429 closes only the bucket that refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBucket {
    /// New messages (the outbox's lane for the channel).
    Post,
    /// Edits of messages.
    Edit,
    /// Reactions added by the bot.
    Reaction,
}

/// Reactions in one channel: Discord allows about one per 250 ms
/// (it does not publish the figure; its bucket headers on a reaction say so).
const REACTION_WINDOW: Duration = Duration::from_millis(250);

/// The outbox's Discord limiter, for the agent's other writers to the same
/// channels (the status board, the kept GitHub status messages): every
/// request waits its turn there, and every 429 is obeyed and counted.
#[derive(Clone)]
pub struct DiscordLimiter {
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) proxied: bool,
    pub(super) options: DiscordOptions,
    pub(super) stats: Arc<super::stats::DeliveryStats>,
}

impl DiscordLimiter {
    fn global(&self) -> Rule {
        Rule::Window {
            lane: GLOBAL_LANE.into(),
            limit: self.options.global_per_second,
            window: Duration::from_secs(1) + self.options.margin,
        }
    }

    fn edit_lane(channel: u64) -> String {
        format!("discord:edit:{channel}")
    }

    /// The limits of an edit in `channel`: 5 per 5 s per channel, shared
    /// with every other edit there.
    fn edit_rules(&self, channel: u64) -> [Rule; 2] {
        [
            self.global(),
            Rule::Window {
                lane: Self::edit_lane(channel),
                limit: 5,
                window: Duration::from_secs(5) + self.options.margin,
            },
        ]
    }

    /// Wait until an edit of a message in `channel` is allowed.
    pub async fn before_edit(&self, channel: u64) {
        if self.proxied {
            self.limiter.acquire(&self.edit_rules(channel)).await;
        }
    }

    /// As [`DiscordLimiter::before_edit`], behind every other writer waiting
    /// for `channel` (a streamed answer's edits take the free slots only).
    pub async fn before_edit_yielding(&self, channel: u64) {
        if self.proxied {
            self.limiter
                .acquire_yielding(&self.edit_rules(channel))
                .await;
        }
    }

    /// Wait until the typing indicator may be shown in `channel` again
    /// (it lasts ~10 s; one call per 5 s per channel is plenty).
    pub async fn before_typing(&self, channel: u64) {
        if !self.proxied {
            return;
        }
        let rules = [
            self.global(),
            Rule::Window {
                lane: format!("discord:typing:{channel}"),
                limit: 1,
                window: Duration::from_secs(5),
            },
        ];
        self.limiter.acquire(&rules).await;
    }

    /// Wait until the bot may add a reaction in `channel` (one per 250 ms
    /// per channel: twenty mentions at once are acknowledged one after
    /// another, never refused).
    pub async fn before_reaction(&self, channel: u64) {
        if !self.proxied {
            return;
        }
        let rules = [
            self.global(),
            Rule::Window {
                lane: Self::reaction_lane(channel),
                limit: 1,
                window: REACTION_WINDOW + self.options.margin,
            },
        ];
        self.limiter.acquire(&rules).await;
    }

    fn reaction_lane(channel: u64) -> String {
        format!("discord:reaction:{channel}")
    }

    /// Wait until a new message in `channel` is allowed (its bucket is the
    /// one the outbox's messages to that channel use).
    pub async fn before_post(&self, channel: u64) {
        if !self.proxied {
            return;
        }
        let rules = [
            self.global(),
            Rule::Learned {
                lane: channel_lane(ChannelId::new(channel)),
            },
        ];
        self.limiter.acquire(&rules).await;
    }

    /// After a failed request to `channel`: a 429 is counted and obeyed
    /// (the lane stays closed for its bucket's reset).
    pub fn after_error(&self, channel: u64, bucket: ChannelBucket, e: &serenity::Error) {
        if let serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) = e
            && r.status_code.as_u16() == 429
        {
            self.stats.on_429(Platform::Discord);
            let (lane, reset) = match bucket {
                ChannelBucket::Edit => (Self::edit_lane(channel), CHANNEL_BUCKET_RESET),
                ChannelBucket::Post => {
                    (channel_lane(ChannelId::new(channel)), CHANNEL_BUCKET_RESET)
                }
                ChannelBucket::Reaction => (Self::reaction_lane(channel), REACTION_WINDOW),
            };
            self.limiter.block(&lane, reset);
        }
    }
}
