//! The checks the section validators share: durations, URLs, ids, aliases,
//! environment variable names, access lists, memory sizes. Each reports a
//! problem under its key and returns a usable default, so validation goes on.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_commands::AccessList;

use super::ConfigProblem;

/// Parses a duration like `30s`, `10m`, `2h` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}): write it like 30s, 10m or 2h"))
}

/// The one error collector of a validation pass: every section validator
/// pushes its problems here, so a file with many mistakes reports them all.
#[derive(Default)]
pub(super) struct Validator {
    pub(super) problems: Vec<ConfigProblem>,
}

impl Validator {
    pub(super) fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    pub(super) fn duration(&mut self, key: &str, value: Option<String>, default: &str) -> Duration {
        let text = value.unwrap_or_else(|| default.to_string());
        match parse_duration(&text) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.problem(key, "must be longer than zero");
                parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
            Err(e) => {
                self.problem(key, e);
                parse_duration(default).unwrap_or(Duration::from_secs(1))
            }
        }
    }

    pub(super) fn url(&mut self, key: &str, value: Option<String>, default: &str) -> String {
        let text = value.unwrap_or_else(|| default.to_string());
        match url::Url::parse(&text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                text.trim_end_matches('/').to_string()
            }
            _ => {
                self.problem(key, format!("{text:?} is not an http(s) URL"));
                default.to_string()
            }
        }
    }

    pub(super) fn snowflake(&mut self, key: &str, text: &str) -> Option<u64> {
        match text.trim().parse::<u64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                self.problem(
                    key,
                    format!(
                        "{text:?} is not a Discord id (a number, copied with Developer Mode on)"
                    ),
                );
                None
            }
        }
    }

    pub(super) fn alias(&mut self, key: &str, alias: &str) {
        if !switchyard_routing::destination::valid_alias(alias) {
            self.problem(key, "aliases use letters, digits, `-` and `_` (at most 64)");
        }
    }

    pub(super) fn env_name(&mut self, key: &str, env: &str) {
        let ok = !env.is_empty()
            && env
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !env.as_bytes()[0].is_ascii_digit();
        if !ok {
            self.problem(
                key,
                format!("{env:?} is not an environment variable name (UPPER_CASE): the file names the variable, never the token itself"),
            );
        }
    }

    pub(super) fn access(
        &mut self,
        key: &str,
        lists: &BTreeMap<String, Vec<String>>,
    ) -> AccessList {
        let mut acl = AccessList::default();
        for (class, entries) in lists {
            let target = match class.as_str() {
                "read" => &mut acl.read,
                "operate" => &mut acl.operate,
                "admin" => &mut acl.admin,
                "chat" => acl.chat.get_or_insert_with(Vec::new),
                "approvers" => {
                    if entries.iter().any(|e| e.trim() == "*") {
                        self.problem(
                            &format!("{key}.approvers"),
                            "\"*\" would let anyone decide approvals: name the approvers' user or role ids",
                        );
                        continue;
                    }
                    &mut acl.approvers
                }
                other => {
                    self.problem(
                        &format!("{key}.{other}"),
                        "unknown class: use read, operate, admin, approvers or chat",
                    );
                    continue;
                }
            };
            for entry in entries {
                match entry.parse() {
                    Ok(rule) => target.push(rule),
                    Err(e) => self.problem(&format!("{key}.{class}"), e),
                }
            }
        }
        acl
    }

    pub(super) fn bytes(&mut self, key: &str, text: &str) -> i64 {
        let t = text.trim().to_ascii_lowercase();
        let (num, mult) = match t.chars().last() {
            Some('k') => (&t[..t.len() - 1], 1i64 << 10),
            Some('m') => (&t[..t.len() - 1], 1 << 20),
            Some('g') => (&t[..t.len() - 1], 1 << 30),
            _ => (t.as_str(), 1),
        };
        match num.parse::<i64>() {
            Ok(n) if n > 0 && n.checked_mul(mult).is_some_and(|b| b >= 6 << 20) => n * mult,
            _ => {
                self.problem(
                    key,
                    format!("{text:?} is not a memory size of at least 6m (like 256m or 1g)"),
                );
                256 << 20
            }
        }
    }
}
