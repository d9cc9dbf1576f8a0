//! Rate limiting ahead of time: switchyard waits before it sends rather than
//! finding the limit by provoking 429s.
//!
//! One [`RateLimiter`] holds named lanes. A lane is limited by a sliding
//! window ("N per window", for the platforms' documented fixed limits), by a
//! bucket learned from response headers (Discord's `X-RateLimit-*`), and by
//! a block set when a 429 says how long to stay away. The clock is tokio's.
//!
//! A process that starts knows nothing of what its previous life spent (a
//! kill -9 mid-burst leaves the platform's windows full): a limiter made
//! with [`RateLimiter::after_restart`] treats every window as full at its
//! birth and waits a learned bucket's usual reset before its first use, so a
//! restart provokes no 429.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// One limit a send must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// At most `limit` sends in any `window` on this lane.
    Window {
        lane: String,
        limit: usize,
        window: Duration,
    },
    /// The bucket learned from response headers for this lane (no limit until learned).
    Learned { lane: String },
}

impl Rule {
    fn lane(&self) -> &str {
        match self {
            Rule::Window { lane, .. } | Rule::Learned { lane } => lane,
        }
    }
}

#[derive(Debug, Default)]
struct Lane {
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    /// (remaining, reset at), from the last response's headers.
    bucket: Option<(u32, Instant)>,
    /// A response has taught this lane's bucket at least once.
    learned: bool,
    /// A learned-bucket lane whose bucket is unknown (never taught, or past
    /// its reset) lets one request go first, until its answer teaches the
    /// bucket (or this passes): 20 requests sent at once to an unknown
    /// bucket would find it by 429s.
    probe_until: Option<Instant>,
    /// Senders waiting in [`RateLimiter::acquire`] for this lane: a
    /// [`RateLimiter::acquire_yielding`] sender lets them go first.
    waiting: usize,
}

/// Named lanes with windows, learned buckets and 429 blocks.
#[derive(Debug, Default)]
pub struct RateLimiter {
    lanes: Mutex<HashMap<String, Lane>>,
    /// Set by [`RateLimiter::after_restart`]: when the limiter was made and
    /// how long a learned bucket is assumed spent from then.
    caution: Option<(Instant, Duration)>,
}

impl RateLimiter {
    /// A limiter that assumes nothing was spent before it (tests, tools).
    pub fn new() -> Self {
        Self::default()
    }

    /// A limiter for a process that may have just restarted: every window
    /// counts as full at this instant, and a bucket not yet learned counts as
    /// spent for `learned_reset` (Discord's per-channel bucket resets within 5 s).
    pub fn after_restart(learned_reset: Duration) -> Self {
        Self::after_quiet(learned_reset, None)
    }

    /// [`RateLimiter::after_restart`] for a process that knows its platform
    /// has not been sent to for `quiet_for` (its outbox says when the last
    /// send was, its previous life's or another host's): what has passed
    /// since counts, so a takeover long after the last send waits nothing.
    /// `None`: not known, as after a plain restart.
    pub fn after_quiet(learned_reset: Duration, quiet_for: Option<Duration>) -> Self {
        let now = Instant::now();
        let caution = match quiet_for {
            None => Some((now, learned_reset)),
            // Quiet for longer than the clock reaches back: nothing is left to wait.
            Some(q) => now.checked_sub(q).map(|born| (born, learned_reset)),
        };
        RateLimiter {
            lanes: Mutex::default(),
            caution,
        }
    }

