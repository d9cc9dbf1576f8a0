//! Events: the seeds' standard payload (seed 000) plus `category`, `severity`,
//! `title` and `body` (DESIGN.md 3.3).
//!
//! Input arrives as an [`EventDraft`] (anything a producer may write, all
//! optional) and becomes an [`Event`] through [`EventDraft::validate`], which
//! reports every problem at once. Oversized text is truncated with a visible
//! note rather than rejected, so a chatty producer still gets its message out.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attachment::{AttachmentPath, check_attachments};

/// Longest body kept; the rest is cut with a note (Discord embeds and
/// Telegram messages both top out at 4096 characters, so anything past this
/// would only be split into many messages nobody reads).
pub const MAX_BODY_CHARS: usize = 8_000;
/// Discord's embed title limit.
pub const MAX_TITLE_CHARS: usize = 256;
/// `event_id`, `event_type` and `source` are identifiers, not prose.
pub const MAX_IDENT_CHARS: usize = 128;
pub const MAX_LABELS: usize = 32;

/// The categories of DESIGN.md 3.4. An unknown category is kept (as `Other`)
/// so that it reaches the `unmatched` destination instead of being rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Briefing,
    Alert,
    SubagentResult,
    System,
    MemoryUpdate,
    Chat,
    ActionRequired,
    Other(String),
}

impl Category {
    pub const KNOWN: [Category; 7] = [
        Category::Briefing,
        Category::Alert,
        Category::SubagentResult,
        Category::System,
        Category::MemoryUpdate,
        Category::Chat,
        Category::ActionRequired,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Category::Briefing => "briefing",
            Category::Alert => "alert",
            Category::SubagentResult => "subagent_result",
            Category::System => "system",
            Category::MemoryUpdate => "memory_update",
            Category::Chat => "chat",
            Category::ActionRequired => "action_required",
            Category::Other(s) => s,
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Category::Other(_))
    }
}

impl FromStr for Category {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "briefing" => Category::Briefing,
            "alert" => Category::Alert,
            "subagent_result" => Category::SubagentResult,
            "system" => Category::System,
            "memory_update" => Category::MemoryUpdate,
            "chat" => Category::Chat,
            "action_required" => Category::ActionRequired,
            other => Category::Other(other.to_string()),
        })
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or_else(|never| match never {}))
    }
}

