//! Rate-limit arithmetic for the sandbox: the platforms' published limits as
//! data ([`DiscordLimits`], [`TelegramLimits`]) and the two counters that
//! enforce them (a fixed window for Discord's advertised buckets, a token
//! bucket for the smooth limits).

use std::time::Duration;

use tokio::time::Instant;

/// `count` requests per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub const fn new(count: u32, per: Duration) -> Self {
        Self { count, per }
    }
    pub const fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }
    /// A rate that never limits (for benchmarks of the client side alone).
    pub const fn unlimited() -> Self {
        Self::new(u32::MAX, Duration::from_secs(1))
    }
}

/// Discord's limits: per-route buckets advertised in `X-RateLimit-*` headers and the
/// global per-bot limit (which is not advertised until it is hit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscordLimits {
    /// `POST /channels/{id}/messages`, per channel (observed: 5 per 5 s).
    pub channel_messages: Rate,
    /// `PATCH /channels/{id}/messages/{mid}`, per channel (a separate bucket on Discord).
    pub channel_edits: Rate,
    /// `POST /channels/{id}/typing`, per channel. Discord does not document this
    /// bucket; the sandbox gives it one of its own per channel, like the other
    /// channel writes, at the same 5 per 5 s.
    pub channel_typing: Rate,
    /// `POST /webhooks/{id}/{token}`, per webhook.
    pub webhook_executions: Rate,
    /// `PUT /channels/{id}/messages/{mid}/reactions/{emoji}/@me`, per channel.
    /// Discord does not publish it; its bucket headers on a reaction say one
    /// per 250 ms.
    pub channel_reactions: Rate,
    /// Every authenticated request of one bot token (50 per second).
    pub global: Rate,
}

impl Default for DiscordLimits {
    fn default() -> Self {
        Self {
            channel_messages: Rate::new(5, Duration::from_secs(5)),
            channel_edits: Rate::new(5, Duration::from_secs(5)),
            channel_typing: Rate::new(5, Duration::from_secs(5)),
            webhook_executions: Rate::new(5, Duration::from_secs(5)),
            channel_reactions: Rate::new(1, Duration::from_millis(250)),
            global: Rate::per_second(50),
        }
    }
}

impl DiscordLimits {
    /// No limits at all.
    pub fn unlimited() -> Self {
        Self {
            channel_messages: Rate::unlimited(),
            channel_edits: Rate::unlimited(),
            channel_typing: Rate::unlimited(),
            webhook_executions: Rate::unlimited(),
            channel_reactions: Rate::unlimited(),
            global: Rate::unlimited(),
        }
    }
}

/// Telegram's documented broadcasting limits, applied to messages sent
/// (`sendMessage` and the other `send*` methods).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramLimits {
    /// Per chat: about one message per second.
    pub per_chat: Rate,
    /// Per group (chat id < 0): 20 messages per minute.
    pub per_group: Rate,
    /// Per bot, all chats together: 30 messages per second.
    pub overall: Rate,
    /// Early arrival forgiven, so that a client pacing exactly at the limit is not
    /// refused because of scheduling jitter between its clock and ours.
    pub jitter_tolerance: Duration,
}

impl Default for TelegramLimits {
    fn default() -> Self {
        Self {
            per_chat: Rate::per_second(1),
            per_group: Rate::new(20, Duration::from_secs(60)),
            overall: Rate::per_second(30),
            jitter_tolerance: Duration::from_millis(10),
        }
    }
}

impl TelegramLimits {
    /// No limits at all.
    pub fn unlimited() -> Self {
        Self {
            per_chat: Rate::unlimited(),
            per_group: Rate::unlimited(),
            overall: Rate::unlimited(),
            jitter_tolerance: Duration::ZERO,
        }
    }
}

/// Discord-style bucket: `count` requests in a window that starts with the first
/// request and resets `per` later. Its state is exactly what the headers advertise.
#[derive(Clone, Debug)]
pub(crate) struct FixedWindow {
    rate: Rate,
    started: Instant,
    used: u32,
}

/// What a bucket says about one request, for the `X-RateLimit-*` headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_after: Duration,
    /// `Some(wait)` when the request was refused.
    pub refused: Option<Duration>,
}

impl FixedWindow {
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            started: now,
            used: 0,
        }
    }

    pub fn take(&mut self, now: Instant) -> WindowStatus {
        if now.duration_since(self.started) >= self.rate.per {
            self.started = now;
            self.used = 0;
        }
        let reset_after = self
            .rate
            .per
            .saturating_sub(now.duration_since(self.started));
        let refused = if self.used >= self.rate.count {
            Some(reset_after)
        } else {
            self.used += 1;
            None
        };
        WindowStatus {
            limit: self.rate.count,
            remaining: self.rate.count.saturating_sub(self.used),
            reset_after,
            refused,
        }
    }
}

/// Smooth limit: `count` tokens, refilled continuously over `per`.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate: Rate,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: f64::from(rate.count),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let per_sec = f64::from(self.rate.count) / self.rate.per.as_secs_f64();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(f64::from(self.rate.count));
        self.last = now;
    }

    /// How long until one token is available (zero when one is), forgiving `tolerance`.
    pub fn wait(&mut self, now: Instant, tolerance: Duration) -> Duration {
        self.refill(now);
        let per_sec = f64::from(self.rate.count) / self.rate.per.as_secs_f64();
        let needed = 1.0 - tolerance.as_secs_f64() * per_sec;
        if self.tokens >= needed {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / per_sec)
        }
    }

    /// Spends one token; call only after [`TokenBucket::wait`] returned zero.
    pub fn spend(&mut self) {
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_counts_down_then_refuses_until_reset() {
        let t0 = Instant::now();
        let mut w = FixedWindow::new(Rate::new(2, Duration::from_secs(5)), t0);
        assert_eq!(w.take(t0).remaining, 1);
        assert_eq!(w.take(t0).remaining, 0);
        let refused = w.take(t0 + Duration::from_secs(1));
        assert_eq!(refused.refused, Some(Duration::from_secs(4)));
        let after = w.take(t0 + Duration::from_secs(5));
        assert!(after.refused.is_none());
        assert_eq!(after.remaining, 1);
    }

    #[test]
    fn defaults_are_the_documented_limits() {
        let d = DiscordLimits::default();
        assert_eq!(d.channel_messages, Rate::new(5, Duration::from_secs(5)));
        assert_eq!(d.global, Rate::per_second(50));
        let t = TelegramLimits::default();
        assert_eq!(t.per_chat, Rate::per_second(1));
        assert_eq!(t.per_group, Rate::new(20, Duration::from_secs(60)));
        assert_eq!(t.overall, Rate::per_second(30));
    }

    #[test]
    fn token_bucket_refills_smoothly() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Rate::per_second(1), t0);
        assert_eq!(b.wait(t0, Duration::ZERO), Duration::ZERO);
        b.spend();
        let wait = b.wait(t0 + Duration::from_millis(400), Duration::ZERO);
        assert!(wait > Duration::from_millis(590) && wait <= Duration::from_millis(600));
        // Within tolerance of the next token counts as on time.
        assert_eq!(
            b.wait(t0 + Duration::from_millis(995), Duration::from_millis(10)),
            Duration::ZERO
        );
    }
}