    /// Take a slot on every rule now, or say how long to wait (nothing taken then).
    pub fn try_acquire(&self, rules: &[Rule]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = Duration::ZERO;
        for rule in rules {
            let caution = self.caution;
            let lane = lanes.entry(rule.lane().to_string()).or_insert_with(|| {
                let mut lane = Lane::default();
                if let (Some((born, _)), Rule::Window { limit, window, .. }) = (caution, rule)
                    && now.duration_since(born) < *window
                {
                    lane.sent = std::iter::repeat_n(born, *limit).collect();
                }
                lane
            });
            if let (Some((born, reset)), Rule::Learned { .. }, None, false) =
                (caution, rule, lane.bucket, lane.learned)
            {
                let until = born + reset;
                if until > now {
                    wait = wait.max(until - now);
                }
            }
            if let Some(until) = lane.blocked_until {
                if until > now {
                    wait = wait.max(until - now);
                } else {
                    lane.blocked_until = None;
                }
            }
            match rule {
                Rule::Window { limit, window, .. } => {
                    while lane
                        .sent
                        .front()
                        .is_some_and(|t| now.duration_since(*t) >= *window)
                    {
                        lane.sent.pop_front();
                    }
                    if lane.sent.len() >= *limit
                        && let Some(oldest) = lane.sent.front()
                    {
                        wait = wait.max(*window - now.duration_since(*oldest));
                    }
                }
                Rule::Learned { .. } => {
                    if let Some((0, reset_at)) = lane.bucket
                        && reset_at > now
                    {
                        wait = wait.max(reset_at - now);
                    }
                    let unknown = lane.bucket.is_none_or(|(_, reset_at)| reset_at <= now);
                    if unknown
                        && let Some(until) = lane.probe_until
                        && until > now
                    {
                        // Look again soon: the probe's answer usually comes first.
                        wait = wait.max((until - now).min(PROBE_POLL));
                    }
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for rule in rules {
            let lane = lanes.entry(rule.lane().to_string()).or_default();
            match rule {
                Rule::Window { limit, .. } => {
                    lane.sent.push_back(now);
                    while lane.sent.len() > *limit {
                        lane.sent.pop_front();
                    }
                }
                Rule::Learned { .. } => {
                    if lane.bucket.is_none_or(|(_, reset_at)| reset_at <= now) {
                        lane.probe_until = Some(now + PROBE_TTL);
                    }
                    // Spend one of the learned slots; once the reset passed the
                    // count is unknown until the next response tells it.
                    lane.bucket = match lane.bucket {
                        Some((n, reset_at)) if reset_at > now => {
                            Some((n.saturating_sub(1), reset_at))
                        }
                        _ => None,
                    };
                }
            }
        }
        Ok(())
    }

    /// Wait until every rule allows one more send, and take the slot.
    pub async fn acquire(&self, rules: &[Rule]) {
        if self.try_acquire(rules).is_ok() {
            return;
        }
        let _waiting = Waiting::new(self, rules);
        while let Err(wait) = self.try_acquire(rules) {
            tokio::time::sleep(wait).await;
        }
    }

    /// As [`RateLimiter::acquire`], but behind every sender waiting in
    /// `acquire` on the same lanes: a streamed answer's edits take only the
    /// slots nobody else wants, so they never delay a prompt or an alert.
    pub async fn acquire_yielding(&self, rules: &[Rule]) {
        loop {
            let someone_waits = {
                let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
                rules
                    .iter()
                    .any(|r| lanes.get(r.lane()).is_some_and(|l| l.waiting > 0))
            };
            let wait = if someone_waits {
                YIELD_POLL
            } else {
                match self.try_acquire(rules) {
                    Ok(()) => return,
                    Err(wait) => wait.min(YIELD_POLL),
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// What a response's headers said about a lane's bucket.
    pub fn learn(&self, lane: &str, remaining: u32, reset_after: Duration) {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let lane = lanes.entry(lane.to_string()).or_default();
        let now = Instant::now();
        let reset_at = now + reset_after;
        lane.bucket = match lane.bucket {
            // Answers to requests sent together arrive in any order: within one
            // window, the fewest remaining is the truth (an older answer's count
            // would let too many go).
            Some((known, known_reset))
                if known_reset > now
                    && reset_at <= known_reset + SAME_WINDOW
                    && known_reset <= reset_at + SAME_WINDOW =>
            {
                Some((known.min(remaining), known_reset.max(reset_at)))
            }
            _ => Some((remaining, reset_at)),
        };
        lane.learned = true;
        lane.probe_until = None;
    }

    /// A response came for a lane without teaching its bucket: the probe
    /// it was waiting for is over.
    pub fn answered(&self, lane: &str) {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lane) = lanes.get_mut(lane) {
            lane.probe_until = None;
        }
    }

    /// A 429 said: stay away from this lane for `retry_after`.
    pub fn block(&self, lane: &str, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let lane = lanes.entry(lane.to_string()).or_default();
        lane.blocked_until = Some(lane.blocked_until.map_or(until, |u| u.max(until)));
    }
}

/// Two resets this close are the same window (the headers' rounding).
const SAME_WINDOW: Duration = Duration::from_millis(250);

/// How long an unlearned bucket's first request holds the others back at most.
const PROBE_TTL: Duration = Duration::from_secs(2);
/// How often a request held back by a probe looks again.
const PROBE_POLL: Duration = Duration::from_millis(10);

/// How often a yielding sender looks again while others wait.
const YIELD_POLL: Duration = Duration::from_millis(20);

/// Marks the lanes of a waiting `acquire` (and unmarks them however the wait ends).
struct Waiting<'a> {
    limiter: &'a RateLimiter,
    lanes: Vec<String>,
}

impl<'a> Waiting<'a> {
    fn new(limiter: &'a RateLimiter, rules: &[Rule]) -> Self {
        let names: Vec<String> = rules.iter().map(|r| r.lane().to_string()).collect();
        let mut lanes = limiter.lanes.lock().unwrap_or_else(|e| e.into_inner());
        for name in &names {
            lanes.entry(name.clone()).or_default().waiting += 1;
        }
        Waiting {
            limiter,
            lanes: names,
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut lanes = self.limiter.lanes.lock().unwrap_or_else(|e| e.into_inner());
        for name in &self.lanes {
            if let Some(l) = lanes.get_mut(name) {
                l.waiting = l.waiting.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // tokio's paused clock needs its `test-util` feature, which the shared
    // build does not enable; these use long windows (so the computed waits
    // are checked, not elapsed time) and a short real sleep where a window
    // must pass.

    fn window(lane: &str, limit: usize, ms: u64) -> Rule {
        Rule::Window {
            lane: lane.into(),
            limit,
            window: Duration::from_millis(ms),
        }
    }

    fn waits_about(r: Result<(), Duration>, expected: Duration) {
        let wait = r.expect_err("should have to wait");
        assert!(
            wait <= expected && wait > expected - Duration::from_secs(5),
            "{wait:?} vs {expected:?}"
        );
    }

    #[tokio::test]
    async fn window_allows_limit_then_waits_for_the_oldest() {
        let l = RateLimiter::new();
        let r = [window("a", 2, 60_000)];
        assert!(l.try_acquire(&r).is_ok());
        assert!(l.try_acquire(&r).is_ok());
        waits_about(l.try_acquire(&r), Duration::from_secs(60));
        let short = [window("b", 1, 30)];
        assert!(l.try_acquire(&short).is_ok());
        assert!(l.try_acquire(&short).is_err());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(l.try_acquire(&short).is_ok(), "the window passed");
    }

    #[tokio::test]
    async fn a_blocked_rule_takes_nothing_from_the_others() {
        let l = RateLimiter::new();
        l.block("chat", Duration::from_secs(30));
        let rules = [window("all", 1, 60_000), window("chat", 5, 1000)];
        waits_about(l.try_acquire(&rules), Duration::from_secs(30));
        // "all" was not spent by the refused attempt.
        assert!(l.try_acquire(&[window("all", 1, 60_000)]).is_ok());
    }

    #[tokio::test]
    async fn after_a_restart_every_window_starts_full_and_unlearned_buckets_spent() {
        let l = RateLimiter::after_restart(Duration::from_secs(5));
        waits_about(
            l.try_acquire(&[window("w", 3, 60_000)]),
            Duration::from_secs(60),
        );
        let learned = [Rule::Learned {
            lane: "route".into(),
        }];
        waits_about(l.try_acquire(&learned), Duration::from_secs(5));
        // Once a response taught the bucket, it is what counts.
        l.learn("route", 4, Duration::from_secs(5));
        assert!(l.try_acquire(&learned).is_ok());
        // A short window that has already passed since the start is empty.
        let short = RateLimiter::after_restart(Duration::from_millis(10));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(short.try_acquire(&[window("s", 1, 20)]).is_ok());
        assert!(
            short
                .try_acquire(&[Rule::Learned { lane: "r".into() }])
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_quiet_time_known_from_the_outbox_counts_toward_the_caution() {
        let learned = [Rule::Learned {
            lane: "route".into(),
        }];
        // Last sent 2 s ago: 3 s of the 5 s reset are left.
        let recent = RateLimiter::after_quiet(Duration::from_secs(5), Some(Duration::from_secs(2)));
        let wait = recent.try_acquire(&learned).expect_err("3 s are left");
        assert!(
            wait <= Duration::from_secs(3) && wait > Duration::from_secs(2),
            "{wait:?}"
        );
        waits_about(
            recent.try_acquire(&[window("w", 3, 10_000)]),
            Duration::from_secs(8),
        );
        // Last sent a minute ago (a takeover long after the last post): nothing to wait.
        let long_ago =
            RateLimiter::after_quiet(Duration::from_secs(5), Some(Duration::from_secs(60)));
        assert!(long_ago.try_acquire(&learned).is_ok());
        assert!(long_ago.try_acquire(&[window("w", 3, 10_000)]).is_ok());
        // Not known: as after a plain restart.
        let unknown = RateLimiter::after_quiet(Duration::from_secs(5), None);
        waits_about(unknown.try_acquire(&learned), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn learned_bucket_waits_for_its_reset() {
        let l = RateLimiter::new();
        let r = [Rule::Learned {
            lane: "route".into(),
        }];
        assert!(l.try_acquire(&r).is_ok(), "unknown bucket: go");
        l.learn("route", 1, Duration::from_secs(50));
        assert!(l.try_acquire(&r).is_ok());
        waits_about(l.try_acquire(&r), Duration::from_secs(50));
        l.learn("route", 0, Duration::from_millis(20));
        assert!(l.try_acquire(&r).is_err());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(l.try_acquire(&r).is_ok(), "the bucket reset");
    }

    #[tokio::test]
    async fn a_yielding_sender_lets_a_waiting_sender_go_first() {
        let l = std::sync::Arc::new(RateLimiter::new());
        let r = vec![window("chat", 1, 300)];
        l.acquire(&r).await;
        // A normal sender waits for the window; a yielding one asks after it.
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (l1, r1, o1) = (l.clone(), r.clone(), order.clone());
        let prompt = tokio::spawn(async move {
            l1.acquire(&r1).await;
            o1.lock().unwrap().push("prompt");
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (l2, r2, o2) = (l.clone(), r.clone(), order.clone());
        let edit = tokio::spawn(async move {
            l2.acquire_yielding(&r2).await;
            o2.lock().unwrap().push("edit");
        });
        prompt.await.unwrap();
        edit.await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec!["prompt", "edit"]);
        // Nobody waits now: a yielding sender takes a free slot at once.
        let free = vec![window("other", 1, 300)];
        assert!(
            tokio::time::timeout(Duration::from_millis(100), l.acquire_yielding(&free))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_unlearned_bucket_lets_one_request_go_until_it_is_taught() {
        let l = RateLimiter::new();
        let r = vec![Rule::Learned {
            lane: "threads".into(),
        }];
        assert!(l.try_acquire(&r).is_ok(), "the probe goes at once");
        assert!(
            l.try_acquire(&r).is_err(),
            "the rest wait for what it learns"
        );
        l.learn("threads", 2, Duration::from_secs(5));
        assert!(l.try_acquire(&r).is_ok());
        assert!(l.try_acquire(&r).is_ok());
        assert!(l.try_acquire(&r).is_err(), "the learned bucket is spent");
        // Past its reset the bucket is unknown again: one probe, then wait.
        l.learn("threads", 1, Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(l.try_acquire(&r).is_ok());
        assert!(l.try_acquire(&r).is_err());
    }

    #[test]
    fn an_older_answer_in_the_same_window_does_not_raise_the_count() {
        let l = RateLimiter::new();
        let r = vec![Rule::Learned { lane: "c".into() }];
        l.learn("c", 1, Duration::from_secs(5));
        // The answer to a request sent earlier arrives last, with more remaining.
        l.learn("c", 3, Duration::from_secs(5));
        assert!(l.try_acquire(&r).is_ok());
        assert!(l.try_acquire(&r).is_err(), "one was left, not three");
    }
}
