//! The small validated values commands carry: mute targets, mute, approval
//! and task ids, agent names. Each is checked once, at the edge, so the
//! handler and the `Fleet` never see a malformed one.

use std::fmt;

use serde::{Deserialize, Serialize};
use switchyard_routing::{Category, Destination};

/// Identifiers are typed in chat and echoed in logs and file names: keep them
/// short and free of anything that needs quoting.
const MAX_ID_CHARS: usize = 64;

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= MAX_ID_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        && !s.starts_with('.')
}

macro_rules! ident_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks the shape; the error is a sentence for the user.
            pub fn parse(s: &str) -> Result<Self, String> {
                if is_ident(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err(format!(
                        concat!($what, " {:?} is not valid: use 1 to {} letters, digits, `_`, `-`, `.` or `:` (for example `", $example, "`)"),
                        s, MAX_ID_CHARS
                    ))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

ident_type!(
    /// The id of a mute, as the fleet's mute store issued it.
    MuteId, "mute id", "mute_42"
);
ident_type!(
    /// The id of an approval request (`apr_...`).
    ApprovalId, "approval id", "apr_7f3a"
);
ident_type!(
    /// The id of a task in the task store.
    TaskId, "task id", "task_20261121_001"
);
ident_type!(
    /// The name of an agent of the fleet (`[[agents]] name` in the config).
    AgentName, "agent name", "manager"
);

/// What a mute applies to, as the user wrote it (DESIGN.md 3.1): a category
/// (`system`), a destination (`discord:system`, `telegram:operator`, or the
/// Discord shorthand `#system`) or a source (`source:worker:opsclaw`).
///
/// The shape is checked here; whether the alias or source exists is the
/// fleet's business. It is kept as the canonical string so this crate stays
/// decoupled from the routing crate's mute matcher, which parses the same
/// three forms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MuteTarget(String);

impl MuteTarget {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let hint = "a mute target is a category (`system`), a channel (`discord:alerts`, `#alerts`, \
                    `telegram:operator`) or a source (`source:worker:opsclaw`)";
        if let Some(alias) = s.strip_prefix('#') {
            return MuteTarget::parse(&format!("discord:{alias}"));
        }
        if let Some(source) = s.strip_prefix("source:") {
            if source.is_empty()
                || source.chars().count() > 128
                || source.chars().any(char::is_whitespace)
            {
                return Err(format!("mute target {s:?} names no usable source: {hint}"));
            }
            return Ok(MuteTarget(s.to_string()));
        }
        if s.contains(':') {
            return s
                .parse::<Destination>()
                .map(|d| MuteTarget(d.to_string()))
                .map_err(|e| format!("{e}; {hint}"));
        }
        let category: Category = s.parse().unwrap_or_else(|never| match never {});
        if category.is_known() {
            Ok(MuteTarget(category.to_string()))
        } else {
            let known: Vec<&str> = Category::KNOWN.iter().map(Category::as_str).collect();
            Err(format!(
                "mute target {s:?} is not a category ({}); {hint}",
                known.join(", ")
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MuteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MuteTarget {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<MuteTarget> for String {
    fn from(v: MuteTarget) -> String {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_targets_take_the_three_documented_forms() {
        for (input, expect) in [
            ("system", Some("system")),
            ("action_required", Some("action_required")),
            ("discord:system", Some("discord:system")),
            ("#alerts", Some("discord:alerts")),
            ("telegram:operator", Some("telegram:operator")),
            ("source:worker:opsclaw", Some("source:worker:opsclaw")),
            ("sytem", None),
            ("slack:x", None),
            ("discord:", None),
            ("source:", None),
            ("#", None),
        ] {
            let got = MuteTarget::parse(input);
            assert_eq!(
                got.as_ref().ok().map(MuteTarget::as_str),
                expect,
                "{input}: {got:?}"
            );
        }
    }

    #[test]
    fn ids_reject_what_would_need_quoting() {
        assert!(MuteId::parse("mute_42").is_ok());
        for bad in ["", "a b", "../x", ".hidden", &"x".repeat(65)] {
            let err = MuteId::parse(bad).unwrap_err();
            assert!(err.contains("mute id"), "{err}");
        }
    }
}
