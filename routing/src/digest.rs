//! Digests: many events as one message.
//!
//! [`HeldSummary`] is the "while muted" digest (and the text of any batch):
//! counts per event type, the last few titles, the time span. Which events a
//! digest window holds is decided by [`crate::plan`]; the runtime keeps them
//! held in its store until the window closes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Event;

/// How many of the most recent titles a summary keeps.
pub const SUMMARY_TITLES: usize = 5;
/// Upper bound of [`HeldSummary::render_text`], in characters: under Discord's
/// 2,000 (content) and Telegram's 4,096, with room for a platform's framing.
pub const SUMMARY_MAX_CHARS: usize = 1_800;

/// Characters of titles one page of a summary holds: under Discord's embed
/// description and Telegram's message (4,096 each), with room for the counts
/// and the platform's framing.
pub const TITLES_PAGE_CHARS: usize = 3_000;
/// Longest title line a page shows; longer titles are cut with `…`.
pub const TITLE_LINE_MAX: usize = 160;

/// Every title as a `• title` line, in the order given, in pages of at most
/// `budget` characters (each title cut to [`TITLE_LINE_MAX`]): a summary that
/// names every message it stands for, and follow-up pages when one message
/// cannot hold them all. Never empty for a non-empty input.
pub fn title_pages<S: AsRef<str>>(titles: &[S], budget: usize) -> Vec<Vec<String>> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut used = 0;
    for t in titles {
        let line = clip(&format!("• {}", t.as_ref().trim()), TITLE_LINE_MAX);
        let len = line.chars().count() + 1;
        match pages.last_mut() {
            Some(page) if used + len <= budget.max(TITLE_LINE_MAX + 1) => {
                used += len;
                page.push(line);
            }
            _ => {
                used = len;
                pages.push(vec![line]);
            }
        }
    }
    pages
}

