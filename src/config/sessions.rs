//! `[sessions]`: where spawned coding sessions (session skills) get their
//! worktrees, which local clone each repository's worktrees come from, and
//! how many sessions may run at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::validator::Validator;

/// `[sessions]` as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawSessions {
    pub worktrees: Option<String>,
    pub max_running: Option<u32>,
    pub base: Option<String>,
    #[serde(default)]
    pub repos: BTreeMap<String, String>,
}

/// `[sessions]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsSettings {
    /// The folder each spawned task's worktree is made in (`<folder>/<task id>`).
    pub worktrees: PathBuf,
    /// The most sessions spawned by one agent that may be running at once.
    pub max_running: u32,
    /// What a new branch starts from (`git worktree add ... -b BRANCH BASE`).
    pub base: String,
    /// `owner/name` → the local clone its worktrees come from.
    pub repos: BTreeMap<String, PathBuf>,
}

pub(super) fn sessions(
    v: &mut Validator,
    raw: RawSessions,
    base_dir: &Path,
    workspace: &Path,
) -> SessionsSettings {
    let resolve = |p: &str| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { base_dir.join(p) }
    };
    let max_running = raw.max_running.unwrap_or(3);
    if !(1..=64).contains(&max_running) {
        v.problem("sessions.max_running", "must be between 1 and 64");
    }
    let base = raw.base.unwrap_or_else(|| "origin/main".into());
    if base.is_empty() || base.starts_with('-') || base.contains(char::is_whitespace) {
        v.problem(
            "sessions.base",
            format!("{base:?} is not a git revision such as \"origin/main\""),
        );
    }
    let mut repos = BTreeMap::new();
    for (repo, dir) in raw.repos {
        let part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !repo
            .split_once('/')
            .is_some_and(|(o, n)| part(o) && part(n))
        {
            v.problem(
                &format!("sessions.repos.{repo}"),
                "must be owner/name, e.g. \"acme/app\" = \"/srv/acme-app\"",
            );
            continue;
        }
        if dir.trim().is_empty() {
            v.problem(
                &format!("sessions.repos.{repo}"),
                "is empty: name the local clone of the repository",
            );
            continue;
        }
        repos.insert(repo, resolve(&dir));
    }
    SessionsSettings {
        worktrees: raw
            .worktrees
            .map(|w| resolve(&w))
            .unwrap_or_else(|| workspace.join("worktrees")),
        max_running: max_running.clamp(1, 64),
        base,
        repos,
    }
}
