//! The definition of done, as pure code: from a snapshot of what GitHub says
//! about a task's branch, which merge requirements are still missing
//! (`failures.rs` decides which of them go back to the agent).
//!
//! Nothing here does I/O or knows octocrab; the adapter in `client.rs`
//! builds the [`Snapshot`], and the monitor acts on the result.

use std::fmt;

use chrono::{DateTime, Utc};

/// What a check (a check run or a commit status) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Pending,
    Success,
    Failure,
}

/// One check on the head commit, from check runs or the combined status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSnapshot {
    pub name: String,
    pub state: CheckState,
    /// The check's own words about a failure (check-run output title/summary or status description).
    pub summary: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewSnapshot {
    pub user: String,
    pub state: ReviewState,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    Open,
    Closed,
    Merged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSnapshot {
    pub number: u64,
    pub state: PullState,
    pub head_sha: String,
    pub base_ref: String,
    /// `None` while GitHub is still computing it: ask again later.
    pub mergeable: Option<bool>,
    pub draft: bool,
    pub updated_at: Option<DateTime<Utc>>,
    pub html_url: Option<String>,
    /// The description, where UI evidence (a screenshot) must be.
    pub body: Option<String>,
}

/// How the head compares with the base (`GET /compare/base...head`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareSnapshot {
    pub ahead_by: u64,
    pub behind_by: u64,
}

/// Everything the evaluation needs, gathered in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub pr: Option<PullSnapshot>,
    pub compare: Option<CompareSnapshot>,
    pub checks: Vec<CheckSnapshot>,
    pub reviews: Vec<ReviewSnapshot>,
    /// Unresolved review threads marked critical; `None` when they were not read.
    pub critical_threads: Option<u32>,
    /// The paths the PR changes; `None` when they were not read (no UI paths to check).
    pub files: Option<Vec<String>>,
}

/// Is GitHub done computing mergeability, and what did it find?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mergeability {
    /// `mergeable: null`: GitHub computes it lazily; ask again on the next pass.
    Computing,
    Conflicting,
}

/// A merge requirement that is not met yet, with what is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No open pull request for the branch.
    PullRequest,
    /// The PR is a draft.
    ReadyForReview,
    UpToDate {
        behind_by: u64,
    },
    ChecksPassed {
        failed: Vec<CheckSnapshot>,
        pending: Vec<String>,
    },
    Mergeable(Mergeability),
    Approved,
    NoChangesRequested {
        by: Vec<String>,
    },
    NoCriticalThreads {
        count: u32,
    },
    /// The PR changes UI paths and its description shows no image.
    ScreenshotEvidence {
        paths: Vec<String>,
    },
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::PullRequest => f.write_str("pull request: none open for the branch"),
            Requirement::ReadyForReview => f.write_str("pull request: still a draft"),
            Requirement::UpToDate { behind_by } => {
                write!(f, "up to date: {behind_by} commit(s) behind the base")
            }
            Requirement::ChecksPassed { failed, pending } => {
                f.write_str("CI: ")?;
                let mut parts = Vec::new();
                if !failed.is_empty() {
                    let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
                    parts.push(format!("failed {}", names.join(", ")));
                }
                if !pending.is_empty() {
                    parts.push(format!("pending {}", pending.join(", ")));
                }
                f.write_str(&parts.join("; "))
            }
            Requirement::Mergeable(Mergeability::Computing) => {
                f.write_str("mergeable: GitHub is still computing it (asking again next pass)")
            }
            Requirement::Mergeable(Mergeability::Conflicting) => {
                f.write_str("mergeable: conflicts with the base")
            }
            Requirement::Approved => f.write_str("review: no approval yet"),
            Requirement::NoChangesRequested { by } => {
                write!(f, "review: changes requested by {}", by.join(", "))
            }
            Requirement::NoCriticalThreads { count } => {
                write!(f, "review: {count} unresolved critical thread(s)")
            }
            Requirement::ScreenshotEvidence { paths } => {
                let shown: Vec<&str> = paths.iter().take(3).map(String::as_str).collect();
                let more = paths.len().saturating_sub(3);
                write!(
                    f,
                    "UI evidence: the PR changes {}{} and its description has no screenshot",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
        }
    }
}

/// Which checks must be green.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RequiredChecks {
    /// Every reported check; at least one must be reported.
    #[default]
    All,
    /// Only these; one that has not reported yet counts as pending.
    Named(Vec<String>),
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub missing: Vec<Requirement>,
    pub ready: bool,
    /// Checks outside the required set that failed: shown, not blocking.
    pub optional_failed: Vec<String>,
}

