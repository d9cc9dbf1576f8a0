//! The definition of done, as pure code: from a snapshot of what GitHub says
//! about a task's branch, which merge requirements are still missing, and
//! which failure (if any) should go back to the agent.
//!
//! Nothing here does I/O or knows octocrab; the adapter in `client.rs`
//! builds the [`Snapshot`], and the monitor acts on the result.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::registry::TrackedTask;

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
    /// Unresolved review threads marked critical; `None` when the API in use does not expose threads.
    pub critical_threads: Option<u32>,
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

/// Evaluates the definition of done (DESIGN 4.6, seed 001).
pub fn evaluate(snapshot: &Snapshot, required: &RequiredChecks) -> Requirements {
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

    let ready = missing.is_empty();
    Requirements {
        missing,
        ready,
        optional_failed,
    }
}

/// The failure kinds the monitor hands back to an agent (issue 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    CiFailed,
    Conflict,
    Behind,
    ChangesRequested,
    PrMissing,
    Stale,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::CiFailed => "ci_failed",
            FailureClass::Conflict => "conflict",
            FailureClass::Behind => "behind",
            FailureClass::ChangesRequested => "changes_requested",
            FailureClass::PrMissing => "pr_missing",
            FailureClass::Stale => "stale",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure worth acting on, with the exact blocker and the context the
/// agent needs to fix it (seed 001: "inject only the missing context").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    /// One line for a human: what blocks the merge.
    pub blocker: String,
    /// What the agent is told: this failure only, and what to do about it.
    pub context: String,
    /// Identifies this occurrence: the same failure seen on the next pass is
    /// not a new attempt; a new push that fails again is.
    pub fingerprint: String,
}

/// Time limits that turn waiting into a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// How long after `startedAt` a branch may have no PR.
    pub pr_grace: Duration,
    /// How long an open PR may sit unchanged while requirements are missing.
    pub stale_after: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            pr_grace: Duration::from_secs(2 * 3600),
            stale_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// The first 7 characters (a SHA from an API response is not trusted to be
/// ASCII hex: cut at a character, never inside one).
fn short(sha: &str) -> &str {
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (now - since).to_std().ok()
}

fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs() / 60 * 60)).to_string()
}