/// How urgent an event is. Ordered: `Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity {other:?}: use info, warning or critical"
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `evt_YYYYMMDD_HHMMSS_NNN` when generated; producers may use any identifier
/// of letters, digits, `_`, `-`, `.` and `:` (it names files in `done/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// A fresh id: the second, then `nonce` (the caller's randomness: this
    /// crate has none) so that ids made in the same second differ.
    pub fn generate(at: DateTime<Utc>, nonce: u32) -> Self {
        EventId(format!("evt_{}_{nonce:08x}", at.format("%Y%m%d_%H%M%S")))
    }

    /// The id of an event an inbox item carried without one: the item's own
    /// id and when it was first taken, which every later attempt of the same
    /// drop keeps (a crash and a retry make the same event, not a second
    /// one), while the same file name dropped again another day is another
    /// event. Long item ids are cut to fit.
    pub fn for_item(item_id: &str, first_taken: DateTime<Utc>) -> Self {
        let stem: String = item_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_-.:".contains(*c))
            .take(MAX_IDENT_CHARS - 30)
            .collect();
        EventId(format!(
            "evt_{stem}_{}",
            first_taken.format("%Y%m%dT%H%M%S%.6fZ")
        ))
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > MAX_IDENT_CHARS {
            return Err(format!(
                "event_id must be 1 to {MAX_IDENT_CHARS} characters"
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
            || s.starts_with('.')
        {
            return Err(format!(
                "event_id {s:?} may contain only letters, digits, `_`, `-`, `.` and `:` and must not start with `.`"
            ));
        }
        Ok(EventId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated event, ready to route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: EventId,
    pub event_type: String,
    pub category: Category,
    pub severity: Severity,
    pub source: String,
    pub timestamp: DateTime<Utc>,
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<serde_json::Value>,
    /// Files that go out with the message, relative to the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentPath>,
}

/// What a producer may write: every field optional, unknown fields kept
/// aside so nothing a producer sent is silently lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventDraft {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<serde_json::Value>,
    /// Workspace-relative paths of files to send with the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Everything wrong with a draft, each naming the field and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: {}", .problems.join("; "))]
pub struct EventError {
    pub problems: Vec<String>,
}

fn truncate_chars(text: &str, max: usize) -> Option<String> {
    let total = text.chars().count();
    if total <= max {
        return None;
    }
    let note = format!(
        "\n… (truncated: {} of {total} characters omitted)",
        total - max
    );
    let keep = max.saturating_sub(note.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&note);
    Some(out)
}

fn check_ident(field: &str, value: &str, problems: &mut Vec<String>) {
    if value.trim().is_empty() {
        problems.push(format!(
            "`{field}` is empty: give a short identifier such as `ops.heartbeat`"
        ));
    } else if value.chars().count() > MAX_IDENT_CHARS {
        problems.push(format!(
            "`{field}` is longer than {MAX_IDENT_CHARS} characters"
        ));
    } else if value.chars().any(char::is_control) {
        problems.push(format!("`{field}` contains control characters"));
    }
}

impl EventDraft {
    /// Validate and normalize. `now` fills a missing timestamp and
    /// `fallback_id` a missing id; both come from the caller so this stays pure.
    pub fn validate(self, now: DateTime<Utc>, fallback_id: EventId) -> Result<Event, EventError> {
        let mut problems = Vec::new();

        if let Some(kind) = &self.kind
            && kind != "event"
        {
            problems.push(format!("`kind` is {kind:?}, not \"event\""));
        }
        let event_id = match self.event_id.as_deref() {
            Some(id) => EventId::parse(id).unwrap_or_else(|e| {
                problems.push(e);
                EventId(String::new())
            }),
            None => fallback_id,
        };
        let category: Category = match self.category.as_deref() {
            Some(c) if !c.trim().is_empty() => {
                c.trim().parse().unwrap_or_else(|never| match never {})
            }
            _ => {
                problems.push("`category` is missing: use one of briefing, alert, subagent_result, system, memory_update, chat, action_required".into());
                Category::Other(String::new())
            }
        };
        let severity = match self.severity.as_deref() {
            None => Severity::Info,
            Some(s) => s.parse().unwrap_or_else(|e| {
                problems.push(format!("`severity`: {e}"));
                Severity::Info
            }),
        };
        let event_type = self
            .event_type
            .unwrap_or_else(|| format!("{category}.event"));
        check_ident("event_type", &event_type, &mut problems);
        let source = self.source.unwrap_or_else(|| "unknown".to_string());
        check_ident("source", &source, &mut problems);
        let timestamp = match self.timestamp.as_deref() {
            None => now,
            Some(t) => DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|e| {
                problems.push(format!("`timestamp` {t:?} is not RFC 3339 ({e}): write it like 2026-11-21T10:15:00Z"));
                now
            }),
        };
        let title = match self.title {
            Some(t) if !t.trim().is_empty() => t,
            _ => {
                problems.push("`title` is missing: give a one-line summary".into());
                String::new()
            }
        };
        let title = truncate_chars(&title, MAX_TITLE_CHARS).unwrap_or(title);
        let body = self.body.unwrap_or_default();
        let body = truncate_chars(&body, MAX_BODY_CHARS).unwrap_or(body);
        if self.labels.len() > MAX_LABELS {
            problems.push(format!(
                "{} labels given; at most {MAX_LABELS}",
                self.labels.len()
            ));
        }
        for (k, v) in &self.labels {
            if k.is_empty() || k.len() > 64 || v.chars().count() > 256 {
                problems.push(format!(
                    "label {k:?}: keys are 1 to 64 bytes, values at most 256 characters"
                ));
            }
        }

        let attachments = check_attachments(&self.attachments, &mut problems);

        if !problems.is_empty() {
            return Err(EventError { problems });
        }
        Ok(Event {
            event_id,
            event_type,
            category,
            severity,
            source,
            timestamp,
            title,
            body,
            labels: self.labels,
            metrics: self.metrics,
            action: self.action,
            attachments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 15, 0).unwrap()
    }

    #[test]
    fn seed_payload_validates() {
        let draft: EventDraft = serde_json::from_str(
            r#"{"event_id":"evt_20261121_101500_001","event_type":"ops.invoice_autoclaw",
            "category":"subagent_result","severity":"info","source":"worker:opsclaw",
            "timestamp":"2026-11-21T10:15:00Z","title":"Invoice run finished","body":"...",
            "metrics":{"latency_ms":420,"cost_usd":0.12},
            "action":{"type":"apply_patch","target":"repo","branch":"worktrees/opsclaw"}}"#,
        )
        .unwrap();
        let ev = draft.validate(now(), EventId::generate(now(), 0)).unwrap();
        assert_eq!(ev.category, Category::SubagentResult);
        assert_eq!(ev.metrics["latency_ms"], 420);
    }

    #[test]
    fn generated_ids_have_the_documented_shape() {
        assert_eq!(
            EventId::generate(now(), 0xab12).as_str(),
            "evt_20261121_101500_0000ab12"
        );
        let id = EventId::for_item("briefing", now());
        assert_eq!(id.as_str(), "evt_briefing_20261121T101500.000000Z");
        assert!(EventId::parse(id.as_str()).is_ok());
        let long = EventId::for_item(&"x".repeat(128), now());
        assert!(EventId::parse(long.as_str()).is_ok(), "{long}");
    }

    #[test]
    fn unknown_category_is_kept_not_rejected() {
        let d = EventDraft {
            category: Some("weird".into()),
            title: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(
            d.validate(now(), EventId::generate(now(), 1))
                .unwrap()
                .category,
            Category::Other("weird".into())
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let d = EventDraft {
            severity: Some("loud".into()),
            timestamp: Some("yesterday".into()),
            event_id: Some("../etc".into()),
            ..Default::default()
        };
        let err = d.validate(now(), EventId::generate(now(), 1)).unwrap_err();
        assert_eq!(err.problems.len(), 5, "{err}");
    }

    #[test]
    fn huge_body_is_truncated_with_a_note() {
        let d = EventDraft {
            category: Some("system".into()),
            title: Some("t".into()),
            body: Some("x".repeat(50_000)),
            ..Default::default()
        };
        let ev = d.validate(now(), EventId::generate(now(), 1)).unwrap();
        assert_eq!(ev.body.chars().count(), MAX_BODY_CHARS);
        assert!(ev.body.ends_with("characters omitted)"));
    }
}
