//! Fleet-wide mutes: what a mute is, whether one may be made, and whether it
//! holds a given event for a given destination.
//!
//! The runtime stores mutes with the fleet's shared state (the workspace
//! status file) so a mute made anywhere holds for every agent; this module only
//! decides. Muted events are held, not dropped: the runtime keeps them and
//! sends one "while muted" digest (see [`crate::digest::HeldSummary`]) when the
//! mute ends.
//!
//! Two guards keep a mute from silencing the human loop. Making a mute on
//! `action_required`, `alert`, any `telegram:*` destination or `discord:alerts`
//! needs `force`; and a mute without `force` never holds a `critical` or an
//! `action_required` event, whatever its target.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::destination::{Destination, Platform};
use crate::event::{Category, Severity};
use crate::rules::RouteInput;

/// The longest mute: past this, a mute is a configuration change and belongs in the routes.
pub const MAX_MUTE: Duration = Duration::from_secs(30 * 24 * 3600);

const TARGET_HELP: &str = "write a category (`system`), a destination (`discord:system`, `telegram:operator`) \
                           or a source (`source:worker:opsclaw`)";

/// What a mute silences: a category, a destination or a source, written
/// `system`, `discord:system`, `source:worker:opsclaw`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MuteTarget {
    Category(Category),
    Destination(Destination),
    Source(String),
}

impl MuteTarget {
    /// Why muting this would silence the human loop, if it would.
    pub fn protected_reason(&self) -> Option<&'static str> {
        match self {
            MuteTarget::Category(Category::ActionRequired) => {
                Some("`action_required` events are the ones a human must answer")
            }
            MuteTarget::Category(Category::Alert) => Some("critical alerts are `alert` events"),
            MuteTarget::Destination(d) if d.platform == Platform::Telegram => {
                Some("Telegram is where approvals and critical alerts reach you")
            }
            MuteTarget::Destination(d)
                if d.platform == Platform::Discord && d.alias == "alerts" =>
            {
                Some("`discord:alerts` is where alerts are posted")
            }
            _ => None,
        }
    }
}

impl FromStr for MuteTarget {
    type Err = MuteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            |why: &str| MuteError::BadTarget(format!("mute target {s:?} {why}: {TARGET_HELP}"));
        let s_trim = s.trim();
        if let Some(source) = s_trim.strip_prefix("source:") {
            if source.is_empty() || source.chars().count() > crate::event::MAX_IDENT_CHARS {
                return Err(bad("names no source (or one that is too long)"));
            }
            if source.chars().any(char::is_control) {
                return Err(bad("contains control characters"));
            }
            return Ok(MuteTarget::Source(source.to_string()));
        }
        if s_trim.contains(':') {
            return s_trim
                .parse::<Destination>()
                .map(MuteTarget::Destination)
                .map_err(|e| bad(&format!("({e})")));
        }
        match s_trim.parse::<Category>() {
            Ok(c) if c.is_known() => Ok(MuteTarget::Category(c)),
            _ => Err(bad("is not a category, destination or source")),
        }
    }
}

impl TryFrom<String> for MuteTarget {
    type Error = MuteError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MuteTarget> for String {
    fn from(t: MuteTarget) -> String {
        t.to_string()
    }
}

impl fmt::Display for MuteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MuteTarget::Category(c) => write!(f, "{c}"),
            MuteTarget::Destination(d) => write!(f, "{d}"),
            MuteTarget::Source(s) => write!(f, "source:{s}"),
        }
    }
}

/// A mute's identifier, `mute_<something>`, chosen by the caller (this crate has no RNG).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MuteId(String);

impl MuteId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MuteId {
    type Err = MuteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("mute_").unwrap_or("");
        if rest.is_empty()
            || s.len() > 64
            || !rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(MuteError::BadId(s.to_string()));
        }
        Ok(MuteId(s.to_string()))
    }
}

impl TryFrom<String> for MuteId {
    type Error = MuteError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MuteId> for String {
    fn from(id: MuteId) -> String {
        id.0
    }
}

impl fmt::Display for MuteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MuteError {
    #[error("{0}")]
    BadTarget(String),
    #[error(
        "mute id {0:?} is not `mute_` followed by letters, digits, `_` or `-` (at most 64 characters in all)"
    )]
    BadId(String),
    #[error("a mute must last longer than zero: give a duration such as `--for 2h`")]
    ZeroDuration,
    #[error("a mute lasts at most 30 days, not {}: mute again when it ends, or change the routes instead", humantime::format_duration(*.0))]
    TooLong(Duration),
    #[error(
        "refusing to mute `{target}`: {why}, so muting it would silence the human loop. \
         Add `force` (`--force`) if you really mean it"
    )]
    Protected {
        target: MuteTarget,
        why: &'static str,
    },
}

