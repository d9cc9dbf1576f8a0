//! The bot-loop guard: the fleet's bots may talk to each other, but a pair
//! of bots exchanges at most `limit` turns within `window`; past it the
//! pair is paused (one notice, then silence) until the window has room.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// What the guard says about one more turn between two bots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairVerdict {
    Allowed,
    /// Over the limit; `first` is true for the first refusal of this pause.
    Paused {
        first: bool,
    },
}

#[derive(Debug, Default)]
struct Pair {
    turns: VecDeque<Instant>,
    noticed: bool,
}

#[derive(Debug)]
pub struct PairGuard {
    limit: u32,
    window: Duration,
    pairs: HashMap<(String, String), Pair>,
}

impl PairGuard {
    pub fn new(limit: u32, window: Duration) -> Self {
        PairGuard {
            limit,
            window,
            pairs: HashMap::new(),
        }
    }

    /// One more turn from bot `a` to bot `b` (the order does not matter).
    pub fn check(&mut self, a: &str, b: &str, now: Instant) -> PairVerdict {
        let key = if a <= b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        };
        let pair = self.pairs.entry(key).or_default();
        while pair
            .turns
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            pair.turns.pop_front();
        }
        if pair.turns.len() < self.limit as usize {
            pair.turns.push_back(now);
            pair.noticed = false;
            PairVerdict::Allowed
        } else {
            let first = !pair.noticed;
            pair.noticed = true;
            PairVerdict::Paused { first }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_pauses_at_the_limit_with_one_notice_and_resumes_after_the_window() {
        let mut g = PairGuard::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                g.check("1", "2", t0 + Duration::from_secs(i)),
                PairVerdict::Allowed
            );
        }
        assert_eq!(
            g.check("2", "1", t0 + Duration::from_secs(4)),
            PairVerdict::Paused { first: true }
        );
        assert_eq!(
            g.check("1", "2", t0 + Duration::from_secs(5)),
            PairVerdict::Paused { first: false }
        );
        // Another pair is not affected.
        assert_eq!(
            g.check("1", "3", t0 + Duration::from_secs(5)),
            PairVerdict::Allowed
        );
        // Once the oldest turn leaves the window there is room again.
        assert_eq!(
            g.check("1", "2", t0 + Duration::from_secs(61)),
            PairVerdict::Allowed
        );
    }
}