/// Does `path` fall under a UI path pattern: `web/` or `web/**` (a folder),
/// `*.css` (a file name ending), or an exact path.
pub fn ui_path_matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim();
    if let Some(ext) = pattern.strip_prefix('*') {
        return !ext.is_empty() && path.rsplit('/').next().is_some_and(|n| n.ends_with(ext));
    }
    let folder = pattern.trim_end_matches("**").trim_end_matches('/');
    if pattern.ends_with('/') || pattern.ends_with("/**") {
        return path.starts_with(&format!("{folder}/"));
    }
    path == pattern || path.starts_with(&format!("{pattern}/"))
}

/// Does a PR description show an image: Markdown `![..](..)`, an `<img>`
/// tag, a GitHub attachment link or a link to an image file.
pub fn shows_image(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    if lower.contains("<img") || lower.contains("github.com/user-attachments/assets/") {
        return true;
    }
    if let Some(i) = lower.find("![")
        && lower[i..].contains("](")
    {
        return true;
    }
    lower
        .split(|c: char| c.is_whitespace() || "()<>\"'".contains(c))
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .any(|w| {
            let w = w.split(['?', '#']).next().unwrap_or(w);
            [".png", ".jpg", ".jpeg", ".gif", ".webp"]
                .iter()
                .any(|e| w.ends_with(e))
        })
}

/// Evaluates the definition of done (DESIGN 4.6, seed 001). `ui_paths`:
/// changes there need a screenshot in the PR description.
pub fn evaluate(
    snapshot: &Snapshot,
    required: &RequiredChecks,
    ui_paths: &[String],
) -> Requirements {
    let mut missing = Vec::new();
    let mut optional_failed = Vec::new();
    let Some(pr) = snapshot.pr.as_ref().filter(|p| p.state == PullState::Open) else {
        return Requirements {
            missing: vec![Requirement::PullRequest],
            ready: false,
            optional_failed,
        };
    };
    if pr.draft {
        missing.push(Requirement::ReadyForReview);
    }
    if let Some(c) = snapshot.compare
        && c.behind_by > 0
    {
        missing.push(Requirement::UpToDate {
            behind_by: c.behind_by,
        });
    }

    let mut failed = Vec::new();
    let mut pending = Vec::new();
    match required {
        RequiredChecks::All => {
            if snapshot.checks.is_empty() {
                pending.push("no checks reported yet".to_string());
            }
            for c in &snapshot.checks {
                match c.state {
                    CheckState::Failure => failed.push(c.clone()),
                    CheckState::Pending => pending.push(c.name.clone()),
                    CheckState::Success => {}
                }
            }
        }
        RequiredChecks::Named(names) => {
            for name in names {
                // The same name can come from a check run and a status; any failure wins.
                let mine: Vec<&CheckSnapshot> =
                    snapshot.checks.iter().filter(|c| &c.name == name).collect();
                if let Some(f) = mine.iter().find(|c| c.state == CheckState::Failure) {
                    failed.push((*f).clone());
                } else if mine.is_empty() || mine.iter().any(|c| c.state == CheckState::Pending) {
                    pending.push(name.clone());
                }
            }
            for c in &snapshot.checks {
                if c.state == CheckState::Failure && !names.contains(&c.name) {
                    optional_failed.push(c.name.clone());
                }
            }
        }
    }
    if !failed.is_empty() || !pending.is_empty() {
        missing.push(Requirement::ChecksPassed { failed, pending });
    }

    match pr.mergeable {
        Some(true) => {}
        Some(false) => missing.push(Requirement::Mergeable(Mergeability::Conflicting)),
        None => missing.push(Requirement::Mergeable(Mergeability::Computing)),
    }

    // A reviewer's latest decisive review counts; comments do not change it.
    let mut latest: Vec<(&str, ReviewState)> = Vec::new();
    for r in &snapshot.reviews {
        if matches!(r.state, ReviewState::Commented | ReviewState::Pending) {
            continue;
        }
        match latest.iter_mut().find(|(u, _)| *u == r.user) {
            Some(slot) => slot.1 = r.state,
            None => latest.push((&r.user, r.state)),
        }
    }
    let requested: Vec<String> = latest
        .iter()
        .filter(|(_, s)| *s == ReviewState::ChangesRequested)
        .map(|(u, _)| u.to_string())
        .collect();
    if !requested.is_empty() {
        missing.push(Requirement::NoChangesRequested { by: requested });
    } else if !latest.iter().any(|(_, s)| *s == ReviewState::Approved) {
        missing.push(Requirement::Approved);
    }
    if let Some(count) = snapshot.critical_threads.filter(|n| *n > 0) {
        missing.push(Requirement::NoCriticalThreads { count });
    }
    if let Some(files) = &snapshot.files {
        let ui: Vec<String> = files
            .iter()
            .filter(|f| ui_paths.iter().any(|p| ui_path_matches(p, f)))
            .cloned()
            .collect();
        if !ui.is_empty() && !pr.body.as_deref().is_some_and(shows_image) {
            missing.push(Requirement::ScreenshotEvidence { paths: ui });
        }
    }

    let ready = missing.is_empty();
    Requirements {
        missing,
        ready,
        optional_failed,
    }
}
