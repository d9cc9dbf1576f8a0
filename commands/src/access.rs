//! Who may run which command: permission classes (read, operate, admin) and
//! the configured access lists they are checked against.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::catalog::PermissionClass;
use crate::catalog::Requirement;
use crate::command::Command;

/// One entry of an access list: `*`, `user:ID` or `role:ID` (Discord role;
/// Telegram has no roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessRule {
    Anyone,
    User(u64),
    Role(u64),
}

impl FromStr for AccessRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "access entry {s:?} must be \"*\", \"user:ID\" or \"role:ID\" with a numeric id"
            )
        };
        if s == "*" {
            return Ok(AccessRule::Anyone);
        }
        let (kind, id) = s.split_once(':').ok_or_else(bad)?;
        let id: u64 = id.parse().map_err(|_| bad())?;
        match kind {
            "user" => Ok(AccessRule::User(id)),
            "role" => Ok(AccessRule::Role(id)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for AccessRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessRule::Anyone => f.write_str("*"),
            AccessRule::User(id) => write!(f, "user:{id}"),
            AccessRule::Role(id) => write!(f, "role:{id}"),
        }
    }
}

impl Serialize for AccessRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccessRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The person asking, as the platform adapter saw them. An id means
/// something only on its platform: a Discord user 42 and a Telegram user 42
/// are two people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub platform: switchyard_routing::Platform,
    pub user_id: u64,
    pub display_name: String,
    pub roles: Vec<u64>,
}

/// The access lists of one platform: one list per class. A higher class
/// implies the lower ones (an admin may operate and read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessList {
    #[serde(default)]
    pub read: Vec<AccessRule>,
    #[serde(default)]
    pub operate: Vec<AccessRule>,
    #[serde(default)]
    pub admin: Vec<AccessRule>,
    /// Who may decide approval requests from this platform (Discord:
    /// `discord.access.approvers`; Telegram keeps its own numeric list).
    #[serde(default)]
    pub approvers: Vec<AccessRule>,
    /// Who may talk to the agents (their conversations); `None`: the
    /// people of `operate` (and `admin`).
    #[serde(default)]
    pub chat: Option<Vec<AccessRule>>,
}

impl AccessList {
    fn list(&self, class: PermissionClass) -> &[AccessRule] {
        match class {
            PermissionClass::Read => &self.read,
            PermissionClass::Operate => &self.operate,
            PermissionClass::Admin => &self.admin,
        }
    }

    /// Whether the approvers list names the caller (`*` is not accepted
    /// there: the configuration refuses it).
    pub fn is_approver(&self, caller: &Caller) -> bool {
        grants(&self.approvers, caller)
    }

    /// Whether the caller may talk to the agents: the `chat` list when it
    /// is configured (admins always may), else whoever may operate.
    pub fn may_chat(&self, caller: &Caller) -> bool {
        match &self.chat {
            Some(rules) => grants(rules, caller) || self.allows(caller, PermissionClass::Admin),
            None => self.allows(caller, PermissionClass::Operate),
        }
    }

    pub fn allows(&self, caller: &Caller, class: PermissionClass) -> bool {
        let grants = |rules: &[AccessRule]| grants(rules, caller);
        [
            PermissionClass::Read,
            PermissionClass::Operate,
            PermissionClass::Admin,
        ]
        .into_iter()
        .filter(|c| *c >= class)
        .any(|c| grants(self.list(c)))
    }
}

fn grants(rules: &[AccessRule], caller: &Caller) -> bool {
    rules.iter().any(|r| match r {
        AccessRule::Anyone => true,
        AccessRule::User(id) => *id == caller.user_id,
        AccessRule::Role(id) => caller.roles.contains(id),
    })
}

/// Why a caller may not run a command, as a sentence for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sentence}")]
pub struct Refusal {
    pub command: &'static str,
    pub needed: Requirement,
    pub sentence: String,
}

impl Refusal {
    pub(crate) fn not_approver(command: &'static str, caller: &Caller) -> Self {
        Refusal {
            command,
            needed: Requirement::Approver(PermissionClass::Read),
            sentence: format!(
                "You may not run /{command}: only configured approvers decide approval requests, and your account \
                 (id {}) is not one. Ask an admin to add it to the approvers.",
                caller.user_id
            ),
        }
    }
}

/// Checks the caller's permission class for the command. Approver-only
/// commands additionally need [`crate::Fleet::is_approver`], which the
/// handler checks.
pub fn authorize(command: &Command, caller: &Caller, access: &AccessList) -> Result<(), Refusal> {
    let needed = command.requirement();
    let class = needed.class();
    if access.allows(caller, class) {
        return Ok(());
    }
    let name = command.name();
    Err(Refusal {
        command: name,
        needed,
        sentence: format!(
            "You may not run /{name}: it needs the {class} permission, which your account (id {}) does not have. \
             Ask an admin to add your user id or one of your roles to the {class} access list.",
            caller.user_id
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user_id: u64, roles: &[u64]) -> Caller {
        Caller {
            platform: switchyard_routing::Platform::Discord,
            user_id,
            display_name: "u".into(),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn classes_imply_lower_classes() {
        let acl = AccessList {
            approvers: vec![],
            read: vec!["*".parse().unwrap()],
            operate: vec!["role:7".parse().unwrap()],
            admin: vec!["user:1".parse().unwrap()],
            chat: None,
        };
        let table = [
            (caller(5, &[]), [true, false, false]),
            (caller(5, &[7]), [true, true, false]),
            (caller(1, &[]), [true, true, true]),
        ];
        for (c, expect) in table {
            let got = [
                PermissionClass::Read,
                PermissionClass::Operate,
                PermissionClass::Admin,
            ]
            .map(|class| acl.allows(&c, class));
            assert_eq!(got, expect, "{c:?}");
        }
    }

    #[test]
    fn empty_list_allows_nobody() {
        assert!(!AccessList::default().allows(&caller(1, &[]), PermissionClass::Read));
    }

    #[test]
    fn bad_entries_say_what_to_write() {
        for bad in ["user:", "role:abc", "group:1", ""] {
            let err = bad.parse::<AccessRule>().unwrap_err();
            assert!(err.contains("user:ID"), "{err}");
        }
    }
}
