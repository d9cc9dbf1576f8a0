//! The small validated values commands carry: approval and task ids, agent
//! names (the one [`AgentName`] rule the configuration, the workspace and the
//! chat commands share), and the chat spellings of the routing crate's mute targets and ids.
//! Each is checked once, at the edge, so the handler and the `Fleet` never
//! see a malformed one.

use std::fmt;

use serde::{Deserialize, Serialize};
pub use switchyard_routing::{MuteId, MuteTarget};

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
    /// The id of an approval request (`apr_...`).
    ApprovalId, "approval id", "apr_7f3a"
);
ident_type!(
    /// The id of a task in the task store.
    TaskId, "task id", "task_20261121_001"
);
/// The name of an agent of the fleet (`[[agents]] name` in the config).
///
/// One rule everywhere, the configuration's: 1 to 32 lowercase ASCII
/// letters, digits, `-` or `_`. A name is also a directory name in the
/// workspace (`agents/<name>/`), so nothing that needs quoting gets in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgentName(String);

impl AgentName {
    /// The longest agent name, in characters.
    pub const MAX_CHARS: usize = 32;

    /// Whether `s` follows the agent name rule.
    pub fn is_valid(s: &str) -> bool {
        (1..=Self::MAX_CHARS).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }

    /// Checks the shape; the error is a sentence for the user.
    pub fn parse(s: &str) -> Result<Self, String> {
        if Self::is_valid(s) {
            Ok(AgentName(s.to_string()))
        } else {
            Err(format!(
                "agent name {s:?} is not valid: use 1 to {} lowercase letters, digits, `-` or `_` (for example `manager`)",
                Self::MAX_CHARS
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for AgentName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for AgentName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for AgentName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for AgentName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for AgentName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for AgentName {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<AgentName> for str {
    fn eq(&self, other: &AgentName) -> bool {
        self == other.0
    }
}

impl PartialEq<AgentName> for &str {
    fn eq(&self, other: &AgentName) -> bool {
        *self == other.0
    }
}

impl PartialEq<AgentName> for String {
    fn eq(&self, other: &AgentName) -> bool {
        *self == other.0
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AgentName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<AgentName> for String {
    fn from(v: AgentName) -> String {
        v.0
    }
}

/// Reads a mute target as a user types it in chat: the routing crate's three
/// forms (`system`, `discord:system`, `source:worker:opsclaw`) plus the
/// Discord shorthand `#system` for `discord:system`. The type is the routing
/// crate's [`MuteTarget`], the one the status file and the runtime hold.
pub fn parse_mute_target(s: &str) -> Result<MuteTarget, String> {
    let s = s.trim();
    let expanded;
    let s = match s.strip_prefix('#') {
        Some(alias) => {
            expanded = format!("discord:{alias}");
            expanded.as_str()
        }
        None => s,
    };
    s.parse::<MuteTarget>().map_err(|e| e.to_string())
}

/// Reads a mute id (`mute_42`) typed in chat; the error is a sentence for the user.
pub fn parse_mute_id(s: &str) -> Result<MuteId, String> {
    s.trim().parse::<MuteId>().map_err(|e| e.to_string())
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
            let got = parse_mute_target(input);
            assert_eq!(
                got.as_ref().ok().map(ToString::to_string).as_deref(),
                expect,
                "{input}: {got:?}"
            );
        }
    }

    #[test]
    fn agent_names_follow_the_configuration_rule() {
        for good in ["manager", "tech-lead", "a", "ops_2", &"x".repeat(32)] {
            assert!(AgentName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Manager",
            "tech.lead",
            "a:b",
            "a b",
            "../up",
            "é",
            &"x".repeat(33),
        ] {
            let err = AgentName::parse(bad).unwrap_err();
            assert!(err.contains("agent name"), "{err}");
        }
    }

    #[test]
    fn ids_reject_what_would_need_quoting() {
        assert!(parse_mute_id("mute_42").is_ok());
        for bad in [
            "",
            "a b",
            "../x",
            ".hidden",
            "mute_",
            &format!("mute_{}", "x".repeat(64)),
        ] {
            let err = parse_mute_id(bad).unwrap_err();
            assert!(err.contains("mute id"), "{err}");
        }
    }
}
