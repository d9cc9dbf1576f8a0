//! The GitHub task registry: seed 001's `active-tasks.json`.
//!
//! A task names an agent, a repository and a branch; the monitor watches the
//! branch's pull request until it is ready for the human merge. The file's
//! field names are the seed's camelCase ones, and fields switchyard does not
//! know (review gates of other tools, ...) are kept verbatim, so that
//! `import` then `export` gives back the same JSON.
//!
//! How the task's worker is reached ([`WorkerFields`]: the seed's
//! `tmuxSession` and `worktree`, plus `agentCommand`, `workerTask`,
//! `inboxAgent` and `spawnTemplate` in the same style) is typed, because the
//! monitor checks that worker's liveness and types corrections into it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How many attempts a task gets when its record does not say
/// (seed 001: "Retry count remains under policy limit (for example, max 3)").
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Where a task is in its life. The seed names `running` and `done`;
/// `failed` and `escalated` are the two ways the monitor gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Queued,
    Running,
    Done,
    Failed,
    Escalated,
}

impl TaskStatus {
    /// Terminal tasks are exported but no longer cost requests.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Failed | TaskStatus::Escalated)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Escalated => "escalated",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seed's terminal `checks` object. The three the monitor decides are
/// typed; review gates of other tools (`codexReviewPassed`, ...) are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_created: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_passed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviews_passed: Option<bool>,
    #[serde(flatten)]
    pub other: BTreeMap<String, bool>,
}

/// One entry of `active-tasks.json`, exactly as the file has it.
///
/// Optional fields stay `Option` (rather than defaulted) so that a field the
/// file did not have is not invented on export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub id: String,
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `owner/name`.
    pub repo: String,
    pub branch: String,
    /// The branch the PR targets; the PR's own base when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Epoch milliseconds, as in the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    pub status: TaskStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_on_complete: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<u64>,
    /// Epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Check names that must be green; every reported check when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_checks: Option<Vec<String>>,
    /// Paths (a prefix such as `web/`, or `*.css`) whose change needs a
    /// screenshot in the PR description; `[github] ui_paths` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_paths: Option<Vec<String>>,
    /// How the task's worker is reached (flattened: its fields sit beside
    /// the others, as the seed writes `tmuxSession`).
    #[serde(flatten)]
    pub worker: WorkerFields,
    /// Fields of other tools, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// How a task's worker is reached: at most one of a tmux session on the
/// agent's host, a switchyard task in a container, or an inbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerFields {
    /// The tmux session the coding agent runs in (seed 001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_session: Option<String>,
    /// The worktree folder (seed 001): a name under `[sessions] worktrees`,
    /// or an absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    /// The program the session's pane runs while the agent works (its
    /// process name, e.g. `node` or `codex`): corrections are typed only
    /// while the pane runs it, never into a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_command: Option<String>,
    /// A switchyard task (its id) running in a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_task: Option<String>,
    /// Another agent or program, reached through this agent's inbox and
    /// alive while its heartbeat is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_agent: Option<String>,
    /// The `[skills.NAME]` session skill that spawned the task: a dead
    /// session is respawned from it, and it is cleaned up when the PR is
    /// merged or the task abandoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_template: Option<String>,
}

/// A tmux session name switchyard types into: letters, digits, `_` and `-`
/// (tmux reads `:` and `.` in a target as window and pane separators).
pub fn valid_session_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `owner/name` of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl FromStr for RepoName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match s.split_once('/') {
            Some((owner, name)) if ok(owner) && ok(name) => Ok(RepoName {
                owner: owner.to_string(),
                name: name.to_string(),
            }),
            _ => Err(format!(
                "repo {s:?} must be owner/name, e.g. \"acme/{}\"",
                s.trim_matches('/')
            )),
        }
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A validated task the monitor watches: the record plus its parsed repo.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedTask {
    pub repo: RepoName,
    pub record: TaskRecord,
}

impl TrackedTask {
    pub fn new(record: TaskRecord) -> Result<Self, Vec<String>> {
        let problems = record_problems(&record);
        if !problems.is_empty() {
            return Err(problems);
        }
        let repo = record.repo.parse().expect("checked by record_problems");
        Ok(TrackedTask { repo, record })
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }
    pub fn attempts(&self) -> u32 {
        self.record.attempts.unwrap_or(0)
    }
    pub fn max_attempts(&self) -> u32 {
        self.record.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }
}