/// What someone asked to mute, before it is checked and given an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuteRequest {
    pub target: MuteTarget,
    #[serde(with = "humantime_serde_compat")]
    pub duration: Duration,
    pub created_by: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub force: bool,
}

/// `duration` written as people write it (`2h 30m`), as on the command line.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format_args!(
                "duration {s:?}: {e}; write it like \"2h\" or \"45m\""
            ))
        })
    }
}

/// A fleet-wide mute, as stored in the status file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    pub id: MuteId,
    pub target: MuteTarget,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub force: bool,
}

impl Mute {
    /// Check a request and make the mute, starting `now`.
    pub fn new(id: MuteId, request: MuteRequest, now: DateTime<Utc>) -> Result<Mute, MuteError> {
        if request.duration.is_zero() {
            return Err(MuteError::ZeroDuration);
        }
        if request.duration > MAX_MUTE {
            return Err(MuteError::TooLong(request.duration));
        }
        if !request.force
            && let Some(why) = request.target.protected_reason()
        {
            return Err(MuteError::Protected {
                target: request.target,
                why,
            });
        }
        let length = TimeDelta::from_std(request.duration)
            .map_err(|_| MuteError::TooLong(request.duration))?;
        Ok(Mute {
            id,
            target: request.target,
            created_at: now,
            expires_at: now + length,
            created_by: request.created_by,
            reason: request.reason,
            force: request.force,
        })
    }

    /// In force at `now`: the mute ends at `expires_at` exactly.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }

    /// Whether the target names this event or destination, ignoring time and `force`.
    pub fn targets(&self, ev: &RouteInput, dest: &Destination) -> bool {
        match &self.target {
            MuteTarget::Category(c) => ev.category == c,
            MuteTarget::Destination(d) => d == dest,
            MuteTarget::Source(s) => ev.source == s,
        }
    }

    /// Whether this mute holds `ev` on its way to `dest` at `now`.
    pub fn holds(&self, ev: &RouteInput, dest: &Destination, now: DateTime<Utc>) -> bool {
        let protected =
            ev.severity == Severity::Critical || *ev.category == Category::ActionRequired;
        self.is_active(now) && (self.force || !protected) && self.targets(ev, dest)
    }

    /// Time for the "ends soon" notice: within `lead` of the end and not yet ended.
    /// The caller records that it posted the notice.
    pub fn notice_due(&self, now: DateTime<Utc>, lead: Duration) -> bool {
        let lead = TimeDelta::from_std(lead).unwrap_or(TimeDelta::MAX);
        self.is_active(now) && self.expires_at.signed_duration_since(now) <= lead
    }