/// What a set of events amounted to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldSummary {
    pub total: usize,
    pub per_event_type: BTreeMap<String, usize>,
    /// The last [`SUMMARY_TITLES`] titles, oldest first, in the order given.
    pub last_titles: Vec<String>,
    /// Earliest and latest event timestamp.
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl HeldSummary {
    /// Summarise events given in the order they arrived.
    pub fn from_events(events: &[Event]) -> HeldSummary {
        let mut s = HeldSummary {
            total: events.len(),
            ..HeldSummary::default()
        };
        for ev in events {
            *s.per_event_type.entry(ev.event_type.clone()).or_default() += 1;
            s.first = Some(s.first.map_or(ev.timestamp, |f| f.min(ev.timestamp)));
            s.last = Some(s.last.map_or(ev.timestamp, |l| l.max(ev.timestamp)));
        }
        let skip = events.len().saturating_sub(SUMMARY_TITLES);
        s.last_titles = events[skip..].iter().map(|e| e.title.clone()).collect();
        s
    }

    /// Plain text, at most [`SUMMARY_MAX_CHARS`] characters: the header, the
    /// span, the counts (most frequent first) and the last titles. Whatever
    /// does not fit is cut with a line saying how much was left out.
    pub fn render_text(&self, header: &str) -> String {
        const LINE_MAX: usize = 160;
        let mut lines = vec![clip(header.trim(), 300)];
        if self.total == 0 {
            lines.push("Nothing was held.".to_string());
            return lines.join("\n");
        }
        let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let span = match (self.first, self.last) {
            (Some(f), Some(l)) if f == l => format!(" at {}", fmt(f)),
            (Some(f), Some(l)) => format!(" from {} to {}", fmt(f), fmt(l)),
            _ => String::new(),
        };
        let noun = if self.total == 1 { "event" } else { "events" };
        lines.push(format!("{} {noun}{span}.", self.total));

        let mut counts: Vec<(&String, &usize)> = self.per_event_type.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut body = vec!["By type:".to_string()];
        body.extend(
            counts
                .iter()
                .map(|(t, n)| clip(&format!("  {t} × {n}"), LINE_MAX)),
        );
        if !self.last_titles.is_empty() {
            body.push("Latest:".to_string());
            body.extend(
                self.last_titles
                    .iter()
                    .rev()
                    .map(|t| clip(&format!("  • {t}"), LINE_MAX)),
            );
        }

        // Fill up to the bound, keeping room for the "left out" line.
        const RESERVE: usize = 40;
        let mut used: usize = lines.iter().map(|l| l.chars().count() + 1).sum();
        let mut shown = 0;
        for line in &body {
            let len = line.chars().count() + 1;
            if used + len > SUMMARY_MAX_CHARS - RESERVE {
                break;
            }
            used += len;
            shown += 1;
        }
        lines.extend(body[..shown].iter().cloned());
        if shown < body.len() {
            lines.push(format!("… {} more lines left out", body.len() - shown));
        }
        lines.join("\n")
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_pages_name_every_title_in_order_within_the_budget() {
        let titles: Vec<String> = (0..300).map(|i| format!("Briefing number {i}")).collect();
        let pages = title_pages(&titles, 1_000);
        assert!(pages.len() > 1);
        let all: Vec<&String> = pages.iter().flatten().collect();
        assert_eq!(all.len(), 300);
        assert_eq!(all[0], "• Briefing number 0");
        assert_eq!(all[299], "• Briefing number 299");
        for p in &pages {
            assert!(p.iter().map(|l| l.chars().count() + 1).sum::<usize>() <= 1_000);
        }
        let long = title_pages(&["x".repeat(10_000)], 1_000);
        assert_eq!(long[0][0].chars().count(), TITLE_LINE_MAX);
        assert!(title_pages::<&str>(&[], 1_000).is_empty());
    }
    use crate::event::Category;
    use crate::event::{EventId, Severity};
    use chrono::{TimeDelta, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
    }

    fn ev(n: u32, category: Category, event_type: &str, at: DateTime<Utc>) -> Event {
        Event {
            event_id: EventId::generate(at, n),
            event_type: event_type.into(),
            category,
            severity: Severity::Info,
            source: "cron".into(),
            timestamp: at,
            title: format!("title {n}"),
            body: String::new(),
            labels: BTreeMap::new(),
            metrics: serde_json::Map::new(),
            action: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn summary_counts_titles_and_span() {
        let events: Vec<Event> = (0..8)
            .map(|n| {
                let ty = if n % 3 == 0 {
                    "ops.cron"
                } else {
                    "ops.heartbeat"
                };
                // out of order on purpose: first/last are by timestamp
                ev(
                    n,
                    Category::System,
                    ty,
                    t0() + TimeDelta::minutes(i64::from((n * 5) % 8)),
                )
            })
            .collect();
        let s = HeldSummary::from_events(&events);
        assert_eq!(s.total, 8);
        assert_eq!(s.per_event_type["ops.heartbeat"], 5);
        assert_eq!(s.per_event_type["ops.cron"], 3);
        assert_eq!(
            s.last_titles,
            ["title 3", "title 4", "title 5", "title 6", "title 7"]
        );
        assert_eq!(s.first, Some(t0()));
        assert_eq!(s.last, Some(t0() + TimeDelta::minutes(7)));
        let text = s.render_text("While `system` was muted:");
        assert_eq!(
            text,
            "While `system` was muted:\n8 events from 2026-11-21 10:00 UTC to 2026-11-21 10:07 UTC.\n\
             By type:\n  ops.heartbeat × 5\n  ops.cron × 3\nLatest:\n  • title 7\n  • title 6\n  • title 5\n  • title 4\n  • title 3"
        );
        assert_eq!(
            HeldSummary::from_events(&[]).render_text("h"),
            "h\nNothing was held."
        );
    }

    #[test]
    fn render_is_bounded() {
        let mut events: Vec<Event> = (0..500)
            .map(|n| {
                ev(
                    n,
                    Category::System,
                    &format!("type.{n:04}.{}", "x".repeat(100)),
                    t0(),
                )
            })
            .collect();
        for e in &mut events {
            e.title = "T".repeat(256);
        }
        let text = HeldSummary::from_events(&events).render_text(&"H".repeat(5_000));
        assert!(
            text.chars().count() <= SUMMARY_MAX_CHARS,
            "{}",
            text.chars().count()
        );
        assert!(text.ends_with("more lines left out"), "{text}");
        assert!(text.contains("500 events at 2026-11-21 10:00 UTC."));
    }
}