/// Why a registry file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the task registry {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the task registry {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the task registry {path} is not valid JSON at line {line}, column {column}: {message}; \
         it must be an array of task objects (seed 001's active-tasks.json)"
    )]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the task registry {path} has {} problem(s):\n  - {}\nFix these entries and import again.", .problems.len(), .problems.join("\n  - "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

fn record_problems(r: &TaskRecord) -> Vec<String> {
    let mut p = Vec::new();
    if r.id.trim().is_empty() {
        p.push("id is empty".to_string());
    }
    if r.agent.trim().is_empty() {
        p.push("agent is empty: name the agent that monitors this task".to_string());
    }
    if let Err(e) = r.repo.parse::<RepoName>() {
        p.push(e);
    }
    if r.branch.trim().is_empty() || r.branch.contains(char::is_whitespace) {
        p.push(format!("branch {:?} is not a branch name", r.branch));
    }
    if r.max_attempts == Some(0) {
        p.push("maxAttempts must be at least 1".to_string());
    }
    if r.pr == Some(0) {
        p.push("pr must be a pull request number (1 or more)".to_string());
    }
    let w = &r.worker;
    let reached = [
        w.tmux_session.is_some(),
        w.worker_task.is_some(),
        w.inbox_agent.is_some(),
    ];
    if reached.iter().filter(|b| **b).count() > 1 {
        p.push(
            "name one way to reach the worker: tmuxSession, workerTask or inboxAgent, not several"
                .to_string(),
        );
    }
    if let Some(s) = &w.tmux_session
        && !valid_session_name(s)
    {
        p.push(format!(
            "tmuxSession {s:?} must be 1 to 64 letters, digits, `_` or `-`"
        ));
    }
    if let Some(c) = &w.agent_command
        && (c.is_empty() || c.contains('/') || c.contains(char::is_whitespace))
    {
        p.push(format!(
            "agentCommand {c:?} must be a process name such as \"node\" (no path, no arguments)"
        ));
    }
    if w.agent_command.is_some() && w.tmux_session.is_none() {
        p.push("agentCommand is only meaningful with a tmuxSession".to_string());
    }
    if w.spawn_template.is_some() && w.tmux_session.is_none() {
        p.push("spawnTemplate needs the tmuxSession it respawns".to_string());
    }
    if let Some(paths) = &r.ui_paths
        && paths.iter().any(|p| p.trim().is_empty())
    {
        p.push("uiPaths has an empty entry".to_string());
    }
    p
}