    /// Time left at `now` (zero once ended).
    pub fn remaining(&self, now: DateTime<Utc>) -> Duration {
        self.expires_at
            .signed_duration_since(now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// One line for notices and listings:
    /// "`system` muted until 2026-11-21 12:15 UTC by aaron (deploy noise) [mute_x]".
    pub fn describe(&self) -> String {
        let mut line = format!(
            "`{}` muted until {} by {}",
            self.target,
            self.expires_at.format("%Y-%m-%d %H:%M UTC"),
            self.created_by
        );
        if !self.reason.is_empty() {
            line.push_str(&format!(" ({})", self.reason));
        }
        if self.force {
            line.push_str(", forced: holds critical and action_required too");
        }
        line.push_str(&format!(" [{}]", self.id));
        line
    }
}

/// The mute that holds `ev` for `dest` at `now`, if any. When several do,
/// the one that ends last, so the event is released (and digested) only when
/// nothing holds it any more.
pub fn holding_mute<'m>(
    mutes: &'m [Mute],
    ev: &RouteInput,
    dest: &Destination,
    now: DateTime<Utc>,
) -> Option<&'m Mute> {
    mutes
        .iter()
        .filter(|m| m.holds(ev, dest, now))
        .reduce(|best, m| {
            if m.expires_at > best.expires_at {
                m
            } else {
                best
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
    }

    fn id(s: &str) -> MuteId {
        s.parse().unwrap()
    }

    fn request(target: &str, duration: Duration, force: bool) -> MuteRequest {
        MuteRequest {
            target: target.parse().unwrap(),
            duration,
            created_by: "aaron".into(),
            reason: "deploy noise".into(),
            force,
        }
    }

    fn mute(target: &str, minutes: u64, force: bool) -> Mute {
        Mute::new(
            id("mute_1"),
            request(target, Duration::from_secs(minutes * 60), force),
            t0(),
        )
        .unwrap()
    }

    #[test]
    fn target_forms_parse_print_and_serialize() {
        for (text, want) in [
            ("system", Some(MuteTarget::Category(Category::System))),
            (
                "action_required",
                Some(MuteTarget::Category(Category::ActionRequired)),
            ),
            (
                "discord:system",
                Some(MuteTarget::Destination(Destination::discord("system"))),
            ),
            (
                "telegram:operator",
                Some(MuteTarget::Destination(Destination::telegram("operator"))),
            ),
            (
                "source:worker:opsclaw",
                Some(MuteTarget::Source("worker:opsclaw".into())),
            ),
            ("systems", None),
            ("slack:x", None),
            ("discord:", None),
            ("source:", None),
            ("", None),
        ] {
            let got = text.parse::<MuteTarget>();
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{text}");
            match got {
                Ok(t) => {
                    assert_eq!(t.to_string(), text);
                    let json = serde_json::to_string(&t).unwrap();
                    assert_eq!(json, format!("\"{text}\""));
                    assert_eq!(serde_json::from_str::<MuteTarget>(&json).unwrap(), t);
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("source:worker:opsclaw") && msg.contains("discord:system"),
                        "{msg}"
                    );
                }
            }
        }
        assert!(serde_json::from_str::<MuteTarget>("\"bogus\"").is_err());
    }

    #[test]
    fn ids_are_checked() {
        for (s, ok) in [
            ("mute_abc-1_2", true),
            ("mute_", false),
            ("abc", false),
            ("mute_a b", false),
        ] {
            assert_eq!(s.parse::<MuteId>().is_ok(), ok, "{s}");
        }
        assert!(serde_json::from_str::<MuteId>("\"nope\"").is_err());
    }

    #[test]
    fn durations_are_bounded() {
        let new = |d| Mute::new(id("mute_1"), request("system", d, false), t0());
        assert_eq!(new(Duration::ZERO), Err(MuteError::ZeroDuration));
        assert!(new(MAX_MUTE).is_ok());
        let err = new(MAX_MUTE + Duration::from_secs(1)).unwrap_err();
        assert!(
            err.to_string().contains("at most 30 days, not 30days 1s"),
            "{err}"
        );
        let m = new(Duration::from_secs(7200)).unwrap();
        assert_eq!(m.expires_at - m.created_at, TimeDelta::hours(2));
    }

    #[test]
    fn protected_targets_need_force() {
        for (target, protected) in [
            ("action_required", true),
            ("alert", true),
            ("telegram:operator", true),
            ("telegram:anything", true),
            ("discord:alerts", true),
            ("system", false),
            ("discord:system", false),
            ("briefing", false),
            ("source:worker:opsclaw", false),
        ] {
            let r = Mute::new(
                id("mute_1"),
                request(target, Duration::from_secs(60), false),
                t0(),
            );
            assert_eq!(r.is_err(), protected, "{target}");
            if let Err(e) = r {
                let msg = e.to_string();
                assert!(
                    msg.contains("human loop") && msg.contains("--force"),
                    "{msg}"
                );
            }
            assert!(
                Mute::new(
                    id("mute_1"),
                    request(target, Duration::from_secs(60), true),
                    t0()
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn holds_by_target_severity_force_and_expiry() {
        let system = Category::System;
        let alert = Category::Alert;
        let action = Category::ActionRequired;
        let ev = |c, s, src| RouteInput::new(c, s, src, "e");
        let ds = Destination::discord("system");
        let da = Destination::discord("alerts");
        let tg = Destination::telegram("operator");
        let now = t0() + TimeDelta::minutes(1);
        use Severity::*;
        #[rustfmt::skip]
        let cases: &[(&str, bool, RouteInput, &Destination, bool)] = &[
            ("system", false, ev(&system, Info, "w"), &ds, true),
            ("system", false, ev(&system, Warning, "w"), &da, true), // a category mute holds on every destination
            ("system", false, ev(&system, Critical, "w"), &ds, false), // critical needs force
            ("system", true, ev(&system, Critical, "w"), &ds, true),
            ("system", false, ev(&alert, Info, "w"), &ds, false),
            ("discord:system", false, ev(&alert, Info, "w"), &ds, true),
            ("discord:system", false, ev(&system, Info, "w"), &da, false),
            ("discord:system", false, ev(&action, Info, "w"), &ds, false), // action_required needs force
            ("discord:system", true, ev(&action, Info, "w"), &ds, true),
            ("source:worker:a", false, ev(&system, Info, "worker:a"), &ds, true),
            ("source:worker:a", false, ev(&system, Info, "worker:ab"), &ds, false),
            ("telegram:operator", true, ev(&action, Critical, "w"), &tg, true),
            ("telegram:operator", true, ev(&action, Critical, "w"), &ds, false),
        ];
        for (i, (target, force, input, dest, want)) in cases.iter().enumerate() {
            let m = mute(target, 10, *force);
            assert_eq!(
                m.holds(input, dest, now),
                *want,
                "case {i}: {target} force={force}"
            );
        }
        // expiry boundary: held up to, not at, expires_at
        let m = mute("system", 10, false);
        let input = ev(&system, Info, "w");
        assert!(m.holds(&input, &ds, t0()));
        assert!(m.holds(&input, &ds, m.expires_at - TimeDelta::nanoseconds(1)));
        assert!(!m.holds(&input, &ds, m.expires_at));
        assert!(!m.holds(&input, &ds, m.expires_at + TimeDelta::seconds(1)));
    }

    #[test]
    fn holding_mute_picks_the_one_that_ends_last() {
        let a = mute("system", 10, false);
        let mut b = mute("discord:system", 60, false);
        b.id = id("mute_2");
        let c = Mute {
            id: id("mute_3"),
            ..mute("chat", 120, false)
        };
        let mutes = vec![a.clone(), b.clone(), c];
        let cat = Category::System;
        let input = RouteInput::new(&cat, Severity::Info, "w", "e");
        let ds = Destination::discord("system");
        assert_eq!(
            holding_mute(&mutes, &input, &ds, t0()).map(|m| m.id.as_str()),
            Some("mute_2")
        );
        assert_eq!(
            holding_mute(&mutes, &input, &Destination::discord("x"), t0()).map(|m| m.id.as_str()),
            Some("mute_1")
        );
        assert_eq!(holding_mute(&mutes, &input, &ds, b.expires_at), None);
        assert_eq!(holding_mute(&[], &input, &ds, t0()), None);
    }

    #[test]
    fn notice_is_due_in_the_last_stretch_only() {
        let m = mute("system", 60, false);
        let lead = Duration::from_secs(600);
        assert!(!m.notice_due(t0(), lead));
        assert!(!m.notice_due(m.expires_at - TimeDelta::minutes(11), lead));
        assert!(m.notice_due(m.expires_at - TimeDelta::minutes(10), lead));
        assert!(m.notice_due(m.expires_at - TimeDelta::seconds(1), lead));
        assert!(!m.notice_due(m.expires_at, lead));
        assert_eq!(m.remaining(m.expires_at - TimeDelta::minutes(10)), lead);
        assert_eq!(
            m.remaining(m.expires_at + TimeDelta::minutes(10)),
            Duration::ZERO
        );
    }

    #[test]
    fn mute_round_trips_through_json() {
        let m = mute("source:worker:opsclaw", 90, false);
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["target"], "source:worker:opsclaw");
        assert_eq!(json["id"], "mute_1");
        assert_eq!(serde_json::from_value::<Mute>(json).unwrap(), m);
        assert_eq!(
            m.describe(),
            "`source:worker:opsclaw` muted until 2026-11-21 11:30 UTC by aaron (deploy noise) [mute_1]"
        );
        let req: MuteRequest =
            serde_json::from_str(r#"{"target":"system","duration":"2h 30m","created_by":"cli"}"#)
                .unwrap();
        assert_eq!(req.duration, Duration::from_secs(9000));
        assert!(
            serde_json::from_str::<MuteRequest>(
                r#"{"target":"system","duration":"soon","created_by":"x"}"#
            )
            .unwrap_err()
            .to_string()
            .contains("write it like")
        );
    }
}