/// Classifies what blocks the task, most fundamental first; `None` when
/// nothing is broken (only waiting: CI pending, mergeability computing,
/// review not given yet, or everything green).
pub fn classify(
    task: &TrackedTask,
    snapshot: &Snapshot,
    reqs: &Requirements,
    deadlines: &Deadlines,
    now: DateTime<Utc>,
) -> Option<Failure> {
    let branch = &task.record.branch;
    let Some(pr) = snapshot.pr.as_ref().filter(|p| p.state == PullState::Open) else {
        let started = task
            .record
            .started_at
            .and_then(DateTime::from_timestamp_millis)?;
        let age = elapsed(started, now)?;
        if age < deadlines.pr_grace {
            return None;
        }
        let base = task.record.base.as_deref().unwrap_or("the default branch");
        return Some(Failure {
            class: FailureClass::PrMissing,
            blocker: format!(
                "no pull request for {branch} {} after the task started",
                human(age)
            ),
            context: format!(
                "No pull request exists for branch {branch} in {}. Push the branch and open a pull request against {base}.",
                task.repo
            ),
            fingerprint: "pr_missing".to_string(),
        });
    };
    let base = task
        .record
        .base
        .clone()
        .unwrap_or_else(|| pr.base_ref.clone());
    let sha = short(&pr.head_sha);
    for m in &reqs.missing {
        if let Requirement::Mergeable(Mergeability::Conflicting) = m {
            return Some(Failure {
                class: FailureClass::Conflict,
                blocker: format!("PR #{} conflicts with {base} at {sha}", pr.number),
                context: format!(
                    "Branch {branch} (PR #{}) has merge conflicts with {base}. Rebase on {base}, resolve the conflicts \
                     keeping the intent of both sides, run the tests, and push. Change nothing else.",
                    pr.number
                ),
                fingerprint: format!("conflict:{}", pr.head_sha),
            });
        }
    }
    for m in &reqs.missing {
        if let Requirement::ChecksPassed { failed, .. } = m
            && !failed.is_empty()
        {
            let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
            let mut context = format!(
                "CI failed on {branch} at {sha} (PR #{}). Fix only these failures:\n",
                pr.number
            );
            for c in failed {
                context.push_str(&format!("- {}", c.name));
                if let Some(s) = &c.summary {
                    context.push_str(&format!(": {s}"));
                }
                if let Some(u) = &c.url {
                    context.push_str(&format!(" ({u})"));
                }
                context.push('\n');
            }
            context.push_str("Do not change unrelated code. Push the fix to the same branch.");
            return Some(Failure {
                class: FailureClass::CiFailed,
                blocker: format!(
                    "CI failed on PR #{} at {sha}: {}",
                    pr.number,
                    names.join(", ")
                ),
                context,
                fingerprint: format!("ci_failed:{}", pr.head_sha),
            });
        }
    }
    for m in &reqs.missing {
        if let Requirement::NoChangesRequested { by } = m {
            let mut context = format!(
                "Reviewers requested changes on PR #{} ({branch}):\n",
                pr.number
            );
            for r in snapshot
                .reviews
                .iter()
                .filter(|r| r.state == ReviewState::ChangesRequested && by.contains(&r.user))
            {
                context.push_str(&format!("- {}: {}\n", r.user, r.body.trim()));
            }
            context.push_str("Address only these comments and push to the same branch.");
            return Some(Failure {
                class: FailureClass::ChangesRequested,
                blocker: format!(
                    "changes requested on PR #{} by {}",
                    pr.number,
                    by.join(", ")
                ),
                context,
                fingerprint: format!("changes_requested:{}", pr.head_sha),
            });
        }
    }
    for m in &reqs.missing {
        if let Requirement::UpToDate { behind_by } = m {
            return Some(Failure {
                class: FailureClass::Behind,
                blocker: format!("PR #{} is {behind_by} commit(s) behind {base}", pr.number),
                context: format!(
                    "Branch {branch} (PR #{}) is {behind_by} commit(s) behind {base}. Rebase on {base} and push; make no other changes.",
                    pr.number
                ),
                fingerprint: format!("behind:{}", pr.head_sha),
            });
        }
    }
    if !reqs.ready
        && let Some(updated) = pr.updated_at
        && let Some(idle) = elapsed(updated, now)
        && idle >= deadlines.stale_after
    {
        let list: Vec<String> = reqs.missing.iter().map(|m| m.to_string()).collect();
        return Some(Failure {
            class: FailureClass::Stale,
            blocker: format!(
                "PR #{} has not moved for {}; still missing: {}",
                pr.number,
                human(idle),
                list.join("; ")
            ),
            context: format!(
                "PR #{} ({branch}) has had no activity for {}. Still missing:\n- {}\nFinish these or say what blocks you.",
                pr.number,
                human(idle),
                list.join("\n- ")
            ),
            fingerprint: format!("stale:{}:{}", pr.head_sha, updated.timestamp()),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::registry::{TaskRecord, TaskStatus};

    #[test]
    fn a_short_sha_is_cut_at_a_character_not_inside_one() {
        // Found by the api_responses fuzz target: a multibyte SHA panicked.
        assert_eq!(short("0123456789abcdef"), "0123456");
        assert_eq!(short("ééééééééé"), "ééééééé");
        assert_eq!(short("é"), "é");
        assert_eq!(short(""), "");
    }

    fn task() -> TrackedTask {
        TrackedTask::new(TaskRecord {
            id: "t1".into(),
            agent: "codex".into(),
            description: None,
            repo: "acme/app".into(),
            branch: "feat/x".into(),
            base: None,
            started_at: Some(0),
            status: TaskStatus::Running,
            attempts: None,
            max_attempts: None,
            notify_on_complete: None,
            pr: None,
            completed_at: None,
            checks: None,
            note: None,
            required_checks: None,
            extra: Default::default(),
        })
        .unwrap()
    }

    fn check(name: &str, state: CheckState) -> CheckSnapshot {
        CheckSnapshot {
            name: name.into(),
            state,
            summary: Some(format!("{name} said so")),
            url: None,
        }
    }

    fn review(user: &str, state: ReviewState) -> ReviewSnapshot {
        ReviewSnapshot {
            user: user.into(),
            state,
            body: format!("{user} wrote this"),
        }
    }

    /// Everything green: the baseline each table row changes one thing in.
    fn green() -> Snapshot {
        Snapshot {
            pr: Some(PullSnapshot {
                number: 7,
                state: PullState::Open,
                head_sha: "abcdef0123".into(),
                base_ref: "main".into(),
                mergeable: Some(true),
                draft: false,
                updated_at: DateTime::from_timestamp(1_000, 0),
                html_url: None,
            }),
            compare: Some(CompareSnapshot {
                ahead_by: 1,
                behind_by: 0,
            }),
            checks: vec![
                check("build", CheckState::Success),
                check("lint", CheckState::Success),
            ],
            reviews: vec![review("ana", ReviewState::Approved)],
            critical_threads: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(2_000, 0).unwrap()
    }

    #[test]
    fn requirement_table() {
        type Edit = fn(&mut Snapshot);
        type Row = (
            &'static str,
            Edit,
            RequiredChecks,
            Vec<Requirement>,
            Option<FailureClass>,
        );
        let rows: Vec<Row> = vec![
            ("all green", |_| {}, RequiredChecks::All, vec![], None),
            (
                "no PR",
                |s| s.pr = None,
                RequiredChecks::All,
                vec![Requirement::PullRequest],
                None,
            ),
            (
                "closed PR counts as none",
                |s| s.pr.as_mut().unwrap().state = PullState::Closed,
                RequiredChecks::All,
                vec![Requirement::PullRequest],
                None,
            ),
            (
                "draft",
                |s| s.pr.as_mut().unwrap().draft = true,
                RequiredChecks::All,
                vec![Requirement::ReadyForReview],
                None,
            ),
            (
                "behind",
                |s| {
                    s.compare = Some(CompareSnapshot {
                        ahead_by: 1,
                        behind_by: 3,
                    })
                },
                RequiredChecks::All,
                vec![Requirement::UpToDate { behind_by: 3 }],
                Some(FailureClass::Behind),
            ),
            (
                "CI pending is waiting, not failing",
                |s| s.checks[0].state = CheckState::Pending,
                RequiredChecks::All,
                vec![Requirement::ChecksPassed {
                    failed: vec![],
                    pending: vec!["build".into()],
                }],
                None,
            ),
            (
                "no checks at all",
                |s| s.checks.clear(),
                RequiredChecks::All,
                vec![Requirement::ChecksPassed {
                    failed: vec![],
                    pending: vec!["no checks reported yet".into()],
                }],
                None,
            ),
            (
                "CI failed",
                |s| s.checks[0].state = CheckState::Failure,
                RequiredChecks::All,
                vec![Requirement::ChecksPassed {
                    failed: vec![check("build", CheckState::Failure)],
                    pending: vec![],
                }],
                Some(FailureClass::CiFailed),
            ),
            (
                "optional check failing does not block",
                |s| s.checks[1].state = CheckState::Failure,
                RequiredChecks::Named(vec!["build".into()]),
                vec![],
                None,
            ),
            (
                "required check not reported yet is pending",
                |_| {},
                RequiredChecks::Named(vec!["build".into(), "e2e".into()]),
                vec![Requirement::ChecksPassed {
                    failed: vec![],
                    pending: vec!["e2e".into()],
                }],
                None,
            ),
            (
                "mergeable null: ask again later, not a failure",
                |s| s.pr.as_mut().unwrap().mergeable = None,
                RequiredChecks::All,
                vec![Requirement::Mergeable(Mergeability::Computing)],
                None,
            ),
            (
                "conflict",
                |s| s.pr.as_mut().unwrap().mergeable = Some(false),
                RequiredChecks::All,
                vec![Requirement::Mergeable(Mergeability::Conflicting)],
                Some(FailureClass::Conflict),
            ),
            (
                "no review yet",
                |s| s.reviews.clear(),
                RequiredChecks::All,
                vec![Requirement::Approved],
                None,
            ),
            (
                "comments do not approve",
                |s| s.reviews = vec![review("bo", ReviewState::Commented)],
                RequiredChecks::All,
                vec![Requirement::Approved],
                None,
            ),
            (
                "changes requested beats another approval",
                |s| s.reviews.push(review("bo", ReviewState::ChangesRequested)),
                RequiredChecks::All,
                vec![Requirement::NoChangesRequested {
                    by: vec!["bo".into()],
                }],
                Some(FailureClass::ChangesRequested),
            ),
            (
                "a later approval by the same reviewer clears their request",
                |s| {
                    s.reviews = vec![
                        review("bo", ReviewState::ChangesRequested),
                        review("bo", ReviewState::Commented),
                        review("bo", ReviewState::Approved),
                    ]
                },
                RequiredChecks::All,
                vec![],
                None,
            ),
            (
                "critical thread",
                |s| s.critical_threads = Some(2),
                RequiredChecks::All,
                vec![Requirement::NoCriticalThreads { count: 2 }],
                None,
            ),
            (
                "conflict outranks CI failure",
                |s| {
                    s.pr.as_mut().unwrap().mergeable = Some(false);
                    s.checks[0].state = CheckState::Failure;
                },
                RequiredChecks::All,
                vec![
                    Requirement::ChecksPassed {
                        failed: vec![check("build", CheckState::Failure)],
                        pending: vec![],
                    },
                    Requirement::Mergeable(Mergeability::Conflicting),
                ],
                Some(FailureClass::Conflict),
            ),
        ];
        for (name, edit, required, want_missing, want_class) in rows {
            let mut s = green();
            edit(&mut s);
            let reqs = evaluate(&s, &required);
            assert_eq!(reqs.missing, want_missing, "{name}");
            assert_eq!(reqs.ready, want_missing.is_empty(), "{name}");
            let got = classify(&task(), &s, &reqs, &Deadlines::default(), now()).map(|f| f.class);
            assert_eq!(got, want_class, "{name}");
        }
    }

    #[test]
    fn optional_failures_are_reported_but_do_not_block() {
        let mut s = green();
        s.checks[1].state = CheckState::Failure;
        let reqs = evaluate(&s, &RequiredChecks::Named(vec!["build".into()]));
        assert!(reqs.ready);
        assert_eq!(reqs.optional_failed, vec!["lint".to_string()]);
    }

    #[test]
    fn pr_missing_only_after_the_grace_period() {
        let mut s = green();
        s.pr = None;
        let reqs = evaluate(&s, &RequiredChecks::All);
        let d = Deadlines {
            pr_grace: Duration::from_secs(3600),
            stale_after: Duration::from_secs(86400),
        };
        let t = task(); // started at epoch 0
        assert_eq!(
            classify(
                &t,
                &s,
                &reqs,
                &d,
                DateTime::from_timestamp(3599, 0).unwrap()
            ),
            None
        );
        let f = classify(
            &t,
            &s,
            &reqs,
            &d,
            DateTime::from_timestamp(3600, 0).unwrap(),
        )
        .unwrap();
        assert_eq!(f.class, FailureClass::PrMissing);
        assert!(
            f.context.contains("feat/x") && f.context.contains("acme/app"),
            "{}",
            f.context
        );
    }

    #[test]
    fn stale_when_nothing_moves() {
        let mut s = green();
        s.reviews.clear();
        let reqs = evaluate(&s, &RequiredChecks::All);
        let d = Deadlines {
            pr_grace: Duration::from_secs(60),
            stale_after: Duration::from_secs(600),
        };
        assert_eq!(
            classify(
                &task(),
                &s,
                &reqs,
                &d,
                DateTime::from_timestamp(1_599, 0).unwrap()
            ),
            None
        );
        let f = classify(
            &task(),
            &s,
            &reqs,
            &d,
            DateTime::from_timestamp(1_600, 0).unwrap(),
        )
        .unwrap();
        assert_eq!(f.class, FailureClass::Stale);
        assert!(
            f.context.contains("review: no approval yet"),
            "{}",
            f.context
        );
    }

    #[test]
    fn ci_context_carries_only_the_failing_checks() {
        let mut s = green();
        s.checks[0] = CheckSnapshot {
            name: "build".into(),
            state: CheckState::Failure,
            summary: Some("2 tests failed: parser::empty, parser::nested".into()),
            url: Some("http://ci/1".into()),
        };
        let reqs = evaluate(&s, &RequiredChecks::All);
        let f = classify(&task(), &s, &reqs, &Deadlines::default(), now()).unwrap();
        assert!(
            f.context.contains("parser::nested") && f.context.contains("http://ci/1"),
            "{}",
            f.context
        );
        assert!(
            !f.context.contains("lint"),
            "a passing check is not context: {}",
            f.context
        );
        assert_eq!(f.fingerprint, "ci_failed:abcdef0123");
        assert_eq!(f.blocker, "CI failed on PR #7 at abcdef0: build");
    }
}