/// Parses and validates registry text; `path` only names the source in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<TrackedTask>, RegistryError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| RegistryError::Syntax {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
    // The seed shows a single task object; a registry is a list of them.
    let items = match value {
        serde_json::Value::Array(items) => items,
        obj @ serde_json::Value::Object(_) => vec![obj],
        other => {
            return Err(RegistryError::Invalid {
                path: path.to_path_buf(),
                problems: vec![format!(
                    "expected an array of task objects, found {}",
                    json_kind(&other)
                )],
            });
        }
    };
    let mut problems = Vec::new();
    let mut tasks = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let label = match item.get("id").and_then(|v| v.as_str()) {
            Some(id) => format!("task {} ({id:?})", i + 1),
            None => format!("task {}", i + 1),
        };
        let record: TaskRecord = match serde_json::from_value(item) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{label}: {e}"));
                continue;
            }
        };
        if !seen.insert(record.id.clone()) {
            problems.push(format!(
                "{label}: the id is used by an earlier task; ids must be unique"
            ));
            continue;
        }
        match TrackedTask::new(record) {
            Ok(t) => tasks.push(t),
            Err(ps) => problems.extend(ps.into_iter().map(|m| format!("{label}: {m}"))),
        }
    }
    if problems.is_empty() {
        Ok(tasks)
    } else {
        Err(RegistryError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Reads `active-tasks.json`, reporting every invalid entry at once.
pub fn import(path: &Path) -> Result<Vec<TrackedTask>, RegistryError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Renders tasks as registry JSON (an array, pretty-printed).
pub fn render(tasks: &[TrackedTask]) -> String {
    let records: Vec<&TaskRecord> = tasks.iter().map(|t| &t.record).collect();
    let mut s = serde_json::to_string_pretty(&records).expect("task records always serialize");
    s.push('\n');
    s
}

/// Writes the registry through a temporary file and a rename, so that a
/// reader never sees half a file.
pub fn export(path: &Path, tasks: &[TrackedTask]) -> Result<(), RegistryError> {
    let err = |source| RegistryError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, render(tasks)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_TASK: &str = r#"{
      "id": "feat-custom-templates",
      "tmuxSession": "codex-templates",
      "agent": "codex",
      "description": "Reusable customer configuration templates",
      "repo": "acme/enclagent",
      "worktree": "feat-custom-templates",
      "branch": "feat/custom-templates",
      "startedAt": 1740268800000,
      "status": "running",
      "notifyOnComplete": true,
      "attempts": 0
    }"#;

    const SEED_DONE: &str = r#"{
      "id": "feat-x", "agent": "claude", "repo": "acme/enclagent", "branch": "feat/x",
      "status": "done",
      "pr": 341,
      "completedAt": 1740275400000,
      "checks": {
        "prCreated": true,
        "ciPassed": true,
        "codexReviewPassed": true,
        "claudeReviewPassed": true,
        "geminiReviewPassed": true
      },
      "note": "All checks passed. Ready to merge."
    }"#;

    #[test]
    fn seed_fields_round_trip_exactly() {
        let text = format!("[{SEED_TASK}, {SEED_DONE}]");
        let tasks = parse(&text, Path::new("t.json")).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].repo.to_string(), "acme/enclagent");
        assert_eq!(
            tasks[0].record.worker.tmux_session.as_deref(),
            Some("codex-templates")
        );
        assert_eq!(
            tasks[0].record.worker.worktree.as_deref(),
            Some("feat-custom-templates")
        );
        assert!(tasks[0].record.extra.is_empty());
        assert!(tasks[1].record.checks.as_ref().unwrap().other["geminiReviewPassed"]);
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        let exported: serde_json::Value = serde_json::from_str(&render(&tasks)).unwrap();
        assert_eq!(original, exported);
    }

    #[test]
    fn a_single_seed_object_is_one_task() {
        let tasks = parse(SEED_TASK, Path::new("t.json")).unwrap();
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].max_attempts(), DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn every_problem_is_reported_with_its_task() {
        let text = r#"[
          {"id": "a", "agent": "codex", "repo": "enclagent", "branch": "b", "status": "running"},
          {"id": "a", "agent": "codex", "repo": "o/r", "branch": "b", "status": "running"},
          {"id": "c", "agent": "", "repo": "o/r", "branch": "", "status": "sleeping"},
          {"id": "d", "agent": "x", "repo": "o/r", "branch": "b", "status": "running", "maxAttempts": 0}
        ]"#;
        let err = parse(text, Path::new("reg.json")).unwrap_err();
        let RegistryError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("task 1 (\"a\")") && problems[0].contains("owner/name"));
        assert!(problems[1].contains("unique"));
        assert!(problems[2].contains("task 3") && problems[2].contains("sleeping"));
        assert!(problems[3].contains("maxAttempts"));
        assert!(err.to_string().contains("reg.json"));
    }

    #[test]
    fn worker_fields_are_checked() {
        let text = r#"[
          {"id": "a", "agent": "x", "repo": "o/r", "branch": "b", "status": "running",
           "tmuxSession": "s", "inboxAgent": "y"},
          {"id": "b", "agent": "x", "repo": "o/r", "branch": "b", "status": "running",
           "tmuxSession": "w:0.1"},
          {"id": "c", "agent": "x", "repo": "o/r", "branch": "b", "status": "running",
           "tmuxSession": "s", "agentCommand": "/usr/bin/node --x"},
          {"id": "d", "agent": "x", "repo": "o/r", "branch": "b", "status": "running",
           "spawnTemplate": "codex"}
        ]"#;
        let RegistryError::Invalid { problems, .. } = parse(text, Path::new("r.json")).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("one way"));
        assert!(problems[1].contains("w:0.1"));
        assert!(problems[2].contains("process name"));
        assert!(problems[3].contains("spawnTemplate"));
    }

    #[test]
    fn syntax_errors_name_the_place() {
        let err = parse("[{\"id\": }]", Path::new("x.json")).unwrap_err();
        assert!(
            matches!(err, RegistryError::Syntax { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn export_then_import_is_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("active-tasks.json");
        let tasks = parse(&format!("[{SEED_TASK}, {SEED_DONE}]"), &path).unwrap();
        export(&path, &tasks).unwrap();
        assert_eq!(import(&path).unwrap(), tasks);
    }
}
