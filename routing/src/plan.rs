//! An event's fate after routing: for each target the router chose, does it
//! go out now, or is it held (by a mute until the mute ends, or by its
//! category's digest window until the window closes)? Pure: the mutes, the
//! windows and the time are passed in.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::destination::Destination;
use crate::event::Category;
use crate::mute::{Mute, MuteId, holding_mute};
use crate::rules::{Decision, RouteInput};

/// Why a delivery waits instead of going out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Hold {
    /// Held by this mute; released as one "while muted" digest when it ends.
    Mute(MuteId),
    /// Held by the digest window of this category; released as one digest
    /// when the window closes.
    Digest(Category),
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Mute(id) => write!(f, "{id}"),
            Hold::Digest(category) => write!(f, "digest window of {category}"),
        }
    }
}

/// One target of a decision, with its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub destination: Destination,
    /// The name of the rule that chose the destination.
    pub rule: String,
    /// `None`: send now.
    pub hold: Option<Hold>,
}

/// Plan every target of `decision`. A mute holds first (its digest says
/// "while muted"); otherwise a category with a digest window is held for it.
pub fn plan(
    decision: &Decision,
    input: &RouteInput,
    mutes: &[Mute],
    digest_windows: &BTreeMap<Category, Duration>,
    now: DateTime<Utc>,
) -> Vec<Planned> {
    let window = digest_windows.contains_key(input.category);
    decision
        .targets
        .iter()
        .map(|t| {
            let hold = match holding_mute(mutes, input, &t.destination, now) {
                Some(m) => Some(Hold::Mute(m.id.clone())),
                None if window => Some(Hold::Digest(input.category.clone())),
                None => None,
            };
            Planned {
                destination: t.destination.clone(),
                rule: t.rule.name.clone(),
                hold,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;
    use crate::mute::MuteRequest;
    use crate::rules::{Router, RuleSpec};
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
    }

    fn router() -> Router {
        let rules: Vec<RuleSpec> = serde_json::from_value(serde_json::json!([
            {"match": {"category": "system"}, "to": ["discord:system", "telegram:operator"]},
            {"match": {"category": "briefing"}, "to": ["discord:briefings"]}
        ]))
        .unwrap();
        Router::new(rules, "discord:system".parse().unwrap()).unwrap()
    }

    fn mute(target: &str, minutes: i64) -> Mute {
        let request = MuteRequest {
            target: target.parse().unwrap(),
            duration: Duration::from_secs(minutes as u64 * 60),
            created_by: "test".into(),
            reason: String::new(),
            force: false,
        };
        Mute::new("mute_1".parse().unwrap(), request, t0()).unwrap()
    }

    #[test]
    fn a_mute_holds_its_destination_only_and_wins_over_a_digest_window() {
        let router = router();
        let cat = Category::System;
        let input = RouteInput::new(&cat, Severity::Info, "worker:a", "x.y");
        let decision = router.route(&input);
        let windows = BTreeMap::from([(Category::System, Duration::from_secs(60))]);
        let planned = plan(
            &decision,
            &input,
            &[mute("discord:system", 10)],
            &windows,
            t0(),
        );
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[0].hold, Some(Hold::Mute("mute_1".parse().unwrap())));
        assert_eq!(planned[1].hold, Some(Hold::Digest(Category::System)));
    }

    #[test]
    fn no_mute_and_no_window_sends_now_and_an_expired_mute_holds_nothing() {
        let router = router();
        let cat = Category::Briefing;
        let input = RouteInput::new(&cat, Severity::Info, "worker:a", "x.y");
        let decision = router.route(&input);
        let later = t0() + chrono::TimeDelta::minutes(30);
        let planned = plan(
            &decision,
            &input,
            &[mute("briefing", 10)],
            &BTreeMap::new(),
            later,
        );
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].destination, Destination::discord("briefings"));
        assert_eq!(planned[0].hold, None);
        let held = plan(
            &decision,
            &input,
            &[mute("briefing", 10)],
            &BTreeMap::new(),
            t0(),
        );
        assert_eq!(held[0].hold, Some(Hold::Mute("mute_1".parse().unwrap())));
    }
}
