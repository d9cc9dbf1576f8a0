//! Repeat limiting: the same (event_type, source, title) seen again inside
//! `repeat_interval` is counted, not re-sent.
//!
//! The window is fixed from the first occurrence (not sliding), so a steady
//! repeat is still delivered once per interval instead of never again. Memory
//! is bounded: expired keys are evicted as time passes, and past the cap the
//! oldest windows are dropped (their next occurrence is simply sent again).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::event::Event;

/// Default cap on the number of distinct keys remembered.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

type Key = (String, String, String);

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatVerdict {
    /// Not seen inside the interval: send it (and a new window starts).
    First,
    /// Seen inside the interval: count it, don't send. `count` is how many
    /// times the key was seen in this window, the first delivery included
    /// (so the first repeat says 2); `first_seen` is when the window opened.
    Repeat {
        count: u32,
        first_seen: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
struct Window {
    first_seen: DateTime<Utc>,
    count: u32,
}

#[derive(Debug, Clone)]
pub struct RepeatLimiter {
    interval: TimeDelta,
    max_keys: usize,
    windows: HashMap<Key, Window>,
    /// Windows in the order they opened. An entry whose window has since been
    /// replaced is stale and skipped when it reaches the front.
    order: VecDeque<(DateTime<Utc>, Key)>,
}

impl RepeatLimiter {
    /// A zero interval disables limiting: every event is `First`.
    pub fn new(interval: Duration) -> RepeatLimiter {
        Self::with_max_keys(interval, DEFAULT_MAX_KEYS)
    }

    pub fn with_max_keys(interval: Duration, max_keys: usize) -> RepeatLimiter {
        RepeatLimiter {
            interval: TimeDelta::from_std(interval).unwrap_or(TimeDelta::MAX),
            max_keys: max_keys.max(1),
            windows: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn check(&mut self, ev: &Event, now: DateTime<Utc>) -> RepeatVerdict {
        if self.interval.is_zero() {
            return RepeatVerdict::First;
        }
        self.evict_expired(now);
        let key = (ev.event_type.clone(), ev.source.clone(), ev.title.clone());
        let interval = self.interval;
        if let Some(w) = self.windows.get_mut(&key)
            && now.signed_duration_since(w.first_seen) < interval
        {
            w.count = w.count.saturating_add(1);
            return RepeatVerdict::Repeat {
                count: w.count,
                first_seen: w.first_seen,
            };
        }
        while self.windows.len() >= self.max_keys && !self.windows.contains_key(&key) {
            self.pop_oldest();
        }
        self.windows.insert(
            key.clone(),
            Window {
                first_seen: now,
                count: 1,
            },
        );
        self.order.push_back((now, key));
        RepeatVerdict::First
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    fn open(&self, first_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now.signed_duration_since(first_seen) < self.interval
    }

    fn evict_expired(&mut self, now: DateTime<Utc>) {
        while let Some((opened, _)) = self.order.front() {
            if self.open(*opened, now) {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Drop the oldest queued window (if still current, its key goes too).
    fn pop_oldest(&mut self) {
        if let Some((opened, key)) = self.order.pop_front()
            && self
                .windows
                .get(&key)
                .is_some_and(|w| w.first_seen == opened)
        {
            self.windows.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Category, EventId, Severity};
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
    }

    fn ev(event_type: &str, source: &str, title: &str) -> Event {
        Event {
            event_id: EventId::generate(t0(), 0),
            event_type: event_type.into(),
            category: Category::System,
            severity: Severity::Warning,
            source: source.into(),
            timestamp: t0(),
            title: title.into(),
            body: String::new(),
            labels: BTreeMap::new(),
            metrics: serde_json::Map::new(),
            action: None,
            attachments: Vec::new(),
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + TimeDelta::seconds(secs)
    }

    #[test]
    fn repeats_inside_the_interval_are_counted() {
        use RepeatVerdict::*;
        let mut r = RepeatLimiter::new(Duration::from_secs(60));
        let disk = ev("ops.disk", "host:a", "disk 91%");
        let cases = [
            (&disk, 0, First),
            (
                &disk,
                10,
                Repeat {
                    count: 2,
                    first_seen: at(0),
                },
            ),
            (
                &disk,
                59,
                Repeat {
                    count: 3,
                    first_seen: at(0),
                },
            ),
            // the boundary: at exactly first_seen + interval a new window opens
            (&disk, 60, First),
            (
                &disk,
                61,
                Repeat {
                    count: 2,
                    first_seen: at(60),
                },
            ),
        ];
        for (i, (e, t, want)) in cases.into_iter().enumerate() {
            assert_eq!(r.check(e, at(t)), want, "case {i}");
        }
    }

    #[test]
    fn the_key_is_type_source_and_title() {
        let mut r = RepeatLimiter::new(Duration::from_secs(60));
        assert_eq!(r.check(&ev("a", "s", "t"), at(0)), RepeatVerdict::First);
        assert_eq!(r.check(&ev("b", "s", "t"), at(1)), RepeatVerdict::First);
        assert_eq!(r.check(&ev("a", "s2", "t"), at(1)), RepeatVerdict::First);
        assert_eq!(r.check(&ev("a", "s", "t2"), at(1)), RepeatVerdict::First);
        let mut other_body = ev("a", "s", "t");
        other_body.body = "different".into();
        other_body.event_id = EventId::generate(t0(), 9);
        assert!(matches!(
            r.check(&other_body, at(2)),
            RepeatVerdict::Repeat { count: 2, .. }
        ));
    }

    #[test]
    fn zero_interval_disables() {
        let mut r = RepeatLimiter::new(Duration::ZERO);
        let e = ev("a", "s", "t");
        assert_eq!(r.check(&e, at(0)), RepeatVerdict::First);
        assert_eq!(r.check(&e, at(0)), RepeatVerdict::First);
        assert!(r.is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = RepeatLimiter::with_max_keys(Duration::from_secs(60), 100);
        // expired keys go as time passes
        for n in 0..50 {
            r.check(&ev("a", "s", &n.to_string()), at(0));
        }
        assert_eq!(r.len(), 50);
        r.check(&ev("b", "s", "t"), at(60));
        assert_eq!(r.len(), 1);
        // the cap drops the oldest windows first
        for n in 0..1_000 {
            r.check(&ev("c", "s", &n.to_string()), at(61 + n / 100));
            assert!(r.len() <= 100);
        }
        assert!(r.order.len() <= 200, "{}", r.order.len());
        assert!(matches!(
            r.check(&ev("c", "s", "999"), at(70)),
            RepeatVerdict::Repeat { .. }
        ));
        assert_eq!(r.check(&ev("c", "s", "0"), at(70)), RepeatVerdict::First);
    }

    #[test]
    fn a_reopened_window_is_not_evicted_by_its_stale_entry() {
        let mut r = RepeatLimiter::with_max_keys(Duration::from_secs(60), 2);
        let a = ev("a", "s", "t");
        r.check(&a, at(0));
        r.check(&a, at(60)); // window reopens; the entry from at(0) is stale
        r.check(&ev("b", "s", "t"), at(61));
        assert!(matches!(
            r.check(&a, at(62)),
            RepeatVerdict::Repeat { count: 2, .. }
        ));
    }
}
