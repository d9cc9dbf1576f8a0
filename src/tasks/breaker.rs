//! Circuit breakers (seed 000): a cap on attempts with exponential backoff
//! and jitter between them, a per-task token/cost budget, a per-task time
//! box, and an agent that pauses itself after N consecutive failures.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::runtime::Usage;
use super::spec::Budget;

/// Delay before attempt `n + 1`: `base · 2^(n-1)`, capped at `max`, then
/// drawn uniformly from its upper half so that retries of many tasks that
/// failed together do not hit the same moment again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub jitter: bool,
}

impl Backoff {
    /// The delay after the `failed_attempts`-th failure (1-based).
    pub fn delay(&self, failed_attempts: u32, rng: &mut impl Rng) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1u32 << exp).min(self.max);
        if !self.jitter || full.is_zero() {
            return full;
        }
        let half = full / 2;
        half + Duration::from_nanos(rng.random_range(0..=(full - half).as_nanos() as u64))
    }
}

/// The breakers around one agent's pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Attempts per task, the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Time box of a whole task, all attempts and backoff included.
    pub task_timeout: Duration,
    /// The agent pauses itself after this many tasks in a row failed.
    pub pause_after_failures: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            max_attempts: 3,
            backoff: Backoff {
                base: Duration::from_secs(2),
                max: Duration::from_secs(60),
                jitter: true,
            },
            task_timeout: Duration::from_secs(30 * 60),
            pause_after_failures: 5,
        }
    }
}

/// The budget a task has spent past, as a sentence, or `None` while within it.
pub fn over_budget(budget: Option<&Budget>, used: &Usage) -> Option<String> {
    let budget = budget?;
    if let Some(limit) = budget.tokens
        && used.tokens > limit
    {
        return Some(format!(
            "over budget: {} tokens used, the budget is {limit}",
            used.tokens
        ));
    }
    if let Some(limit) = budget.cost_usd
        && used.cost_usd > limit
    {
        return Some(format!(
            "over budget: ${:.4} spent, the budget is ${limit:.4}",
            used.cost_usd
        ));
    }
    None
}

/// Counts tasks that failed in a row; open (the agent pauses) at the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsecutiveFailures {
    pub threshold: u32,
    pub count: u32,
}

impl ConsecutiveFailures {
    pub fn new(threshold: u32) -> Self {
        ConsecutiveFailures {
            threshold: threshold.max(1),
            count: 0,
        }
    }

    pub fn record_success(&mut self) {
        self.count = 0;
    }

    /// Returns true when this failure opened the breaker.
    pub fn record_failure(&mut self) -> bool {
        self.count = self.count.saturating_add(1);
        self.count == self.threshold
    }

    pub fn is_open(&self) -> bool {
        self.count >= self.threshold
    }

    /// `switchyard resume`: close the breaker.
    pub fn reset(&mut self) {
        self.count = 0;
    }
}
